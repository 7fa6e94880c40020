//! The data-plane model: what traffic we take (frontends) and where it goes (backends).

use std::fmt;
use std::net::IpAddr;

use dualstack_addr::Family;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// Transport protocol of a frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Protocol {
    /// TCP (`tcp` in nft, `TCP` in Kubernetes objects).
    #[serde(rename = "TCP")]
    Tcp,
    /// UDP (`udp` in nft, `UDP` in Kubernetes objects).
    #[serde(rename = "UDP")]
    Udp,
    /// SCTP (`sctp` in nft, `SCTP` in Kubernetes objects).
    #[serde(rename = "SCTP")]
    Sctp,
}

impl Protocol {
    /// The lower-case name nft and iptables use: `tcp`, `udp`, `sctp`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Tcp => "tcp",
            Protocol::Udp => "udp",
            Protocol::Sctp => "sctp",
        }
    }
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which destination addresses a frontend answers on.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Destination {
    /// Any address local to the namespace (`fib daddr type local`), as klipper-lb does.
    AnyLocal,
    /// Only these addresses (node addresses in agent mode). May mix both families.
    Addresses(Vec<IpAddr>),
}

/// One backend: an address and port to DNAT to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Backend {
    /// Where to send the connection (a pod, or the ClusterIP in klipper mode).
    pub addr: IpAddr,
    /// The backend's port (the Service's target port, not the frontend's).
    pub port: u16,
}

impl Backend {
    /// The family of [`Backend::addr`]; a backend only serves clients of its own family.
    pub fn family(&self) -> Family {
        Family::of(self.addr)
    }
}

/// How a new connection picks one of several backends of its family.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Selection {
    /// Uniformly at random per new connection (`numgen random`).
    #[default]
    Random,
    /// By a hash of the client's address and port (`jhash`).
    Hash,
}

/// Traffic we take, and where it goes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Frontend {
    /// Stable, human-readable name (for example `default/traefik:websecure`); used in
    /// comments, logs and errors. Unique within a ruleset.
    pub name: String,
    /// Which addresses of this node the frontend answers on.
    pub destination: Destination,
    /// The transport protocol it takes.
    pub protocol: Protocol,
    /// The port clients connect to (the Service port).
    pub port: u16,
    /// Allowed client source ranges, both families in one list. A family with no range
    /// here is denied entirely: listing only IPv4 ranges blocks every IPv6 client.
    /// Use `0.0.0.0/0` and `::/0` to allow everything.
    pub source_ranges: Vec<IpNet>,
    /// Backends, both families in one list. A family with no backend is not served.
    pub backends: Vec<Backend>,
    /// How a new connection picks one of several backends of its family.
    #[serde(default)]
    pub selection: Selection,
    /// Source-NAT (masquerade) forwarded traffic so replies come back through us.
    /// Off for `externalTrafficPolicy: Local`, where the backend must see the client.
    pub masquerade: bool,
}

/// An inclusive range of addresses of one family (`first <= last`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AddressRange {
    /// The lowest address of the range.
    pub first: IpAddr,
    /// The highest address, inclusive; same family as `first`.
    pub last: IpAddr,
}

/// Everything one owner wants programmed, in one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Ruleset {
    /// The nft table name (`table inet <name>`), `dualstack` by default.
    pub table: String,
    /// Everything the table serves, one entry per Service port and destination set.
    pub frontends: Vec<Frontend>,
    /// Dedicated (pool) address ranges: traffic to them that no frontend took is dropped,
    /// so a node that receives it (it is not the announcer, or the port is not a Service's)
    /// never routes it onwards (nft: chain `pool-guard`, with a counter; the iptables
    /// fallback does not render it yet). Empty: no guard at all.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub guard: Vec<AddressRange>,
}

/// The default table name.
pub const DEFAULT_TABLE: &str = "dualstack";

impl Frontend {
    /// This frontend's backends of one family, in the order given.
    pub fn backends_of(&self, family: Family) -> impl Iterator<Item = &Backend> {
        self.backends.iter().filter(move |b| b.family() == family)
    }

    /// This frontend's allowed source ranges of one family, in the order given.
    pub fn source_ranges_of(&self, family: Family) -> impl Iterator<Item = &IpNet> {
        self.source_ranges
            .iter()
            .filter(move |r| Family::of_net(**r) == family)
    }

    /// The families this frontend serves: those with at least one backend (IPv4 first).
    pub fn served_families(&self) -> Vec<Family> {
        Family::BOTH
            .into_iter()
            .filter(|f| self.backends_of(*f).next().is_some())
            .collect()
    }
}

impl Ruleset {
    /// An empty ruleset for `table`.
    pub fn new(table: impl Into<String>) -> Ruleset {
        Ruleset {
            table: table.into(),
            frontends: Vec::new(),
            guard: Vec::new(),
        }
    }
}

/// Which clients of one family a frontend admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    /// Every client: a `::/0` or `0.0.0.0/0` range was listed; no check needed.
    Everything,
    /// No client: no range of this family was listed, so the family is denied.
    Nothing,
    /// Non-empty, merged (no overlaps, host bits cleared), sorted.
    Only(Vec<IpNet>),
}

/// The source ranges of one family, normalised: merged, with host bits cleared.
pub fn allowed_ranges(fe: &Frontend, family: Family) -> Allowed {
    let nets: Vec<IpNet> = fe.source_ranges_of(family).map(|n| n.trunc()).collect();
    if nets.is_empty() {
        Allowed::Nothing
    } else if nets.iter().any(|n| n.prefix_len() == 0) {
        Allowed::Everything
    } else if nets.len() == 1 {
        // Already merged (the common case; `aggregate` costs several allocations).
        Allowed::Only(nets)
    } else {
        let merged = IpNet::aggregate(&nets);
        // `0.0.0.0/1` + `128.0.0.0/1` (a common way to write "everything") merge into a
        // `/0`: no check, as if it had been listed (a `/0` comparison has no bytes to load).
        if merged.iter().any(|n| n.prefix_len() == 0) {
            Allowed::Everything
        } else {
            Allowed::Only(merged)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_ranges(ranges: &[&str]) -> Frontend {
        Frontend {
            name: "default/web:http".into(),
            destination: Destination::AnyLocal,
            protocol: Protocol::Tcp,
            port: 80,
            source_ranges: ranges.iter().filter_map(|r| r.parse().ok()).collect(),
            backends: Vec::new(),
            selection: Selection::Random,
            masquerade: false,
        }
    }

    #[test]
    fn halves_of_the_address_space_admit_everyone_like_a_slash_zero() {
        let fe = with_ranges(&["0.0.0.0/1", "128.0.0.0/1", "::/1", "8000::/1"]);
        assert_eq!(allowed_ranges(&fe, Family::V4), Allowed::Everything);
        assert_eq!(allowed_ranges(&fe, Family::V6), Allowed::Everything);
        let fe = with_ranges(&["0.0.0.0/1", "192.0.0.0/2", "10.0.0.0/8"]);
        assert_eq!(
            allowed_ranges(&fe, Family::V4),
            Allowed::Only(vec![
                "0.0.0.0/1".parse().unwrap(),
                "192.0.0.0/2".parse().unwrap()
            ])
        );
    }
}
