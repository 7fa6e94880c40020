//! A small dual-stack "cluster" for end-to-end tests against the real API server of
//! `tests/kube/`: `deploy/` applied with kubectl, Node objects created by the test, one network
//! namespace per node running the real `dualstack agent` (authenticated as the agent
//! ServiceAccount with a token bound to its Node), a pod namespace behind each node with an
//! echo server, a client on the LAN, and `dualstack controller` processes authenticated as the
//! controller ServiceAccount.
//!
//! ```text
//!                 LAN bridge (in namespace "lan"): 192.0.2.0/24, fd00:10::/64
//!     client 192.0.2.100 ─┬─ node-1 192.0.2.11, fd00:10::11 ── cni0 ── pod-1 10.42.1.2, fd42:1::2
//!                         └─ node-2 192.0.2.12, fd00:10::12 ── cni0 ── pod-2 10.42.2.2, fd42:2::2
//! ```
//! Every agent reaches the API server's loopback port through a [`LoopbackForward`] in its
//! namespace. Nothing leaves the namespaces.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use std::net::{IpAddr, SocketAddr};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use dualstack_testbed::{EchoServer, KubeApi, LoopbackForward, Netns, repo_root, veth};
use k8s_openapi::api::core::v1::Service;
use kube::api::Api;
use kube::config::{KubeConfigOptions, Kubeconfig};

pub const CLASS: &str = "dualstack.io/lb";
pub const NS: &str = "e2e";
/// Agent Leases in the tests last this long (the default is 40 s).
pub const LEASE_SECONDS: u32 = 4;
/// The binary under test; `DUALSTACK_E2E_BIN` points the lab at another build (the release
/// one, for memory figures).
/// Where each node's agent serves `/healthz`, `/ruleset`, … inside its node namespace.
pub const AGENT_HEALTH: &str = "127.0.0.1:9655";

pub static BIN: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    std::env::var("DUALSTACK_E2E_BIN")
        .unwrap_or_else(|_| env!("CARGO_BIN_EXE_dualstack").to_string())
});

pub fn client_addr(v6: bool) -> IpAddr {
    if v6 {
        "fd00:10::100".parse().unwrap()
    } else {
        "192.0.2.100".parse().unwrap()
    }
}

/// One node: its namespace, the pod behind it, and its agent process.
pub struct Node {
    pub name: String,
    pub index: u8,
    pub ns: Netns,
    pub pod: Netns,
    pub echo: EchoServer,
    forward: LoopbackForward,
    pub agent: Option<Child>,
}

impl Node {
    pub fn lan(&self, v6: bool) -> IpAddr {
        if v6 {
            format!("fd00:10::1{}", self.index).parse().unwrap()
        } else {
            format!("192.0.2.1{}", self.index).parse().unwrap()
        }
    }
    pub fn pod_addr(&self, v6: bool) -> IpAddr {
        if v6 {
            format!("fd42:{}::2", self.index).parse().unwrap()
        } else {
            format!("10.42.{}.2", self.index).parse().unwrap()
        }
    }
}

pub struct Lab {
    pub api: KubeApi,
    pub rt: tokio::runtime::Runtime,
    pub admin: kube::Client,
    pub lan: Netns,
    pub client: Netns,
    pub nodes: Vec<Node>,
    pub controllers: Vec<(String, Child)>,
    /// `deploy/config.yaml` as installed: the environment both processes get (envFrom).
    pub config_env: Vec<(String, String)>,
}

