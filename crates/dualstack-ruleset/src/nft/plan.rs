//! What one frontend puts in our table: its map elements and the few chains it needs.
//!
//! The decision per frontend and served family (layout and reasons in [`crate::nft`]):
//!
//! | the frontend has | elements | chain |
//! |---|---|---|
//! | one backend, no masquerade | key → `addr . port` in `dnat-*` | – |
//! | one backend, masquerade | key → `addr . port` in `dnat-masq-*` | – |
//! | several backends | key → `goto fe4-<id>` in `nat-*` | `fe4-<id>`/`fe6-<id>`: mark for masquerade, pick, DNAT |
//! | ranges that allow everything (`/0`) | – | – |
//! | no range of this family | key → `drop` in `fw-*` | – |
//! | other ranges | key → `goto allow4-<hash>` in `fw-*` | `allow4-<hash>`: shared by every frontend with these ranges |

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use dualstack_addr::Family;
use ipnet::IpNet;

pub use crate::model::{Allowed, allowed_ranges};
use crate::model::{Backend, Destination, Frontend, Protocol, Selection};
use crate::names;
use crate::nft::MASQUERADE_MARK;

/// Which kind of map an element lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum MapKind {
    /// `nat-*` (verdict map): jumps to a frontend's `fe*` chain (several backends).
    Nat,
    /// `fw-*` (verdict map): jumps to an `allow*` chain, or drops.
    Firewall,
    /// `dnat-*` (data map): the one backend, `addr . port`.
    Dnat,
    /// `dnat-masq-*` (data map): the one backend, `addr . port`, of a frontend whose
    /// traffic is also marked for masquerade.
    DnatMasquerade,
}

/// A dispatch key: what a packet is matched on to find its frontend.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Key {
    /// `daddr . l4proto . dport` for an address-bound frontend.
    Address(IpAddr, Protocol, u16),
    /// `nfproto . l4proto . dport` for an `AnyLocal` frontend (in the per-family
    /// `dnat-local4`/`6` and `dnat-masq-local4`/`6` maps only `l4proto . dport`).
    Local(Family, Protocol, u16),
}

impl Key {
    /// The map this key belongs to for `kind`, e.g. `nat-addr6` or `dnat-local4`.
    pub fn map_name(&self, kind: MapKind) -> &'static str {
        use MapKind::*;
        match (kind, self) {
            (Nat, Key::Address(IpAddr::V4(_), ..)) => "nat-addr4",
            (Nat, Key::Address(IpAddr::V6(_), ..)) => "nat-addr6",
            (Nat, Key::Local(..)) => "nat-local",
            (Firewall, Key::Address(IpAddr::V4(_), ..)) => "fw-addr4",
            (Firewall, Key::Address(IpAddr::V6(_), ..)) => "fw-addr6",
            (Firewall, Key::Local(..)) => "fw-local",
            (Dnat, Key::Address(IpAddr::V4(_), ..)) => "dnat-addr4",
            (Dnat, Key::Address(IpAddr::V6(_), ..)) => "dnat-addr6",
            (Dnat, Key::Local(Family::V4, ..)) => "dnat-local4",
            (Dnat, Key::Local(Family::V6, ..)) => "dnat-local6",
            (DnatMasquerade, Key::Address(IpAddr::V4(_), ..)) => "dnat-masq-addr4",
            (DnatMasquerade, Key::Address(IpAddr::V6(_), ..)) => "dnat-masq-addr6",
            (DnatMasquerade, Key::Local(Family::V4, ..)) => "dnat-masq-local4",
            (DnatMasquerade, Key::Local(Family::V6, ..)) => "dnat-masq-local6",
        }
    }

    /// The full key as nft prints it, e.g. `10.0.0.1 . tcp . 80` or `ipv6 . udp . 53`.
    pub fn nft_text(&self) -> String {
        match self {
            Key::Address(addr, proto, port) => format!("{addr} . {proto} . {port}"),
            Key::Local(family, proto, port) => format!("{family} . {proto} . {port}"),
        }
    }
}

