//! Our table as nf_tables messages: the full-sync batch, the incremental batch and the
//! cleanup batch, mirroring [`dualstack_ruleset::nft::render_full`],
//! [`render_changes_with`](dualstack_ruleset::nft::render_changes_with) and
//! [`render_delete`](dualstack_ruleset::nft::render_delete) statement for statement, encoded
//! the way `nft` encodes that text (`nft --debug=netlink` shows it), so the kernel holds
//! the same objects and `nft list` prints the same table. Everything is validated before a
//! byte is written.
//!
//! The base chains' rules are spelled out here a second time (the text renderer keeps them
//! as nft text); the kernel equivalence tests are what keep the two identical.

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

use dualstack_addr::Family;
use dualstack_ruleset::nft::{
    self as render, Body, CHAIN_FILTER_PREROUTING, CHAIN_NAT_OUTPUT, CHAIN_NAT_POSTROUTING,
    CHAIN_NAT_PREROUTING, CHAIN_POOL_GUARD, Chain, ChainRole, Element, FrontendPlan, InPlace, Key,
    MASQUERADE_MARK, Picker, Present, Step, Value,
};
use dualstack_ruleset::{
    AddressRange, Backend, Frontend, InvalidRuleset, Protocol, Ruleset, validate,
    validate_table_name,
};
use ipnet::IpNet;

use crate::EncodeError;
use crate::expr::{self, Base, CmpOp, MetaKey, REG_1, REG_2, REG_3, REG_VERDICT, SetRef, reg32};
use crate::types::{self, SetType};
use crate::wire::{Batch, F_APPEND, F_CREATE, FinishedBatch, MsgType};

/// The comment on our table (the same words as the text renderer's).
pub const TABLE_COMMENT: &str = render::TABLE_COMMENT;

/// Element lists are split into messages of about this size (a netlink attribute holds at
/// most 64 KiB).
const ELEMENTS_PER_MESSAGE_BYTES: usize = 48 * 1024;

const NFPROTO_IPV4: u8 = 2;
const NFPROTO_IPV6: u8 = 10;
/// `RTN_LOCAL`.
const RTN_LOCAL: u32 = 2;
/// `NF_CT_STATE_BIT(IP_CT_NEW)`.
const CT_STATE_NEW: u32 = 8;

const SET_ANONYMOUS: u32 = 0x1;
const SET_CONSTANT: u32 = 0x2;
const SET_INTERVAL: u32 = 0x4;
const SET_MAP: u32 = 0x8;
/// `NFT_SET_ELEM_INTERVAL_END`.
const ELEM_INTERVAL_END: u32 = 0x1;

fn nfproto(family: Family) -> u8 {
    match family {
        Family::V4 => NFPROTO_IPV4,
        Family::V6 => NFPROTO_IPV6,
    }
}

fn l4proto(p: Protocol) -> u8 {
    match p {
        Protocol::Tcp => 6,
        Protocol::Udp => 17,
        Protocol::Sctp => 132,
    }
}

/// One named map of our table, as declared.
struct Store {
    name: &'static str,
    key: SetType,
    value: SetType,
    id: u32,
}

fn stores() -> Result<Vec<Store>, EncodeError> {
    render::stores()
        .enumerate()
        .map(|(i, (name, key, value))| {
            Ok(Store {
                name,
                key: types::parse(key)?,
                value: types::parse(value)?,
                id: i as u32 + 1,
            })
        })
        .collect()
}

/// Builds one batch for one table.
struct Encoder<'a> {
    b: Batch,
    table: &'a str,
    /// Set ids of the named maps declared in this batch (empty in incremental batches).
    ids: BTreeMap<&'static str, u32>,
    next_id: u32,
}

/// The full-sync batch for a kernel without our table (or whose contents are unknown): our
/// table created if absent, deleted, and declared anew with every map, chain, rule and
/// element — one transaction, like [`render::render_full`]. Over a table in use, send
/// [`full_in_place`].
pub fn full(ruleset: &Ruleset, first_seq: u32, genid: u32) -> Result<FinishedBatch, EncodeError> {
    full_then(ruleset, None, first_seq, genid, |_| {})
}

/// The full-sync batch over our table as the kernel has it, like
/// [`render::render_full_in_place`]: chains and maps flushed and refilled, what the ruleset
/// no longer has deleted, the table and its base chains kept (see [`render::InPlace`]).
pub fn full_in_place(
    ruleset: &Ruleset,
    present: &Present,
    first_seq: u32,
    genid: u32,
) -> Result<FinishedBatch, EncodeError> {
    full_then(ruleset, Some(present), first_seq, genid, |_| {})
}

/// [`full`] as a dry run: the kernel validates every message and aborts (nothing changes).
pub fn full_check(
    ruleset: &Ruleset,
    first_seq: u32,
    genid: u32,
) -> Result<FinishedBatch, EncodeError> {
    full_batch(ruleset, None, first_seq, genid, |_| {}, true)
}

/// [`full`] (`present: None`) or [`full_in_place`], with `extra` messages written after
/// the table's and before the batch ends (tests use it to inject a failure after the old
/// table is already emptied in the batch).
pub fn full_then(
    ruleset: &Ruleset,
    present: Option<&Present>,
    first_seq: u32,
    genid: u32,
    extra: impl FnOnce(&mut Batch),
) -> Result<FinishedBatch, EncodeError> {
    full_batch(ruleset, present, first_seq, genid, extra, false)
}

