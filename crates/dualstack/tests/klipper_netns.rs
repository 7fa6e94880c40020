//! `dualstack klipper` in the svclb topology, with real IPv4 and IPv6 traffic (root only).
//!
//! ```text
//!  client (10.1.0.2, fd01::2) ─┐                        ┌─ svc: "ClusterIPs" 10.43.0.10, fd43::a
//!  other  (10.2.0.2, fd02::2) ─┤ host (node)            │  (echo servers on 8080)
//!                              ├─ portmap-style DNAT ───┤
//!                              │  :8443 → pod           │
//!                              └─ pod (10.42.0.5, fd42::5): dualstack klipper
//! ```
//! The host DNATs its hostPort to the pod as the CNI portmap plugin does; `dualstack klipper`
//! in the pod forwards to the ClusterIPs, which the host routes to the "service" namespace.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dualstack_addr::Family;
use dualstack_testbed::{EchoServer, Netns, kernel_tests_enabled, tcp_request, udp_request, veth};

const HOST_PORT: u16 = 8443;
const SVC_PORT: u16 = 8080;
const TIMEOUT: Duration = Duration::from_millis(700);

struct Svclb {
    host: Netns,
    pod: Netns,
    svc: Netns,
    client: Netns,
    other: Netns,
    _echo: EchoServer,
}

fn ip(s: &str) -> IpAddr {
    s.parse().unwrap()
}

fn link(a: &Netns, a_dev: &str, a_addrs: [&str; 2], b: &Netns, b_addrs: [&str; 2]) {
    veth(a, a_dev, b, "eth0").unwrap();
    for (aa, ba) in a_addrs.iter().zip(b_addrs) {
        a.add_addr(a_dev, aa).unwrap();
        b.add_addr("eth0", ba).unwrap();
        let gw = aa.split('/').next().unwrap();
        b.default_route(gw).unwrap();
    }
}

impl Svclb {
    fn new() -> Svclb {
        let host = Netns::new("host").unwrap();
        host.enable_forwarding().unwrap();
        let (pod, svc) = (Netns::new("pod").unwrap(), Netns::new("svc").unwrap());
        let (client, other) = (Netns::new("client").unwrap(), Netns::new("other").unwrap());
        link(
            &host,
            "c0",
            ["10.1.0.1/24", "fd01::1/64"],
            &client,
            ["10.1.0.2/24", "fd01::2/64"],
        );
        link(
            &host,
            "o0",
            ["10.2.0.1/24", "fd02::1/64"],
            &other,
            ["10.2.0.2/24", "fd02::2/64"],
        );
        link(
            &host,
            "p0",
            ["10.42.0.1/24", "fd42::1/64"],
            &pod,
            ["10.42.0.5/24", "fd42::5/64"],
        );
        // The "service" namespace owns exactly the two ClusterIPs and nothing else, so it
        // answers from them (as kube-proxy's reverse NAT makes a real Service do); the host
        // routes them over a point-to-point link.
        veth(&host, "s0", &svc, "eth0").unwrap();
        host.add_addr("s0", "10.99.0.1/24").unwrap();
        host.add_addr("s0", "fd99::1/64").unwrap();
        svc.add_addr("eth0", "10.43.0.10/32").unwrap();
        svc.add_addr("eth0", "fd43::a/128").unwrap();
        for (gw, fam) in [("10.99.0.1", "-4"), ("fd99::1", "-6")] {
            svc.ip(&[fam, "route", "add", gw, "dev", "eth0"]).unwrap();
            svc.ip(&[fam, "route", "add", "default", "via", gw, "dev", "eth0"])
                .unwrap();
        }
        host.ip(&["route", "add", "10.43.0.10/32", "dev", "s0"])
            .unwrap();
        host.ip(&["-6", "route", "add", "fd43::a/128", "dev", "s0"])
            .unwrap();
        // What the CNI portmap plugin does for a hostPort: DNAT to the pod, per family.
        let portmap = format!(
            "table inet portmap {{
                chain pre {{
                    type nat hook prerouting priority dstnat; policy accept;
                    fib daddr type local meta nfproto ipv4 meta l4proto {{ tcp, udp }} th dport {HOST_PORT} dnat ip to 10.42.0.5
                    fib daddr type local meta nfproto ipv6 meta l4proto {{ tcp, udp }} th dport {HOST_PORT} dnat ip6 to fd42::5
                }}
            }}"
        );
        nft(&host, &portmap);
        let echo = EchoServer::start(&svc, "svc", SVC_PORT).unwrap();
        Svclb {
            host,
            pod,
            svc,
            client,
            other,
            _echo: echo,
        }
    }

    /// The node address a client of `family` in `ns` dials.
    fn node(&self, from_other: bool, family: Family) -> SocketAddr {
        let a = match (from_other, family) {
            (false, Family::V4) => "10.1.0.1",
            (false, Family::V6) => "fd01::1",
            (true, Family::V4) => "10.2.0.1",
            (true, Family::V6) => "fd02::1",
        };
        SocketAddr::new(ip(a), HOST_PORT)
    }
}

