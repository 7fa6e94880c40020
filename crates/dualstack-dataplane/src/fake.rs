//! An in-memory [`Dataplane`] for tests without root: it keeps our table as the kernel
//! would (map elements and non-base chains, from the same plan the renderers use), applies
//! each transaction atomically (validated first; a failing one changes nothing, as a
//! refused batch does), can be told to fail the next transaction or be tampered with
//! behind the engine's back, and answers "where does a packet to addr/proto/port go".

use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use dualstack_addr::Family;
use dualstack_ruleset::nft::{self as render, Body, ChainRole, Element, Key, MapKind, Value};
use dualstack_ruleset::{
    Backend, Frontend, InvalidRuleset, Protocol, Ruleset, validate, validate_frontend,
    validate_table_name,
};

use crate::readback::Observed;
use crate::{Dataplane, DataplaneError};

/// What happens to the first packet of a new connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fate {
    /// Not ours: passes our table untouched.
    NotOurs,
    /// Dropped by a source-range check.
    Dropped,
    /// DNATed to one of `backends` (one of them chosen per connection), masqueraded or not.
    Dnat {
        /// The backends the connection may be sent to: one for a direct DNAT map element,
        /// every backend of the frontend's pick chain when one is chosen per connection.
        backends: Vec<Backend>,
        /// Whether the source address is masqueraded too (rewritten to this node's), so
        /// replies come back through this node.
        masquerade: bool,
    },
}

