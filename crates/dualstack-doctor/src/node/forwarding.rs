//! Forwarding per family: the global switches, and for IPv4 the uplinks' own flag (IPv4
//! forwards only between interfaces whose `net.ipv4.conf.<if>.forwarding` is 1).

use dualstack_addr::Family;

use super::NodeFacts;
use crate::Check;
use crate::sysctl_fix::{self, key};

pub fn check(f: &NodeFacts) -> Vec<Check> {
    vec![ipv4(f), ipv6(f)]
}

fn ipv4(f: &NodeFacts) -> Check {
    const ID: &str = "node.forwarding.ipv4";
    match f.sysctl("net.ipv4.ip_forward") {
        Some("1") => {}
        Some(v) => {
            return Check::fail(
                ID,
                format!(
                    "net.ipv4.ip_forward = {v}: this node does not forward IPv4 (pods and Services cannot be reached)"
                ),
                sysctl_fix::set(&[("net.ipv4.ip_forward".into(), "1")]),
            );
        }
        None => {
            return Check::warn(
                ID,
                "cannot read net.ipv4.ip_forward",
                "run `dualstack doctor node` as root on the node itself",
            );
        }
    }
    let mut uplinks = f.uplinks(Family::V4);
    for dev in f.uplinks(Family::V6) {
        if !uplinks.contains(&dev) {
            uplinks.push(dev);
        }
    }
    let off: Vec<(String, &str)> = uplinks
        .iter()
        .map(|dev| key("net.ipv4.conf", dev, "forwarding"))
        .filter_map(|k| match f.sysctl(&k) {
            Some("0") => Some((k, "1")),
            _ => None,
        })
        .collect();
    if off.is_empty() {
        let shown = if uplinks.is_empty() {
            String::new()
        } else {
            format!(" (uplink {} too)", uplinks.join(", "))
        };
        Check::ok(ID, format!("net.ipv4.ip_forward = 1{shown}"))
    } else {
        let names: Vec<String> = off.iter().map(|(k, _)| format!("{k} = 0")).collect();
        Check::fail(
            ID,
            format!(
                "net.ipv4.ip_forward = 1 but {}: IPv4 is not forwarded through that interface",
                names.join(", ")
            ),
            sysctl_fix::set(&off),
        )
    }
}

fn ipv6(f: &NodeFacts) -> Check {
    const ID: &str = "node.forwarding.ipv6";
    let all = f.sysctl("net.ipv6.conf.all.forwarding");
    let default = f.sysctl("net.ipv6.conf.default.forwarding");
    if all.is_none() && f.sysctl("net.ipv6.conf.all.disable_ipv6").is_none() {
        return Check::fail(
            ID,
            "IPv6 is disabled in this kernel (no /proc/sys/net/ipv6): a dual-stack node needs it",
            "remove ipv6.disable=1 from GRUB_CMDLINE_LINUX in /etc/default/grub, run update-grub and reboot",
        );
    }
    if f.sysctl("net.ipv6.conf.all.disable_ipv6") == Some("1") {
        return Check::fail(
            ID,
            "net.ipv6.conf.all.disable_ipv6 = 1: IPv6 is switched off on every interface",
            sysctl_fix::set(&[
                ("net.ipv6.conf.all.disable_ipv6".into(), "0"),
                ("net.ipv6.conf.default.disable_ipv6".into(), "0"),
            ]),
        );
    }
    match (all, default) {
        (Some("1"), Some("1")) => Check::ok(
            ID,
            "net.ipv6.conf.all.forwarding = 1, net.ipv6.conf.default.forwarding = 1",
        ),
        (Some("1"), other) => Check::warn(
            ID,
            format!(
                "net.ipv6.conf.all.forwarding = 1 but net.ipv6.conf.default.forwarding = {}: interfaces created later (pod veths) start as hosts",
                other.unwrap_or("unreadable")
            ),
            sysctl_fix::set(&[("net.ipv6.conf.default.forwarding".into(), "1")]),
        ),
        (other, _) => Check::fail(
            ID,
            format!(
                "net.ipv6.conf.all.forwarding = {}: this node does not forward IPv6 (pods and Services cannot be reached over IPv6)",
                other.unwrap_or("unreadable")
            ),
            sysctl_fix::set(&[
                ("net.ipv6.conf.all.forwarding".into(), "1"),
                ("net.ipv6.conf.default.forwarding".into(), "1"),
            ]),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::healthy;
    use super::*;
    use crate::Status;

    fn with(changes: &[(&str, Option<&str>)]) -> Vec<Check> {
        let mut f = healthy();
        for (k, v) in changes {
            match v {
                Some(v) => f.sysctls.insert(k.to_string(), v.to_string()),
                None => f.sysctls.remove(*k),
            };
        }
        check(&f)
    }

    #[test]
    fn table() {
        type Case<'a> = (&'a [(&'a str, Option<&'a str>)], Status, Status, &'a str);
        let cases: &[Case] = &[
            (&[], Status::Ok, Status::Ok, ""),
            (
                &[("net.ipv4.ip_forward", Some("0"))],
                Status::Fail,
                Status::Ok,
                "sysctl -w net.ipv4.ip_forward=1",
            ),
            (
                &[("net.ipv4.conf.eth0.forwarding", Some("0"))],
                Status::Fail,
                Status::Ok,
                "sysctl -w net.ipv4.conf.eth0.forwarding=1",
            ),
            (
                &[("net.ipv4.ip_forward", None)],
                Status::Warn,
                Status::Ok,
                "as root",
            ),
            (
                &[("net.ipv6.conf.all.forwarding", Some("0"))],
                Status::Ok,
                Status::Fail,
                "sysctl -w net.ipv6.conf.all.forwarding=1 net.ipv6.conf.default.forwarding=1",
            ),
            (
                &[("net.ipv6.conf.default.forwarding", Some("0"))],
                Status::Ok,
                Status::Warn,
                "sysctl -w net.ipv6.conf.default.forwarding=1",
            ),
            (
                &[("net.ipv6.conf.all.disable_ipv6", Some("1"))],
                Status::Ok,
                Status::Fail,
                "disable_ipv6=0",
            ),
            (
                &[
                    ("net.ipv6.conf.all.disable_ipv6", None),
                    ("net.ipv6.conf.all.forwarding", None),
                ],
                Status::Ok,
                Status::Fail,
                "ipv6.disable=1",
            ),
        ];
        for (changes, v4, v6, fix) in cases {
            let got = with(changes);
            assert_eq!(
                (got[0].status, got[1].status),
                (*v4, *v6),
                "{changes:?}: {got:#?}"
            );
            let fixes: String = got.iter().filter_map(|c| c.fix.clone()).collect();
            assert!(fixes.contains(fix), "{changes:?}: {fixes}");
        }
    }
}