/// What an element maps its key to.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Value {
    /// Verdict `goto <chain>` (the name shared with the [`Chain`]: tens of thousands of
    /// elements jump to a handful of chains).
    Goto(Arc<str>),
    /// Verdict `drop`.
    Drop,
    /// DNAT destination `addr . port`.
    Dnat(Backend),
}

/// One element of one of our maps.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Element {
    /// The map the element belongs to (for example `dnat-addr4`).
    pub map: &'static str,
    /// What the element matches.
    pub key: Key,
    /// What a match leads to.
    pub value: Value,
}

impl Element {
    /// The key as nft prints it in this element's map (the per-family `AnyLocal` DNAT maps
    /// omit the family).
    pub fn key_text(&self) -> String {
        match (&self.key, &self.value) {
            (Key::Local(_, proto, port), Value::Dnat(_)) => format!("{proto} . {port}"),
            (key, _) => key.nft_text(),
        }
    }

    /// The value as nft prints it: `goto fe4-…`, `drop`, `10.42.0.7 . 8443`.
    pub fn value_text(&self) -> String {
        ValueText(&self.value).to_string()
    }

    /// `key : value`: the text inside `{ }` of `add element`.
    pub fn nft_text(&self) -> String {
        self.to_string()
    }
}

/// `key : value` as in [`Element::nft_text`], written without intermediate strings (the
/// full render writes tens of thousands of these).
impl fmt::Display for Element {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (&self.key, &self.value) {
            (Key::Local(_, proto, port), Value::Dnat(_)) => write!(f, "{proto} . {port}")?,
            (Key::Address(addr, proto, port), _) => write!(f, "{addr} . {proto} . {port}")?,
            (Key::Local(family, proto, port), _) => write!(f, "{family} . {proto} . {port}")?,
        }
        write!(f, " : {}", ValueText(&self.value))
    }
}

struct ValueText<'a>(&'a Value);

impl fmt::Display for ValueText<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Value::Goto(chain) => write!(f, "goto {chain}"),
            Value::Drop => f.write_str("drop"),
            Value::Dnat(b) => write!(f, "{} . {}", b.addr, b.port),
        }
    }
}

/// Why a non-base chain exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainRole {
    /// `fe4-<id>`/`fe6-<id>`: one frontend's pick among several backends. Removed with it.
    Frontend,
    /// `allow4-<hash>`/`allow6-<hash>`: a source-range check, shared by every frontend with
    /// the same ranges, so never removed by an incremental change (see [`crate::nft`]).
    Allow,
}

/// One non-base chain: name, comment, rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chain {
    /// The chain's name in our table (shared with the elements that jump to it).
    pub name: Arc<str>,
    /// Why it exists, which decides when an incremental change may remove it.
    pub role: ChainRole,
    /// The nft comment on the chain (the frontend's name), if any.
    pub comment: Option<String>,
    /// The chain's rules.
    pub body: Body,
}

/// How a frontend chain picks one of several backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Picker {
    /// `numgen random mod N`.
    Random,
    /// `jhash ip|ip6 saddr . th sport mod N seed S`.
    Hash {
        /// The `jhash` seed, derived from the frontend's name so it stays the same across syncs.
        seed: u32,
    },
}

/// A chain's rules, as a typed description (the text is [`Body::rules`]; the netlink
/// encoder reads the fields).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// A frontend's pick among several backends of one family: for masquerade frontends
    /// `meta mark set meta mark | 0x4000`, then
    /// `meta l4proto P dnat ip|ip6 to <picker> mod N map { i : addr . port, … }`, then
    /// `meta l4proto P dnat ip|ip6 to <first backend>`.
    ///
    /// The last rule is for packets that cross a commit, never taken otherwise (`mod N`
    /// always finds its element). The kernel reads a packet's rules from the generation in
    /// force when it entered the base chain but looks up sets in the one in force at the
    /// lookup, and a full sync replaces this chain's rules, whose anonymous map's elements
    /// are inactive in the new generation: a first packet running the old rule just after
    /// the flip would find nothing and leave un-NATed (measured: 21 connections refused in
    /// 1,730 replacements without the rule, none with it; RELIABILITY.md § 3).
    Pick {
        /// The family of every backend in this chain.
        family: Family,
        /// The frontend's protocol (the `meta l4proto` of the DNAT rule).
        protocol: Protocol,
        /// Whether to mark the connection for masquerade in `nat-postrouting`.
        masquerade: bool,
        /// How the backend index is chosen.
        picker: Picker,
        /// Sorted; element `i` of the map is `backends[i]`.
        backends: Vec<Backend>,
    },
    /// `ip|ip6 saddr <net> return` per allowed net, then `drop`; written out only when
    /// rendered (frontends sharing ranges share the chain, so it is usually written once
    /// for many frontends). Prefix comparisons rather than one anonymous set, for the
    /// reason given at [`Body::Pick`]: a first packet crossing the commit that replaces the
    /// chain still runs the old rules, and an old set would be empty for it (a dropped
    /// SYN); a comparison carries its value. The chain is only reached by a connection's
    /// first packet (`ct state new`), and normalised lists are short.
    Allow(Family, Arc<[IpNet]>),
}

