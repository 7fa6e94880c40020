//! The nftables renderer: one `table inet <name>` holding everything we program.
//!
//! # Table layout (how a packet travels)
//!
//! ```text
//!                    prerouting                                            postrouting
//! packet ─► filter-prerouting ──► nat-prerouting ─────► (routing, forward) ─► nat-postrouting ─► out
//!           prio dstnat - 20       prio dstnat - 10                             prio srcnat
//!           new conns only         first packet of a conn                       first packet
//!           key ─vmap─► drop or    key ─map─► dnat-masq-*: mark 0x4000, dnat    mark 0x4000 →
//!           allow4-*/allow6-*      key ─map─► dnat-*: dnat to addr . port       masquerade
//!           (drop if source        key ─vmap─► fe4-*/fe6-*: [mark], pick, dnat
//!            not allowed)
//! host's own connections: nat-output (hook output, prio -110 = dstnat - 10), same NAT rules
//! ```
//!
//! Almost everything a frontend needs is an **element** of a map, looked up by a key built
//! from the packet (each lookup is one hash lookup, so the cost per packet does not grow
//! with the number of frontends — no chain of N rules is walked). Chains exist only where
//! an element cannot say it all: a pick among several backends, and a source-range check.
//! This keeps the table small for `nft` to parse (full sync) and to load into its cache
//! (incremental changes): adding or removing a frontend with one backend per family
//! touches only elements, never a chain of its own.
//!
//! **Keys.** `ip daddr . meta l4proto . th dport` (`…-addr4`), `ip6 daddr . meta l4proto .
//! th dport` (`…-addr6`), for frontends bound to addresses; `meta nfproto . meta l4proto .
//! th dport` after `fib daddr type local` (`…-local`) for `AnyLocal` frontends — except in
//! the DNAT maps for `AnyLocal` (`…-local4`/`…-local6`), which are per family (the DNAT
//! target's family) and keyed by `meta l4proto . th dport`. Address-bound maps are looked
//! up first, so the more specific frontend wins (validation forbids an address-bound and an
//! `AnyLocal` frontend taking the same traffic anyway).
//!
//! **Maps** (declared by every table, [`skeleton`]):
//!
//! | name | holds | for a served family with |
//! |---|---|---|
//! | `dnat-addr4`/`-addr6`/`-local4`/`-local6` | key → `addr . port` | one backend: `dnat ip to <key> map @…` |
//! | `dnat-masq-addr4`/`-addr6`/`-local4`/`-local6` | key → `addr . port` | one backend and masquerade: a rule sets the mark when the key is in the map, the next DNATs through it |
//! | `nat-addr4`/`-addr6`/`-local` (verdict) | key → `goto fe4-<id>`/`fe6-<id>` | several backends |
//! | `fw-addr4`/`-addr6`/`-local` (verdict) | key → `goto allow4-<hash>`/`allow6-<hash>`, or `drop` | source ranges that do not include `/0` |
//!
//! **Chains besides the base chains** (names from [`crate::names`]):
//! * `fe4-<id>` / `fe6-<id>`, one per frontend and family with several backends: for
//!   masquerade frontends `meta mark set meta mark | 0x4000`, then
//!   `dnat ip|ip6 to numgen random mod N map { … }` ([`crate::Selection::Random`]) or
//!   `jhash ip saddr . th sport mod N seed S map { … }` ([`crate::Selection::Hash`]),
//!   then a DNAT to the first backend that only a packet crossing a commit reaches
//!   ([`Body::Pick`] says why).
//! * `allow4-<hash>` / `allow6-<hash>`: `ip saddr <range> return` per range, then `drop`
//!   (comparisons, not an anonymous set: [`Body::Allow`]), named by a hash of
//!   the (merged) ranges, so all frontends with the same ranges share one chain — typically
//!   a handful for a whole cluster instead of one per frontend. A family that lists no range
//!   gets a plain `drop` element instead (so an IPv6 client can never bypass IPv4-only
//!   ranges); a family whose ranges include `/0` gets nothing (nothing to check).
//!
//! **A packet, step by step** (first packet of a new connection to an address-bound IPv4
//! frontend; IPv6 and `AnyLocal`, after `fib daddr type local`, are the same with their
//! maps):
//! 1. `filter-prerouting`: looked up in `fw-addr4`; absent → accepted (no ranges to check,
//!    or not ours); `drop` → dropped; `goto allow4-…` → dropped unless the source is in range.
//! 2. `nat-prerouting`: a key in `dnat-masq-addr4` gets mark bit `0x4000` and is DNATed to
//!    the element's `addr . port` (a NAT statement ends the chain); a key in `dnat-addr4` is
//!    DNATed the same way without the mark; a key in `nat-addr4` goes to its `fe4-*` chain,
//!    which marks (masquerade frontends), picks a backend and DNATs. A packet whose key is
//!    in none of them is not ours and passes untouched, unmarked.
//! 3. `nat-postrouting`: masqueraded when it carries the mark.
//!
//! **Priorities, and why.**
//! * NAT at `dstnat - 10` (-110): nftables runs every nat base chain of a hook in priority
//!   order, but the *first* one that binds a connection wins. Running just before
//!   `dstnat` (-100: iptables-nft's `nat PREROUTING`, kube-proxy, CNI portmap, Docker) means
//!   our frontends are served by us even when another component has a DNAT rule for the
//!   same port, while everything that is not ours passes through untouched.
//! * Source ranges at `dstnat - 20` (-120), a `filter` chain *before* our DNAT: the packet
//!   still carries its original destination there, so the same keys as the NAT dispatch
//!   identify the frontend. After DNAT (in `forward`) the destination is the backend's, and
//!   telling our connections from kube-proxy's would need the original tuple (impossible
//!   for `AnyLocal` without a `fib` lookup on it) or a conntrack mark shared with others.
//!   Only `ct state new` packets are checked: established flows were checked when they
//!   started. Dropping before DNAT also means a denied client never creates a NAT binding.
//! * Masquerade at `srcnat` (100) in `nat-postrouting`: it masquerades exactly the packets
//!   carrying mark bit `0x4000`, which our NAT chains set only for masquerade frontends
//!   (only the first packet of a connection passes NAT chains, and the binding then holds
//!   for the whole connection). `0x4000` is on purpose the bit kube-proxy uses for
//!   "masquerade this" (`KUBE-MARK-MASQ`), so sharing it with kube-proxy means the same thing
//!   to both and never masquerades something neither wanted. Frontends without masquerade
//!   (`externalTrafficPolicy: Local`) are only DNATed: the backend sees the client address.
//!
//! **Host-originated traffic** is served too: `nat-output` repeats the NAT rules on the
//! `output` hook (cheap: a few lookups for locally generated first packets), so
//! `curl <node address>:<port>` on the node itself works. Loopback destinations are skipped
//! for `AnyLocal` (DNAT of a 127.0.0.1 connection to another host would need
//! `route_localnet`). Source ranges do not apply to the host's own connections.
//!
//! # Transactions
//! * [`render_full`]: `table inet T {}` + `delete table inet T` + the whole table, applied
//!   as one `nft -f -` transaction — all or nothing, the previous table stays if rejected.
//!   Over a table in use the appliers send [`render_full_in_place`]: the same table reached
//!   by flushing and refilling chains and maps, so the hooks stay and no packet crossing
//!   the commit misses a rule ([`InPlace`]).
//! * [`render_changes`]: incremental, one transaction that removes some frontends' elements
//!   (and `fe*` chains) and adds others' — the text of a typed [`Changes`] (its steps are
//!   verb + object; the netlink encoder walks the same steps). For frontends with one backend per family that is
//!   `delete element` / `add element` only; an `allow*` chain a new frontend needs is
//!   (re)created with `add chain` + `flush chain` + its rule, which is idempotent because
//!   its content follows from its name; [`render_changes_with`] skips that for chains the
//!   caller knows are there, so the transaction removes nothing (a transaction that deletes
//!   anything makes the kernel wait for an RCU grace period, 10–20 ms here, when `nft`
//!   closes its netlink socket; so removing a frontend always costs that). Cost is
//!   otherwise proportional to the frontends changed, not to the table.
//!   `allow*` chains are never deleted incrementally (another frontend may still use one,
//!   and the transaction only knows the frontends it changes): one that nothing jumps to
//!   any more is inert, [`crate::nft::expected`] does not list it, drift detection ignores
//!   it, and the next full sync drops it.
//! * [`render_delete`]: `table inet T {}` + `delete table inet T` — idempotent cleanup that
//!   touches nothing but our table.

