//! `dualstack doctor node` inside crafted network namespaces (root only): each namespace
//! breaks one node check, one passes them all. The binary runs inside the namespace
//! (`ip netns exec`), so it reads that namespace's sysctls, routes, addresses and rules.
//! Where a fix is a command that only touches the namespace (`sysctl -w`, `iptables`), the
//! test runs the printed fix and checks that the problem is gone: the fixes are copy-paste
//! correct. (The fixes' second lines persist settings in /etc and are never run here.)
//!
//! ```text
//!   router (10.0.0.1, fd00:1::1) ── eth0 ── node (10.0.0.2, fd00:1::2) ── the doctor
//! ```
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use dualstack_dataplane::{Nft, Runner};
use dualstack_ruleset::Ruleset;
use dualstack_testbed::builders::{self, Tcp, agent_lease, cluster, slice_for, svc};
use dualstack_testbed::{Netns, kernel_tests_enabled, veth};
use serde_json::Value;

const POD_CIDRS: &str = "10.42.0.0/16,fd12:3456:789a::/56";

struct Node {
    node: Netns,
    _router: Netns,
}

/// A node with both families on eth0, static default routes, forwarding on.
fn node() -> Node {
    let node = Netns::new("node").unwrap();
    let router = Netns::new("router").unwrap();
    veth(&node, "eth0", &router, "eth0").unwrap();
    node.add_addr("eth0", "10.0.0.2/24").unwrap();
    node.add_addr("eth0", "fd00:1::2/64").unwrap();
    router.add_addr("eth0", "10.0.0.1/24").unwrap();
    router.add_addr("eth0", "fd00:1::1/64").unwrap();
    node.default_route("10.0.0.1").unwrap();
    node.default_route("fd00:1::1").unwrap();
    node.enable_forwarding().unwrap();
    node.sysctl("net.ipv6.conf.default.forwarding", "1")
        .unwrap();
    Node {
        node,
        _router: router,
    }
}

/// Masquerade for both pod networks: IPv4 with iptables (read back by iptables-save),
/// IPv6 with a native nft table (read back by `nft -j list ruleset`).
fn masquerade(ns: &Netns) {
    ns.exec(
        "iptables",
        &[
            "-t",
            "nat",
            "-A",
            "POSTROUTING",
            "-s",
            "10.42.0.0/16",
            "!",
            "-d",
            "10.42.0.0/16",
            "-j",
            "MASQUERADE",
        ],
    )
    .unwrap();
    nft(
        ns,
        "table ip6 podnat {\n chain post {\n type nat hook postrouting priority srcnat; policy accept;\n ip6 saddr fd12:3456:789a::/56 ip6 daddr != fd12:3456:789a::/56 masquerade\n }\n}\n",
    );
}

fn nft(ns: &Netns, script: &str) {
    ns.nft(script).unwrap();
}

/// Runs `dualstack doctor node --output json …` inside `ns`: exit code and the checks by id.
fn doctor(ns: &Netns, extra: &[&str]) -> (i32, Value) {
    let mut args = vec![
        "netns",
        "exec",
        ns.name(),
        env!("CARGO_BIN_EXE_dualstack"),
        "doctor",
        "node",
        "--output",
        "json",
        "--pod-cidr",
        POD_CIDRS,
    ];
    args.extend_from_slice(extra);
    let out = Command::new("ip").args(&args).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    let json: Value = serde_json::from_str(&stdout)
        .unwrap_or_else(|e| panic!("{e}: {stdout} {}", String::from_utf8_lossy(&out.stderr)));
    (out.status.code().unwrap(), json)
}

fn check<'a>(report: &'a Value, id: &str) -> &'a Value {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no check {id} in {report:#}"))
}

fn status<'a>(report: &'a Value, id: &str) -> &'a str {
    check(report, id)["status"].as_str().unwrap()
}

/// The failed checks' ids.
fn failed(report: &Value) -> Vec<String> {
    report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] == "fail")
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

