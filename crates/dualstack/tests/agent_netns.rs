//! `dualstack agent --snapshot FILE --once` on a real node namespace, with IPv4 and IPv6
//! traffic (root only).
//!
//! ```text
//!  client   (10.0.1.2, fd00:1::2) ── (10.0.1.1, fd00:1::1) ┐
//!  backend1 (10.0.2.2, fd00:2::2) ── (10.0.2.1, fd00:2::1) ├ node "node-a": dualstack agent
//!  backend2 (10.0.3.2, fd00:3::2) ── (10.0.3.1, fd00:3::1) ┘
//! ```
//! The snapshot says node-a's addresses are 10.0.1.1 and fd00:1::1 (the client's link) and
//! that its agent Lease is live. `default/web` (ETP Cluster, port 80) has endpoints on both
//! backends (backend2's on another node); `default/local` (ETP Local, port 81) has one on
//! backend1, which runs on node-a.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::process::Command;
use std::time::Duration;

use dualstack_addr::Family;
use dualstack_testbed::builders::{Cluster, Tcp, Udp, agent_lease, cluster, node, slice_for, svc};
use dualstack_testbed::{EchoServer, Lab, Netns, kernel_tests_enabled, tcp_request, udp_request};

const TIMEOUT: Duration = Duration::from_millis(700);
const NOW: &str = "2026-01-01T00:00:10Z";

/// The cluster of the module doc; [`snapshot`] prints it.
fn cluster_dump() -> Cluster {
    let slices = |name| {
        slice_for("default", name)
            .endpoint("10.0.2.2", "node-a")
            .endpoint("10.0.3.2", "node-b")
            .endpoint("fd00:2::2", "node-a")
            .endpoint("fd00:3::2", "node-b")
    };
    cluster()
        .node(
            node("node-a")
                .internal(["10.0.1.1", "fd00:1::1"])
                .hostname()
                .ready(),
        )
        .node(node("node-b").internal(["10.9.0.2"]).not_ready())
        .lease(agent_lease("node-a").renewed("2026-01-01T00:00:00.000000Z"))
        .service(
            svc("default", "web")
                .created("2025-12-01T00:00:00Z")
                .lb()
                .dual_stack()
                .cluster_ips(["10.43.0.80", "fd43::80"])
                .port("http", Tcp, 80, 8080)
                .port("dns", Udp, 53, 8080),
        )
        .slices(slices("web"))
        .service(
            svc("default", "local")
                .created("2025-12-01T00:01:00Z")
                .lb()
                .families(["IPv6", "IPv4"])
                .policy("PreferDualStack")
                .cluster_ips(["fd43::81", "10.43.0.81"])
                .etp_local()
                .port("http", Tcp, 81, 8080),
        )
        .slices(slices("local"))
        .service(
            svc("default", "other-class")
                .lb()
                .class("example.com/other")
                .families(["IPv4"])
                .bare_port(Tcp, 82),
        )
}

fn snapshot() -> String {
    cluster_dump().to_yaml()
}

fn agent(ns: &Netns, args: &[&str]) -> std::process::Output {
    Command::new("ip")
        .args([
            "netns",
            "exec",
            ns.name(),
            env!("CARGO_BIN_EXE_dualstack"),
            "agent",
        ])
        .args(args)
        .output()
        .unwrap()
}

fn write_snapshot(tag: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "dualstack-agent-test-{}-{tag}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, snapshot()).unwrap();
    path
}

