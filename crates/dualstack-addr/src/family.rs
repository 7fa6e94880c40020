//! The two IP families, and which one an address or prefix belongs to.

use std::fmt;
use std::net::IpAddr;

use ipnet::IpNet;
use serde::{Deserialize, Serialize};

/// An IP family. Orders IPv4 before IPv6.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Family {
    /// IPv4 (`ipv4` in JSON, as Kubernetes writes `ipFamilies` in lower case here).
    #[serde(rename = "ipv4")]
    V4,
    /// IPv6 (`ipv6` in JSON).
    #[serde(rename = "ipv6")]
    V6,
}

impl Family {
    /// Both families, IPv4 first.
    pub const BOTH: [Family; 2] = [Family::V4, Family::V6];

    /// The family of an address.
    pub fn of(addr: IpAddr) -> Family {
        match addr {
            IpAddr::V4(_) => Family::V4,
            IpAddr::V6(_) => Family::V6,
        }
    }

    /// The family of a prefix.
    pub fn of_net(net: IpNet) -> Family {
        Family::of(net.addr())
    }

    /// The other family.
    pub fn other(self) -> Family {
        match self {
            Family::V4 => Family::V6,
            Family::V6 => Family::V4,
        }
    }

    /// Address width in bits: 32 or 128.
    pub fn bits(self) -> u8 {
        match self {
            Family::V4 => 32,
            Family::V6 => 128,
        }
    }

    /// The name Kubernetes uses in `spec.ipFamilies`: `IPv4` or `IPv6`.
    pub fn k8s_name(self) -> &'static str {
        match self {
            Family::V4 => "IPv4",
            Family::V6 => "IPv6",
        }
    }

    /// Lower-case name used in our own output: `ipv4` or `ipv6`.
    pub fn as_str(self) -> &'static str {
        match self {
            Family::V4 => "ipv4",
            Family::V6 => "ipv6",
        }
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn family_of_addresses_and_prefixes() {
        assert_eq!(Family::of("10.0.0.1".parse().unwrap()), Family::V4);
        assert_eq!(Family::of("::ffff:10.0.0.1".parse().unwrap()), Family::V6);
        assert_eq!(Family::of_net("fd00::/8".parse().unwrap()), Family::V6);
        assert_eq!(Family::V4.other(), Family::V6);
        assert_eq!(Family::V6.bits(), 128);
        assert_eq!(Family::V6.k8s_name(), "IPv6");
        assert_eq!(serde_json::to_string(&Family::V4).unwrap(), "\"ipv4\"");
    }
}
