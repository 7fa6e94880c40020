//! nf_tables expressions (`NFTA_LIST_ELEM` { `NFTA_EXPR_NAME`, `NFTA_EXPR_DATA` }), each a
//! small writer onto a [`Batch`]. Attribute numbers are the kernel's
//! (`include/uapi/linux/netfilter/nf_tables.h`); registers are named by their uapi value
//! (`NFT_REG_1` = 1 for 16-byte registers, `NFT_REG32_00` = 8 for 4-byte ones).

use crate::wire::Batch;

/// The verdict register.
pub const REG_VERDICT: u32 = 0;
/// 16-byte register 1 (overlaps 4-byte registers 0..3).
pub const REG_1: u32 = 1;
/// 16-byte register 2.
pub const REG_2: u32 = 2;
/// 16-byte register 3.
pub const REG_3: u32 = 3;

/// The 4-byte register `n` (`NFT_REG32_00 + n`).
pub const fn reg32(n: u32) -> u32 {
    8 + n
}

/// `NF_DROP`.
pub const VERDICT_DROP: u32 = 0;
/// `NFT_RETURN` (-5).
pub const VERDICT_RETURN: u32 = (-5i32) as u32;
/// `NFT_GOTO` (-4).
pub const VERDICT_GOTO: u32 = (-4i32) as u32;

/// Payload bases.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum Base {
    /// `NFT_PAYLOAD_NETWORK_HEADER`: offsets count from the start of the IPv4/IPv6 header.
    Network = 1,
    /// `NFT_PAYLOAD_TRANSPORT_HEADER`: offsets count from the start of the TCP/UDP/SCTP
    /// header (ports at 0 and 2).
    Transport = 2,
}

/// Meta keys we use.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum MetaKey {
    /// `NFT_META_MARK`: the packet mark (`skb->mark`), 4 bytes in host byte order.
    Mark = 3,
    /// `NFT_META_NFPROTO`: the netfilter family of the packet (`NFPROTO_IPV4` or
    /// `NFPROTO_IPV6`), 1 byte — how an `inet` table tells IPv4 from IPv6.
    NfProto = 15,
    /// `NFT_META_L4PROTO`: the transport protocol number (6 TCP, 17 UDP, 132 SCTP), 1 byte,
    /// found after any IPv6 extension headers.
    L4Proto = 16,
}

/// Comparison operators.
#[derive(Debug, Clone, Copy)]
#[repr(u32)]
pub enum CmpOp {
    /// `NFT_CMP_EQ`: the register equals the data.
    Eq = 0,
    /// `NFT_CMP_NEQ`: the register differs from the data.
    Neq = 1,
    /// `NFT_CMP_LTE`: the register is at most the data, compared as big-endian bytes (the
    /// upper bound of an address range).
    Lte = 3,
    /// `NFT_CMP_GTE`: the register is at least the data, compared as big-endian bytes (the
    /// lower bound of an address range).
    Gte = 5,
}

fn open(b: &mut Batch, name: &str) {
    b.nest(1); // NFTA_LIST_ELEM
    b.str(1, name); // NFTA_EXPR_NAME
    b.nest(2); // NFTA_EXPR_DATA
}

fn close(b: &mut Batch) {
    b.end_nest();
    b.end_nest();
}

fn data_value(b: &mut Batch, ty: u16, data: &[u8]) {
    b.nest(ty);
    b.bytes(1, data); // NFTA_DATA_VALUE
    b.end_nest();
}

/// `meta load KEY => dreg`.
pub fn meta_load(b: &mut Batch, key: MetaKey, dreg: u32) {
    open(b, "meta");
    b.u32(2, key as u32); // NFTA_META_KEY
    b.u32(1, dreg); // NFTA_META_DREG
    close(b);
}

