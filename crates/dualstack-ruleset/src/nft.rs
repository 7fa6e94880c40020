//! The nftables renderer: one `table inet <name>` holding everything we program.
//!
//! # Table layout (how a packet travels)
//!
//! ```text
//!                    prerouting                                         postrouting
//! packet ─► filter-prerouting ──► nat-prerouting ──► (routing, forward) ─► nat-postrouting ─► out
//!           prio dstnat - 20       prio dstnat - 10                          prio srcnat
//!           new conns only         first packet of a conn                    first packet
//!           key ─vmap─► fw4-*/fw6-* key ─vmap─► fe4-*/fe6-*                 mark 0x4000 → masquerade
//!                  (drop if source    (mark if masquerade,
//!                   not allowed)       pick backend, dnat)
//! host's own connections: nat-output (hook output, prio -110 = dstnat - 10) ─vmap─► fe4-*/fe6-*
//! ```
//!
//! **Dispatch maps** (verdict maps; each lookup is one hash/rbtree lookup, so the cost per
//! packet does not grow with the number of frontends — no chain of N rules is walked):
//!
//! | map | key | used for |
//! |---|---|---|
//! | `nat-addr4` / `fw-addr4` | `ip daddr . meta l4proto . th dport` | frontends bound to IPv4 addresses |
//! | `nat-addr6` / `fw-addr6` | `ip6 daddr . meta l4proto . th dport` | frontends bound to IPv6 addresses |
//! | `nat-local` / `fw-local` | `meta nfproto . meta l4proto . th dport` after `fib daddr type local` | `AnyLocal` frontends |
//!
//! Address-bound maps are looked up first, so the more specific frontend wins (validation
//! forbids an address-bound and an `AnyLocal` frontend taking the same traffic anyway).
//!
//! **Per-frontend chains** (one per served family; names from [`crate::names`]):
//! * `fe4-<id>` / `fe6-<id>` (jumped to from `nat-*`): for masquerade frontends
//!   `meta mark set meta mark | 0x4000`, then `dnat ip|ip6 to` the one backend, or to
//!   `numgen random mod N map { … }` ([`Selection::Random`]) or
//!   `jhash ip saddr . th sport mod N seed S map { … }` ([`Selection::Hash`]).
//! * `fw4-<id>` / `fw6-<id>` (jumped to from `fw-*`): `ip saddr != { ranges } drop`, or a
//!   bare `drop` when the frontend lists no range of that family — so an IPv6 client can
//!   never bypass IPv4-only ranges. A family whose ranges include `/0` gets no `fw` chain
//!   and no `fw-*` element at all (nothing to check).
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
//!   carrying mark bit `0x4000`, which only our `fe*` chains of masquerade frontends set
//!   (only the first packet of a connection passes NAT chains, and the binding then holds
//!   for the whole connection). `0x4000` is on purpose the bit kube-proxy uses for
//!   "masquerade this" (`KUBE-MARK-MASQ`), so sharing it with kube-proxy means the same thing
//!   to both and never masquerades something neither wanted. Frontends without masquerade
//!   (`externalTrafficPolicy: Local`) are only DNATed: the backend sees the client address.
//!
//! **Host-originated traffic** is served too: `nat-output` repeats the NAT dispatch on the
//! `output` hook (cheap: three lookups for locally generated first packets), so
//! `curl <node address>:<port>` on the node itself works. Loopback destinations are skipped
//! for `AnyLocal` (DNAT of a 127.0.0.1 connection to another host would need
//! `route_localnet`). Source ranges do not apply to the host's own connections.
//!
//! # Transactions
//! * [`render_full`]: `table inet T {}` + `delete table inet T` + the whole table, applied
//!   as one `nft -f -` transaction — all or nothing, the previous table stays if rejected.
//! * [`render_changes`]: incremental, one transaction that removes some frontends' map
//!   elements and chains and adds others' (`add chain` + `flush chain` + rules +
//!   `add element`). Cost is proportional to the frontends changed, not to the table.
//! * [`render_delete`]: `table inet T {}` + `delete table inet T` — idempotent cleanup that
//!   touches nothing but our table.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::net::IpAddr;

