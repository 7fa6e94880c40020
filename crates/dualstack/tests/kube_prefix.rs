//! The ISP renumbers, end to end (issue #16): a router namespace sends real router
//! advertisements (radvd), the node namespaces autoconfigure from them, their agents report
//! the on-link prefix in their Leases to the real API server of `tests/kube/`, and the
//! controller publishes a pool address made of that prefix and the Service's host part. Then
//! the router switches to a new prefix: the Service gains the new address within seconds
//! (measured), a client reaches it while connections to the old address keep working, and
//! when the old prefix's valid lifetime ends on the nodes the old address is withdrawn.
//!
//! Needs Go (the API server harness), root (namespaces, nftables) and `radvd` (Debian package
//! `radvd`; `.ci/run` installs it). Skips with the reason otherwise, or fails when
//! `DUALSTACK_REQUIRE_KUBE_TESTS=1` / `DUALSTACK_REQUIRE_KERNEL_TESTS=1`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod kube_lab;
mod reliability;

use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dualstack_testbed::{Netns, kernel_tests_enabled, kube_tests_enabled, veth};
use kube_lab::{Lab, NS, ingress, service_yaml, slices_yaml};
use reliability::{Backend, broken, hold};

const A: &str = "2001:db8:a:1";
const B: &str = "2001:db8:b:1";
const C: &str = "2001:db8:c:1";
/// Where the pods' persistent echo listens (the lab's one-shot echo has 8080).
const BACKEND: u16 = 7000;
const PORT: u16 = 9100;

/// A router namespace on the LAN bridge running radvd.
struct Router {
    ns: Netns,
    dir: PathBuf,
    radvd: Option<Child>,
}