/// `meta set KEY with sreg`.
pub fn meta_set(b: &mut Batch, key: MetaKey, sreg: u32) {
    open(b, "meta");
    b.u32(2, key as u32);
    b.u32(3, sreg); // NFTA_META_SREG
    close(b);
}

/// `cmp OP sreg DATA`.
pub fn cmp(b: &mut Batch, op: CmpOp, sreg: u32, data: &[u8]) {
    open(b, "cmp");
    b.u32(1, sreg); // NFTA_CMP_SREG
    b.u32(2, op as u32); // NFTA_CMP_OP
    data_value(b, 3, data); // NFTA_CMP_DATA
    close(b);
}

/// `payload load LEN @ BASE + OFFSET => dreg`.
pub fn payload(b: &mut Batch, base: Base, offset: u32, len: u32, dreg: u32) {
    open(b, "payload");
    b.u32(1, dreg); // NFTA_PAYLOAD_DREG
    b.u32(2, base as u32);
    b.u32(3, offset);
    b.u32(4, len);
    close(b);
}

/// `bitwise reg = (reg & mask) ^ xor` (mask and xor of the same length).
pub fn bitwise(b: &mut Batch, reg: u32, mask: &[u8], xor: &[u8]) {
    open(b, "bitwise");
    b.u32(1, reg); // NFTA_BITWISE_SREG
    b.u32(2, reg); // NFTA_BITWISE_DREG
    b.u32(3, mask.len() as u32); // NFTA_BITWISE_LEN
    data_value(b, 4, mask);
    data_value(b, 5, xor);
    close(b);
}

/// `ct load state => dreg`.
pub fn ct_state(b: &mut Batch, dreg: u32) {
    open(b, "ct");
    b.u32(2, 0); // NFTA_CT_KEY: NFT_CT_STATE
    b.u32(1, dreg);
    close(b);
}

/// `fib daddr type => dreg`.
pub fn fib_daddr_type(b: &mut Batch, dreg: u32) {
    open(b, "fib");
    b.u32(3, 1 << 1); // NFTA_FIB_FLAGS: NFTA_FIB_F_DADDR
    b.u32(2, 3); // NFTA_FIB_RESULT: NFT_FIB_RESULT_ADDRTYPE
    b.u32(1, dreg);
    close(b);
}

/// `counter` (starting at 0 packets, 0 bytes, as nft sends it).
pub fn counter(b: &mut Batch) {
    open(b, "counter");
    b.bytes(1, &0u64.to_be_bytes()); // NFTA_COUNTER_BYTES
    b.bytes(2, &0u64.to_be_bytes()); // NFTA_COUNTER_PACKETS
    close(b);
}

/// A set reference for [`lookup`]: its name in the kernel and its id in this batch (0
/// when it was not created in this batch).
#[derive(Debug, Clone, Copy)]
pub struct SetRef<'a> {
    /// The set's name in our table (`NFTA_LOOKUP_SET`).
    pub name: &'a str,
    /// The `NFTA_SET_ID` the set was given when this batch created it, sent as
    /// `NFTA_LOOKUP_SET_ID` so the kernel finds a set created earlier in the same, not yet
    /// committed batch; 0 when the set already exists and is found by name.
    pub id: u32,
}

/// `lookup sreg set S [dreg D] [invert]`.
pub fn lookup(b: &mut Batch, set: SetRef<'_>, sreg: u32, dreg: Option<u32>, invert: bool) {
    open(b, "lookup");
    b.u32(2, sreg); // NFTA_LOOKUP_SREG
    if let Some(d) = dreg {
        b.u32(3, d); // NFTA_LOOKUP_DREG
    }
    b.str(1, set.name); // NFTA_LOOKUP_SET
    if set.id != 0 {
        b.u32(4, set.id); // NFTA_LOOKUP_SET_ID
    }
    if invert {
        b.u32(5, 1); // NFTA_LOOKUP_FLAGS: NFT_LOOKUP_F_INV
    }
    close(b);
}

