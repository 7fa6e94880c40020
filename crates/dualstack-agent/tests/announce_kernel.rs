//! Pool addresses on a real L2 segment: a Linux bridge with a client, three nodes and a
//! backend, each in its own network namespace. The nodes are programmed and announce from
//! one decision; the client uses nothing but its kernel's ARP and neighbor discovery.
//!
//! Checked: TCP and UDP over both families reach each pool address through the announcing
//! node; the client's neighbor entry holds that node's MAC; traffic to a port no frontend
//! takes is dropped by the node's pool guard; a crafted unicast solicitation
//! is answered with a correct advertisement; the solicited-node group is joined (the
//! bridge's MLD snooping table lists it on the announcer's port); the address is on no
//! interface; and after the announcer stops and its node leaves the decision, another node
//! takes over and the client's entry moves by the unsolicited advertisement / gratuitous
//! ARP. Failover is timed per family (median of 10). No packet leaves the namespaces.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use dualstack_agent::announce::AnnounceStep;
use dualstack_announce::{Filter, Options, PacketSocket, frame, links};
use dualstack_dataplane::{Nft, Runner};
use dualstack_lb::{Config, Decision, Snapshot, Timestamp, decide};
use dualstack_testbed::{EchoServer, Netns, kernel_tests_enabled, tcp_request, udp_request, veth};

const NOW: &str = "2026-01-01T10:00:00Z";
const VIP4: &str = "192.0.2.200";
const VIP6: &str = "2001:db8:100::200";
const NODES: [&str; 3] = ["node-1", "node-2", "node-3"];

fn now() -> Timestamp {
    NOW.parse().unwrap()
}

fn node_ip(i: usize, v6: bool) -> String {
    if v6 {
        format!("2001:db8:100::1{}", i + 1)
    } else {
        format!("192.0.2.1{}", i + 1)
    }
}

struct Segment {
    lan: Netns,
    client: Netns,
    nodes: Vec<Netns>,
    _backend: Netns,
    _server: EchoServer,
}

fn attach(lan: &Netns, ns: &Netns, port: &str) {
    veth(ns, "eth0", lan, port).unwrap();
    lan.ip(&["link", "set", port, "master", "br0"]).unwrap();
}

fn segment() -> Segment {
    let lan = Netns::new("lan").unwrap();
    lan.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
    lan.ip(&["link", "set", "br0", "up"]).unwrap();
    let client = Netns::new("client").unwrap();
    attach(&lan, &client, "p-client");
    client.add_addr("eth0", "192.0.2.1/24").unwrap();
    client.add_addr("eth0", "2001:db8:100::1/64").unwrap();
    let mut nodes = Vec::new();
    for (i, _) in NODES.iter().enumerate() {
        let ns = Netns::new(&format!("node{}", i + 1)).unwrap();
        attach(&lan, &ns, &format!("p-node{}", i + 1));
        ns.add_addr("eth0", &format!("{}/24", node_ip(i, false)))
            .unwrap();
        ns.add_addr("eth0", &format!("{}/64", node_ip(i, true)))
            .unwrap();
        ns.enable_forwarding().unwrap();
        nodes.push(ns);
    }
    let backend = Netns::new("backend").unwrap();
    attach(&lan, &backend, "p-backend");
    backend.add_addr("eth0", "192.0.2.50/24").unwrap();
    backend.add_addr("eth0", "2001:db8:100::50/64").unwrap();
    let server = EchoServer::start(&backend, "backend", 8080).unwrap();
    Segment {
        lan,
        client,
        nodes,
        _backend: backend,
        _server: server,
    }
}

