//! Deleting UDP conntrack entries over ctnetlink (`NFNL_SUBSYS_CTNETLINK`) on the handle's
//! own `NETLINK_NETFILTER` socket: no `conntrack` process.
//!
//! The kernel's flush (`IPCTNL_MSG_CT_DELETE` without a tuple) cannot be narrowed to a
//! port, so, like `conntrack -D -p udp --dport P` does: one dump of the family's table
//! (`IPCTNL_MSG_CT_GET`, `NLM_F_DUMP`), the entries whose original tuple is UDP to one of
//! the ports picked out here, then one delete per entry, addressed by its original tuple
//! (and zone) exactly as the dump gave them, all in one datagram. An entry that is gone by
//! then (`ENOENT`: it expired or was deleted meanwhile) is not an error.

use std::collections::BTreeSet;

use dualstack_addr::Family;

use crate::netlink::{NetlinkError, NftSocket, parse_error, rejected};

const SUBSYS_CTNETLINK: u16 = 1;
const IPCTNL_MSG_CT_GET: u16 = 1;
const IPCTNL_MSG_CT_DELETE: u16 = 2;
const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_DUMP: u16 = 0x300;
const NLMSG_ERROR: u16 = 2;
const NLMSG_DONE: u16 = 3;
const NLA_TYPE_MASK: u16 = 0x3fff;

const CTA_TUPLE_ORIG: u16 = 1;
const CTA_ZONE: u16 = 18;
const CTA_TUPLE_PROTO: u16 = 2;
const CTA_PROTO_NUM: u16 = 1;
const CTA_PROTO_DST_PORT: u16 = 3;
const IPPROTO_UDP: u8 = 17;
const ENOENT: i32 = 2;

fn af(family: Family) -> u8 {
    match family {
        Family::V4 => 2,
        Family::V6 => 10,
    }
}

/// `(type, payload, whole attribute)` of each attribute in `data`.
fn attrs(mut data: &[u8]) -> Vec<(u16, &[u8], &[u8])> {
    let mut out = Vec::new();
    while data.len() >= 4 {
        let len = u16::from_ne_bytes([data[0], data[1]]) as usize;
        let ty = u16::from_ne_bytes([data[2], data[3]]) & NLA_TYPE_MASK;
        if len < 4 || len > data.len() {
            break;
        }
        out.push((ty, &data[4..len], &data[..len]));
        data = &data[len.div_ceil(4).saturating_mul(4).min(data.len())..];
    }
    out
}

/// The UDP destination port of an entry's original tuple, if it is UDP.
fn udp_dport(tuple: &[u8]) -> Option<u16> {
    let (_, proto, _) = attrs(tuple)
        .into_iter()
        .find(|(t, _, _)| *t == CTA_TUPLE_PROTO)?;
    let proto = attrs(proto);
    let num = proto.iter().find(|(t, _, _)| *t == CTA_PROTO_NUM)?.1;
    if num.first() != Some(&IPPROTO_UDP) {
        return None;
    }
    let port = proto.iter().find(|(t, _, _)| *t == CTA_PROTO_DST_PORT)?.1;
    Some(u16::from_be_bytes([*port.first()?, *port.get(1)?]))
}

fn header(msg: &mut Vec<u8>, ty: u16, flags: u16, seq: u32, family: Family) {
    msg.extend_from_slice(&0u32.to_ne_bytes()); // length, patched by the caller
    msg.extend_from_slice(&((SUBSYS_CTNETLINK << 8) | ty).to_ne_bytes());
    msg.extend_from_slice(&flags.to_ne_bytes());
    msg.extend_from_slice(&seq.to_ne_bytes());
    msg.extend_from_slice(&0u32.to_ne_bytes());
    msg.extend_from_slice(&[af(family), 0, 0, 0]); // nfgenmsg: family, v0, res_id 0
}

fn patch_len(msg: &mut [u8], start: usize) {
    let len = (msg.len() - start) as u32;
    msg[start..start + 4].copy_from_slice(&len.to_ne_bytes());
}

