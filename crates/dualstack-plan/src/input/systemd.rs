//! The K3s systemd unit (`k3s.service`): finds `ExecStart=` with systemd's own line rules and
//! reads its words as K3s flags.
//!
//! systemd (`systemd.syntax(7)`, `systemd.service(5)`): a line continues on the next one only
//! when it *ends* in `\`; comment lines (`#`, `;`) inside a continuation are skipped. A `\`
//! followed by more text — typically `\ # comment` — does not continue the line: the command
//! ends there, and every following `--flag` line is not part of `ExecStart=` at all (systemd
//! logs it as an unknown assignment and ignores it). We report that as
//! [`BrokenContinuation`] and read the command the way systemd does.

use super::args::{read_args, split_words};
use super::k3s_config::K3sOptions;
use super::{InputError, Origin, Sourced};
use crate::version::Version;

/// A `\` in the command that is followed by more text on its line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokenContinuation {
    /// 1-based line of the `\`.
    pub line: usize,
    /// The text from the `\` to the end of that line, e.g. `\ # 118`.
    pub trailing: String,
    /// The lines systemd no longer treats as part of `ExecStart=` (trimmed).
    pub dropped: Vec<String>,
}

/// What the unit says about K3s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K3sUnit {
    pub options: K3sOptions,
    pub broken: Option<BrokenContinuation>,
}

/// Reads the last `ExecStart=` of a unit file as K3s arguments.
pub fn read_unit(file: &str, text: &str) -> Result<K3sUnit, InputError> {
    let lines: Vec<&str> = text.lines().collect();
    let mut exec: Option<(usize, String, Option<BrokenContinuation>)> = None;
    let mut version: Option<Sourced<Version>> = None;
    let mut i = 0;
    while i < lines.len() {
        let start = i;
        let first = lines[i].trim_start();
        if first.starts_with('#') || first.starts_with(';') {
            i += 1;
            continue;
        }
        // Join continuation lines.
        let mut logical = String::new();
        let mut broken = None;
        loop {
            let line = lines[i];
            let trimmed = line.trim_end();
            if let Some(head) = trimmed.strip_suffix('\\') {
                logical.push_str(head);
                logical.push(' ');
                i += 1;
                while i < lines.len() && {
                    let t = lines[i].trim_start();
                    t.starts_with('#') || t.starts_with(';')
                } {
                    i += 1;
                }
                if i >= lines.len() {
                    break;
                }
            } else {
                if let Some(pos) = stray_backslash(trimmed) {
                    logical.push_str(&trimmed[..pos]);
                    broken = Some(BrokenContinuation {
                        line: i + 1,
                        trailing: trimmed[pos..].to_owned(),
                        dropped: Vec::new(),
                    });
                } else {
                    logical.push_str(trimmed);
                }
                i += 1;
                break;
            }
        }
        let logical = logical.trim();
        if let Some(value) = logical.strip_prefix("ExecStart=") {
            if let Some(b) = broken.as_mut() {
                b.dropped = dropped_lines(&lines[i.min(lines.len())..]);
            }
            exec = if value.trim().is_empty() {
                None
            } else {
                Some((start + 1, value.trim().to_owned(), broken))
            };
        } else if let Some(env) = logical.strip_prefix("Environment=") {
            for word in split_words(file, env)? {
                if let Some((name, value)) = word.split_once('=')
                    && matches!(name, "INSTALL_K3S_VERSION" | "K3S_VERSION")
                    && let Some(v) = Version::parse(value)
                {
                    version = Some(Sourced {
                        value: v,
                        origin: Origin::new(file, Some(start + 1)),
                    });
                }
            }
        }
    }
    let Some((line, command, broken)) = exec else {
        return Err(InputError::invalid(
            file,
            "no ExecStart= line: is this the K3s systemd unit?",
        ));
    };
    let command = command.trim_start_matches(['-', '@', ':', '+', '!']);
    let origin = Origin::new(file, Some(line));
    let words = split_words(&origin.to_string(), command)?;
    let mut options = read_args(&words, &origin)?;
    options.version = version;
    Ok(K3sUnit { options, broken })
}

/// The byte position of a `\` that is followed by whitespace and then more text on the line,
/// outside quotes (`--flag \ # comment`).
fn stray_backslash(line: &str) -> Option<usize> {
    let mut quote: Option<char> = None;
    let mut chars = line.char_indices().peekable();
    while let Some((pos, c)) = chars.next() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(_), _) => {}
            (None, '\'' | '"') => quote = Some(c),
            (None, '\\') => {
                let after = &line[pos + 1..];
                let standalone = pos == 0 || line[..pos].ends_with(char::is_whitespace);
                if after.starts_with(char::is_whitespace)
                    && !after.trim().is_empty()
                    && (standalone || after.trim_start().starts_with('#'))
                {
                    return Some(pos);
                }
                chars.next();
            }
            (None, _) => {}
        }
    }
    None
}

