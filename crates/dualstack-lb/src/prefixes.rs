//! The on-link IPv6 prefixes an agent reports in its Lease: the `dualstack.io/prefixes`
//! annotation format (the agent writes it with [`format_prefixes`], the decision reads it with
//! [`parse_prefixes`]). Pools that follow the ISP's prefix (`spec.ipv6Prefix`, see
//! [`crate::prefix_pool`]) are built from these reports.
//!
//! # Format
//!
//! A comma-separated list of entries; each entry is a prefix followed by `;key=value` fields.
//! Spaces around entries and fields are ignored; an empty value means "no global prefix".
//!
//! ```text
//! 2001:db8:1::/64;dev=eth0;since=2026-12-01T08:00:00Z;preferred=2026-12-01T12:00:00Z;valid=2026-12-02T08:00:00Z
//! ```
//!
//! * prefix: an IPv6 network in CIDR form, host bits zero, length 1 to 64;
//! * `dev` (required): the interface it is on-link on;
//! * `since`: when the node got it (the address's creation time), RFC 3339;
//! * `preferred` / `valid`: when its preferred / valid lifetime ends, RFC 3339, or `forever`
//!   (a static address); missing means `forever`;
//! * other `key=value` fields are accepted and ignored, so newer agents can add some;
//! * a (prefix, dev) pair may appear only once.
//!
//! The agent reports prefixes of global unicast addresses only: never of a temporary
//! (privacy) address, a ULA (`fc00::/7`), link-local, or an address still in duplicate
//! address detection (see `dualstack_agent::addresses`).

use std::fmt::Write as _;
use std::net::Ipv6Addr;

use ipnet::Ipv6Net;
use serde::Serialize;

use crate::time::Timestamp;

/// The Lease annotation that carries the prefixes.
pub const PREFIXES_ANNOTATION: &str = "dualstack.io/prefixes";

/// One on-link prefix a node reported.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportedPrefix {
    /// The prefix.
    pub prefix: Ipv6Net,
    /// The interface it is on link on.
    pub interface: String,
    /// When the node got it; `None`: unknown.
    pub since: Option<Timestamp>,
    /// End of the preferred lifetime; `None`: forever.
    pub preferred_until: Option<Timestamp>,
    /// End of the valid lifetime; `None`: forever.
    pub valid_until: Option<Timestamp>,
}

impl ReportedPrefix {
    /// Whether the prefix is still valid at `now`.
    pub fn valid_at(&self, now: Timestamp) -> bool {
        self.valid_until.is_none_or(|until| now < until)
    }

    /// Whether the prefix is still preferred at `now`.
    pub fn preferred_at(&self, now: Timestamp) -> bool {
        self.preferred_until.is_none_or(|until| now < until)
    }
}

/// Why an annotation value is not a valid prefix list.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PrefixesError {
    #[error("entry {entry:?} of {PREFIXES_ANNOTATION}: {prefix:?} is not an IPv6 prefix")]
    /// An entry whose prefix does not parse.
    BadPrefix {
        /// The whole entry, as written.
        entry: String,
        /// The prefix part.
        prefix: String,
    },
    #[error(
        "entry {entry:?} of {PREFIXES_ANNOTATION}: {prefix} is not a network of length 1 to 64"
    )]
    /// A prefix that is not a network of length 1 to 64.
    BadLength {
        /// The whole entry, as written.
        entry: String,
        /// The prefix.
        prefix: Ipv6Net,
    },
    #[error("entry {entry:?} of {PREFIXES_ANNOTATION}: field {field:?} is not key=value")]
    /// A field that is not `key=value`.
    BadField {
        /// The whole entry, as written.
        entry: String,
        /// The field.
        field: String,
    },
    #[error("entry {entry:?} of {PREFIXES_ANNOTATION}: {key}={value:?} is not a time")]
    /// A lifetime field whose value is not a time.
    BadTime {
        /// The whole entry, as written.
        entry: String,
        /// The field's key.
        key: String,
        /// The field's value.
        value: String,
    },
    #[error("entry {entry:?} of {PREFIXES_ANNOTATION} has no dev=")]
    /// An entry without `dev=`.
    NoInterface {
        /// The whole entry, as written.
        entry: String,
    },
    #[error("{PREFIXES_ANNOTATION} lists {prefix} on {interface} more than once")]
    /// The same prefix on the same interface twice.
    Duplicate {
        /// The prefix.
        prefix: Ipv6Net,
        /// The interface.
        interface: String,
    },
}