use dualstack_addr::Family;
use ipnet::IpNet;

use crate::model::{Backend, Destination, Frontend, Protocol, Ruleset, Selection};
use crate::names;
use crate::validate::{InvalidRuleset, validate, validate_frontend, validate_table_name};

/// Masquerade mark bit (shared meaning with kube-proxy's `KUBE-MARK-MASQ`).
pub const MASQUERADE_MARK: u32 = 0x4000;

/// Base chain names.
pub const CHAIN_FILTER_PREROUTING: &str = "filter-prerouting";
pub const CHAIN_NAT_PREROUTING: &str = "nat-prerouting";
pub const CHAIN_NAT_OUTPUT: &str = "nat-output";
pub const CHAIN_NAT_POSTROUTING: &str = "nat-postrouting";

/// Which dispatch map a key lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapKind {
    /// `nat-*`: jumps to the `fe*` chain.
    Nat,
    /// `fw-*`: jumps to the `fw*` chain.
    Firewall,
}

/// A dispatch key: what a packet is matched on to find its frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `daddr . l4proto . dport` for an address-bound frontend.
    Address(IpAddr, Protocol, u16),
    /// `nfproto . l4proto . dport` for an `AnyLocal` frontend.
    Local(Family, Protocol, u16),
}

impl Key {
    /// The map this key belongs to, e.g. `nat-addr6` or `fw-local`.
    pub fn map_name(&self, kind: MapKind) -> &'static str {
        match (kind, self) {
            (MapKind::Nat, Key::Address(IpAddr::V4(_), ..)) => "nat-addr4",
            (MapKind::Nat, Key::Address(IpAddr::V6(_), ..)) => "nat-addr6",
            (MapKind::Nat, Key::Local(..)) => "nat-local",
            (MapKind::Firewall, Key::Address(IpAddr::V4(_), ..)) => "fw-addr4",
            (MapKind::Firewall, Key::Address(IpAddr::V6(_), ..)) => "fw-addr6",
            (MapKind::Firewall, Key::Local(..)) => "fw-local",
        }
    }

    /// The element key as nft prints it, e.g. `10.0.0.1 . tcp . 80` or `ipv6 . udp . 53`.
    pub fn nft_text(&self) -> String {
        match self {
            Key::Address(addr, proto, port) => format!("{addr} . {proto} . {port}"),
            Key::Local(family, proto, port) => format!("{family} . {proto} . {port}"),
        }
    }
}

/// One element of a dispatch map: `key : goto chain`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    pub map: &'static str,
    pub key: Key,
    pub chain: String,
}

impl Element {
    fn nft_text(&self) -> String {
        format!("{} : goto {}", self.key.nft_text(), self.chain)
    }
}

/// What we expect in the kernel for a ruleset: every non-base chain and every map element.
/// The applier compares it with what `nft -j list table` reports to detect drift.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Expected {
    pub chains: BTreeSet<String>,
    pub elements: BTreeSet<Element>,
}

/// The rendered plan of one frontend in one family.
#[derive(Debug, Clone, PartialEq, Eq)]
struct FamilyPlan {
    family: Family,
    nat_chain: String,
    /// `None` when the family's ranges include `/0` (no check needed).
    firewall_chain: Option<String>,
    keys: Vec<Key>,
    nat_rules: Vec<String>,
    firewall_rules: Vec<String>,
}

impl FamilyPlan {
    fn elements(&self) -> impl Iterator<Item = Element> + '_ {
        self.keys.iter().flat_map(move |key| {
            let nat = Element {
                map: key.map_name(MapKind::Nat),
                key: *key,
                chain: self.nat_chain.clone(),
            };
            let fw = self.firewall_chain.as_ref().map(|chain| Element {
                map: key.map_name(MapKind::Firewall),
                key: *key,
                chain: chain.clone(),
            });
            std::iter::once(nat).chain(fw)
        })
    }

    fn chains(&self) -> Vec<(&str, &[String])> {
        let mut out = vec![(self.nat_chain.as_str(), self.nat_rules.as_slice())];
        if let Some(fw) = &self.firewall_chain {
            out.push((fw.as_str(), self.firewall_rules.as_slice()));
        }
        out
    }
}

