//! `dualstack demo` as a test: it must pass (every flow as predicted), leave no namespace or
//! table behind — after a normal run, after SIGINT, and after `--keep` + `--cleanup` — and
//! refuse to run without root (exit 2, nothing changed).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::process::CommandExt as _;
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use dualstack_testbed::{is_root, kernel_tests_enabled};

/// The demo uses fixed namespace names: one demo at a time.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

const PREFIX: &str = "dsdemo-";

fn demo(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .arg("demo")
        .args(args)
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn our_namespaces() -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    text(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect()
}

/// The host's own nftables tables (the demo must never add one here).
fn host_tables() -> String {
    text(
        &Command::new("nft")
            .args(["list", "tables"])
            .output()
            .unwrap()
            .stdout,
    )
}

fn lock() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

#[test]
fn demo_passes_and_leaves_nothing_behind() {
    if !kernel_tests_enabled("demo_passes_and_leaves_nothing_behind") {
        return;
    }
    let _guard = lock();
    assert_eq!(
        our_namespaces(),
        Vec::<String>::new(),
        "left over from before"
    );
    let tables = host_tables();
    let started = Instant::now();
    let out = demo(&["--show-rules", "node-2"]);
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(started.elapsed() < Duration::from_secs(30), "takes seconds");
    assert!(stdout.contains("18 of 18 flows as predicted ✓"), "{stdout}");
    // The pool Service, announced by one node, found by the client's own ARP / ND.
    assert!(
        stdout.contains("demo/web-vip · announced by node-2"),
        "{stdout}"
    );
    assert_eq!(
        stdout.matches("  ✓ 192.0.2.240: ").count()
            + stdout.matches("  ✓ 2001:db8:1::f1: ").count(),
        2,
        "{stdout}"
    );
    assert!(!stdout.contains('✗'), "{stdout}");
    // The live global address reported by node-1's agent is what gets advertised.
    assert!(
        stdout.contains("2001:db8:1::11  ipMode Proxy  (node-1, agent: global)"),
        "{stdout}"
    );
    // Local kept the client address; the conflict is reported; the ruleset of node-2 shown.
    assert!(
        stdout.contains("api-1 saw 2001:db8:1::100 (the client)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dualstack.io/PortConflict=True PortConflict"),
        "{stdout}"
    );
    assert!(
        stdout.contains("Rules the agent programmed on node-2"),
        "{stdout}"
    );
    // node-2's only 8443/tcp frontend (one backend per family) is a DNAT map element.
    assert!(
        stdout.contains("2001:db8:1::12 . tcp . 8443 : 2001:db8:42:2::50 . 9443"),
        "{stdout}"
    );
    assert!(stdout.contains("Removed everything"), "{stdout}");
    assert_eq!(our_namespaces(), Vec::<String>::new());
    assert_eq!(host_tables(), tables, "the host's tables changed");
}

#[test]
fn sigint_removes_everything() {
    if !kernel_tests_enabled("sigint_removes_everything") {
        return;
    }
    let _guard = lock();
    let child = Command::new(env!("CARGO_BIN_EXE_dualstack"))
        .arg("demo")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // The first namespace exists only after the signal handlers are installed.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !Path::new("/run/netns/dsdemo-lan").exists() {
        assert!(Instant::now() < deadline, "the demo never started building");
        std::thread::sleep(Duration::from_millis(2));
    }
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(
        stderr.contains("everything the demo created was removed"),
        "{stderr}"
    );
    assert_eq!(our_namespaces(), Vec::<String>::new());
}

#[test]
fn keep_leaves_a_working_topology_and_cleanup_removes_it() {
    if !kernel_tests_enabled("keep_leaves_a_working_topology_and_cleanup_removes_it") {
        return;
    }
    let _guard = lock();
    let out = demo(&["--keep"]);
    let stdout = text(&out.stdout);
    let kept = our_namespaces();
    let pids = text(
        &Command::new("ip")
            .args(["netns", "pids", "dsdemo-web-1"])
            .output()
            .unwrap()
            .stdout,
    );
    // Clean up before asserting, so a failure does not leave the namespaces behind.
    let cleanup = demo(&["--cleanup"]);
    let cleaned = text(&cleanup.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", text(&out.stderr));
    assert!(stdout.contains("Kept for exploring"), "{stdout}");
    assert!(stdout.contains("ip netns exec dsdemo-client"), "{stdout}");
    assert!(stdout.contains("dualstack demo --cleanup"), "{stdout}");
    assert_eq!(kept.len(), 9, "{kept:?}");
    assert!(!pids.trim().is_empty(), "the kept backend web-1 is running");
    assert_eq!(cleanup.status.code(), Some(0), "{}", text(&cleanup.stderr));
    assert!(
        cleaned.contains("removed namespace dsdemo-web-1 (stopped 1 backend process(es))"),
        "{cleaned}"
    );
    assert_eq!(our_namespaces(), Vec::<String>::new());
    for pid in pids.split_whitespace() {
        // Gone, or a zombie waiting for init to collect it: not running either way.
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat
            .rsplit_once(')')
            .map(|(_, s)| s.trim_start().to_string());
        assert!(
            state.is_none_or(|s| s.starts_with('Z') || s.starts_with('X')),
            "backend {pid} still runs: {stat}"
        );
    }
    let again = demo(&["--cleanup"]);
    assert_eq!(again.status.code(), Some(0));
    assert!(text(&again.stdout).contains("nothing to remove"));
}

#[test]
fn a_second_demo_does_not_touch_the_first() {
    if !kernel_tests_enabled("a_second_demo_does_not_touch_the_first") {
        return;
    }
    let _guard = lock();
    let kept = demo(&["--keep"]);
    assert_eq!(kept.status.code(), Some(0), "{}", text(&kept.stderr));
    let second = demo(&[]);
    let after_second = our_namespaces();
    let cleanup = demo(&["--cleanup"]);
    assert_eq!(second.status.code(), Some(1));
    let stderr = text(&second.stderr);
    assert!(
        stderr.contains("network namespace dsdemo-lan already exists")
            && stderr.contains("dualstack demo --cleanup"),
        "{stderr}"
    );
    assert_eq!(after_second.len(), 9, "the kept demo is intact");
    assert_eq!(cleanup.status.code(), Some(0));
    assert_eq!(our_namespaces(), Vec::<String>::new());
}

#[test]
fn without_root_it_says_so_and_exits_2() {
    let _guard = lock();
    let mut command = Command::new(env!("CARGO_BIN_EXE_dualstack"));
    command.arg("demo");
    if is_root() {
        // Run it as nobody.
        command.uid(65534).gid(65534);
    }
    let before = our_namespaces();
    let out = command.output().unwrap();
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("dualstack demo needs root"), "{stderr}");
    assert!(stderr.contains("nothing was changed"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(our_namespaces(), before);
}

#[test]
fn an_unknown_node_for_show_rules_is_bad_input() {
    let out = demo(&["--show-rules", "node-9"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr
            .contains("--show-rules \"node-9\": the demo has no such node (nodes: node-1, node-2)"),
        "{stderr}"
    );
}
