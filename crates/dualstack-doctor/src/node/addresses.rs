//! A default route and a usable address for each family, on one interface (flannel picks
//! the default-route interface and needs both families there: "Nodes must have an ipv4 and
//! ipv6 address in the main interface", "v6 default route interface … must be the same with
//! v4 default route interface").

use dualstack_addr::Family;

use super::NodeFacts;
use crate::Check;

pub fn check(f: &NodeFacts) -> Vec<Check> {
    let mut out: Vec<Check> = Family::BOTH.iter().map(|&fam| route(f, fam)).collect();
    out.extend(Family::BOTH.iter().map(|&fam| address(f, fam)));
    out.push(same_interface(f));
    out
}

fn ip_flag(family: Family) -> &'static str {
    match family {
        Family::V4 => "-4",
        Family::V6 => "-6",
    }
}

/// The interface a fix should name: an uplink of either family, else the first interface
/// that is up and not loopback.
fn main_interface(f: &NodeFacts) -> String {
    f.uplinks(Family::V4)
        .into_iter()
        .chain(f.uplinks(Family::V6))
        .next()
        .map(String::from)
        .or_else(|| {
            f.interfaces
                .iter()
                .find(|i| i.up && i.name != "lo")
                .map(|i| i.name.clone())
        })
        .unwrap_or_else(|| "<interface>".into())
}

fn route(f: &NodeFacts, family: Family) -> Check {
    let id = format!("node.route.{family}");
    let routes: Vec<String> = f
        .routes
        .iter()
        .filter(|r| r.family == family)
        .map(|r| {
            let mut s = String::from("default");
            if let Some(gw) = r.gateway {
                s += &format!(" via {gw}");
            }
            if let Some(dev) = &r.dev {
                s += &format!(" dev {dev}");
            }
            if let Some(p) = &r.protocol {
                s += &format!(" proto {p}");
            }
            s
        })
        .collect();
    if routes.is_empty() {
        let gateway = match family {
            Family::V4 => "<gateway-ipv4>",
            Family::V6 => "<router-ipv6-or-fe80-address>",
        };
        Check::fail(
            id,
            format!(
                "no {} default route: traffic of this family cannot leave the node",
                family.k8s_name()
            ),
            format!(
                "ip {} route add default via {gateway} dev {}   (and make it permanent in your network configuration)",
                ip_flag(family),
                main_interface(f)
            ),
        )
    } else {
        Check::ok(id, routes.join("; "))
    }
}

fn address(f: &NodeFacts, family: Family) -> Check {
    let id = format!("node.address.{family}");
    let uplinks = f.uplinks(family);
    let on_uplink: Vec<String> = uplinks
        .iter()
        .filter_map(|d| f.interface(d))
        .flat_map(|i| {
            i.usable(family)
                .map(move |a| format!("{} on {}", addr_text(a), i.name))
        })
        .collect();
    if !on_uplink.is_empty() {
        return Check::ok(id, on_uplink.join(", "));
    }
    let elsewhere: Vec<String> = f
        .interfaces
        .iter()
        .flat_map(|i| {
            i.usable(family)
                .map(move |a| format!("{} on {}", addr_text(a), i.name))
        })
        .collect();
    let dev = main_interface(f);
    let placeholder = match family {
        Family::V4 => "<node-ipv4>/<prefix-length>",
        Family::V6 => "<node-ipv6>/64",
    };
    if elsewhere.is_empty() {
        let mut fix = format!(
            "ip {} addr add {placeholder} dev {dev}   (and make it permanent in your network configuration)",
            ip_flag(family)
        );
        if family == Family::V6 {
            fix += &format!(
                "\nor, with SLAAC from your router: {}",
                crate::sysctl_fix::set(&[(
                    crate::sysctl_fix::key("net.ipv6.conf", &dev, "accept_ra"),
                    "2"
                )])
                .replace('\n', " && ")
            );
        }
        Check::fail(
            id,
            format!(
                "no usable {} address (global scope, duplicate address detection done) on any interface",
                family.k8s_name()
            ),
            fix,
        )
    } else {
        Check::warn(
            id,
            format!(
                "no usable {} address on the default-route interface {}; found {}",
                family.k8s_name(),
                if uplinks.is_empty() {
                    "(none)".to_string()
                } else {
                    uplinks.join(", ")
                },
                elsewhere.join(", ")
            ),
            "set the node's addresses explicitly in /etc/rancher/k3s/config.yaml: node-ip: <node-ipv4>,<node-ipv6>  (and flannel-iface: <interface> with both)",
        )
    }
}

