//! Validation of a [`Ruleset`] before anything is rendered.
//!
//! Every renderer calls [`validate`] first, so nothing malformed ever reaches `nft` or
//! `iptables-restore`. All problems are reported at once ([`InvalidRuleset`]), each naming
//! the frontend and the offending value.

use std::collections::BTreeSet;
use std::fmt;
use std::net::IpAddr;

use crate::fast_hash::{FastMap, map_with_capacity};

use dualstack_addr::Family;
use ipnet::IpNet;

use crate::model::{Allowed, allowed_ranges};
use crate::model::{Backend, Destination, Frontend, Protocol, Ruleset};
use crate::names;

/// Longest table name we accept (nft allows more; we keep it short and readable).
pub const TABLE_NAME_MAX: usize = 64;
/// Longest frontend name we accept.
pub const FRONTEND_NAME_MAX: usize = 253;

/// One problem in a ruleset.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RulesetError {
    /// The table name cannot be used as `table inet NAME`.
    #[error("table name {name:?} is invalid: {reason}")]
    InvalidTableName {
        /// The name as given.
        name: String,
        /// Which rule of nft's identifier syntax it breaks.
        reason: &'static str,
    },
    /// A guard range whose ends are of different families, or whose end comes before its start.
    #[error("guard range {first}-{last} mixes families or ends before it starts")]
    InvalidGuardRange {
        /// Where the range starts.
        first: std::net::IpAddr,
        /// Where it ends.
        last: std::net::IpAddr,
    },
    /// A frontend without a name (names become chain and set names).
    #[error("frontend #{index}: name is empty")]
    EmptyName {
        /// The frontend's position in the ruleset, from 0.
        index: usize,
    },
    /// A frontend name that nft would not accept inside a generated identifier.
    #[error("frontend {frontend:?}: name is invalid: {reason}")]
    InvalidName {
        /// The name as given.
        frontend: String,
        /// Which rule it breaks.
        reason: &'static str,
    },
    /// Two frontends share a name.
    #[error("frontends #{first} and #{second} are both named {name:?}; names must be unique")]
    DuplicateName {
        /// The shared name.
        name: String,
        /// Position of the first frontend with it.
        first: usize,
        /// Position of the second one.
        second: usize,
    },
    /// A frontend listening on port 0.
    #[error("frontend {frontend:?}: port 0 is not a valid frontend port")]
    ZeroPort {
        /// The frontend's name.
        frontend: String,
    },
    /// A backend with port 0.
    #[error("frontend {frontend:?}: backend {backend} has port 0")]
    ZeroBackendPort {
        /// The frontend's name.
        frontend: String,
        /// The backend as `addr:port`.
        backend: String,
    },
    /// A frontend bound to an empty list of addresses, which would match nothing.
    #[error(
        "frontend {frontend:?}: destination address list is empty (use AnyLocal for every local address)"
    )]
    NoDestinationAddress {
        /// The frontend's name.
        frontend: String,
    },
    /// The same destination address twice in one frontend.
    #[error("frontend {frontend:?}: destination address {addr} is listed twice")]
    DuplicateDestination {
        /// The frontend's name.
        frontend: String,
        /// The repeated address.
        addr: IpAddr,
    },
    /// An address that cannot take part in DNAT (unspecified, multicast, …).
    #[error("frontend {frontend:?}: {role} address {addr} is {reason}")]
    UnusableAddress {
        /// The frontend's name.
        frontend: String,
        /// Where it appears: `destination` or `backend`.
        role: &'static str,
        /// The address.
        addr: IpAddr,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The same backend twice in one frontend.
    #[error("frontend {frontend:?}: backend {backend} is listed twice")]
    DuplicateBackend {
        /// The frontend's name.
        frontend: String,
        /// The repeated backend as `addr:port`.
        backend: String,
    },
    /// A backend of a family the frontend does not listen on, so no packet could reach it.
    #[error(
        "frontend {frontend:?}: {family} backend {backend}, but the frontend has no {family} destination address"
    )]
    BackendFamilyNotServed {
        /// The frontend's name.
        frontend: String,
        /// The backend's family.
        family: Family,
        /// The backend as `addr:port`.
        backend: String,
    },
    /// Two frontends claim the same family, protocol and port on a common destination.
    #[error("frontends {first:?} and {second:?} both take {family} {protocol} port {port} on {on}")]
    Overlap {
        /// The first frontend's name.
        first: String,
        /// The second frontend's name.
        second: String,
        /// The family both claim.
        family: Family,
        /// The protocol both claim.
        protocol: Protocol,
        /// The port both claim.
        port: u16,
        /// The destination they share (an address, or every local address).
        on: String,
    },
    /// Two frontend names that map to the same generated chain name.
    #[error(
        "frontends {first:?} and {second:?} get the same generated chain name {chain:?}; rename one"
    )]
    ChainNameCollision {
        /// The first frontend's name.
        first: String,
        /// The second frontend's name.
        second: String,
        /// The chain name both would get.
        chain: String,
    },
    /// Two different source-range lists that map to the same shared allow-chain name.
    #[error(
        "frontends {first:?} and {second:?} have different {family} source ranges that get the same shared chain name {chain:?}; change one's ranges"
    )]
    AllowChainCollision {
        /// The first frontend's name.
        first: String,
        /// The second frontend's name.
        second: String,
        /// The family of the ranges.
        family: Family,
        /// The chain name both would get.
        chain: String,
    },
}

