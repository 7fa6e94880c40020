//! The netlink data plane: our table applied as nf_tables batches on one long-lived
//! `NETLINK_NETFILTER` socket (encoding in [`dualstack_nftnl`], pure; this module is the
//! socket and its bookkeeping).
//!
//! * **One socket for the life of the handle.** Closing a netlink socket right after a
//!   transaction that deleted something waits for the kernel's release worker (an RCU grace
//!   period, 10–20 ms); a socket that stays open never pays it on the sync path.
//! * **One atomic batch per sync**: `NFNL_MSG_BATCH_BEGIN` carries the generation id read
//!   just before (`NFT_MSG_GETGEN`), so a batch built against a ruleset someone changed in
//!   between is refused (`ERESTART`) and re-encoded against the new generation once; every
//!   message asks for an ack, and the acks arrive after the commit, so collecting all of
//!   them confirms it. A batch the kernel rejects is aborted whole: the previous table
//!   stays in force. The error names the message (e.g. `add rule to chain fe4-…`) and
//!   carries the kernel's extended-ack text when it gives one.
//! * **Large buffers**: `SO_SNDBUFFORCE` (a batch is sent in one `sendmsg`, and netlink
//!   refuses a message larger than the send buffer) and `SO_RCVBUFFORCE` (one ack per
//!   message arrives at once after the commit); `NETLINK_CAP_ACK` keeps each ack at 36
//!   bytes instead of a copy of the message.
//! * A socket for another network namespace is created on a short-lived thread that
//!   entered it (`setns`); the socket stays in that namespace for its whole life.
//! * **Many changes as a proven difference.** A full sync over the table in use flushes and
//!   refills every chain and map (correct whatever the kernel holds, but at 10,000 Services
//!   it rewrites 40,000 elements). When the caller knows what the handle's last commit
//!   left ([`Netlink::apply_changes_if_untouched`]), only the difference is sent, in a
//!   batch that carries the generation id the handle's own last commit moved the kernel
//!   to: the kernel refuses it whole if anyone committed anything since (every commit in
//!   the namespace moves the generation), and the handle checks the caller's memory
//!   against a fingerprint of what it committed. Refused, the caller falls back to the
//!   full sync: the difference is an optimisation that cannot be wrong, never a guess.
//!   The proof rests on the kernel honouring the batch's generation id
//!   (`NFNL_BATCH_GENID`, Linux 4.19), older than anything that can hold this table
//!   (`inet` NAT needs 5.2). The fingerprint covers the frontends, not the pool guard: the
//!   caller sends a guard change as a full sync (the agent's `Syncer` does).

use std::collections::BTreeSet;
use std::fs::File;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use dualstack_nftnl::{EncodeError, FinishedBatch};
use dualstack_ruleset::nft::Present;
use dualstack_ruleset::{Frontend, Ruleset, nft as render, validate_table_name};
use netlink_packet_core::NetlinkBuffer;
use netlink_sys::{Socket, protocols::NETLINK_NETFILTER};

use crate::conntrack::{SharedUdpFlows, UdpFlows};
use crate::{DataplaneError, Runner};
use dualstack_addr::Family;

