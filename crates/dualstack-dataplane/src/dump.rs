//! Reading our table back over netlink (`NLM_F_DUMP` requests on the applier's socket)
//! into the same [`Observed`] the `nft -j` parser produces, so drift detection needs no
//! `nft` process: the table's existence (`NFT_MSG_GETTABLE`), its chains
//! (`NFT_MSG_GETCHAIN` dump, filtered to our table) and the elements of each of our maps
//! (`NFT_MSG_GETSETELEM` dump), decoded with the map's declared types; and, before a full
//! sync, the names of its chains and named maps with their capacity ([`Present`],
//! `NFT_MSG_GETSET` dump), which the in-place replace needs.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use dualstack_ruleset::nft::{self as render, Present};

use crate::netlink::{NetlinkError, NftSocket};
use crate::readback::Observed;

const GETTABLE: u16 = 1;
const GETCHAIN: u16 = 4;
const GETSET: u16 = 10;
const GETSETELEM: u16 = 13;
/// `NFT_SET_ANONYMOUS`: sets bound to one rule, not ours to flush or delete.
const SET_ANONYMOUS: u32 = 0x1;
const NLM_F_DUMP: u16 = 0x300;
const ENOENT: i32 = 2;

/// A flat view of netlink attributes: `(type without flags, payload)`.
fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & 0x3fff;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len]));
        data = &data[(len.div_ceil(4) * 4).min(data.len())..];
    }
    out
}

fn get<'a>(list: &[(u16, &'a [u8])], ty: u16) -> Option<&'a [u8]> {
    list.iter().find(|(t, _)| *t == ty).map(|(_, d)| *d)
}

