//! What K3s makes of an argument vector, as its command-line library does it (urfave/cli v1 on
//! Go's `flag` package, `vendor/github.com/urfave/cli/command.go`):
//!
//! 1. after the `server`/`agent` subcommand the arguments are *reordered*: flags (words starting
//!    with `-`) move to the front, a word right after a flag without `=` moves with it (as its
//!    possible value), every other word moves to the end; `--` ends the reordering;
//! 2. Go's `flag` then reads flags from the front and stops at the first word that is not a
//!    flag: that word and everything after it are positional arguments, which `k3s server`
//!    and `k3s agent` never look at.
//!
//! So a stray word is harmless when it follows a flag's value, but after a flag that takes no
//! value (`--flannel-ipv6-masq #`) it is taken along as that flag's "value", Go's `flag` stops
//! there, and every flag after it is silently not read.

use super::args::{BOOLEAN_FLAGS, long_name};
use super::k3s_config::K3sOptions;
use super::{Origin, Sourced};

/// One argument and where it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Arg {
    /// The argument as K3s receives it.
    pub text: String,
    /// The file and line it was written on.
    pub origin: Origin,
}

/// K3s's reading of a command line.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K3sCommandLine {
    /// `server` or `agent`, when the first argument after the binary is one.
    pub subcommand: Option<String>,
    /// The flags K3s reads, as options.
    pub options: K3sOptions,
    /// Words that are neither a flag nor the value of one, in command order.
    pub stray: Vec<Arg>,
    /// Flags K3s does not read because flag parsing stopped before them (with their values).
    pub unread: Vec<Arg>,
}

fn is_flag(word: &str) -> bool {
    word.starts_with('-') && word != "-"
}

/// The flag's name (without dashes) and its inline `=value`.
fn split_flag(word: &str) -> (&str, Option<&str>) {
    let bare = word
        .strip_prefix("--")
        .or_else(|| word.strip_prefix('-'))
        .unwrap_or(word);
    match bare.split_once('=') {
        Some((n, v)) => (n, Some(v)),
        None => (bare, None),
    }
}

fn takes_value(name: &str) -> bool {
    !BOOLEAN_FLAGS.contains(&long_name(name))
}

/// urfave/cli's `reorderArgs`.
fn reorder(args: &[Arg]) -> Vec<Arg> {
    let mut flags = Vec::new();
    let mut rest = Vec::new();
    let mut may_be_value = false;
    for (i, arg) in args.iter().enumerate() {
        if arg.text == "--" {
            rest.extend_from_slice(&args[i..]);
            break;
        } else if may_be_value && !arg.text.starts_with('-') {
            may_be_value = false;
            flags.push(arg.clone());
        } else if is_flag(&arg.text) {
            flags.push(arg.clone());
            may_be_value = !arg.text.contains('=');
        } else {
            rest.push(arg.clone());
        }
    }
    flags.extend(rest);
    flags
}