fn lifetime(entry: &str, key: &str, value: &str) -> Result<Option<Timestamp>, PrefixesError> {
    if value == "forever" {
        return Ok(None);
    }
    value.parse().map(Some).map_err(|_| PrefixesError::BadTime {
        entry: entry.to_string(),
        key: key.to_string(),
        value: value.to_string(),
    })
}

/// Parses an annotation value (see the module docs for the format).
pub fn parse_prefixes(value: &str) -> Result<Vec<ReportedPrefix>, PrefixesError> {
    let mut out: Vec<ReportedPrefix> = Vec::new();
    if value.trim().is_empty() {
        return Ok(out);
    }
    for raw in value.split(',') {
        let entry = raw.trim();
        let mut parts = entry.split(';').map(str::trim);
        let text = parts.next().unwrap_or_default();
        let prefix: Ipv6Net = text.parse().map_err(|_| PrefixesError::BadPrefix {
            entry: entry.to_string(),
            prefix: text.to_string(),
        })?;
        if prefix.prefix_len() == 0 || prefix.prefix_len() > 64 || prefix != prefix.trunc() {
            return Err(PrefixesError::BadLength {
                entry: entry.to_string(),
                prefix,
            });
        }
        let mut reported = ReportedPrefix {
            prefix,
            interface: String::new(),
            since: None,
            preferred_until: None,
            valid_until: None,
        };
        for field in parts {
            let Some((key, value)) = field.split_once('=') else {
                return Err(PrefixesError::BadField {
                    entry: entry.to_string(),
                    field: field.to_string(),
                });
            };
            let (key, value) = (key.trim(), value.trim());
            match key {
                "dev" => reported.interface = value.to_string(),
                "since" if value != "forever" => {
                    reported.since = lifetime(entry, key, value)?;
                }
                "preferred" => reported.preferred_until = lifetime(entry, key, value)?,
                "valid" => reported.valid_until = lifetime(entry, key, value)?,
                _ => {}
            }
        }
        if reported.interface.is_empty() {
            return Err(PrefixesError::NoInterface {
                entry: entry.to_string(),
            });
        }
        if out
            .iter()
            .any(|known| known.prefix == prefix && known.interface == reported.interface)
        {
            return Err(PrefixesError::Duplicate {
                prefix,
                interface: reported.interface,
            });
        }
        out.push(reported);
    }
    Ok(out)
}

/// Formats prefixes for the annotation, in the order given (what the agent writes).
pub fn format_prefixes(prefixes: &[ReportedPrefix]) -> String {
    let mut out = String::new();
    let time = |t: Option<Timestamp>| t.map_or_else(|| "forever".to_string(), |t| t.to_string());
    for (i, p) in prefixes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{};dev={}", p.prefix, p.interface);
        if let Some(since) = p.since {
            let _ = write!(out, ";since={since}");
        }
        let _ = write!(
            out,
            ";preferred={};valid={}",
            time(p.preferred_until),
            time(p.valid_until)
        );
    }
    out
}