/// The cluster as the agents would see it; `live` are the nodes with a live agent Lease.
fn snapshot(live: &[bool; 3]) -> Snapshot {
    let mut docs = vec![format!(
        "kind: LoadBalancerPool\nmetadata: {{name: lan}}\nspec: {{addresses: [\"{VIP4}-192.0.2.209\", \"{VIP6}/125\"]}}\n"
    )];
    // The /125 skips its zero host part: the first IPv6 address handed out is ::201.
    for (i, name) in NODES.iter().enumerate() {
        docs.push(format!(
            "kind: Node\nmetadata: {{name: {name}}}\nstatus:\n  addresses: [{{type: InternalIP, address: {}}}, {{type: InternalIP, address: \"{}\"}}]\n  conditions: [{{type: Ready, status: \"True\"}}]\n",
            node_ip(i, false),
            node_ip(i, true)
        ));
        if live[i] {
            docs.push(format!(
                "kind: Lease\nmetadata: {{name: dualstack-agent-{name}, namespace: dualstack-system}}\nspec: {{holderIdentity: {name}, leaseDurationSeconds: 15, renewTime: \"{NOW}\"}}\n"
            ));
        }
    }
    docs.push(
        "kind: Service\nmetadata: {name: web, namespace: default, creationTimestamp: \"2026-01-01T09:00:00Z\"}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: dualstack.io/lb\n  ipFamilies: [IPv4, IPv6]\n  ipFamilyPolicy: RequireDualStack\n  ports: [{name: tcp, port: 80, protocol: TCP, targetPort: 8080}, {name: udp, port: 80, protocol: UDP, targetPort: 8080}]\n".to_string(),
    );
    for (family, addr) in [("IPv4", "192.0.2.50"), ("IPv6", "\"2001:db8:100::50\"")] {
        docs.push(format!(
            "kind: EndpointSlice\nmetadata: {{name: web-{family}, namespace: default, labels: {{kubernetes.io/service-name: web}}}}\naddressType: {family}\nendpoints: [{{addresses: [{addr}], conditions: {{ready: true}}}}]\nports: [{{name: tcp, port: 8080, protocol: TCP}}, {{name: udp, port: 8080, protocol: UDP}}]\n"
        ));
    }
    Snapshot::parse(&docs.join("---\n")).unwrap()
}

type Steps = Vec<Option<Arc<Mutex<AnnounceStep>>>>;

fn options() -> Options {
    Options {
        interval: Duration::from_secs(5),
        burst: 3,
        burst_gap: Duration::from_millis(200),
        poll: Duration::from_millis(20),
    }
}

/// Programs every node with a live agent and hands each its announcements.
fn converge(seg: &Segment, steps: &mut Steps, live: &[bool; 3]) -> Decision {
    let snapshot = snapshot(live);
    let config = Config::default();
    let decision = decide(&snapshot, &config, now());
    for (i, ns) in seg.nodes.iter().enumerate() {
        if !live[i] {
            steps[i] = None; // the agent is stopped: its announcer with it
            continue;
        }
        let nft = Nft::new(Runner::in_netns(ns.name()), "dualstack").unwrap();
        dualstack_agent::sync_once(&snapshot, &config, NODES[i], now(), &nft).unwrap();
        let step = steps[i]
            .get_or_insert_with(|| Arc::new(Mutex::new(AnnounceStep::new(NODES[i], options()))))
            .clone();
        let d = decision.clone();
        let report = ns.run_in(move || step.lock().unwrap().apply(&d)).unwrap();
        assert!(report.problems.is_empty(), "{report}");
    }
    decision
}

fn announcer_of(decision: &Decision, ip: &str) -> usize {
    let ip: IpAddr = ip.parse().unwrap();
    let node = decision
        .pool_addresses
        .iter()
        .find(|a| a.ip == ip)
        .and_then(|a| a.announcer.clone())
        .unwrap_or_else(|| panic!("nobody announces {ip}"));
    NODES.iter().position(|n| *n == node).unwrap()
}

fn mac_of(ns: &Netns) -> String {
    let out = ns.ip(&["-o", "link", "show", "eth0"]).unwrap();
    out.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap()
        .to_string()
}

/// The client's neighbor entry for `ip`: (MAC, state).
fn neighbor(client: &Netns, ip: &str) -> Option<(String, String)> {
    let out = client.ip(&["neigh", "show", ip, "dev", "eth0"]).ok()?;
    let words: Vec<&str> = out.split_whitespace().collect();
    let mac = words
        .iter()
        .position(|w| *w == "lladdr")
        .and_then(|p| words.get(p + 1))?;
    Some((mac.to_string(), words.last()?.to_string()))
}

fn vip(ip: &str) -> SocketAddr {
    SocketAddr::new(ip.parse().unwrap(), 80)
}