fn full_batch(
    ruleset: &Ruleset,
    present: Option<&Present>,
    first_seq: u32,
    genid: u32,
    extra: impl FnOnce(&mut Batch),
    dry_run: bool,
) -> Result<FinishedBatch, EncodeError> {
    validate(ruleset)?;
    let plans: Vec<FrontendPlan> = render::plan_all(&ruleset.frontends);
    let stores = stores()?;
    let mut e = Encoder::new(&ruleset.table, first_seq, genid);
    // About 60 bytes per element and a few hundred per chain: one allocation.
    let elements: usize = plans.iter().map(|p| p.elements.len()).sum();
    let chains: usize = plans.iter().map(|p| p.chains.len()).sum();
    e.b.reserve(64 * elements + 256 * chains + 16 * 1024);
    let steps = InPlace::plan(ruleset, &plans, present.unwrap_or(&Present::default()));
    e.table_msg(None);
    if present.is_none() {
        e.del_table();
    }
    for chain in &steps.flush_chains {
        e.flush_chain(chain);
    }
    for map in &steps.flush_maps {
        e.flush_set(map);
    }
    for chain in &steps.delete_chains {
        e.del_chain(chain);
    }
    for map in &steps.delete_maps {
        e.del_set(map);
    }
    e.table_msg(Some(TABLE_COMMENT));

    for (name, ty, hook, prio) in BASE_CHAINS {
        e.base_chain(name, ty, hook, prio);
    }
    if !ruleset.guard.is_empty() {
        // `type filter hook prerouting priority dstnat + 10`.
        e.base_chain(CHAIN_POOL_GUARD, "filter", 0, -90);
    }
    let mut allow: BTreeMap<&str, &Chain> = BTreeMap::new();
    for chain in plans.iter().flat_map(|p| &p.chains) {
        match chain.role {
            ChainRole::Frontend => e.chain(&chain.name, chain.comment.as_deref()),
            ChainRole::Allow => {
                allow.entry(&chain.name).or_insert(chain);
            }
        }
    }
    for name in allow.keys() {
        e.chain(name, None);
    }

    // Elements by map, in the order of `stores` (a handful: found by a linear scan).
    let mut per_store: Vec<Vec<&Element>> = vec![Vec::new(); stores.len()];
    for el in plans.iter().flat_map(|p| &p.elements) {
        match stores.iter().position(|s| s.name == el.map) {
            Some(i) => per_store[i].push(el),
            None => return Err(EncodeError::UnknownMap(el.map.to_string())),
        }
    }
    e.next_id = stores.len() as u32 + 1;
    for (store, elements) in stores.iter().zip(&per_store) {
        let count = elements.len();
        let capacity = steps
            .capacity
            .get(store.name)
            .copied()
            .unwrap_or_else(|| render::map_capacity(count));
        e.set(store, capacity);
        e.ids.insert(store.name, store.id);
    }

    // Rules before elements: a rule that binds a verdict map makes the kernel check every
    // element the map holds for the next generation (`nf_tables_bind_set`), so the rules
    // are bound while the maps are still empty (declared or flushed above) and each
    // element is checked once, when it is added.
    e.base_rules();
    e.guard_rules(&ruleset.guard);
    for chain in plans.iter().flat_map(|p| &p.chains) {
        if chain.role == ChainRole::Frontend {
            e.chain_rules(chain);
        }
    }
    for chain in allow.values() {
        e.chain_rules(chain);
    }

    // In the frontends' order: a hash map has no order, and the batch is the same for
    // the same ruleset.
    for (store, elements) in stores.iter().zip(&per_store) {
        if !elements.is_empty() {
            e.elements(MsgType::NewSetElem, store.name, store.id, elements, true)?;
        }
    }
    extra(&mut e.b);
    if dry_run {
        e.b.finish_check()
    } else {
        e.b.finish()
    }
}

