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
//! Reading the answer or the file, and the comparison itself, are pure
//! (`dualstack_doctor::node::published`, `dualstack_doctor::node::desired`); this module
//! only does the HTTP request.

use std::io::{Read as _, Write as _};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

use dualstack_doctor::node::Desired;
use dualstack_doctor::node::published::{from_answer, parse_response, ruleset_url};

/// How long the agent may take to connect and answer.
const TIMEOUT: Duration = Duration::from_secs(5);
/// The largest answer read (a table of 10,000 frontends is a few MB of JSON).
const MAX_BODY: u64 = 256 << 20;

/// `GET /ruleset` from an agent's health endpoint at `base` (`http://HOST:PORT`, a path
/// ending in `/ruleset` is used as is).
pub fn from_agent(base: &str) -> Desired {
    let url = ruleset_url(base);
    let answer = http_get(&url);
    from_answer(url, answer)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_plain_http() {
        assert!(
            http_get("https://x/ruleset")
                .unwrap_err()
                .contains("http://")
        );
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
}
