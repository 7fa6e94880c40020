//! `node.table.desired`: does the kernel's table hold what the agent wants?
//!
//! The agent publishes the ruleset it wants ([`dualstack_ruleset::published`]): in full on
//! its health endpoint (`GET /ruleset`) or in a file written by the offline agent, and as a
//! compact summary (hash, frontend count) in its Lease annotation `dualstack.io/ruleset`.
//! This check recomputes the [`Canonical`] hash of what the kernel holds and compares:
//!
//! * equal: ok, "matches what the agent wants (hash, N frontends)";
//! * different, with the full ruleset: names each frontend missing from the kernel, each
//!   one whose elements differ (another DNAT target, a missing drop, a missing chain), and
//!   what the kernel holds that no wanted frontend explains;
//! * different, with only the summary: both hashes, and how to get the details;
//! * the table absent while the agent wants one: fail;
//! * the agent has not published (no successful sync yet, or an agent without `/ruleset`),
//!   or its answer could not be read: warn — nothing to compare with.

use std::collections::{BTreeMap, BTreeSet};

use dualstack_ruleset::canonical::{Canonical, element_line};
use dualstack_ruleset::nft::{expected, is_shared_chain, plan, skeleton};
use dualstack_ruleset::published::{Published, Summary};
use dualstack_ruleset::{Destination, Frontend};

use super::{NodeFacts, TableState};
use crate::Check;

const ID: &str = "node.table.desired";

/// What the agent wants, as far as the doctor could learn it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Desired {
    /// No source was given (`--agent-url`, `--desired`): only `node.table`'s
    /// self-consistency is checked.
    #[default]
    NotAsked,
    /// The source answered that nothing is published yet.
    NotPublished {
        /// Where it was asked (the URL or file).
        source: String,
        /// What the source said.
        reason: String,
    },
    /// The source could not be reached or read.
    Unreadable {
        /// The URL or file that failed.
        source: String,
        /// Why it could not be read.
        reason: String,
    },
    /// The full ruleset (health endpoint, offline agent's file).
    Full {
        /// Where it came from.
        source: String,
        /// The ruleset with its hash, generation and node.
        published: Published,
    },
    /// Only the Lease annotation: hash and count.
    Summary {
        /// Where it came from (a Lease file).
        source: String,
        /// The annotation: hash, frontend count, generation.
        summary: Summary,
    },
}

