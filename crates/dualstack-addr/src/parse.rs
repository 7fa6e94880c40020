//! Strict parsing of addresses and prefixes, with errors that say what is wrong and what was
//! probably meant.
//!
//! Strict means: a prefix must not have bits set beyond its length (`10.0.0.1/8` is refused
//! with "did you mean 10.0.0.0/8?"), the length is plain decimal without a leading zero
//! (Kubernetes' `IsValidCIDR` rules, see `reference/dualstack-planning.md` §1.3), IPv4
//! octets have no leading zeros (the standard library refuses them: `010` is octal to some
//! tools), and no surrounding whitespace, brackets or zone index is accepted.

use std::fmt;
use std::net::{IpAddr, Ipv6Addr};

use ipnet::IpNet;
use thiserror::Error;

use crate::Family;
use crate::prefix::host_net;

/// Either a single address or a prefix, as the user wrote it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddrOrPrefix {
    /// A bare address such as `192.0.2.1` or `2001:db8::1`.
    Addr(IpAddr),
    /// A prefix such as `10.0.0.0/8`, with no host bits set.
    Prefix(IpNet),
}

impl AddrOrPrefix {
    /// As a prefix: an address becomes its host prefix (`/32` or `/128`).
    pub fn net(&self) -> IpNet {
        match *self {
            AddrOrPrefix::Addr(a) => host_net(a),
            AddrOrPrefix::Prefix(n) => n,
        }
    }

    /// The family of the address or prefix.
    pub fn family(&self) -> Family {
        Family::of_net(self.net())
    }
}

impl fmt::Display for AddrOrPrefix {
    /// Canonical text: RFC 5952 for IPv6, with `/len` only for prefixes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AddrOrPrefix::Addr(a) => write!(f, "{a}"),
            AddrOrPrefix::Prefix(n) => write!(f, "{n}"),
        }
    }
}

/// Why a string is not an acceptable address or prefix.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ParseError {
    /// Nothing was given.
    #[error("empty value: expected an IPv4 or IPv6 address or prefix")]
    Empty,
    /// The address part is not valid IPv4 or IPv6 text.
    #[error("{input:?} is not a valid IP address: {problem}")]
    Address {
        /// The whole text that was given.
        input: String,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// A prefix was required but only an address was given.
    #[error("{input:?} is an address, not a prefix: add a prefix length, e.g. {input}/{max}")]
    MissingLength {
        /// The whole text that was given.
        input: String,
        /// The longest prefix length of its family (32 or 128).
        max: u8,
    },
    /// The part after `/` is not a valid prefix length for the family.
    #[error("{input:?} has an invalid prefix length {length:?}: {problem}")]
    Length {
        /// The whole text that was given.
        input: String,
        /// The text after `/`.
        length: String,
        /// What is wrong with it, in words.
        problem: String,
    },
    /// The prefix has bits set beyond its length.
    #[error(
        "{input:?} has host bits set (bits beyond the first {len}): did you mean {suggestion}?{note}",
        len = suggestion.prefix_len(),
        note = note.as_deref().map(|n| format!(" ({n})")).unwrap_or_default()
    )]
    HostBits {
        /// The whole text that was given.
        input: String,
        /// The prefix we think was meant (usually the network with host bits cleared).
        suggestion: IpNet,
        /// An explanation when the suggestion is not simply the network of the input.
        note: Option<String>,
    },
}

/// Parses a bare address (no `/len`).
pub fn parse_addr(input: &str) -> Result<IpAddr, ParseError> {
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    input.parse::<IpAddr>().map_err(|_| ParseError::Address {
        input: input.to_string(),
        problem: diagnose_addr(input),
    })
}

/// Parses a prefix `addr/len` strictly: the length is required and no host bits may be set.
pub fn parse_prefix(input: &str) -> Result<IpNet, ParseError> {
    match parse_addr_or_prefix(input)? {
        AddrOrPrefix::Prefix(net) => Ok(net),
        AddrOrPrefix::Addr(addr) => Err(ParseError::MissingLength {
            input: input.to_string(),
            max: Family::of(addr).bits(),
        }),
    }
}

