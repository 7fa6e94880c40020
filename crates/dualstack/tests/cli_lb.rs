//! `dualstack lb explain` on the realistic dumps in `crates/dualstack-lb/tests/fixtures/`:
//! snapshots of the text and JSON output, stdin, exit codes and bad input.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::Write as _;
use std::process::{Command, Output, Stdio};

const NOW: &str = "2025-04-10T10:00:00Z";

fn fixture(name: &str) -> String {
    format!(
        "{}/../dualstack-lb/tests/fixtures/{name}",
        env!("CARGO_MANIFEST_DIR")
    )
}

/// A file of `docs/examples/`.
fn example(name: &str) -> String {
    format!("{}/../../docs/examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn run(args: &[&str], stdin: Option<&str>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(text) = stdin {
        pipe.write_all(text.as_bytes()).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn explain(file: &str, extra: &[&str]) -> (String, String, i32) {
    let path = fixture(file);
    let mut args = vec!["lb", "explain", "-f", &path];
    args.extend_from_slice(extra);
    let out = run(&args, None);
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap(),
    )
}

/// (snapshot name, fixture, flags, expected exit code)
const CASES: [(&str, &str, &[&str], i32); 6] = [
    (
        "k3s_single_node_traefik",
        "k3s-single-node-traefik.yaml",
        &["--default-class", "--now", "2025-03-02T10:02:30Z"],
        0,
    ),
    (
        "three_nodes_etp_local",
        "three-nodes-etp-local.json",
        &["--now", NOW],
        0,
    ),
    (
        "ipv6_primary_kube_proxy",
        "ipv6-primary.yaml",
        &["--mode", "kube-proxy", "--now", NOW],
        0,
    ),
    (
        "ula_internal_live_global",
        "ula-internal-live-global.yaml",
        &["--default-class", "--now", NOW],
        0,
    ),
    (
        "port_443_conflict",
        "port-443-conflict.yaml",
        &["--default-class", "--now", NOW],
        1,
    ),
    (
        "k3s_upstream_cases",
        "k3s-upstream-cases.yaml",
        &["--now", NOW],
        0,
    ),
];

#[test]
fn explain_text_on_every_fixture() {
    for (name, file, flags, code) in CASES {
        let (stdout, stderr, status) = explain(file, flags);
        assert_eq!(status, code, "{file}: {stderr}");
        insta::assert_snapshot!(format!("{name}_text"), stdout);
    }
}

#[test]
fn explain_json_on_every_fixture() {
    for (name, file, flags, code) in CASES {
        let mut args = flags.to_vec();
        args.extend(["--output", "json"]);
        let (stdout, stderr, status) = explain(file, &args);
        assert_eq!(status, code, "{file}: {stderr}");
        let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
        // The shape the issue promises.
        for service in value["services"].as_array().unwrap() {
            for key in ["namespace", "name", "ingress", "conditions"] {
                assert!(service.get(key).is_some(), "{file}: no {key}");
            }
        }
        assert!(value["nodes"].is_array());
        insta::assert_snapshot!(format!("{name}_json"), stdout);
    }
}

#[test]
fn stdin_gives_the_same_output_as_the_file() {
    let path = fixture("ula-internal-live-global.yaml");
    let text = std::fs::read_to_string(&path).unwrap();
    let from_stdin = run(
        &["lb", "explain", "-f", "-", "--default-class", "--now", NOW],
        Some(&text),
    );
    let (from_file, _, _) = explain(
        "ula-internal-live-global.yaml",
        &["--default-class", "--now", NOW],
    );
    assert_eq!(from_stdin.status.code(), Some(0));
    assert_eq!(String::from_utf8(from_stdin.stdout).unwrap(), from_file);
}

#[test]
fn without_default_class_classless_services_are_not_ours() {
    let (stdout, _, status) = explain(
        "k3s-single-node-traefik.yaml",
        &["--now", "2025-03-02T10:02:30Z", "--output", "json"],
    );
    assert_eq!(status, 0);
    let value: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(value["services"], serde_json::json!([]));
    assert_eq!(value["ignored"][0]["name"], "traefik");
}

#[test]
fn cluster_ips_deleting_and_network_unavailable_nodes_and_per_pool_labels() {
    // Cases from K3s's and MetalLB's own tests (see the fixture's header).
    let (stdout, stderr, status) = explain("k3s-upstream-cases.yaml", &["--now", NOW]);
    assert_eq!(status, 0, "{stderr}");
    for expected in [
        // No ipFamilies: the ClusterIPs' families, IPv6 first, instead of InvalidSpec.
        "ipFamilyPolicy PreferDualStack, families [IPv6, IPv4]",
        "note: spec.ipFamilies is empty: using the families of spec.clusterIPs",
        "ingress: 2001:db8:1::12 (Proxy), 2001:db8:1::22 (Proxy), 192.168.1.12 (Proxy), 192.168.1.22 (Proxy)",
        "- edge-1 dropped: being deleted (deletionTimestamp 2025-04-10T09:58:00Z)",
        "- worker-1 dropped: NetworkUnavailable=True (CalicoIsDown): its pod network is not set up",
        // edge-2 is in pool edge through lbpool.svccontroller.k3s.cattle.io/edge=true.
        "+ edge-2 taken: IPv4 192.168.1.12",
        "- worker-2 dropped: not in pool \"edge\"",
    ] {
        assert!(
            stdout.contains(expected),
            "missing {expected:?} in:\n{stdout}"
        );
    }
}

#[test]
fn lease_expiry_follows_now() {
    // The single node's agent Lease was renewed at 10:02:20.5 for 40 s.
    let (stdout, _, status) = explain(
        "k3s-single-node-traefik.yaml",
        &["--default-class", "--now", "2025-03-02T10:05:00Z"],
    );
    assert_eq!(status, 1);
    assert!(stdout.contains("k3s-server dropped: agent Lease dualstack-system/dualstack-agent-k3s-server expired at 2025-03-02T10:03:00.512394Z"), "{stdout}");
    assert!(
        stdout.contains("LoadBalancerReady=False NoEligibleNodes"),
        "{stdout}"
    );
}

#[test]
fn bad_input_exits_2_with_a_message_naming_the_problem() {
    let cases: [(&[&str], Option<&str>, &str); 9] = [
        // Not a Kubernetes dump at all: nothing, `{}`, a K3s config.
        (
            &["lb", "explain", "-f", "-"],
            Some(""),
            "no Kubernetes object",
        ),
        (
            &["lb", "explain", "-f", "-"],
            Some("{}"),
            "no Kubernetes object",
        ),
        (
            &["lb", "explain", "-f", "-"],
            Some("cluster-cidr: 10.42.0.0/16,fd00:42::/56\n"),
            "no Kubernetes object",
        ),
        (
            &["lb", "explain", "-f", "/nonexistent/dump.yaml"],
            None,
            "cannot read --file /nonexistent/dump.yaml",
        ),
        (
            &["lb", "explain", "-f", "-"],
            Some("{\"kind\": "),
            "not valid JSON",
        ),
        (
            &["lb", "explain", "-f", "-"],
            Some(
                "kind: Service\nmetadata: {name: web, namespace: shop}\nspec:\n  ports:\n  - port: http\n",
            ),
            "Service shop/web",
        ),
        (
            &["lb", "explain", "-f", "-", "--now", "yesterday"],
            Some(""),
            "yesterday",
        ),
        (
            &["lb", "explain", "-f", "-", "--mode", "ipvs"],
            Some(""),
            "ipvs",
        ),
        (
            &["lb", "explain", "-f", "-"],
            Some("- a\n- b\n"),
            "expected an object or a List",
        ),
    ];
    for (args, stdin, expected) in cases {
        let out = run(args, stdin);
        let stderr = String::from_utf8(out.stderr).unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
        assert!(out.stdout.is_empty(), "{args:?}");
    }
}

#[test]
fn an_empty_cluster_explains_that_nothing_is_ours() {
    // What `kubectl get svc,endpointslices,nodes,leases -A -o yaml` prints for no objects.
    let empty_list = "apiVersion: v1\nitems: []\nkind: List\nmetadata:\n  resourceVersion: \"\"\n";
    let out = run(
        &["lb", "explain", "-f", "-", "--now", NOW],
        Some(empty_list),
    );
    assert_eq!(out.status.code(), Some(0));
    assert!(
        String::from_utf8(out.stdout)
            .unwrap()
            .contains("no Service is ours")
    );
}

#[test]
fn without_now_an_old_dump_is_decided_as_of_its_newest_lease_renewal() {
    // The fixture is from 2025: against the wall clock every agent Lease would have expired
    // and no node would serve. Without --now the decision is made as of the dump itself.
    let (dated, _, dated_code) = explain("port-443-conflict.yaml", &["--output", "json"]);
    let (_, stderr, _) = explain("port-443-conflict.yaml", &[]);
    assert!(
        stderr.contains("newest Lease renewal in the dump"),
        "{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&dated).unwrap();
    let now = report["now"].as_str().unwrap().to_string();
    let (explicit, _, explicit_code) = explain(
        "port-443-conflict.yaml",
        &["--output", "json", "--now", &now],
    );
    assert_eq!(dated, explicit);
    assert_eq!(dated_code, explicit_code);
    let served = report["services"]
        .as_array()
        .unwrap()
        .iter()
        .any(|s| !s["ingress"].as_array().unwrap().is_empty());
    assert!(
        served,
        "nodes of an old dump must not read as gone: {dated}"
    );
}

/// The example of docs/pools.md, as the docs run it: a prefix change in progress.
#[test]
fn explain_shows_the_prefix_host_part_and_lifetimes_behind_each_address() {
    let path = example("prefix-pool.yaml");
    let out = run(
        &[
            "lb",
            "explain",
            "-f",
            &path,
            "--now",
            "2026-12-01T10:00:30Z",
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{text}");
    for line in [
        "  ingress: 2001:db8:a:1::f0 (Proxy), 2001:db8:b:1::f0 (Proxy), 192.168.1.240 (Proxy)",
        "  address 2001:db8:a:1::f0 = prefix 2001:db8:a:1::/64 superseded (on node-1 eth0, node-2 eth0; since 2026-11-30T10:00:00Z, preferred until 2026-12-01T10:15:00Z, valid until 2026-12-01T10:30:00Z; 2001:db8:b:1::/64 superseded it and the grace time ends at 2026-12-01T10:15:00Z) + host ::f0",
        "  address 2001:db8:b:1::f0 = prefix 2001:db8:b:1::/64 preferred (on node-1 eth0, node-2 eth0; since 2026-12-01T10:00:00Z, preferred until 2026-12-01T14:00:00Z, valid until 2026-12-02T10:00:00Z) + host ::f0",
        "  event Normal PrefixAdded: 2001:db8:b:1::f0 published: prefix 2001:db8:b:1::/64 appeared on node-1, node-2; host part ::f0 kept, 2001:db8:a:1::f0 stays while its prefix is valid",
        "  announces 2001:db8:b:1::f0 (pool home) on eth0",
    ] {
        assert!(text.contains(line), "missing {line:?} in:\n{text}");
    }
    // After the grace time the old address is gone, and the Event says why.
    let out = run(
        &[
            "lb",
            "explain",
            "-f",
            &path,
            "--now",
            "2026-12-01T10:15:00Z",
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains("  ingress: 2001:db8:b:1::f0 (Proxy), 192.168.1.240 (Proxy)"),
        "{text}"
    );
    assert!(
        text.contains("event Normal PrefixWithdrawn: 2001:db8:a:1::f0 withdrawn: 2001:db8:b:1::/64 superseded it and the grace time ends at 2026-12-01T10:15:00Z"),
        "{text}"
    );
}

/// `doctor pool` on an address whose prefix has moved on names the pool and what the nodes
/// report instead of "in no pool".
#[test]
fn doctor_pool_explains_an_address_of_a_prefix_that_moved_on() {
    let path = example("prefix-pool.yaml");
    let out = run(
        &[
            "doctor",
            "pool",
            "2001:db8:c:1::f0",
            "-f",
            &path,
            "--now",
            "2026-12-01T10:00:30Z",
        ],
        None,
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("2001:db8:c:1::f0 has a host part of pool home, which follows the nodes' IPv6 prefix, but no node of it reports that prefix (they report: 2001:db8:a:1::/64, 2001:db8:b:1::/64)"),
        "{text}"
    );
}

/// Files over 1 MiB are decoded as they are read, smaller ones parsed whole: a fixture padded
/// past that size gives the same output, and a broken large file an error naming the place.
#[test]
fn a_large_dump_file_is_streamed_with_the_same_result() {
    let dir = std::env::temp_dir().join(format!("dualstack-cli-lb-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = std::fs::read_to_string(fixture("three-nodes-etp-local.json")).unwrap();
    let padding = " ".repeat(1_100_000);
    let big = dir.join("big.json");
    std::fs::write(&big, format!("{padding}\n{text}")).unwrap();
    let broken = dir.join("broken.json");
    std::fs::write(
        &broken,
        format!("{text}{padding}").replacen("\"kind\": \"Service\"", "\"kind\" \"Service\"", 1),
    )
    .unwrap();
    for format in ["text", "json"] {
        let (small, _, code) = explain("three-nodes-etp-local.json", &["-o", format, "--now", NOW]);
        assert_eq!(code, 0);
        let out = run(
            &[
                "lb",
                "explain",
                "-f",
                big.to_str().unwrap(),
                "-o",
                format,
                "--now",
                NOW,
            ],
            None,
        );
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(String::from_utf8(out.stdout).unwrap(), small, "{format}");
    }
    let out = run(&["lb", "explain", "-f", broken.to_str().unwrap()], None);
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("not valid JSON: expected `:` at line "),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}