/// Every problem found in a ruleset (never empty).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidRuleset(pub Vec<RulesetError>);

impl fmt::Display for InvalidRuleset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid ruleset: ")?;
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("; ")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for InvalidRuleset {}

/// Checks a table name: it must be an nft identifier we can also use in messages, i.e.
/// start with an ASCII letter, continue with ASCII letters, digits, `_` or `-`, and be at
/// most [`TABLE_NAME_MAX`] characters.
pub fn validate_table_name(name: &str) -> Result<(), RulesetError> {
    let reason = if name.is_empty() {
        Some("it is empty")
    } else if name.len() > TABLE_NAME_MAX {
        Some("it is longer than 64 characters")
    } else if !name.starts_with(|c: char| c.is_ascii_alphabetic()) {
        Some("it must start with an ASCII letter")
    } else if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    {
        Some("only ASCII letters, digits, '_' and '-' are allowed")
    } else {
        None
    };
    match reason {
        Some(reason) => Err(RulesetError::InvalidTableName {
            name: name.to_string(),
            reason,
        }),
        None => Ok(()),
    }
}

/// Checks one frontend on its own (everything except overlaps with other frontends).
pub fn validate_frontend(index: usize, fe: &Frontend) -> Vec<RulesetError> {
    let mut errors = Vec::new();
    let name = || fe.name.clone();
    if fe.name.is_empty() {
        errors.push(RulesetError::EmptyName { index });
    } else if let Some(reason) = name_problem(&fe.name) {
        errors.push(RulesetError::InvalidName {
            frontend: name(),
            reason,
        });
    }
    if fe.port == 0 {
        errors.push(RulesetError::ZeroPort { frontend: name() });
    }
    // Per family: does the frontend have a destination of it (IPv4, IPv6)?
    let mut destination_families = [false; 2];
    let slot = |f: Family| usize::from(f == Family::V6);
    match &fe.destination {
        Destination::AnyLocal => {
            destination_families = [true; 2];
        }
        Destination::Addresses(addrs) => {
            if addrs.is_empty() {
                errors.push(RulesetError::NoDestinationAddress { frontend: name() });
            }
            let mut seen = Seen::new(addrs.len());
            for addr in addrs {
                destination_families[slot(Family::of(*addr))] = true;
                if !seen.insert(*addr) {
                    errors.push(RulesetError::DuplicateDestination {
                        frontend: name(),
                        addr: *addr,
                    });
                }
                if let Some(reason) = address_problem(*addr) {
                    errors.push(RulesetError::UnusableAddress {
                        frontend: name(),
                        role: "destination",
                        addr: *addr,
                        reason,
                    });
                }
            }
        }
    }
    let mut seen = Seen::new(fe.backends.len());
    for backend in &fe.backends {
        if backend.port == 0 {
            errors.push(RulesetError::ZeroBackendPort {
                frontend: name(),
                backend: backend_text(backend),
            });
        }
        if !seen.insert(*backend) {
            errors.push(RulesetError::DuplicateBackend {
                frontend: name(),
                backend: backend_text(backend),
            });
        }
        if let Some(reason) = address_problem(backend.addr) {
            errors.push(RulesetError::UnusableAddress {
                frontend: name(),
                role: "backend",
                addr: backend.addr,
                reason,
            });
        }
        if !destination_families[slot(backend.family())] {
            errors.push(RulesetError::BackendFamilyNotServed {
                frontend: name(),
                family: backend.family(),
                backend: backend_text(backend),
            });
        }
    }
    errors
}