/// Parses either a bare address or a strict prefix.
pub fn parse_addr_or_prefix(input: &str) -> Result<AddrOrPrefix, ParseError> {
    if input.is_empty() {
        return Err(ParseError::Empty);
    }
    let Some((addr_text, len_text)) = input.split_once('/') else {
        return parse_addr(input).map(AddrOrPrefix::Addr);
    };
    let addr = addr_text
        .parse::<IpAddr>()
        .map_err(|_| ParseError::Address {
            input: input.to_string(),
            problem: diagnose_addr(addr_text),
        })?;
    let family = Family::of(addr);
    let len = parse_len(len_text, family).map_err(|problem| ParseError::Length {
        input: input.to_string(),
        length: len_text.to_string(),
        problem,
    })?;
    let net = IpNet::new(addr, len).map_err(|_| ParseError::Length {
        input: input.to_string(),
        length: len_text.to_string(),
        problem: format!(
            "{} prefix lengths go from 0 to {}",
            family.k8s_name(),
            family.bits()
        ),
    })?;
    if net.addr() != net.network() {
        let (suggestion, note) = guess_meant(addr_text, &net);
        return Err(ParseError::HostBits {
            input: input.to_string(),
            suggestion,
            note,
        });
    }
    Ok(AddrOrPrefix::Prefix(net))
}

/// Checks the text after `/`: decimal digits only, no leading zero, within the family.
fn parse_len(text: &str, family: Family) -> Result<u8, String> {
    if text.is_empty() {
        return Err("nothing after '/'".to_string());
    }
    if !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err("a prefix length is a plain decimal number".to_string());
    }
    if text.len() > 1 && text.starts_with('0') {
        return Err(format!(
            "leading zero; write {}",
            text.trim_start_matches('0').parse::<u32>().unwrap_or(0)
        ));
    }
    let max = family.bits();
    match text.parse::<u32>() {
        Ok(n) if n <= u32::from(max) => u8::try_from(n).map_err(|_| String::new()),
        _ => Err(format!(
            "{} prefix lengths go from 0 to {max}",
            family.k8s_name()
        )),
    }
}

/// The prefix the user most likely meant when `net` has host bits set.
///
/// Usually that is the network (host bits cleared). One common slip gets a better guess:
/// writing `fd::` for `fd00::`. `fd::` is `00fd::`, whose network at /7 is `::/7` — a
/// surprising answer. When clearing the host bits leaves nothing but zeros and the first
/// group was written with fewer than four digits, we read that group as left-aligned.
fn guess_meant(addr_text: &str, net: &IpNet) -> (IpNet, Option<String>) {
    let network = net.trunc();
    let IpNet::V6(v6) = net else {
        return (network, None);
    };
    if !network.addr().is_unspecified() {
        return (network, None);
    }
    let first_group = addr_text.split(':').next().unwrap_or("");
    if first_group.is_empty() || first_group.len() >= 4 {
        return (network, None);
    }
    let mut segments = v6.addr().segments();
    let shift = 4 * (4 - first_group.len() as u32);
    segments[0] = segments[0].checked_shl(shift).unwrap_or(0);
    let padded = Ipv6Addr::from(segments);
    match IpNet::new(IpAddr::V6(padded), net.prefix_len()) {
        Ok(p) if !p.trunc().addr().is_unspecified() => {
            let group = format!("{:x}", segments[0]);
            let note = format!(
                "{addr_text:?} starts with {:04x}, not {group}; its network would be {network}",
                v6.addr().segments()[0]
            );
            (p.trunc(), Some(note))
        }
        _ => (network, None),
    }
}