fn text(data: &[u8]) -> String {
    String::from_utf8_lossy(data.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn proto_text(p: u8) -> String {
    match p {
        6 => "tcp".into(),
        17 => "udp".into(),
        132 => "sctp".into(),
        other => other.to_string(),
    }
}

/// Decodes a key or value of declared type `decl` (`ipv4_addr . inet_service`) the way
/// nft prints it.
fn decode(decl: &str, mut data: &[u8]) -> Option<String> {
    let mut parts = Vec::new();
    for field in decl.split(" . ") {
        let (len, s) = match field {
            "ipv4_addr" => {
                let b: [u8; 4] = data.get(..4)?.try_into().ok()?;
                (4, IpAddr::V4(Ipv4Addr::from(b)).to_string())
            }
            "ipv6_addr" => {
                let b: [u8; 16] = data.get(..16)?.try_into().ok()?;
                (16, IpAddr::V6(Ipv6Addr::from(b)).to_string())
            }
            "inet_proto" => (4, proto_text(*data.first()?)),
            "nf_proto" => (
                4,
                match *data.first()? {
                    2 => "ipv4".to_string(),
                    10 => "ipv6".to_string(),
                    other => other.to_string(),
                },
            ),
            "inet_service" => (
                4,
                u16::from_be_bytes([*data.first()?, *data.get(1)?]).to_string(),
            ),
            _ => return None,
        };
        parts.push(s);
        data = data.get(len..)?;
    }
    Some(parts.join(" . "))
}

impl NftSocket {
    fn request(&mut self, ty: u16, flags: u16, attrs: &[(u16, &str)]) -> Result<u32, NetlinkError> {
        let seq = self.bump_seq();
        let mut msg = Vec::with_capacity(64);
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&((10u16 << 8) | ty).to_ne_bytes());
        msg.extend_from_slice(&(1 | flags).to_ne_bytes()); // NLM_F_REQUEST
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&[1, 0, 0, 0]); // nfgenmsg: NFPROTO_INET
        for (t, s) in attrs {
            let len = 4 + s.len() + 1;
            msg.extend_from_slice(&(len as u16).to_ne_bytes());
            msg.extend_from_slice(&t.to_ne_bytes());
            msg.extend_from_slice(s.as_bytes());
            msg.push(0);
            while !msg.len().is_multiple_of(4) {
                msg.push(0);
            }
        }
        let total = msg.len() as u32;
        msg[..4].copy_from_slice(&total.to_ne_bytes());
        self.send_raw(&msg)?;
        Ok(seq)
    }

    /// Sends a request and collects the payloads of its replies (a dump's messages until
    /// `NLMSG_DONE`, or the one reply). `Err(errno)` inside `Ok` for a kernel error.
    fn collect(
        &mut self,
        ty: u16,
        flags: u16,
        attrs: &[(u16, &str)],
    ) -> Result<Result<Vec<Vec<u8>>, i32>, NetlinkError> {
        let seq = self.request(ty, flags, attrs)?;
        let dump = flags & NLM_F_DUMP != 0;
        let mut out = Vec::new();
        loop {
            let mut done = None;
            self.recv_each(|m_ty, m_seq, m_flags, payload| {
                if m_seq != seq {
                    return Ok(());
                }
                match m_ty {
                    2 => {
                        // NLMSG_ERROR: an ack (0) or an error.
                        let (errno, _) = crate::netlink::parse_error(m_flags, payload)?;
                        done = Some(if errno == 0 { Ok(()) } else { Err(errno) });
                    }
                    3 => done = Some(Ok(())), // NLMSG_DONE
                    _ => {
                        out.push(payload.to_vec());
                        if !dump {
                            done = Some(Ok(()));
                        }
                    }
                }
                Ok(())
            })?;
            match done {
                Some(Ok(())) => return Ok(Ok(out)),
                Some(Err(errno)) => return Ok(Err(errno)),
                None => {}
            }
        }
    }

    /// Whether our table exists.
    fn table_exists(&mut self, table: &str) -> Result<bool, NetlinkError> {
        match self.collect(GETTABLE, 0, &[(1, table)])? {
            Err(ENOENT) => Ok(false),
            Err(errno) => Err(crate::netlink::rejected("get table".into(), errno, None)),
            Ok(_) => Ok(true),
        }
    }

    /// The names of every chain of our table.
    fn chain_names(&mut self, table: &str) -> Result<Vec<String>, NetlinkError> {
        let chains = self
            .collect(GETCHAIN, NLM_F_DUMP, &[])?
            .map_err(|errno| crate::netlink::rejected("dump chains".into(), errno, None))?;
        let mut out = Vec::new();
        for payload in chains {
            let a = attrs(payload.get(4..).unwrap_or_default());
            if get(&a, 1).map(text).as_deref() == Some(table)
                && let Some(name) = get(&a, 3)
            {
                out.push(text(name));
            }
        }
        Ok(out)
    }

    /// Our table's chains and named maps (with their capacity), as a full sync replacing
    /// it in place needs them: `Ok(None)` when the table does not exist.
    pub fn present(&mut self, table: &str) -> Result<Option<Present>, NetlinkError> {
        if !self.table_exists(table)? {
            return Ok(None);
        }
        let mut present = Present {
            chains: self.chain_names(table)?.into_iter().collect(),
            ..Present::default()
        };
        let sets = self
            .collect(GETSET, NLM_F_DUMP, &[(1, table)])?
            .map_err(|errno| crate::netlink::rejected("dump maps".into(), errno, None))?;
        for payload in sets {
            let a = attrs(payload.get(4..).unwrap_or_default());
            let be32 = |d: &[u8]| d.try_into().ok().map(u32::from_be_bytes);
            let flags = get(&a, 3).and_then(be32).unwrap_or(0);
            if get(&a, 1).map(text).as_deref() != Some(table) || flags & SET_ANONYMOUS != 0 {
                continue;
            }
            let Some(name) = get(&a, 2).map(text) else {
                continue;
            };
            let size = get(&a, 9)
                .and_then(|desc| get(&attrs(desc), 1).and_then(be32))
                .unwrap_or(0);
            present.maps.insert(name, size);
        }
        Ok(Some(present))
    }

    /// Our table as the kernel holds it: `Ok(None)` when it does not exist.
    pub fn observe(&mut self, table: &str) -> Result<Option<Observed>, NetlinkError> {
        if !self.table_exists(table)? {
            return Ok(None);
        }
        let mut observed = Observed {
            chains: self.chain_names(table)?.into_iter().collect(),
            ..Observed::default()
        };
        for (map, key_type, value_type) in render::stores() {
            let replies = match self.collect(GETSETELEM, NLM_F_DUMP, &[(1, table), (2, map)])? {
                Ok(r) => r,
                Err(ENOENT) => continue,
                Err(errno) => {
                    return Err(crate::netlink::rejected(
                        format!("dump elements of {map}"),
                        errno,
                        None,
                    ));
                }
            };
            for payload in replies {
                let top = attrs(payload.get(4..).unwrap_or_default());
                let Some(list) = get(&top, 3) else { continue };
                for (_, elem) in attrs(list) {
                    let e = attrs(elem);
                    let key = get(&e, 1)
                        .and_then(|k| get(&attrs(k), 1))
                        .and_then(|k| decode(key_type, k));
                    let Some(key) = key else {
                        return Err(NetlinkError::Malformed(format!("element of {map}")));
                    };
                    let data = get(&e, 2).map(attrs).unwrap_or_default();
                    if let Some(verdict) = get(&data, 2) {
                        let v = attrs(verdict);
                        let code = get(&v, 1)
                            .and_then(|c| c.try_into().ok())
                            .map(|c: [u8; 4]| u32::from_be_bytes(c) as i32);
                        match (code, get(&v, 2)) {
                            (Some(-4 | -3), Some(chain)) => {
                                observed
                                    .elements
                                    .insert((map.to_string(), key, text(chain)));
                            }
                            (Some(0), _) => {
                                observed.other_elements.insert((
                                    map.to_string(),
                                    key,
                                    "drop".to_string(),
                                ));
                            }
                            (Some(1), _) => {
                                observed.other_elements.insert((
                                    map.to_string(),
                                    key,
                                    "accept".to_string(),
                                ));
                            }
                            _ => {
                                observed.other_elements.insert((
                                    map.to_string(),
                                    key,
                                    "?".to_string(),
                                ));
                            }
                        }
                    } else if let Some(value) = get(&data, 1) {
                        let v = decode(value_type, value).unwrap_or_else(|| "?".to_string());
                        observed.other_elements.insert((map.to_string(), key, v));
                    } else {
                        observed
                            .other_elements
                            .insert((map.to_string(), key, String::new()));
                    }
                }
            }
        }
        Ok(Some(observed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_and_values_decode_like_nft_prints_them() {
        let key = [192, 0, 2, 10, 6, 0, 0, 0, 1, 187, 0, 0];
        assert_eq!(
            decode("ipv4_addr . inet_proto . inet_service", &key).as_deref(),
            Some("192.0.2.10 . tcp . 443")
        );
        let key = [10, 0, 0, 0, 17, 0, 0, 0, 0, 53, 0, 0];
        assert_eq!(
            decode("nf_proto . inet_proto . inet_service", &key).as_deref(),
            Some("ipv6 . udp . 53")
        );
        assert_eq!(decode("ipv4_addr", &[1, 2]), None);
    }
}