/// Runs the first line of a check's fix inside `ns` (`sh -c`), as a user would paste it.
fn apply_fix(ns: &Netns, report: &Value, id: &str, line_prefix: &str) {
    let fix = check(report, id)["fix"].as_str().unwrap().to_string();
    let line = fix
        .lines()
        .map(|l| l.trim_start_matches("right now: "))
        .find(|l| l.starts_with(line_prefix))
        .unwrap_or_else(|| panic!("no `{line_prefix}…` line in fix {fix:?}"));
    ns.exec("sh", &["-c", line]).unwrap();
}

#[test]
fn a_healthy_node_passes_every_check() {
    if !kernel_tests_enabled("a_healthy_node_passes_every_check") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    // our table, as the agent would program it
    Nft::new(Runner::in_netns(n.node.name()), "dualstack")
        .unwrap()
        .apply(&Ruleset::new("dualstack"))
        .unwrap();
    let (code, report) = doctor(&n.node, &[]);
    let not_ok: Vec<&Value> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|c| c["status"] != "ok")
        .collect();
    assert!(not_ok.is_empty(), "{not_ok:#?}");
    assert_eq!(code, 0);
    assert!(
        check(&report, "node.masquerade.ipv4")["message"]
            .as_str()
            .unwrap()
            .contains("nat POSTROUTING -s 10.42.0.0/16")
    );
    assert!(
        check(&report, "node.masquerade.ipv6")["message"]
            .as_str()
            .unwrap()
            .contains("nft ip6 podnat post")
    );
    assert!(
        check(&report, "node.table")["message"]
            .as_str()
            .unwrap()
            .contains("all base chains present")
    );
    assert_eq!(
        check(&report, "node.address.ipv6")["message"],
        "fd00:1::2/64 on eth0"
    );
}

#[test]
fn forwarding_off_fails_and_the_fix_works() {
    if !kernel_tests_enabled("forwarding_off_fails_and_the_fix_works") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    n.node.sysctl("net.ipv4.ip_forward", "0").unwrap();
    n.node.sysctl("net.ipv6.conf.all.forwarding", "0").unwrap();
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        failed(&report),
        ["node.forwarding.ipv4", "node.forwarding.ipv6"]
    );
    apply_fix(&n.node, &report, "node.forwarding.ipv4", "sysctl -w");
    apply_fix(&n.node, &report, "node.forwarding.ipv6", "sysctl -w");
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!((code, failed(&report)), (0, vec![]));
}

#[test]
fn an_ra_default_route_with_accept_ra_1_on_a_forwarding_node_fails() {
    if !kernel_tests_enabled("an_ra_default_route_with_accept_ra_1_on_a_forwarding_node_fails") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    // What SLAAC leaves behind: the default route via the router's link-local address,
    // learned from a router advertisement (added by hand with `proto ra`).
    n.node.ip(&["-6", "route", "del", "default"]).unwrap();
    n.node
        .ip(&[
            "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0", "proto", "ra",
        ])
        .unwrap();
    n.node.sysctl("net.ipv6.conf.eth0.accept_ra", "1").unwrap();
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&report), ["node.ipv6.accept-ra"]);
    let c = check(&report, "node.ipv6.accept-ra");
    assert!(
        c["message"]
            .as_str()
            .unwrap()
            .contains("net.ipv6.conf.eth0.accept_ra = 1"),
        "{c}"
    );
    assert!(
        check(&report, "node.route.ipv6")["message"]
            .as_str()
            .unwrap()
            .contains("proto ra")
    );
    apply_fix(
        &n.node,
        &report,
        "node.ipv6.accept-ra",
        "sysctl -w net.ipv6.conf.eth0.accept_ra=2",
    );
    assert_eq!(
        n.node.read_sysctl("net.ipv6.conf.eth0.accept_ra").unwrap(),
        "2"
    );
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!((code, status(&report, "node.ipv6.accept-ra")), (0, "ok"));
}

