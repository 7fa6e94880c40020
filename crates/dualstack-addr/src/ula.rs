//! RFC 4193 unique local addresses: a `/48` made of `fd` and a random 40-bit Global ID.
//!
//! RFC 4193 §3.1 layout: `| 7 bits fc00::/7 | L=1 | 40-bit Global ID | 16-bit Subnet ID |
//! 64-bit Interface ID |`. §3.2.1: "Locally assigned Global IDs MUST be generated with a
//! pseudo-random algorithm"; §3.2.2's SHA-1-of-time-and-EUI-64 recipe is a suggestion, and
//! 40 bits from the operating system's random source satisfy the requirement.
//!
//! Randomness comes through [`RandomSource`], so everything here stays pure and testable:
//! [`SeededRandom`] is deterministic (tests, `--seed`); `OsRandom` (feature `os-rng`)
//! reads the OS generator and is the only I/O in this crate.

use std::fmt;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::Serialize;
use thiserror::Error;

/// The random source could not produce bytes.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("random source failed: {0}")]
pub struct RandomError(pub String);

/// Something that fills a buffer with random bytes.
pub trait RandomSource {
    /// Fills all of `buf`.
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError>;
}

impl<F> RandomSource for F
where
    F: FnMut(&mut [u8]) -> Result<(), RandomError>,
{
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        self(buf)
    }
}

/// A deterministic generator (SplitMix64) for reproducible output. Not for secrets.
#[derive(Debug, Clone)]
pub struct SeededRandom {
    state: u64,
}

impl SeededRandom {
    /// A generator whose output depends only on `seed`.
    pub fn new(seed: u64) -> Self {
        SeededRandom { state: seed }
    }

    fn next_u64(&mut self) -> u64 {
        // SplitMix64 (Steele, Lea, Flood: "Fast splittable pseudorandom number generators").
        self.state = self.state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
}

impl RandomSource for SeededRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        for chunk in buf.chunks_mut(8) {
            let bytes = self.next_u64().to_be_bytes();
            chunk.copy_from_slice(&bytes[..chunk.len()]);
        }
        Ok(())
    }
}

/// The operating system's random generator (`getrandom`).
#[cfg(feature = "os-rng")]
#[derive(Debug, Clone, Copy, Default)]
pub struct OsRandom;

#[cfg(feature = "os-rng")]
impl RandomSource for OsRandom {
    fn fill(&mut self, buf: &mut [u8]) -> Result<(), RandomError> {
        getrandom::fill(buf).map_err(|e| RandomError(e.to_string()))
    }
}

/// A locally assigned unique local `/48`: `fd` + 40-bit Global ID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct UlaPrefix {
    global_id: u64,
}

impl UlaPrefix {
    /// The largest Global ID (40 bits).
    pub const MAX_GLOBAL_ID: u64 = (1 << 40) - 1;

    /// A prefix with a Global ID drawn from `rng`.
    pub fn generate(rng: &mut impl RandomSource) -> Result<UlaPrefix, RandomError> {
        let mut bytes = [0u8; 5];
        rng.fill(&mut bytes)?;
        let global_id = bytes.iter().fold(0u64, |acc, b| (acc << 8) | u64::from(*b));
        Ok(UlaPrefix { global_id })
    }

    /// The prefix with this Global ID, or `None` when it does not fit in 40 bits.
    pub fn from_global_id(global_id: u64) -> Option<UlaPrefix> {
        (global_id <= Self::MAX_GLOBAL_ID).then_some(UlaPrefix { global_id })
    }

    /// The 40-bit Global ID.
    pub fn global_id(&self) -> u64 {
        self.global_id
    }

    /// The `/48`, e.g. `fd12:3456:789a::/48`.
    pub fn net(&self) -> Ipv6Net {
        let value = (0xfdu128 << 120) | (u128::from(self.global_id) << 80);
        Ipv6Net::new_assert(Ipv6Addr::from(value), 48)
    }

    /// The `/64` with this 16-bit Subnet ID, e.g. subnet `0x100` → `fd12:3456:789a:100::/64`.
    pub fn subnet(&self, subnet_id: u16) -> Ipv6Net {
        let value = u128::from(self.net().network()) | (u128::from(subnet_id) << 64);
        Ipv6Net::new_assert(Ipv6Addr::from(value), 64)
    }
}

impl fmt::Display for UlaPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.net())
    }
}

impl Serialize for UlaPrefix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Kind, NetKind, classify};

    #[test]
    fn layout_matches_rfc4193() {
        let cases: &[(u64, &str, u16, &str)] = &[
            (
                0x12_3456_789a,
                "fd12:3456:789a::/48",
                0x100,
                "fd12:3456:789a:100::/64",
            ),
            (0, "fd00::/48", 0, "fd00::/64"),
            (
                UlaPrefix::MAX_GLOBAL_ID,
                "fdff:ffff:ffff::/48",
                0xffff,
                "fdff:ffff:ffff:ffff::/64",
            ),
        ];
        for &(id, net, sub, subnet) in cases {
            let p = UlaPrefix::from_global_id(id).unwrap();
            assert_eq!(p.to_string(), net);
            assert_eq!(p.subnet(sub).to_string(), subnet);
            assert_eq!(p.global_id(), id);
        }
        assert_eq!(UlaPrefix::from_global_id(1 << 40), None);
    }

    #[test]
    fn generated_prefixes_are_locally_assigned_ula() {
        let mut rng = SeededRandom::new(7);
        for _ in 0..100 {
            let p = UlaPrefix::generate(&mut rng).unwrap();
            assert_eq!(
                classify(&ipnet::IpNet::V6(p.net())),
                NetKind::Uniform(Kind::UniqueLocal)
            );
        }
    }

    #[test]
    fn seeded_source_is_deterministic_and_seed_sensitive() {
        let a = UlaPrefix::generate(&mut SeededRandom::new(42)).unwrap();
        let b = UlaPrefix::generate(&mut SeededRandom::new(42)).unwrap();
        let c = UlaPrefix::generate(&mut SeededRandom::new(43)).unwrap();
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn closures_are_sources_and_errors_propagate() {
        let mut fixed = |buf: &mut [u8]| {
            buf.copy_from_slice(&[0xab, 0xcd, 0xef, 0x01, 0x23]);
            Ok(())
        };
        let p = UlaPrefix::generate(&mut fixed).unwrap();
        assert_eq!(p.to_string(), "fdab:cdef:123::/48");
        let mut broken = |_: &mut [u8]| Err(RandomError("no entropy".into()));
        let err = UlaPrefix::generate(&mut broken).unwrap_err();
        assert_eq!(err.to_string(), "random source failed: no entropy");
    }
}
