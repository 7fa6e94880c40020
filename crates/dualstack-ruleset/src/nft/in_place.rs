//! Replacing our table in place: what a full sync does when the table already exists.
//!
//! Deleting the table and declaring it anew in one transaction is atomic for the rules, but
//! not for a packet crossing the commit: the new table's base chains are new hooks,
//! registered while the batch is prepared and (at equal priority) run *before* the old ones,
//! so a first packet that runs the new, still empty NAT chain just before the generation
//! flips and the old, just emptied one just after meets no rule and leaves un-NATed
//! (RELIABILITY.md § 2). A map deleted in the batch has the same hole: its elements turn
//! inactive at the flip while a packet that started in the old generation may still look in
//! it.
//!
//! So when the table exists, a full sync keeps the table, its base chains and every map
//! whose declaration still fits, and changes only what is inside them:
//! 1. every chain there is flushed (its rules go at the flip, the new ones come at the same
//!    flip: one hook, one chain, rules switching atomically), and every kept map flushed
//!    (an element with the same key is re-added in the same batch, so a lookup finds the old
//!    or the new one, never none);
//! 2. then what the new ruleset no longer has is deleted: chains (including a pool guard
//!    that is no longer wanted), maps that are not ours, and maps too small for their new
//!    element count (the kernel does not change a map's `size` on re-declaration; such a
//!    map is declared anew, which only happens when it outgrows its capacity);
//! 3. then the table body is declared as for a fresh table: existing objects are left as
//!    they are by a declaration without "exclusive", new ones are created, and every rule
//!    and element is added.
//!
//! A kept map keeps its (larger or equal) capacity, so after shrinking `nft list` may show a
//! larger `size` than a fresh table would; nothing else differs. [`InPlace::plan`] decides
//! all of it from what the kernel has ([`Present`]); the text renderer
//! ([`super::render_full_in_place`]) and the netlink encoder both follow the plan.

use std::collections::{BTreeMap, BTreeSet};

use super::layout::{STORES, base_chains, guard_chain};
use super::map_capacity;
use super::plan::FrontendPlan;
use crate::model::Ruleset;

/// What of our table is in the kernel before a full sync: chain names and named maps with
/// their declared capacity (`size`; 0 when none was declared).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Present {
    /// Every chain of the table, base chains included.
    pub chains: BTreeSet<String>,
    /// Every named set or map of the table and its declared `size`.
    pub maps: BTreeMap<String, u32>,
}

/// The steps of an in-place replace (see the module documentation), in the order they
/// are sent.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InPlace {
    /// Present chains, all flushed first.
    pub flush_chains: Vec<String>,
    /// Present maps that are kept, flushed first.
    pub flush_maps: Vec<String>,
    /// Present chains the ruleset does not have, deleted after the flushes.
    pub delete_chains: Vec<String>,
    /// Present maps that are not ours or too small, deleted after the flushes.
    pub delete_maps: Vec<String>,
    /// The capacity each of our maps is declared with: the present one for a kept map,
    /// [`map_capacity`] of its element count otherwise.
    pub capacity: BTreeMap<&'static str, u32>,
}