fn addr_text(a: &super::Address) -> String {
    format!("{}/{}", a.addr, a.prefix_len)
}

fn same_interface(f: &NodeFacts) -> Check {
    const ID: &str = "node.route.same-interface";
    let (v4, v6) = (f.uplinks(Family::V4), f.uplinks(Family::V6));
    match (v4.first(), v6.first()) {
        (Some(a), Some(b)) if a == b => Check::ok(ID, format!("both default routes use {a}")),
        (Some(a), Some(b)) => {
            let both = f
                .interfaces
                .iter()
                .find(|i| i.usable(Family::V4).count() > 0 && i.usable(Family::V6).count() > 0)
                .map(|i| i.name.clone())
                .unwrap_or_else(|| "<interface-with-both-families>".into());
            Check::warn(
                ID,
                format!(
                    "IPv4 default route via {a}, IPv6 via {b}: flannel refuses different interfaces unless told which one to use"
                ),
                format!("add to /etc/rancher/k3s/config.yaml: flannel-iface: {both}"),
            )
        }
        _ => Check::ok(
            ID,
            "not applicable: a family has no default route (see node.route.*)",
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::Interface;
    use super::super::testing::{addr, healthy, route};
    use super::*;
    use crate::Status;

    fn statuses(f: &NodeFacts) -> Vec<(String, Status)> {
        check(f).into_iter().map(|c| (c.id, c.status)).collect()
    }

    #[test]
    fn healthy_node() {
        let got = check(&healthy());
        assert!(got.iter().all(|c| c.status == Status::Ok), "{got:#?}");
        assert_eq!(got[3].message, "2003:e9:f74a:ecf8::10/64 on eth0");
    }

    #[test]
    fn missing_ipv6_address_and_route() {
        let mut f = healthy();
        f.interfaces[0]
            .addrs
            .retain(|a| a.addr.is_ipv4() || a.scope == "link");
        f.routes.retain(|r| r.family == Family::V4);
        let got = check(&f);
        let st: Vec<Status> = got.iter().map(|c| c.status).collect();
        assert_eq!(
            st,
            [
                Status::Ok,
                Status::Fail,
                Status::Ok,
                Status::Fail,
                Status::Ok
            ]
        );
        assert_eq!(
            got[1].fix.as_deref(),
            Some(
                "ip -6 route add default via <router-ipv6-or-fe80-address> dev eth0   (and make it permanent in your network configuration)"
            )
        );
        let fix = got[3].fix.as_deref().unwrap();
        assert!(
            fix.starts_with("ip -6 addr add <node-ipv6>/64 dev eth0"),
            "{fix}"
        );
        assert!(
            fix.contains("sysctl -w net.ipv6.conf.eth0.accept_ra=2"),
            "{fix}"
        );
    }

    #[test]
    fn tentative_addresses_do_not_count() {
        let mut f = healthy();
        for a in &mut f.interfaces[0].addrs {
            a.tentative = a.addr.is_ipv6();
        }
        assert_eq!(statuses(&f)[3], ("node.address.ipv6".into(), Status::Fail));
    }

    #[test]
    fn families_on_different_interfaces() {
        let mut f = healthy();
        f.interfaces[0].addrs.retain(|a| a.addr.is_ipv4());
        f.interfaces.push(Interface {
            name: "wlan0".into(),
            kind: None,
            up: true,
            addrs: vec![addr("2003:e9:f74a:ecf8::20/64")],
        });
        f.routes[1] = route(Family::V6, "wlan0", "fe80::1", Some("ra"));
        let got = check(&f);
        assert_eq!(
            got[3].status,
            Status::Ok,
            "the v6 uplink wlan0 has a v6 address"
        );
        assert_eq!(got[4].status, Status::Warn);
        assert_eq!(
            got[4].fix.as_deref(),
            Some(
                "add to /etc/rancher/k3s/config.yaml: flannel-iface: <interface-with-both-families>"
            )
        );
        // v6 address only off the v6 uplink: warn, not fail
        f.routes[1] = route(Family::V6, "eth0", "fe80::1", Some("ra"));
        assert_eq!(statuses(&f)[3], ("node.address.ipv6".into(), Status::Warn));
    }
}
