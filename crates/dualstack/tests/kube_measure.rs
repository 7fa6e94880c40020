//! Figures for BENCHMARKS.md, against the real API server (`tests/kube/`) with the real
//! controller and agents (see `kube_lab`): not a pass/fail test, so it is `#[ignore]`d and run
//! by hand, as root:
//!
//! ```sh
//! cargo build --release -p dualstack
//! DUALSTACK_E2E_BIN=target/release/dualstack \
//!   cargo test -p dualstack --test kube_measure -- --ignored --nocapture
//! ```
//!
//! * Service creation → first status with ingress, per Service, from the API server's own
//!   audit log (request received → status PATCH completed; microseconds), 100 Services
//!   created one after another; median and 90th percentile.
//! * Agent address change → Service status (10 add/remove rounds of a global IPv6 address).
//! * Peak and current resident memory (`VmHWM`/`VmRSS`) of the controller and of one agent,
//!   with their watch caches, at 50 and at 1,000 Services.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_lab;

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use dualstack_testbed::{kernel_tests_enabled, kube_tests_enabled};
use kube_lab::{Lab, NS, ingress, service_yaml, slices_yaml};

fn micros(ts: &serde_json::Value) -> Option<i64> {
    let text = ts.as_str()?;
    let parsed: dualstack_lb::Timestamp = text.parse().ok()?;
    Some(parsed.unix_micros())
}

fn median(v: &mut [f64]) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn percentile(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * p).round() as usize;
    v[i]
}

/// `(VmHWM, VmRSS)` in KiB of a process.
fn memory(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

fn ports(tcp: u16) -> String {
    format!("  - {{name: http, port: {tcp}, protocol: TCP, targetPort: 8080}}\n")
}

/// Creates Services `svc-<from>..svc-<to>` (one port each, distinct) with endpoints on node-1.
fn create(lab: &Lab, from: u16, to: u16, one_by_one: bool) {
    let mut batch = String::new();
    for i in from..to {
        let name = format!("svc-{i}");
        let yaml = service_yaml(
            &name,
            "PreferDualStack",
            "[IPv4, IPv6]",
            "Cluster",
            &ports(10000 + i),
        ) + &slices_yaml(&name, &[&lab.nodes[0]], &[("http", "TCP")]);
        if one_by_one {
            lab.apply(&yaml);
        } else {
            batch += "---\n";
            batch += &yaml;
        }
    }
    if !one_by_one {
        lab.apply(&batch);
    }
}

fn wait_all_published(lab: &Lab, count: usize, limit: Duration) -> Duration {
    let start = Instant::now();
    loop {
        let list = lab
            .rt
            .block_on(lab.services().list(&Default::default()))
            .unwrap();
        let published = list
            .items
            .iter()
            .filter(|s| ingress(Some(s)).len() == 4)
            .count();
        if published >= count {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < limit,
            "{published} of {count} published after {limit:?}"
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
#[ignore = "measurement for BENCHMARKS.md; run by hand with --ignored --nocapture"]
fn measure_status_latency_convergence_and_memory() {
    if !kube_tests_enabled("kube_measure") || !kernel_tests_enabled("kube_measure") {
        return;
    }
    let mut lab = Lab::start(2);
    lab.start_controller("controller-a");
    std::thread::sleep(Duration::from_secs(2));

    // 1. Creation -> status, 100 Services one after another.
    create(&lab, 0, 100, true);
    wait_all_published(&lab, 100, Duration::from_secs(120));
    let mut created: HashMap<String, i64> = HashMap::new();
    let mut published: HashMap<String, i64> = HashMap::new();
    for e in lab.audit() {
        let name = e["objectRef"]["name"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if e["objectRef"]["resource"] != "services" || !name.starts_with("svc-") {
            continue;
        }
        if e["verb"] == "create"
            && e["stage"] == "ResponseComplete"
            && let Some(t) = micros(&e["requestReceivedTimestamp"])
        {
            created.insert(name.clone(), t);
        }
        if e["verb"] == "patch"
            && e["objectRef"]["subresource"] == "status"
            && e["stage"] == "ResponseComplete"
            && !published.contains_key(&name)
            && let Some(t) = micros(&e["stageTimestamp"])
        {
            published.insert(name, t);
        }
    }
    let mut latencies: Vec<f64> = created
        .iter()
        .filter_map(|(name, c)| Some((published.get(name)? - c) as f64 / 1000.0))
        .collect();
    assert_eq!(
        latencies.len(),
        100,
        "every Service has a create and a status PATCH"
    );
    let (med, p90) = (median(&mut latencies), percentile(&mut latencies, 0.9));
    eprintln!(
        "measure: creation -> status (100 Services, one by one): median {med:.0} ms, p90 {p90:.0} ms"
    );

    // 2. Memory at ~50 and 1,000 Services.
    let controller_pid = lab.controllers[0].1.id();
    let agent_pid = lab.nodes[0].agent.as_ref().unwrap().id();
    // Delete down to 50.
    for i in 50..100 {
        let _ = lab.api.kubectl(&[
            "-n",
            NS,
            "delete",
            "service",
            &format!("svc-{i}"),
            "--wait=false",
        ]);
    }
    std::thread::sleep(Duration::from_secs(5));
    let (c_hwm, c_rss) = memory(controller_pid);
    let (a_hwm, a_rss) = memory(agent_pid);
    eprintln!(
        "measure: 50 Services: controller VmRSS {} KiB (peak {} KiB), agent VmRSS {} KiB (peak {} KiB)",
        c_rss, c_hwm, a_rss, a_hwm
    );

    // 3. Address change -> status, 10 rounds.
    let global: IpAddr = "2001:db8:10::11".parse().unwrap();
    let mut rounds = Vec::new();
    for _ in 0..10 {
        let t = Instant::now();
        lab.nodes[0]
            .ns
            .add_addr("eth0", "2001:db8:10::11/64")
            .unwrap();
        lab.wait_service(
            "svc-0",
            Duration::from_secs(30),
            "with the new address",
            |s| ingress(s).contains(&global),
        );
        rounds.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        lab.nodes[0]
            .ns
            .ip(&["-6", "addr", "del", "2001:db8:10::11/64", "dev", "eth0"])
            .unwrap();
        lab.wait_service("svc-0", Duration::from_secs(30), "without it", |s| {
            !ingress(s).contains(&global)
        });
        rounds.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    eprintln!(
        "measure: node address added/removed -> status (20 changes): median {:.0} ms, max {:.0} ms",
        median(&mut rounds),
        rounds.iter().copied().fold(0.0, f64::max)
    );

    // 4. 1,000 Services at once.
    let t = Instant::now();
    create(&lab, 100, 1050, false);
    let took = wait_all_published(&lab, 1000, Duration::from_secs(600));
    eprintln!(
        "measure: 950 Services applied at once -> all 1,000 published: {:?} (apply {:?})",
        took,
        t.elapsed() - took
    );
    std::thread::sleep(Duration::from_secs(5));
    let (c_hwm, c_rss) = memory(controller_pid);
    let (a_hwm, a_rss) = memory(agent_pid);
    eprintln!(
        "measure: 1,000 Services: controller VmRSS {} KiB (peak {} KiB), agent VmRSS {} KiB (peak {} KiB)",
        c_rss, c_hwm, a_rss, a_hwm
    );
    assert!(lab.all_running().is_empty());
}
