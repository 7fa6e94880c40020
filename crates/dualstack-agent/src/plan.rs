//! How to get from the frontends applied last to the ones wanted now (pure): nothing, an
//! incremental transaction (only the frontends that changed), or, for many changes, a full
//! one unless the data plane can prove its table is still what it applied last (then the
//! difference is sent instead: [`Plan::Many`]).

use std::collections::BTreeMap;

use dualstack_ruleset::Frontend;

/// Incremental transactions are used up to this many changed frontends; above it a full
/// transaction is as cheap and simpler to reason about.
pub const DEFAULT_MAX_INCREMENTAL: usize = 64;

/// What a sync has to do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Plan {
    /// The kernel already has exactly these frontends.
    Unchanged,
    /// Replace the whole table (first sync, or duplicate names).
    Full,
    /// Remove the old versions of changed/removed frontends, add the new versions of
    /// changed/added ones, in one transaction.
    Incremental {
        /// The frontends to take out, as they are in the kernel now.
        remove: Vec<Frontend>,
        /// The frontends to put in, as they should be.
        add: Vec<Frontend>,
    },
    /// More changes than the incremental limit: a full transaction, unless the data plane
    /// proves nothing changed its table since its own last commit
    /// (`Dataplane::apply_changes_if_untouched`); then this difference is sent instead.
    Many {
        /// The frontends to take out, as they are in the kernel now.
        remove: Vec<Frontend>,
        /// The frontends to put in, as they should be.
        add: Vec<Frontend>,
    },
}

