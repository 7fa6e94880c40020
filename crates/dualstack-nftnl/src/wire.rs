//! Netlink framing for nf_tables batches: message headers, `nfgenmsg`, attributes (TLVs,
//! 4-byte aligned, nested ones flagged `NLA_F_NESTED`), written straight into one buffer.
//!
//! A [`Batch`] is what one `sendmsg` carries: `NFNL_MSG_BATCH_BEGIN` (with the generation
//! id), the messages, `NFNL_MSG_BATCH_END`. Every message between them asks for an ack, and
//! the batch records what each sequence number was, so an error names its object.

use crate::EncodeError;

/// `NFNL_SUBSYS_NFTABLES`.
pub const SUBSYS_NFTABLES: u16 = 10;
/// `NFPROTO_INET`.
pub const FAMILY_INET: u8 = 1;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
/// `NLM_F_CREATE`.
pub const F_CREATE: u16 = 0x400;
/// `NLM_F_APPEND`.
pub const F_APPEND: u16 = 0x800;
const NLA_F_NESTED: u16 = 0x8000;
const NFNL_MSG_BATCH_BEGIN: u16 = 0x10;
const NFNL_MSG_BATCH_END: u16 = 0x11;
const NFNL_BATCH_GENID: u16 = 1;

/// The largest attribute payload netlink can carry (its length field is 16 bits).
pub const MAX_ATTR: usize = 0xffff - 4;

/// nf_tables message types (`enum nf_tables_msg_types`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u16)]
pub enum MsgType {
    /// `NFT_MSG_NEWTABLE`: create a table; sent without `NLM_F_EXCL`, so an existing table
    /// is kept as it is.
    NewTable = 0,
    /// `NFT_MSG_DELTABLE`: delete a table and everything in it.
    DelTable = 2,
    /// `NFT_MSG_NEWCHAIN`: create a chain (base chains carry their hook and priority).
    NewChain = 3,
    /// `NFT_MSG_DELCHAIN`: delete a chain (the kernel refuses one still referenced by a
    /// jump, goto or map element).
    DelChain = 5,
    /// `NFT_MSG_NEWRULE`: add a rule to a chain (appended with [`F_APPEND`]).
    NewRule = 6,
    /// `NFT_MSG_DELRULE`: delete a rule; naming only the chain deletes all its rules (how
    /// `flush chain` is sent).
    DelRule = 8,
    /// `NFT_MSG_NEWSET`: declare a named set or map.
    NewSet = 9,
    /// `NFT_MSG_DELSET`: delete a named set or map.
    DelSet = 11,
    /// `NFT_MSG_NEWSETELEM`: add elements to a set or map.
    NewSetElem = 12,
    /// `NFT_MSG_DELSETELEM`: remove elements from a set or map; naming only the map removes
    /// all of them (`flush map`).
    DelSetElem = 14,
}

/// One atomic batch being built.
#[derive(Debug, Clone)]
pub struct Batch {
    buf: Vec<u8>,
    /// Sequence number of the batch-begin message; messages follow it.
    first_seq: u32,
    next_seq: u32,
    /// What each message after the begin is, for error reports (index = seq - first - 1).
    what: Vec<String>,
    /// Start of the message being written, if any.
    open: Option<usize>,
    /// Open nests: start offsets.
    nests: Vec<usize>,
    error: Option<usize>,
}

impl Batch {
    /// A batch whose begin message carries `genid` (0: no generation check) and whose
    /// sequence numbers start at `first_seq`.
    pub fn new(first_seq: u32, genid: u32) -> Batch {
        let mut b = Batch {
            buf: Vec::with_capacity(4096),
            first_seq,
            next_seq: first_seq,
            what: Vec::new(),
            open: None,
            nests: Vec::new(),
            error: None,
        };
        b.header(NFNL_MSG_BATCH_BEGIN, NLM_F_REQUEST, 0, SUBSYS_NFTABLES);
        if genid != 0 {
            b.u32(NFNL_BATCH_GENID, genid);
        }
        b.finish_msg();
        b
    }

    fn header(&mut self, ty: u16, flags: u16, family: u8, res_id: u16) {
        let start = self.buf.len();
        self.open = Some(start);
        let seq = self.next_seq;
        self.next_seq = self.next_seq.wrapping_add(1);
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // length, patched in finish_msg
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(&flags.to_ne_bytes());
        self.buf.extend_from_slice(&seq.to_ne_bytes());
        self.buf.extend_from_slice(&0u32.to_ne_bytes()); // port id: the kernel's
        // struct nfgenmsg
        self.buf.push(family);
        self.buf.push(0); // NFNETLINK_V0
        self.buf.extend_from_slice(&res_id.to_be_bytes());
    }

    /// Starts an nf_tables message of `ty` for the inet family; `what` names its object.
    pub fn begin(&mut self, ty: MsgType, extra_flags: u16, what: impl FnOnce() -> String) {
        let flags = NLM_F_REQUEST | NLM_F_ACK | extra_flags;
        self.header((SUBSYS_NFTABLES << 8) | ty as u16, flags, FAMILY_INET, 0);
        self.what.push(what());
    }

    /// Reserves room for `additional` more bytes (one allocation for a large batch).
    pub fn reserve(&mut self, additional: usize) {
        self.buf.reserve(additional);
    }