/// Plans every served family of a (valid) frontend.
fn plan(fe: &Frontend) -> Vec<FamilyPlan> {
    fe.served_families()
        .into_iter()
        .map(|family| plan_family(fe, family))
        .collect()
}

fn plan_family(fe: &Frontend, family: Family) -> FamilyPlan {
    let keys: Vec<Key> = match &fe.destination {
        Destination::AnyLocal => vec![Key::Local(family, fe.protocol, fe.port)],
        Destination::Addresses(addrs) => addrs
            .iter()
            .filter(|a| Family::of(**a) == family)
            .map(|a| Key::Address(*a, fe.protocol, fe.port))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect(),
    };
    let mut backends: Vec<Backend> = fe.backends_of(family).copied().collect();
    backends.sort();
    let ip = nft_family_word(family);

    let mut nat_rules = Vec::new();
    if fe.masquerade {
        nat_rules.push(format!("meta mark set meta mark | 0x{MASQUERADE_MARK:08x}"));
    }
    let target = match backends.as_slice() {
        [one] => socket_text(one),
        many => {
            let picker = match fe.selection {
                Selection::Random => format!("numgen random mod {}", many.len()),
                Selection::Hash => format!(
                    "jhash {ip} saddr . th sport mod {} seed 0x{:08x}",
                    many.len(),
                    names::fnv1a64(&fe.name) as u32
                ),
            };
            let entries: Vec<String> = many
                .iter()
                .enumerate()
                .map(|(i, b)| format!("{i} : {} . {}", b.addr, b.port))
                .collect();
            format!("{picker} map {{ {} }}", entries.join(", "))
        }
    };
    nat_rules.push(format!(
        "meta l4proto {} dnat {ip} to {target}",
        fe.protocol
    ));

    let ranges = allowed_ranges(fe, family);
    let (firewall_chain, firewall_rules) = match ranges {
        Allowed::Everything => (None, vec![]),
        Allowed::Nothing => (
            Some(names::firewall_chain(&fe.name, family)),
            vec!["drop".to_string()],
        ),
        Allowed::Only(nets) => {
            let list: Vec<String> = nets.iter().map(|n| n.to_string()).collect();
            (
                Some(names::firewall_chain(&fe.name, family)),
                vec![format!("{ip} saddr != {{ {} }} drop", list.join(", "))],
            )
        }
    };
    FamilyPlan {
        family,
        nat_chain: names::nat_chain(&fe.name, family),
        firewall_chain,
        keys,
        nat_rules,
        firewall_rules,
    }
}

/// Which clients of one family a frontend admits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Allowed {
    Everything,
    Nothing,
    /// Non-empty, merged (no overlaps, host bits cleared), sorted.
    Only(Vec<IpNet>),
}

/// The source ranges of one family, normalised: merged, with host bits cleared.
pub fn allowed_ranges(fe: &Frontend, family: Family) -> Allowed {
    let nets: Vec<IpNet> = fe.source_ranges_of(family).map(|n| n.trunc()).collect();
    if nets.is_empty() {
        Allowed::Nothing
    } else if nets.iter().any(|n| n.prefix_len() == 0) {
        Allowed::Everything
    } else {
        Allowed::Only(IpNet::aggregate(&nets))
    }
}

fn nft_family_word(family: Family) -> &'static str {
    match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}

fn socket_text(b: &Backend) -> String {
    match b.addr {
        IpAddr::V4(a) => format!("{a}:{}", b.port),
        IpAddr::V6(a) => format!("[{a}]:{}", b.port),
    }
}

