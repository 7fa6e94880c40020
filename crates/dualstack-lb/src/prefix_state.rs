//! The state of one IPv6 prefix a prefix-following pool makes addresses in
//! ([`PrefixState`], [`PrefixStatus`]), and how an allocated address was made from it
//! ([`PrefixUse`]). Plain data: [`crate::prefix_pool`] computes it, the allocation
//! ([`crate::allocate`]) carries it, `lb explain` and the doctor print it.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use ipnet::Ipv6Net;
use serde::Serialize;

use crate::time::Timestamp;

/// Where a prefix stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PrefixStatus {
    /// Current: preferred, nothing newer.
    Preferred,
    /// Preferred lifetime over, still valid, nothing newer: still served.
    Deprecated,
    /// A newer prefix took over; still served until `withdraw_at`.
    Superseded,
    /// No longer published (grace over); nodes still report it.
    Withdrawn,
}

impl std::fmt::Display for PrefixStatus {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            PrefixStatus::Preferred => "preferred",
            PrefixStatus::Deprecated => "deprecated",
            PrefixStatus::Superseded => "superseded",
            PrefixStatus::Withdrawn => "withdrawn",
        })
    }
}

/// One /64 a prefix-following pool makes addresses in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixState {
    /// The /64 the addresses are in.
    pub subnet: Ipv6Net,
    /// The prefixes the nodes reported that map to it.
    pub learned: BTreeSet<Ipv6Net>,
    /// Node → the interface it reports the prefix on.
    pub nodes: BTreeMap<String, String>,
    /// When the first node got it; `None`: unknown.
    pub since: Option<Timestamp>,
    /// `None`: forever.
    pub preferred_until: Option<Timestamp>,
    /// `None`: forever.
    pub valid_until: Option<Timestamp>,
    /// Where it is in its life (active, superseded, withdrawn, …).
    pub status: PrefixStatus,
    /// The newer prefix that superseded this one, and when it appeared.
    pub superseded_by: Option<(Ipv6Net, Option<Timestamp>)>,
    /// When addresses in it are withdrawn (`None`: not planned).
    pub withdraw_at: Option<Timestamp>,
}

impl PrefixState {
    /// Whether addresses in it are published.
    pub fn active(&self) -> bool {
        self.status != PrefixStatus::Withdrawn
    }

    /// Why it is (or will be) withdrawn, in words.
    pub fn withdrawal(&self) -> String {
        let valid = match self.valid_until {
            Some(t) => format!("its valid lifetime ends at {t}"),
            None => "its valid lifetime is forever".to_string(),
        };
        match (&self.superseded_by, self.withdraw_at) {
            (Some((newer, _)), Some(at)) if Some(at) != self.valid_until => {
                format!("{newer} superseded it and the grace time ends at {at}")
            }
            (Some((newer, _)), _) => format!("{newer} superseded it and {valid}"),
            (None, _) => valid,
        }
    }
}

fn time(t: Option<Timestamp>) -> String {
    t.map_or_else(|| "forever".to_string(), |t| t.to_string())
}

impl std::fmt::Display for PrefixState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} (on {}; since {}, preferred until {}, valid until {}",
            self.subnet,
            self.status,
            self.nodes
                .iter()
                .map(|(n, i)| format!("{n} {i}"))
                .collect::<Vec<_>>()
                .join(", "),
            self.since
                .map_or_else(|| "?".to_string(), |t| t.to_string()),
            time(self.preferred_until),
            time(self.valid_until),
        )?;
        if self.status == PrefixStatus::Superseded || self.status == PrefixStatus::Withdrawn {
            write!(f, "; {}", self.withdrawal())?;
        }
        f.write_str(")")
    }
}

/// How an address of a prefix-following pool was made.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PrefixUse {
    /// The Service's host part (`::f0`).
    pub host: IpAddr,
    /// The prefix it is combined with.
    pub prefix: PrefixState,
}