#[test]
fn offline_agent_serves_cluster_and_local_services_on_both_families() {
    if !kernel_tests_enabled("offline_agent_serves_cluster_and_local_services_on_both_families") {
        return;
    }
    let mut lab = Lab::new().unwrap();
    lab.add_host("client").unwrap();
    lab.add_hosts("backend", 2).unwrap();
    let hosts = lab.hosts();
    let (client, b1, b2) = (&hosts[0], &hosts[1], &hosts[2]);
    let _e1 = EchoServer::start(&b1.ns, "b1", 8080).unwrap();
    let _e2 = EchoServer::start(&b2.ns, "b2", 8080).unwrap();
    // Something else's table on the node, which we must never touch.
    lab.node
        .exec("nft", &["add", "table", "inet", "someone-else"])
        .unwrap();

    let path = write_snapshot("serve");
    let file = path.to_str().unwrap();
    let out = agent(
        &lab.node,
        &[
            "--node",
            "node-a",
            "--snapshot",
            file,
            "--once",
            "--now",
            NOW,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "agent failed: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("node node-a: table inet dualstack: full sync: 3 frontend(s)"),
        "{stdout}"
    );
    assert!(!stdout.contains("other-class"), "{stdout}");

    // ETP Cluster: both backends reached over both families, masqueraded to the node.
    for family in Family::BOTH {
        let to = SocketAddr::new(client.node_addr(family), 80);
        let mut seen = std::collections::BTreeSet::new();
        for _ in 0..40 {
            let reply = tcp_request(&client.ns, to, TIMEOUT).unwrap();
            let backend = if reply.server == "b1" { b1 } else { b2 };
            assert_eq!(
                reply.peer,
                backend.node_addr(family),
                "{family}: masqueraded"
            );
            seen.insert(reply.server);
            if seen.len() == 2 {
                break;
            }
        }
        assert_eq!(seen.len(), 2, "{family}: both backends answer");
        let reply = udp_request(
            &client.ns,
            SocketAddr::new(client.node_addr(family), 53),
            TIMEOUT,
        )
        .unwrap();
        assert!(
            ["b1", "b2"].contains(&reply.server.as_str()),
            "{family} udp"
        );
    }

    // ETP Local: only the endpoint on node-a, and it sees the client's own address.
    for family in Family::BOTH {
        let to = SocketAddr::new(client.node_addr(family), 81);
        for _ in 0..6 {
            let reply = tcp_request(&client.ns, to, TIMEOUT).unwrap();
            assert_eq!(reply.server, "b1", "{family}: local endpoint only");
            assert_eq!(
                reply.peer,
                client.addr(family),
                "{family}: client address kept"
            );
        }
    }

    // The other class's port is not ours: nothing answers there.
    assert!(
        tcp_request(
            &client.ns,
            SocketAddr::new(client.node_addr(Family::V4), 82),
            TIMEOUT
        )
        .is_err()
    );

    // A second run with the same input keeps serving (idempotent full sync). Without --now
    // it decides as of the dump (its newest Lease renewal), not the wall clock, which would
    // find every agent Lease of an old dump expired and program nothing.
    let again = agent(
        &lab.node,
        &["--node", "node-a", "--snapshot", file, "--once"],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&again.stdout),
        String::from_utf8_lossy(&again.stderr),
    );
    assert!(again.status.success(), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("full sync: 3 frontend(s)"),
        "{stdout}\n{stderr}"
    );
    assert!(
        stderr.contains("newest Lease renewal in the dump"),
        "{stderr}"
    );
    tcp_request(
        &client.ns,
        SocketAddr::new(client.node_addr(Family::V6), 80),
        TIMEOUT,
    )
    .unwrap();

    // --cleanup removes our table and nothing else.
    let clean = agent(&lab.node, &["--cleanup"]);
    assert!(
        clean.status.success(),
        "{}",
        String::from_utf8_lossy(&clean.stderr)
    );
    let tables = lab.node.exec("nft", &["list", "tables"]).unwrap();
    assert!(!tables.contains("inet dualstack\n"), "{tables}");
    assert!(tables.contains("inet someone-else"), "{tables}");
    let again = agent(&lab.node, &["--cleanup"]);
    assert!(again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stdout).contains("is not present: nothing to do"),
        "{}",
        String::from_utf8_lossy(&again.stdout)
    );
    assert!(
        tcp_request(
            &client.ns,
            SocketAddr::new(client.node_addr(Family::V4), 80),
            TIMEOUT
        )
        .is_err()
    );
    let _ = std::fs::remove_file(path);
}

/// The same cluster dumped before the agent was installed: no agent Lease at all.
fn snapshot_without_agent() -> String {
    cluster_dump()
        .without("Lease", "dualstack-agent-node-a")
        .to_yaml()
}

