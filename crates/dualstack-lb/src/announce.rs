//! Who announces each pool address: exactly one node, chosen by the decision, so every
//! agent, the controller and `lb explain` agree without talking to each other.
//!
//! **Candidates** for an address are the nodes that program it for every Service holding it
//! (ready, not draining, live agent Lease, selected by the pool's `nodeSelector`, with an
//! interface to announce on; for `externalTrafficPolicy: Local` only nodes with a ready
//! endpoint). Liveness comes from the per-node agent Leases only — no Lease per Service.
//!
//! **Choice**: rendezvous hashing — the candidate with the highest [`score`] of
//! `node name # address` wins. When the announcer leaves, only its addresses move, each to
//! the next-highest candidate; the others stay put. The score function is part of the
//! contract (changing it moves addresses), so it is written out here, not taken from `std`'s
//! unstable hasher: FNV-1a over the bytes, then the splitmix64 finalizer for avalanche.
//!
//! The agent reads its own [`Announcement`]s; the announcer only carries them out.

use std::collections::BTreeSet;
use std::net::IpAddr;

use dualstack_addr::Family;
use serde::Serialize;

use crate::allocate::Origin;
use crate::service_key::ServiceKey;

/// One address a node announces (ARP for IPv4, NDP for IPv6).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Announcement {
    /// The announcing node.
    pub node: String,
    /// The address it answers ARP/NDP for.
    pub ip: IpAddr,
    /// The pool the address is from.
    pub pool: String,
    /// The pool's `spec.interfaces`; empty: the interface that holds [`Self::via`].
    pub interfaces: Vec<String>,
    /// The node's own address of this family (the default interface is the one holding it).
    pub via: Option<IpAddr>,
}

/// One pool address in use: who holds it and who announces it (the published record).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolAddress {
    /// The address.
    pub ip: IpAddr,
    /// Its family.
    pub family: Family,
    /// The pool it is from.
    pub pool: String,
    /// Each Service on it (serialized as `namespace/name`), oldest first, with how it got
    /// it.
    pub services: Vec<(ServiceKey, Origin)>,
    /// The announcing node; `None` when no node can (see `candidates`).
    pub announcer: Option<String>,
    /// Nodes that could announce it, by name.
    pub candidates: Vec<String>,
}

/// Usage of one pool, for explanations and `doctor`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PoolReport {
    /// The pool's name.
    pub name: String,
    /// The pool's `spec.addresses` entries, as written.
    pub addresses: Vec<String>,
    /// `spec.autoAssign`: Services that name no pool and ask for no address get addresses here.
    pub auto_assign: bool,
    /// `spec.nodeSelector`, as `key=value`.
    pub node_selector: Vec<String>,
    /// `spec.interfaces` (empty: the interface that holds the node's own address).
    pub interfaces: Vec<String>,
    /// The usable pool's address ranges, first to last (empty when the pool has errors).
    pub ranges: Vec<(IpAddr, IpAddr)>,
    /// Per family: (family, addresses in the pool, addresses in use).
    pub usage: Vec<(Family, String, usize)>,
    /// Why the pool hands out nothing, if so.
    pub errors: Vec<String>,
    /// For a pool that follows the nodes' IPv6 prefix: the prefixes its nodes report.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prefixes: Option<crate::prefix_pool::PrefixView>,
}

/// The rendezvous score of `node` for `ip`.
pub fn score(node: &str, ip: IpAddr) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    let text = format!("{node}#{ip}");
    for byte in text.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    // splitmix64 finalizer.
    hash = (hash ^ (hash >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    hash = (hash ^ (hash >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    hash ^ (hash >> 31)
}

/// The announcer of `ip` among `candidates`: the highest score, ties by name.
pub fn choose(ip: IpAddr, candidates: &BTreeSet<String>) -> Option<String> {
    candidates
        .iter()
        .max_by(|a, b| {
            score(a, ip)
                .cmp(&score(b, ip))
                .then_with(|| b.as_str().cmp(a.as_str()))
        })
        .cloned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn score_is_stable_across_releases() {
        // Pinned: a change here moves every announced address. Checked against an
        // independent implementation of FNV-1a 64 + splitmix64.
        let ip = "192.0.2.10".parse().unwrap();
        assert_eq!(format!("{:016x}", score("node-1", ip)), "3e6a71a1c9db4c1d");
    }

    #[test]
    fn only_the_leavers_addresses_move_and_spread_is_fair() {
        let nodes: BTreeSet<String> = (1..=3).map(|n| format!("node-{n}")).collect();
        let ips: Vec<IpAddr> = (1..=300u32)
            .map(|n| IpAddr::V4(std::net::Ipv4Addr::from(0xc000_0200 + n)))
            .collect();
        let mut counts = std::collections::BTreeMap::new();
        for ip in &ips {
            let before = choose(*ip, &nodes).unwrap();
            *counts.entry(before.clone()).or_insert(0) += 1;
            let mut without = nodes.clone();
            without.remove("node-2");
            let after = choose(*ip, &without).unwrap();
            if before != "node-2" {
                assert_eq!(before, after, "{ip} moved although its node stayed");
            }
        }
        for (node, n) in counts {
            assert!((60..=140).contains(&n), "{node} announces {n} of 300");
        }
        assert_eq!(choose(ips[0], &BTreeSet::new()), None);
    }
}