const SUBSYS: u16 = 10;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NLMSG_ERROR: u16 = 2;
const NLM_F_REQUEST: u16 = 1;
const NLM_F_ACK_TLVS: u16 = 0x200;
const NLMSGERR_ATTR_MSG: u16 = 1;
const ERESTART: i32 = 85;
/// Send and receive buffer sizes forced on the socket.
const BUFFER_BYTES: usize = 64 << 20;
/// How long to wait for the kernel's answer to a batch before giving up on it.
const ACK_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a netlink operation failed.
#[derive(Debug, thiserror::Error)]
pub enum NetlinkError {
    /// A system call on the socket failed (a receive timeout while acks are pending is
    /// reported as [`NetlinkError::MissingAcks`] instead).
    #[error("netlink socket: {op}: {source}")]
    Io {
        /// The call or socket option that failed, e.g. `socket`, `bind`, `send`, `recv`,
        /// `NETLINK_CAP_ACK` or `SO_RCVTIMEO`.
        op: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// The socket for a named network namespace could not be created there.
    #[error("entering network namespace {name}: {detail}")]
    Netns {
        /// The namespace name (`/run/netns/<name>`).
        name: String,
        /// Why, e.g. opening the namespace file, `setns`, or opening the socket inside it.
        detail: String,
    },
    /// The batch could not be encoded; nothing was sent.
    #[error(transparent)]
    Encode(#[from] EncodeError),
    /// The kernel refused the batch (nothing of it was committed).
    #[error("the kernel refused `{what}`: {errno_text} (errno {errno}){}", message.as_deref().map(|m| format!(": {m}")).unwrap_or_default())]
    Rejected {
        /// The message the kernel refused, as the batch describes it (e.g.
        /// `add rule to chain fe4-…`), `the batch` for an error about the batch as a whole,
        /// or the request (e.g. `dump chains`).
        what: String,
        /// The errno from the `NLMSG_ERROR` reply, positive (e.g. 2 `ENOENT`, 85
        /// `ERESTART` for a generation mismatch).
        errno: i32,
        /// The operating system's text for `errno`.
        errno_text: String,
        /// The kernel's extended-ack text (`NLMSGERR_ATTR_MSG`), when it sent one.
        message: Option<String>,
    },
    /// The generation id changed between reading it and committing (`ERESTART`) on both
    /// attempts; nothing was committed.
    #[error("the ruleset changed while the batch was built, twice in a row")]
    GenerationChanged,
    /// Not every message of the batch was acked (the receive timeout ran out first), so the
    /// commit is not confirmed.
    #[error("no answer from the kernel for {missing} message(s) of the batch")]
    MissingAcks {
        /// Number of messages still without an ack.
        missing: usize,
    },
    /// A reply the kernel sent could not be parsed (a truncated header, a short error
    /// message, a generation reply without `NFTA_GEN_ID`, a map element it cannot read, …).
    #[error("malformed netlink reply: {0}")]
    Malformed(String),
}

/// One `NETLINK_NETFILTER` socket and its sequence numbers.
#[derive(Debug)]
pub struct NftSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
    /// The generation id the kernel moved to with this socket's last committed batch
    /// (`None` before the first, and after a batch that failed).
    committed: Option<u32>,
}

/// The generation id after a commit made at `genid`: the kernel counts every commit that
/// changes something once, skipping 0 (a batch that changes nothing leaves it; this module
/// never sends one: every batch declares, deletes, flushes or adds something, and an empty
/// change is not sent at all).
fn after_commit(genid: u32) -> u32 {
    match genid.wrapping_add(1) {
        0 => 1,
        next => next,
    }
}

fn io(op: &'static str) -> impl FnOnce(std::io::Error) -> NetlinkError {
    move |source| NetlinkError::Io { op, source }
}

impl NftSocket {
    /// A socket in the current network namespace.
    pub fn open() -> Result<NftSocket, NetlinkError> {
        let mut sock = Socket::new(NETLINK_NETFILTER).map_err(io("socket"))?;
        sock.bind_auto().map_err(io("bind"))?;
        sock.set_cap_ack(true).map_err(io("NETLINK_CAP_ACK"))?;
        sock.set_ext_ack(true).map_err(io("NETLINK_EXT_ACK"))?;
        let size = BUFFER_BYTES;
        if nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SndBufForce, &size)
            .is_err()
        {
            // Without CAP_NET_ADMIN: as large as the system allows.
            let _ = nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::SndBuf, &size);
        }
        if nix::sys::socket::setsockopt(&sock, nix::sys::socket::sockopt::RcvBufForce, &size)
            .is_err()
        {
            let _ = sock.set_rx_buf_sz(size);
        }
        socket2::SockRef::from(&sock)
            .set_read_timeout(Some(ACK_TIMEOUT))
            .map_err(io("SO_RCVTIMEO"))?;
        Ok(NftSocket {
            sock,
            seq: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() as u32),
            buf: Vec::with_capacity(1 << 20),
            committed: None,
        })
    }

    /// The generation id the kernel's ruleset has had since this socket's last committed
    /// batch, if nothing else committed since; `None` before the first commit and after a
    /// batch that failed. [`NftSocket::transact_at`] with it succeeds only while no one else
    /// has changed any table of the namespace.
    pub fn committed(&self) -> Option<u32> {
        self.committed
    }

    /// Sends the batch `build(first sequence number, genid)` once, with `genid` as the
    /// generation it must apply to: `Ok(false)` when the kernel's generation is another
    /// (someone committed since; the kernel refused the batch whole, nothing changed),
    /// `Ok(true)` when it was committed.
    pub fn transact_at<F>(&mut self, genid: u32, build: F) -> Result<bool, NetlinkError>
    where
        F: FnOnce(u32, u32) -> Result<FinishedBatch, EncodeError>,
    {
        let first = self.next_seq();
        let batch = build(first, genid)?;
        self.seq = batch.next_seq.wrapping_sub(1);
        match self.send_batch(&batch) {
            Ok(()) => {
                self.committed = Some(after_commit(genid));
                Ok(true)
            }
            Err(NetlinkError::Rejected { errno, .. }) if errno == ERESTART => {
                self.committed = None;
                Ok(false)
            }
            Err(e) => {
                self.committed = None;
                Err(e)
            }
        }
    }

    /// A socket in the named network namespace (`/run/netns/<name>`).
    pub fn open_in_netns(name: &str) -> Result<NftSocket, NetlinkError> {
        let bad = |detail: String| NetlinkError::Netns {
            name: name.to_string(),
            detail,
        };
        let file =
            File::open(Path::new("/run/netns").join(name)).map_err(|e| bad(e.to_string()))?;
        std::thread::spawn(move || -> Result<NftSocket, String> {
            nix::sched::setns(&file, nix::sched::CloneFlags::CLONE_NEWNET)
                .map_err(|e| e.to_string())?;
            NftSocket::open().map_err(|e| e.to_string())
        })
        .join()
        .map_err(|_| bad("thread panicked".into()))?
        .map_err(bad)
    }

    /// A socket where `runner` runs its commands.
    pub fn for_runner(runner: &Runner) -> Result<NftSocket, NetlinkError> {
        match runner.netns() {
            Some(ns) => NftSocket::open_in_netns(ns),
            None => NftSocket::open(),
        }
    }

    pub(crate) fn bump_seq(&mut self) -> u32 {
        self.next_seq()
    }

    pub(crate) fn send_raw(&mut self, msg: &[u8]) -> Result<(), NetlinkError> {
        self.sock.send(msg, 0).map_err(io("send"))?;
        Ok(())
    }

    /// Receives one datagram and calls `f(type, seq, flags, payload)` for each message.
    pub(crate) fn recv_each(
        &mut self,
        mut f: impl FnMut(u16, u32, u16, &[u8]) -> Result<(), NetlinkError>,
    ) -> Result<(), NetlinkError> {
        self.recv()?;
        for_each_message(&self.buf, |m| {
            f(
                m.message_type(),
                m.sequence_number(),
                m.flags(),
                m.payload(),
            )
        })
    }

    fn next_seq(&mut self) -> u32 {
        self.seq = self.seq.wrapping_add(1).max(1);
        self.seq
    }

    /// The ruleset's current generation id (`NFT_MSG_GETGEN`).
    pub fn generation(&mut self) -> Result<u32, NetlinkError> {
        let seq = self.next_seq();
        let mut msg = Vec::with_capacity(20);
        msg.extend_from_slice(&20u32.to_ne_bytes());
        msg.extend_from_slice(&((SUBSYS << 8) | NFT_MSG_GETGEN).to_ne_bytes());
        msg.extend_from_slice(&NLM_F_REQUEST.to_ne_bytes());
        msg.extend_from_slice(&seq.to_ne_bytes());
        msg.extend_from_slice(&0u32.to_ne_bytes());
        msg.extend_from_slice(&[0, 0, 0, 0]); // nfgenmsg: AF_UNSPEC, v0, res_id 0
        self.sock.send(&msg, 0).map_err(io("send"))?;
        loop {
            self.recv()?;
            let mut found = None;
            for_each_message(&self.buf, |m| {
                if m.sequence_number() != seq {
                    return Ok(());
                }
                match m.message_type() {
                    t if t == (SUBSYS << 8) | NFT_MSG_NEWGEN => {
                        found = Some(Ok(gen_id(m.payload())?));
                    }
                    NLMSG_ERROR => {
                        let (errno, message) = parse_error(m.flags(), m.payload())?;
                        if errno != 0 {
                            found = Some(Err(rejected("get generation".into(), errno, message)));
                        }
                    }
                    _ => {}
                }
                Ok(())
            })?;
            if let Some(r) = found {
                return r;
            }
        }
    }

    fn recv(&mut self) -> Result<(), NetlinkError> {
        self.buf.clear();
        self.buf.reserve(1 << 20);
        self.sock.recv(&mut self.buf, 0).map_err(io("recv"))?;
        Ok(())
    }

    /// Encodes a batch with `build(first sequence number, generation id)`, sends it and
    /// waits for every ack. A batch refused because the generation moved is rebuilt and
    /// sent once more. Encoding errors come before anything is sent.
    pub fn transact<F>(&mut self, mut build: F) -> Result<(), NetlinkError>
    where
        F: FnMut(u32, u32) -> Result<FinishedBatch, EncodeError>,
    {
        self.transact_reading(None, |first, genid, _| build(first, genid))
    }

    /// [`NftSocket::transact`] for a batch that depends on what of `table` the kernel has
    /// ([`Present`], `None` when the table does not exist): read after the generation id,
    /// so a change in between makes the kernel refuse the batch, and it is rebuilt from a
    /// fresh reading.
    pub fn transact_over<F>(&mut self, table: &str, build: F) -> Result<(), NetlinkError>
    where
        F: FnMut(u32, u32, Option<&Present>) -> Result<FinishedBatch, EncodeError>,
    {
        self.transact_reading(Some(table), build)
    }

    fn transact_reading<F>(&mut self, table: Option<&str>, mut build: F) -> Result<(), NetlinkError>
    where
        F: FnMut(u32, u32, Option<&Present>) -> Result<FinishedBatch, EncodeError>,
    {
        for _ in 0..2 {
            let genid = self.generation()?;
            let present = match table {
                Some(t) => self.present(t)?,
                None => None,
            };
            let first = self.next_seq();
            let batch = build(first, genid, present.as_ref())?;
            // Reserve the batch's sequence numbers.
            self.seq = batch.next_seq.wrapping_sub(1);
            let sent = self.send_batch(&batch);
            self.committed = sent.is_ok().then(|| after_commit(genid));
            match sent {
                Err(NetlinkError::Rejected { errno, .. }) if errno == ERESTART => continue,
                other => return other,
            }
        }
        Err(NetlinkError::GenerationChanged)
    }

    /// Sends a dry-run batch (built with `finish_check`) and waits for its acks: `Ok` when
    /// the kernel accepted every message. Nothing is committed either way.
    pub fn check<F>(&mut self, mut build: F) -> Result<(), NetlinkError>
    where
        F: FnMut(u32, u32) -> Result<FinishedBatch, EncodeError>,
    {
        let first = self.next_seq();
        let batch = build(first, 0)?;
        self.seq = batch.next_seq.wrapping_sub(1);
        self.send_batch(&batch)
    }

    fn send_batch(&mut self, batch: &FinishedBatch) -> Result<(), NetlinkError> {
        self.sock.send(&batch.bytes, 0).map_err(io("send"))?;
        let b = &batch.batch;
        let first = b.first_seq();
        let mut pending: BTreeSet<u32> = b.acked_seqs().collect();
        let mut failure: Option<NetlinkError> = None;
        while !pending.is_empty() {
            if let Err(e) = self.recv() {
                return Err(match e {
                    NetlinkError::Io { source, .. }
                        if source.kind() == std::io::ErrorKind::WouldBlock =>
                    {
                        failure.unwrap_or(NetlinkError::MissingAcks {
                            missing: pending.len(),
                        })
                    }
                    other => other,
                });
            }
            let mut stop = false;
            for_each_message(&self.buf, |m| {
                if m.message_type() != NLMSG_ERROR {
                    return Ok(());
                }
                let seq = m.sequence_number();
                let (errno, message) = parse_error(m.flags(), m.payload())?;
                if seq == first {
                    // About the batch as a whole (generation, memory): nothing else follows.
                    if errno != 0 {
                        failure.get_or_insert(rejected("the batch".into(), errno, message));
                    }
                    stop = true;
                } else if pending.remove(&seq) && errno != 0 && failure.is_none() {
                    let what = b.describe(seq).unwrap_or("a message").to_string();
                    failure = Some(rejected(what, errno, message));
                }
                Ok(())
            })?;
            if stop {
                break;
            }
        }
        match failure {
            Some(e) => Err(e),
            None if pending.is_empty() => Ok(()),
            None => Err(NetlinkError::MissingAcks {
                missing: pending.len(),
            }),
        }
    }
}