/// Lines after a broken `ExecStart=` that look like they were meant to be part of it.
fn dropped_lines(rest: &[&str]) -> Vec<String> {
    rest.iter()
        .map(|l| l.trim())
        .take_while(|l| {
            !l.is_empty()
                && !l.starts_with('[')
                && !l.split_once('=').is_some_and(|(k, _)| {
                    !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric())
                })
        })
        .filter(|l| !l.starts_with('#') && !l.starts_with(';'))
        .map(|l| l.trim_end_matches('\\').trim_end().to_owned())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::input::k3s_config::Component;

    const BLOG_UNIT: &str = r#"[Unit]
Description=Lightweight Kubernetes
After=network-online.target

[Service]
Type=notify
# ...
ExecStart=/usr/local/bin/k3s \
    server \
  --no-flannel \
  --disable servicelb \
  --kube-apiserver-arg service-cluster-ip-range=10.43.0.0/16,fd45:a71:55a6:1:2:1::/116 \
  --kube-apiserver-arg feature-gates="IPv6DualStack=true" \
  --kube-controller-manager-arg cluster-cidr=10.42.0.0/24,fd45:a71:55a6:1:2:2::/96 \
  --kube-controller-manager-arg feature-gates="IPv6DualStack=true" \
  --kube-controller-manager-arg service-cluster-ip-range=10.43.0.0/16,fd45:a71:55a6:1:2:1::/116 \
  --kube-controller-manager-arg node-cidr-mask-size-ipv4=24 \
  --kube-controller-manager-arg node-cidr-mask-size-ipv6=96 \ # 118
  --kubelet-arg feature-gates="IPv6DualStack=true" \
  --kube-proxy-arg feature-gates="IPv6DualStack=true" \
  --kube-proxy-arg cluster-cidr=10.42.0.0/24,fd45:a71:55a6:1:2:2::/96

[Install]
WantedBy=multi-user.target
"#;

    #[test]
    fn blog_unit_loses_every_flag_after_the_commented_backslash() {
        let unit = read_unit("k3s.service", BLOG_UNIT).unwrap();
        let broken = unit.broken.unwrap();
        assert_eq!(broken.line, 18);
        assert_eq!(broken.trailing, r"\ # 118");
        assert_eq!(broken.dropped.len(), 3);
        assert!(broken.dropped[2].starts_with("--kube-proxy-arg cluster-cidr="));
        let opts = unit.options;
        assert!(opts.flag("no-flannel"));
        assert_eq!(
            opts.component_arg(Component::ControllerManager, "node-cidr-mask-size-ipv6")
                .unwrap()
                .value,
            "96"
        );
        assert_eq!(
            opts.component_arg(Component::ApiServer, "feature-gates")
                .unwrap()
                .value,
            "IPv6DualStack=true"
        );
        assert!(
            opts.component_arg(Component::KubeProxy, "cluster-cidr")
                .is_none()
        );
        assert_eq!(
            opts.values("kube-apiserver-arg")[0].origin.to_string(),
            "k3s.service:8"
        );
    }

    #[test]
    fn comments_inside_a_continuation_are_skipped_and_last_exec_start_wins() {
        let unit = read_unit(
            "u",
            "[Service]\nEnvironment=\"INSTALL_K3S_VERSION=v1.30.4+k3s1\"\nExecStart=/bin/false\nExecStart=\nExecStart=/usr/local/bin/k3s server \\\n# the pods\n  --cluster-cidr '10.42.0.0/16,fd00:42::/56' \\\n  --flannel-ipv6-masq\n",
        )
        .unwrap();
        assert!(unit.broken.is_none());
        assert_eq!(
            unit.options.list("cluster-cidr").unwrap().value,
            "10.42.0.0/16,fd00:42::/56"
        );
        assert!(unit.options.flag("flannel-ipv6-masq"));
        assert_eq!(unit.options.version.unwrap().value, Version::new(1, 30, 4));
    }

    #[test]
    fn escaped_spaces_inside_words_are_not_broken_continuations() {
        assert_eq!(stray_backslash(r"--data-dir /srv/my\ dir"), None);
        assert_eq!(stray_backslash(r"--x a \  --y"), Some(6));
        assert_eq!(stray_backslash(r#"--x "a \ # b""#), None);
        assert!(read_unit("u", "[Service]\nType=notify\n").is_err());
    }
}
