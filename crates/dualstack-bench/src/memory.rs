//! `bench memory`: the peak resident memory of the offline agent
//! (`dualstack agent --node NODE --snapshot FILE --once`) holding a generated cluster dump
//! with N dual-stack LoadBalancer Services — the same parse, decide, render and apply path
//! the in-cluster agent runs. The agent runs inside a throwaway namespace (its nft table is
//! programmed there). While it runs, the bench polls `VmHWM` (peak resident set) of the agent
//! process and of the `nft` process it starts, from `/proc`: the agent's own peak is what
//! the target is about; `nft`'s peak is reported next to it because a container memory
//! limit sees both.

use std::fmt::Write as _;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use serde::Serialize;
use serde_json::{Value, json};

use dualstack_testbed::Netns;

use crate::inside::inside;
use crate::machine::Machine;
use crate::workload::{BACKEND_PORT, Workload};
use crate::{BenchError, check_services};

/// The node the generated dump describes and the agent runs as.
pub const NODE: &str = "bench-node";
/// How often `/proc/<pid>/status` is read while the agent runs.
const POLL: std::time::Duration = std::time::Duration::from_millis(2);
/// When the generated agent Lease was renewed, and the decision time passed to the agent
/// (`--now`), so the Lease is live however old the dump is.
pub const RENEWED: &str = "2025-01-01T00:00:00Z";
/// The decision time passed to the measured agent (`--now`), 10 s after [`RENEWED`].
pub const NOW: &str = "2025-01-01T00:00:10Z";
/// The table the measured agent programs (inside its namespace).
const TABLE: &str = "dualstack-bench";

/// What to measure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemoryOptions {
    /// The Ns (numbers of Services in the dump) to measure at.
    pub services: Vec<usize>,
    /// The `dualstack` binary to measure (normally the running one).
    pub exe: PathBuf,
}

/// One measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryResult {
    /// How many Services the dump held.
    pub services: usize,
    /// The command line that was measured.
    pub command: String,
    /// Peak resident set size of the agent process itself (`VmHWM`).
    pub max_rss_kib: u64,
    /// `max_rss_kib` in MiB.
    pub max_rss_mib: f64,
    /// Peak resident set size of the `nft` child seen while polling (0 if none was seen).
    pub nft_child_max_rss_kib: u64,
    /// Size of the generated dump the agent read.
    pub snapshot_bytes: usize,
    /// How long the agent ran, start to exit.
    pub wall_ms: f64,
}

/// The whole report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MemoryReport {
    /// Which bench wrote the report (`memory`).
    pub bench: &'static str,
    /// The machine it ran on.
    pub machine: Machine,
    /// One measurement per N.
    pub results: Vec<MemoryResult>,
}

/// A `kubectl get svc,endpointslices,nodes -A -o json`-shaped dump: one dual-stack node
/// ([`NODE`], `10.0.1.1` and `fd00:1::1`) and `n` RequireDualStack LoadBalancer Services of
/// our class, each with one ready endpoint per family on that node, and the node's agent
/// Lease (renewed at [`RENEWED`]; decide at [`NOW`]).
pub fn snapshot_json(n: usize) -> Result<String, BenchError> {
    let w = Workload::sync(
        "10.0.1.1"
            .parse()
            .map_err(|_| BenchError::internal("address"))?,
        "fd00:1::1"
            .parse()
            .map_err(|_| BenchError::internal("address"))?,
    );
    let mut items: Vec<Value> = vec![
        json!({
            "apiVersion": "v1",
            "kind": "Node",
            "metadata": {"name": NODE, "uid": "00000000-0000-4000-8000-000000000000",
                         "labels": {"kubernetes.io/hostname": NODE}},
            "spec": {"podCIDRs": ["10.42.0.0/24", "fd42::/64"]},
            "status": {
                "addresses": [
                    {"type": "InternalIP", "address": w.node_v4.to_string()},
                    {"type": "InternalIP", "address": w.node_v6.to_string()},
                    {"type": "Hostname", "address": NODE}
                ],
                "conditions": [{"type": "Ready", "status": "True"}]
            }
        }),
        json!({
            "apiVersion": "coordination.k8s.io/v1",
            "kind": "Lease",
            "metadata": {"name": format!("dualstack-agent-{NODE}"), "namespace": "dualstack-system"},
            "spec": {"holderIdentity": NODE, "leaseDurationSeconds": 40, "renewTime": RENEWED}
        }),
    ];
    for i in 0..n {
        let port = Workload::port(i).ok_or(BenchError::Services(n))?;
        let name = format!("svc-{i}");
        let (v4, v6) = (
            w.backend(i, dualstack_addr::Family::V4).to_string(),
            w.backend(i, dualstack_addr::Family::V6).to_string(),
        );
        items.push(json!({
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": "bench", "uid": uid(1, i)},
            "spec": {
                "type": "LoadBalancer",
                "loadBalancerClass": "dualstack.io/lb",
                "ipFamilies": ["IPv4", "IPv6"],
                "ipFamilyPolicy": "RequireDualStack",
                "clusterIP": v4,
                "clusterIPs": [v4, v6],
                "externalTrafficPolicy": "Cluster",
                "ports": [{"name": "web", "port": port, "protocol": "TCP",
                           "targetPort": BACKEND_PORT}],
                "selector": {"app": name}
            },
            "status": {"loadBalancer": {}}
        }));
        for (family, pod) in [("IPv4", pod_v4(i)), ("IPv6", pod_v6(i))] {
            items.push(json!({
                "apiVersion": "discovery.k8s.io/v1",
                "kind": "EndpointSlice",
                "addressType": family,
                "metadata": {
                    "name": format!("{name}-{}", family.to_ascii_lowercase()),
                    "namespace": "bench",
                    "labels": {"kubernetes.io/service-name": name}
                },
                "endpoints": [{
                    "addresses": [pod],
                    "conditions": {"ready": true, "serving": true, "terminating": false},
                    "nodeName": NODE
                }],
                "ports": [{"name": "web", "port": BACKEND_PORT, "protocol": "TCP"}]
            }));
        }
    }
    let list = json!({"apiVersion": "v1", "kind": "List", "items": items,
                      "metadata": {"resourceVersion": ""}});
    serde_json::to_string(&list).map_err(|e| BenchError::Measurement(e.to_string()))
}

