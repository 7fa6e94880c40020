//! `dualstack agent` and `dualstack controller` flags and offline behaviour that need no root:
//! bad input exits 2 with a message naming the flag, kube-proxy mode touches nothing.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

fn run(args: &[&str]) -> (String, String, i32) {
    let out = Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .args(args)
        .env_remove("NODE_NAME")
        .env_remove("DUALSTACK_MODE")
        .output()
        .unwrap();
    (
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
        out.status.code().unwrap(),
    )
}

fn snapshot_file(tag: &str, text: &str) -> std::path::PathBuf {
    let path = std::env::temp_dir().join(format!(
        "dualstack-cli-agent-{}-{tag}.yaml",
        std::process::id()
    ));
    std::fs::write(&path, text).unwrap();
    path
}

#[test]
fn bad_flags_exit_2_naming_the_flag() {
    let cases: [(&[&str], &str); 5] = [
        (&["agent", "--once"], "--snapshot"),
        (&["agent", "--node", "n", "--snapshot", "x.yaml"], "--once"),
        (&["agent"], "--node (or NODE_NAME) is required"),
        (&["agent", "--node", "n", "--mode", "ipvs"], "ipvs"),
        (&["agent", "--cleanup", "--once"], "--cleanup"),
    ];
    for (args, expected) in cases {
        let (_, stderr, code) = run(args);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert!(stderr.contains(expected), "{args:?}: {stderr}");
    }
}

#[test]
fn kube_proxy_mode_reports_and_programs_nothing() {
    let path = snapshot_file(
        "kproxy",
        "kind: Node\nmetadata: {name: node-a}\nstatus: {conditions: [{type: Ready, status: \"True\"}]}\n",
    );
    let file = path.to_str().unwrap();
    // kube-proxy mode returns before any nft command: this runs without root.
    let (stdout, stderr, code) = run(&[
        "agent",
        "--node",
        "node-a",
        "--snapshot",
        file,
        "--once",
        "--mode",
        "kube-proxy",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(
        stdout,
        "node node-a: kube-proxy mode: nothing programmed (kube-proxy carries the traffic)\n"
    );
    let (_, stderr, code) = run(&[
        "agent",
        "--node",
        "node-z",
        "--snapshot",
        file,
        "--once",
        "--mode",
        "kube-proxy",
    ]);
    assert_eq!(code, 2);
    assert!(
        stderr.contains("--node: node \"node-z\" is not in the snapshot (nodes: node-a)"),
        "{stderr}"
    );
    let _ = std::fs::remove_file(path);
}

#[test]
fn controller_and_agent_document_their_flags() {
    let (stdout, _, code) = run(&["controller", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--class",
        "--default-class",
        "--mode",
        "--lease-namespace",
        "--health-addr",
        "POD_NAMESPACE",
    ] {
        assert!(stdout.contains(flag), "controller --help lacks {flag}");
    }
    let (stdout, _, code) = run(&["agent", "--help"]);
    assert_eq!(code, 0);
    for flag in [
        "--node",
        "--snapshot",
        "--once",
        "--cleanup",
        "--table",
        "--resync-seconds",
        "--exclude-interface",
        "NODE_NAME",
    ] {
        assert!(stdout.contains(flag), "agent --help lacks {flag}");
    }
}