/// Explains, in words, why `text` is not a valid address.
fn diagnose_addr(text: &str) -> String {
    if text.chars().any(char::is_whitespace) {
        return "it contains whitespace".to_string();
    }
    if text.starts_with('[') || text.ends_with(']') {
        return "remove the brackets ([…] is only for host:port and URLs)".to_string();
    }
    if text.contains('%') {
        return "a zone index (%…) is not accepted here".to_string();
    }
    if text.contains(':') {
        return diagnose_v6(text);
    }
    if text.contains('.') && text.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return diagnose_v4(text);
    }
    if let Some(c) = text
        .chars()
        .find(|c| !(c.is_ascii_hexdigit() || *c == '.' || *c == ':'))
    {
        return format!(
            "{c:?} cannot appear in an address; expected IPv4 (a.b.c.d) or IPv6 (x:x::x)"
        );
    }
    "expected IPv4 (a.b.c.d) or IPv6 (x:x::x)".to_string()
}

fn diagnose_v4(text: &str) -> String {
    let octets: Vec<&str> = text.split('.').collect();
    if octets.len() != 4 {
        return format!(
            "it has {} dot-separated parts; IPv4 has exactly 4 (a.b.c.d)",
            octets.len()
        );
    }
    for o in &octets {
        if o.is_empty() {
            return "an octet is empty".to_string();
        }
        if o.len() > 1 && o.starts_with('0') {
            return format!(
                "octet {o:?} has a leading zero (some tools read it as octal); write {}",
                o.trim_start_matches('0').parse::<u64>().unwrap_or(0)
            );
        }
        match o.parse::<u64>() {
            Ok(n) if n > 255 => return format!("octet {o} is larger than 255"),
            Err(_) => return format!("octet {o:?} is too large"),
            Ok(_) => {}
        }
    }
    "not valid IPv4 text".to_string()
}