impl Lab {
    /// API server, `deploy/`, the test namespace, and `nodes` nodes (Ready, both families)
    /// with their namespaces and agents running.
    pub fn start(nodes: u8) -> Lab {
        let api = KubeApi::start().expect("start the test API server");
        let out = api
            .kubectl(&[
                "apply",
                "-k",
                &repo_root().join("deploy").display().to_string(),
            ])
            .expect("kubectl apply -k deploy/");
        assert!(out.contains("validatingadmissionpolicy"), "{out}");
        api.kubectl(&["create", "namespace", NS]).unwrap();
        // The processes read the installed ConfigMap, as the Pods do with envFrom.
        let config: serde_json::Value = serde_json::from_str(
            &api.kubectl(&[
                "-n",
                "dualstack-system",
                "get",
                "configmap",
                "dualstack-config",
                "-o",
                "json",
            ])
            .unwrap(),
        )
        .unwrap();
        let config_env: Vec<(String, String)> = config["data"]
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
            .collect();
        let rt = tokio::runtime::Runtime::new().unwrap();
        let admin = rt.block_on(client_for(&api.admin_kubeconfig()));

        let lan = Netns::new("lan").unwrap();
        lan.ip(&["link", "add", "br0", "type", "bridge"]).unwrap();
        lan.ip(&["link", "set", "br0", "up"]).unwrap();
        let client = Netns::new("client").unwrap();
        veth(&client, "eth0", &lan, "p-client").unwrap();
        lan.ip(&["link", "set", "p-client", "master", "br0"])
            .unwrap();
        client.add_addr("eth0", "192.0.2.100/24").unwrap();
        client.add_addr("eth0", "fd00:10::100/64").unwrap();

        let mut lab = Lab {
            api,
            rt,
            admin,
            lan,
            client,
            nodes: Vec::new(),
            controllers: Vec::new(),
            config_env,
        };
        for i in 1..=nodes {
            lab.add_node(i);
        }
        for i in 1..=nodes {
            for j in 1..=nodes {
                if i != j {
                    let via4 = format!("192.0.2.1{j}");
                    let via6 = format!("fd00:10::1{j}");
                    let n = &lab.nodes[usize::from(i - 1)].ns;
                    n.ip(&["route", "add", &format!("10.42.{j}.0/24"), "via", &via4])
                        .unwrap();
                    n.ip(&[
                        "-6",
                        "route",
                        "add",
                        &format!("fd42:{j}::/64"),
                        "via",
                        &via6,
                    ])
                    .unwrap();
                }
            }
        }
        for i in 0..lab.nodes.len() {
            lab.start_agent(i);
        }
        lab
    }

    fn add_node(&mut self, i: u8) {
        let name = format!("node-{i}");
        let ns = Netns::new(&name).unwrap();
        ns.enable_forwarding().unwrap();
        veth(&ns, "eth0", &self.lan, &format!("p-node{i}")).unwrap();
        self.lan
            .ip(&["link", "set", &format!("p-node{i}"), "master", "br0"])
            .unwrap();
        ns.add_addr("eth0", &format!("192.0.2.1{i}/24")).unwrap();
        ns.add_addr("eth0", &format!("fd00:10::1{i}/64")).unwrap();
        let pod = Netns::new(&format!("pod{i}")).unwrap();
        veth(&ns, "cni0", &pod, "eth0").unwrap();
        ns.add_addr("cni0", &format!("10.42.{i}.1/24")).unwrap();
        ns.add_addr("cni0", &format!("fd42:{i}::1/64")).unwrap();
        pod.add_addr("eth0", &format!("10.42.{i}.2/24")).unwrap();
        pod.add_addr("eth0", &format!("fd42:{i}::2/64")).unwrap();
        pod.default_route(&format!("10.42.{i}.1")).unwrap();
        pod.default_route(&format!("fd42:{i}::1")).unwrap();
        let echo = EchoServer::start(&pod, &format!("pod-{i}"), 8080).unwrap();
        let forward = LoopbackForward::start(&ns, self.api.port().unwrap()).unwrap();

        self.apply(&format!(
            "apiVersion: v1\nkind: Node\nmetadata:\n  name: {name}\n  labels: {{kubernetes.io/hostname: {name}}}\n"
        ));
        self.set_node_ready(&name, true, i);
        self.nodes.push(Node {
            name,
            index: i,
            ns,
            pod,
            echo,
            forward,
            agent: None,
        });
    }

    /// Sets the Node's status: both InternalIPs, Ready or not.
    pub fn set_node_ready(&self, name: &str, ready: bool, index: u8) {
        let status = if ready { "True" } else { "False" };
        let patch = format!(
            r#"{{"status":{{"addresses":[{{"type":"InternalIP","address":"192.0.2.1{index}"}},{{"type":"InternalIP","address":"fd00:10::1{index}"}},{{"type":"Hostname","address":"{name}"}}],"conditions":[{{"type":"Ready","status":"{status}","reason":"Test","lastHeartbeatTime":null}}]}}}}"#
        );
        self.api
            .kubectl(&[
                "patch",
                "node",
                name,
                "--subresource=status",
                "--type=merge",
                "-p",
                &patch,
            ])
            .unwrap();
    }