/// The incremental batch, like [`render::render_changes_with`]: the same
/// [`render::Changes`] steps (elements and `fe*` chains of `remove` deleted, then `add`'s
/// chains created, flushed and refilled, except shared `allow*` chains listed in `present`,
/// and their elements added), with consecutive element steps on one map sent as one message.
pub fn changes(
    table: &str,
    remove: &[Frontend],
    add: &[Frontend],
    present: &BTreeSet<String>,
    first_seq: u32,
    genid: u32,
) -> Result<FinishedBatch, EncodeError> {
    let changes = render::Changes::new(table, remove, add, present)?;
    let mut e = Encoder::new(table, first_seq, genid);
    // A run of element steps with the same verb and map, written as one message.
    let mut run: Option<(MsgType, &'static str, Vec<&Element>)> = None;
    for step in changes.steps() {
        let element = match step {
            Step::DeleteElement(el) => Some((MsgType::DelSetElem, el)),
            Step::AddElement(el) => Some((MsgType::NewSetElem, el)),
            _ => None,
        };
        if let Some((ty, el)) = element {
            match &mut run {
                Some((t, map, els)) if *t == ty && *map == el.map => els.push(el),
                _ => {
                    if let Some((t, map, els)) = run.replace((ty, el.map, vec![el])) {
                        e.elements(t, map, 0, &els, t == MsgType::NewSetElem)?;
                    }
                }
            }
            continue;
        }
        if let Some((t, map, els)) = run.take() {
            e.elements(t, map, 0, &els, t == MsgType::NewSetElem)?;
        }
        match step {
            Step::DeleteChain(name) => e.del_chain(name),
            Step::AddChain(chain) => e.chain(&chain.name, chain.comment.as_deref()),
            Step::FlushChain(name) => e.flush_chain(name),
            Step::AddRules(chain) => e.chain_rules(chain),
            Step::DeleteElement(_) | Step::AddElement(_) => {}
        }
    }
    if let Some((t, map, els)) = run.take() {
        e.elements(t, map, 0, &els, t == MsgType::NewSetElem)?;
    }
    e.b.finish()
}

/// Removes our table if it exists, touching nothing else (create-if-absent, then delete).
pub fn delete(table: &str, first_seq: u32, genid: u32) -> Result<FinishedBatch, EncodeError> {
    validate_table_name(table).map_err(|e| InvalidRuleset(vec![e]))?;
    let mut e = Encoder::new(table, first_seq, genid);
    e.table_msg(None);
    e.del_table();
    e.b.finish()
}

/// Base chains: name, type, hook number, priority.
const BASE_CHAINS: [(&str, &str, u32, i32); 4] = [
    (CHAIN_FILTER_PREROUTING, "filter", 0, -120),
    (CHAIN_NAT_PREROUTING, "nat", 0, -110),
    (CHAIN_NAT_OUTPUT, "nat", 3, -110),
    (CHAIN_NAT_POSTROUTING, "nat", 4, 100),
];

/// What restricts the `AnyLocal` NAT rules to one family: `meta nfproto` on prerouting,
/// a non-loopback destination on output.
#[derive(Clone, Copy)]
enum Only {
    NfProto,
    NotLoopback,
}

fn comment_udata(comment: &str) -> Vec<u8> {
    // NFTNL_UDATA_{TABLE,CHAIN}_COMMENT (type 0), length including the NUL.
    let mut v = Vec::with_capacity(comment.len() + 3);
    v.push(0);
    v.push((comment.len() + 1).min(255) as u8);
    v.extend_from_slice(comment.as_bytes());
    v.push(0);
    v
}

fn addr_octets(addr: IpAddr) -> Vec<u8> {
    match addr {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

/// A set key or value (at most 16 address bytes and three 4-byte fields), built on the
/// stack: tens of thousands are written per full sync.
struct Field {
    buf: [u8; 32],
    len: usize,
}

impl Field {
    fn new() -> Field {
        Field {
            buf: [0; 32],
            len: 0,
        }
    }

    fn push(&mut self, bytes: &[u8]) {
        self.buf[self.len..self.len + bytes.len()].copy_from_slice(bytes);
        self.len += bytes.len();
    }

    fn addr(&mut self, addr: IpAddr) {
        match addr {
            IpAddr::V4(a) => self.push(&a.octets()),
            IpAddr::V6(a) => self.push(&a.octets()),
        }
    }

    /// A 1- or 2-byte field padded to a register's 4 bytes (the buffer is zeroed).
    fn pad4(&mut self, field: &[u8]) {
        self.push(field);
        self.len += (4 - field.len() % 4) % 4;
    }

    fn as_slice(&self) -> &[u8] {
        &self.buf[..self.len]
    }
}

fn key_bytes(el: &Element) -> Field {
    let mut out = Field::new();
    match (&el.key, &el.value) {
        (Key::Local(_, proto, port), Value::Dnat(_)) => {
            out.pad4(&[l4proto(*proto)]);
            out.pad4(&port.to_be_bytes());
        }
        (Key::Address(addr, proto, port), _) => {
            out.addr(*addr);
            out.pad4(&[l4proto(*proto)]);
            out.pad4(&port.to_be_bytes());
        }
        (Key::Local(family, proto, port), _) => {
            out.pad4(&[nfproto(*family)]);
            out.pad4(&[l4proto(*proto)]);
            out.pad4(&port.to_be_bytes());
        }
    }
    out
}

fn backend_bytes(b: &Backend) -> Field {
    let mut out = Field::new();
    out.addr(b.addr);
    out.pad4(&b.port.to_be_bytes());
    out
}

/// The register the port of a DNAT `addr . port` value lands in.
fn proto_reg(family: Family) -> u32 {
    match family {
        Family::V4 => reg32(1),
        Family::V6 => REG_2,
    }
}

impl<'a> Encoder<'a> {
    fn new(table: &'a str, first_seq: u32, genid: u32) -> Encoder<'a> {
        Encoder {
            b: Batch::new(first_seq, genid),
            table,
            ids: BTreeMap::new(),
            next_id: 1,
        }
    }

    fn table_msg(&mut self, comment: Option<&str>) {
        let t = self.table;
        self.b.begin(MsgType::NewTable, F_CREATE, || {
            format!("add table inet {t}")
        });
        self.b.str(1, t); // NFTA_TABLE_NAME
        self.b.u32(2, 0); // NFTA_TABLE_FLAGS
        if let Some(c) = comment {
            self.b.bytes(6, &comment_udata(c)); // NFTA_TABLE_USERDATA
        }
        self.b.finish_msg();
    }

    fn del_table(&mut self) {
        let t = self.table;
        self.b
            .begin(MsgType::DelTable, 0, || format!("delete table inet {t}"));
        self.b.str(1, t);
        self.b.finish_msg();
    }

    fn base_chain(&mut self, name: &str, ty: &str, hook: u32, prio: i32) {
        self.b
            .begin(MsgType::NewChain, F_CREATE, || format!("add chain {name}"));
        self.b.str(1, self.table); // NFTA_CHAIN_TABLE
        self.b.str(3, name); // NFTA_CHAIN_NAME
        self.b.str(7, ty); // NFTA_CHAIN_TYPE
        self.b.u32(5, 1); // NFTA_CHAIN_POLICY: NF_ACCEPT
        self.b.nest(4); // NFTA_CHAIN_HOOK
        self.b.u32(1, hook); // NFTA_HOOK_HOOKNUM
        self.b.u32(2, prio as u32); // NFTA_HOOK_PRIORITY
        self.b.end_nest();
        self.b.finish_msg();
    }

    fn chain(&mut self, name: &str, comment: Option<&str>) {
        self.b
            .begin(MsgType::NewChain, F_CREATE, || format!("add chain {name}"));
        self.b.str(1, self.table);
        self.b.str(3, name);
        if let Some(c) = comment {
            self.b.bytes(12, &comment_udata(c)); // NFTA_CHAIN_USERDATA
        }
        self.b.finish_msg();
    }

    fn del_chain(&mut self, name: &str) {
        self.b
            .begin(MsgType::DelChain, 0, || format!("delete chain {name}"));
        self.b.str(1, self.table);
        self.b.str(3, name);
        self.b.finish_msg();
    }

    /// `flush chain`: a rule delete naming only the chain removes all its rules.
    fn flush_chain(&mut self, name: &str) {
        self.b
            .begin(MsgType::DelRule, 0, || format!("flush chain {name}"));
        self.b.str(1, self.table); // NFTA_RULE_TABLE
        self.b.str(2, name); // NFTA_RULE_CHAIN
        self.b.finish_msg();
    }

    /// `flush map`: an element delete naming only the map removes all its elements.
    fn flush_set(&mut self, name: &str) {
        self.b
            .begin(MsgType::DelSetElem, 0, || format!("flush map {name}"));
        self.b.str(1, self.table); // NFTA_SET_ELEM_LIST_TABLE
        self.b.str(2, name); // NFTA_SET_ELEM_LIST_SET
        self.b.finish_msg();
    }

    fn del_set(&mut self, name: &str) {
        self.b
            .begin(MsgType::DelSet, 0, || format!("delete map {name}"));
        self.b.str(1, self.table); // NFTA_SET_TABLE
        self.b.str(2, name); // NFTA_SET_NAME
        self.b.finish_msg();
    }

    fn set(&mut self, store: &Store, capacity: u32) {
        let name = store.name;
        self.b
            .begin(MsgType::NewSet, F_CREATE, || format!("add map {name}"));
        self.b.str(1, self.table); // NFTA_SET_TABLE
        self.b.str(2, name); // NFTA_SET_NAME
        self.b.u32(3, SET_MAP); // NFTA_SET_FLAGS
        self.b.u32(4, store.key.id); // NFTA_SET_KEY_TYPE
        self.b.u32(5, store.key.len); // NFTA_SET_KEY_LEN
        self.b.u32(6, store.value.id); // NFTA_SET_DATA_TYPE
        self.b.u32(7, store.value.len); // NFTA_SET_DATA_LEN
        self.b.u32(10, store.id); // NFTA_SET_ID
        self.b.nest(9); // NFTA_SET_DESC
        self.b.u32(1, capacity); // NFTA_SET_DESC_SIZE
        self.b.end_nest();
        let udata = if store.value.id == types::TYPE_VERDICT {
            types::UDATA_VMAP
        } else {
            types::UDATA_MAP
        };
        self.b.bytes(13, udata); // NFTA_SET_USERDATA
        self.b.finish_msg();
    }

    /// An anonymous constant set or map, declared in this batch; returns its id.
    fn anon_set(
        &mut self,
        name: &'static str,
        flags: u32,
        key: SetType,
        data: Option<SetType>,
        size: usize,
        udata: &[u8],
    ) -> u32 {
        let id = self.next_id;
        self.next_id += 1;
        self.b.begin(MsgType::NewSet, F_CREATE, || {
            format!("anonymous set {name}")
        });
        self.b.str(1, self.table);
        self.b.str(2, name);
        self.b.u32(3, flags);
        self.b.u32(4, key.id);
        self.b.u32(5, key.len);
        if let Some(d) = data {
            self.b.u32(6, d.id);
            self.b.u32(7, d.len);
        }
        self.b.u32(10, id);
        self.b.nest(9); // NFTA_SET_DESC
        self.b.u32(1, size as u32); // NFTA_SET_DESC_SIZE
        self.b.end_nest();
        self.b.bytes(13, udata);
        self.b.finish_msg();
        id
    }

    fn elem_list_header(&mut self, ty: MsgType, set: &str, id: u32) {
        let verb = if ty == MsgType::DelSetElem {
            "delete"
        } else {
            "add"
        };
        self.b
            .begin(ty, F_CREATE * u16::from(ty == MsgType::NewSetElem), || {
                format!("{verb} elements of {set}")
            });
        self.b.str(1, self.table); // NFTA_SET_ELEM_LIST_TABLE
        self.b.str(2, set); // NFTA_SET_ELEM_LIST_SET
        if id != 0 {
            self.b.u32(4, id); // NFTA_SET_ELEM_LIST_SET_ID
        }
        self.b.nest(3); // NFTA_SET_ELEM_LIST_ELEMENTS
    }

    fn elem_list_end(&mut self) {
        self.b.end_nest();
        self.b.finish_msg();
    }

    /// Elements of one of our maps (keys only when `with_values` is false: a delete).
    fn elements(
        &mut self,
        ty: MsgType,
        set: &str,
        id: u32,
        elements: &[&Element],
        with_values: bool,
    ) -> Result<(), EncodeError> {
        if elements.is_empty() {
            return Ok(());
        }
        let id = if id == 0 {
            self.ids.get(set).copied().unwrap_or(0)
        } else {
            id
        };
        self.elem_list_header(ty, set, id);
        for el in elements {
            if self.b.nest_len() > ELEMENTS_PER_MESSAGE_BYTES {
                self.elem_list_end();
                self.elem_list_header(ty, set, id);
            }
            self.b.nest(1); // NFTA_LIST_ELEM
            self.b.nest(1); // NFTA_SET_ELEM_KEY
            self.b.bytes(1, key_bytes(el).as_slice());
            self.b.end_nest();
            if with_values {
                self.b.nest(2); // NFTA_SET_ELEM_DATA
                match &el.value {
                    Value::Dnat(backend) => self.b.bytes(1, backend_bytes(backend).as_slice()),
                    Value::Drop => self.verdict_data(expr::VERDICT_DROP, None),
                    Value::Goto(chain) => self.verdict_data(expr::VERDICT_GOTO, Some(chain)),
                }
                self.b.end_nest();
            }
            self.b.end_nest();
        }
        self.elem_list_end();
        Ok(())
    }

    fn verdict_data(&mut self, code: u32, chain: Option<&str>) {
        self.b.nest(2); // NFTA_DATA_VERDICT
        self.b.u32(1, code); // NFTA_VERDICT_CODE
        if let Some(c) = chain {
            self.b.str(2, c); // NFTA_VERDICT_CHAIN
        }
        self.b.end_nest();
    }

    fn map_ref(&self, name: &'static str) -> SetRef<'static> {
        SetRef {
            name,
            id: self.ids.get(name).copied().unwrap_or(0),
        }
    }

    fn rule(&mut self, chain: &str, body: impl FnOnce(&mut Self)) {
        self.b.begin(MsgType::NewRule, F_CREATE | F_APPEND, || {
            format!("add rule to chain {chain}")
        });
        self.b.str(1, self.table); // NFTA_RULE_TABLE
        self.b.str(2, chain); // NFTA_RULE_CHAIN
        self.b.nest(4); // NFTA_RULE_EXPRESSIONS
        body(self);
        self.b.end_nest();
        self.b.finish_msg();
    }

    // ---- pieces of rules ----

    fn nfproto_is(&mut self, family: Family) {
        expr::meta_load(&mut self.b, MetaKey::NfProto, REG_1);
        expr::cmp(&mut self.b, CmpOp::Eq, REG_1, &[nfproto(family)]);
    }

    /// `ip|ip6 daddr . meta l4proto . th dport` (with nft's implicit `meta nfproto`).
    fn key_addr(&mut self, family: Family) {
        self.nfproto_is(family);
        let b = &mut self.b;
        match family {
            Family::V4 => {
                expr::payload(b, Base::Network, 16, 4, REG_1);
                expr::meta_load(b, MetaKey::L4Proto, reg32(1));
                expr::payload(b, Base::Transport, 2, 2, reg32(2));
            }
            Family::V6 => {
                expr::payload(b, Base::Network, 24, 16, REG_1);
                expr::meta_load(b, MetaKey::L4Proto, REG_2);
                expr::payload(b, Base::Transport, 2, 2, reg32(5));
            }
        }
    }

    /// `meta nfproto . meta l4proto . th dport`.
    fn key_local(&mut self) {
        let b = &mut self.b;
        expr::meta_load(b, MetaKey::NfProto, REG_1);
        expr::meta_load(b, MetaKey::L4Proto, reg32(1));
        expr::payload(b, Base::Transport, 2, 2, reg32(2));
    }

    /// `meta l4proto . th dport`.
    fn key_proto_port(&mut self) {
        expr::meta_load(&mut self.b, MetaKey::L4Proto, REG_1);
        expr::payload(&mut self.b, Base::Transport, 2, 2, reg32(1));
    }

    /// `meta mark set meta mark | 0x4000`.
    fn mark_set(&mut self) {
        let b = &mut self.b;
        expr::meta_load(b, MetaKey::Mark, REG_1);
        expr::bitwise(
            b,
            REG_1,
            &(!MASQUERADE_MARK).to_ne_bytes(),
            &MASQUERADE_MARK.to_ne_bytes(),
        );
        expr::meta_set(b, MetaKey::Mark, REG_1);
    }

    /// `fib daddr type local`.
    fn fib_local(&mut self) {
        expr::fib_daddr_type(&mut self.b, REG_1);
        expr::cmp(&mut self.b, CmpOp::Eq, REG_1, &RTN_LOCAL.to_ne_bytes());
    }

    /// `ct state new`.
    fn ct_new(&mut self) {
        let b = &mut self.b;
        expr::ct_state(b, REG_1);
        expr::bitwise(b, REG_1, &CT_STATE_NEW.to_ne_bytes(), &0u32.to_ne_bytes());
        expr::cmp(b, CmpOp::Neq, REG_1, &0u32.to_ne_bytes());
    }

    fn only(&mut self, only: Only, family: Family) {
        self.nfproto_is(family);
        if let Only::NotLoopback = only {
            let b = &mut self.b;
            match family {
                // ip daddr != 127.0.0.0/8
                Family::V4 => {
                    expr::payload(b, Base::Network, 16, 1, REG_1);
                    expr::cmp(b, CmpOp::Neq, REG_1, &[127]);
                }
                // ip6 daddr != ::1
                Family::V6 => {
                    expr::payload(b, Base::Network, 24, 16, REG_1);
                    expr::cmp(
                        b,
                        CmpOp::Neq,
                        REG_1,
                        &std::net::Ipv6Addr::LOCALHOST.octets(),
                    );
                }
            }
        }
    }

    fn dnat(&mut self, family: Family) {
        expr::dnat(&mut self.b, nfproto(family), REG_1, proto_reg(family));
    }

    // ---- rules ----

    fn base_rules(&mut self) {
        for (family, map) in [(Family::V4, "fw-addr4"), (Family::V6, "fw-addr6")] {
            self.rule(CHAIN_FILTER_PREROUTING, |e| {
                e.ct_new();
                e.key_addr(family);
                let m = e.map_ref(map);
                expr::lookup(&mut e.b, m, REG_1, Some(REG_VERDICT), false);
            });
        }
        self.rule(CHAIN_FILTER_PREROUTING, |e| {
            e.ct_new();
            e.fib_local();
            e.key_local();
            let m = e.map_ref("fw-local");
            expr::lookup(&mut e.b, m, REG_1, Some(REG_VERDICT), false);
        });
        self.nat_rules(CHAIN_NAT_PREROUTING, Only::NfProto);
        self.nat_rules(CHAIN_NAT_OUTPUT, Only::NotLoopback);
        self.rule(CHAIN_NAT_POSTROUTING, |e| {
            let b = &mut e.b;
            expr::meta_load(b, MetaKey::Mark, REG_1);
            expr::bitwise(
                b,
                REG_1,
                &MASQUERADE_MARK.to_ne_bytes(),
                &0u32.to_ne_bytes(),
            );
            expr::cmp(b, CmpOp::Eq, REG_1, &MASQUERADE_MARK.to_ne_bytes());
            expr::masq(b);
        });
    }

    fn nat_rules(&mut self, chain: &str, only: Only) {
        let addr_maps = [
            (Family::V4, "dnat-masq-addr4", "dnat-addr4"),
            (Family::V6, "dnat-masq-addr6", "dnat-addr6"),
        ];
        for (family, masq_map, map) in addr_maps {
            self.rule(chain, |e| {
                e.key_addr(family);
                let m = e.map_ref(masq_map);
                expr::lookup(&mut e.b, m, REG_1, None, false);
                e.mark_set();
            });
            for m in [masq_map, map] {
                self.rule(chain, |e| {
                    e.key_addr(family);
                    let m = e.map_ref(m);
                    expr::lookup(&mut e.b, m, REG_1, Some(REG_1), false);
                    e.dnat(family);
                });
            }
        }
        for (family, map) in [(Family::V4, "nat-addr4"), (Family::V6, "nat-addr6")] {
            self.rule(chain, |e| {
                e.key_addr(family);
                let m = e.map_ref(map);
                expr::lookup(&mut e.b, m, REG_1, Some(REG_VERDICT), false);
            });
        }
        let local_maps = [
            (Family::V4, "dnat-masq-local4", "dnat-local4"),
            (Family::V6, "dnat-masq-local6", "dnat-local6"),
        ];
        for (family, masq_map, map) in local_maps {
            self.rule(chain, |e| {
                e.only(only, family);
                e.key_proto_port();
                let m = e.map_ref(masq_map);
                expr::lookup(&mut e.b, m, REG_1, None, false);
                e.fib_local();
                e.mark_set();
            });
            for m in [masq_map, map] {
                self.rule(chain, |e| {
                    e.only(only, family);
                    e.key_proto_port();
                    let m = e.map_ref(m);
                    expr::lookup(&mut e.b, m, REG_1, None, false);
                    e.fib_local();
                    e.key_proto_port();
                    expr::lookup(&mut e.b, m, REG_1, Some(REG_1), false);
                    e.dnat(family);
                });
            }
        }
        for family in [Family::V4, Family::V6] {
            self.rule(chain, |e| {
                e.only(only, family);
                e.key_local();
                let m = e.map_ref("nat-local");
                expr::lookup(&mut e.b, m, REG_1, None, false);
                e.fib_local();
                e.key_local();
                expr::lookup(&mut e.b, m, REG_1, Some(REG_VERDICT), false);
            });
        }
    }

    /// The rules of a frontend chain (its anonymous map declared just before the rule that
    /// uses it, as nft does) or of an allow chain.
    fn chain_rules(&mut self, chain: &Chain) {
        match &chain.body {
            Body::Pick {
                family,
                protocol,
                masquerade,
                picker,
                backends,
            } => {
                if *masquerade {
                    self.rule(&chain.name, |e| e.mark_set());
                }
                let data = types::SetType {
                    id: (match family {
                        Family::V4 => types::TYPE_IPV4,
                        Family::V6 => types::TYPE_IPV6,
                    } << 6)
                        | 13,
                    len: match family {
                        Family::V4 => 8,
                        Family::V6 => 20,
                    },
                };
                let key = SetType {
                    id: types::TYPE_INTEGER,
                    len: 4,
                };
                let id = self.anon_set(
                    "__map%d",
                    SET_ANONYMOUS | SET_CONSTANT | SET_MAP,
                    key,
                    Some(data),
                    backends.len(),
                    types::UDATA_ANON_MAP,
                );
                self.elem_list_header(MsgType::NewSetElem, "__map%d", id);
                for (i, backend) in backends.iter().enumerate() {
                    self.b.nest(1);
                    self.b.nest(1);
                    self.b.bytes(1, &(i as u32).to_ne_bytes());
                    self.b.end_nest();
                    self.b.nest(2);
                    self.b.bytes(1, backend_bytes(backend).as_slice());
                    self.b.end_nest();
                    self.b.end_nest();
                }
                self.elem_list_end();
                let n = backends.len() as u32;
                self.rule(&chain.name, |e| {
                    expr::meta_load(&mut e.b, MetaKey::L4Proto, REG_1);
                    expr::cmp(&mut e.b, CmpOp::Eq, REG_1, &[l4proto(*protocol)]);
                    match picker {
                        Picker::Random => expr::numgen_random(&mut e.b, REG_1, n),
                        Picker::Hash { seed } => {
                            e.nfproto_is(*family);
                            let b = &mut e.b;
                            let len = match family {
                                Family::V4 => {
                                    expr::payload(b, Base::Network, 12, 4, REG_2);
                                    expr::payload(b, Base::Transport, 0, 2, reg32(5));
                                    8
                                }
                                Family::V6 => {
                                    expr::payload(b, Base::Network, 8, 16, REG_2);
                                    expr::payload(b, Base::Transport, 0, 2, REG_3);
                                    20
                                }
                            };
                            expr::jhash(b, REG_2, REG_1, len, n, *seed);
                        }
                    }
                    let set = SetRef {
                        name: "__map%d",
                        id,
                    };
                    expr::lookup(&mut e.b, set, REG_1, Some(REG_1), false);
                    e.dnat(*family);
                });
                // For a packet crossing a commit (see `Body::Pick`).
                if let Some(first) = backends.first() {
                    self.rule(&chain.name, |e| {
                        expr::meta_load(&mut e.b, MetaKey::L4Proto, REG_1);
                        expr::cmp(&mut e.b, CmpOp::Eq, REG_1, &[l4proto(*protocol)]);
                        expr::immediate(&mut e.b, REG_1, &addr_octets(first.addr));
                        expr::immediate(&mut e.b, REG_2, &first.port.to_be_bytes());
                        expr::dnat_literal(&mut e.b, nfproto(*family), REG_1, REG_2);
                    });
                }
            }
            Body::Allow(family, nets) => self.allow_rules(&chain.name, *family, nets),
        }
    }

    /// The pool guard, like the text renderer's: per family with ranges,
    /// `ip|ip6 daddr { ranges } counter drop`. As nft encodes it: a set written with one
    /// element becomes a comparison (`cmp eq` for one address, `cmp gte` + `cmp lte` for
    /// a range), more become an anonymous interval set (overlapping and adjacent ranges
    /// merged).
    fn guard_rules(&mut self, guard: &[AddressRange]) {
        for family in [Family::V4, Family::V6] {
            let (offset, alen, key_type, udata) = match family {
                Family::V4 => (16, 4u32, types::TYPE_IPV4, types::UDATA_DADDR4),
                Family::V6 => (24, 16u32, types::TYPE_IPV6, types::UDATA_DADDR6),
            };
            let ranges: Vec<(u128, u128)> = guard
                .iter()
                .filter(|r| Family::of(r.first) == family)
                .map(|r| (addr_int(r.first), addr_int(r.last)))
                .collect();
            let set = match ranges.as_slice() {
                [] => continue,
                [_] => None,
                many => {
                    let elements = interval_elements_of(many.to_vec(), alen);
                    Some(self.interval_set(key_type, alen, udata, &elements))
                }
            };
            let bytes = |v: u128| -> Vec<u8> { v.to_be_bytes()[16 - alen as usize..].to_vec() };
            self.rule(CHAIN_POOL_GUARD, |e| {
                e.nfproto_is(family);
                let b = &mut e.b;
                expr::payload(b, Base::Network, offset, alen, REG_1);
                match (set, ranges.as_slice()) {
                    (Some(id), _) => expr::lookup(
                        b,
                        SetRef {
                            name: "__set%d",
                            id,
                        },
                        REG_1,
                        None,
                        false,
                    ),
                    (None, [(first, last)]) if first == last => {
                        expr::cmp(b, CmpOp::Eq, REG_1, &bytes(*first));
                    }
                    (None, [(first, last)]) => {
                        expr::cmp(b, CmpOp::Gte, REG_1, &bytes(*first));
                        expr::cmp(b, CmpOp::Lte, REG_1, &bytes(*last));
                    }
                    (None, _) => {}
                }
                expr::counter(b);
                expr::verdict(b, expr::VERDICT_DROP);
            });
        }
    }

    /// An anonymous constant interval set with `elements`; returns its id.
    fn interval_set(
        &mut self,
        key_type: u32,
        alen: u32,
        udata: &[u8],
        elements: &[IntervalElement],
    ) -> u32 {
        let id = self.anon_set(
            "__set%d",
            SET_ANONYMOUS | SET_CONSTANT | SET_INTERVAL,
            SetType {
                id: key_type,
                len: alen,
            },
            None,
            elements.len(),
            udata,
        );
        self.elem_list_header(MsgType::NewSetElem, "__set%d", id);
        for el in elements {
            self.b.nest(1);
            if el.end {
                self.b.u32(3, ELEM_INTERVAL_END); // NFTA_SET_ELEM_FLAGS
            }
            self.b.nest(1);
            self.b.bytes(1, &el.key);
            self.b.end_nest();
            if el.open {
                self.b.bytes(6, types::UDATA_ELEM_OPEN); // NFTA_SET_ELEM_USERDATA
            }
            self.b.end_nest();
        }
        self.elem_list_end();
        id
    }

    /// `ip|ip6 saddr <net> return` per net, then `drop` (see `Body::Allow`): as nft encodes a
    /// prefix, `n` bytes compared when the length is a multiple of 8, else the whole address
    /// masked and compared.
    fn allow_rules(&mut self, chain: &str, family: Family, nets: &[IpNet]) {
        let (offset, alen) = match family {
            Family::V4 => (12, 4u32),
            Family::V6 => (8, 16u32),
        };
        for net in nets {
            let plen = u32::from(net.prefix_len());
            let octets = addr_octets(net.network());
            self.rule(chain, |e| {
                e.nfproto_is(family);
                let b = &mut e.b;
                if plen.is_multiple_of(8) {
                    let n = plen / 8;
                    expr::payload(b, Base::Network, offset, n, REG_1);
                    expr::cmp(b, CmpOp::Eq, REG_1, &octets[..n as usize]);
                } else {
                    expr::payload(b, Base::Network, offset, alen, REG_1);
                    let mask = addr_octets(net.netmask());
                    expr::bitwise(b, REG_1, &mask, &vec![0; mask.len()]);
                    expr::cmp(b, CmpOp::Eq, REG_1, &octets);
                }
                expr::verdict(b, expr::VERDICT_RETURN);
            });
        }
        self.rule(chain, |e| expr::verdict(&mut e.b, expr::VERDICT_DROP));
    }
}

/// One element of an interval set as the kernel's rbtree wants it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct IntervalElement {
    key: Vec<u8>,
    end: bool,
    /// The last interval reaches the top of the address space (no end element).
    open: bool,
}

/// [`interval_elements_of`] of prefixes (the tests' shorthand).
#[cfg(test)]
fn interval_elements(nets: &[IpNet], alen: u32) -> Vec<IntervalElement> {
    let ranges: Vec<(u128, u128)> = nets
        .iter()
        .map(|n| (addr_int(n.network()), addr_int(n.broadcast())))
        .collect();
    interval_elements_of(ranges, alen)
}

fn addr_int(a: IpAddr) -> u128 {
    match a {
        IpAddr::V4(a) => u128::from(u32::from(a)),
        IpAddr::V6(a) => u128::from(a),
    }
}

/// Inclusive `(first, last)` ranges sorted, adjacent or overlapping ones joined, as
/// start/end elements: an end element at 0 first when the first range does not start at 0,
/// and no end element after a range that runs to the top of the address space.
fn interval_elements_of(mut ranges: Vec<(u128, u128)>, alen: u32) -> Vec<IntervalElement> {
    let bits = alen * 8;
    let max: u128 = if bits == 128 {
        u128::MAX
    } else {
        (1u128 << bits) - 1
    };
    ranges.sort_unstable();
    let mut merged: Vec<(u128, u128)> = Vec::new();
    for (s, e) in ranges {
        match merged.last_mut() {
            Some(last) if last.1 == max || s <= last.1 + 1 => last.1 = last.1.max(e),
            _ => merged.push((s, e)),
        }
    }
    let bytes = |v: u128| -> Vec<u8> { v.to_be_bytes()[16 - alen as usize..].to_vec() };
    let mut out = Vec::new();
    if merged.first().is_some_and(|(s, _)| *s != 0) {
        out.push(IntervalElement {
            key: bytes(0),
            end: true,
            open: false,
        });
    }
    for (s, e) in merged {
        out.push(IntervalElement {
            key: bytes(s),
            end: false,
            open: e == max,
        });
        if e != max {
            out.push(IntervalElement {
                key: bytes(e + 1),
                end: true,
                open: false,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<IpNet> {
        list.iter().filter_map(|s| s.parse().ok()).collect()
    }

    #[test]
    fn intervals_join_adjacent_ranges_and_mark_open_ends() {
        let els = interval_elements(&nets(&["11.0.0.0/8", "12.0.0.0/8"]), 4);
        let keys: Vec<(Vec<u8>, bool)> = els.iter().map(|e| (e.key.clone(), e.end)).collect();
        assert_eq!(
            keys,
            vec![
                (vec![0, 0, 0, 0], true),
                (vec![11, 0, 0, 0], false),
                (vec![13, 0, 0, 0], true)
            ]
        );
        let els = interval_elements(&nets(&["0.0.0.0/1", "255.0.0.0/8"]), 4);
        assert_eq!(els.len(), 3);
        assert!(!els[0].end && els[0].key == vec![0, 0, 0, 0]);
        assert!(els[2].open && !els[2].end);
    }
}