/// One transaction the fake was asked to run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transaction {
    /// [`Dataplane::apply`]: the whole table replaced by a ruleset of this many frontends.
    Full {
        /// Number of frontends in the applied ruleset.
        frontends: usize,
    },
    /// [`Dataplane::apply_changes`]: frontends removed, then added, in one transaction.
    Changes {
        /// Number of frontends removed.
        removed: usize,
        /// Number of frontends added.
        added: usize,
    },
    /// [`Dataplane::cleanup`]: our table deleted.
    Cleanup,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct Table {
    elements: BTreeMap<(&'static str, Key), Element>,
    chains: BTreeMap<std::sync::Arc<str>, Body>,
}

impl Table {
    /// The table `frontends` plan to.
    fn of(frontends: &[Frontend]) -> Table {
        let mut t = Table::default();
        for p in frontends.iter().map(render::plan) {
            for el in p.elements {
                t.elements.insert((el.map, el.key), el);
            }
            for c in p.chains {
                t.chains.insert(c.name, c.body);
            }
        }
        t
    }
}

#[derive(Debug, Default)]
struct State {
    table: Option<Table>,
    fail_next: Option<String>,
    log: Vec<Transaction>,
}

/// The fake data plane. Clones share one table.
#[derive(Debug, Clone)]
pub struct Fake {
    table: String,
    local: Arc<BTreeSet<IpAddr>>,
    state: Arc<Mutex<State>>,
}

fn refused(what: String) -> DataplaneError {
    DataplaneError::Failed {
        command: "fake transaction".into(),
        stderr: what,
    }
}

impl Fake {
    /// A fake for `table`; `local` are the addresses `fib daddr type local` matches.
    pub fn new(table: &str, local: impl IntoIterator<Item = IpAddr>) -> Fake {
        Fake {
            table: table.to_string(),
            local: Arc::new(local.into_iter().collect()),
            state: Arc::default(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The next transaction fails with `reason` and changes nothing.
    pub fn fail_next(&self, reason: &str) {
        self.lock().fail_next = Some(reason.to_string());
    }

    /// Every transaction run so far (failed ones included), oldest first.
    pub fn transactions(&self) -> Vec<Transaction> {
        self.lock().log.clone()
    }

    /// Whether our table exists.
    pub fn has_table(&self) -> bool {
        self.lock().table.is_some()
    }

    /// Someone else deletes an element (drift).
    pub fn tamper_remove_element(&self, map: &str, key: Key) {
        if let Some(t) = self.lock().table.as_mut() {
            t.elements.retain(|(m, k), _| !(*m == map && *k == key));
        }
    }

    /// Someone else deletes our table (drift).
    pub fn tamper_delete_table(&self) {
        self.lock().table = None;
    }

    fn transact(
        &self,
        log: Transaction,
        f: impl FnOnce(Option<Table>) -> Result<Option<Table>, DataplaneError>,
    ) -> Result<(), DataplaneError> {
        let mut state = self.lock();
        state.log.push(log);
        if let Some(reason) = state.fail_next.take() {
            return Err(DataplaneError::Injected(reason));
        }
        let next = f(state.table.clone())?;
        state.table = next;
        Ok(())
    }

    /// Where the first packet of a new connection from `src` to `dst`, `protocol`/`port`
    /// goes, walking the table as the kernel does (source ranges first, then NAT:
    /// address-bound maps before `AnyLocal` ones).
    pub fn route(&self, src: IpAddr, dst: IpAddr, protocol: Protocol, port: u16) -> Fate {
        let state = self.lock();
        let Some(t) = state.table.as_ref() else {
            return Fate::NotOurs;
        };
        let family = Family::of(dst);
        if Family::of(src) != family {
            return Fate::NotOurs;
        }
        let addr_key = Key::Address(dst, protocol, port);
        let local_key = Key::Local(family, protocol, port);
        let local = self.local.contains(&dst);
        let find = |kind: MapKind| -> Option<&Element> {
            t.elements
                .get(&(addr_key.map_name(kind), addr_key))
                .or_else(|| {
                    local
                        .then(|| t.elements.get(&(local_key.map_name(kind), local_key)))
                        .flatten()
                })
        };
        if let Some(el) = find(MapKind::Firewall) {
            match &el.value {
                Value::Drop => return Fate::Dropped,
                Value::Goto(chain) => match t.chains.get(chain) {
                    Some(Body::Allow(_, nets)) if nets.iter().any(|n| n.contains(&src)) => {}
                    _ => return Fate::Dropped,
                },
                Value::Dnat(_) => {}
            }
        }
        for (kind, masquerade) in [(MapKind::DnatMasquerade, true), (MapKind::Dnat, false)] {
            for key in [Some(addr_key), local.then_some(local_key)]
                .into_iter()
                .flatten()
            {
                if let Some(Element {
                    value: Value::Dnat(b),
                    ..
                }) = t.elements.get(&(key.map_name(kind), key))
                {
                    return Fate::Dnat {
                        backends: vec![*b],
                        masquerade,
                    };
                }
            }
            if kind == MapKind::Dnat {
                break;
            }
        }
        if let Some(Element {
            value: Value::Goto(chain),
            ..
        }) = find(MapKind::Nat)
            && let Some(Body::Pick {
                backends,
                masquerade,
                ..
            }) = t.chains.get(chain)
        {
            return Fate::Dnat {
                backends: backends.clone(),
                masquerade: *masquerade,
            };
        }
        Fate::NotOurs
    }
}

fn check_table(handle: &str, ruleset: &Ruleset) -> Result<(), DataplaneError> {
    if ruleset.table == handle {
        Ok(())
    } else {
        Err(DataplaneError::WrongTable {
            handle: handle.to_string(),
            ruleset: ruleset.table.clone(),
        })
    }
}

impl Dataplane for Fake {
    fn table(&self) -> &str {
        &self.table
    }

    fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        check_table(&self.table, ruleset)?;
        validate(ruleset)?;
        self.transact(
            Transaction::Full {
                frontends: ruleset.frontends.len(),
            },
            |_| Ok(Some(Table::of(&ruleset.frontends))),
        )
    }

    /// The fake proves "untouched" by content: the table must equal what `previous` plans
    /// to (a tampered element or a deleted table make it differ).
    fn apply_changes_if_untouched(
        &self,
        previous: &[Frontend],
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<bool, DataplaneError> {
        if self.lock().table.as_ref() != Some(&Table::of(previous)) {
            return Ok(false);
        }
        self.apply_changes(remove, add).map(|()| true)
    }

    fn apply_changes(&self, remove: &[Frontend], add: &[Frontend]) -> Result<(), DataplaneError> {
        let mut errors = Vec::new();
        if let Err(e) = validate_table_name(&self.table) {
            errors.push(e);
        }
        for (i, fe) in remove.iter().chain(add).enumerate() {
            errors.extend(validate_frontend(i, fe));
        }
        if !errors.is_empty() {
            return Err(InvalidRuleset(errors).into());
        }
        let log = Transaction::Changes {
            removed: remove.len(),
            added: add.len(),
        };
        self.transact(log, |table| {
            let mut t = table.ok_or_else(|| refused("no such table".into()))?;
            for p in remove.iter().map(render::plan) {
                for el in &p.elements {
                    if t.elements.remove(&(el.map, el.key)).is_none() {
                        return Err(refused(format!(
                            "no element {} in {}",
                            el.key_text(),
                            el.map
                        )));
                    }
                }
                for c in p.chains.iter().filter(|c| c.role == ChainRole::Frontend) {
                    if t.chains.remove(&c.name).is_none() {
                        return Err(refused(format!("no chain {}", c.name)));
                    }
                }
            }
            for p in add.iter().map(render::plan) {
                for c in p.chains {
                    t.chains.insert(c.name, c.body);
                }
                for el in p.elements {
                    match t.elements.get(&(el.map, el.key)) {
                        Some(old) if old.value != el.value => {
                            return Err(refused(format!(
                                "element {} exists in {}",
                                el.key_text(),
                                el.map
                            )));
                        }
                        _ => {
                            t.elements.insert((el.map, el.key), el);
                        }
                    }
                }
            }
            Ok(Some(t))
        })
    }

    fn observe(&self) -> Result<Option<Observed>, DataplaneError> {
        let state = self.lock();
        Ok(state.table.as_ref().map(|t| {
            let (base, _) = render::skeleton();
            let mut o = Observed {
                chains: base.iter().map(|c| c.to_string()).collect(),
                ..Observed::default()
            };
            o.chains.extend(t.chains.keys().map(|k| k.to_string()));
            for el in t.elements.values() {
                match &el.value {
                    Value::Goto(c) => {
                        o.elements
                            .insert((el.map.to_string(), el.key_text(), c.to_string()));
                    }
                    _ => {
                        o.other_elements.insert((
                            el.map.to_string(),
                            el.key_text(),
                            el.value_text(),
                        ));
                    }
                }
            }
            o
        }))
    }

    fn cleanup(&self) -> Result<(), DataplaneError> {
        self.transact(Transaction::Cleanup, |_| Ok(None))
    }

    fn kind(&self) -> &'static str {
        "fake"
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use dualstack_ruleset::{Destination, Selection};

    fn fe(name: &str, port: u16, ranges: &[&str], backends: &[&str], masq: bool) -> Frontend {
        Frontend {
            name: name.into(),
            destination: Destination::Addresses(vec!["192.0.2.1".parse().unwrap()]),
            protocol: Protocol::Tcp,
            port,
            source_ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
            backends: backends
                .iter()
                .map(|b| Backend {
                    addr: b.parse().unwrap(),
                    port: 80,
                })
                .collect(),
            selection: Selection::Random,
            masquerade: masq,
        }
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn routes_like_the_table_says_and_transactions_are_atomic() {
        let fake = Fake::new("dualstack", [ip("192.0.2.1")]);
        let a = fe("a", 80, &["10.0.0.0/8"], &["10.42.0.1", "10.42.0.2"], true);
        let b = fe("b", 81, &["0.0.0.0/0"], &["10.42.0.3"], false);
        let rs = Ruleset {
            table: "dualstack".into(),
            frontends: vec![a.clone(), b.clone()],
            guard: Vec::new(),
        };
        fake.apply(&rs).unwrap();
        let to = ip("192.0.2.1");
        assert_eq!(
            fake.route(ip("10.1.1.1"), to, Protocol::Tcp, 80),
            Fate::Dnat {
                backends: a.backends.clone(),
                masquerade: true
            }
        );
        assert_eq!(
            fake.route(ip("11.1.1.1"), to, Protocol::Tcp, 80),
            Fate::Dropped
        );
        assert_eq!(
            fake.route(ip("11.1.1.1"), to, Protocol::Tcp, 81),
            Fate::Dnat {
                backends: b.backends.clone(),
                masquerade: false
            }
        );
        assert_eq!(
            fake.route(ip("11.1.1.1"), to, Protocol::Udp, 81),
            Fate::NotOurs
        );

        // A failing transaction changes nothing.
        let before = fake.observe().unwrap();
        fake.fail_next("boom");
        assert!(fake.apply_changes(std::slice::from_ref(&b), &[]).is_err());
        assert_eq!(fake.observe().unwrap(), before);
        // Removing what is not there is refused whole, like the kernel does.
        let c = fe("c", 82, &["0.0.0.0/0"], &["10.42.0.9"], false);
        assert!(fake.apply_changes(&[b.clone(), c], &[]).is_err());
        assert_eq!(fake.observe().unwrap(), before);
        fake.apply_changes(&[b], &[]).unwrap();
        assert_eq!(
            fake.route(ip("11.1.1.1"), to, Protocol::Tcp, 81),
            Fate::NotOurs
        );
        assert!(fake.drift(&rs).unwrap().is_some_and(|d| !d.is_empty()));
        fake.cleanup().unwrap();
        assert!(!fake.has_table());
    }
}
