//! K3s command-line arguments given as one string (`--k3s-args`): splitting it into words with
//! the usual shell quoting and reading the words as K3s flags.

use super::k3s_config::K3sOptions;
use super::{InputError, Origin, Sourced};

/// K3s flags that take no value (`--flag` means `true`). Any other flag takes the next word,
/// unless that word is itself a flag.
pub(crate) const BOOLEAN_FLAGS: &[&str] = &[
    "flannel-ipv6-masq",
    "flannel-external-ip",
    "disable-network-policy",
    "disable-kube-proxy",
    "disable-cloud-controller",
    "disable-helm-controller",
    "disable-scheduler",
    "disable-apiserver",
    "disable-controller-manager",
    "disable-etcd",
    "disable-agent",
    "no-flannel",
    "cluster-init",
    "cluster-reset",
    "secrets-encryption",
    "debug",
    "docker",
    "rootless",
    "selinux",
    "protect-kernel-defaults",
    "prefer-bundled-bin",
    "embedded-registry",
    "supervisor-metrics",
    "etcd-expose-metrics",
    "etcd-disable-snapshots",
];

/// Short flag aliases K3s accepts.
pub(crate) fn long_name(flag: &str) -> &str {
    match flag {
        "i" => "node-ip",
        "c" => "config",
        "d" => "data-dir",
        "t" => "token",
        "s" => "server",
        other => other,
    }
}

/// Splits a `--k3s-args` string into words with the usual shell quoting people paste:
/// whitespace separates words; `'…'` and `"…"` quote (quotes are removed); `\` escapes the next
/// character. (Units are split as systemd does it, in [`super::systemd_words`].)
pub fn split_words(file: &str, line: &str) -> Result<Vec<String>, InputError> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some('"'), '\\') | (None, '\\') => {
                let Some(next) = chars.next() else {
                    return Err(InputError::invalid(
                        file,
                        "command line ends with a lone `\\`",
                    ));
                };
                current.push(match next {
                    'n' => '\n',
                    't' => '\t',
                    other => other,
                });
                in_word = true;
            }
            (Some(_), c) => current.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut current));
                    in_word = false;
                }
            }
            (None, c) => {
                current.push(c);
                in_word = true;
            }
        }
    }
    if let Some(q) = quote {
        return Err(InputError::invalid(
            file,
            format!("unterminated {q} quote in the command line"),
        ));
    }
    if in_word {
        words.push(current);
    }
    Ok(words)
}

/// Reads K3s arguments (`server --cluster-cidr=… --disable servicelb …`, optionally starting
/// with the `k3s` binary) into options. Every value is located at `origin`.
pub fn read_args(words: &[String], origin: &Origin) -> Result<K3sOptions, InputError> {
    let mut rest = words;
    // Skip the binary and the subcommand.
    if let Some(first) = rest.first()
        && !first.starts_with('-')
        && first
            .rsplit('/')
            .next()
            .is_some_and(|b| b.starts_with("k3s"))
    {
        rest = &rest[1..];
    }
    if let Some(first) = rest.first()
        && (first == "server" || first == "agent")
    {
        rest = &rest[1..];
    }

    let mut options = K3sOptions::default();
    let mut i = 0;
    while i < rest.len() {
        let word = &rest[i];
        let Some(flag) = word.strip_prefix("--").or_else(|| word.strip_prefix('-')) else {
            return Err(InputError::invalid(
                &origin.to_string(),
                format!("unexpected argument `{word}`: K3s server/agent take only flags"),
            ));
        };
        let (name, inline) = match flag.split_once('=') {
            Some((n, v)) => (long_name(n), Some(v.to_owned())),
            None => (long_name(flag), None),
        };
        let value = match inline {
            Some(v) => v,
            None if BOOLEAN_FLAGS.contains(&name) => "true".to_owned(),
            None => match rest.get(i + 1) {
                Some(next) if !next.starts_with('-') => {
                    i += 1;
                    next.clone()
                }
                _ => "true".to_owned(),
            },
        };
        options.append(
            name,
            vec![Sourced {
                value,
                origin: origin.clone(),
            }],
        );
        i += 1;
    }
    Ok(options)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::k3s_config::Component;

    fn words(s: &str) -> Vec<String> {
        split_words("t", s).unwrap()
    }

    #[test]
    fn splits_with_systemd_quoting() {
        let table: &[(&str, &[&str])] = &[
            ("a b   c", &["a", "b", "c"]),
            (r#"--x "a b" 'c d'"#, &["--x", "a b", "c d"]),
            (
                r#"feature-gates="IPv6DualStack=true""#,
                &["feature-gates=IPv6DualStack=true"],
            ),
            (r#"a\ b "q\"q""#, &["a b", "q\"q"]),
            ("''", &[""]),
        ];
        for (line, want) in table {
            assert_eq!(words(line), *want, "{line}");
        }
        assert!(
            split_words("t", "a 'b")
                .unwrap_err()
                .to_string()
                .contains("unterminated")
        );
    }

    #[test]
    fn reads_flags_in_every_spelling() {
        let origin = Origin::new("args", None);
        let opts = read_args(
            &words(
                "/usr/local/bin/k3s server --cluster-cidr=10.42.0.0/16,fd00:42::/56 \
                 --service-cidr 10.43.0.0/16,fd00:43::/112 --flannel-ipv6-masq \
                 -i 192.168.1.10,2001:db8::10 --disable servicelb --disable=traefik \
                 --kube-proxy-arg cluster-cidr=10.42.0.0/16 --write-kubeconfig-mode 644",
            ),
            &origin,
        )
        .unwrap();
        assert_eq!(
            opts.list("cluster-cidr").unwrap().value,
            "10.42.0.0/16,fd00:42::/56"
        );
        assert_eq!(
            opts.list("service-cidr").unwrap().value,
            "10.43.0.0/16,fd00:43::/112"
        );
        assert_eq!(
            opts.list("node-ip").unwrap().value,
            "192.168.1.10,2001:db8::10"
        );
        assert!(opts.flag("flannel-ipv6-masq"));
        assert!(opts.disables("servicelb") && opts.disables("traefik"));
        assert_eq!(
            opts.component_arg(Component::KubeProxy, "cluster-cidr")
                .unwrap()
                .value,
            "10.42.0.0/16"
        );
        assert_eq!(opts.last("write-kubeconfig-mode").unwrap().value, "644");
    }

    #[test]
    fn stray_words_are_input_errors() {
        let err = read_args(
            &words("server --disable traefik oops extra"),
            &Origin::new("u", Some(3)),
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("u:3") && err.to_string().contains("oops"),
            "{err}"
        );
    }
}
