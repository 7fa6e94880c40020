//! An IPv6 default route learned from router advertisements (`proto ra`) on a forwarding
//! node: the kernel ignores RAs on a forwarding interface unless its `accept_ra` is 2, so the
//! route expires and IPv6 stops (k3s #5019). The per-interface value is what counts (an
//! `all` of 2 alone does not help: talos #5632).

use dualstack_addr::Family;

use super::NodeFacts;
use crate::Check;
use crate::sysctl_fix::{self, key};

const ID: &str = "node.ipv6.accept-ra";

pub fn check(f: &NodeFacts) -> Check {
    let ra_devs: Vec<&str> = f
        .routes
        .iter()
        .filter(|r| r.family == Family::V6 && r.protocol.as_deref() == Some("ra"))
        .filter_map(|r| r.dev.as_deref())
        .fold(Vec::new(), |mut v, d| {
            if !v.contains(&d) {
                v.push(d);
            }
            v
        });
    if ra_devs.is_empty() {
        return Check::ok(
            ID,
            "no IPv6 default route from router advertisements (nothing to expire)",
        );
    }
    let mut bad = Vec::new();
    let mut will_break = Vec::new();
    let mut good = Vec::new();
    for dev in &ra_devs {
        let accept_key = key("net.ipv6.conf", dev, "accept_ra");
        let accept = f.sysctl(&accept_key).unwrap_or("?");
        let forwarding = f
            .sysctl(&key("net.ipv6.conf", dev, "forwarding"))
            .or_else(|| f.sysctl("net.ipv6.conf.all.forwarding"))
            == Some("1");
        let line = format!("{accept_key} = {accept}");
        match (accept, forwarding) {
            ("2", _) => good.push(line),
            (_, true) => bad.push((accept_key, line)),
            (_, false) => will_break.push((accept_key, line)),
        }
    }
    let fix = |list: &[(String, String)]| {
        let settings: Vec<(String, &str)> = list.iter().map(|(k, _)| (k.clone(), "2")).collect();
        sysctl_fix::set(&settings)
    };
    let lines = |list: &[(String, String)]| {
        list.iter()
            .map(|(_, l)| l.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    };
    if !bad.is_empty() {
        Check::fail(
            ID,
            format!(
                "the IPv6 default route via {} comes from router advertisements, forwarding is on and {}: RAs are ignored, the route will expire",
                ra_devs.join(", "),
                lines(&bad)
            ),
            fix(&bad),
        )
    } else if !will_break.is_empty() {
        Check::warn(
            ID,
            format!(
                "the IPv6 default route via {} comes from router advertisements and {}: once IPv6 forwarding is on (K3s turns it on) the route will expire",
                ra_devs.join(", "),
                lines(&will_break)
            ),
            fix(&will_break),
        )
    } else {
        Check::ok(
            ID,
            format!(
                "IPv6 default route from router advertisements, kept while forwarding ({})",
                good.join(", ")
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{healthy, route};
    use super::*;
    use crate::Status;

    #[test]
    fn table() {
        // (accept_ra on eth0, forwarding on eth0, route protocol) -> status
        let cases = [
            (Some("2"), "1", Some("ra"), Status::Ok),
            (Some("1"), "1", Some("ra"), Status::Fail),
            (Some("0"), "1", Some("ra"), Status::Fail),
            (None, "1", Some("ra"), Status::Fail),
            (Some("1"), "0", Some("ra"), Status::Warn),
            (Some("1"), "1", Some("static"), Status::Ok),
            (Some("1"), "1", None, Status::Ok),
        ];
        for (accept, fwd, proto, want) in cases {
            let mut f = healthy();
            match accept {
                Some(a) => f
                    .sysctls
                    .insert("net.ipv6.conf.eth0.accept_ra".into(), a.into()),
                None => f.sysctls.remove("net.ipv6.conf.eth0.accept_ra"),
            };
            f.sysctls
                .insert("net.ipv6.conf.eth0.forwarding".into(), fwd.into());
            f.routes[1] = route(Family::V6, "eth0", "fe80::1", proto);
            let c = check(&f);
            assert_eq!(c.status, want, "{accept:?} {fwd} {proto:?}: {c:#?}");
            if want != Status::Ok {
                assert!(c.message.contains("eth0"), "{c:#?}");
                assert_eq!(
                    c.fix.as_deref(),
                    Some(
                        "sysctl -w net.ipv6.conf.eth0.accept_ra=2\nprintf 'net.ipv6.conf.eth0.accept_ra = 2\\n' >> /etc/sysctl.d/90-dualstack.conf"
                    )
                );
            }
        }
    }
}