#[test]
fn offline_agent_counts_itself_live_and_says_why_it_programs_nothing() {
    if !kernel_tests_enabled("offline_agent_counts_itself_live_and_says_why_it_programs_nothing") {
        return;
    }
    let mut lab = Lab::new().unwrap();
    lab.add_host("client").unwrap();
    lab.add_hosts("backend", 2).unwrap();
    let hosts = lab.hosts();
    let (client, b1) = (&hosts[0], &hosts[1]);
    let _e1 = EchoServer::start(&b1.ns, "b1", 8080).unwrap();
    let _e2 = EchoServer::start(&hosts[2].ns, "b2", 8080).unwrap();

    let path = std::env::temp_dir().join(format!(
        "dualstack-agent-test-{}-no-lease.yaml",
        std::process::id()
    ));
    std::fs::write(&path, snapshot_without_agent()).unwrap();
    let file = path.to_str().unwrap();

    // node-a has no agent Lease in the dump, but this agent is node-a's: it serves.
    let out = agent(
        &lab.node,
        &[
            "--node",
            "node-a",
            "--snapshot",
            file,
            "--once",
            "--now",
            NOW,
        ],
    );
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(
        stderr.contains(
            "note: node node-a: the dump has no agent Lease dualstack-system/dualstack-agent-node-a \
             (agent not installed yet?); this agent is the node's own, so the node counts as live"
        ),
        "{stderr}"
    );
    assert!(
        stdout.contains("node node-a: table inet dualstack: full sync: 3 frontend(s)"),
        "{stdout}"
    );
    assert!(!stdout.contains("nothing to program"), "{stdout}");
    for family in Family::BOTH {
        let reply = tcp_request(
            &client.ns,
            SocketAddr::new(client.node_addr(family), 81),
            TIMEOUT,
        )
        .unwrap();
        assert_eq!(
            reply.server, "b1",
            "{family}: served through the agent's rules"
        );
    }

    // node-b is not Ready: nothing is programmed, and the output says why, per Service.
    let out = agent(
        &lab.node,
        &[
            "--node",
            "node-b",
            "--snapshot",
            file,
            "--once",
            "--now",
            NOW,
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains(
            "node node-b: table inet dualstack: full sync: 0 frontend(s) (0 serving IPv4, 0 serving IPv6)\n  \
             nothing to program for node node-b:\n    \
             - node node-b: not Ready (Ready=False) (default/local, default/web)\n"
        ),
        "{stdout}"
    );
    assert!(
        tcp_request(
            &client.ns,
            SocketAddr::new(client.node_addr(Family::V4), 81),
            TIMEOUT
        )
        .is_err(),
        "node-b's empty table replaced node-a's"
    );

    // A class nobody here owns: nothing is ours, and that is what it says.
    let out = agent(
        &lab.node,
        &[
            "--node",
            "node-a",
            "--snapshot",
            file,
            "--once",
            "--now",
            NOW,
            "--class",
            "example.com/none",
        ],
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}");
    assert!(
        stdout.contains("    - no LoadBalancer Service is ours (ignored: default/local: "),
        "{stdout}"
    );
    let _ = agent(&lab.node, &["--cleanup"]);
    let _ = std::fs::remove_file(path);
}

#[test]
fn offline_agent_rejects_bad_input_without_touching_the_kernel() {
    if !kernel_tests_enabled("offline_agent_rejects_bad_input_without_touching_the_kernel") {
        return;
    }
    let node = Netns::new("agent-bad").unwrap();
    let path = write_snapshot("bad");
    let file = path.to_str().unwrap();
    let bad_yaml = std::env::temp_dir().join(format!(
        "dualstack-agent-test-{}-bad.txt",
        std::process::id()
    ));
    std::fs::write(
        &bad_yaml,
        "kind: Service\nspec: {ports: [{port: eighty}]}\n",
    )
    .unwrap();
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec![
                "--node",
                "node-z",
                "--snapshot",
                file,
                "--once",
                "--now",
                NOW,
            ],
            "node \"node-z\" is not in the snapshot (nodes: node-a, node-b)",
        ),
        (
            vec![
                "--node",
                "node-a",
                "--snapshot",
                "/nonexistent/x.yaml",
                "--once",
            ],
            "cannot read --snapshot /nonexistent/x.yaml",
        ),
        (
            vec![
                "--node",
                "node-a",
                "--snapshot",
                bad_yaml.to_str().unwrap(),
                "--once",
            ],
            "as a cluster dump",
        ),
        (
            vec![
                "--node",
                "node-a",
                "--table",
                "bad table",
                "--snapshot",
                file,
                "--once",
            ],
            "--table \"bad table\"",
        ),
    ];
    for (args, expected) in cases {
        let out = agent(&node, &args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
    let tables = node.exec("nft", &["list", "tables"]).unwrap();
    assert!(tables.trim().is_empty(), "nothing programmed: {tables}");
    let _ = std::fs::remove_file(path);
    let _ = std::fs::remove_file(bad_yaml);
}

/// Two Service names in one namespace whose generated chain ids collide (the same first 40
/// characters, a 32-bit hash found equal by a birthday search), with port `http`.
fn colliding_service_names() -> (String, String) {
    let base = "a".repeat(33);
    let mut seen = std::collections::HashMap::new();
    for i in 0u32..2_000_000 {
        let name = format!("{base}-{i}");
        let id = dualstack_ruleset::names::frontend_id(&format!("tenant/{name}:http"));
        if let Some(first) = seen.insert(id, name.clone()) {
            return (first, name);
        }
    }
    panic!("no 32-bit collision among 2,000,000 names");
}

#[test]
fn offline_agent_leaves_out_services_whose_chain_names_collide_and_serves_the_rest() {
    if !kernel_tests_enabled(
        "offline_agent_leaves_out_services_whose_chain_names_collide_and_serves_the_rest",
    ) {
        return;
    }
    let mut lab = Lab::new().unwrap();
    lab.add_host("client").unwrap();
    lab.add_hosts("backend", 2).unwrap();
    let hosts = lab.hosts();
    let client = &hosts[0];
    let _e1 = EchoServer::start(&hosts[1].ns, "b1", 8080).unwrap();
    let _e2 = EchoServer::start(&hosts[2].ns, "b2", 8080).unwrap();
    let (first, second) = colliding_service_names();
    let mut dump = cluster_dump();
    for (name, port) in [(&first, 8001), (&second, 8002)] {
        dump = dump
            .service(
                svc("tenant", name)
                    .created("2025-12-01T00:02:00Z")
                    .lb()
                    .dual_stack()
                    .port("http", Tcp, port, 8080),
            )
            .slices(
                slice_for("tenant", name)
                    .endpoint("10.0.2.2", "node-a")
                    .endpoint("10.0.3.2", "node-a"),
            );
    }
    let path = std::env::temp_dir().join(format!(
        "dualstack-agent-test-{}-collide.yaml",
        std::process::id()
    ));
    std::fs::write(&path, dump.to_yaml()).unwrap();
    let out = agent(
        &lab.node,
        &[
            "--node",
            "node-a",
            "--snapshot",
            path.to_str().unwrap(),
            "--once",
            "--now",
            NOW,
        ],
    );
    let _ = std::fs::remove_file(&path);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "one colliding pair must not stop the sync: {stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // The three Services of `cluster_dump` are programmed, the pair is named and left out.
    assert!(
        stdout.contains("full sync: 3 frontend(s)") && stdout.contains("left out"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("tenant/{first}:http"))
            && stdout.contains(&format!("tenant/{second}:http")),
        "{stdout}"
    );
    for family in Family::BOTH {
        let to = SocketAddr::new(client.node_addr(family), 80);
        assert!(tcp_request(&client.ns, to, TIMEOUT).is_ok(), "{to}");
        let left_out = SocketAddr::new(client.node_addr(family), 8001);
        assert!(
            tcp_request(&client.ns, left_out, TIMEOUT).is_err(),
            "{left_out}"
        );
    }
    agent(&lab.node, &["--cleanup"]);
}