impl NftSocket {
    /// Deletes every UDP conntrack entry of `family` whose original destination port is in
    /// `ports`; returns how many were deleted.
    pub fn delete_udp_flows(
        &mut self,
        family: Family,
        ports: &BTreeSet<u16>,
    ) -> Result<usize, NetlinkError> {
        if ports.is_empty() {
            return Ok(0);
        }
        // 1. Dump the family's entries; keep the original tuple (and zone) of ours.
        let seq = self.bump_seq();
        let mut msg = Vec::with_capacity(20);
        header(
            &mut msg,
            IPCTNL_MSG_CT_GET,
            NLM_F_REQUEST | NLM_F_DUMP,
            seq,
            family,
        );
        patch_len(&mut msg, 0);
        self.send_raw(&msg)?;
        let mut doomed: Vec<Vec<u8>> = Vec::new();
        let mut failure = None;
        let mut done = false;
        while !done {
            self.recv_each(|ty, m_seq, flags, payload| {
                if m_seq != seq {
                    return Ok(());
                }
                match ty {
                    NLMSG_DONE => done = true,
                    NLMSG_ERROR => {
                        let (errno, message) = parse_error(flags, payload)?;
                        if errno != 0 {
                            failure = Some(rejected("dump conntrack".into(), errno, message));
                        }
                        done = true;
                    }
                    _ => {
                        // nfgenmsg: the entry's family first.
                        if payload.first() != Some(&af(family)) {
                            return Ok(());
                        }
                        let top = attrs(payload.get(4..).unwrap_or_default());
                        let orig = top.iter().find(|(t, _, _)| *t == CTA_TUPLE_ORIG);
                        if let Some((_, tuple, whole)) = orig
                            && udp_dport(tuple).is_some_and(|p| ports.contains(&p))
                        {
                            let mut request = whole.to_vec();
                            request.resize(request.len().div_ceil(4) * 4, 0);
                            if let Some((_, _, zone)) = top.iter().find(|(t, _, _)| *t == CTA_ZONE)
                            {
                                request.extend_from_slice(zone);
                                request.resize(request.len().div_ceil(4) * 4, 0);
                            }
                            doomed.push(request);
                        }
                    }
                }
                Ok(())
            })?;
        }
        if let Some(e) = failure {
            return Err(e);
        }
        if doomed.is_empty() {
            return Ok(0);
        }
        // 2. One delete per entry, all in one datagram; every one acked.
        let mut msg = Vec::with_capacity(doomed.len() * 96);
        let mut pending = BTreeSet::new();
        for attrs in &doomed {
            let seq = self.bump_seq();
            pending.insert(seq);
            let start = msg.len();
            header(
                &mut msg,
                IPCTNL_MSG_CT_DELETE,
                NLM_F_REQUEST | NLM_F_ACK,
                seq,
                family,
            );
            msg.extend_from_slice(attrs);
            patch_len(&mut msg, start);
        }
        self.send_raw(&msg)?;
        let mut deleted = 0;
        let mut failure = None;
        while !pending.is_empty() {
            self.recv_each(|ty, m_seq, flags, payload| {
                if ty == NLMSG_ERROR && pending.remove(&m_seq) {
                    match parse_error(flags, payload)? {
                        (0, _) => deleted += 1,
                        (ENOENT, _) => {}
                        (errno, message) => {
                            failure.get_or_insert(rejected(
                                "delete conntrack entry".into(),
                                errno,
                                message,
                            ));
                        }
                    }
                }
                Ok(())
            })?;
        }
        match failure {
            Some(e) => Err(e),
            None => Ok(deleted),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn attr(ty: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&((4 + payload.len()) as u16).to_ne_bytes());
        v.extend_from_slice(&ty.to_ne_bytes());
        v.extend_from_slice(payload);
        v.resize(v.len().div_ceil(4) * 4, 0);
        v
    }

    #[test]
    fn reads_the_udp_destination_port_of_a_tuple() {
        let proto = [
            attr(CTA_PROTO_NUM, &[17]),
            attr(CTA_PROTO_DST_PORT, &53u16.to_be_bytes()),
        ]
        .concat();
        let tuple = [
            attr(1 | 0x8000, &attr(1, &[10, 0, 0, 1])),
            attr(CTA_TUPLE_PROTO | 0x8000, &proto),
        ]
        .concat();
        assert_eq!(udp_dport(&tuple), Some(53));
        let tcp = [
            attr(CTA_PROTO_NUM, &[6]),
            attr(CTA_PROTO_DST_PORT, &53u16.to_be_bytes()),
        ]
        .concat();
        let tuple = attr(CTA_TUPLE_PROTO | 0x8000, &tcp);
        assert_eq!(udp_dport(&tuple), None);
        assert_eq!(udp_dport(&[1, 2]), None);
    }
}
