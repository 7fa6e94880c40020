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
//!
//! ```
//! use dualstack_addr::{Kind, NetKind, classify, count, parse_prefix};
//!
//! let net = parse_prefix("2003:00e9:f74a:ecf8:0000:0000:0000:0000/64").unwrap();
//! assert_eq!(net.to_string(), "2003:e9:f74a:ecf8::/64");
//! assert_eq!(count(&net).to_string(), "18446744073709551616");
//! assert_eq!(classify(&net), NetKind::Uniform(Kind::GlobalUnicast));
//!
//! let err = parse_prefix("fd::/7").unwrap_err().to_string();
//! assert!(err.contains("did you mean fc00::/7?"));
//! ```

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