mod changes;
mod in_place;
mod layout;
mod plan;

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;

use crate::model::{Frontend, Ruleset};
use crate::validate::{InvalidRuleset, validate, validate_table_name};

pub use changes::{Changes, Step};
pub use in_place::{InPlace, Present};
pub use layout::{
    CHAIN_FILTER_PREROUTING, CHAIN_NAT_OUTPUT, CHAIN_NAT_POSTROUTING, CHAIN_NAT_PREROUTING,
    CHAIN_POOL_GUARD,
};
pub use plan::{
    Allowed, Body, Chain, ChainRole, Element, FrontendPlan, Key, MapKind, Picker, Planner, Value,
    allowed_ranges, plan, plan_all,
};

use layout::{STORES, base_chains, guard_chain, store_index};

/// The comment on our table.
pub const TABLE_COMMENT: &str = "managed by dualstack; do not edit";

/// Masquerade mark bit (shared meaning with kube-proxy's `KUBE-MARK-MASQ`).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// Smallest capacity a map is declared with.
pub const MIN_MAP_CAPACITY: u32 = 1024;

/// The capacity (`size N`) a full sync declares for a map that gets `count` elements: twice
/// the count, at least [`MIN_MAP_CAPACITY`], rounded up to a power of two.
///
/// Why declare one: without it the kernel starts a map as a hash table of a few buckets and
/// grows it by rehashing while the batch inserts — for 20,000 elements about half of the
/// kernel's share of a full sync. With it the kernel sizes the table once. The capacity is
/// also a limit: an incremental change that would take a map past it is refused whole
/// (`ENFILE`, nothing changes), and the agent then replaces the table with a full sync, which
/// declares a new capacity from the new count. Doubling leaves room for as many incremental
/// additions as the map already holds.
pub fn map_capacity(count: usize) -> u32 {
    let wanted = u32::try_from(count.saturating_mul(2)).unwrap_or(u32::MAX);
    wanted
        .max(MIN_MAP_CAPACITY)
        .checked_next_power_of_two()
        .unwrap_or(u32::MAX)
}