/// Duplicate detection for the short lists of one frontend: a linear scan up to a few
/// dozen entries (no allocation beyond the list), a set beyond.
struct Seen<T> {
    list: Vec<T>,
    set: Option<BTreeSet<T>>,
}

impl<T: Ord + Copy> Seen<T> {
    const LINEAR_MAX: usize = 32;

    fn new(len: usize) -> Seen<T> {
        if len <= Self::LINEAR_MAX {
            Seen {
                list: Vec::with_capacity(len),
                set: None,
            }
        } else {
            Seen {
                list: Vec::new(),
                set: Some(BTreeSet::new()),
            }
        }
    }

    /// False when `v` was inserted before.
    fn insert(&mut self, v: T) -> bool {
        match &mut self.set {
            Some(set) => set.insert(v),
            None if self.list.contains(&v) => false,
            None => {
                self.list.push(v);
                true
            }
        }
    }
}

/// Checks a whole ruleset: the table name, every frontend, and that no two frontends take
/// the same traffic (family, destination, protocol, port) or share a generated chain name.
pub fn validate(ruleset: &Ruleset) -> Result<(), InvalidRuleset> {
    let mut errors = Vec::new();
    if let Err(e) = validate_table_name(&ruleset.table) {
        errors.push(e);
    }
    for r in &ruleset.guard {
        let ok = match (r.first, r.last) {
            (std::net::IpAddr::V4(a), std::net::IpAddr::V4(b)) => a <= b,
            (std::net::IpAddr::V6(a), std::net::IpAddr::V6(b)) => a <= b,
            _ => false,
        };
        if !ok {
            errors.push(RulesetError::InvalidGuardRange {
                first: r.first,
                last: r.last,
            });
        }
    }
    let mut names: FastMap<&str, usize> = map_with_capacity(ruleset.frontends.len());
    for (index, fe) in ruleset.frontends.iter().enumerate() {
        errors.extend(validate_frontend(index, fe));
        if fe.name.is_empty() {
            continue;
        }
        if let Some(first) = names.insert(&fe.name, index) {
            errors.push(RulesetError::DuplicateName {
                name: fe.name.clone(),
                first,
                second: index,
            });
        }
    }
    for (first, second) in chain_name_collisions(&ruleset.frontends) {
        let (first, second) = (&ruleset.frontends[first], &ruleset.frontends[second]);
        errors.push(RulesetError::ChainNameCollision {
            first: first.name.clone(),
            second: second.name.clone(),
            chain: names::frontend_id(&first.name),
        });
    }
    errors.extend(overlaps(&ruleset.frontends));
    errors.extend(allow_chain_collisions(&ruleset.frontends));
    if errors.is_empty() {
        Ok(())
    } else {
        Err(InvalidRuleset(errors))
    }
}

/// Pairs of frontends `(first, second)` (indexes, `first < second`) with different names
/// whose generated chain id ([`names::frontend_id`]) is the same: a sanitized readable
/// part and a 32-bit hash, so names can be chosen to collide (a birthday search over a
/// few tens of thousands). The agent leaves such frontends out and reports them rather
/// than let one pair stop the node's every sync; [`validate`] refuses them.
pub fn chain_name_collisions(frontends: &[Frontend]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    // Keyed by what decides the generated id, so no id string is built per frontend.
    let mut ids: FastMap<(u32, u64), usize> = map_with_capacity(frontends.len());
    for (index, fe) in frontends.iter().enumerate() {
        if fe.name.is_empty() {
            continue;
        }
        let key = names::frontend_id_key(&fe.name);
        match ids.get(&key) {
            None => {
                ids.insert(key, index);
            }
            // The same name: a duplicate, reported as such by `validate`.
            Some(&first) if frontends[first].name == fe.name => {}
            // Equal keys, so equal ids unless two readable parts' hashes collided.
            Some(&first) => {
                if names::frontend_id(&frontends[first].name) == names::frontend_id(&fe.name) {
                    out.push((first, index));
                }
            }
        }
    }
    out
}

