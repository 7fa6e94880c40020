//! `dualstack doctor` flags, exit codes and the JSON shape (no root needed; the namespace
//! tests in `doctor_netns.rs` check the verdicts).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::{Command, Output};

use serde_json::Value;

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .env_remove("KUBECONFIG")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn bad_node_flags_exit_2_and_name_the_flag() {
    let cases: &[(&[&str], &str)] = &[
        (
            &["--pod-cidr", "10.42.0.0/33"],
            "--pod-cidr: `10.42.0.0/33`",
        ),
        (
            &["--pod-cidr", "10.42.0.0/16,fd12::1/56"],
            "did you mean fd12::/56",
        ),
        (&["--table", "no spaces"], "--table: `no spaces`"),
        (
            &["--k3s-config", "/nonexistent/config.yaml"],
            "/nonexistent/config.yaml: cannot read",
        ),
        (&["--output", "xml"], "invalid value 'xml'"),
        (
            &["--desired", "/nonexistent/want.json"],
            "cannot read --desired /nonexistent/want.json",
        ),
        (
            &["--desired", "-", "--agent-url", "http://127.0.0.1:9655"],
            "cannot be used with",
        ),
        (&["--node", "n1"], "--desired"),
    ];
    for (extra, want) in cases {
        let mut args = vec!["doctor", "node"];
        args.extend_from_slice(extra);
        let out = run(&args);
        assert_eq!(out.status.code(), Some(2), "{extra:?}: {}", stderr(&out));
        assert!(stderr(&out).contains(want), "{extra:?}: {}", stderr(&out));
        assert!(
            out.stdout.is_empty(),
            "{extra:?}: nothing is printed on bad input"
        );
    }
}

#[test]
fn a_bad_k3s_config_exits_2() {
    let dir = std::env::temp_dir().join(format!("dualstack-cli-doctor-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config.yaml");
    std::fs::write(&file, "cluster-cidr: 10.42.0.0/16,fd00:42::1/56\n").unwrap();
    let out = run(&["doctor", "node", "--k3s-config", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("cluster-cidr"), "{}", stderr(&out));
}

#[test]
fn node_json_has_every_check_with_a_fix_for_each_problem() {
    let out = run(&[
        "doctor",
        "node",
        "-o",
        "json",
        "--pod-cidr",
        "10.42.0.0/16,fd12:3456:789a::/56",
    ]);
    let code = out.status.code().unwrap();
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    let checks = json["checks"].as_array().unwrap();
    let ids: Vec<&str> = checks.iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert_eq!(
        ids,
        [
            "node.forwarding.ipv4",
            "node.forwarding.ipv6",
            "node.ipv6.accept-ra",
            "node.route.ipv4",
            "node.route.ipv6",
            "node.address.ipv4",
            "node.address.ipv6",
            "node.route.same-interface",
            "node.bridge-netfilter",
            "node.masquerade.ipv4",
            "node.masquerade.ipv6",
            "node.table",
            "node.table.desired",
        ]
    );
    for c in checks {
        let status = c["status"].as_str().unwrap();
        assert!(["ok", "warn", "fail"].contains(&status), "{c}");
        assert!(!c["message"].as_str().unwrap().is_empty(), "{c}");
        assert_eq!(c["fix"].is_string(), status != "ok", "{c}");
    }
    let any_failed = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(code, if any_failed { 1 } else { 0 }, "{json:#}");
}

#[test]
fn node_text_is_a_checklist() {
    let out = run(&[
        "doctor",
        "node",
        "--pod-cidr",
        "10.42.0.0/16,fd12:3456:789a::/56",
    ]);
    let text = String::from_utf8(out.stdout).unwrap();
    let first = text.lines().next().unwrap();
    assert!(
        first.starts_with("✓ node.forwarding.ipv4")
            || first.starts_with("✗ node.forwarding.ipv4")
            || first.starts_with("⚠ node.forwarding.ipv4"),
        "{text}"
    );
    assert!(text.lines().last().unwrap().ends_with("failed"), "{text}");
}

#[test]
fn cluster_kubeconfig_problems() {
    let out = run(&[
        "doctor",
        "cluster",
        "--kubeconfig",
        "/nonexistent/kubeconfig",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("--kubeconfig: /nonexistent/kubeconfig"),
        "{}",
        stderr(&out)
    );

    let out = run(&[
        "doctor",
        "cluster",
        "--pod-sample",
        "0",
        "--kubeconfig",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));

    let out = run(&[
        "doctor",
        "cluster",
        "--cluster-cidr",
        "10.42.0.0/8",
        "--kubeconfig",
        "x",
    ]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(stderr(&out).contains("--cluster-cidr"), "{}", stderr(&out));
}

#[test]
fn an_unreachable_api_server_is_an_error_not_bad_input() {
    let dir = std::env::temp_dir().join(format!("dualstack-cli-doctor-kc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("kubeconfig");
    // loopback port 1: nothing listens, the connection is refused at once
    std::fs::write(
        &file,
        "apiVersion: v1\nkind: Config\nclusters:\n- name: c\n  cluster:\n    server: http://127.0.0.1:1\ncontexts:\n- name: c\n  context:\n    cluster: c\n    user: u\ncurrent-context: c\nusers:\n- name: u\n  user:\n    token: t\n",
    )
    .unwrap();
    let out = run(&["doctor", "cluster", "--kubeconfig", file.to_str().unwrap()]);
    std::fs::remove_dir_all(&dir).unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    assert!(stderr(&out).contains("listing nodes"), "{}", stderr(&out));
}

/// `doctor pool` from a dump: the holder and the announcer, or why not, as exit codes.
#[test]
fn pool_names_holder_and_announcer_or_the_cause() {
    let dump = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../dualstack-lb/tests/fixtures/pools-three-nodes.yaml"
    );
    let ok = run(&["doctor", "pool", "192.168.1.243", "-f", dump]);
    let text = String::from_utf8_lossy(&ok.stdout).into_owned();
    assert_eq!(ok.status.code(), Some(0), "{text}{}", stderr(&ok));
    assert!(
        text.contains("held by kube-system/traefik (kept from status)"),
        "{text}"
    );
    assert!(text.contains("announced by node-3"), "{text}");

    let free = run(&["doctor", "pool", "192.168.1.246", "-f", dump, "-o", "json"]);
    assert_eq!(free.status.code(), Some(1), "{}", stderr(&free));
    let json: Value = serde_json::from_slice(&free.stdout).unwrap();
    assert_eq!(json["checks"][0]["id"], "pool.held");
    assert_eq!(json["checks"][0]["status"], "fail");

    let bad = run(&["doctor", "pool", "not-an-ip", "-f", dump]);
    assert_eq!(bad.status.code(), Some(2), "{}", stderr(&bad));
}
