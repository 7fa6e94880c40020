//! A rejected change (issue #18): the kernel refuses a transaction, and the previous rules
//! stay in force, the failure is reported, and the next attempt repairs. Root only.
//!
//! * An incremental batch refused mid-way: the test puts a conflicting object in our table
//!   (a chain that jumps to the frontend chain of a Service about to be removed), so the
//!   batch's `delete chain` fails with EBUSY after its element deletions went through in
//!   the transaction. Nothing of the batch may be applied (the Service that was to be added
//!   is not served, the one to be removed still is); the `Syncer` then reports the refusal and
//!   replaces the table whole, which removes the intruder. Traffic to an unchanged Service
//!   sees none of it.
//! * A table name that collides: another process owns `table inet dualstack` (nft's
//!   `flags owner`, held by a live `nft -i`). `dualstack agent --once` is refused, says so,
//!   exits non-zero and leaves the other table alone; once the owner is gone, the next run
//!   programs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod reliability;

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use dualstack_agent::{FullReason, SyncKind, Syncer, node_ruleset};
use dualstack_dataplane::{Nft, Runner};
use dualstack_lb::{Config, Snapshot, Timestamp, decide};
use dualstack_ruleset::Frontend;
use dualstack_testbed::{Netns, kernel_tests_enabled};
use reliability::{Bed, Prober, broken, hold, snapshot};

const STABLE: u16 = 90;
const DOOMED: u16 = 91;
const NEWCOMER: u16 = 92;

fn services(ports: &[(&str, u16)]) -> Snapshot {
    let list: Vec<(String, u16)> = ports.iter().map(|(n, p)| (n.to_string(), *p)).collect();
    Snapshot::parse(&snapshot(&list)).unwrap()
}

fn now() -> Timestamp {
    "2026-01-01T00:00:10Z".parse().unwrap()
}

fn frontends_on(snapshot: &Snapshot, port: u16) -> Vec<Frontend> {
    let decision = decide(snapshot, &Config::default(), now());
    node_ruleset(&decision, "node-a", "dualstack")
        .frontends
        .into_iter()
        .filter(|f| f.port == port)
        .collect()
}

/// The name of the chain the IPv4 TCP frontend on `port` goes to.
fn frontend_chain(node: &Netns, port: u16) -> String {
    let table = node
        .exec("nft", &["list", "map", "inet", "dualstack", "nat-addr4"])
        .unwrap();
    let marker = format!("tcp . {port} : goto ");
    let at = table.find(&marker).unwrap_or_else(|| panic!("{table}"));
    table[at + marker.len()..]
        .split(|c: char| c == ',' || c.is_whitespace())
        .next()
        .unwrap()
        .to_string()
}

fn answers(bed: &Bed, port: u16) -> bool {
    let to = bed.frontends(port)[0];
    bed.client()
        .run_in(move || {
            std::net::TcpStream::connect_timeout(&to, Duration::from_millis(300)).is_ok()
        })
        .unwrap()
}