    /// `kubectl apply -f -` as admin.
    pub fn apply(&self, yaml: &str) -> String {
        self.api
            .kubectl_with_input(&["apply", "-f", "-"], Some(yaml))
            .unwrap_or_else(|e| panic!("kubectl apply: {e}\n{yaml}"))
    }

    /// A kubeconfig for a ServiceAccount of `dualstack-system`, its token from the
    /// TokenRequest API (bound to `node`'s Node object when given).
    pub fn service_account_kubeconfig(&self, sa: &str, node: Option<&str>) -> std::path::PathBuf {
        let mut args = vec![
            "-n",
            "dualstack-system",
            "create",
            "token",
            sa,
            "--duration=2h",
        ];
        if let Some(node) = node {
            args.extend(["--bound-object-kind", "Node", "--bound-object-name", node]);
        }
        let token = self.api.kubectl(&args).unwrap();
        let name = match node {
            Some(n) => format!("{sa}-{n}"),
            None => sa.to_string(),
        };
        self.api.kubeconfig_with_token(&name, token.trim()).unwrap()
    }

    /// Starts (or restarts) node `i`'s agent inside its namespace.
    pub fn start_agent(&mut self, i: usize) {
        let node = &self.nodes[i];
        let kubeconfig = self.service_account_kubeconfig("dualstack-agent", Some(&node.name));
        let log =
            std::fs::File::create(self.api.dir().join(format!("agent-{}.log", node.name))).unwrap();
        let child = Command::new("ip")
            .args(["netns", "exec", node.ns.name(), BIN.as_str(), "agent"])
            .args(["--node", &node.name])
            .envs(self.config_env.iter().map(|(k, v)| (k, v)))
            .args(["--lease-duration-seconds", &LEASE_SECONDS.to_string()])
            // One agent per namespace, so the fixed port never collides; the doctor finds
            // the agent there (`--agent-url http://127.0.0.1:9655`).
            .args(["--health-addr", AGENT_HEALTH, "--resync-seconds", "5"])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes[i].agent = Some(child);
    }

    /// Stops node `i`'s agent with `signal` (`KILL`, `TERM`) and waits for it.
    pub fn stop_agent(&mut self, i: usize, signal: &str) {
        if let Some(mut child) = self.nodes[i].agent.take() {
            // `ip netns exec` execs the agent: the child's pid is the agent's.
            signal_pid(child.id(), signal);
            let _ = child.wait();
        }
    }

    /// Starts a controller process named `identity` as the controller ServiceAccount.
    pub fn start_controller(&mut self, identity: &str) {
        let kubeconfig = self.service_account_kubeconfig("dualstack-controller", None);
        let log = std::fs::File::create(self.api.dir().join(format!("controller-{identity}.log")))
            .unwrap();
        let child = Command::new(BIN.as_str())
            .args(["controller", "--identity", identity])
            .envs(self.config_env.iter().map(|(k, v)| (k, v)))
            .args([
                "--namespace",
                "dualstack-system",
                "--health-addr",
                "127.0.0.1:0",
            ])
            .env("KUBECONFIG", &kubeconfig)
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .unwrap();
        self.controllers.push((identity.to_string(), child));
    }

    /// Stops controller `identity` with `signal` and waits for it.
    pub fn stop_controller(&mut self, identity: &str, signal: &str) {
        if let Some(pos) = self.controllers.iter().position(|(id, _)| id == identity) {
            let (_, mut child) = self.controllers.remove(pos);
            signal_pid(child.id(), signal);
            let _ = child.wait();
        }
    }

    /// Whether every agent and controller process is still running (none crashed).
    pub fn all_running(&mut self) -> Vec<String> {
        let mut dead = Vec::new();
        for n in &mut self.nodes {
            if let Some(c) = n.agent.as_mut()
                && let Ok(Some(status)) = c.try_wait()
            {
                dead.push(format!("agent {} exited: {status}", n.name));
            }
        }
        for (id, c) in &mut self.controllers {
            if let Ok(Some(status)) = c.try_wait() {
                dead.push(format!("controller {id} exited: {status}"));
            }
        }
        dead
    }