/// Waits (up to 3 s) until the client's entry for `ip` holds `by`'s MAC.
fn wait_neighbor(seg: &Segment, ip: &str, by: usize) -> Duration {
    let want = mac_of(&seg.nodes[by]);
    let started = Instant::now();
    while neighbor(&seg.client, ip).is_none_or(|(mac, _)| mac != want) {
        assert!(
            started.elapsed() < Duration::from_secs(3),
            "{ip}: entry never moved to {want}: {:?}",
            neighbor(&seg.client, ip)
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    started.elapsed()
}

fn assert_served(seg: &Segment, ip: &str, by: usize) {
    let v6 = ip.contains(':');
    let expected: IpAddr = node_ip(by, v6).parse().unwrap();
    let t = Duration::from_secs(3);
    let tcp = tcp_request(&seg.client, vip(ip), t).unwrap();
    assert_eq!(
        (tcp.server.as_str(), tcp.peer),
        ("backend", expected),
        "TCP {ip}"
    );
    let udp = udp_request(&seg.client, vip(ip), t).unwrap();
    assert_eq!(
        (udp.server.as_str(), udp.peer),
        ("backend", expected),
        "UDP {ip}"
    );
    let (mac, _) = neighbor(&seg.client, ip).unwrap();
    assert_eq!(
        mac,
        mac_of(&seg.nodes[by]),
        "client neighbor entry for {ip}"
    );
}

/// Sends a unicast Neighbor Solicitation for `target` from the client straight to
/// `node_mac`, and returns the advertisement that answers it.
fn unicast_solicit(client: &Netns, target: Ipv6Addr, node_mac: [u8; 6]) -> Option<frame::Advert> {
    client
        .run_in(move || {
            let links = links().unwrap();
            let eth0 = links.get("eth0").unwrap();
            let socket =
                PacketSocket::open(eth0, Duration::from_millis(50), Filter::Answers).unwrap();
            let me: Ipv6Addr = "2001:db8:100::1".parse().unwrap();
            socket
                .send(&frame::neighbor_solicit(
                    eth0.mac, me, target, node_mac, target,
                ))
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(2);
            let mut buf = vec![0u8; 2048];
            while Instant::now() < deadline {
                if let Ok(Some(bytes)) = socket.recv(&mut buf)
                    && let Some(na) = frame::parse_advert(bytes)
                    && na.target == target
                {
                    return Some(na);
                }
            }
            None
        })
        .unwrap()
}

fn parse_mac(text: &str) -> [u8; 6] {
    let mut out = [0u8; 6];
    for (o, part) in out.iter_mut().zip(text.split(':')) {
        *o = u8::from_str_radix(part, 16).unwrap();
    }
    out
}

/// `dualstack doctor pool IP --node NODE` as run on node `i`: facts read inside its namespace.
fn doctor(seg: &Segment, decision: &Decision, ip: &str, i: usize) -> dualstack_doctor::Report {
    use dualstack_doctor::node::{TableState, ip as ipfacts};
    let ns = &seg.nodes[i];
    let interfaces = ipfacts::parse_addrs(&ns.ip(&["-d", "-j", "addr", "show"]).unwrap()).unwrap();
    let igmp6 = ns.exec("cat", &["/proc/net/igmp6"]).ok();
    let nft = Nft::new(Runner::in_netns(ns.name()), "dualstack").unwrap();
    let table = match nft.observe().unwrap() {
        None => TableState::NotInstalled,
        Some(o) => TableState::Present {
            name: "dualstack".into(),
            chains: o.chains,
            elements: o.elements,
            other_elements: o.other_elements,
        },
    };
    dualstack_doctor::pool::check(&dualstack_doctor::pool::PoolFacts {
        address: ip.parse().unwrap(),
        decision,
        node: Some(NODES[i].to_string()),
        interfaces,
        igmp6,
        table: Some(table),
    })
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

#[test]
fn pool_addresses_are_reached_announced_and_failed_over_on_a_real_segment() {
    if !kernel_tests_enabled(
        "pool_addresses_are_reached_announced_and_failed_over_on_a_real_segment",
    ) {
        return;
    }
    let seg = segment();
    let mut steps: Steps = vec![None, None, None];
    let all = [true, true, true];
    let decision = converge(&seg, &mut steps, &all);
    let vip6 = "2001:db8:100::201";
    assert_eq!(
        decision
            .service("default", "web")
            .unwrap()
            .ingress
            .iter()
            .map(|i| i.ip.to_string())
            .collect::<Vec<_>>(),
        [VIP4, vip6]
    );

    // Reached over TCP and UDP in both families through the announcing node, whose MAC the
    // client's own ARP / neighbor discovery learned.
    for ip in [VIP4, vip6] {
        let by = announcer_of(&decision, ip);
        assert_served(&seg, ip, by);
        for ns in &seg.nodes {
            let addrs = ns.ip(&["addr", "show"]).unwrap();
            assert!(
                !addrs.contains(ip),
                "{ip} was added to an interface: {addrs}"
            );
        }
    }

    // Traffic to a pool address that no frontend takes is dropped by the node's guard (not
    // routed onwards), and the guard survives the drift check.
    let by4 = announcer_of(&decision, VIP4);
    for ip in [VIP4, vip6] {
        let by = announcer_of(&decision, ip);
        let to = SocketAddr::new(ip.parse().unwrap(), 9999);
        assert!(udp_request(&seg.client, to, Duration::from_millis(300)).is_err());
        let chain = seg.nodes[by]
            .exec("nft", &["list", "chain", "inet", "dualstack", "pool-guard"])
            .unwrap();
        let family = if ip.contains(':') {
            "ip6 daddr"
        } else {
            "ip daddr"
        };
        let line = chain.lines().find(|l| l.contains(family)).unwrap();
        assert!(
            !line.contains("packets 0 "),
            "{ip}: nothing dropped: {line}"
        );
    }
    let nft = Nft::new(Runner::in_netns(seg.nodes[by4].name()), "dualstack").unwrap();
    let mut syncer = dualstack_agent::Syncer::new(nft, NODES[by4]);
    syncer
        .sync(&snapshot(&all), &Config::default(), now())
        .unwrap();
    let check = syncer.resync().unwrap().unwrap();
    assert_eq!(check.kind, dualstack_agent::SyncKind::Unchanged, "{check}");

    // A unicast solicitation (a router's or client's reachability probe) is answered.
    let by6 = announcer_of(&decision, vip6);
    let node_mac = parse_mac(&mac_of(&seg.nodes[by6]));
    let na = unicast_solicit(&seg.client, vip6.parse().unwrap(), node_mac)
        .expect("no advertisement answered the unicast solicitation");
    assert_eq!(
        na,
        frame::Advert {
            target: vip6.parse().unwrap(),
            solicited: true,
            override_: true,
            lladdr: Some(node_mac),
            hop_limit: 255,
            dst: "2001:db8:100::1".parse().unwrap(),
        }
    );

    // The solicited-node group is joined: MLD reached the bridge's snooping table.
    let group = frame::solicited_node(vip6.parse().unwrap()).to_string();
    let port = format!("p-node{}", by6 + 1);
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let mdb = seg.lan.exec("bridge", &["mdb", "show"]).unwrap_or_default();
        if mdb.lines().any(|l| l.contains(&group) && l.contains(&port)) {
            break;
        }
        assert!(Instant::now() < deadline, "{group} not on {port}: {mdb}");
        std::thread::sleep(Duration::from_millis(100));
    }

    // `doctor pool` on the announcer, from the node's own facts, finds everything in place;
    // on a standby it points at the announcer.
    for ip in [VIP4, vip6] {
        let by = announcer_of(&decision, ip);
        let report = doctor(&seg, &decision, ip, by);
        assert!(!report.has_failures(), "{}", report.to_text());
        let expected: &[&str] = if ip.contains(':') {
            &[
                "pool.interface",
                "pool.not-assigned",
                "pool.multicast",
                "pool.rules",
            ]
        } else {
            &["pool.interface", "pool.not-assigned", "pool.rules"]
        };
        for id in expected {
            assert!(
                report.get(id).is_some(),
                "{id} missing: {}",
                report.to_text()
            );
        }
        let standby = (by + 1) % NODES.len();
        let report = doctor(&seg, &decision, ip, standby);
        assert!(
            report.to_text().contains(&format!("{} does", NODES[by])),
            "{}",
            report.to_text()
        );
    }

    // Failover, ten times per family: stop the announcer's agent, drop its Lease, let the
    // others converge; time until the client's neighbor entry holds the new MAC.
    let mut report = Vec::new();
    for ip in [VIP4, vip6] {
        let mut times = Vec::new();
        // From the new announcer being told to the client's entry moving.
        let mut wire = Vec::new();
        for round in 0..10 {
            let decision = converge(&seg, &mut steps, &all);
            let old = announcer_of(&decision, ip);
            wait_neighbor(&seg, ip, old);
            assert_served(&seg, ip, old);
            let mut live = all;
            live[old] = false;
            let started = Instant::now();
            steps[old] = None; // the agent stops: its announcer goes silent
            let after = converge(&seg, &mut steps, &live);
            let told = started.elapsed();
            let new = announcer_of(&after, ip);
            assert_ne!(new, old);
            let moved = wait_neighbor(&seg, ip, new);
            times.push(started.elapsed());
            wire.push(moved);
            let _ = (round, told);
            assert_served(&seg, ip, new);
        }
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        report.push(format!(
            "failover {ip}: median {:.1} ms of 10 (min {:.1}, max {:.1}); of which announcement to moved entry: median {:.1} ms (max {:.1})",
            ms(median(times.clone())),
            ms(*times.iter().min().unwrap()),
            ms(*times.iter().max().unwrap()),
            ms(median(wire.clone())),
            ms(*wire.iter().max().unwrap()),
        ));
    }
    for line in &report {
        println!("{line}");
    }
}
