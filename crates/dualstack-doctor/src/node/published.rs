//! Reading what an agent publishes about the ruleset it wants, into a [`Desired`] for
//! [`super::desired::check`]: the answer of its health endpoint (`GET /ruleset`, as an HTTP/1.1
//! response the caller fetched), or a file (`--desired FILE`): that JSON saved, or the agent's
//! Lease (or a whole dump) as YAML/JSON, which carries only the summary annotation.

use dualstack_lb::Snapshot;
use dualstack_ruleset::published::{Published, RULESET_ANNOTATION, Summary};

use super::Desired;

/// What an agent's answer to `GET url` (its status and body, or why there was none) says
/// it wants.
pub fn from_answer(url: String, answer: Result<(u16, String), String>) -> Desired {
    let unreadable = |reason: String| Desired::Unreadable {
        source: url.clone(),
        reason,
    };
    let (status, body) = match answer {
        Ok(answer) => answer,
        Err(reason) => return unreadable(reason),
    };
    match status {
        200 => match serde_json::from_str::<Published>(&body) {
            Ok(published) => Desired::Full {
                source: url,
                published,
            },
            Err(e) => unreadable(format!("the answer is not a published ruleset: {e}")),
        },
        503 => Desired::NotPublished {
            source: url,
            reason: body.trim().to_string(),
        },
        404 => Desired::NotPublished {
            source: url,
            reason: "the agent serves no /ruleset (a dualstack older than this doctor)".into(),
        },
        other => unreadable(format!("HTTP {other}: {}", body.trim())),
    }
}

/// `--desired FILE`: a published ruleset (JSON), or a Lease / dump carrying the summary.
pub fn from_file(name: &str, text: &str, node: Option<&str>) -> Desired {
    let source = if name == "-" {
        "--desired - (stdin)".to_string()
    } else {
        name.to_string()
    };
    if let Ok(published) = serde_json::from_str::<Published>(text) {
        return Desired::Full { source, published };
    }
    let unreadable = |reason: String| Desired::Unreadable {
        source: source.clone(),
        reason,
    };
    let snapshot = match Snapshot::parse(text) {
        Ok(s) => s,
        Err(e) => {
            return unreadable(format!(
                "neither a published ruleset (JSON of GET /ruleset) nor a Lease: {e}"
            ));
        }
    };
    let mut leases: Vec<_> = snapshot
        .leases
        .iter()
        .filter(|l| l.metadata.name.starts_with("dualstack-agent-"))
        .filter(|l| node.is_none_or(|n| l.metadata.name == format!("dualstack-agent-{n}")))
        .collect();
    let lease = match leases.len() {
        1 => leases.remove(0),
        0 => {
            return unreadable(match node {
                Some(n) => format!("no Lease dualstack-agent-{n} in it"),
                None => "no agent Lease (dualstack-agent-<node>) in it".into(),
            });
        }
        _ => {
            let names: Vec<&str> = leases.iter().map(|l| l.metadata.name.as_str()).collect();
            return unreadable(format!(
                "several agent Leases ({}): pass --node NAME",
                names.join(", ")
            ));
        }
    };
    let source = format!(
        "Lease {}/{} in {source}",
        lease.metadata.namespace, lease.metadata.name
    );
    match lease.metadata.annotations.get(RULESET_ANNOTATION) {
        None => Desired::NotPublished {
            source,
            reason: format!("no {RULESET_ANNOTATION} annotation (no sync yet, or an older agent)"),
        },
        Some(value) => match value.parse::<Summary>() {
            Ok(summary) => Desired::Summary { source, summary },
            Err(e) => Desired::Unreadable {
                source,
                reason: e.to_string(),
            },
        },
    }
}

/// The URL of `/ruleset` on the health endpoint at `base` (`http://HOST:PORT`; a URL that
/// already ends in `/ruleset` is kept).
pub fn ruleset_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/ruleset") {
        base.to_string()
    } else {
        format!("{base}/ruleset")
    }
}

