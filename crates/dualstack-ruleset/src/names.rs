//! Stable, safe names for the objects we create per frontend (nft chains, iptables chains),
//! and for the nft source-range chains frontends share.
//!
//! A frontend's name (for example `default/traefik:websecure`) may contain characters that
//! are not valid in an nft identifier, and iptables chain names are limited to 28
//! characters. So every generated name carries a hash of the full frontend name (unique even
//! after truncation) and, for nft, a readable sanitized prefix so `nft list` stays legible.
//!
//! The hash is 64-bit FNV-1a, written out here because its output must never change between
//! Rust releases (`std`'s `DefaultHasher` gives no such promise) — chain names survive
//! restarts and are how a later run finds what an earlier run created.

use std::fmt::{self, Write as _};

use dualstack_addr::Family;
use ipnet::IpNet;

/// 64-bit FNV-1a of `text`: stable across platforms and releases.
pub(crate) fn fnv1a64(text: &str) -> u64 {
    fnv1a64_from(FNV_OFFSET, text)
}

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;

/// FNV-1a continued from state `hash` over `text`.
fn fnv1a64_from(hash: u64, text: &str) -> u64 {
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    text.bytes()
        .fold(hash, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME))
}

/// Longest sanitized part of a frontend name kept in an nft chain name.
const READABLE_MAX: usize = 40;

/// The per-frontend part of our nft chain names: `<sanitized name>-<8 hex hash>`.
///
/// Characters outside `[A-Za-z0-9_.-]` become `_`; the hash keeps names that sanitize or
/// truncate to the same text apart.
pub fn frontend_id(name: &str) -> String {
    let readable: String = name
        .chars()
        .take(READABLE_MAX)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    let hash = fnv1a64(name) as u32;
    format!("{readable}-{hash:08x}")
}

/// What decides [`frontend_id`], without building it: the hash of the full name (the id's
/// hex part) and a hash of the sanitized readable part. Two names with different keys
/// have different ids; equal keys mean equal ids unless the 64-bit hashes of two different
/// readable parts collide (validation then compares the ids themselves).
pub(crate) fn frontend_id_key(name: &str) -> (u32, u64) {
    let mut readable = FNV_OFFSET;
    let mut utf8 = [0u8; 4];
    for c in name.chars().take(READABLE_MAX) {
        let c = if c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-') {
            c
        } else {
            '_'
        };
        readable = fnv1a64_from(readable, c.encode_utf8(&mut utf8));
    }
    (fnv1a64(name) as u32, readable)
}

/// The nft chain that picks a backend and DNATs for one frontend and family: `fe4-…`/`fe6-…`.
pub fn nat_chain(name: &str, family: Family) -> String {
    format!("fe{}-{}", family_digit(family), frontend_id(name))
}

/// The nft chain that enforces source ranges for one frontend and family: `fw4-…`/`fw6-…`.
pub fn firewall_chain(name: &str, family: Family) -> String {
    format!("fw{}-{}", family_digit(family), frontend_id(name))
}

/// The nft chain that admits only `nets` (one family, normalised by
/// [`crate::nft::allowed_ranges`]) and drops everything else: `allow4-…`/`allow6-…` with a
/// 64-bit hash of the ranges. Named by content, not by frontend, so every frontend with the
/// same ranges shares one chain (see the layout in [`crate::nft`]); validation rejects two
/// different range lists that hash alike.
pub fn allow_chain(family: Family, nets: &[IpNet]) -> String {
    // The hash of the ranges' text joined by `,`, fed piece by piece (no allocation).
    let mut hash = Fnv1a64(FNV_OFFSET);
    for (i, net) in nets.iter().enumerate() {
        let sep = if i == 0 { "" } else { "," };
        let _ = write!(hash, "{sep}{net}");
    }
    format!("allow{}-{:016x}", family_digit(family), hash.0)
}

/// FNV-1a fed through [`fmt::Write`], equal to [`fnv1a64`] of the concatenated text.
struct Fnv1a64(u64);

impl fmt::Write for Fnv1a64 {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        self.0 = fnv1a64_from(self.0, s);
        Ok(())
    }
}

/// Prefix of every iptables chain we own; cleanup recognises our chains by it.
pub const IPTABLES_PREFIX: &str = "DUALSTACK-";

/// The iptables chain (nat table) that DNATs one frontend: `DUALSTACK-F-<12 hex>` (24 chars).
pub fn iptables_nat_chain(name: &str) -> String {
    format!("{IPTABLES_PREFIX}F-{:012X}", fnv1a64(name) >> 16)
}

/// The iptables chain (mangle table) that enforces one frontend's source ranges:
/// `DUALSTACK-W-<12 hex>`.
pub fn iptables_firewall_chain(name: &str) -> String {
    format!("{IPTABLES_PREFIX}W-{:012X}", fnv1a64(name) >> 16)
}

fn family_digit(family: Family) -> char {
    match family {
        Family::V4 => '4',
        Family::V6 => '6',
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fnv_matches_published_test_vectors() {
        // From the FNV reference test suite.
        assert_eq!(fnv1a64(""), 0xcbf2_9ce4_8422_2325);
        assert_eq!(fnv1a64("a"), 0xaf63_dc4c_8601_ec8c);
        assert_eq!(fnv1a64("foobar"), 0x8594_4171_f739_67e8);
    }

    #[test]
    fn id_keys_follow_ids() {
        for (a, b) in [
            ("a/b", "a:b"),
            ("web", "web"),
            ("x".repeat(50).as_str(), "y"),
        ] {
            assert_eq!(
                frontend_id(a) == frontend_id(b),
                frontend_id_key(a) == frontend_id_key(b),
                "{a} {b}"
            );
        }
    }

    #[test]
    fn names_are_sanitized_bounded_and_distinct() {
        let id = frontend_id("default/traefik:websecure");
        assert!(id.starts_with("default_traefik_websecure-"), "{id}");
        assert_ne!(frontend_id("a/b"), frontend_id("a:b"));
        let long = "x".repeat(300);
        assert_eq!(frontend_id(&long).len(), READABLE_MAX + 9);
        assert_eq!(nat_chain("web", Family::V6).get(..4), Some("fe6-"));
        assert_eq!(firewall_chain("web", Family::V4).get(..4), Some("fw4-"));
        let ipt = iptables_nat_chain(&long);
        assert!(ipt.len() <= 28 && ipt.starts_with("DUALSTACK-F-"), "{ipt}");
        assert_ne!(iptables_nat_chain("a"), iptables_nat_chain("b"));
    }

    #[test]
    fn allow_chains_are_named_by_family_and_content() {
        let nets =
            |list: &[&str]| -> Vec<IpNet> { list.iter().map(|n| n.parse().unwrap()).collect() };
        let a = allow_chain(Family::V4, &nets(&["10.0.0.0/8"]));
        assert_eq!(a, format!("allow4-{:016x}", fnv1a64("10.0.0.0/8")));
        let two = allow_chain(Family::V4, &nets(&["10.0.0.0/8", "192.168.0.0/16"]));
        assert_eq!(
            two,
            format!("allow4-{:016x}", fnv1a64("10.0.0.0/8,192.168.0.0/16"))
        );
        assert_eq!(a, allow_chain(Family::V4, &nets(&["10.0.0.0/8"])));
        assert_ne!(
            a,
            allow_chain(Family::V4, &nets(&["10.0.0.0/8", "192.168.0.0/16"]))
        );
        assert!(allow_chain(Family::V6, &nets(&["fd00::/8"])).starts_with("allow6-"));
    }
}