/// Whether `addr` can carry an ISP prefix a pool may follow: global unicast, not a ULA
/// (`fc00::/7`), link-local, site-local, multicast, loopback, unspecified or IPv4-mapped.
pub fn followable(addr: Ipv6Addr) -> bool {
    let first = addr.segments()[0];
    !(addr.is_loopback()
        || addr.is_unspecified()
        || addr.is_multicast()
        || addr.is_unicast_link_local()
        || (first & 0xfe00) == 0xfc00
        || (first & 0xffc0) == 0xfec0
        || addr.to_ipv4_mapped().is_some()
        || first == 0)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_the_documented_example_and_formats_it_back() {
        let text = "2001:db8:1::/64;dev=eth0;since=2026-12-01T08:00:00Z;preferred=2026-12-01T12:00:00Z;valid=2026-12-02T08:00:00Z";
        let parsed = parse_prefixes(text).unwrap();
        assert_eq!(parsed.len(), 1);
        assert_eq!(parsed[0].interface, "eth0");
        assert_eq!(
            parsed[0].valid_until,
            Some("2026-12-02T08:00:00Z".parse().unwrap())
        );
        assert_eq!(format_prefixes(&parsed), text);
        let forever = parse_prefixes(" 2001:db8:2::/56 ; dev=br0 ; future=1 ").unwrap();
        assert_eq!(forever[0].preferred_until, None);
        assert_eq!(forever[0].valid_until, None);
        assert_eq!(parse_prefixes("").unwrap(), vec![]);
    }

    #[test]
    fn rejects_malformed_values_naming_the_entry() {
        let cases = [
            ("192.0.2.0/24;dev=eth0", "is not an IPv6 prefix"),
            ("2001:db8::1/64;dev=eth0", "not a network of length 1 to 64"),
            ("2001:db8::/96;dev=eth0", "not a network of length 1 to 64"),
            ("2001:db8::/64", "has no dev="),
            (
                "2001:db8::/64;dev=eth0;valid=soon",
                "valid=\"soon\" is not a time",
            ),
            ("2001:db8::/64;eth0", "field \"eth0\" is not key=value"),
            (
                "2001:db8::/64;dev=eth0,2001:db8::/64;dev=eth0",
                "more than once",
            ),
        ];
        for (value, expected) in cases {
            let err = parse_prefixes(value).unwrap_err().to_string();
            assert!(err.contains(expected), "{value:?}: {err}");
        }
    }

    #[test]
    fn only_global_unicast_is_followable() {
        for (addr, want) in [
            ("2001:db8:1::5", true),
            ("2a02:8070::1", true),
            ("fd00::5", false),
            ("fc00::1", false),
            ("fe80::1", false),
            ("fec0::1", false),
            ("ff02::1", false),
            ("::1", false),
            ("::ffff:192.0.2.1", false),
        ] {
            assert_eq!(followable(addr.parse().unwrap()), want, "{addr}");
        }
    }

    fn reported() -> impl Strategy<Value = ReportedPrefix> {
        let time = proptest::option::of(
            (0i64..4_000_000_000).prop_map(|s| Timestamp::from_unix_micros(s * 1_000_000)),
        );
        (
            any::<u64>(),
            1u8..=64,
            "[a-z][a-z0-9]{0,7}",
            time.clone(),
            time.clone(),
            time,
        )
            .prop_map(
                |(bits, len, interface, since, preferred_until, valid_until)| {
                    let net = Ipv6Net::new(Ipv6Addr::from(u128::from(bits) << 64), len)
                        .unwrap()
                        .trunc();
                    ReportedPrefix {
                        prefix: net,
                        interface,
                        since,
                        preferred_until,
                        valid_until,
                    }
                },
            )
    }

    proptest! {
        #[test]
        fn format_then_parse_round_trips(list in proptest::collection::vec(reported(), 0..6)) {
            let mut unique: Vec<ReportedPrefix> = Vec::new();
            for p in list {
                if !unique.iter().any(|u| u.prefix == p.prefix && u.interface == p.interface) {
                    unique.push(p);
                }
            }
            let text = format_prefixes(&unique);
            prop_assert_eq!(parse_prefixes(&text).unwrap(), unique);
        }
    }
}