/// Whether going from `applied` frontends to `wanted` in one incremental transaction can
/// take a map past the capacity [`map_capacity`] declared: more than doubling the table
/// can (each map was sized to twice its count at the last full sync), so such a change
/// goes out as a full sync, which declares a new capacity, rather than as a batch the
/// kernel would refuse.
pub fn may_outgrow_capacity(applied: usize, wanted: usize) -> bool {
    wanted > applied.saturating_mul(2)
}

/// What we expect in the kernel for a ruleset: every non-base chain and every element of
/// our maps. The applier compares it with what `nft -j list table` reports to
/// detect drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    /// Names of the non-base chains (frontend picks and shared allow chains).
    pub chains: BTreeSet<String>,
    /// Every element of our maps, with its map.
    pub elements: BTreeSet<Element>,
}

/// The full-sync transaction for a kernel without our table (or whose contents are
/// unknown): creates the table if absent, deletes it, and declares it anew with every map,
/// set, chain and element — atomic as one `nft -f -` run. This is the text users and tests
/// read (`demo --show-rules`, the doctor, snapshots). Over a table in use, appliers send
/// [`render_full_in_place`] instead (see [`InPlace`] for why).
pub fn render_full(ruleset: &Ruleset) -> Result<String, InvalidRuleset> {
    validate(ruleset)?;
    let t = &ruleset.table;
    let plans: Vec<FrontendPlan> = plan_all(&ruleset.frontends);
    let capacity = InPlace::plan(ruleset, &plans, &Present::default()).capacity;
    let mut out = String::with_capacity(200 + 64 * element_count(&plans));
    let _ = writeln!(out, "table inet {t} {{}}");
    let _ = writeln!(out, "delete table inet {t}");
    write_table(&mut out, ruleset, &plans, &capacity);
    Ok(out)
}