/// Compares what was applied (`None`: nothing known, e.g. at start) with what is wanted.
/// Frontends are matched by name; a frontend whose name is unchanged but whose content
/// differs is removed and re-added. More than `max_changes` changed frontends (counting
/// each removed, added and changed one once) gives [`Plan::Many`].
pub fn plan(previous: Option<&[Frontend]>, next: &[Frontend], max_changes: usize) -> Plan {
    let Some(previous) = previous else {
        return Plan::Full;
    };
    let old: BTreeMap<&str, &Frontend> = previous.iter().map(|f| (f.name.as_str(), f)).collect();
    let new: BTreeMap<&str, &Frontend> = next.iter().map(|f| (f.name.as_str(), f)).collect();
    if old.len() != previous.len() || new.len() != next.len() {
        // Duplicate names: validation rejects them later; never diff by an ambiguous key.
        return Plan::Full;
    }
    let mut remove = Vec::new();
    let mut add = Vec::new();
    let mut changed = 0usize;
    for (name, fe) in &old {
        match new.get(name) {
            Some(n) if n == fe => {}
            Some(n) => {
                remove.push((*fe).clone());
                add.push((*n).clone());
                changed += 1;
            }
            None => {
                remove.push((*fe).clone());
                changed += 1;
            }
        }
    }
    for (name, fe) in &new {
        if !old.contains_key(name) {
            add.push((*fe).clone());
            changed += 1;
        }
    }
    if changed == 0 {
        Plan::Unchanged
    } else if changed > max_changes {
        Plan::Many { remove, add }
    } else {
        Plan::Incremental { remove, add }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualstack_ruleset::{Backend, Destination, Protocol, Selection};
    use proptest::prelude::*;

    fn fe(name: &str, port: u16, backend: &str) -> Frontend {
        Frontend {
            name: name.to_string(),
            destination: Destination::Addresses(vec!["192.0.2.10".parse().unwrap()]),
            protocol: Protocol::Tcp,
            port,
            source_ranges: vec!["0.0.0.0/0".parse().unwrap()],
            backends: vec![Backend {
                addr: backend.parse().unwrap(),
                port: 8080,
            }],
            selection: Selection::Random,
            masquerade: true,
        }
    }

    fn names(list: &[Frontend]) -> Vec<&str> {
        list.iter().map(|f| f.name.as_str()).collect()
    }

    #[test]
    fn steps() {
        let a = fe("ns/a:http", 80, "10.42.0.5");
        let a2 = fe("ns/a:http", 80, "10.42.0.6");
        let b = fe("ns/b:http", 81, "10.42.0.7");
        let c = fe("ns/c:http", 82, "10.42.0.8");
        struct Step<'a> {
            desc: &'a str,
            previous: Option<Vec<Frontend>>,
            next: Vec<Frontend>,
            max: usize,
            want: Result<(Vec<&'a str>, Vec<&'a str>), Plan>,
        }
        let steps = [
            Step {
                desc: "nothing known yet: full",
                previous: None,
                next: vec![a.clone()],
                max: 64,
                want: Err(Plan::Full),
            },
            Step {
                desc: "same frontends in another order: unchanged",
                previous: Some(vec![a.clone(), b.clone()]),
                next: vec![b.clone(), a.clone()],
                max: 64,
                want: Err(Plan::Unchanged),
            },
            Step {
                desc: "empty to empty: unchanged",
                previous: Some(vec![]),
                next: vec![],
                max: 64,
                want: Err(Plan::Unchanged),
            },
            Step {
                desc: "one backend changed: remove old, add new",
                previous: Some(vec![a.clone(), b.clone()]),
                next: vec![a2.clone(), b.clone()],
                max: 64,
                want: Ok((vec!["ns/a:http"], vec!["ns/a:http"])),
            },
            Step {
                desc: "one added, one removed",
                previous: Some(vec![a.clone(), b.clone()]),
                next: vec![a.clone(), c.clone()],
                max: 64,
                want: Ok((vec!["ns/b:http"], vec!["ns/c:http"])),
            },
            Step {
                desc: "more changes than allowed: many (full unless the plane proves its table untouched)",
                previous: Some(vec![a.clone()]),
                next: vec![a2.clone(), b.clone(), c.clone()],
                max: 2,
                want: Err(Plan::Many {
                    remove: vec![a.clone()],
                    add: vec![a2.clone(), b.clone(), c.clone()],
                }),
            },
            Step {
                desc: "exactly the allowed number of changes: incremental",
                previous: Some(vec![a.clone()]),
                next: vec![a.clone(), b.clone(), c.clone()],
                max: 2,
                want: Ok((vec![], vec!["ns/b:http", "ns/c:http"])),
            },
            Step {
                desc: "duplicate names: full (validation reports them)",
                previous: Some(vec![a.clone()]),
                next: vec![a.clone(), a2.clone()],
                max: 64,
                want: Err(Plan::Full),
            },
        ];
        for step in steps {
            let got = plan(step.previous.as_deref(), &step.next, step.max);
            match (&got, &step.want) {
                (Plan::Incremental { remove, add }, Ok((r, a))) => {
                    assert_eq!((&names(remove), &names(add)), (r, a), "{}", step.desc);
                }
                (got, Err(want)) => assert_eq!(got, want, "{}", step.desc),
                (got, want) => panic!("{}: got {got:?}, want {want:?}", step.desc),
            }
        }
    }

    fn frontends() -> impl Strategy<Value = Vec<Frontend>> {
        proptest::collection::btree_map(0u16..20, 1u8..4, 0..12).prop_map(|m| {
            m.into_iter()
                .map(|(port, b)| {
                    fe(
                        &format!("ns/s{port}:p"),
                        1000 + port,
                        &format!("10.42.0.{b}"),
                    )
                })
                .collect()
        })
    }

    proptest! {
        /// Applying an incremental plan, or the difference of a [`Plan::Many`], to the
        /// previous set gives exactly the next set; `Many` only beyond the limit.
        #[test]
        fn incremental_plan_transforms_previous_into_next(
            prev in frontends(),
            next in frontends(),
            max in prop_oneof![Just(usize::MAX), 0usize..4],
        ) {
            match plan(Some(&prev), &next, max) {
                Plan::Unchanged => {
                    let mut p = prev.clone();
                    let mut n = next.clone();
                    p.sort();
                    n.sort();
                    prop_assert_eq!(p, n);
                }
                Plan::Full => prop_assert!(false, "a known previous set never gives Full"),
                Plan::Incremental { remove, add } | Plan::Many { remove, add } => {
                    let mut result: Vec<Frontend> =
                        prev.iter().filter(|f| !remove.contains(f)).cloned().collect();
                    result.extend(add);
                    result.sort();
                    let mut n = next.clone();
                    n.sort();
                    prop_assert_eq!(result, n);
                }
            }
        }

        /// `Many` exactly when more frontends changed than the limit.
        #[test]
        fn many_only_beyond_the_limit(prev in frontends(), next in frontends(), max in 0usize..4) {
            let unlimited = plan(Some(&prev), &next, usize::MAX);
            let limited = plan(Some(&prev), &next, max);
            if let Plan::Incremental { remove, add } = unlimited {
                let names: std::collections::BTreeSet<&str> =
                    remove.iter().chain(&add).map(|f| f.name.as_str()).collect();
                let want_many = names.len() > max;
                prop_assert_eq!(matches!(limited, Plan::Many { .. }), want_many);
                prop_assert_eq!(matches!(limited, Plan::Incremental { .. }), !want_many);
            }
        }
    }
}
