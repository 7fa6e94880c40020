//! The `iptables-restore` / `ip6tables-restore` renderer: the fallback for hosts without
//! nf_tables NAT. Everything goes into chains of our own (prefix `DUALSTACK-`), applied with
//! `--noflush`, so nothing of anyone else's is flushed or rewritten.
//!
//! # Layout (per family; same shape as the nft table, see [`crate::nft`])
//!
//! | table | chain | jumped from | job |
//! |---|---|---|---|
//! | mangle | `DUALSTACK-PREROUTING` | `PREROUTING` (inserted first) | new connections to a frontend with source ranges → `DUALSTACK-W-<hash>` |
//! | mangle | `DUALSTACK-W-<hash>` | ours | `-s <range> -j RETURN` per allowed range, then `DROP` |
//! | nat | `DUALSTACK-PREROUTING` | `PREROUTING` | frontend match → `DUALSTACK-F-<hash>` |
//! | nat | `DUALSTACK-OUTPUT` | `OUTPUT` | the same for the host's own connections (not to loopback) |
//! | nat | `DUALSTACK-F-<hash>` | ours | `MARK --or-mark 0x4000` if masquerade; DNAT via `statistic --mode random` |
//! | nat | `DUALSTACK-POSTROUTING` | `POSTROUTING` | `-m mark --mark 0x4000/0x4000 -j MASQUERADE` |
//!
//! Filtering happens in mangle `PREROUTING` (priority -150), before DNAT, for the same
//! reason as in nft: the original destination identifies the frontend. Unlike nft, the
//! frontend match is a linear list (iptables has no verdict maps) — the fallback trades
//! per-packet cost for compatibility. `Selection::Hash` is rendered as random choice
//! (iptables has no `jhash` target for DNAT).
//!
//! # Sync and cleanup
//! Both take the current state ([`Owned`], parsed from `iptables-save`): a sync declares
//! (and so flushes) our chains, refills them, deletes our chains no longer needed, and adds
//! the jumps from the built-in chains only when missing — one `iptables-restore --noflush`
//! run per family, committed per table. Cleanup deletes exactly the jumps and chains that
//! the save output shows are ours.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::IpAddr;

use dualstack_addr::Family;

use crate::model::{Destination, Frontend, Ruleset};
use crate::names::{self, IPTABLES_PREFIX};
use crate::nft::{Allowed, MASQUERADE_MARK, allowed_ranges};
use crate::validate::{InvalidRuleset, validate};

const PREROUTING: &str = "DUALSTACK-PREROUTING";
const OUTPUT: &str = "DUALSTACK-OUTPUT";
const POSTROUTING: &str = "DUALSTACK-POSTROUTING";

/// What of ours exists in one family's iptables, parsed from `iptables-save`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owned {
    /// table → our chains in it.
    pub chains: BTreeMap<String, BTreeSet<String>>,
    /// table → rule specs (`PREROUTING -j DUALSTACK-PREROUTING`, without `-A`) in built-in
    /// chains that jump to our chains, one entry per occurrence.
    pub jumps: BTreeMap<String, Vec<String>>,
}

impl Owned {
    /// Parses `iptables-save` / `ip6tables-save` output.
    pub fn parse(save: &str) -> Owned {
        let mut owned = Owned::default();
        let mut table = String::new();
        for line in save.lines() {
            if let Some(t) = line.strip_prefix('*') {
                table = t.trim().to_string();
            } else if let Some(decl) = line.strip_prefix(':') {
                if let Some(chain) = decl.split_whitespace().next()
                    && chain.starts_with(IPTABLES_PREFIX)
                {
                    owned
                        .chains
                        .entry(table.clone())
                        .or_default()
                        .insert(chain.to_string());
                }
            } else if let Some(rule) = line.strip_prefix("-A ") {
                let chain = rule.split_whitespace().next().unwrap_or("");
                let jumps_to_ours = rule
                    .split_whitespace()
                    .collect::<Vec<_>>()
                    .windows(2)
                    .any(|w| w[0] == "-j" && w[1].starts_with(IPTABLES_PREFIX));
                if !chain.starts_with(IPTABLES_PREFIX) && jumps_to_ours {
                    owned
                        .jumps
                        .entry(table.clone())
                        .or_default()
                        .push(rule.to_string());
                }
            }
        }
        owned
    }

    /// True when nothing of ours exists.
    pub fn is_empty(&self) -> bool {
        self.chains.values().all(BTreeSet::is_empty) && self.jumps.values().all(Vec::is_empty)
    }
}

/// The chains and rules we want in one table, plus the built-in jumps to them.
#[derive(Debug, Default)]
struct TablePlan {
    chains: BTreeMap<String, Vec<String>>,
    jumps: Vec<(&'static str, &'static str)>,
}

