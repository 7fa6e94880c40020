//! The live addresses an agent reports in its node's Lease: the `dualstack.io/addresses`
//! annotation format (the agent writes it with [`format_live_addresses`], the decision reads
//! it with [`parse_live_addresses`]).
//!
//! # Format
//!
//! A comma-separated list of entries; each entry is an address followed by zero or more
//! `;flag`s. Spaces around entries and flags are ignored, and an empty value means "this
//! node has no usable address right now".
//!
//! ```text
//! 2001:db8:1::5;temporary, fd00::5, 192.0.2.10, 2001:db8:0:1::5;deprecated
//! ```
//!
//! * address: an IPv4 address in dotted-quad form or an IPv6 address in any RFC 4291 text
//!   form, without a prefix length or a `%zone`;
//! * flags (lower case): `temporary` (an RFC 8981 privacy address: usable, but a stable one
//!   is preferred) and `deprecated` (preferred lifetime over: never advertised). Other flags
//!   made of `a-z`, `0-9` and `-` are accepted and ignored, so newer agents can add flags
//!   without breaking older controllers;
//! * an address may appear only once.
//!
//! The agent reports every address it sees except link-local, loopback and multicast ones;
//! the decision filters again anyway (see the crate docs for the preference order).

use std::fmt::Write as _;
use std::net::IpAddr;

use serde::Serialize;

/// The Lease annotation that carries the live addresses.
pub const ADDRESSES_ANNOTATION: &str = "dualstack.io/addresses";

/// One address an agent reported, with its flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub struct LiveAddress {
    /// The address.
    pub addr: IpAddr,
    /// An RFC 8981 temporary (privacy) address.
    pub temporary: bool,
    /// Its preferred lifetime is over: it must not be advertised.
    pub deprecated: bool,
}

impl LiveAddress {
    /// A stable, not deprecated address.
    pub fn stable(addr: IpAddr) -> LiveAddress {
        LiveAddress {
            addr,
            temporary: false,
            deprecated: false,
        }
    }
}

/// Everything an agent reports about its node in its Lease: the live addresses
/// ([`ADDRESSES_ANNOTATION`]) and the on-link global IPv6 prefixes
/// ([`crate::prefixes::PREFIXES_ANNOTATION`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeReport {
    /// The live addresses, as listed.
    pub addresses: Vec<LiveAddress>,
    /// The on-link global IPv6 prefixes, as listed.
    pub prefixes: Vec<crate::prefixes::ReportedPrefix>,
}

/// Why an annotation value is not a valid address list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LiveAddressError {
    #[error("entry {entry:?} of {ADDRESSES_ANNOTATION}: {address:?} is not an IP address")]
    /// An entry whose address does not parse.
    BadAddress {
        /// The whole entry, as written.
        entry: String,
        /// The address part.
        address: String,
    },
    #[error("entry {entry:?} of {ADDRESSES_ANNOTATION}: flag {flag:?} is not a lower-case word")]
    /// An entry with a flag that is not a lower-case word.
    BadFlag {
        /// The whole entry, as written.
        entry: String,
        /// The flag.
        flag: String,
    },
    #[error("{ADDRESSES_ANNOTATION} lists {address} more than once")]
    /// The same address twice.
    Duplicate {
        /// The address.
        address: IpAddr,
    },
}

/// Parses an annotation value (see the module docs for the format).
pub fn parse_live_addresses(value: &str) -> Result<Vec<LiveAddress>, LiveAddressError> {
    let mut out: Vec<LiveAddress> = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for entry in value.split(',') {
        let mut parts = entry.split(';').map(str::trim);
        let address = parts.next().unwrap_or_default();
        let addr: IpAddr = address.parse().map_err(|_| LiveAddressError::BadAddress {
            entry: entry.trim().to_string(),
            address: address.to_string(),
        })?;
        let mut live = LiveAddress::stable(addr);
        for flag in parts {
            match flag {
                "temporary" => live.temporary = true,
                "deprecated" => live.deprecated = true,
                other
                    if !other.is_empty()
                        && other
                            .bytes()
                            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-') => {
                }
                other => {
                    return Err(LiveAddressError::BadFlag {
                        entry: entry.trim().to_string(),
                        flag: other.to_string(),
                    });
                }
            }
        }
        if out.iter().any(|known| known.addr == addr) {
            return Err(LiveAddressError::Duplicate { address: addr });
        }
        out.push(live);
    }
    Ok(out)
}

/// Formats addresses for the annotation, in the order given (what the agent writes).
pub fn format_live_addresses(addresses: &[LiveAddress]) -> String {
    let mut out = String::new();
    for (i, live) in addresses.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{}", live.addr);
        if live.temporary {
            out.push_str(";temporary");
        }
        if live.deprecated {
            out.push_str(";deprecated");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn parses_the_documented_example() {
        let parsed = parse_live_addresses(
            "2001:db8:1::5;temporary, fd00::5,192.0.2.10 , 2001:db8:0:1::5;deprecated;future-flag",
        )
        .unwrap();
        assert_eq!(
            parsed,
            vec![
                LiveAddress {
                    addr: ip("2001:db8:1::5"),
                    temporary: true,
                    deprecated: false
                },
                LiveAddress::stable(ip("fd00::5")),
                LiveAddress::stable(ip("192.0.2.10")),
                LiveAddress {
                    addr: ip("2001:db8:0:1::5"),
                    temporary: false,
                    deprecated: true
                },
            ]
        );
        assert_eq!(parse_live_addresses("  ").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_values_naming_the_entry() {
        let cases = [
            ("192.0.2.10,", "\"\" is not an IP address"),
            ("fe80::1%eth0", "\"fe80::1%eth0\" is not an IP address"),
            ("2001:db8::/64", "is not an IP address"),
            ("192.0.2.10;Temporary", "flag \"Temporary\""),
            ("192.0.2.10;", "flag \"\""),
            (
                "192.0.2.10,192.0.2.10;temporary",
                "lists 192.0.2.10 more than once",
            ),
        ];
        for (value, expected) in cases {
            let err = parse_live_addresses(value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value:?}: {err}");
        }
    }

    fn live_address() -> impl Strategy<Value = LiveAddress> {
        (any::<IpAddr>(), any::<bool>(), any::<bool>()).prop_map(|(addr, temporary, deprecated)| {
            LiveAddress {
                addr,
                temporary,
                deprecated,
            }
        })
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(list in proptest::collection::vec(live_address(), 0..8)) {
            let mut unique: Vec<LiveAddress> = Vec::new();
            for l in list {
                if !unique.iter().any(|u| u.addr == l.addr) {
                    unique.push(l);
                }
            }
            let text = format_live_addresses(&unique);
            prop_assert_eq!(parse_live_addresses(&text).unwrap(), unique);
        }
    }
}