#[test]
fn a_node_without_an_ipv6_address_fails() {
    if !kernel_tests_enabled("a_node_without_an_ipv6_address_fails") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    n.node
        .ip(&["-6", "addr", "del", "fd00:1::2/64", "dev", "eth0"])
        .unwrap();
    // the route via the router's link-local address stays possible without a global address
    n.node.ip(&["-6", "route", "flush", "default"]).ok();
    n.node
        .ip(&[
            "-6", "route", "add", "default", "via", "fe80::1", "dev", "eth0",
        ])
        .unwrap();
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!(code, 1);
    assert_eq!(failed(&report), ["node.address.ipv6"]);
    let fix = check(&report, "node.address.ipv6")["fix"].as_str().unwrap();
    assert!(
        fix.starts_with("ip -6 addr add <node-ipv6>/64 dev eth0"),
        "{fix}"
    );
    // with no default route at all, the route check fails too and names the interface
    n.node.ip(&["-6", "route", "flush", "default"]).ok();
    let (_, report) = doctor(&n.node, &[]);
    assert_eq!(failed(&report), ["node.route.ipv6", "node.address.ipv6"]);
}

#[test]
fn no_masquerade_fails_and_the_fix_works() {
    if !kernel_tests_enabled("no_masquerade_fails_and_the_fix_works") {
        return;
    }
    let n = node();
    // kube-proxy's mark-gated masquerade is not a pod masquerade
    n.node
        .exec("iptables", &["-t", "nat", "-N", "KUBE-POSTROUTING"])
        .unwrap();
    n.node
        .exec(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "KUBE-POSTROUTING",
                "-m",
                "mark",
                "!",
                "--mark",
                "0x4000/0x4000",
                "-j",
                "RETURN",
            ],
        )
        .unwrap();
    n.node
        .exec(
            "iptables",
            &[
                "-t",
                "nat",
                "-A",
                "KUBE-POSTROUTING",
                "-j",
                "MASQUERADE",
                "--random-fully",
            ],
        )
        .unwrap();
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!(code, 1);
    assert_eq!(
        failed(&report),
        ["node.masquerade.ipv4", "node.masquerade.ipv6"]
    );
    apply_fix(&n.node, &report, "node.masquerade.ipv4", "iptables ");
    apply_fix(&n.node, &report, "node.masquerade.ipv6", "ip6tables ");
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!((code, failed(&report)), (0, vec![]));
}