impl Body {
    /// The rules as nft text, one per line.
    pub fn rules(&self) -> Vec<String> {
        match self {
            Body::Pick {
                family,
                protocol,
                masquerade,
                picker,
                backends,
            } => {
                let ip = nft_family_word(*family);
                let picker = match picker {
                    Picker::Random => format!("numgen random mod {}", backends.len()),
                    Picker::Hash { seed } => format!(
                        "jhash {ip} saddr . th sport mod {} seed 0x{seed:08x}",
                        backends.len()
                    ),
                };
                let entries: Vec<String> = backends
                    .iter()
                    .enumerate()
                    .map(|(i, b)| format!("{i} : {} . {}", b.addr, b.port))
                    .collect();
                let mut rules = Vec::new();
                if *masquerade {
                    rules.push(format!("meta mark set meta mark | 0x{MASQUERADE_MARK:08x}"));
                }
                rules.push(format!(
                    "meta l4proto {protocol} dnat {ip} to {picker} map {{ {} }}",
                    entries.join(", ")
                ));
                // Only a packet that crosses a commit replacing this rule gets here (see
                // `Body::Pick`); a sorted list is never empty.
                if let Some(first) = backends.first() {
                    rules.push(format!(
                        "meta l4proto {protocol} dnat {ip} to {}",
                        SocketAddr::new(first.addr, first.port)
                    ));
                }
                rules
            }
            Body::Allow(family, nets) => {
                let ip = nft_family_word(*family);
                let mut rules: Vec<String> = nets
                    .iter()
                    .map(|net| format!("{ip} saddr {net} return"))
                    .collect();
                rules.push("drop".to_string());
                rules
            }
        }
    }
}

/// Everything one frontend puts in the table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FrontendPlan {
    /// Map elements, keyed on address or family, protocol and port.
    pub elements: Vec<Element>,
    /// The non-base chains the elements jump to.
    pub chains: Vec<Chain>,
}

/// Plans every served family of a (valid) frontend.
pub fn plan(fe: &Frontend) -> FrontendPlan {
    Planner::default().plan(fe)
}

/// Plans of many frontends, in order ([`plan`] of each, sharing the work for frontends
/// with the same source ranges).
pub fn plan_all(frontends: &[Frontend]) -> Vec<FrontendPlan> {
    let mut planner = Planner::default();
    frontends.iter().map(|fe| planner.plan(fe)).collect()
}

/// Plans frontends one after another, remembering per family the last source-range list
/// seen with its normalised ranges and shared chain name: frontends usually share a few
/// range lists, and normalising and naming them (text formatting, hashing) was most of
/// the planning time at 10,000 frontends.
#[derive(Debug, Default)]
pub struct Planner {
    last: [Option<Remembered>; 2],
    /// Scratch lists reused from frontend to frontend (no allocation per frontend).
    scratch: Scratch,
}

/// A frontend's keys and backends of one family, while it is planned.
#[derive(Debug, Default)]
struct Scratch {
    keys: Vec<Key>,
    backends: Vec<Backend>,
}

/// A frontend's source ranges as given, what they allow in one family, and the shared
/// chain when there is one (its name and ranges, shared by every plan that uses it).
type Remembered = (Vec<IpNet>, Allowed, Option<(Arc<str>, Arc<[IpNet]>)>);