fn nft(ns: &Netns, script: &str) {
    ns.nft(script).unwrap();
}

fn ruleset(ns: &Netns) -> String {
    ns.exec("nft", &["list", "ruleset"]).unwrap()
}

fn ready_file(tag: &str) -> PathBuf {
    std::env::temp_dir().join(format!(
        "dualstack-klipper-test-{}-{tag}/ready",
        std::process::id()
    ))
}

/// Starts `dualstack klipper` in the pod with `env`, and waits for its ready file.
fn start(pod: &Netns, env: &[(&str, &str)], ready: &PathBuf) -> Child {
    let _ = std::fs::remove_file(ready);
    let mut cmd = Command::new("ip");
    cmd.args([
        "netns",
        "exec",
        pod.name(),
        env!("CARGO_BIN_EXE_dualstack"),
        "klipper",
    ])
    .arg("--ready-file")
    .arg(ready)
    .env_clear()
    .env("PATH", std::env::var("PATH").unwrap_or_default())
    .envs(env.iter().copied())
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !ready.exists() {
        if let Some(status) = child.try_wait().unwrap() {
            let out = child.wait_with_output().unwrap();
            panic!(
                "klipper exited early ({status}): {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(Instant::now() < deadline, "klipper never became ready");
        std::thread::sleep(Duration::from_millis(20));
    }
    child
}

/// SIGTERM, then the exit status and the log.
fn stop(child: Child) -> (i32, String) {
    let pid = child.id().to_string();
    assert!(
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn reaches(lab: &Svclb, from_other: bool, family: Family, udp: bool) -> Option<IpAddr> {
    let ns = if from_other { &lab.other } else { &lab.client };
    let to = lab.node(from_other, family);
    let reply = if udp {
        udp_request(ns, to, TIMEOUT)
    } else {
        tcp_request(ns, to, TIMEOUT)
    };
    reply.ok().map(|r| {
        assert_eq!(r.server, "svc");
        r.peer
    })
}

fn pod_addr(family: Family) -> IpAddr {
    match family {
        Family::V4 => ip("10.42.0.5"),
        Family::V6 => ip("fd42::5"),
    }
}

#[test]
fn both_families_tcp_and_udp_through_host_pod_and_clusterips() {
    if !kernel_tests_enabled("klipper both_families_tcp_and_udp_through_host_pod_and_clusterips") {
        return;
    }
    let lab = Svclb::new();
    lab.pod.enable_forwarding().unwrap();
    let common = [
        ("SRC_PORT", "8443"),
        ("DEST_PORT", "8080"),
        ("DEST_IPS", "10.43.0.10 , fd43::a"),
    ];
    // Two containers in one pod, as K3s runs them: one per protocol, sharing the namespace.
    let tcp_env: Vec<_> = common
        .iter()
        .copied()
        .chain([("DEST_PROTO", "TCP")])
        .collect();
    let udp_env: Vec<_> = common
        .iter()
        .copied()
        .chain([("DEST_PROTO", "udp")])
        .collect();
    let (tcp_ready, udp_ready) = (ready_file("tcp"), ready_file("udp"));
    let host_rules = ruleset(&lab.host);
    let svc_rules = ruleset(&lab.svc);
    let tcp = start(&lab.pod, &tcp_env, &tcp_ready);
    let udp = start(&lab.pod, &udp_env, &udp_ready);

    for family in Family::BOTH {
        for is_udp in [false, true] {
            let peer = reaches(&lab, false, family, is_udp);
            // Masqueraded in the pod: the service sees the pod's address of that family.
            assert_eq!(peer, Some(pod_addr(family)), "{family} udp={is_udp}");
        }
    }

    // Stopping the UDP container removes its table only; TCP keeps working.
    let (code, log) = stop(udp);
    assert_eq!(code, 0, "{log}");
    assert!(!udp_ready.exists(), "ready file removed on exit");
    let rules = ruleset(&lab.pod);
    assert!(!rules.contains("dualstack-klipper-udp-8443"), "{rules}");
    assert!(rules.contains("dualstack-klipper-tcp-8443"), "{rules}");
    assert_eq!(
        reaches(&lab, false, Family::V6, true),
        None,
        "UDP no longer forwarded"
    );
    assert!(
        reaches(&lab, false, Family::V6, false).is_some(),
        "TCP still forwarded"
    );

    let (code, log) = stop(tcp);
    assert_eq!(code, 0, "{log}");
    assert_eq!(
        ruleset(&lab.pod).trim(),
        "",
        "pod namespace left without our rules"
    );
    assert_eq!(
        ruleset(&lab.host),
        host_rules,
        "the host's portmap table is not ours"
    );
    assert_eq!(ruleset(&lab.svc), svc_rules);
    assert!(
        log.contains("ipv4: forwarding tcp/8443 to 10.43.0.10:8080"),
        "{log}"
    );
    assert!(
        log.contains("ipv6: forwarding tcp/8443 to [fd43::a]:8080"),
        "{log}"
    );
}

#[test]
fn source_ranges_hold_each_family_to_its_own_ranges() {
    if !kernel_tests_enabled("klipper source_ranges_hold_each_family_to_its_own_ranges") {
        return;
    }
    let lab = Svclb::new();
    lab.pod.enable_forwarding().unwrap();
    let ready = ready_file("ranges");
    let base = [
        ("SRC_PORT", "8443"),
        ("DEST_PORT", "8080"),
        ("DEST_PROTO", "TCP"),
        ("DEST_IPS", "10.43.0.10,fd43::a"),
    ];

    // Only client's IPv4 address and other's IPv6 network are allowed.
    let env: Vec<_> = base
        .iter()
        .copied()
        .chain([("SRC_RANGES", "10.1.0.2/32 fd02::/64")])
        .collect();
    let k = start(&lab.pod, &env, &ready);
    assert!(
        reaches(&lab, false, Family::V4, false).is_some(),
        "client v4 allowed"
    );
    assert_eq!(
        reaches(&lab, false, Family::V6, false),
        None,
        "client v6 denied"
    );
    assert_eq!(
        reaches(&lab, true, Family::V4, false),
        None,
        "other v4 denied"
    );
    assert!(
        reaches(&lab, true, Family::V6, false).is_some(),
        "other v6 allowed"
    );
    let (code, log) = stop(k);
    assert_eq!(code, 0, "{log}");

    // IPv4 ranges only: every IPv6 client is refused (no bypass through the other family).
    let env: Vec<_> = base
        .iter()
        .copied()
        .chain([("SRC_RANGES", "10.0.0.0/8")])
        .collect();
    let k = start(&lab.pod, &env, &ready);
    assert!(reaches(&lab, true, Family::V4, false).is_some());
    assert_eq!(reaches(&lab, false, Family::V6, false), None);
    assert_eq!(reaches(&lab, true, Family::V6, false), None);
    let (code, log) = stop(k);
    assert_eq!(code, 0, "{log}");
    assert!(log.contains("from nobody"), "{log}");
}

#[test]
fn a_family_without_forwarding_is_skipped_and_the_other_still_served() {
    if !kernel_tests_enabled(
        "klipper a_family_without_forwarding_is_skipped_and_the_other_still_served",
    ) {
        return;
    }
    let lab = Svclb::new();
    lab.pod.sysctl("net.ipv4.ip_forward", "1").unwrap();
    lab.pod.sysctl("net.ipv6.conf.all.forwarding", "0").unwrap();
    let ready = ready_file("nofwd");
    let env = [
        ("SRC_PORT", "8443"),
        ("DEST_PORT", "8080"),
        ("DEST_PROTO", "TCP"),
        ("DEST_IPS", "10.43.0.10,fd43::a"),
    ];
    let k = start(&lab.pod, &env, &ready);
    assert_eq!(
        reaches(&lab, false, Family::V4, false),
        Some(pod_addr(Family::V4))
    );
    assert_eq!(reaches(&lab, false, Family::V6, false), None);
    let (code, log) = stop(k);
    assert_eq!(code, 0);
    assert!(
        log.contains("ipv6: skipped: net.ipv6.conf.all.forwarding is not 1"),
        "{log}"
    );
}

#[test]
fn a_restarted_container_replaces_its_rules_instead_of_duplicating_them() {
    if !kernel_tests_enabled(
        "klipper a_restarted_container_replaces_its_rules_instead_of_duplicating_them",
    ) {
        return;
    }
    let lab = Svclb::new();
    lab.pod.enable_forwarding().unwrap();
    let ready = ready_file("restart");
    let env = [
        ("SRC_PORT", "8443"),
        ("DEST_PORT", "8080"),
        ("DEST_PROTO", "TCP"),
        ("DEST_IPS", "10.43.0.10,fd43::a"),
    ];
    let mut first = start(&lab.pod, &env, &ready);
    let before = ruleset(&lab.pod);
    let table = "dualstack-klipper-tcp-8443";
    let programmed = table_handle(&lab.pod, table);
    let rules = rule_handles(&lab.pod, table);
    assert!(!rules.is_empty(), "the table has rules");
    // A crash: SIGKILL leaves the rules behind, as a container restart in the same pod would.
    first.kill().unwrap();
    first.wait().unwrap();
    assert!(ready.exists(), "a hard kill leaves the ready file behind");
    // The next start removes it at once, before it validates or programs anything: with a
    // bad environment it exits 2 and the stale file is gone.
    let bad = Command::new("ip")
        .args([
            "netns",
            "exec",
            lab.pod.name(),
            env!("CARGO_BIN_EXE_dualstack"),
            "klipper",
        ])
        .arg("--ready-file")
        .arg(&ready)
        .env_clear()
        .env("SRC_PORT", "nonsense")
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(!ready.exists(), "stale ready file removed at start");
    assert_eq!(ruleset(&lab.pod), before, "rules survive a hard kill");
    let mut second = start(&lab.pod, &env, &ready);
    assert_eq!(ruleset(&lab.pod), before, "same rules, nothing duplicated");
    // The table it found carried exactly its program: left in place (the same table
    // object, so no transaction ran and no conntrack entry was flushed).
    assert_eq!(
        (table_handle(&lab.pod, table), rule_handles(&lab.pod, table)),
        (programmed.clone(), rules.clone()),
        "an identical table is left untouched"
    );
    assert!(reaches(&lab, false, Family::V6, false).is_some());
    // Killed again and started with a changed program: the table is reprogrammed in place
    // (a full sync over a table in use keeps the table and its hooks, so no packet crosses
    // the change without a rule).
    second.kill().unwrap();
    second.wait().unwrap();
    let changed = [env[0], ("DEST_PORT", "8081"), env[2], env[3]];
    let third = start(&lab.pod, &changed, &ready);
    let replaced = ruleset(&lab.pod);
    assert_ne!(replaced, before, "a changed program is programmed");
    assert!(replaced.contains("8081"), "{replaced}");
    assert_eq!(
        table_handle(&lab.pod, table),
        programmed,
        "reprogrammed in place, not deleted and re-created"
    );
    assert_ne!(rule_handles(&lab.pod, table), rules, "reprogrammed");
    let (code, log) = stop(third);
    assert_eq!(code, 0, "{log}");
    assert_eq!(ruleset(&lab.pod).trim(), "");
}

/// The kernel's handles of every rule of `table inet <name>`, in listing order: a
/// transaction that reprograms the table (even in place) gives its rules new handles.
fn rule_handles(ns: &Netns, name: &str) -> Vec<String> {
    let listing = ns
        .exec("nft", &["-a", "list", "table", "inet", name])
        .unwrap();
    listing
        .lines()
        .filter(|l| !l.contains('{') && !l.trim_start().starts_with("type "))
        .filter_map(|l| l.split("# handle ").nth(1))
        .map(|h| h.trim().to_string())
        .collect()
}

/// The kernel's handle of `table inet <name>` (a new table object gets a new one).
fn table_handle(ns: &Netns, name: &str) -> String {
    let listing = ns
        .exec("nft", &["-a", "list", "table", "inet", name])
        .unwrap();
    let first = listing.lines().next().unwrap_or_default();
    first
        .split("# handle ")
        .nth(1)
        .unwrap_or_else(|| panic!("no handle in {first:?}"))
        .trim()
        .to_string()
}

#[test]
fn bad_environment_exits_2_naming_the_variable_and_programs_nothing() {
    if !kernel_tests_enabled(
        "klipper bad_environment_exits_2_naming_the_variable_and_programs_nothing",
    ) {
        return;
    }
    let pod = Netns::new("badpod").unwrap();
    pod.enable_forwarding().unwrap();
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[
                ("SRC_PORT", "99999"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "80"),
                ("DEST_IPS", "10.43.0.10"),
            ],
            "SRC_PORT=\"99999\"",
        ),
        (
            &[
                ("SRC_PORT", "80"),
                ("DEST_PROTO", "ICMP"),
                ("DEST_PORT", "80"),
                ("DEST_IPS", "10.43.0.10"),
            ],
            "DEST_PROTO=\"ICMP\"",
        ),
        (
            &[
                ("SRC_PORT", "80"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "80"),
                ("DEST_IPS", "10.43.0.10,fd43::zz"),
            ],
            "DEST_IPS entry \"fd43::zz\"",
        ),
        (
            &[
                ("SRC_PORT", "80"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "80"),
                ("DEST_IPS", "10.43.0.10"),
                ("SRC_RANGES", "10.0.0.0/8,garbage"),
            ],
            "SRC_RANGES entry \"garbage\"",
        ),
        (
            &[
                ("SRC_PORT", "80"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "80"),
            ],
            "no destination",
        ),
        // Destinations nothing can reach, and ports written in a form we do not guess at.
        (
            &[
                ("SRC_PORT", "8443"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "8443"),
                ("DEST_IPS", "::ffff:10.43.0.10"),
            ],
            "DEST_IPS entry \"::ffff:10.43.0.10\" is an IPv4-mapped IPv6 address",
        ),
        (
            &[
                ("SRC_PORT", "8443"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "8443"),
                ("DEST_IP", "127.0.0.1"),
            ],
            "DEST_IP entry \"127.0.0.1\" cannot be a destination (loopback address)",
        ),
        (
            &[
                ("SRC_PORT", "8443"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "8443"),
                ("DEST_IPS", "10.43.0.10"),
                ("DEST_IP6", "fe80::1"),
            ],
            "DEST_IP6 entry \"fe80::1\" cannot be a destination (link-local address)",
        ),
        (
            &[
                ("SRC_PORT", "8443"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "+8443"),
                ("DEST_IPS", "10.43.0.10"),
            ],
            "DEST_PORT=\"+8443\" is not a plain port number",
        ),
        (
            &[
                ("SRC_PORT", "08443"),
                ("DEST_PROTO", "TCP"),
                ("DEST_PORT", "8443"),
                ("DEST_IPS", "10.43.0.10"),
            ],
            "SRC_PORT=\"08443\" is not a plain port number",
        ),
    ];
    for (env, want) in cases {
        let out = Command::new("ip")
            .args([
                "netns",
                "exec",
                pod.name(),
                env!("CARGO_BIN_EXE_dualstack"),
                "klipper",
            ])
            .arg("--ready-file")
            .arg(ready_file("bad"))
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .envs(env.iter().copied())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{env:?}: {stderr}");
        assert!(stderr.contains(want), "{env:?}: {stderr}");
        assert_eq!(ruleset(&pod).trim(), "", "{env:?} programmed something");
        assert!(!ready_file("bad").exists());
    }
}
