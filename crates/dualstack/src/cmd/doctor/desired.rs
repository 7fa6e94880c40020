//! Where `dualstack doctor node` learns what the agent wants in the table:
//!
//! * `--agent-url http://127.0.0.1:9655`: `GET /ruleset` on the agent's health endpoint (a
//!   plain HTTP/1.1 request over a TCP socket, with a timeout; the health endpoint speaks
//!   nothing else);
//! * `--desired FILE` (`-` for stdin): that JSON saved (`curl …/ruleset`, or the offline
//!   agent's `--publish-ruleset FILE`), or the agent's Lease as YAML/JSON (`kubectl get
//!   lease -n dualstack-system dualstack-agent-<node> -o yaml`; a whole dump works too, with
//!   `--node` when it holds several agent Leases), which carries only the hash and count.
//!
//! The comparison itself is `dualstack_doctor::node::desired` (pure).

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use dualstack_doctor::node::Desired;
use dualstack_lb::Snapshot;
use dualstack_ruleset::published::{Published, RULESET_ANNOTATION, Summary};

/// How long the agent may take to connect and answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a table of 10,000 frontends is a few MB of JSON).
const MAX_BODY: u64 = 256 << 20;

/// `GET /ruleset` from an agent's health endpoint at `base` (`http://HOST:PORT`, a path
/// ending in `/ruleset` is used as is).
pub fn from_agent(base: &str) -> Desired {
    let url = ruleset_url(base);
    let unreadable = |reason: String| Desired::Unreadable {
        source: url.clone(),
        reason,
    };
    let (status, body) = match http_get(&url) {
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

fn ruleset_url(base: &str) -> String {
    let base = base.trim_end_matches('/');
    if base.ends_with("/ruleset") {
        base.to_string()
    } else {
        format!("{base}/ruleset")
    }
}

/// A GET over plain HTTP/1.1: the status code and the body.
fn http_get(url: &str) -> Result<(u16, String), String> {
    let rest = url
        .strip_prefix("http://")
        .ok_or("only http:// URLs (the agent's health endpoint) are supported")?;
    let (authority, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    let with_port = if authority
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.contains(']'))
    {
        authority.to_string()
    } else {
        format!("{authority}:80")
    };
    let addr = with_port
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {authority}: {e}"))?
        .next()
        .ok_or_else(|| format!("{authority} resolves to no address"))?;
    let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT)
        .map_err(|e| format!("cannot connect to {addr}: {e}"))?;
    let io = |e: std::io::Error| format!("talking to {addr}: {e}");
    stream.set_read_timeout(Some(TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(TIMEOUT)).map_err(io)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {authority}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    )
    .map_err(io)?;
    let mut raw = Vec::new();
    stream.take(MAX_BODY).read_to_end(&mut raw).map_err(io)?;
    parse_response(&raw)
}

/// Status and body of an HTTP/1.1 response (identity or chunked body).
fn parse_response(raw: &[u8]) -> Result<(u16, String), String> {
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
        assert!(
            http_get("https://x/ruleset")
                .unwrap_err()
                .contains("http://")
        );
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

    /// The agent's health endpoint and this reader agree: 503 before the first sync, then
    /// the published ruleset, in full.
    #[tokio::test(flavor = "multi_thread")]
    async fn reads_what_the_health_endpoint_serves() {
        use std::sync::Arc;
        let health = Arc::new(dualstack_kube::health::Health::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let router = dualstack_kube::health::router(Arc::clone(&health));
        tokio::spawn(async move { axum::serve(listener, router).await });
        let get = |url: String| tokio::task::spawn_blocking(move || from_agent(&url));

        match get(url.clone()).await.unwrap() {
            Desired::NotPublished { source, reason } => {
                assert_eq!(source, format!("{url}/ruleset"));
                assert!(reason.contains("no ruleset published yet"), "{reason}");
            }
            other => panic!("{other:?}"),
        }
        let ruleset = dualstack_ruleset::Ruleset::new("dualstack");
        health.publish("n1", &ruleset, "2026-01-01T00:00:00Z");
        match get(format!("{url}/")).await.unwrap() {
            Desired::Full { published, .. } => {
                assert_eq!(Some(&published), health.published().as_ref());
                assert_eq!((published.node.as_str(), published.generation), ("n1", 1));
            }
            other => panic!("{other:?}"),
        }
        // Same ruleset again: same generation; the summary is what the Lease carries.
        health.publish("n1", &ruleset, "2026-01-01T00:01:00Z");
        let summary = health.ruleset_summary().unwrap().to_string();
        assert!(
            summary.ends_with(";frontends=0;generation=1;since=2026-01-01T00:00:00Z"),
            "{summary}"
        );

        // Nobody listening.
        assert!(matches!(
            get("http://127.0.0.1:9".into()).await.unwrap(),
            Desired::Unreadable { .. }
        ));
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
