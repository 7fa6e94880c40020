//! `br_netfilter`: with a bridge CNI (flannel's `cni0`, the bridge plugin, Docker's
//! `docker0`) traffic between pods on one bridge must pass netfilter, or Service traffic
//! that kube-proxy DNATs to a pod on the same bridge loses its reverse NAT. K3s loads
//! `br_netfilter` and sets both sysctls; kubeadm's preflight checked them.

use super::NodeFacts;
use crate::Check;

const ID: &str = "node.bridge-netfilter";
const KEYS: [&str; 2] = [
    "net.bridge.bridge-nf-call-iptables",
    "net.bridge.bridge-nf-call-ip6tables",
];

pub fn check(f: &NodeFacts) -> Check {
    let bridges: Vec<&str> = f
        .interfaces
        .iter()
        .filter(|i| i.kind.as_deref() == Some("bridge"))
        .map(|i| i.name.as_str())
        .collect();
    if bridges.is_empty() {
        return Check::ok(ID, "no bridge interfaces: br_netfilter not needed");
    }
    let values: Vec<(&str, Option<&str>)> = KEYS.iter().map(|k| (*k, f.sysctl(k))).collect();
    let set_fix = crate::sysctl_fix::set(&KEYS.map(|k| (k.to_string(), "1")));
    if values.iter().any(|(_, v)| v.is_none()) {
        return Check::fail(
            ID,
            format!(
                "bridge {} present but br_netfilter is not loaded: bridged pod traffic skips iptables/nftables",
                bridges.join(", ")
            ),
            format!(
                "modprobe br_netfilter && echo br_netfilter > /etc/modules-load.d/br_netfilter.conf\n{set_fix}"
            ),
        );
    }
    let off: Vec<String> = values
        .iter()
        .filter(|(_, v)| *v != Some("1"))
        .map(|(k, v)| format!("{k} = {}", v.unwrap_or("?")))
        .collect();
    if off.is_empty() {
        Check::ok(
            ID,
            format!(
                "bridge {}: bridge-nf-call-iptables = 1, bridge-nf-call-ip6tables = 1",
                bridges.join(", ")
            ),
        )
    } else {
        Check::fail(
            ID,
            format!(
                "bridge {} present but {}",
                bridges.join(", "),
                off.join(", ")
            ),
            set_fix,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::Interface;
    use super::super::testing::healthy;
    use super::*;
    use crate::Status;

    #[test]
    fn table() {
        let cases: &[(bool, Option<&str>, Option<&str>, Status)] = &[
            (false, None, None, Status::Ok),
            (true, Some("1"), Some("1"), Status::Ok),
            (true, Some("1"), Some("0"), Status::Fail),
            (true, None, None, Status::Fail),
        ];
        for (bridge, v4, v6, want) in cases {
            let mut f = healthy();
            if *bridge {
                f.interfaces.push(Interface {
                    name: "cni0".into(),
                    kind: Some("bridge".into()),
                    up: true,
                    addrs: vec![],
                });
            }
            for (k, v) in KEYS.iter().zip([v4, v6]) {
                if let Some(v) = v {
                    f.sysctls.insert(k.to_string(), v.to_string());
                }
            }
            let c = check(&f);
            assert_eq!(c.status, *want, "{c:#?}");
        }
        let mut f = healthy();
        f.interfaces.push(Interface {
            name: "cni0".into(),
            kind: Some("bridge".into()),
            up: true,
            addrs: vec![],
        });
        let c = check(&f);
        assert!(c.fix.unwrap().starts_with("modprobe br_netfilter"));
        assert!(c.message.contains("cni0"));
    }
}