#[test]
fn k3s_flannel_gets_the_flannel_ipv6_masq_fix() {
    if !kernel_tests_enabled("k3s_flannel_gets_the_flannel_ipv6_masq_fix") {
        return;
    }
    let n = node();
    let dir = std::env::temp_dir().join(format!("dualstack-doctor-netns-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("config.yaml");
    std::fs::write(&config, "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\n").unwrap();
    let out = Command::new("ip")
        .args([
            "netns",
            "exec",
            n.node.name(),
            env!("CARGO_BIN_EXE_dualstack"),
            "doctor",
            "node",
            "--output",
            "json",
            "--k3s-config",
        ])
        .arg(&config)
        .output()
        .unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    let c = check(&report, "node.masquerade.ipv6");
    assert_eq!(c["status"], "fail");
    assert!(
        c["message"].as_str().unwrap().contains("config.yaml:1"),
        "{c}"
    );
    assert!(
        c["fix"]
            .as_str()
            .unwrap()
            .contains("flannel-ipv6-masq: true"),
        "{c}"
    );
}

#[test]
fn a_bridge_without_bridge_netfilter_fails() {
    if !kernel_tests_enabled("a_bridge_without_bridge_netfilter_fails") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    n.node
        .ip(&["link", "add", "cni0", "type", "bridge"])
        .unwrap();
    // br_netfilter's sysctls exist per namespace only when the module is loaded (we do not
    // load kernel modules in tests); either way the check must fail
    if n.node
        .read_sysctl("net.bridge.bridge-nf-call-ip6tables")
        .is_ok()
    {
        n.node
            .sysctl("net.bridge.bridge-nf-call-ip6tables", "0")
            .unwrap();
    }
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!(
        (code, failed(&report)),
        (1, vec!["node.bridge-netfilter".to_string()])
    );
    assert!(
        check(&report, "node.bridge-netfilter")["message"]
            .as_str()
            .unwrap()
            .contains("cni0")
    );
}

#[test]
fn an_inconsistent_table_of_ours_fails() {
    if !kernel_tests_enabled("an_inconsistent_table_of_ours_fails") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    Nft::new(Runner::in_netns(n.node.name()), "dualstack")
        .unwrap()
        .apply(&Ruleset::new("dualstack"))
        .unwrap();
    let (base, _) = dualstack_ruleset::nft::skeleton();
    nft(
        &n.node,
        &format!(
            "flush chain inet dualstack {0}; delete chain inet dualstack {0}",
            base[0]
        ),
    );
    let (code, report) = doctor(&n.node, &[]);
    assert_eq!((code, failed(&report)), (1, vec!["node.table".to_string()]));
    let c = check(&report, "node.table");
    assert!(c["message"].as_str().unwrap().contains(base[0]), "{c}");
    assert_eq!(
        c["fix"].as_str().unwrap().split("   ").next().unwrap(),
        "nft delete table inet dualstack"
    );
}

/// A dump in which node-a (this namespace's addresses) runs a live agent and two Services
/// have endpoints: `web` (port 80: two IPv4 backends, one IPv6) and `api` (port 443).
fn desired_dump() -> String {
    let mut dump = cluster()
        .node(
            builders::node("node-a")
                .internal(["10.0.0.2", "fd00:1::2"])
                .ready(),
        )
        .lease(agent_lease("node-a").renewed("2026-01-01T00:00:00.000000Z"));
    for (name, port, backends) in [
        ("web", 80, ["10.42.0.7", "10.42.0.8", "fd42::7"].as_slice()),
        ("api", 443, ["10.42.0.9", "fd42::9"].as_slice()),
    ] {
        let mut slices = slice_for("default", name);
        for a in backends {
            slices = slices.endpoint(a, "node-a");
        }
        dump = dump
            .service(
                svc("default", name)
                    .created("2025-12-01T00:00:00Z")
                    .lb()
                    .dual_stack()
                    .port("http", Tcp, port, 8080),
            )
            .slices(slices);
    }
    dump.to_yaml()
}

/// `dualstack agent --snapshot … --once --publish-ruleset …` inside `ns`.
fn offline_agent(ns: &Netns, dump: &std::path::Path, published: &std::path::Path) {
    let out = Command::new("ip")
        .args(["netns", "exec", ns.name(), env!("CARGO_BIN_EXE_dualstack")])
        .args([
            "agent",
            "--node",
            "node-a",
            "--once",
            "--now",
            "2026-01-01T00:00:10Z",
        ])
        .arg("--snapshot")
        .arg(dump)
        .arg("--publish-ruleset")
        .arg(published)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn message(report: &Value, id: &str) -> String {
    check(report, id)["message"].as_str().unwrap().to_string()
}

#[test]
fn the_doctor_compares_the_kernel_with_what_the_agent_wants() {
    if !kernel_tests_enabled("the_doctor_compares_the_kernel_with_what_the_agent_wants") {
        return;
    }
    let n = node();
    masquerade(&n.node);
    let dir = std::env::temp_dir().join(format!("dualstack-desired-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let dump = dir.join("dump.yaml");
    let published = dir.join("ruleset.json");
    std::fs::write(&dump, desired_dump()).unwrap();
    let desired = published.to_str().unwrap();

    // Nothing programmed yet: the table is absent though the agent wants one.
    let none = r#"{"node":"node-a","hash":"sha256:0000000000000000000000000000000000000000000000000000000000000000","generation":1,"since":"2026-01-01T00:00:10Z","ruleset":{"table":"dualstack","frontends":[]}}"#;
    std::fs::write(&published, none).unwrap();
    let (code, report) = doctor(&n.node, &["--desired", desired]);
    assert_eq!(
        (code, failed(&report)),
        (1, vec!["node.table.desired".to_string()])
    );
    assert!(
        message(&report, "node.table.desired").starts_with("table absent"),
        "{report:#}"
    );

    // The agent programs the kernel (netlink) and publishes; the doctor reads the table
    // with `nft -j` and recomputes the same hash.
    offline_agent(&n.node, &dump, &published);
    let want: Value = serde_json::from_str(&std::fs::read_to_string(&published).unwrap()).unwrap();
    let hash = want["hash"].as_str().unwrap();
    assert_eq!(
        want["ruleset"]["frontends"].as_array().unwrap().len(),
        2,
        "{want:#}"
    );
    let (code, report) = doctor(&n.node, &["--desired", desired]);
    assert_eq!(code, 0, "{report:#}");
    let m = message(&report, "node.table.desired");
    assert!(
        m.contains("matches what the agent on node-a wants") && m.contains(hash),
        "{m}"
    );
    assert!(m.contains("2 frontend(s)"), "{m}");

    // Tampering inside our table only: web loses its IPv6 DNAT target, api disappears.
    nft(
        &n.node,
        "delete element inet dualstack dnat-masq-addr6 { fd00:1::2 . tcp . 80 }\n",
    );
    let table = Nft::new(Runner::in_netns(n.node.name()), "dualstack").unwrap();
    let observed = table.observe().unwrap().unwrap();
    let mut script = String::new();
    for (map, key, _) in observed.elements.iter().chain(&observed.other_elements) {
        if key.ends_with(". 443") {
            script += &format!("delete element inet dualstack {map} {{ {key} }}\n");
        }
    }
    assert!(!script.is_empty());
    nft(&n.node, &script);
    let (code, report) = doctor(&n.node, &["--desired", desired]);
    assert_eq!(
        (code, failed(&report)),
        (1, vec!["node.table.desired".to_string()])
    );
    let m = message(&report, "node.table.desired");
    for text in [
        "differs from what the agent on node-a wants",
        &format!("agent {hash}"),
        "1 frontend(s) missing from the kernel: default/api:http tcp/443",
        "default/web:http tcp/80 on 10.0.0.2, fd00:1::2 differs: element dnat-masq-addr6 fd00:1::2 . tcp . 80 : fd42::7 . 8080 missing",
    ] {
        assert!(m.contains(text), "missing {text:?} in {m}");
    }
    // The self-consistency check alone does not see it.
    assert_eq!(status(&report, "node.table"), "ok");

    // A stray element of ours, not wanted by the agent.
    nft(
        &n.node,
        "add element inet dualstack dnat-addr4 { 10.0.0.2 . udp . 9999 : 10.42.0.1 . 53 }\n",
    );
    let (_, report) = doctor(&n.node, &["--desired", desired]);
    let m = message(&report, "node.table.desired");
    assert!(
        m.contains(
            "in the kernel that the agent does not want: 10.0.0.2 . udp . 9999 (in dnat-addr4)"
        ),
        "{m}"
    );

    // The agent repairs it (a full sync); the doctor is green again with the same hash.
    offline_agent(&n.node, &dump, &published);
    let again: Value = serde_json::from_str(&std::fs::read_to_string(&published).unwrap()).unwrap();
    assert_eq!(again["hash"], want["hash"]);
    let (code, report) = doctor(&n.node, &["--desired", desired]);
    assert_eq!(code, 0, "{report:#}");
    assert!(message(&report, "node.table.desired").contains("matches"));

    // The Lease form: hash and count only.
    let summary = format!(
        "{hash};frontends=2;generation=1;since={}",
        want["since"].as_str().unwrap()
    );
    let lease = dir.join("lease.yaml");
    std::fs::write(
        &lease,
        builders::to_yaml(&agent_lease("node-a").ruleset(&summary).build()),
    )
    .unwrap();
    let (code, report) = doctor(&n.node, &["--desired", lease.to_str().unwrap()]);
    assert_eq!(code, 0, "{report:#}");
    assert!(
        message(&report, "node.table.desired")
            .contains("Lease dualstack-system/dualstack-agent-node-a")
    );
    nft(
        &n.node,
        "delete element inet dualstack dnat-masq-addr6 { fd00:1::2 . tcp . 80 }\n",
    );
    let (code, report) = doctor(&n.node, &["--desired", lease.to_str().unwrap()]);
    assert_eq!(code, 1);
    assert!(
        message(&report, "node.table.desired").contains("--agent-url"),
        "{report:#}"
    );

    // Not published, and an agent that does not answer: warnings, not failures.
    let (code, report) = doctor(&n.node, &["--agent-url", "http://127.0.0.1:9"]);
    assert_eq!(status(&report, "node.table.desired"), "warn", "{report:#}");
    assert_eq!(
        code, 0,
        "only the table check could fail here, and it did not"
    );
    let _ = std::fs::remove_dir_all(&dir);
}
