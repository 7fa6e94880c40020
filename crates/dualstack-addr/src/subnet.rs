//! Subnetting: splitting a prefix into equal children of a longer prefix length.
//!
//! A split can have up to 2^128 children, so nothing here allocates per child unless asked
//! to: [`subnets`] is a lazy iterator, [`nth_subnet`] computes one child directly, and
//! [`split`] collects only after checking the count against a caller-given limit.

use ipnet::IpNet;
use thiserror::Error;

use crate::prefix::{addr_from_u128, addr_to_u128};
use crate::{Count, Family};

/// Why a split cannot be done.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SplitError {
    /// The child length is beyond the family's maximum.
    #[error("/{new_len} is out of range for {fam} (prefix lengths 0 to {max})", fam = family.k8s_name(), max = family.bits())]
    LengthOutOfRange {
        /// Family of the parent prefix.
        family: Family,
        /// The requested child length.
        new_len: u8,
    },
    /// The child length is shorter than the parent's: children must be smaller.
    #[error("cannot split {net} into /{new_len}: children must have a prefix length of at least /{len}", len = net.prefix_len())]
    Shorter {
        /// The parent prefix.
        net: IpNet,
        /// The requested child length.
        new_len: u8,
    },
    /// The requested child does not exist.
    #[error(
        "{net} has {count} /{new_len} subnets (index 0 to {count} - 1); index {index} is past the end"
    )]
    IndexOutOfRange {
        /// The parent prefix.
        net: IpNet,
        /// The child length.
        new_len: u8,
        /// The requested index.
        index: u128,
        /// How many children there are.
        count: Count,
    },
    /// Listing all children would exceed the caller's limit.
    #[error("{net} has {count} /{new_len} subnets, more than the limit of {limit}")]
    TooMany {
        /// The parent prefix.
        net: IpNet,
        /// The child length.
        new_len: u8,
        /// How many children there are.
        count: Count,
        /// The limit that was given.
        limit: usize,
    },
}

/// How many `/new_len` children `net` has: 2^(new_len − prefix_len).
pub fn subnet_count(net: &IpNet, new_len: u8) -> Result<Count, SplitError> {
    check(net, new_len)?;
    Count::pow2(new_len - net.prefix_len()).ok_or(SplitError::LengthOutOfRange {
        family: Family::of_net(*net),
        new_len,
    })
}

/// The `index`-th (from 0) `/new_len` child of `net`, computed directly.
pub fn nth_subnet(net: &IpNet, new_len: u8, index: u128) -> Result<IpNet, SplitError> {
    let n = subnet_count(net, new_len)?;
    if let Some(total) = n.to_u128()
        && index >= total
    {
        return Err(SplitError::IndexOutOfRange {
            net: *net,
            new_len,
            index,
            count: n,
        });
    }
    Ok(child(net, new_len, index))
}

/// All `/new_len` children of `net`, in address order, produced lazily.
pub fn subnets(net: &IpNet, new_len: u8) -> Result<Subnets, SplitError> {
    let n = subnet_count(net, new_len)?;
    Ok(Subnets {
        parent: net.trunc(),
        new_len,
        next: Some(0),
        last: n.to_u128().map_or(u128::MAX, |t| t - 1),
    })
}

/// All `/new_len` children of `net` as a vector, refused when there are more than `limit`.
pub fn split(net: &IpNet, new_len: u8, limit: usize) -> Result<Vec<IpNet>, SplitError> {
    let n = subnet_count(net, new_len)?;
    if n.exceeds(limit as u128) {
        return Err(SplitError::TooMany {
            net: *net,
            new_len,
            count: n,
            limit,
        });
    }
    Ok(subnets(net, new_len)?.collect())
}

fn check(net: &IpNet, new_len: u8) -> Result<(), SplitError> {
    if new_len > net.max_prefix_len() {
        return Err(SplitError::LengthOutOfRange {
            family: Family::of_net(*net),
            new_len,
        });
    }
    if new_len < net.prefix_len() {
        return Err(SplitError::Shorter { net: *net, new_len });
    }
    Ok(())
}

/// Child `index` of `parent` at `new_len`; the caller has checked the index and length.
fn child(parent: &IpNet, new_len: u8, index: u128) -> IpNet {
    let family = Family::of_net(*parent);
    let host_bits = u32::from(parent.max_prefix_len() - new_len);
    let offset = index.checked_shl(host_bits).unwrap_or(0);
    let base = addr_to_u128(parent.network());
    let addr = addr_from_u128(family, base | offset);
    // new_len was checked against the family maximum, so this cannot fail; fall back to the
    // parent rather than panic.
    IpNet::new(addr, new_len).unwrap_or(*parent)
}