fn uid(kind: u32, i: usize) -> String {
    format!("{kind:08x}-0000-4000-8000-{i:012x}")
}

/// Pod `i`'s IPv4 address in `10.42.0.0/16` (host part from 1).
fn pod_v4(i: usize) -> String {
    let h = i + 1;
    format!("10.42.{}.{}", (h >> 8) & 0xff, h & 0xff)
}

/// Pod `i`'s IPv6 address in `fd42::/64`.
fn pod_v6(i: usize) -> String {
    let mut s = String::from("fd42::");
    let _ = write!(s, "{:x}", i + 1);
    s
}

/// Measures the agent at every N.
pub fn run(options: &MemoryOptions) -> Result<MemoryReport, BenchError> {
    check_services(&options.services)?;
    let machine = Machine::describe();
    let mut results = Vec::new();
    for &n in &options.services {
        results.push(one(n, &options.exe)?);
    }
    Ok(MemoryReport {
        bench: "memory",
        machine,
        results,
    })
}

fn one(n: usize, exe: &Path) -> Result<MemoryResult, BenchError> {
    let text = snapshot_json(n)?;
    let file =
        std::env::temp_dir().join(format!("dualstack-bench-{}-{n}.json", std::process::id()));
    std::fs::write(&file, &text).map_err(|source| BenchError::Io {
        what: format!("write {}", file.display()),
        source,
    })?;
    let args: Vec<String> = vec![
        "agent".into(),
        "--node".into(),
        NODE.into(),
        "--snapshot".into(),
        file.display().to_string(),
        "--once".into(),
        "--now".into(),
        NOW.into(),
        "--table".into(),
        TABLE.into(),
    ];
    let command = format!("dualstack {}", args.join(" "));
    let exe = exe.to_path_buf();
    let ns = Netns::new("bench-memory")?;
    let measured = inside(&ns, move || {
        let t = Instant::now();
        let mut child = Command::new(&exe)
            .args(&args)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|source| BenchError::Io {
                what: format!("run {}", exe.display()),
                source,
            })?;
        let (mut own, mut nft) = (0, 0);
        let status = loop {
            own = own.max(vm_hwm_kib(child.id()).unwrap_or(0));
            for c in children(child.id()) {
                nft = nft.max(vm_hwm_kib(c).unwrap_or(0));
            }
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) => std::thread::sleep(POLL),
                Err(source) => {
                    return Err(BenchError::Io {
                        what: "wait for the agent".to_string(),
                        source,
                    });
                }
            }
        };
        let wall = t.elapsed();
        let mut stderr = String::new();
        if let Some(mut e) = child.stderr.take() {
            let _ = e.read_to_string(&mut stderr);
        }
        if !status.success() || own == 0 {
            return Err(BenchError::Measurement(format!(
                "the agent failed ({status}): {}",
                stderr.trim()
            )));
        }
        Ok((own, nft, wall))
    });
    let _ = std::fs::remove_file(&file);
    let (kib, nft_kib, wall) = measured?;
    Ok(MemoryResult {
        services: n,
        command,
        max_rss_kib: kib,
        max_rss_mib: (kib as f64 / 1024.0 * 10.0).round() / 10.0,
        nft_child_max_rss_kib: nft_kib,
        snapshot_bytes: text.len(),
        wall_ms: crate::stats::ms(wall),
    })
}

/// `VmHWM` (peak resident set, KiB) of a live process.
fn vm_hwm_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    vm_hwm(&status)
}

/// The `VmHWM:   N kB` line of `/proc/<pid>/status`.
pub fn vm_hwm(status: &str) -> Option<u64> {
    status.lines().find_map(|l| {
        l.strip_prefix("VmHWM:")
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
    })
}

/// The direct children of a process.
fn children(pid: u32) -> Vec<u32> {
    std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
        .map(|s| {
            s.split_whitespace()
                .filter_map(|p| p.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_proc_status() {
        let status =
            "Name:\tdualstack\nVmPeak:\t  20000 kB\nVmHWM:\t    8108 kB\nVmRSS:\t 8000 kB\n";
        assert_eq!(vm_hwm(status), Some(8108));
        assert_eq!(vm_hwm("Name:\tx\n"), None);
    }

    #[test]
    fn generated_dump_gives_one_frontend_per_service() {
        use dualstack_lb::{Config, Snapshot, Timestamp, decide};
        for n in [1, 300] {
            let snapshot = Snapshot::parse(&snapshot_json(n).unwrap()).unwrap();
            let now: Timestamp = NOW.parse().unwrap();
            let decision = decide(&snapshot, &Config::default(), now);
            let frontends = decision.frontends_for(NODE);
            assert_eq!(frontends.len(), n, "{n} services");
            assert!(frontends.iter().all(|f| f.served_families().len() == 2));
            assert!(!decision.has_problems());
        }
    }

    #[test]
    fn pod_addresses_are_distinct() {
        let v4: std::collections::BTreeSet<String> = (0..20_000).map(pod_v4).collect();
        let v6: std::collections::BTreeSet<String> = (0..20_000).map(pod_v6).collect();
        assert_eq!((v4.len(), v6.len()), (20_000, 20_000));
    }
}
