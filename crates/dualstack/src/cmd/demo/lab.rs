//! Builds the demo's network in namespaces (see [`super::topology`]), runs the backends, and
//! removes all of it again: on success, on error, on a signal (the caller stops between steps)
//! and on a panic (`Drop`).

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dualstack_addr::Family;
use dualstack_dataplane::{Nft, Runner};
use dualstack_signal::Termination;
use dualstack_testbed::{EchoServer, Netns, tcp_request, veth};
use ipnet::IpNet;

use super::topology::{self, CLIENT, NODES, PODS, TABLE, ns_name};

/// Everything the demo created. Dropping it removes everything (best effort, silently);
/// [`DemoLab::remove`] does the same and reports what went wrong.
pub struct DemoLab {
    servers: Vec<EchoServer>,
    /// Each node's agent data plane (table [`TABLE`] in the node's namespace).
    nfts: Vec<(String, Nft)>,
    /// In creation order; removed in reverse.
    namespaces: Vec<Netns>,
}

fn network(cidr: topology::Cidr) -> anyhow::Result<IpNet> {
    Ok(IpNet::new(cidr.addr, cidr.len)
        .with_context(|| format!("prefix length of {}", cidr.text()))?
        .trunc())
}

impl DemoLab {
    fn empty() -> DemoLab {
        DemoLab {
            servers: Vec::new(),
            nfts: Vec::new(),
            namespaces: Vec::new(),
        }
    }