/// `nat dnat FAMILY addr_min REG proto_min REG`.
pub fn dnat(b: &mut Batch, nfproto: u8, addr_reg: u32, proto_reg: u32) {
    nat_dnat(b, nfproto, addr_reg, proto_reg, None);
}

/// `dnat ip|ip6 to <addr_reg>:<proto_reg>` with both loaded by [`immediate`]: as nft sends
/// a literal address and port, with `NF_NAT_RANGE_PROTO_SPECIFIED` in `NFTA_NAT_FLAGS`.
pub fn dnat_literal(b: &mut Batch, nfproto: u8, addr_reg: u32, proto_reg: u32) {
    nat_dnat(
        b,
        nfproto,
        addr_reg,
        proto_reg,
        Some(NAT_RANGE_PROTO_SPECIFIED),
    );
}

fn nat_dnat(b: &mut Batch, nfproto: u8, addr_reg: u32, proto_reg: u32, flags: Option<u32>) {
    open(b, "nat");
    b.u32(1, 1); // NFTA_NAT_TYPE: NFT_NAT_DNAT
    b.u32(2, u32::from(nfproto)); // NFTA_NAT_FAMILY
    b.u32(3, addr_reg); // NFTA_NAT_REG_ADDR_MIN
    b.u32(5, proto_reg); // NFTA_NAT_REG_PROTO_MIN
    if let Some(flags) = flags {
        b.u32(7, flags); // NFTA_NAT_FLAGS
    }
    close(b);
}

/// `NF_NAT_RANGE_PROTO_SPECIFIED`.
const NAT_RANGE_PROTO_SPECIFIED: u32 = 0x2;

/// `immediate dreg = data` (a value, not a verdict).
pub fn immediate(b: &mut Batch, dreg: u32, data: &[u8]) {
    open(b, "immediate");
    b.u32(1, dreg); // NFTA_IMMEDIATE_DREG
    b.nest(2); // NFTA_IMMEDIATE_DATA
    b.bytes(1, data); // NFTA_DATA_VALUE
    b.end_nest();
    close(b);
}

/// `masq`.
pub fn masq(b: &mut Batch) {
    open(b, "masq");
    close(b);
}

/// `numgen dreg = random mod N`.
pub fn numgen_random(b: &mut Batch, dreg: u32, modulus: u32) {
    open(b, "numgen");
    b.u32(1, dreg); // NFTA_NG_DREG
    b.u32(2, modulus); // NFTA_NG_MODULUS
    b.u32(3, 1); // NFTA_NG_TYPE: NFT_NG_RANDOM
    b.u32(4, 0); // NFTA_NG_OFFSET
    close(b);
}

/// `hash dreg = jhash(sreg, len, seed) % mod`.
pub fn jhash(b: &mut Batch, sreg: u32, dreg: u32, len: u32, modulus: u32, seed: u32) {
    open(b, "hash");
    b.u32(1, sreg); // NFTA_HASH_SREG
    b.u32(2, dreg); // NFTA_HASH_DREG
    b.u32(3, len); // NFTA_HASH_LEN
    b.u32(4, modulus); // NFTA_HASH_MODULUS
    b.u32(5, seed); // NFTA_HASH_SEED
    b.u32(6, 0); // NFTA_HASH_OFFSET
    b.u32(7, 0); // NFTA_HASH_TYPE: NFT_HASH_JENKINS
    close(b);
}

/// `immediate reg 0 VERDICT`.
pub fn verdict(b: &mut Batch, code: u32) {
    open(b, "immediate");
    b.u32(1, REG_VERDICT); // NFTA_IMMEDIATE_DREG
    b.nest(2); // NFTA_IMMEDIATE_DATA
    b.nest(2); // NFTA_DATA_VERDICT
    b.u32(1, code); // NFTA_VERDICT_CODE
    b.end_nest();
    b.end_nest();
    close(b);
}