impl Router {
    fn new(lab: &Lab) -> Router {
        let ns = Netns::new("router").unwrap();
        veth(&ns, "eth0", &lab.lan, "p-router").unwrap();
        lab.lan
            .ip(&["link", "set", "p-router", "master", "br0"])
            .unwrap();
        ns.enable_forwarding().unwrap();
        let dir = std::env::temp_dir().join(format!("dualstack-radvd-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        Router {
            ns,
            dir,
            radvd: None,
        }
    }

    /// (Re)starts radvd advertising `prefix::/64` with these lifetimes. The old daemon is
    /// killed without a goodbye: like an ISP that renumbers, the old prefix just stops
    /// being advertised and runs out on the hosts.
    fn advertise(&mut self, prefix: &str, valid: u32, preferred: u32) {
        self.stop();
        let conf = self.dir.join("radvd.conf");
        std::fs::write(
            &conf,
            format!(
                "interface eth0 {{\n  AdvSendAdvert on;\n  MinRtrAdvInterval 3;\n  MaxRtrAdvInterval 4;\n  AdvDefaultLifetime 0;\n  prefix {prefix}::/64 {{\n    AdvOnLink on;\n    AdvAutonomous on;\n    AdvValidLifetime {valid};\n    AdvPreferredLifetime {preferred};\n  }};\n}};\n"
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.dir.join(format!("radvd-{prefix}.log"))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", self.ns.name(), "radvd", "--nodaemon"])
            .args(["-C", &conf.display().to_string()])
            .args(["-p", &self.dir.join("radvd.pid").display().to_string()])
            .args(["-m", "stderr", "-d", "1"])
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("radvd (Debian package radvd)");
        self.radvd = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.radvd.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.dir.join("radvd.pid"));
    }
}

impl Drop for Router {
    fn drop(&mut self) {
        self.stop();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn radvd_installed() -> bool {
    // `radvd --version` exits 1; that it runs at all is what counts.
    Command::new("radvd").arg("--version").output().is_ok()
}

fn gate(name: &str) -> bool {
    if !kube_tests_enabled(name) || !kernel_tests_enabled(name) {
        return false;
    }
    if !radvd_installed() {
        assert!(
            std::env::var("DUALSTACK_REQUIRE_KERNEL_TESTS").as_deref() != Ok("1"),
            "{name}: radvd is required (apt-get install radvd)"
        );
        eprintln!("skipping {name}: radvd is not installed (apt-get install radvd)");
        return false;
    }
    true
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// The client's global address in `prefix`, once autoconfigured.
fn wait_client_address(lab: &Lab, prefix: &str) -> Duration {
    let start = Instant::now();
    loop {
        let out = lab
            .client
            .ip(&["-6", "addr", "show", "dev", "eth0", "scope", "global"])
            .unwrap();
        if out.contains(&format!("{prefix}:")) {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "client has no address in {prefix}::/64:\n{out}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn round_trip(lab: &Lab, to: SocketAddr) -> bool {
    lab.client
        .run_in(move || {
            std::net::TcpStream::connect_timeout(&to, Duration::from_secs(2)).is_ok_and(|mut s| {
                use std::io::{Read, Write};
                let _ = s.set_read_timeout(Some(Duration::from_secs(2)));
                let mut b = [0u8; 1];
                s.write_all(b"x").is_ok() && s.read_exact(&mut b).is_ok()
            })
        })
        .unwrap()
}

fn events(lab: &Lab) -> String {
    lab.api
        .kubectl(&[
            "-n",
            NS,
            "get",
            "events",
            "--field-selector",
            "involvedObject.name=home-web",
            "-o",
            "custom-columns=REASON:.reason,MESSAGE:.message",
        ])
        .unwrap_or_default()
}

#[test]
fn a_prefix_pool_follows_the_routers_prefix_make_before_break() {
    let name = "a_prefix_pool_follows_the_routers_prefix_make_before_break";
    if !gate(name) {
        return;
    }
    let mut lab = Lab::start(2);
    let mut router = Router::new(&lab);
    // Nodes forward (they are routers for their pods), so they accept RAs only with 2.
    for n in &lab.nodes {
        n.ns.sysctl("net.ipv6.conf.eth0.accept_ra", "2").unwrap();
    }
    let _backends: Vec<Backend> = lab
        .nodes
        .iter()
        .map(|n| Backend::start(&n.pod, BACKEND))
        .collect();
    router.advertise(A, 45, 30);
    let slaac = wait_client_address(&lab, A);
    eprintln!("measure: router advertisement -> client address in the prefix: {slaac:?}");

    lab.start_controller("controller-a");
    lab.apply(
        "apiVersion: dualstack.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: home}\nspec:\n  addresses: [\"192.0.2.240-192.0.2.247\"]\n  ipv6Prefix: {hosts: \"::f0-::ff\"}\n  autoAssign: false\n",
    );
    let ports = format!("  - {{name: http, port: {PORT}, protocol: TCP, targetPort: {BACKEND}}}\n");
    let yaml = service_yaml(
        "home-web",
        "PreferDualStack",
        "[IPv4, IPv6]",
        "Cluster",
        &ports,
    )
    .replace(
        "  name: home-web\n",
        "  name: home-web\n  annotations: {dualstack.io/pool: home}\n",
    );
    lab.apply(&yaml);
    lab.apply(
        &slices_yaml(
            "home-web",
            &[&lab.nodes[0], &lab.nodes[1]],
            &[("http", "TCP")],
        )
        .replace("port: 8080", &format!("port: {BACKEND}")),
    );
    let old = ip(&format!("{A}::f0"));
    let new = ip(&format!("{B}::f0"));
    let v4 = ip("192.0.2.240");
    let took = lab.wait_service(
        "home-web",
        Duration::from_secs(60),
        "published in prefix A",
        |s| ingress(s) == vec![v4, old],
    );
    eprintln!("measure: prefix pool Service -> status with its prefix address: {took:?}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !round_trip(&lab, SocketAddr::new(old, PORT)) {
        assert!(Instant::now() < deadline, "{old} does not answer");
        std::thread::sleep(Duration::from_millis(200));
    }
    let mut held = hold(&lab.client, &[SocketAddr::new(old, PORT)], 20);

    // The ISP renumbers: only B is advertised from now on; A runs out within 45 s.
    let switched = Instant::now();
    router.advertise(B, 600, 300);
    let gained = lab.wait_service(
        "home-web",
        Duration::from_secs(30),
        "given the B address too",
        |s| {
            let now = ingress(s);
            now.contains(&new) && now.contains(&old) && now.contains(&v4)
        },
    );
    eprintln!(
        "measure: new prefix advertised -> status has the new address (old kept): {:?}",
        switched.elapsed()
    );
    let _ = gained;
    wait_client_address(&lab, B);
    let deadline = Instant::now() + Duration::from_secs(30);
    while !round_trip(&lab, SocketAddr::new(new, PORT)) {
        assert!(Instant::now() < deadline, "{new} does not answer");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        broken(&mut held),
        0,
        "connections to the old address broke at the switch"
    );
    assert!(
        round_trip(&lab, SocketAddr::new(old, PORT)),
        "a new connection to the old address fails while its prefix is valid"
    );
    let text = events(&lab);
    assert!(text.contains("PrefixAdded"), "{text}");

    // The old prefix's valid lifetime ends on the nodes: the address is withdrawn.
    let withdrawn = lab.wait_service(
        "home-web",
        Duration::from_secs(90),
        "rid of the A address",
        |s| ingress(s) == vec![v4, new],
    );
    let since_switch = switched.elapsed();
    eprintln!(
        "measure: old prefix withdrawn {since_switch:?} after the switch (valid lifetime 45 s after the last A advertisement; waited {withdrawn:?})"
    );
    assert!(
        since_switch >= Duration::from_secs(35),
        "withdrawn after {since_switch:?}, before A's valid lifetime could end"
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let text = events(&lab);
        if text.contains("PrefixWithdrawn") {
            assert!(text.contains(&format!("{old} withdrawn")), "{text}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no PrefixWithdrawn Event:\n{text}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert!(round_trip(&lab, SocketAddr::new(new, PORT)));
    // The agents report B only, on eth0.
    let lease = lab
        .api
        .kubectl(&[
            "-n",
            "dualstack-system",
            "get",
            "lease",
            "dualstack-agent-node-1",
            "-o",
            "jsonpath={.metadata.annotations.dualstack\\.io/prefixes}",
        ])
        .unwrap();
    assert!(
        lease.starts_with(&format!("{B}::/64;dev=eth0;since=")),
        "{lease}"
    );

    // With a grace time, a superseded prefix goes long before its valid lifetime ends: time
    // alone withdraws it (the controller's and the agents' deadline, no object changes).
    lab.apply(
        "apiVersion: dualstack.io/v1alpha1\nkind: LoadBalancerPool\nmetadata: {name: home}\nspec:\n  addresses: [\"192.0.2.240-192.0.2.247\"]\n  ipv6Prefix: {hosts: \"::f0-::ff\", graceSeconds: 5}\n  autoAssign: false\n",
    );
    let newest = ip(&format!("{C}::f0"));
    let switched = Instant::now();
    router.advertise(C, 600, 300);
    lab.wait_service(
        "home-web",
        Duration::from_secs(30),
        "given the C address",
        |s| ingress(s).contains(&newest),
    );
    lab.wait_service(
        "home-web",
        Duration::from_secs(30),
        "rid of B after the grace time",
        |s| ingress(s) == vec![v4, newest],
    );
    let graced = switched.elapsed();
    eprintln!(
        "measure: superseded prefix withdrawn {graced:?} after the switch (graceSeconds 5, valid lifetime 600 s)"
    );
    assert!(
        graced >= Duration::from_secs(4),
        "withdrawn before the grace time: {graced:?}"
    );
    let gone = Instant::now();
    let b_text = new.to_string();
    while (0..lab.nodes.len()).any(|i| lab.table(i).contains(&b_text)) {
        assert!(
            gone.elapsed() < Duration::from_secs(10),
            "a node still programs {new} after its withdrawal"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(round_trip(&lab, SocketAddr::new(newest, PORT)));
    assert_eq!(lab.all_running(), Vec::<String>::new());
}