    /// Creates one namespace `dsdemo-<role>`; an existing one means a demo is running or
    /// was left behind.
    fn add_ns(&mut self, role: &str, interrupt: &Termination) -> anyhow::Result<&Netns> {
        interrupt.check()?;
        let name = ns_name(role);
        if Command::new("ip")
            .args(["netns", "pids", &name])
            .stderr(Stdio::null())
            .stdout(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
        {
            bail!(
                "network namespace {name} already exists: another demo is running, or one was \
                 kept or interrupted; remove it with `dualstack demo --cleanup`"
            );
        }
        let ns = Netns::with_name(&name).with_context(|| format!("creating namespace {name}"))?;
        self.namespaces.push(ns);
        let last = self.namespaces.len() - 1;
        Ok(&self.namespaces[last])
    }

    /// The namespace of a role (`lan`, `client`, a node or a pod name).
    pub fn ns(&self, role: &str) -> anyhow::Result<&Netns> {
        let name = ns_name(role);
        self.namespaces
            .iter()
            .find(|n| n.name() == name)
            .with_context(|| format!("the demo has no namespace {name}"))
    }

    /// Builds the LAN, the client, the nodes (forwarding on, routes to each other's pods)
    /// and the pods. Nothing is programmed yet.
    pub fn build(interrupt: &Termination) -> anyhow::Result<DemoLab> {
        let mut lab = DemoLab::empty();
        let lan = lab.add_ns("lan", interrupt)?;
        lan.ip(&["link", "add", "br0", "type", "bridge"])?;
        lan.ip(&["link", "set", "br0", "up"])?;

        lab.add_ns("client", interrupt)?;
        lab.attach_to_lan("client", "client")?;
        for cidr in CLIENT {
            lab.ns("client")?.add_addr("eth0", &cidr.text())?;
        }

        for node in NODES {
            let ns = lab.add_ns(node.name, interrupt)?;
            ns.enable_forwarding()?;
            // Pods on another node are reached through the LAN, the way the packet came:
            // no ICMP redirects telling the client to talk to the other node directly.
            ns.sysctl("net.ipv4.conf.all.send_redirects", "0")?;
            ns.ip(&["link", "add", "cni0", "type", "bridge"])?;
            ns.ip(&["link", "set", "cni0", "up"])?;
            for cidr in node.cni {
                ns.add_addr("cni0", &cidr.text())?;
            }
            lab.attach_to_lan(node.name, node.name)?;
            for cidr in node.lan {
                lab.ns(node.name)?.add_addr("eth0", &cidr.text())?;
            }
            let runner = Runner::in_netns(ns_name(node.name));
            lab.nfts
                .push((node.name.to_string(), Nft::new(runner, TABLE)?));
        }
        for node in NODES {
            let ns = lab.ns(node.name)?;
            for other in NODES.iter().filter(|o| o.name != node.name) {
                for family in Family::BOTH {
                    let pods = network(other.cni(family))?.to_string();
                    let via = other.lan_addr(family).to_string();
                    let fam = if family == Family::V4 { "-4" } else { "-6" };
                    ns.ip(&[fam, "route", "add", &pods, "via", &via])?;
                }
            }
        }

        for pod in PODS {
            lab.add_ns(pod.name, interrupt)?;
            let node = topology::node(pod.node)
                .with_context(|| format!("pod {} is on unknown node {}", pod.name, pod.node))?;
            let dev = format!("veth-{}", pod.name);
            veth(lab.ns(pod.node)?, &dev, lab.ns(pod.name)?, "eth0")?;
            lab.ns(pod.node)?
                .ip(&["link", "set", &dev, "master", "cni0"])?;
            let ns = lab.ns(pod.name)?;
            for family in Family::BOTH {
                let gw = node.cni(family);
                ns.add_addr("eth0", &format!("{}/{}", pod.addr(family), gw.len))?;
                ns.default_route(&gw.addr.to_string())?;
            }
        }
        Ok(lab)
    }

    /// Connects `role`'s `eth0` to the LAN bridge (port named `port` in the LAN namespace).
    fn attach_to_lan(&self, role: &str, port: &str) -> anyhow::Result<()> {
        let lan = self.ns("lan")?;
        veth(lan, port, self.ns(role)?, "eth0")?;
        lan.ip(&["link", "set", port, "master", "br0"])?;
        Ok(())
    }

    /// Each node's agent data plane.
    pub fn nfts(&self) -> &[(String, Nft)] {
        &self.nfts
    }

    /// Starts an echo server (TCP and UDP) per pod and port; each answers with the pod's
    /// name and the source address it saw.
    pub fn start_backends(
        &mut self,
        ports: &BTreeMap<&'static str, Vec<u16>>,
        interrupt: &Termination,
    ) -> anyhow::Result<()> {
        for (pod, list) in ports {
            for port in list {
                interrupt.check()?;
                let server = EchoServer::start(self.ns(pod)?, pod, *port)
                    .with_context(|| format!("starting backend {pod} on port {port}"))?;
                self.servers.push(server);
            }
        }
        Ok(())
    }

    /// Removes everything: backends, each node's table, then the namespaces (newest
    /// first). Checks that no `dsdemo-` namespace is left.
    pub fn remove(mut self) -> anyhow::Result<()> {
        self.servers.clear();
        let mut errors = Vec::new();
        for (node, nft) in self.nfts.drain(..) {
            if let Err(e) = nft.cleanup() {
                errors.push(format!("removing table inet {TABLE} on {node}: {e}"));
            }
        }
        while let Some(ns) = self.namespaces.pop() {
            drop(ns);
        }
        let left = super::cleanup::ours()?;
        if !left.is_empty() {
            errors.push(format!(
                "namespaces left behind: {} (try `dualstack demo --cleanup`)",
                left.join(", ")
            ));
        }
        if errors.is_empty() {
            Ok(())
        } else {
            bail!("cleaning up: {}", errors.join("; "))
        }
    }

    /// Leaves the namespaces and rules in place, with the backends running in processes of
    /// their own (`exe demo --serve-echo POD --port …`, inside each pod's namespace), and
    /// returns the namespace names.
    pub fn keep(
        mut self,
        exe: &std::path::Path,
        ports: &BTreeMap<&'static str, Vec<u16>>,
    ) -> anyhow::Result<Vec<String>> {
        // The in-process servers hold the ports: stop them first.
        self.servers.clear();
        for (pod, list) in ports {
            let ns = ns_name(pod);
            let mut cmd = Command::new("ip");
            cmd.args(["netns", "exec", &ns])
                .arg(exe)
                .args(["demo", "--serve-echo", pod]);
            for port in list {
                cmd.arg("--port").arg(port.to_string());
            }
            cmd.stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .with_context(|| format!("starting the kept backend {pod}"))?;
            for port in list {
                wait_for_backend(self.ns(pod)?, pod, *port)?;
            }
        }
        self.nfts.clear();
        let mut names = Vec::new();
        for ns in self.namespaces.drain(..) {
            names.push(ns.keep());
        }
        Ok(names)
    }
}

/// Waits (up to 3 s) until `pod`'s backend answers on `port` inside its namespace.
fn wait_for_backend(ns: &Netns, pod: &str, port: u16) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(3);
    let to = SocketAddr::new(IpAddr::V6(Ipv6Addr::LOCALHOST), port);
    loop {
        match tcp_request(ns, to, Duration::from_millis(200)) {
            Ok(reply) if reply.server == pod => return Ok(()),
            _ if Instant::now() > deadline => {
                bail!("the kept backend {pod} does not answer on port {port}")
            }
            _ => std::thread::sleep(Duration::from_millis(30)),
        }
    }
}

impl Drop for DemoLab {
    fn drop(&mut self) {
        self.servers.clear();
        for (_, nft) in self.nfts.drain(..) {
            let _ = nft.cleanup();
        }
        while let Some(ns) = self.namespaces.pop() {
            drop(ns);
        }
    }
}
