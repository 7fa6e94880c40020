//! IPv4/IPv6 address and prefix model shared by every part of dualstack.
//!
//! Addresses and prefixes are the standard [`std::net::IpAddr`] and [`ipnet::IpNet`];
//! this crate adds what they lack, and does no I/O:
//!
//! * [`parse`]: strict parsing with errors that say what was meant
//!   (`fd::/7` → "did you mean fc00::/7?");
//! * [`prefix`]: first/last address, exact [`Count`]s (2^128 included), containment,
//!   overlap, fully expanded text (canonical RFC 5952 text is `Display`);
//! * [`subnet`]: splitting into children, lazily and with limits;
//! * [`kind`]: special-purpose classification for both families;
//! * [`ula`]: RFC 4193 unique local prefixes from an injectable random source.

pub mod count;
mod family;
pub mod kind;
pub mod parse;
pub mod prefix;
pub mod subnet;
pub mod ula;

pub use count::Count;
pub use family::Family;
pub use kind::{Kind, KindRange, Mixed, NetKind, classify, kind_of};
pub use parse::{AddrOrPrefix, ParseError, parse_addr, parse_addr_or_prefix, parse_prefix};
pub use prefix::{
    contains, contains_addr, count, expanded, expanded_net, first, has_host_bits, host_net,
    intersection, last, overlaps,
};
pub use subnet::{SplitError, Subnets, nth_subnet, split, subnet_count, subnets};
#[cfg(feature = "os-rng")]
pub use ula::OsRandom;
pub use ula::{RandomError, RandomSource, SeededRandom, UlaPrefix};