/// An encoding error as the other appliers report it: invalid input is
/// [`DataplaneError::Invalid`].
fn encode_error(e: EncodeError) -> DataplaneError {
    match e {
        EncodeError::Invalid(invalid) => DataplaneError::Invalid(invalid),
        other => DataplaneError::Netlink(NetlinkError::Encode(other)),
    }
}

pub(crate) fn rejected(what: String, errno: i32, message: Option<String>) -> NetlinkError {
    NetlinkError::Rejected {
        what,
        errno,
        errno_text: std::io::Error::from_raw_os_error(errno).to_string(),
        message,
    }
}

fn for_each_message(
    mut data: &[u8],
    mut f: impl FnMut(&NetlinkBuffer<&[u8]>) -> Result<(), NetlinkError>,
) -> Result<(), NetlinkError> {
    while data.len() >= 16 {
        let m =
            NetlinkBuffer::new_checked(data).map_err(|e| NetlinkError::Malformed(e.to_string()))?;
        let len = m.length() as usize;
        f(&m)?;
        let step = len.div_ceil(4) * 4;
        if step == 0 || step > data.len() {
            break;
        }
        data = &data[step..];
    }
    Ok(())
}

/// The errno of an `NLMSG_ERROR` (0 for an ack) and the extended-ack message, if any.
pub(crate) fn parse_error(
    flags: u16,
    payload: &[u8],
) -> Result<(i32, Option<String>), NetlinkError> {
    let code = payload
        .get(..4)
        .map(|b| i32::from_ne_bytes([b[0], b[1], b[2], b[3]]))
        .ok_or_else(|| NetlinkError::Malformed("short error message".into()))?;
    let mut message = None;
    if flags & NLM_F_ACK_TLVS != 0 {
        // errno, then the (capped) original header, then TLVs.
        let mut tlvs = payload.get(4 + 16..).unwrap_or_default();
        while tlvs.len() >= 4 {
            let len = u16::from_ne_bytes([tlvs[0], tlvs[1]]) as usize;
            let ty = u16::from_ne_bytes([tlvs[2], tlvs[3]]) & 0x3fff;
            if len < 4 || len > tlvs.len() {
                break;
            }
            if ty == NLMSGERR_ATTR_MSG {
                let text = &tlvs[4..len];
                let text = text.split(|b| *b == 0).next().unwrap_or_default();
                message = Some(String::from_utf8_lossy(text).into_owned());
            }
            tlvs = &tlvs[(len.div_ceil(4) * 4).min(tlvs.len())..];
        }
    }
    Ok((-code, message))
}