/// The `node.table.desired` check: does the kernel's table hold what the agent wants (every frontend, chain and element), as far as the given source tells?
pub fn check(f: &NodeFacts) -> Check {
    let fix_source = "pass what the agent publishes: --agent-url http://127.0.0.1:9655 (the agent's health endpoint, GET /ruleset) or --desired FILE (`curl …/ruleset`, `dualstack agent … --once --publish-ruleset FILE`, or the agent Lease as YAML)";
    let (source, want_hash, count, details) = match &f.desired {
        Desired::NotAsked => {
            return Check::ok(
                ID,
                "not compared with what the agent wants (no --agent-url or --desired given)",
            );
        }
        Desired::NotPublished { source, reason } => {
            return Check::warn(
                ID,
                format!("the agent has not published its ruleset ({source}: {reason})"),
                "wait for the agent's first successful sync (`/readyz` turns 200), and check its logs if it does not come",
            );
        }
        Desired::Unreadable { source, reason } => {
            return Check::warn(ID, format!("cannot read {source}: {reason}"), fix_source);
        }
        Desired::Full { source, published } => {
            let exp = match expected(&published.ruleset) {
                Ok(e) => e,
                Err(e) => {
                    return Check::warn(
                        ID,
                        format!("{source}: the published ruleset is not valid: {e}"),
                        "run the doctor of the same dualstack version as the agent",
                    );
                }
            };
            let canonical = Canonical::of_expected(&exp);
            (
                source,
                canonical.hash(),
                published.ruleset.frontends.len(),
                Some((published, canonical)),
            )
        }
        Desired::Summary { source, summary } => {
            (source, summary.hash.clone(), summary.frontends, None)
        }
    };
    let (who, generation) = match &details {
        Some((p, _)) => (
            format!("the agent on {}", p.node),
            format!(", generation {} since {}", p.generation, p.since),
        ),
        None => ("the agent".to_string(), String::new()),
    };
    let (name, chains, elements, other_elements) = match &f.table {
        TableState::NotInstalled => {
            return Check::fail(
                ID,
                format!(
                    "table absent, but {who} wants {count} frontend(s) ({want_hash}{generation}; from {source})"
                ),
                "the agent recreates the table at its next resync (--resync-seconds, 60 by default); if it does not, its logs say why the sync fails",
            );
        }
        TableState::Unreadable(why) => {
            return Check::warn(
                ID,
                format!("cannot read our table to compare with {source}: {why}"),
                "run `dualstack doctor node` as root on the node itself",
            );
        }
        TableState::Present {
            name,
            chains,
            elements,
            other_elements,
        } => (name, chains, elements, other_elements),
    };
    if let Some((p, _)) = &details
        && p.ruleset.table != *name
    {
        return Check::fail(
            ID,
            format!(
                "{who} programs table inet {}, this run read table inet {name}",
                p.ruleset.table
            ),
            format!("dualstack doctor node --table {}", p.ruleset.table),
        );
    }
    let kernel: Vec<(String, String, String)> = elements
        .iter()
        .map(|(m, k, c)| (m.clone(), k.clone(), format!("goto {c}")))
        .chain(other_elements.iter().cloned())
        .collect();
    let have = Canonical::of_table(chains.iter().map(String::as_str), kernel.clone());
    let have_hash = have.hash();
    let mut note = String::new();
    if let Some((p, _)) = &details
        && p.hash != want_hash
    {
        note = format!(
            " (note: the agent published {} but its ruleset hashes to {want_hash}: doctor and agent of different versions?)",
            p.hash
        );
    }
    if have_hash == want_hash {
        return Check::ok(
            ID,
            format!(
                "table inet {name} matches what {who} wants ({want_hash}, {count} frontend(s){generation}; from {source}){note}"
            ),
        );
    }
    let fix = "the agent repairs drift at its next resync (--resync-seconds, 60 by default); if the difference stays, its logs say why the sync fails (someone else may be editing our table)";
    let Some((p, want)) = details else {
        return Check::fail(
            ID,
            format!(
                "table inet {name} differs from what {who} wants: kernel {have_hash}, agent {want_hash} ({count} frontend(s); from {source}); for the frontends that differ, compare with the full ruleset: --agent-url or --desired FILE from GET /ruleset"
            ),
            fix,
        );
    };
    let problems = differences(&p.ruleset.frontends, &want, &have, chains, &kernel);
    Check::fail(
        ID,
        format!(
            "table inet {name} differs from what {who} wants (kernel {have_hash}, agent {want_hash}, {count} frontend(s){generation}; from {source}): {}{note}",
            problems.join("; ")
        ),
        fix,
    )
}

/// How a frontend reads in a message: `default/web:http tcp/80 on 10.0.0.2`.
fn describe(fe: &Frontend) -> String {
    let on = match &fe.destination {
        Destination::AnyLocal => "any local address".to_string(),
        Destination::Addresses(a) => a
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", "),
    };
    format!("{} {}/{} on {on}", fe.name, fe.protocol, fe.port)
}