fn diagnose_v6(text: &str) -> String {
    let double = text.matches("::").count();
    if text.contains(":::") {
        return "\":::\" is not valid; \"::\" stands for one or more zero groups".to_string();
    }
    if double > 1 {
        return "\"::\" may appear only once".to_string();
    }
    // An embedded IPv4 tail (::ffff:1.2.3.4) counts as two groups.
    let (head, v4_groups) = match text.rsplit_once(':') {
        Some((h, tail)) if tail.contains('.') => {
            if tail.parse::<std::net::Ipv4Addr>().is_err() {
                return format!(
                    "embedded IPv4 part {tail:?} is invalid: {}",
                    diagnose_v4(tail)
                );
            }
            (h, 2)
        }
        _ => (text, 0),
    };
    if let Some(c) = head.chars().find(|c| !(c.is_ascii_hexdigit() || *c == ':')) {
        return format!("{c:?} is not a hex digit");
    }
    let groups: Vec<&str> = head
        .split("::")
        .flat_map(|side| side.split(':'))
        .filter(|g| !g.is_empty())
        .collect();
    if let Some(g) = groups.iter().find(|g| g.len() > 4) {
        return format!("group {g:?} has more than 4 hex digits");
    }
    let total = groups.len() + v4_groups;
    if double == 0 && total != 8 {
        return format!("it has {total} groups and no \"::\"; IPv6 has 8 groups");
    }
    if double == 1 && total > 7 {
        return format!("it has {total} groups plus \"::\"; IPv6 has 8 groups in all");
    }
    if (text.starts_with(':') && !text.starts_with("::"))
        || (text.ends_with(':') && !text.ends_with("::"))
    {
        return "a single ':' at the start or end; use \"::\"".to_string();
    }
    "not valid IPv6 text".to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_valid_input_and_canonicalises() {
        let cases: &[(&str, &str)] = &[
            (
                "2003:00e9:f74a:ecf8:0000:0000:0000:0000/64",
                "2003:e9:f74a:ecf8::/64",
            ),
            ("2001:DB8::1", "2001:db8::1"),
            ("10.0.0.0/8", "10.0.0.0/8"),
            ("192.0.2.1", "192.0.2.1"),
            ("::/0", "::/0"),
            ("0.0.0.0/0", "0.0.0.0/0"),
            ("::ffff:192.0.2.1", "::ffff:192.0.2.1"),
            ("fd00::/8", "fd00::/8"),
            ("2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"),
            ("10.1.2.3/32", "10.1.2.3/32"),
        ];
        for &(input, canonical) in cases {
            let parsed = parse_addr_or_prefix(input).unwrap();
            assert_eq!(parsed.to_string(), canonical, "{input}");
        }
    }

    /// Every bad input, with a piece of the message that must explain it.
    #[test]
    fn rejects_bad_input_with_a_reason() {
        let cases: &[(&str, &str)] = &[
            ("", "empty value"),
            ("fd::/7", "did you mean fc00::/7?"),
            ("fd::/7", "its network would be ::/7"),
            ("10.0.0.1/8", "did you mean 10.0.0.0/8?"),
            ("2001:db8::1/32", "did you mean 2001:db8::/32?"),
            ("2001:db8::/129", "IPv6 prefix lengths go from 0 to 128"),
            ("10.0.0.0/33", "IPv4 prefix lengths go from 0 to 32"),
            ("10.0.0.0/08", "leading zero; write 8"),
            ("10.0.0.0/", "nothing after '/'"),
            ("10.0.0.0/x", "plain decimal number"),
            ("10.0.0.0/+8", "plain decimal number"),
            ("10.0.0.256", "octet 256 is larger than 255"),
            ("10.0.0", "3 dot-separated parts"),
            ("10.0.0.0.1", "5 dot-separated parts"),
            ("10..0.1", "an octet is empty"),
            ("010.0.0.1", "leading zero"),
            ("garbage", "'g' cannot appear"),
            ("2001:db8::g", "'g' is not a hex digit"),
            ("2001:db8::1::2", "\"::\" may appear only once"),
            ("2001:db8:::1", "\":::\" is not valid"),
            ("2001:db8:12345::", "more than 4 hex digits"),
            ("1:2:3:4:5:6:7", "7 groups and no \"::\""),
            ("1:2:3:4:5:6:7:8:9", "9 groups"),
            ("1:2:3:4:5:6:7::8", "8 groups plus \"::\""),
            ("::ffff:1.2.3.999", "embedded IPv4 part"),
            (" 10.0.0.1", "whitespace"),
            ("[::1]", "brackets"),
            ("fe80::1%eth0", "zone index"),
        ];
        for &(input, needle) in cases {
            let err = parse_addr_or_prefix(input).unwrap_err().to_string();
            assert!(err.contains(needle), "{input:?}: {err:?} lacks {needle:?}");
        }
    }

    #[test]
    fn host_bits_error_carries_the_suggestion() {
        let err = parse_prefix("fd::/7").unwrap_err();
        let ParseError::HostBits { suggestion, .. } = err else {
            panic!("{err:?}")
        };
        assert_eq!(suggestion.to_string(), "fc00::/7");
        let ParseError::HostBits {
            suggestion, note, ..
        } = parse_prefix("fd00::1/8").unwrap_err()
        else {
            panic!()
        };
        assert_eq!(suggestion.to_string(), "fd00::/8");
        assert_eq!(note, None);
    }

    #[test]
    fn prefix_requires_a_length() {
        let err = parse_prefix("10.0.0.1").unwrap_err().to_string();
        assert!(
            err.contains("add a prefix length, e.g. 10.0.0.1/32"),
            "{err}"
        );
        let err = parse_prefix("2001:db8::").unwrap_err().to_string();
        assert!(err.contains("2001:db8::/128"), "{err}");
        assert!(parse_addr("10.0.0.0/8").is_err());
    }

    #[test]
    fn address_is_its_host_prefix() {
        let a = parse_addr_or_prefix("2001:db8::1").unwrap();
        assert_eq!(a.net().to_string(), "2001:db8::1/128");
        assert_eq!(a.family(), Family::V6);
    }
}