/// Frontends whose different source ranges hash to the same shared `allow*` chain name
/// (64-bit, so only a deliberately crafted pair could): they must not share it.
fn allow_chain_collisions(frontends: &[Frontend]) -> Vec<RulesetError> {
    let mut errors = Vec::new();
    let mut seen: FastMap<String, (usize, Vec<IpNet>)> = FastMap::default();
    // Frontends usually share a handful of range lists: each distinct (family, list as
    // given) is normalised and named once.
    let mut done: FastMap<(Family, &[IpNet]), ()> = FastMap::default();
    for (index, fe) in frontends.iter().enumerate() {
        for family in fe.served_families() {
            if done
                .insert((family, fe.source_ranges.as_slice()), ())
                .is_some()
            {
                continue;
            }
            let Allowed::Only(nets) = allowed_ranges(fe, family) else {
                continue;
            };
            let chain = names::allow_chain(family, &nets);
            match seen.get(&chain) {
                Some((first, theirs)) if *theirs != nets => {
                    errors.push(RulesetError::AllowChainCollision {
                        first: frontends[*first].name.clone(),
                        second: fe.name.clone(),
                        family,
                        chain,
                    });
                }
                Some(_) => {}
                None => {
                    seen.insert(chain, (index, nets));
                }
            }
        }
    }
    errors
}

/// The traffic a frontend takes in one family: either one address or every local address.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Claim {
    Address(IpAddr),
    AnyLocal(Family),
}

/// Overlapping frontends. Only served families count (a family without backends installs
/// nothing). An address-bound frontend and an `AnyLocal` one overlap when they share family,
/// protocol and port, because "any local address" may include that address.
fn overlaps(frontends: &[Frontend]) -> Vec<RulesetError> {
    let mut errors = Vec::new();
    let n = frontends.len();
    let mut exact: FastMap<(Claim, Protocol, u16), usize> = map_with_capacity(2 * n);
    let mut local: FastMap<(Family, Protocol, u16), usize> = FastMap::default();
    let mut bound: FastMap<(Family, Protocol, u16), (usize, IpAddr)> = map_with_capacity(2 * n);
    let mut claims: Vec<Claim> = Vec::new();
    for (index, fe) in frontends.iter().enumerate() {
        for family in fe.served_families() {
            let fpp = (family, fe.protocol, fe.port);
            claims.clear();
            match &fe.destination {
                Destination::AnyLocal => claims.push(Claim::AnyLocal(family)),
                Destination::Addresses(addrs) => {
                    claims.extend(
                        addrs
                            .iter()
                            .filter(|a| Family::of(**a) == family)
                            .map(|a| Claim::Address(*a)),
                    );
                    // In address order, once each (what names the address in an error).
                    if claims.len() > 1 {
                        claims.sort_unstable_by_key(|c| match c {
                            Claim::Address(a) => Some(*a),
                            Claim::AnyLocal(_) => None,
                        });
                        claims.dedup();
                    }
                }
            }
            for &claim in &claims {
                let conflict = match claim {
                    Claim::AnyLocal(_) => exact
                        .get(&(claim, fe.protocol, fe.port))
                        .map(|i| (*i, "any local address".to_string()))
                        .or_else(|| bound.get(&fpp).map(|(i, a)| (*i, a.to_string()))),
                    Claim::Address(addr) => exact
                        .get(&(claim, fe.protocol, fe.port))
                        .or_else(|| local.get(&fpp))
                        .map(|i| (*i, addr.to_string())),
                };
                if let Some((first, on)) = conflict {
                    if first != index {
                        errors.push(RulesetError::Overlap {
                            first: frontends[first].name.clone(),
                            second: fe.name.clone(),
                            family,
                            protocol: fe.protocol,
                            port: fe.port,
                            on,
                        });
                    }
                    continue;
                }
                exact.insert((claim, fe.protocol, fe.port), index);
                match claim {
                    Claim::AnyLocal(_) => {
                        local.insert(fpp, index);
                    }
                    Claim::Address(addr) => {
                        bound.entry(fpp).or_insert((index, addr));
                    }
                }
            }
        }
    }
    errors
}

fn name_problem(name: &str) -> Option<&'static str> {
    if name.len() > FRONTEND_NAME_MAX {
        Some("longer than 253 characters")
    } else if name
        .chars()
        .any(|c| c.is_control() || c == '"' || c == '\\')
    {
        Some("it contains a control character, '\"' or '\\'")
    } else {
        None
    }
}