    /// Ends the message being written.
    pub fn finish_msg(&mut self) {
        if let Some(start) = self.open.take() {
            let len = (self.buf.len() - start) as u32;
            self.buf[start..start + 4].copy_from_slice(&len.to_ne_bytes());
        }
    }

    /// Size of the message being written so far.
    pub fn msg_len(&self) -> usize {
        self.open.map_or(0, |s| self.buf.len() - s)
    }

    /// An attribute with raw payload.
    pub fn bytes(&mut self, ty: u16, data: &[u8]) {
        if data.len() > MAX_ATTR {
            self.error.get_or_insert(data.len());
            return;
        }
        let len = (4 + data.len()) as u16;
        self.buf.extend_from_slice(&len.to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(data);
        self.pad();
    }

    fn pad(&mut self) {
        while !self.buf.len().is_multiple_of(4) {
            self.buf.push(0);
        }
    }

    /// A big-endian u32 attribute (what nf_tables uses for its numbers).
    pub fn u32(&mut self, ty: u16, v: u32) {
        self.bytes(ty, &v.to_be_bytes());
    }

    /// A NUL-terminated string attribute.
    pub fn str(&mut self, ty: u16, s: &str) {
        let start = self.buf.len();
        let len = 4 + s.len() + 1;
        if len > MAX_ATTR {
            self.error.get_or_insert(len);
            return;
        }
        self.buf.extend_from_slice(&(len as u16).to_ne_bytes());
        self.buf.extend_from_slice(&ty.to_ne_bytes());
        self.buf.extend_from_slice(s.as_bytes());
        self.buf.push(0);
        debug_assert_eq!(self.buf.len() - start, len);
        self.pad();
    }

    /// Opens a nested attribute; close it with [`Batch::end_nest`].
    pub fn nest(&mut self, ty: u16) {
        self.nests.push(self.buf.len());
        self.buf.extend_from_slice(&0u16.to_ne_bytes());
        self.buf
            .extend_from_slice(&(ty | NLA_F_NESTED).to_ne_bytes());
    }

    /// Closes the innermost nested attribute.
    pub fn end_nest(&mut self) {
        if let Some(start) = self.nests.pop() {
            let len = self.buf.len() - start;
            if len > 0xffff {
                self.error.get_or_insert(len);
                return;
            }
            self.buf[start..start + 2].copy_from_slice(&(len as u16).to_ne_bytes());
        }
    }

    /// Size of the innermost open nest so far.
    pub fn nest_len(&self) -> usize {
        self.nests.last().map_or(0, |s| self.buf.len() - s)
    }

    /// Number of nf_tables messages (acks to expect).
    pub fn messages(&self) -> usize {
        self.what.len()
    }

    /// The sequence number of the begin message.
    pub fn first_seq(&self) -> u32 {
        self.first_seq
    }

    /// What the message with sequence number `seq` was about (`None` for the batch
    /// begin or a number not in this batch).
    pub fn describe(&self, seq: u32) -> Option<&str> {
        let i = seq.wrapping_sub(self.first_seq).checked_sub(1)? as usize;
        self.what.get(i).map(String::as_str)
    }

    /// The sequence numbers of the messages that ask for an ack.
    pub fn acked_seqs(&self) -> impl Iterator<Item = u32> + '_ {
        (1..=self.what.len() as u32).map(|i| self.first_seq.wrapping_add(i))
    }

    /// Closes the batch (`NFNL_MSG_BATCH_END`) and returns its bytes and the next free
    /// sequence number.
    pub fn finish(mut self) -> Result<FinishedBatch, EncodeError> {
        self.finish_msg();
        if let Some(len) = self.error.take() {
            return Err(EncodeError::TooLarge(len));
        }
        self.header(NFNL_MSG_BATCH_END, NLM_F_REQUEST, 0, SUBSYS_NFTABLES);
        self.finish_msg();
        Ok(FinishedBatch {
            next_seq: self.next_seq,
            bytes: std::mem::take(&mut self.buf),
            batch: self,
        })
    }
}

impl Batch {
    /// Closes the batch *without* `NFNL_MSG_BATCH_END`: the kernel processes and validates
    /// every message, acks them, then aborts — a dry run (what `nft -c` does).
    pub fn finish_check(mut self) -> Result<FinishedBatch, EncodeError> {
        self.finish_msg();
        if let Some(len) = self.error.take() {
            return Err(EncodeError::TooLarge(len));
        }
        Ok(FinishedBatch {
            next_seq: self.next_seq,
            bytes: std::mem::take(&mut self.buf),
            batch: self,
        })
    }
}

/// A closed batch, ready to send.
#[derive(Debug, Clone)]
pub struct FinishedBatch {
    /// The whole batch, begin to end, as one `sendmsg` payload.
    pub bytes: Vec<u8>,
    /// The first sequence number after this batch's messages, for the next batch on the
    /// same socket.
    pub next_seq: u32,
    /// The bookkeeping (sequence numbers, descriptions); its buffer is empty.
    pub batch: Batch,
}

impl FinishedBatch {
    /// Number of messages the kernel acks.
    pub fn messages(&self) -> usize {
        self.batch.messages()
    }
}