/// Status and body of an HTTP/1.1 response (identity or chunked body).
pub fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("the answer is not HTTP (no end of headers)")?;
    let head = String::from_utf8_lossy(&raw[..split]);
    let mut body = &raw[split + 4..];
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|code| code.parse::<u16>().ok())
        .ok_or("the answer is not HTTP (no status line)")?;
    let mut chunked = false;
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if name == "transfer-encoding" && value.trim().eq_ignore_ascii_case("chunked") {
                chunked = true;
            } else if name == "content-length"
                && let Ok(n) = value.trim().parse::<usize>()
            {
                body = body.get(..n).unwrap_or(body);
            }
        }
    }
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Ok((status, String::from_utf8_lossy(&body).into_owned()))
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>, String> {
    let bad = || "malformed chunked body".to_string();
    let mut out = Vec::new();
    loop {
        let eol = data.windows(2).position(|w| w == b"\r\n").ok_or_else(bad)?;
        let size_text = String::from_utf8_lossy(&data[..eol]);
        let size_text = size_text.split(';').next().unwrap_or_default().trim();
        let size = usize::from_str_radix(size_text, 16).map_err(|_| bad())?;
        data = &data[eol + 2..];
        if size == 0 {
            return Ok(out);
        }
        out.extend_from_slice(data.get(..size).ok_or_else(bad)?);
        data = data.get(size + 2..).ok_or_else(bad)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_and_responses() {
        assert_eq!(
            ruleset_url("http://127.0.0.1:9655"),
            "http://127.0.0.1:9655/ruleset"
        );
        assert_eq!(
            ruleset_url("http://[::1]:9655/"),
            "http://[::1]:9655/ruleset"
        );
        assert_eq!(ruleset_url("http://h:1/ruleset"), "http://h:1/ruleset");
        assert_eq!(
            parse_response(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}xx").unwrap(),
            (200, "{}".to_string())
        );
        assert_eq!(
            parse_response(b"HTTP/1.1 503 x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x\r\nde\r\n0\r\n\r\n")
                .unwrap(),
            (503, "abcde".to_string())
        );
        assert!(parse_response(b"garbage").is_err());
    }

    #[test]
    fn answers() {
        let url = || "http://h:1/ruleset".to_string();
        assert!(matches!(
            from_answer(url(), Err("cannot connect".into())),
            Desired::Unreadable { .. }
        ));
        match from_answer(url(), Ok((503, "not yet\n".into()))) {
            Desired::NotPublished { reason, .. } => assert_eq!(reason, "not yet"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_answer(url(), Ok((404, String::new()))),
            Desired::NotPublished { .. }
        ));
        match from_answer(url(), Ok((200, "{}".into()))) {
            Desired::Unreadable { reason, .. } => {
                assert!(
                    reason.starts_with("the answer is not a published ruleset"),
                    "{reason}"
                )
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_lease_file_gives_the_summary() {
        let lease = |name: &str, annotation: &str| {
            format!(
                "apiVersion: coordination.k8s.io/v1\nkind: Lease\nmetadata:\n  name: {name}\n  namespace: dualstack-system\n  annotations:\n    dualstack.io/addresses: \"\"\n{annotation}spec: {{holderIdentity: n1}}\n"
            )
        };
        let hash = format!("sha256:{}", "ab".repeat(32));
        let with = lease(
            "dualstack-agent-n1",
            &format!(
                "    dualstack.io/ruleset: \"{hash};frontends=3;generation=2;since=2026-01-01T00:00:00Z\"\n"
            ),
        );
        match from_file("lease.yaml", &with, None) {
            Desired::Summary { source, summary } => {
                assert_eq!(
                    (summary.hash.as_str(), summary.frontends),
                    (hash.as_str(), 3)
                );
                assert!(
                    source.contains("dualstack-system/dualstack-agent-n1"),
                    "{source}"
                );
            }
            other => panic!("{other:?}"),
        }
        let without = lease("dualstack-agent-n1", "");
        assert!(matches!(
            from_file("lease.yaml", &without, None),
            Desired::NotPublished { .. }
        ));
        let two = format!("{with}---\n{}", lease("dualstack-agent-n2", ""));
        match from_file("dump.yaml", &two, None) {
            Desired::Unreadable { reason, .. } => assert!(reason.contains("--node"), "{reason}"),
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            from_file("dump.yaml", &two, Some("n1")),
            Desired::Summary { .. }
        ));
        assert!(matches!(
            from_file("x", "not: [a lease", None),
            Desired::Unreadable { .. }
        ));
    }
}