/// Reads `argv` (the binary first) as K3s does.
pub fn parse_k3s_argv(argv: &[Arg]) -> K3sCommandLine {
    let mut out = K3sCommandLine::default();
    let mut rest = argv.get(1..).unwrap_or(&[]);
    match rest.first() {
        Some(sub) if sub.text == "server" || sub.text == "agent" => {
            out.subcommand = Some(sub.text.clone());
            rest = &rest[1..];
        }
        _ => {
            // No subcommand: K3s runs no server or agent at all.
            out.stray = rest.to_vec();
            return out;
        }
    }
    let ordered = reorder(rest);
    let mut i = 0;
    while i < ordered.len() {
        let arg = &ordered[i];
        if arg.text == "--" {
            i += 1;
            break;
        }
        if !is_flag(&arg.text) {
            break;
        }
        let (name, inline) = split_flag(&arg.text);
        let value = match inline {
            Some(v) => v.to_owned(),
            None if !takes_value(name) => "true".to_owned(),
            None => match ordered.get(i + 1) {
                Some(next) => {
                    i += 1;
                    next.text.clone()
                }
                None => {
                    // "flag needs an argument": K3s exits; the flag is not in force.
                    out.unread.push(arg.clone());
                    i += 1;
                    continue;
                }
            },
        };
        out.options.append(
            long_name(name),
            vec![Sourced {
                value,
                origin: arg.origin.clone(),
            }],
        );
        i += 1;
    }
    // Positional from here: flags among them (with their values) are unread, the rest stray.
    let positional = &ordered[i.min(ordered.len())..];
    let mut j = 0;
    while j < positional.len() {
        let arg = &positional[j];
        if is_flag(&arg.text) {
            let (name, inline) = split_flag(&arg.text);
            let mut unread = arg.clone();
            if inline.is_none()
                && takes_value(name)
                && let Some(next) = positional.get(j + 1)
                && !next.text.starts_with('-')
            {
                unread.text = format!("{} {}", arg.text, next.text);
                j += 1;
            }
            out.unread.push(unread);
        } else {
            out.stray.push(arg.clone());
        }
        j += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(words: &[&str]) -> Vec<Arg> {
        words
            .iter()
            .enumerate()
            .map(|(i, w)| Arg {
                text: (*w).to_owned(),
                origin: Origin::new("u", Some(i + 1)),
            })
            .collect()
    }

    fn texts(a: &[Arg]) -> Vec<&str> {
        a.iter().map(|a| a.text.as_str()).collect()
    }

    #[test]
    fn stray_words_after_a_value_are_ignored_positional_arguments() {
        // The blog's unit as systemd passes it.
        let line = parse_k3s_argv(&args(&[
            "/usr/local/bin/k3s",
            "server",
            "--no-flannel",
            "--disable",
            "servicelb",
            "--kube-controller-manager-arg",
            "node-cidr-mask-size-ipv6=96",
            "\\ #",
            "118",
        ]));
        assert_eq!(line.subcommand.as_deref(), Some("server"));
        assert_eq!(texts(&line.stray), ["\\ #", "118"]);
        assert!(line.unread.is_empty());
        assert!(line.options.flag("no-flannel") && line.options.disables("servicelb"));
        assert_eq!(line.options.values("kube-controller-manager-arg").len(), 1);
    }

    #[test]
    fn a_stray_word_after_a_boolean_flag_stops_flag_parsing() {
        let line = parse_k3s_argv(&args(&[
            "k3s",
            "server",
            "--cluster-cidr=10.42.0.0/16,fd00:42::/56",
            "--flannel-ipv6-masq",
            "#",
            "masq",
            "--service-cidr",
            "10.43.0.0/16,fd00:43::/112",
            "--disable-network-policy",
        ]));
        assert!(line.options.flag("flannel-ipv6-masq"));
        assert!(line.options.list("cluster-cidr").is_some());
        assert!(line.options.list("service-cidr").is_none());
        assert_eq!(texts(&line.stray), ["#", "masq"]);
        assert_eq!(
            texts(&line.unread),
            [
                "--service-cidr 10.43.0.0/16,fd00:43::/112",
                "--disable-network-policy"
            ]
        );
        assert_eq!(line.unread[0].origin.line, Some(7));
    }

    #[test]
    fn no_subcommand_means_no_server() {
        let line = parse_k3s_argv(&args(&["/usr/local/bin/k3s", "\\"]));
        assert_eq!(line.subcommand, None);
        assert_eq!(texts(&line.stray), ["\\"]);
        // A value flag takes the next word even when it starts with `-`; `--` ends flags.
        let line = parse_k3s_argv(&args(&[
            "k3s",
            "agent",
            "--node-name",
            "-x",
            "--",
            "--debug",
        ]));
        assert_eq!(line.options.last("node-name").unwrap().value, "-x");
        assert_eq!(texts(&line.unread), ["--debug"]);
    }
}
