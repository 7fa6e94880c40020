//! Interfaces, addresses and default routes, read from `ip -d -j addr show` and
//! `ip -j -4|-6 route show default` output. [`parse_addrs`] is the project's one reader of
//! `ip -j addr` (the doctor's node checks, and the demo's agents reporting live addresses).

use std::net::IpAddr;

use dualstack_addr::Family;
use serde::Deserialize;

use super::FactError;

/// One network interface and its addresses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interface {
    /// The interface name (`eth0`).
    pub name: String,
    /// `linkinfo.info_kind` (`bridge`, `veth`, `vxlan`, …); `None` for plain devices.
    pub kind: Option<String>,
    /// Whether the link is administratively up.
    pub up: bool,
    /// Its addresses, both families.
    pub addrs: Vec<Address>,
}

/// One address on an interface.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Address {
    /// The address.
    pub addr: IpAddr,
    /// The on-link prefix length.
    pub prefix_len: u8,
    /// `global`, `link`, `host`, `site`.
    pub scope: String,
    /// Duplicate address detection has not finished: not usable yet.
    pub tentative: bool,
    /// Duplicate address detection failed: not usable.
    pub dad_failed: bool,
    /// Its preferred lifetime is over (for example its prefix is being withdrawn): kept, but not chosen for new connections.
    pub deprecated: bool,
    /// An RFC 8981 temporary (privacy) address.
    pub temporary: bool,
}

impl Address {
    /// Usable as a node address: global scope (global unicast, ULA or private IPv4), and DAD
    /// done.
    pub fn usable(&self) -> bool {
        self.scope == "global" && !self.tentative && !self.dad_failed
    }

    /// The family of [`Address::addr`].
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }
}

impl Interface {
    /// Usable addresses of `family` on this interface.
    pub fn usable(&self, family: Family) -> impl Iterator<Item = &Address> {
        self.addrs
            .iter()
            .filter(move |a| a.family() == family && a.usable())
    }
}

/// One default route (one per next hop for multipath routes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Which family the route is for.
    pub family: Family,
    /// The interface it leaves by, if named.
    pub dev: Option<String>,
    /// The next hop, if any (none for on-link or point-to-point routes).
    pub gateway: Option<IpAddr>,
    /// `ra` for routes learned from router advertisements, `static`, `dhcp`, … `None` when
    /// `ip` omits it (`boot`).
    pub protocol: Option<String>,
}

#[derive(Deserialize)]
struct RawLink {
    #[serde(default)]
    ifname: String,
    #[serde(default)]
    flags: Vec<String>,
    #[serde(default)]
    linkinfo: Option<RawLinkInfo>,
    #[serde(default)]
    addr_info: Vec<RawAddr>,
}

#[derive(Deserialize)]
struct RawLinkInfo {
    info_kind: Option<String>,
}

#[derive(Deserialize)]
struct RawAddr {
    #[serde(default)]
    family: String,
    /// Read as text, so that a malformed one can be named in the error.
    local: Option<String>,
    prefixlen: Option<u8>,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    tentative: bool,
    #[serde(default)]
    dadfailed: bool,
    #[serde(default)]
    deprecated: bool,
    #[serde(default)]
    temporary: bool,
}

/// Parses `ip -d -j addr show` (`-d` adds the link kind; without it kinds are `None`).
/// Addresses of other families and entries without an address or prefix length are skipped;
/// an address that does not parse is an error naming it.
pub fn parse_addrs(json: &str) -> Result<Vec<Interface>, FactError> {
    const SOURCE: &str = "ip -d -j addr show";
    let raw: Vec<RawLink> = serde_json::from_str(json).map_err(|e| FactError::Json {
        source_name: SOURCE,
        detail: e.to_string(),
    })?;
    let mut out = Vec::with_capacity(raw.len());
    for l in raw {
        let mut addrs = Vec::with_capacity(l.addr_info.len());
        for a in l.addr_info {
            let Some(local) = a.local else { continue };
            let addr: IpAddr = local.parse().map_err(|_| FactError::Json {
                source_name: SOURCE,
                detail: format!("{local:?} is not an address"),
            })?;
            if a.family != "inet" && a.family != "inet6" {
                continue;
            }
            let Some(prefix_len) = a.prefixlen else {
                continue;
            };
            addrs.push(Address {
                addr,
                prefix_len,
                scope: a.scope,
                tentative: a.tentative,
                dad_failed: a.dadfailed,
                deprecated: a.deprecated,
                temporary: a.temporary,
            });
        }
        out.push(Interface {
            up: l.flags.iter().any(|f| f == "UP"),
            kind: l.linkinfo.and_then(|i| i.info_kind),
            addrs,
            name: l.ifname,
        });
    }
    Ok(out)
}

#[derive(Deserialize)]
struct RawRoute {
    dst: String,
    dev: Option<String>,
    gateway: Option<IpAddr>,
    protocol: Option<String>,
    #[serde(default)]
    nexthops: Vec<RawHop>,
}

#[derive(Deserialize)]
struct RawHop {
    dev: Option<String>,
    gateway: Option<IpAddr>,
}