fn gen_id(payload: &[u8]) -> Result<u32, NetlinkError> {
    let mut attrs = payload.get(4..).unwrap_or_default();
    while attrs.len() >= 8 {
        let len = u16::from_ne_bytes([attrs[0], attrs[1]]) as usize;
        let ty = u16::from_ne_bytes([attrs[2], attrs[3]]) & 0x3fff;
        if len < 4 || len > attrs.len() {
            break;
        }
        if ty == 1 && len >= 8 {
            return Ok(u32::from_be_bytes([attrs[4], attrs[5], attrs[6], attrs[7]]));
        }
        attrs = &attrs[(len.div_ceil(4) * 4).min(attrs.len())..];
    }
    Err(NetlinkError::Malformed(
        "generation reply without NFTA_GEN_ID".into(),
    ))
}

fn netlink_error(e: NetlinkError) -> DataplaneError {
    match e {
        NetlinkError::Encode(e) => encode_error(e),
        other => DataplaneError::Netlink(other),
    }
}

/// The netlink data plane for one table. Clones share the socket (and the memory of the
/// shared `allow*` chains the handle's own transactions left, as [`crate::Nft`] keeps it).
#[derive(Debug, Clone)]
pub struct Netlink {
    runner: Runner,
    table: String,
    socket: Arc<Mutex<NftSocket>>,
    shared: Arc<Mutex<BTreeSet<String>>>,
    /// The UDP frontends in force, to flush only the flows of those a sync changes.
    udp: SharedUdpFlows,
    /// What the handle's last successful commit left in the table, as a [`Fingerprint`];
    /// `None` before the first and after any failure (see
    /// [`Netlink::apply_changes_if_untouched`]).
    applied: Arc<Mutex<Option<Fingerprint>>>,
}