/// The full-sync transaction over our table as the kernel has it (`present`): the same
/// table as [`render_full`] declares, reached by flushing and refilling the table's chains
/// and maps instead of replacing the table, so that no packet crosses the commit without
/// a rule (see [`InPlace`]). With an empty `present` it is [`render_full`] without the
/// delete.
pub fn render_full_in_place(
    ruleset: &Ruleset,
    present: &Present,
) -> Result<String, InvalidRuleset> {
    validate(ruleset)?;
    let t = &ruleset.table;
    let plans: Vec<FrontendPlan> = plan_all(&ruleset.frontends);
    let steps = InPlace::plan(ruleset, &plans, present);
    let mut out = String::with_capacity(
        200 + 64 * element_count(&plans)
            + 48 * (steps.flush_chains.len() + steps.delete_chains.len()),
    );
    let _ = writeln!(out, "table inet {t} {{}}");
    for chain in &steps.flush_chains {
        let _ = writeln!(out, "flush chain inet {t} {chain}");
    }
    for map in &steps.flush_maps {
        let _ = writeln!(out, "flush map inet {t} {map}");
    }
    for chain in &steps.delete_chains {
        let _ = writeln!(out, "delete chain inet {t} {chain}");
    }
    for map in &steps.delete_maps {
        let _ = writeln!(out, "delete map inet {t} {map}");
    }
    write_table(&mut out, ruleset, &plans, &steps.capacity);
    Ok(out)
}

fn element_count(plans: &[FrontendPlan]) -> usize {
    plans.iter().map(|p| p.elements.len()).sum()
}

/// The `table inet T { … }` block: comment, maps with `size` from `capacity` and their
/// elements, base chains, the pool guard, frontend chains, shared allow chains.
fn write_table(
    out: &mut String,
    ruleset: &Ruleset,
    plans: &[FrontendPlan],
    capacity: &BTreeMap<&'static str, u32>,
) {
    let t = &ruleset.table;
    // Elements per map, sorted by key (keys are unique within a map: validation forbids
    // overlapping frontends), so the text does not depend on the order of frontends.
    let mut per_store: Vec<Vec<&Element>> = vec![Vec::new(); STORES.len()];
    for e in plans.iter().flat_map(|p| &p.elements) {
        if let Some(i) = store_index(e.map) {
            per_store[i].push(e);
        }
    }
    let _ = writeln!(out, "table inet {t} {{");
    let _ = writeln!(out, "\tcomment \"{TABLE_COMMENT}\"");
    for (store, elements) in STORES.iter().zip(&mut per_store) {
        let size = capacity
            .get(store.name)
            .copied()
            .unwrap_or_else(|| map_capacity(elements.len()));
        let _ = writeln!(out, "\tmap {} {{", store.name);
        let _ = writeln!(out, "\t\ttype {} : {};", store.key_type, store.value_type);
        let _ = writeln!(out, "\t\tsize {size};");
        if !elements.is_empty() {
            elements.sort_unstable_by_key(|e| e.key);
            let _ = writeln!(out, "\t\telements = {{");
            let last = elements.len() - 1;
            for (i, e) in elements.iter().enumerate() {
                let sep = if i == last { "" } else { "," };
                let _ = writeln!(out, "\t\t\t{e}{sep}");
            }
            let _ = writeln!(out, "\t\t}}");
        }
        let _ = writeln!(out, "\t}}");
    }
    let guard = guard_chain(&ruleset.guard);
    let base = base_chains()
        .into_iter()
        .map(|(n, h, r)| (n, h.to_string(), r));
    for (name, header, rules) in base.chain(guard) {
        let _ = writeln!(out, "\tchain {name} {{");
        let _ = writeln!(out, "\t\t{header}");
        for r in rules {
            let _ = writeln!(out, "\t\t{r}");
        }
        let _ = writeln!(out, "\t}}");
    }
    // Frontend chains in frontend order, then the shared allow chains by name.
    let mut allow: BTreeMap<&str, &Body> = BTreeMap::new();
    for chain in plans.iter().flat_map(|p| &p.chains) {
        match chain.role {
            ChainRole::Allow => {
                allow.entry(&chain.name).or_insert(&chain.body);
            }
            ChainRole::Frontend => {
                let _ = writeln!(out, "\tchain {} {{", chain.name);
                if let Some(comment) = &chain.comment {
                    let _ = writeln!(out, "\t\tcomment \"{comment}\";");
                }
                for rule in chain.body.rules() {
                    let _ = writeln!(out, "\t\t{rule}");
                }
                let _ = writeln!(out, "\t}}");
            }
        }
    }
    for (name, body) in allow {
        let _ = writeln!(out, "\tchain {name} {{");
        for rule in body.rules() {
            let _ = writeln!(out, "\t\t{rule}");
        }
        let _ = writeln!(out, "\t}}");
    }
    let _ = writeln!(out, "}}");
}