/// The differences, named by frontend where one explains them.
fn differences(
    frontends: &[Frontend],
    want: &Canonical,
    have: &Canonical,
    chains: &BTreeSet<String>,
    kernel: &[(String, String, String)],
) -> Vec<String> {
    let in_kernel: BTreeMap<(&str, &str), &str> = kernel
        .iter()
        .map(|(m, k, v)| ((m.as_str(), k.as_str()), v.as_str()))
        .collect();
    let mut claimed: BTreeSet<(String, String)> = BTreeSet::new();
    let mut owner: BTreeMap<String, usize> = BTreeMap::new();
    let mut wanted_chains: BTreeSet<String> = BTreeSet::new();
    let mut missing = Vec::new();
    let mut differ: Vec<(usize, Vec<String>)> = Vec::new();
    for (i, fe) in frontends.iter().enumerate() {
        let p = plan(fe);
        let mut issues = Vec::new();
        let mut present = 0;
        for e in &p.elements {
            let (key, value) = (e.key_text(), e.value_text());
            owner.insert(key.clone(), i);
            claimed.insert((e.map.to_string(), key.clone()));
            match in_kernel.get(&(e.map, key.as_str())) {
                None => issues.push(format!("{} missing", element_line(e.map, &key, &value))),
                Some(v) if *v != value => {
                    present += 1;
                    issues.push(format!(
                        "{} {key}: kernel has {v}, agent wants {value}",
                        e.map
                    ));
                }
                Some(_) => present += 1,
            }
        }
        for c in &p.chains {
            wanted_chains.insert(c.name.to_string());
            if !chains.contains(&*c.name) {
                issues.push(format!("chain {} missing", c.name));
            }
        }
        if present == 0 && !p.elements.is_empty() {
            missing.push(describe(fe));
        } else if !issues.is_empty() {
            differ.push((i, issues));
        }
    }
    // What the kernel holds beyond the wanted frontends' elements: attributed to the
    // frontend with the same key (another kind of element for it), or unexplained.
    let mut extra: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for (m, k, v) in kernel {
        if claimed.contains(&(m.clone(), k.clone())) {
            continue;
        }
        match owner.get(k) {
            Some(&i) => {
                let line = format!("also {} in the kernel", element_line(m, k, v));
                match differ.iter_mut().find(|(j, _)| *j == i) {
                    Some((_, issues)) => issues.push(line),
                    None => differ.push((i, vec![line])),
                }
            }
            None => extra.entry(k.as_str()).or_default().push(m.as_str()),
        }
    }
    let mut out = Vec::new();
    if !missing.is_empty() {
        out.push(format!(
            "{} frontend(s) missing from the kernel: {}",
            missing.len(),
            missing.join(", ")
        ));
    }
    differ.sort_by_key(|(i, _)| *i);
    for (i, issues) in differ {
        if let Some(fe) = frontends.get(i) {
            out.push(format!("{} differs: {}", describe(fe), issues.join(", ")));
        }
    }
    if !extra.is_empty() {
        let list: Vec<String> = extra
            .iter()
            .map(|(k, maps)| format!("{k} (in {})", maps.join(", ")))
            .collect();
        out.push(format!(
            "{} key(s) in the kernel that the agent does not want: {}",
            list.len(),
            list.join(", ")
        ));
    }
    // Chains beyond the frontends' (the pool guard), both ways.
    let (base, _) = skeleton();
    let want_lines: BTreeSet<&str> = want.lines().collect();
    let have_lines: BTreeSet<&str> = have.lines().collect();
    for line in want_lines.difference(&have_lines) {
        if let Some(c) = line.strip_prefix("chain ")
            && !wanted_chains.contains(c)
        {
            out.push(format!("chain {c} missing"));
        }
    }
    for line in have_lines.difference(&want_lines) {
        if let Some(c) = line.strip_prefix("chain ")
            && !base.contains(&c)
            && !(is_shared_chain(c) && wanted_chains.contains(c))
        {
            out.push(format!(
                "chain {c} in the kernel that the agent does not want"
            ));
        }
    }
    if out.is_empty() {
        out.push("the contents differ (no frontend-level difference found)".into());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::testing::healthy;
    use super::*;
    use crate::Status;
    use dualstack_ruleset::{Backend, Protocol, Ruleset};

    fn frontend(name: &str, port: u16, backends: &[&str], ranges: &[&str]) -> Frontend {
        Frontend {
            name: name.into(),
            destination: Destination::Addresses(vec![
                "10.0.0.2".parse().unwrap(),
                "fd00:1::2".parse().unwrap(),
            ]),
            protocol: Protocol::Tcp,
            port,
            source_ranges: ranges.iter().map(|r| r.parse().unwrap()).collect(),
            backends: backends
                .iter()
                .map(|a| Backend {
                    addr: a.parse().unwrap(),
                    port: 8080,
                })
                .collect(),
            selection: Default::default(),
            masquerade: true,
        }
    }

    fn wanted() -> Published {
        let ruleset = Ruleset {
            table: "dualstack".into(),
            frontends: vec![
                frontend(
                    "default/web:http",
                    80,
                    &["10.42.0.7", "fd42::7"],
                    &["0.0.0.0/0", "::/0"],
                ),
                frontend(
                    "default/api:https",
                    443,
                    &["10.42.0.8", "10.42.0.9", "fd42::8"],
                    &["10.0.0.0/8"],
                ),
            ],
            guard: Vec::new(),
        };
        Published::next(None, "n1", ruleset, "2026-01-01T00:00:00Z").unwrap()
    }

    /// The table the kernel holds for `p`, as the read-back reports it.
    fn kernel_of(p: &Published) -> TableState {
        let exp = expected(&p.ruleset).unwrap();
        let mut chains: BTreeSet<String> = skeleton().0.iter().map(|c| c.to_string()).collect();
        chains.extend(exp.chains.iter().cloned());
        let mut elements = BTreeSet::new();
        let mut other_elements = BTreeSet::new();
        for e in &exp.elements {
            match e.value_text().strip_prefix("goto ") {
                Some(target) => {
                    elements.insert((e.map.to_string(), e.key_text(), target.to_string()));
                }
                None => {
                    other_elements.insert((e.map.to_string(), e.key_text(), e.value_text()));
                }
            }
        }
        TableState::Present {
            name: "dualstack".into(),
            chains,
            elements,
            other_elements,
        }
    }

    fn run(desired: Desired, table: TableState) -> Check {
        let mut f = healthy();
        f.desired = desired;
        f.table = table;
        check(&f)
    }

    fn full(p: &Published) -> Desired {
        Desired::Full {
            source: "http://127.0.0.1:9655/ruleset".into(),
            published: p.clone(),
        }
    }

    fn edit(state: &mut TableState, f: impl FnOnce(&mut BTreeSet<(String, String, String)>)) {
        if let TableState::Present { other_elements, .. } = state {
            f(other_elements);
        }
    }

    #[test]
    fn a_matching_table_is_ok_with_hash_and_count() {
        let p = wanted();
        let c = run(full(&p), kernel_of(&p));
        assert_eq!(c.status, Status::Ok, "{c:#?}");
        assert!(
            c.message.contains("matches what the agent on n1 wants"),
            "{c:#?}"
        );
        assert!(
            c.message.contains(&p.hash) && c.message.contains("2 frontend(s)"),
            "{c:#?}"
        );
        // The Lease summary alone is enough to say so.
        let s = Desired::Summary {
            source: "Lease dualstack-system/dualstack-agent-n1".into(),
            summary: p.summary(),
        };
        assert_eq!(run(s, kernel_of(&p)).status, Status::Ok);
    }

    #[test]
    fn names_missing_different_and_extra_frontends() {
        let p = wanted();
        let mut k = kernel_of(&p);
        // web's IPv4 DNAT target removed, web's IPv6 target changed, a stray element added.
        edit(&mut k, |els| {
            els.retain(|(m, k, _)| {
                !k.ends_with(". 80") || (m != "dnat-masq-addr4" && m != "dnat-masq-addr6")
            });
            els.insert((
                "dnat-masq-addr6".into(),
                "fd00:1::2 . tcp . 80".into(),
                "fd42::99 . 8080".into(),
            ));
            els.insert((
                "dnat-addr4".into(),
                "10.0.0.2 . tcp . 9999".into(),
                "10.42.0.1 . 80".into(),
            ));
        });
        let c = run(full(&p), k);
        assert_eq!(c.status, Status::Fail, "{c:#?}");
        for text in [
            "default/web:http tcp/80 on 10.0.0.2, fd00:1::2 differs",
            "element dnat-masq-addr4 10.0.0.2 . tcp . 80 : 10.42.0.7 . 8080 missing",
            "dnat-masq-addr6 fd00:1::2 . tcp . 80: kernel has fd42::99 . 8080, agent wants fd42::7 . 8080",
            "1 key(s) in the kernel that the agent does not want: 10.0.0.2 . tcp . 9999 (in dnat-addr4)",
        ] {
            assert!(
                c.message.contains(text),
                "missing {text:?} in {}",
                c.message
            );
        }
        assert!(!c.message.contains("default/api"), "{}", c.message);

        // A frontend whose every element is gone is named as missing.
        let mut k = kernel_of(&p);
        if let TableState::Present {
            elements,
            other_elements,
            ..
        } = &mut k
        {
            elements.retain(|(_, key, _)| !key.ends_with(". 443"));
            other_elements.retain(|(_, key, _)| !key.ends_with(". 443"));
        }
        let c = run(full(&p), k);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message.contains(
                "1 frontend(s) missing from the kernel: default/api:https tcp/443 on 10.0.0.2, fd00:1::2"
            ),
            "{}",
            c.message
        );

        // A missing frontend chain is named with its frontend.
        let mut k = kernel_of(&p);
        if let TableState::Present { chains, .. } = &mut k {
            chains.retain(|c| !c.starts_with("fe4-"));
        }
        let c = run(full(&p), k);
        assert!(
            c.message
                .contains("default/api:https tcp/443 on 10.0.0.2, fd00:1::2 differs: chain fe4-"),
            "{}",
            c.message
        );
    }

    #[test]
    fn summary_only_gives_both_hashes() {
        let p = wanted();
        let mut k = kernel_of(&p);
        edit(&mut k, |els| {
            els.pop_first();
        });
        let s = Desired::Summary {
            source: "Lease dualstack-system/dualstack-agent-n1".into(),
            summary: p.summary(),
        };
        let c = run(s, k);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message.contains(&format!("agent {}", p.hash)),
            "{}",
            c.message
        );
        assert!(c.message.contains("--agent-url"), "{}", c.message);
    }

    #[test]
    fn absent_table_unpublished_and_unreadable() {
        let p = wanted();
        let c = run(full(&p), TableState::NotInstalled);
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.message
                .starts_with("table absent, but the agent on n1 wants 2 frontend(s)"),
            "{}",
            c.message
        );

        let c = run(
            Desired::NotPublished {
                source: "http://127.0.0.1:9655/ruleset".into(),
                reason: "no successful sync yet".into(),
            },
            kernel_of(&p),
        );
        assert_eq!(c.status, Status::Warn);
        assert!(c.message.contains("has not published"), "{}", c.message);

        let c = run(
            Desired::Unreadable {
                source: "http://127.0.0.1:9655/ruleset".into(),
                reason: "connection refused".into(),
            },
            kernel_of(&p),
        );
        assert_eq!(c.status, Status::Warn);
        assert!(c.fix.as_deref().unwrap_or_default().contains("--agent-url"));

        assert_eq!(
            run(Desired::NotAsked, TableState::NotInstalled).status,
            Status::Ok
        );

        // Another table name than the agent's.
        let mut other = p.clone();
        other.ruleset.table = "ds-test".into();
        let c = run(full(&other), kernel_of(&p));
        assert_eq!(c.status, Status::Fail);
        assert!(
            c.fix
                .as_deref()
                .unwrap_or_default()
                .contains("--table ds-test")
        );
    }
}