/// Parses `ip -j -4 route show default` or `ip -j -6 route show default` (`family` says
/// which); keeps default routes only, one [`Route`] per next hop.
pub fn parse_routes(json: &str, family: Family) -> Result<Vec<Route>, FactError> {
    let raw: Vec<RawRoute> = serde_json::from_str(json).map_err(|e| FactError::Json {
        source_name: "ip -j route show default",
        detail: e.to_string(),
    })?;
    let mut out = Vec::new();
    for r in raw.into_iter().filter(|r| r.dst == "default") {
        if r.nexthops.is_empty() {
            out.push(Route {
                family,
                dev: r.dev,
                gateway: r.gateway,
                protocol: r.protocol,
            });
        } else {
            out.extend(r.nexthops.into_iter().map(|h| Route {
                family,
                dev: h.dev,
                gateway: h.gateway,
                protocol: r.protocol.clone(),
            }));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    // Trimmed from a real `ip -d -j addr show` (Debian 12, iproute2 6.1).
    const ADDRS: &str = r#"[
      {"ifindex":1,"ifname":"lo","flags":["LOOPBACK","UP","LOWER_UP"],"mtu":65536,"link_type":"loopback",
       "addr_info":[{"family":"inet","local":"127.0.0.1","prefixlen":8,"scope":"host","label":"lo"},
                    {"family":"inet6","local":"::1","prefixlen":128,"scope":"host"}]},
      {"ifindex":2,"ifname":"enp1s0","flags":["BROADCAST","MULTICAST","UP","LOWER_UP"],"mtu":1500,"link_type":"ether",
       "addr_info":[{"family":"inet","local":"192.168.1.10","prefixlen":24,"broadcast":"192.168.1.255","scope":"global","dynamic":true,"label":"enp1s0"},
                    {"family":"inet6","local":"2003:e9:f74a:ecf8:5054:ff:fe12:3456","prefixlen":64,"scope":"global","dynamic":true,"mngtmpaddr":true},
                    {"family":"inet6","local":"fd12:3456:789a::10","prefixlen":64,"scope":"global","tentative":true},
                    {"family":"inet6","local":"fe80::5054:ff:fe12:3456","prefixlen":64,"scope":"link"}]},
      {"ifindex":5,"ifname":"cni0","flags":["BROADCAST","MULTICAST","UP"],"linkinfo":{"info_kind":"bridge","info_data":{"stp_state":0}},
       "addr_info":[{"family":"inet","local":"10.42.0.1","prefixlen":24,"scope":"global"}]}
    ]"#;

    #[test]
    fn parses_interfaces_kinds_and_usable_addresses() {
        let ifs = parse_addrs(ADDRS).unwrap();
        assert_eq!(ifs.len(), 3);
        assert_eq!(ifs[2].kind.as_deref(), Some("bridge"));
        let uplink = &ifs[1];
        assert!(uplink.up);
        let v6: Vec<String> = uplink
            .usable(Family::V6)
            .map(|a| a.addr.to_string())
            .collect();
        assert_eq!(
            v6,
            ["2003:e9:f74a:ecf8:5054:ff:fe12:3456"],
            "tentative and link-local are not usable"
        );
        assert_eq!(uplink.usable(Family::V4).count(), 1);
        assert_eq!(
            ifs[0].usable(Family::V4).count(),
            0,
            "host scope is not usable"
        );
    }

    #[test]
    fn reads_every_address_flag_and_names_a_bad_address() {
        let json = r#"[{"ifname":"eth0","addr_info":[
            {"family":"inet6","local":"2001:db8::1","prefixlen":64,"scope":"global","temporary":true},
            {"family":"inet6","local":"2001:db8::2","prefixlen":64,"scope":"global","deprecated":true},
            {"family":"inet6","local":"2001:db8::3","prefixlen":64,"scope":"global","tentative":true},
            {"family":"inet6","local":"2001:db8::4","prefixlen":64,"scope":"global","dadfailed":true},
            {"family":"inet6","local":"2001:db8::5","scope":"global"},
            {"family":"link","local":"2001:db8::6","prefixlen":64}]}]"#;
        let addrs = &parse_addrs(json).unwrap()[0].addrs;
        let flags: Vec<(bool, bool, bool, bool)> = addrs
            .iter()
            .map(|a| (a.temporary, a.deprecated, a.tentative, a.dad_failed))
            .collect();
        assert_eq!(
            flags,
            [
                (true, false, false, false),
                (false, true, false, false),
                (false, false, true, false),
                (false, false, false, true),
            ],
            "no prefix length or another family: skipped"
        );
        let usable: Vec<bool> = addrs.iter().map(Address::usable).collect();
        assert_eq!(usable, [true, true, false, false]);

        let bad = r#"[{"addr_info":[{"local":"nonsense","scope":"global"}]}]"#;
        let err = parse_addrs(bad).unwrap_err().to_string();
        assert!(err.contains("\"nonsense\""), "{err}");
        assert!(parse_addrs("not json").is_err());
    }

    #[test]
    fn parses_default_routes_with_protocol_and_nexthops() {
        let v6 = r#"[{"dst":"default","gateway":"fe80::1","dev":"enp1s0","protocol":"ra","metric":1024,"flags":[],"expires":1788,"pref":"medium"},
                     {"dst":"fd00:1::/64","dev":"enp1s0","protocol":"kernel"}]"#;
        let routes = parse_routes(v6, Family::V6).unwrap();
        assert_eq!(
            routes,
            [Route {
                family: Family::V6,
                dev: Some("enp1s0".into()),
                gateway: Some("fe80::1".parse().unwrap()),
                protocol: Some("ra".into()),
            }]
        );
        let multi = r#"[{"dst":"default","protocol":"ra","metric":1024,"flags":[],"nexthops":[
            {"gateway":"fe80::1","dev":"eth0","weight":1,"flags":[]},{"gateway":"fe80::2","dev":"eth1","weight":1,"flags":[]}]}]"#;
        let routes = parse_routes(multi, Family::V6).unwrap();
        assert_eq!(routes.len(), 2);
        assert_eq!(routes[1].dev.as_deref(), Some("eth1"));
        assert!(parse_routes("[]", Family::V4).unwrap().is_empty());
        assert!(parse_routes("nope", Family::V4).is_err());
    }
}