fn address_problem(addr: IpAddr) -> Option<&'static str> {
    if addr.is_unspecified() {
        Some("unspecified")
    } else if addr.is_multicast() {
        Some("multicast")
    } else if let IpAddr::V4(v4) = addr {
        v4.is_broadcast().then_some("the broadcast address")
    } else {
        None
    }
}

/// `10.0.0.1:80` / `[fd00::1]:80`.
pub(crate) fn backend_text(backend: &Backend) -> String {
    std::net::SocketAddr::new(backend.addr, backend.port).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Selection;

    fn fe(name: &str, dest: Destination, port: u16, backends: &[&str]) -> Frontend {
        Frontend {
            name: name.to_string(),
            destination: dest,
            protocol: Protocol::Tcp,
            port,
            source_ranges: vec![],
            backends: backends
                .iter()
                .map(|b| {
                    let sa: std::net::SocketAddr = b.parse().unwrap();
                    Backend {
                        addr: sa.ip(),
                        port: sa.port(),
                    }
                })
                .collect(),
            selection: Selection::Random,
            masquerade: true,
        }
    }

    fn addrs(list: &[&str]) -> Destination {
        Destination::Addresses(list.iter().map(|a| a.parse().unwrap()).collect())
    }

    fn errors(frontends: Vec<Frontend>) -> Vec<String> {
        let rs = Ruleset {
            table: "dualstack".into(),
            guard: Vec::new(),
            frontends,
        };
        match validate(&rs) {
            Ok(()) => vec![],
            Err(InvalidRuleset(e)) => e.iter().map(|e| e.to_string()).collect(),
        }
    }

    #[test]
    fn names_that_get_the_same_chain_name_are_refused_naming_both_and_the_chain() {
        // Names whose sanitized part is the same (`ns/` and symbols that all become `_`)
        // and whose 32-bit hashes collide: a birthday search over such names finds a pair
        // after some tens of thousands.
        const SYMBOLS: &[u8] = b"!#$%&'()*+,:;<=>?@[]^`{|}~";
        let mut seen: std::collections::HashMap<u32, String> = Default::default();
        let mut pair = None;
        for i in 0u64..2_000_000 {
            let mut name = String::from("ns/");
            let mut n = i;
            for _ in 0..6 {
                name.push(char::from(SYMBOLS[(n % SYMBOLS.len() as u64) as usize]));
                n /= SYMBOLS.len() as u64;
            }
            let hash = names::fnv1a64(&name) as u32;
            if let Some(first) = seen.insert(hash, name.clone()) {
                pair = Some((first, name));
                break;
            }
        }
        let (first, second) = pair.expect("a 32-bit collision among 2,000,000 names");
        assert_ne!(first, second);
        let chain = names::frontend_id(&first);
        assert_eq!(chain, names::frontend_id(&second));
        let two = ["10.42.0.5:80", "10.42.0.6:80"];
        let dest = || addrs(&["192.0.2.10"]);
        let errs = errors(vec![
            fe(&first, dest(), 80, &two),
            fe(&second, dest(), 81, &two),
        ]);
        assert_eq!(errs.len(), 1, "{errs:?}");
        assert!(
            errs[0].contains(&format!("{first:?}"))
                && errs[0].contains(&format!("{second:?}"))
                && errs[0].contains(&chain),
            "{errs:?}"
        );
        // Different names that only sanitize alike are fine (the hash keeps them apart).
        assert_eq!(
            errors(vec![
                fe("ns/a!b", dest(), 80, &two),
                fe("ns/a?b", dest(), 81, &two)
            ]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn table_names() {
        for ok in ["dualstack", "ds-test_1", "a"] {
            assert_eq!(validate_table_name(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("", "empty"),
            ("1abc", "start with"),
            ("a b", "only ASCII"),
            ("a;flush ruleset", "only ASCII"),
            ("a\"", "only ASCII"),
        ] {
            let e = validate_table_name(bad).unwrap_err().to_string();
            assert!(e.contains(why) && e.contains(&format!("{bad:?}")), "{e}");
        }
        assert!(validate_table_name(&"a".repeat(65)).is_err());
    }

    #[test]
    fn single_frontend_problems_name_the_frontend_and_value() {
        let cases: Vec<(Frontend, &str)> = vec![
            (
                fe("", Destination::AnyLocal, 80, &["10.0.0.2:80"]),
                "frontend #0: name is empty",
            ),
            (
                fe("web", Destination::AnyLocal, 0, &["10.0.0.2:80"]),
                "frontend \"web\": port 0",
            ),
            (
                fe("web", Destination::AnyLocal, 80, &["10.0.0.2:0"]),
                "backend 10.0.0.2:0 has port 0",
            ),
            (
                fe("web", addrs(&[]), 80, &["10.0.0.2:80"]),
                "destination address list is empty",
            ),
            (
                fe("web", addrs(&["10.0.0.1", "10.0.0.1"]), 80, &[]),
                "destination address 10.0.0.1 is listed twice",
            ),
            (
                fe("web", addrs(&["0.0.0.0"]), 80, &[]),
                "destination address 0.0.0.0 is unspecified",
            ),
            (
                fe("web", Destination::AnyLocal, 80, &["[ff02::1]:80"]),
                "backend address ff02::1 is multicast",
            ),
            (
                fe(
                    "web",
                    Destination::AnyLocal,
                    80,
                    &["10.0.0.2:80", "10.0.0.2:80"],
                ),
                "backend 10.0.0.2:80 is listed twice",
            ),
            (
                fe("web", addrs(&["10.0.0.1"]), 80, &["[fd00::2]:80"]),
                "frontend \"web\": ipv6 backend [fd00::2]:80, but the frontend has no ipv6 destination",
            ),
            (
                fe("we\"b", Destination::AnyLocal, 80, &[]),
                "name is invalid",
            ),
        ];
        for (frontend, want) in cases {
            let got = errors(vec![frontend.clone()]);
            assert!(
                got.iter().any(|e| e.contains(want)),
                "{frontend:?}: want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn valid_frontends_pass() {
        assert_eq!(
            errors(vec![
                fe(
                    "a",
                    addrs(&["10.0.0.1", "fd00::1"]),
                    80,
                    &["10.1.0.2:8080", "[fd01::2]:8080"]
                ),
                fe("b", Destination::AnyLocal, 81, &["[fd01::3]:80"]),
                // Same port, other protocol.
                Frontend {
                    protocol: Protocol::Udp,
                    ..fe("c", Destination::AnyLocal, 80, &["10.1.0.3:80"])
                },
                // No backends: not served, so no overlap with "a".
                fe("d", addrs(&["10.0.0.1"]), 80, &[]),
            ]),
            Vec::<String>::new()
        );
    }

    #[test]
    fn overlaps_name_both_frontends() {
        let cases = vec![
            (
                vec![
                    fe("a", addrs(&["10.0.0.1"]), 80, &["10.1.0.2:80"]),
                    fe("b", addrs(&["10.0.0.1"]), 80, &["10.1.0.3:80"]),
                ],
                "frontends \"a\" and \"b\" both take ipv4 tcp port 80 on 10.0.0.1",
            ),
            (
                vec![
                    fe("a", addrs(&["10.0.0.1"]), 80, &["10.1.0.2:80"]),
                    fe("b", Destination::AnyLocal, 80, &["10.1.0.3:80"]),
                ],
                "frontends \"a\" and \"b\" both take ipv4 tcp port 80 on 10.0.0.1",
            ),
            (
                vec![
                    fe("a", Destination::AnyLocal, 443, &["[fd00::2]:80"]),
                    fe("b", addrs(&["fd00::1"]), 443, &["[fd00::3]:80"]),
                ],
                "frontends \"a\" and \"b\" both take ipv6 tcp port 443 on fd00::1",
            ),
            (
                vec![
                    fe("a", Destination::AnyLocal, 53, &["10.1.0.2:53"]),
                    fe("b", Destination::AnyLocal, 53, &["10.1.0.3:53"]),
                ],
                "both take ipv4 tcp port 53 on any local address",
            ),
            (
                vec![
                    fe("a", Destination::AnyLocal, 53, &["10.1.0.2:53"]),
                    fe("a", Destination::AnyLocal, 54, &["10.1.0.3:53"]),
                ],
                "frontends #0 and #1 are both named \"a\"",
            ),
        ];
        for (frontends, want) in cases {
            let got = errors(frontends);
            assert!(
                got.iter().any(|e| e.contains(want)),
                "want {want:?}, got {got:?}"
            );
        }
    }

    #[test]
    fn all_errors_are_reported_together() {
        let got = errors(vec![
            fe("a", Destination::AnyLocal, 0, &["10.1.0.2:0"]),
            fe("", Destination::AnyLocal, 1, &[]),
        ]);
        assert_eq!(got.len(), 3, "{got:?}");
    }
}