/// An incremental transaction on an existing table (made by [`render_full`]): removes the
/// elements and `fe*` chains of `remove`, then adds `add` (chains created or flushed and
/// refilled, elements added). To change a frontend, pass its old version in `remove` and
/// the new one in `add`. Checking that `add` does not overlap frontends left in the table is
/// the caller's job (validate the resulting [`Ruleset`]). Shared `allow*` chains are never
/// deleted here (see the module documentation).
pub fn render_changes(
    table: &str,
    remove: &[Frontend],
    add: &[Frontend],
) -> Result<String, InvalidRuleset> {
    render_changes_with(table, remove, add, &BTreeSet::new())
}

/// [`render_changes`], for a caller that knows some shared `allow*` chains are already in
/// the table (`present`, e.g. because its own last transaction put them there): those are
/// not declared again. Re-declaring one means flushing it, and a transaction that removes
/// anything — even a rule it puts straight back — waits for the kernel to release what it
/// removed (an RCU grace period, 10–20 ms on a 6.18 kernel, paid when `nft` closes its
/// netlink socket); without it, adding frontends is additions only. If a chain in
/// `present` is in fact missing, the kernel rejects the whole transaction and nothing
/// changes.
pub fn render_changes_with(
    table: &str,
    remove: &[Frontend],
    add: &[Frontend],
    present: &BTreeSet<String>,
) -> Result<String, InvalidRuleset> {
    Ok(Changes::new(table, remove, add, present)?.to_string())
}

/// Removes our table if it exists, touching nothing else (idempotent).
pub fn render_delete(table: &str) -> Result<String, InvalidRuleset> {
    validate_table_name(table).map_err(|e| InvalidRuleset(vec![e]))?;
    Ok(format!(
        "table inet {table} {{}}\ndelete table inet {table}\n"
    ))
}

/// The non-base chains and the elements a ruleset puts in the kernel.
pub fn expected(ruleset: &Ruleset) -> Result<Expected, InvalidRuleset> {
    validate(ruleset)?;
    let mut exp = Expected::default();
    if let Some((name, _, _)) = guard_chain(&ruleset.guard) {
        exp.chains.insert(name.to_string());
    }
    for p in plan_all(&ruleset.frontends) {
        exp.chains
            .extend(p.chains.into_iter().map(|c| c.name.to_string()));
        exp.elements.extend(p.elements);
    }
    Ok(exp)
}

/// The shared `allow*` chains `frontends` need (what [`render_full`] of exactly these
/// frontends leaves in the table, and what [`render_changes`] adding them ensures).
pub fn shared_chains(frontends: &[Frontend]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut done: BTreeSet<(dualstack_addr::Family, &[ipnet::IpNet])> = BTreeSet::new();
    for fe in frontends {
        for family in fe.served_families() {
            // Each distinct range list is normalised and named once.
            if !done.insert((family, fe.source_ranges.as_slice())) {
                continue;
            }
            if let Allowed::Only(nets) = allowed_ranges(fe, family) {
                out.insert(crate::names::allow_chain(family, &nets));
            }
        }
    }
    out
}

/// True for the name of a shared source-range chain (`allow4-…`/`allow6-…`): such a chain
/// may outlive its last user until the next full sync (see the module documentation).
pub fn is_shared_chain(name: &str) -> bool {
    name.starts_with("allow4-") || name.starts_with("allow6-")
}

/// Every map of our table in declaration order: name, key type, value type, as nft spells
/// them (`ipv4_addr . inet_proto . inet_service`, `verdict`).
pub fn stores() -> impl Iterator<Item = (&'static str, &'static str, &'static str)> {
    STORES.iter().map(|s| (s.name, s.key_type, s.value_type))
}

/// The names of the base chains and of the maps every table of ours has.
pub fn skeleton() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        base_chains().into_iter().map(|(n, _, _)| n).collect(),
        STORES.iter().map(|s| s.name).collect(),
    )
}