impl InPlace {
    /// The plan for replacing `present` with `ruleset`, whose frontends plan as `plans`.
    pub fn plan(ruleset: &Ruleset, plans: &[FrontendPlan], present: &Present) -> InPlace {
        let mut wanted: BTreeSet<&str> = base_chains().into_iter().map(|(n, _, _)| n).collect();
        if let Some((guard, _, _)) = guard_chain(&ruleset.guard) {
            wanted.insert(guard);
        }
        wanted.extend(plans.iter().flat_map(|p| &p.chains).map(|c| &*c.name));

        // Elements per map, in the order of `STORES` (a handful: a linear scan is cheaper
        // than a tree for tens of thousands of elements).
        let mut count = [0usize; STORES.len()];
        for el in plans.iter().flat_map(|p| &p.elements) {
            if let Some(i) = STORES.iter().position(|s| s.name == el.map) {
                count[i] += 1;
            }
        }

        let mut out = InPlace {
            flush_chains: present.chains.iter().cloned().collect(),
            delete_chains: present
                .chains
                .iter()
                .filter(|c| !wanted.contains(c.as_str()))
                .cloned()
                .collect(),
            ..InPlace::default()
        };
        for (store, &count) in STORES.iter().zip(&count) {
            let needed = map_capacity(count);
            let declared = match present.maps.get(store.name) {
                Some(&size) if size >= needed => {
                    out.flush_maps.push(store.name.to_string());
                    size
                }
                Some(_) => {
                    out.delete_maps.push(store.name.to_string());
                    needed
                }
                None => needed,
            };
            out.capacity.insert(store.name, declared);
        }
        out.delete_maps.extend(
            present
                .maps
                .keys()
                .filter(|m| !STORES.iter().any(|s| s.name == m.as_str()))
                .cloned(),
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::super::plan_all;
    use super::*;
    use crate::model::{Backend, Destination, Frontend, Protocol};

    fn ruleset(ports: &[u16]) -> Ruleset {
        Ruleset {
            table: "dualstack".into(),
            guard: Vec::new(),
            frontends: ports
                .iter()
                .map(|&port| Frontend {
                    name: format!("default/web-{port}"),
                    destination: Destination::Addresses(vec!["192.0.2.10".parse().unwrap()]),
                    protocol: Protocol::Tcp,
                    port,
                    source_ranges: vec!["10.0.0.0/8".parse().unwrap()],
                    // Two backends: the frontend gets its own chain.
                    backends: ["10.42.0.7", "10.42.0.8"]
                        .iter()
                        .map(|a| Backend {
                            addr: a.parse().unwrap(),
                            port: 8080,
                        })
                        .collect(),
                    selection: Default::default(),
                    masquerade: true,
                })
                .collect(),
        }
    }

    fn present_of(rs: &Ruleset) -> Present {
        let plans = plan_all(&rs.frontends);
        let mut chains: BTreeSet<String> = base_chains()
            .into_iter()
            .map(|(n, _, _)| n.to_string())
            .collect();
        chains.extend(
            plans
                .iter()
                .flat_map(|p| &p.chains)
                .map(|c| c.name.to_string()),
        );
        let plan = InPlace::plan(rs, &plans, &Present::default());
        Present {
            chains,
            maps: plan
                .capacity
                .iter()
                .map(|(m, c)| (m.to_string(), *c))
                .collect(),
        }
    }

    #[test]
    fn an_empty_kernel_gets_everything_declared_and_nothing_flushed_or_deleted() {
        let rs = ruleset(&[80]);
        let plans = plan_all(&rs.frontends);
        let plan = InPlace::plan(&rs, &plans, &Present::default());
        assert!(plan.flush_chains.is_empty() && plan.flush_maps.is_empty());
        assert!(plan.delete_chains.is_empty() && plan.delete_maps.is_empty());
        assert_eq!(plan.capacity.len(), STORES.len());
        assert!(plan.capacity.values().all(|&c| c == map_capacity(0)));
    }

    #[test]
    fn chains_the_new_ruleset_lacks_are_deleted_and_base_chains_kept() {
        let before = ruleset(&[80, 443]);
        let after = ruleset(&[443]);
        let present = present_of(&before);
        let plans = plan_all(&after.frontends);
        let plan = InPlace::plan(&after, &plans, &present);
        assert_eq!(plan.flush_chains.len(), present.chains.len());
        let gone: Vec<&str> = plan.delete_chains.iter().map(String::as_str).collect();
        let kept: BTreeSet<&str> = plans
            .iter()
            .flat_map(|p| &p.chains)
            .map(|c| &*c.name)
            .collect();
        assert!(
            !gone.is_empty(),
            "the port-80 frontend had chains: {present:?}"
        );
        for name in &gone {
            assert!(!kept.contains(name), "{name} is still wanted");
            assert!(!base_chains().iter().any(|(b, _, _)| b == name));
        }
        assert!(plan.delete_maps.is_empty());
        assert_eq!(plan.flush_maps.len(), STORES.len());
    }

    #[test]
    fn a_map_that_outgrew_its_capacity_is_declared_anew_and_a_foreign_one_deleted() {
        let rs = ruleset(&[80]);
        let plans = plan_all(&rs.frontends);
        let mut present = present_of(&rs);
        let grown = plans[0].elements[0].map;
        present.maps.insert(grown.to_string(), 1);
        present.maps.insert("leftover".to_string(), 64);
        let plan = InPlace::plan(&rs, &plans, &present);
        assert!(plan.delete_maps.contains(&grown.to_string()));
        assert!(plan.delete_maps.contains(&"leftover".to_string()));
        assert!(!plan.flush_maps.contains(&grown.to_string()));
        assert_eq!(plan.capacity[grown], map_capacity(1));
        // A kept map keeps its larger capacity.
        let other = STORES
            .iter()
            .find(|s| s.name != grown)
            .map(|s| s.name)
            .unwrap_or("");
        present.maps.insert(other.to_string(), 1 << 20);
        let plan = InPlace::plan(&rs, &plans, &present);
        assert_eq!(plan.capacity[other], 1 << 20);
        assert!(plan.flush_maps.contains(&other.to_string()));
    }
}