/// Lazy iterator over the children of a prefix (see [`subnets`]).
#[derive(Debug, Clone)]
pub struct Subnets {
    parent: IpNet,
    new_len: u8,
    next: Option<u128>,
    last: u128,
}

impl Subnets {
    /// How many children there are in all (including ones already yielded).
    pub fn total(&self) -> Count {
        Count::pow2(self.new_len - self.parent.prefix_len()).unwrap_or(Count::ONE)
    }

    /// Skips ahead so the next child yielded is child `index` (past the end: nothing more).
    pub fn start_at(mut self, index: u128) -> Self {
        self.next = (index <= self.last).then_some(index);
        self
    }
}

impl Iterator for Subnets {
    type Item = IpNet;

    fn next(&mut self) -> Option<IpNet> {
        let i = self.next?;
        self.next = if i < self.last { Some(i + 1) } else { None };
        Some(child(&self.parent, self.new_len, i))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match self.next {
            None => (0, Some(0)),
            Some(i) => match usize::try_from(self.last - i) {
                Ok(n) if n < usize::MAX => (n + 1, Some(n + 1)),
                _ => (usize::MAX, None),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    #[test]
    fn splits_in_address_order() {
        let cases: &[(&str, u8, &[&str])] = &[
            (
                "10.0.0.0/22",
                24,
                &["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24", "10.0.3.0/24"],
            ),
            ("10.0.0.0/24", 24, &["10.0.0.0/24"]),
            ("192.0.2.0/31", 32, &["192.0.2.0/32", "192.0.2.1/32"]),
            ("fd00::/47", 48, &["fd00::/48", "fd00:0:1::/48"]),
            ("::/0", 1, &["::/1", "8000::/1"]),
        ];
        for &(parent, len, children) in cases {
            let got: Vec<String> = split(&net(parent), len, 16)
                .unwrap()
                .iter()
                .map(ToString::to_string)
                .collect();
            assert_eq!(got, children, "{parent} into /{len}");
        }
    }

    #[test]
    fn nth_child_and_huge_splits() {
        let p = net("fd00::/48");
        assert_eq!(nth_subnet(&p, 64, 0).unwrap().to_string(), "fd00::/64");
        assert_eq!(
            nth_subnet(&p, 64, 0x100).unwrap().to_string(),
            "fd00:0:0:100::/64"
        );
        assert_eq!(
            nth_subnet(&p, 64, 65535).unwrap().to_string(),
            "fd00:0:0:ffff::/64"
        );
        let err = nth_subnet(&p, 64, 65536).unwrap_err().to_string();
        assert!(err.contains("has 65536 /64 subnets"), "{err}");

        let all = net("::/0");
        assert_eq!(subnet_count(&all, 128).unwrap(), Count::MAX);
        assert_eq!(
            nth_subnet(&all, 128, u128::MAX).unwrap().to_string(),
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff/128"
        );
        let err = split(&all, 128, 1000).unwrap_err().to_string();
        assert!(
            err.contains(
                "340282366920938463463374607431768211456 /128 subnets, more than the limit of 1000"
            ),
            "{err}"
        );
        // Lazy: taking a few of 2^128 children is instant.
        let it = subnets(&all, 128).unwrap();
        assert_eq!(it.total(), Count::MAX);
        let tail: Vec<String> = it.start_at(u128::MAX - 1).map(|n| n.to_string()).collect();
        assert_eq!(tail.len(), 2);
        assert_eq!(subnets(&all, 0).unwrap().total(), Count::ONE);
    }

    #[test]
    fn refuses_bad_lengths() {
        let cases: &[(&str, u8, &str)] = &[
            (
                "10.0.0.0/16",
                8,
                "children must have a prefix length of at least /16",
            ),
            (
                "10.0.0.0/16",
                33,
                "/33 is out of range for IPv4 (prefix lengths 0 to 32)",
            ),
            (
                "fd00::/48",
                129,
                "/129 is out of range for IPv6 (prefix lengths 0 to 128)",
            ),
        ];
        for &(parent, len, needle) in cases {
            let err = subnet_count(&net(parent), len).unwrap_err().to_string();
            assert!(err.contains(needle), "{err}");
        }
    }

    #[test]
    fn size_hint_is_exact_when_small() {
        let it = subnets(&net("10.0.0.0/16"), 24).unwrap();
        assert_eq!(it.size_hint(), (256, Some(256)));
        assert_eq!(it.count(), 256);
    }
}
