//! Exact address counts.
//!
//! Every CIDR prefix holds a power of two addresses: `2^(bits - prefix_len)`. The largest,
//! `::/0`, holds 2^128 addresses — one more than `u128::MAX` — so a count is stored as its
//! exponent and printed in decimal exactly, never rounded and never wrapped.

use std::fmt;

use serde::{Serialize, Serializer};

/// 2^128 in decimal: the number of addresses in `::/0`, which does not fit in a `u128`.
const TWO_POW_128: &str = "340282366920938463463374607431768211456";

/// An exact count of addresses (or of subnets): always a power of two, from 2^0 to 2^128.
///
/// Ordered by value. Serializes as a decimal string, because JSON numbers lose precision
/// long before 2^128.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Count {
    log2: u8,
}

impl Count {
    /// The largest count there is: 2^128 (all IPv6 addresses).
    pub const MAX: Count = Count { log2: 128 };

    /// One.
    pub const ONE: Count = Count { log2: 0 };

    /// 2^`exp`, or `None` when `exp` is above 128.
    pub fn pow2(exp: u8) -> Option<Count> {
        (exp <= 128).then_some(Count { log2: exp })
    }

    /// The exponent: this count is 2^`log2()`.
    pub fn log2(self) -> u8 {
        self.log2
    }

    /// The count as a `u128`, or `None` for 2^128.
    pub fn to_u128(self) -> Option<u128> {
        1u128.checked_shl(u32::from(self.log2))
    }

    /// The count as a `u64`, or `None` when it is 2^64 or more.
    pub fn to_u64(self) -> Option<u64> {
        1u64.checked_shl(u32::from(self.log2))
    }

    /// The count as a `u128`, with 2^128 clamped to `u128::MAX` (for comparisons against limits).
    pub fn saturating_u128(self) -> u128 {
        self.to_u128().unwrap_or(u128::MAX)
    }

    /// True when this count is greater than `limit`.
    pub fn exceeds(self, limit: u128) -> bool {
        match self.to_u128() {
            Some(n) => n > limit,
            None => true,
        }
    }
}

impl fmt::Display for Count {
    /// Exact decimal text, e.g. `18446744073709551616` for 2^64.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.to_u128() {
            Some(n) => write!(f, "{n}"),
            None => f.write_str(TWO_POW_128),
        }
    }
}

impl Serialize for Count {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_is_exact() {
        let cases: &[(u8, &str)] = &[
            (0, "1"),
            (8, "256"),
            (32, "4294967296"),
            (64, "18446744073709551616"),
            (127, "170141183460469231731687303715884105728"),
            (128, "340282366920938463463374607431768211456"),
        ];
        for &(exp, text) in cases {
            let c = Count::pow2(exp).unwrap();
            assert_eq!(c.to_string(), text, "2^{exp}");
            assert_eq!(c.log2(), exp);
        }
        assert_eq!(Count::pow2(129), None);
    }

    #[test]
    fn two_pow_128_is_u128_max_plus_one() {
        // Check the hard-coded constant against arithmetic: u128::MAX = 2^128 - 1.
        let max_plus_one = format!("{}", u128::MAX);
        assert_eq!(max_plus_one.len(), TWO_POW_128.len());
        let last = max_plus_one.chars().last().unwrap().to_digit(10).unwrap();
        assert_eq!(
            format!("{}{}", &max_plus_one[..max_plus_one.len() - 1], last + 1),
            TWO_POW_128
        );
    }

    #[test]
    fn conversions_and_limits() {
        assert_eq!(Count::pow2(64).unwrap().to_u64(), None);
        assert_eq!(Count::pow2(63).unwrap().to_u64(), Some(1 << 63));
        assert_eq!(Count::MAX.to_u128(), None);
        assert_eq!(Count::MAX.saturating_u128(), u128::MAX);
        assert!(Count::MAX.exceeds(u128::MAX));
        assert!(Count::pow2(10).unwrap().exceeds(1023));
        assert!(!Count::pow2(10).unwrap().exceeds(1024));
        assert!(Count::ONE < Count::MAX);
        assert_eq!(
            serde_json::to_string(&Count::pow2(64).unwrap()).unwrap(),
            "\"18446744073709551616\""
        );
    }
}