#[test]
fn incremental_batch_refused_midway_leaves_the_table_and_is_repaired() {
    if !kernel_tests_enabled("incremental_batch_refused_midway_leaves_the_table_and_is_repaired") {
        return;
    }
    let bed = Bed::new();
    let node = &bed.lab.node;
    let nft = Nft::new(Runner::in_netns(node.name()), "dualstack").unwrap();
    let mut syncer = Syncer::new(nft.clone(), "node-a");
    let before = services(&[("stable", STABLE), ("doomed", DOOMED)]);
    let after = services(&[("stable", STABLE), ("newcomer", NEWCOMER)]);
    syncer.sync(&before, &Config::default(), now()).unwrap();
    let targets = bed.frontends(STABLE);
    let mut held = hold(bed.client(), &targets, 200);

    // The conflicting object, in our table.
    let chain = frontend_chain(node, DOOMED);
    node.nft(&format!(
        "add chain inet dualstack intruder\nadd rule inet dualstack intruder jump {chain}\n"
    ))
    .unwrap();

    let (refused, report, stats) = std::thread::scope(|scope| {
        let prober = Prober::start(
            scope,
            bed.client(),
            &targets,
            &targets,
            Duration::from_millis(5),
        );
        std::thread::sleep(Duration::from_millis(300));
        // 1. The batch itself, as the Syncer would send it: refused as a whole.
        let refused = nft.apply_changes(
            &frontends_on(&before, DOOMED),
            &frontends_on(&after, NEWCOMER),
        );
        assert!(answers(&bed, DOOMED), "the refused batch removed nothing");
        assert!(!answers(&bed, NEWCOMER), "the refused batch added nothing");
        // 2. The Syncer: the same change, reported and repaired by a full transaction.
        let report = syncer.sync(&after, &Config::default(), now()).unwrap();
        std::thread::sleep(Duration::from_millis(300));
        (refused, report, prober.finish())
    });
    let error = refused.expect_err("the kernel refuses to delete a chain still jumped to");
    eprintln!("refused batch: {error}\nsyncer: {report}\nstable Service meanwhile: {stats}");
    assert!(
        error.to_string().contains("Device or resource busy"),
        "{error}"
    );
    match &report.kind {
        SyncKind::Full(FullReason::IncrementalFailed(why)) => {
            assert!(why.contains("Device or resource busy"), "{why}")
        }
        other => panic!("expected a full sync after the refusal, got {other:?}"),
    }
    assert!(
        report.to_string().contains("incremental update refused"),
        "{report}"
    );
    assert!(answers(&bed, NEWCOMER) && !answers(&bed, DOOMED));
    let table = node
        .exec("nft", &["list", "table", "inet", "dualstack"])
        .unwrap();
    assert!(
        !table.contains("intruder"),
        "the full sync replaced the table whole"
    );
    assert_eq!(
        syncer.resync().unwrap().map(|r| r.kind),
        Some(SyncKind::Unchanged)
    );
    assert_eq!(broken(&mut held), 0);
    assert_eq!(stats.failed(), 0, "{stats}");
}

#[test]
fn table_owned_by_another_process_is_refused_reported_and_retried() {
    if !kernel_tests_enabled("table_owned_by_another_process_is_refused_reported_and_retried") {
        return;
    }
    let bed = Bed::new();
    let node = &bed.lab.node;
    let path = std::env::temp_dir().join(format!(
        "dualstack-reliability-{}-owner.yaml",
        std::process::id()
    ));
    std::fs::write(&path, snapshot(&[("stable".to_string(), STABLE)])).unwrap();
    // Another owner of a table with our name: it lives as long as this nft process does.
    let mut owner = Command::new("ip")
        .args(["netns", "exec", node.name(), "nft", "-i"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = owner.stdin.take().unwrap();
    writeln!(stdin, "add table inet dualstack {{ flags owner; }}").unwrap();
    stdin.flush().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while !node
        .exec("nft", &["list", "tables"])
        .unwrap()
        .contains("inet dualstack")
    {
        assert!(
            std::time::Instant::now() < deadline,
            "owner never created its table"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let agent = || {
        Command::new("ip")
            .args([
                "netns",
                "exec",
                node.name(),
                env!("CARGO_BIN_EXE_dualstack"),
                "agent",
            ])
            .args([
                "--node",
                "node-a",
                "--now",
                "2026-01-01T00:00:10Z",
                "--once",
                "--snapshot",
            ])
            .arg(&path)
            .output()
            .unwrap()
    };
    let started = std::time::Instant::now();
    let out = agent();
    let took = started.elapsed();
    let stderr = String::from_utf8_lossy(&out.stderr);
    eprintln!(
        "refused run: exit {:?} in {} ms, {} lines of stderr",
        out.status.code(),
        took.as_millis(),
        stderr.lines().count()
    );
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("programming table inet dualstack"),
        "{stderr}"
    );
    assert!(stderr.contains("Operation not permitted"), "{stderr}");
    let foreign = node
        .exec("nft", &["list", "table", "inet", "dualstack"])
        .unwrap();
    assert!(
        !foreign.contains("chain"),
        "the other owner's table is untouched: {foreign}"
    );
    assert!(!answers(&bed, STABLE));

    // The owner goes away; the next attempt programs.
    drop(stdin);
    owner.wait().unwrap();
    let out = agent();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(answers(&bed, STABLE));
    let _ = std::fs::remove_file(path);
}
