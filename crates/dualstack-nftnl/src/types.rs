//! nft's data types as the kernel sees them in a set declaration: the type id (concatenated
//! types packed 6 bits each, as nft does), the length of each field padded to 4 bytes, and
//! the per-set user data nft attaches (nft reads it back when it lists the table, so a table
//! we write lists exactly like one nft wrote).

use crate::EncodeError;

/// `NFT_DATA_VERDICT`.
pub const TYPE_VERDICT: u32 = 0xffff_ff00;
/// nft's `integer` type (the key of the numgen/jhash maps).
pub const TYPE_INTEGER: u32 = 4;
/// nft's `ipv4_addr` type (`TYPE_IPADDR`): 4 bytes, network byte order.
pub const TYPE_IPV4: u32 = 7;
/// nft's `ipv6_addr` type (`TYPE_IP6ADDR`): 16 bytes, network byte order.
pub const TYPE_IPV6: u32 = 8;

/// Bits per field in a concatenated type id (nft's `TYPE_BITS`).
const TYPE_BITS: u32 = 6;

/// A set key or value type: kernel type id and total (padded) length in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SetType {
    /// The type id sent as `NFTA_SET_KEY_TYPE` / `NFTA_SET_DATA_TYPE`: nft's type number, or
    /// for a concatenation the fields' numbers packed 6 bits each, first field highest.
    pub id: u32,
    /// The key or data length in bytes (`NFTA_SET_KEY_LEN` / `NFTA_SET_DATA_LEN`), each
    /// field rounded up to 4 bytes; 0 for `verdict`.
    pub len: u32,
}

fn basic(name: &str) -> Option<(u32, u32)> {
    Some(match name {
        "nf_proto" => (2, 1),
        "ipv4_addr" => (TYPE_IPV4, 4),
        "ipv6_addr" => (TYPE_IPV6, 16),
        "inet_proto" => (12, 1),
        "inet_service" => (13, 2),
        _ => return None,
    })
}

/// Parses an nft type declaration such as `ipv4_addr . inet_proto . inet_service`;
/// `verdict` gives [`TYPE_VERDICT`] with length 0.
pub fn parse(decl: &str) -> Result<SetType, EncodeError> {
    if decl == "verdict" {
        return Ok(SetType {
            id: TYPE_VERDICT,
            len: 0,
        });
    }
    let mut id = 0u32;
    let mut len = 0u32;
    for part in decl.split(" . ") {
        let (t, l) = basic(part.trim()).ok_or_else(|| EncodeError::UnknownType(decl.into()))?;
        id = (id << TYPE_BITS) | t;
        len += l.div_ceil(4) * 4;
    }
    Ok(SetType { id, len })
}

/// User data nft attaches to a named verdict map declared by `type … : verdict`.
pub const UDATA_VMAP: &[u8] = &[
    0x00, 0x04, 0, 0, 0, 0, 0x01, 0x04, 0, 0, 0, 0, 0x03, 0x08, 0x00, 0x04, 0x0d, 0, 0, 0, 0x01,
    0x00, 0x06, 0x04, 0, 0, 0, 0,
];
/// User data nft attaches to a named data map declared by `type … : …`.
pub const UDATA_MAP: &[u8] = &[
    0x00, 0x04, 0, 0, 0, 0, 0x01, 0x04, 0, 0, 0, 0, 0x03, 0x08, 0x00, 0x04, 0x0d, 0, 0, 0, 0x01,
    0x00, 0x04, 0x08, 0x00, 0x04, 0x0d, 0, 0, 0, 0x01, 0x00, 0x06, 0x04, 0, 0, 0, 0,
];
/// User data of an anonymous `integer : addr . port` map (numgen / jhash).
pub const UDATA_ANON_MAP: &[u8] = &[
    0x00, 0x04, 0x01, 0, 0, 0, 0x01, 0x04, 0, 0, 0, 0, 0x06, 0x04, 0, 0, 0, 0,
];
/// User data of an anonymous interval set of `ip daddr` (the pool guard).
pub const UDATA_DADDR4: &[u8] = &[
    0x00, 0x04, 0x02, 0, 0, 0, 0x02, 0x04, 0x01, 0, 0, 0, 0x03, 0x14, 0x00, 0x04, 0x07, 0, 0, 0,
    0x01, 0x0c, 0x00, 0x04, 0x0c, 0, 0, 0, 0x01, 0x04, 0x0c, 0, 0, 0,
];
/// User data of an anonymous interval set of `ip6 daddr` (the pool guard).
pub const UDATA_DADDR6: &[u8] = &[
    0x00, 0x04, 0x02, 0, 0, 0, 0x02, 0x04, 0x01, 0, 0, 0, 0x03, 0x14, 0x00, 0x04, 0x07, 0, 0, 0,
    0x01, 0x0c, 0x00, 0x04, 0x0d, 0, 0, 0, 0x01, 0x04, 0x09, 0, 0, 0,
];
/// Element user data marking the last start element of an interval set open-ended (the
/// interval runs to the end of the address space).
pub const UDATA_ELEM_OPEN: &[u8] = &[0x01, 0x04, 0x01, 0, 0, 0];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concatenations_pack_six_bits_per_field() {
        let t = parse("ipv4_addr . inet_proto . inet_service").unwrap_or(SetType { id: 0, len: 0 });
        assert_eq!(
            t,
            SetType {
                id: 0x730d,
                len: 12
            }
        );
        let t = parse("ipv6_addr . inet_service").unwrap_or(SetType { id: 0, len: 0 });
        assert_eq!(t, SetType { id: 0x20d, len: 20 });
        assert!(parse("ether_addr").is_err());
    }
}