fn plan(ruleset: &Ruleset, family: Family) -> BTreeMap<&'static str, TablePlan> {
    let mut mangle = TablePlan {
        jumps: vec![("PREROUTING", PREROUTING)],
        ..TablePlan::default()
    };
    let mut nat = TablePlan {
        jumps: vec![
            ("PREROUTING", PREROUTING),
            ("OUTPUT", OUTPUT),
            ("POSTROUTING", POSTROUTING),
        ],
        ..TablePlan::default()
    };
    mangle.chains.insert(PREROUTING.into(), vec![]);
    nat.chains.insert(PREROUTING.into(), vec![]);
    nat.chains.insert(OUTPUT.into(), vec![]);
    nat.chains.insert(
        POSTROUTING.into(),
        vec![format!(
            "-m mark --mark 0x{MASQUERADE_MARK:x}/0x{MASQUERADE_MARK:x} -j MASQUERADE"
        )],
    );
    let loopback = match family {
        Family::V4 => "127.0.0.0/8",
        Family::V6 => "::1/128",
    };
    for fe in &ruleset.frontends {
        if !fe.served_families().contains(&family) {
            continue;
        }
        let proto = fe.protocol.as_str();
        let matches: Vec<String> = match &fe.destination {
            Destination::AnyLocal => vec!["-m addrtype --dst-type LOCAL".to_string()],
            Destination::Addresses(addrs) => addrs
                .iter()
                .filter(|a| Family::of(**a) == family)
                .map(|a| format!("-d {}", host_prefix(*a)))
                .collect::<BTreeSet<_>>()
                .into_iter()
                .collect(),
        };
        let nat_chain = names::iptables_nat_chain(&fe.name);
        let comment = format!("-m comment --comment \"{}\"", fe.name);
        for m in &matches {
            let rule = format!(
                "-p {proto} --dport {} {m} {comment} -j {nat_chain}",
                fe.port
            );
            push(&mut nat, PREROUTING, rule.clone());
            let out = if m.starts_with("-m addrtype") {
                format!("! -d {loopback} {rule}")
            } else {
                rule
            };
            push(&mut nat, OUTPUT, out);
        }
        nat.chains.insert(nat_chain.clone(), dnat_rules(fe, family));

        let allowed = allowed_ranges(fe, family);
        if allowed != Allowed::Everything {
            let fw_chain = names::iptables_firewall_chain(&fe.name);
            for m in &matches {
                push(
                    &mut mangle,
                    PREROUTING,
                    format!(
                        "-p {proto} --dport {} {m} -m conntrack --ctstate NEW {comment} -j {fw_chain}",
                        fe.port
                    ),
                );
            }
            let mut rules: Vec<String> = match allowed {
                Allowed::Only(nets) => nets.iter().map(|n| format!("-s {n} -j RETURN")).collect(),
                _ => vec![],
            };
            rules.push("-j DROP".to_string());
            mangle.chains.insert(fw_chain, rules);
        }
    }
    BTreeMap::from([("mangle", mangle), ("nat", nat)])
}

fn push(table: &mut TablePlan, chain: &str, rule: String) {
    table
        .chains
        .entry(chain.to_string())
        .or_default()
        .push(rule);
}

fn dnat_rules(fe: &Frontend, family: Family) -> Vec<String> {
    let mut rules = Vec::new();
    if fe.masquerade {
        rules.push(format!("-j MARK --or-mark 0x{MASQUERADE_MARK:x}"));
    }
    let mut backends: Vec<_> = fe.backends_of(family).copied().collect();
    backends.sort();
    let n = backends.len();
    for (i, b) in backends.iter().enumerate() {
        let to = match b.addr {
            IpAddr::V4(a) => format!("{a}:{}", b.port),
            IpAddr::V6(a) => format!("[{a}]:{}", b.port),
        };
        let left = n - i;
        let pick = if left > 1 {
            format!(
                "-m statistic --mode random --probability {:.10} ",
                1.0 / left as f64
            )
        } else {
            String::new()
        };
        rules.push(format!(
            "-p {} {pick}-j DNAT --to-destination {to}",
            fe.protocol
        ));
    }
    rules
}

fn host_prefix(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => format!("{a}/32"),
        IpAddr::V6(a) => format!("{a}/128"),
    }
}

/// The `iptables-restore --noflush` input that makes one family's rules match `ruleset`,
/// given what of ours exists now (`current`). Includes only frontends serving `family`.
pub fn render_sync(
    ruleset: &Ruleset,
    family: Family,
    current: &Owned,
) -> Result<String, InvalidRuleset> {
    validate(ruleset)?;
    let mut out = String::new();
    for (table, want) in plan(ruleset, family) {
        let existing = current.chains.get(table).cloned().unwrap_or_default();
        let stale: Vec<&String> = existing
            .iter()
            .filter(|c| !want.chains.contains_key(*c))
            .collect();
        let _ = writeln!(out, "*{table}");
        // Declaring a chain creates it or, with --noflush, flushes it.
        for chain in want.chains.keys().chain(stale.iter().copied()) {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for (chain, rules) in &want.chains {
            for rule in rules {
                let _ = writeln!(out, "-A {chain} {rule}");
            }
        }
        for chain in stale {
            let _ = writeln!(out, "-X {chain}");
        }
        let present = current.jumps.get(table).cloned().unwrap_or_default();
        for (builtin, target) in &want.jumps {
            let spec = format!("{builtin} -j {target}");
            if !present.contains(&spec) {
                let _ = writeln!(out, "-I {builtin} 1 -j {target}");
            }
        }
        let _ = writeln!(out, "COMMIT");
    }
    Ok(out)
}

/// The `iptables-restore --noflush` input that removes every jump and chain of ours listed
/// in `current`, and nothing else. Empty when nothing of ours exists.
pub fn render_cleanup(current: &Owned) -> String {
    let tables: BTreeSet<&String> = current.chains.keys().chain(current.jumps.keys()).collect();
    let mut out = String::new();
    for table in tables {
        let chains = current.chains.get(table).cloned().unwrap_or_default();
        let jumps = current.jumps.get(table).cloned().unwrap_or_default();
        if chains.is_empty() && jumps.is_empty() {
            continue;
        }
        let _ = writeln!(out, "*{table}");
        for chain in &chains {
            let _ = writeln!(out, ":{chain} - [0:0]");
        }
        for spec in &jumps {
            let _ = writeln!(out, "-D {spec}");
        }
        for chain in &chains {
            let _ = writeln!(out, "-X {chain}");
        }
        let _ = writeln!(out, "COMMIT");
    }
    out
}