/// The maps, in the order they are declared.
const MAPS: [(&str, &str); 6] = [
    ("nat-addr4", "ipv4_addr . inet_proto . inet_service"),
    ("nat-addr6", "ipv6_addr . inet_proto . inet_service"),
    ("nat-local", "nf_proto . inet_proto . inet_service"),
    ("fw-addr4", "ipv4_addr . inet_proto . inet_service"),
    ("fw-addr6", "ipv6_addr . inet_proto . inet_service"),
    ("fw-local", "nf_proto . inet_proto . inet_service"),
];

const DISPATCH_ADDR4: &str = "ip daddr . meta l4proto . th dport";
const DISPATCH_ADDR6: &str = "ip6 daddr . meta l4proto . th dport";
const DISPATCH_LOCAL: &str = "fib daddr type local meta nfproto . meta l4proto . th dport";

/// The base chains: name, header, rules.
fn base_chains() -> Vec<(&'static str, &'static str, Vec<String>)> {
    vec![
        (
            CHAIN_FILTER_PREROUTING,
            "type filter hook prerouting priority dstnat - 20; policy accept;",
            vec![
                format!("ct state new {DISPATCH_ADDR4} vmap @fw-addr4"),
                format!("ct state new {DISPATCH_ADDR6} vmap @fw-addr6"),
                format!("ct state new {DISPATCH_LOCAL} vmap @fw-local"),
            ],
        ),
        (
            CHAIN_NAT_PREROUTING,
            "type nat hook prerouting priority dstnat - 10; policy accept;",
            vec![
                format!("{DISPATCH_ADDR4} vmap @nat-addr4"),
                format!("{DISPATCH_ADDR6} vmap @nat-addr6"),
                format!("{DISPATCH_LOCAL} vmap @nat-local"),
            ],
        ),
        (
            CHAIN_NAT_OUTPUT,
            // `dstnat` is not accepted as a keyword on the output hook by nft 1.0.6.
            "type nat hook output priority -110; policy accept;",
            vec![
                format!("{DISPATCH_ADDR4} vmap @nat-addr4"),
                format!("{DISPATCH_ADDR6} vmap @nat-addr6"),
                format!("ip daddr != 127.0.0.0/8 {DISPATCH_LOCAL} vmap @nat-local"),
                format!("ip6 daddr != ::1 {DISPATCH_LOCAL} vmap @nat-local"),
            ],
        ),
        (
            CHAIN_NAT_POSTROUTING,
            "type nat hook postrouting priority srcnat; policy accept;",
            vec![format!(
                "meta mark & 0x{MASQUERADE_MARK:08x} == 0x{MASQUERADE_MARK:08x} masquerade"
            )],
        ),
    ]
}

/// The full-sync transaction: creates the table if absent, deletes it, and declares it
/// anew with every map, chain and element — atomic as one `nft -f -` run.
pub fn render_full(ruleset: &Ruleset) -> Result<String, InvalidRuleset> {
    validate(ruleset)?;
    let t = &ruleset.table;
    let plans: Vec<(&Frontend, Vec<FamilyPlan>)> =
        ruleset.frontends.iter().map(|fe| (fe, plan(fe))).collect();
    let mut elements: BTreeSet<Element> = BTreeSet::new();
    for (_, fps) in &plans {
        for fp in fps {
            elements.extend(fp.elements());
        }
    }

    let mut out = String::new();
    let _ = writeln!(out, "table inet {t} {{}}");
    let _ = writeln!(out, "delete table inet {t}");
    let _ = writeln!(out, "table inet {t} {{");
    let _ = writeln!(out, "\tcomment \"managed by dualstack; do not edit\"");
    for (map, key_type) in MAPS {
        let _ = writeln!(out, "\tmap {map} {{");
        let _ = writeln!(out, "\t\ttype {key_type} : verdict;");
        let mine: Vec<String> = elements
            .iter()
            .filter(|e| e.map == map)
            .map(Element::nft_text)
            .collect();
        if !mine.is_empty() {
            let _ = writeln!(out, "\t\telements = {{");
            for (i, e) in mine.iter().enumerate() {
                let sep = if i + 1 == mine.len() { "" } else { "," };
                let _ = writeln!(out, "\t\t\t{e}{sep}");
            }
            let _ = writeln!(out, "\t\t}}");
        }
        let _ = writeln!(out, "\t}}");
    }
    for (name, header, rules) in base_chains() {
        let _ = writeln!(out, "\tchain {name} {{");
        let _ = writeln!(out, "\t\t{header}");
        for r in rules {
            let _ = writeln!(out, "\t\t{r}");
        }
        let _ = writeln!(out, "\t}}");
    }
    for (fe, fps) in &plans {
        for fp in fps {
            for (chain, rules) in fp.chains() {
                let _ = writeln!(out, "\tchain {chain} {{");
                let _ = writeln!(out, "\t\tcomment \"{} {}\";", fe.name, fp.family.as_str());
                for r in rules {
                    let _ = writeln!(out, "\t\t{r}");
                }
                let _ = writeln!(out, "\t}}");
            }
        }
    }
    let _ = writeln!(out, "}}");
    Ok(out)
}