impl Planner {
    /// [`plan`] of `fe`.
    pub fn plan(&mut self, fe: &Frontend) -> FrontendPlan {
        let mut out = FrontendPlan::default();
        for family in fe.served_families() {
            let slot = usize::from(family == Family::V6);
            let hit = self.last[slot]
                .as_ref()
                .is_some_and(|(raw, _, _)| *raw == fe.source_ranges);
            if !hit {
                let allowed = allowed_ranges(fe, family);
                let name = match &allowed {
                    Allowed::Only(nets) => Some((
                        Arc::from(names::allow_chain(family, nets)),
                        Arc::from(nets.as_slice()),
                    )),
                    _ => None,
                };
                self.last[slot] = Some((fe.source_ranges.clone(), allowed, name));
            }
            if let Some((_, allowed, shared)) = &self.last[slot] {
                plan_family(
                    fe,
                    family,
                    allowed,
                    shared.as_ref(),
                    &mut self.scratch,
                    &mut out,
                );
            }
        }
        out
    }
}

fn plan_family(
    fe: &Frontend,
    family: Family,
    allowed: &Allowed,
    shared: Option<&(Arc<str>, Arc<[IpNet]>)>,
    scratch: &mut Scratch,
    out: &mut FrontendPlan,
) {
    let keys = &mut scratch.keys;
    keys.clear();
    match &fe.destination {
        Destination::AnyLocal => keys.push(Key::Local(family, fe.protocol, fe.port)),
        Destination::Addresses(addrs) => keys.extend(
            addrs
                .iter()
                .filter(|a| Family::of(**a) == family)
                .map(|a| Key::Address(*a, fe.protocol, fe.port)),
        ),
    }
    keys.sort_unstable();
    keys.dedup();
    let keys = &*keys;
    let mut add = |kind: MapKind, value: &Value| {
        for key in keys {
            out.elements.push(Element {
                map: key.map_name(kind),
                key: *key,
                value: value.clone(),
            });
        }
    };

    let backends = &mut scratch.backends;
    backends.clear();
    backends.extend(fe.backends_of(family).copied());
    backends.sort();
    let nat_chain = match backends.as_slice() {
        [one] if fe.masquerade => {
            add(MapKind::DnatMasquerade, &Value::Dnat(*one));
            None
        }
        [one] => {
            add(MapKind::Dnat, &Value::Dnat(*one));
            None
        }
        many => {
            let picker = match fe.selection {
                Selection::Random => Picker::Random,
                Selection::Hash => Picker::Hash {
                    seed: names::fnv1a64(&fe.name) as u32,
                },
            };
            let name: Arc<str> = names::nat_chain(&fe.name, family).into();
            add(MapKind::Nat, &Value::Goto(name.clone()));
            Some(Chain {
                name,
                role: ChainRole::Frontend,
                comment: Some(format!("{} {}", fe.name, family.as_str())),
                body: Body::Pick {
                    family,
                    protocol: fe.protocol,
                    masquerade: fe.masquerade,
                    picker,
                    backends: many.to_vec(),
                },
            })
        }
    };

    let allow_chain = match allowed {
        Allowed::Everything => None,
        Allowed::Nothing => {
            add(MapKind::Firewall, &Value::Drop);
            None
        }
        Allowed::Only(nets) => {
            let (name, nets) = match shared {
                Some((name, nets)) => (name.clone(), nets.clone()),
                None => (
                    names::allow_chain(family, nets).into(),
                    nets.as_slice().into(),
                ),
            };
            add(MapKind::Firewall, &Value::Goto(name.clone()));
            Some(Chain {
                name,
                role: ChainRole::Allow,
                comment: None,
                body: Body::Allow(family, nets),
            })
        }
    };
    out.chains.extend(nat_chain.into_iter().chain(allow_chain));
}

/// `ip` or `ip6`: the word nft uses for a family in `saddr`/`daddr` matches and `dnat` statements.
pub fn nft_family_word(family: Family) -> &'static str {
    match family {
        Family::V4 => "ip",
        Family::V6 => "ip6",
    }
}