/// An order-independent digest of a set of frontends: the wrapping sum of a 64-bit hash of
/// each, so that removing and adding frontends updates it without the whole set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) struct Fingerprint(u64);

impl Fingerprint {
    /// The digest of `frontends`.
    pub(crate) fn of(frontends: &[Frontend]) -> Fingerprint {
        Fingerprint::default().with(&[], frontends)
    }

    /// This digest with `remove` taken out and `add` put in.
    pub(crate) fn with(self, remove: &[Frontend], add: &[Frontend]) -> Fingerprint {
        let hash = |fe: &Frontend| {
            use std::hash::{Hash, Hasher};
            // SipHash with fixed keys: the same digest for the same frontends within one
            // build (the digest never leaves the process).
            let mut h = std::hash::DefaultHasher::new();
            fe.hash(&mut h);
            h.finish()
        };
        let mut sum = self.0;
        for fe in remove {
            sum = sum.wrapping_sub(hash(fe));
        }
        for fe in add {
            sum = sum.wrapping_add(hash(fe));
        }
        Fingerprint(sum)
    }
}

impl Netlink {
    /// A handle on `table inet <table>` in `runner`'s namespace; opens the socket. Fails on
    /// an invalid name or when the socket cannot be opened.
    pub fn new(runner: Runner, table: &str) -> Result<Netlink, DataplaneError> {
        validate_table_name(table)
            .map_err(|e| DataplaneError::Invalid(dualstack_ruleset::InvalidRuleset(vec![e])))?;
        let socket = NftSocket::for_runner(&runner)?;
        Ok(Netlink {
            runner,
            table: table.to_string(),
            socket: Arc::new(Mutex::new(socket)),
            shared: Arc::default(),
            udp: SharedUdpFlows::default(),
            applied: Arc::default(),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The namespace the handle's socket lives in.
    pub fn runner(&self) -> &Runner {
        &self.runner
    }

    fn transact<F>(&self, build: F) -> Result<(), DataplaneError>
    where
        F: FnMut(u32, u32) -> Result<FinishedBatch, EncodeError>,
    {
        let mut sock = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        sock.transact(build).map_err(netlink_error)
    }

    /// Replaces our whole table with `ruleset` in one atomic batch, then deletes the UDP
    /// conntrack entries of the UDP frontends it added, removed or changed (all of its UDP
    /// frontends on the handle's first sync), over ctnetlink. When the table exists it is
    /// replaced in place (chains and maps flushed and refilled, the hooks kept:
    /// [`render::InPlace`]), so that no packet crossing the commit misses a rule.
    pub fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        self.check_table(ruleset)?;
        // The batch is validated and encoded before anything that changes state is sent
        // (only the generation id and the table's chain and map names are read first);
        // invalid input is `Invalid`.
        self.forget_shared();
        let fingerprint = Fingerprint::of(&ruleset.frontends);
        let (ports, next) = self.udp.full(&ruleset.frontends);
        // The socket's lock is held from the batch to the fingerprint, so that a clone's
        // proven difference never sees one without the other.
        let mut sock = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        self.set_applied(None);
        sock.transact_over(&self.table, |seq, genid, present| match present {
            Some(present) => dualstack_nftnl::full_in_place(ruleset, present, seq, genid),
            None => dualstack_nftnl::full(ruleset, seq, genid),
        })
        .map_err(netlink_error)?;
        self.set_applied(Some(fingerprint));
        drop(sock);
        self.remember_shared(render::shared_chains(&ruleset.frontends));
        self.flush_udp(&ports, next)
    }

    /// Deletes the UDP flows of `ports` over ctnetlink, then records `next` as the UDP
    /// frontends in force (or, when the delete fails, nothing: the next sync flushes all).
    fn flush_udp(&self, ports: &[(Family, u16)], next: UdpFlows) -> Result<(), DataplaneError> {
        let mut result = Ok(());
        if !ports.is_empty() {
            let mut sock = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
            for family in Family::BOTH {
                let of: BTreeSet<u16> = ports
                    .iter()
                    .filter(|(f, _)| *f == family)
                    .map(|(_, p)| *p)
                    .collect();
                if let Err(e) = sock.delete_udp_flows(family, &of) {
                    result = Err(DataplaneError::Netlink(e));
                    break;
                }
            }
        }
        self.udp.settle(next, result)
    }

    /// One incremental batch (see [`crate::Nft::apply_changes`]).
    pub fn apply_changes(
        &self,
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<(), DataplaneError> {
        self.changes_at(None, remove, add).map(|_| ())
    }

    /// The incremental batch for a difference from `previous`, committed only if the
    /// kernel's tables are exactly as this handle's last commit left them and that commit
    /// left `previous`: the batch carries the generation id that commit moved the kernel
    /// to, so the kernel itself refuses it whole if anything (any table, anyone) committed
    /// since; and the handle checks `previous` against a fingerprint of what it
    /// committed. `Ok(false)`: not proven, nothing sent or nothing changed (the caller
    /// replaces the table whole). This is how a sync with many changes avoids rewriting
    /// every element of a large table.
    pub fn apply_changes_if_untouched(
        &self,
        previous: &[Frontend],
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<bool, DataplaneError> {
        self.changes_at(Some(Fingerprint::of(previous)), remove, add)
    }

    /// One incremental batch: against the generation the handle's own last commit left,
    /// and only if that commit left `previous` (`Some`: `Ok(false)` when either is not so,
    /// nothing sent or nothing changed), or against the current generation (`None`).
    /// Everything from the check to the new fingerprint happens under the socket's lock,
    /// so clones sharing the socket cannot interleave a commit between them.
    fn changes_at(
        &self,
        previous: Option<Fingerprint>,
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<bool, DataplaneError> {
        if remove.is_empty() && add.is_empty() {
            return Ok(true);
        }
        let present = self.known_shared();
        let table = self.table.clone();
        let build =
            |seq, genid| dualstack_nftnl::changes(&table, remove, add, &present, seq, genid);
        let mut sock = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        let applied = *self.applied.lock().unwrap_or_else(PoisonError::into_inner);
        let before = sock.committed();
        let sent = match previous {
            Some(previous) => match before {
                Some(genid) if applied == Some(previous) => {
                    sock.transact_at(genid, build).map_err(netlink_error)
                }
                _ => return Ok(false),
            },
            None => sock.transact(build).map_err(netlink_error).map(|()| true),
        };
        // Still proven only if this batch applied right on top of the handle's last one
        // (an unchecked batch may have landed after someone else's change).
        let untouched = before.is_some() && sock.committed() == before.map(after_commit);
        match sent {
            Ok(true) => {}
            Ok(false) => return Ok(false),
            Err(e) => {
                self.set_applied(None);
                drop(sock);
                self.forget_shared();
                return Err(e);
            }
        }
        self.set_applied(applied.filter(|_| untouched).map(|fp| fp.with(remove, add)));
        drop(sock);
        self.remember_shared(render::shared_chains(add));
        let (ports, next) = self.udp.changes(remove, add);
        self.flush_udp(&ports, next).map(|()| true)
    }

    fn set_applied(&self, fingerprint: Option<Fingerprint>) {
        *self.applied.lock().unwrap_or_else(PoisonError::into_inner) = fingerprint;
    }

    /// Sends a batch the caller encoded (tests use it to inject failures).
    pub fn transact_raw<F>(&self, build: F) -> Result<(), DataplaneError>
    where
        F: FnMut(u32, u32) -> Result<FinishedBatch, EncodeError>,
    {
        self.forget_shared();
        self.set_applied(None);
        self.transact(build)
    }

    /// Reads our table back by netlink dumps on the handle's socket (no `nft` process).
    pub fn observe(&self) -> Result<Option<crate::Observed>, DataplaneError> {
        let mut sock = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(sock.observe(&self.table)?)
    }

    /// Deletes our table and nothing else. No error when it does not exist.
    pub fn cleanup(&self) -> Result<(), DataplaneError> {
        self.forget_shared();
        self.set_applied(None);
        self.udp.forget();
        let table = self.table.clone();
        self.transact(|seq, genid| dualstack_nftnl::delete(&table, seq, genid))
    }

    fn known_shared(&self) -> BTreeSet<String> {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn remember_shared(&self, chains: BTreeSet<String>) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend(chains);
    }

    fn forget_shared(&self) {
        self.shared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }

    fn check_table(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        if ruleset.table == self.table {
            Ok(())
        } else {
            Err(DataplaneError::WrongTable {
                handle: self.table.clone(),
                ruleset: ruleset.table.clone(),
            })
        }
    }
}