/// An incremental transaction on an existing table (made by [`render_full`]): removes the
/// elements and chains of `remove`, then adds `add` (chains created or flushed and refilled,
/// elements added). To change a frontend, pass its old version in `remove` and the new one
/// in `add`. Checking that `add` does not overlap frontends left in the table is the
/// caller's job (validate the resulting [`Ruleset`]).
pub fn render_changes(
    table: &str,
    remove: &[Frontend],
    add: &[Frontend],
) -> Result<String, InvalidRuleset> {
    let mut errors = Vec::new();
    if let Err(e) = validate_table_name(table) {
        errors.push(e);
    }
    for (i, fe) in remove.iter().chain(add).enumerate() {
        errors.extend(validate_frontend(i, fe));
    }
    if !errors.is_empty() {
        return Err(InvalidRuleset(errors));
    }
    let mut out = String::new();
    for fe in remove {
        let fps = plan(fe);
        for fp in &fps {
            for e in fp.elements() {
                let _ = writeln!(
                    out,
                    "delete element inet {table} {} {{ {} }}",
                    e.map,
                    e.key.nft_text()
                );
            }
        }
        for fp in &fps {
            for (chain, _) in fp.chains() {
                let _ = writeln!(out, "delete chain inet {table} {chain}");
            }
        }
    }
    for fe in add {
        for fp in plan(fe) {
            for (chain, rules) in fp.chains() {
                let _ = writeln!(
                    out,
                    "add chain inet {table} {chain} {{ comment \"{} {}\"; }}",
                    fe.name,
                    fp.family.as_str()
                );
                let _ = writeln!(out, "flush chain inet {table} {chain}");
                for r in rules {
                    let _ = writeln!(out, "add rule inet {table} {chain} {r}");
                }
            }
            for e in fp.elements() {
                let _ = writeln!(
                    out,
                    "add element inet {table} {} {{ {} }}",
                    e.map,
                    e.nft_text()
                );
            }
        }
    }
    Ok(out)
}

/// Removes our table if it exists, touching nothing else (idempotent).
pub fn render_delete(table: &str) -> Result<String, InvalidRuleset> {
    validate_table_name(table).map_err(|e| InvalidRuleset(vec![e]))?;
    Ok(format!(
        "table inet {table} {{}}\ndelete table inet {table}\n"
    ))
}

/// The non-base chains and map elements a ruleset puts in the kernel.
pub fn expected(ruleset: &Ruleset) -> Result<Expected, InvalidRuleset> {
    validate(ruleset)?;
    let mut exp = Expected::default();
    for fe in &ruleset.frontends {
        for fp in plan(fe) {
            exp.elements.extend(fp.elements());
            for (chain, _) in fp.chains() {
                exp.chains.insert(chain.to_string());
            }
        }
    }
    Ok(exp)
}

/// The names of the base chains and maps every table of ours has.
pub fn skeleton() -> (Vec<&'static str>, Vec<&'static str>) {
    (
        base_chains().into_iter().map(|(n, _, _)| n).collect(),
        MAPS.iter().map(|(n, _)| *n).collect(),
    )
}
