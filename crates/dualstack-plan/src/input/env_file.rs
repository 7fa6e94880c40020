//! `EnvironmentFile=` contents (`systemd.exec(5)`): `NAME=value` lines; blank lines and lines
//! starting with `#` or `;` are ignored; a value may be in single quotes (literal) or double
//! quotes (`\` escapes `"`, `\`, `` ` `` and `$`); unquoted, `\` takes the next character and a
//! `\` at the end of a line continues the value on the next one. K3s's install script writes
//! `/etc/systemd/system/k3s.service.env` in this form.

use std::collections::BTreeMap;

/// The variables a file sets, later lines winning.
pub fn parse_env_file(text: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut lines = text.lines();
    while let Some(first) = lines.next() {
        let mut line = first.to_owned();
        while line.ends_with('\\') && !line.ends_with("\\\\") {
            line.pop();
            match lines.next() {
                Some(next) => line.push_str(next),
                None => break,
            }
        }
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with(['#', ';']) {
            continue;
        }
        let trimmed = trimmed.strip_prefix("export ").unwrap_or(trimmed);
        let Some((name, value)) = trimmed.split_once('=') else {
            continue;
        };
        let name = name.trim();
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            continue;
        }
        out.insert(name.to_owned(), unquote(value.trim()));
    }
    out
}

fn unquote(value: &str) -> String {
    if let Some(inner) = value.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')) {
        return inner.to_owned();
    }
    let (inner, double) = match value.strip_prefix('"').and_then(|v| v.strip_suffix('"')) {
        Some(inner) => (inner, true),
        None => (value, false),
    };
    let mut out = String::with_capacity(inner.len());
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some(n) if !double || matches!(n, '"' | '\\' | '`' | '$') => out.push(n),
            Some(n) => {
                out.push('\\');
                out.push(n);
            }
            None => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_install_scripts_env_file_and_quoting() {
        let env = parse_env_file(
            "# written by install.sh\nK3S_TOKEN='s3cr3t'\nK3S_NODE_IP=\"192.168.1.10,fd00::10\"\n\n; note\nexport EXTRA=--a \\\n--b\nRAW=a\\ b\nBAD LINE\n",
        );
        assert_eq!(env["K3S_TOKEN"], "s3cr3t");
        assert_eq!(env["K3S_NODE_IP"], "192.168.1.10,fd00::10");
        assert_eq!(env["EXTRA"], "--a --b");
        assert_eq!(env["RAW"], "a b");
        assert_eq!(env.len(), 4);
    }
}