    pub fn services(&self) -> Api<Service> {
        Api::namespaced(self.admin.clone(), NS)
    }

    /// The Service as the API server has it now.
    pub fn service(&self, name: &str) -> Option<Service> {
        self.rt.block_on(self.services().get_opt(name)).unwrap()
    }

    /// Waits until `check` holds for the Service (or panics after `limit`, showing it).
    pub fn wait_service(
        &self,
        name: &str,
        limit: Duration,
        what: &str,
        check: impl Fn(Option<&Service>) -> bool,
    ) -> Duration {
        let start = Instant::now();
        loop {
            let svc = self.service(name);
            if check(svc.as_ref()) {
                return start.elapsed();
            }
            if start.elapsed() > limit {
                panic!(
                    "{name}: not {what} after {limit:?}:\n{}\nlogs in {}",
                    serde_json::to_string_pretty(&svc).unwrap(),
                    self.api.dir().display()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// The node's nft table, as text (empty when absent).
    pub fn table(&self, i: usize) -> String {
        self.nodes[i]
            .ns
            .exec_output("nft", &["list", "table", "inet", "dualstack"])
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default()
    }

    /// Lines of the API server's audit log (one JSON object each).
    pub fn audit(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(self.api.dir().join("audit.log"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.stop_agent(i, "KILL");
        }
        let ids: Vec<String> = self.controllers.iter().map(|(id, _)| id.clone()).collect();
        for id in ids {
            self.stop_controller(&id, "KILL");
        }
    }
}

pub fn signal_pid(pid: u32, signal: &str) {
    let _ = Command::new("kill")
        .args([&format!("-{signal}"), &pid.to_string()])
        .status();
}

pub async fn client_for(kubeconfig: &std::path::Path) -> kube::Client {
    let kc = Kubeconfig::read_from(kubeconfig).unwrap();
    let config = kube::Config::from_custom_kubeconfig(kc, &KubeConfigOptions::default())
        .await
        .unwrap();
    kube::Client::try_from(config).unwrap()
}

/// The ingress IPs of a Service's status, in order.
pub fn ingress(svc: Option<&Service>) -> Vec<IpAddr> {
    svc.and_then(|s| s.status.as_ref())
        .and_then(|s| s.load_balancer.as_ref())
        .and_then(|lb| lb.ingress.as_ref())
        .map(|i| {
            i.iter()
                .filter_map(|i| i.ip.as_ref()?.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// `SocketAddr` of an ingress address and port.
pub fn at(ip: IpAddr, port: u16) -> SocketAddr {
    SocketAddr::new(ip, port)
}

/// A LoadBalancer Service in the test namespace.
pub fn service_yaml(name: &str, policy: &str, families: &str, etp: &str, ports: &str) -> String {
    format!(
        "apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\n  namespace: {NS}\nspec:\n  type: LoadBalancer\n  loadBalancerClass: {CLASS}\n  ipFamilyPolicy: {policy}\n  ipFamilies: {families}\n  externalTrafficPolicy: {etp}\n  selector: {{app: {name}}}\n  ports:\n{ports}"
    )
}

/// EndpointSlices (one per family) for `service`, with endpoints on the given nodes' pods.
pub fn slices_yaml(service: &str, nodes: &[&Node], ports: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (family, v6) in [("IPv4", false), ("IPv6", true)] {
        out += &format!(
            "---\napiVersion: discovery.k8s.io/v1\nkind: EndpointSlice\nmetadata:\n  name: {service}-{}\n  namespace: {NS}\n  labels: {{kubernetes.io/service-name: {service}, endpointslice.kubernetes.io/managed-by: e2e.dualstack.io}}\naddressType: {family}\n",
            family.to_lowercase()
        );
        if nodes.is_empty() {
            out += "endpoints: []\n";
        } else {
            out += "endpoints:\n";
            for n in nodes {
                out += &format!(
                    "- addresses: [\"{}\"]\n  conditions: {{ready: true, serving: true, terminating: false}}\n  nodeName: {}\n",
                    n.pod_addr(v6),
                    n.name
                );
            }
        }
        out += "ports:\n";
        for (name, proto) in ports {
            out += &format!("- {{name: {name}, port: 8080, protocol: {proto}}}\n");
        }
    }
    out
}
