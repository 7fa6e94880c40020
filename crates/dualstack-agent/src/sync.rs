//! The sync engine: decision → this node's frontends → our table, full or incremental,
//! through any [`Dataplane`] (netlink, `nft -f`, iptables-restore, or the in-memory fake in
//! tests).

use std::fmt;

use dualstack_addr::Family;
use dualstack_dataplane::{Dataplane, DataplaneError, Nft};
use dualstack_lb::{Config, Decision, Mode, Snapshot, Timestamp};
use dualstack_ruleset::{AddressRange, Destination, Frontend, InvalidRuleset, Ruleset, validate};

use crate::idle::why_nothing;
use crate::plan::{DEFAULT_MAX_INCREMENTAL, Plan, plan};

/// Why a sync failed. The kernel keeps whatever it had before (every transaction is atomic).
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    /// `--node` names no Node of the snapshot.
    #[error("node {node:?} is not in the snapshot (nodes: {known})")]
    UnknownNode {
        /// The name given.
        node: String,
        /// The snapshot's node names, comma-separated.
        known: String,
    },
    /// The decision produced frontends the data plane refuses (a bug in the core).
    #[error("the frontends decided for node {node:?} are not a valid ruleset: {source}")]
    Invalid {
        /// The node the frontends were decided for.
        node: String,
        /// What is wrong with them.
        source: InvalidRuleset,
    },
    /// The data plane could not program or read the table.
    #[error("programming table inet {table}: {source}")]
    Dataplane {
        /// Our table's name.
        table: String,
        /// The data plane's error.
        source: DataplaneError,
    },
}

/// Why a full transaction was used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FullReason {
    /// Nothing applied yet by this process (start, or after a failure).
    FirstSync,
    /// More frontends changed than an incremental transaction is used for, and the
    /// difference was not sent: incremental transactions are off, the table would more
    /// than double, or the plane could not prove its table is as it left it (something
    /// committed since, or the plane cannot tell).
    ManyChanges,
    /// The incremental transaction was refused; this is its error.
    IncrementalFailed(String),
    /// The periodic read-back found the kernel differs; a summary of the drift.
    Drift(String),
    /// The pool address ranges changed (the guard is rewritten by full transactions only).
    GuardChanged,
}

/// What a sync did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SyncKind {
    /// The whole table was replaced in one transaction.
    Full(FullReason),
    /// Only the changed frontends were replaced, in one transaction.
    Incremental {
        /// Frontends taken out (old versions of changed ones included).
        removed: usize,
        /// Frontends put in (new versions of changed ones included).
        added: usize,
    },
    /// Many changes sent as only their difference, in one transaction, because the kernel
    /// proved the table is exactly as this agent's last transaction left it (netlink: the
    /// batch carried that generation id; nothing else had committed since).
    Difference {
        /// Frontends taken out (old versions of changed ones included).
        removed: usize,
        /// Frontends put in (new versions of changed ones included).
        added: usize,
    },
    /// The kernel already had exactly these frontends; nothing ran.
    Unchanged,
    /// `kube-proxy` mode: the agent programs nothing.
    NotProgrammed,
}

/// The result of one sync, for logs, metrics and the CLI.
#[derive(Debug, Clone, PartialEq)]
pub struct SyncReport {
    /// The node synced.
    pub node: String,
    /// Our table's name.
    pub table: String,
    /// What the sync did.
    pub kind: SyncKind,
    /// The frontends now in the table (sorted by name).
    pub frontends: Vec<Frontend>,
    /// When a decision left this node without frontends: why, one line per distinct reason
    /// ([`why_nothing`]). Empty otherwise, and for syncs that did not decide (resync).
    pub idle: Vec<String>,
    /// Frontends left out because their generated chain name collides with another's, one
    /// line per colliding pair (see [`Syncer::apply`]); the rest are programmed.
    pub excluded: Vec<String>,
}

impl SyncReport {
    /// How many frontends serve `family` (have a backend of it).
    pub fn serving(&self, family: Family) -> usize {
        self.frontends
            .iter()
            .filter(|f| f.served_families().contains(&family))
            .count()
    }
}

impl fmt::Display for SyncReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match &self.kind {
            SyncKind::Full(FullReason::FirstSync) => "full sync".to_string(),
            SyncKind::Full(FullReason::ManyChanges) => "full sync (many changes)".to_string(),
            SyncKind::Full(FullReason::IncrementalFailed(e)) => {
                format!("full sync (incremental update refused: {e})")
            }
            SyncKind::Full(FullReason::Drift(d)) => format!("full sync repairing drift ({d})"),
            SyncKind::Full(FullReason::GuardChanged) => {
                "full sync (pool address ranges changed)".to_string()
            }
            SyncKind::Incremental { removed, added } => {
                format!("incremental sync ({removed} removed, {added} added)")
            }
            SyncKind::Difference { removed, added } => format!(
                "difference sync (many changes; nothing else changed nf_tables since our \
                 last sync, so only the difference was sent: {removed} removed, {added} added)"
            ),
            SyncKind::Unchanged => "unchanged".to_string(),
            SyncKind::NotProgrammed => {
                return writeln!(
                    f,
                    "node {}: kube-proxy mode: nothing programmed (kube-proxy carries the traffic)",
                    self.node
                );
            }
        };
        writeln!(
            f,
            "node {}: table inet {}: {what}: {} frontend(s) ({} serving IPv4, {} serving IPv6)",
            self.node,
            self.table,
            self.frontends.len(),
            self.serving(Family::V4),
            self.serving(Family::V6),
        )?;
        if !self.excluded.is_empty() {
            writeln!(
                f,
                "  left out (their chain names collide; rename one of each pair):"
            )?;
            for line in &self.excluded {
                writeln!(f, "    - {line}")?;
            }
        }
        if self.frontends.is_empty() && !self.idle.is_empty() {
            writeln!(f, "  nothing to program for node {}:", self.node)?;
            for reason in &self.idle {
                writeln!(f, "    - {reason}")?;
            }
        }
        for fe in &self.frontends {
            let on = match &fe.destination {
                Destination::AnyLocal => "any local address".to_string(),
                Destination::Addresses(a) => a
                    .iter()
                    .map(|ip| ip.to_string())
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            let backends = Family::BOTH
                .iter()
                .map(|fam| format!("{} {}", fe.backends_of(*fam).count(), fam.k8s_name()))
                .collect::<Vec<_>>()
                .join(" + ");
            let nat = if fe.masquerade {
                "masquerade"
            } else {
                "client address kept"
            };
            writeln!(
                f,
                "  {} {}/{} on {on} -> {backends} backends, {nat}",
                fe.name, fe.protocol, fe.port
            )?;
        }
        Ok(())
    }
}

/// Removes from `frontends` every one whose generated chain name another, differently named
/// one shares ([`dualstack_ruleset::chain_name_collisions`]), both of each pair, so that no
/// order of names decides which one wins; returns one line per pair, for the report.
fn leave_out_colliding(frontends: &mut Vec<Frontend>) -> Vec<String> {
    let pairs = dualstack_ruleset::chain_name_collisions(frontends);
    if pairs.is_empty() {
        return Vec::new();
    }
    let lines = pairs
        .iter()
        .map(|&(a, b)| {
            format!(
                "{} and {}: both would be chain id {}",
                frontends[a].name,
                frontends[b].name,
                dualstack_ruleset::names::frontend_id(&frontends[a].name)
            )
        })
        .collect();
    let out: std::collections::BTreeSet<usize> = pairs.iter().flat_map(|&(a, b)| [a, b]).collect();
    let mut index = 0;
    frontends.retain(|_| {
        let keep = !out.contains(&index);
        index += 1;
        keep
    });
    lines
}

/// The ruleset `node` programs for a decision: its frontends in `table`, and the pool
/// address ranges whose untaken traffic it drops (pure).
pub fn node_ruleset(decision: &Decision, node: &str, table: &str) -> Ruleset {
    let mut frontends = decision.frontends_for(node).to_vec();
    frontends.sort_by(|a, b| a.name.cmp(&b.name));
    Ruleset {
        table: table.to_string(),
        guard: decision
            .pool_ranges()
            .into_iter()
            .map(|(first, last)| AddressRange { first, last })
            .collect(),
        frontends,
    }
}

/// [`node_ruleset`] consuming the decision: the node's frontends are moved out, not
/// copied, and everything else is dropped here.
fn into_node_ruleset(mut decision: Decision, node: &str, table: &str) -> Ruleset {
    let guard = decision
        .pool_ranges()
        .into_iter()
        .map(|(first, last)| AddressRange { first, last })
        .collect();
    let mut frontends = decision
        .nodes
        .iter_mut()
        .find(|n| n.name == node)
        .map(|n| std::mem::take(&mut n.frontends))
        .unwrap_or_default();
    drop(decision);
    frontends.sort_by(|a, b| a.name.cmp(&b.name));
    Ruleset {
        table: table.to_string(),
        guard,
        frontends,
    }
}

/// One offline sync: decides for `snapshot`, and programs `node`'s frontends into
/// `plane`'s table in one full transaction. The rules stay after it returns. In
/// `kube-proxy` mode nothing is touched. Same code path as the live agent
/// ([`Syncer::sync`]), which only adds memory of the last sync.
pub fn sync_once<D: Dataplane + ?Sized>(
    snapshot: &Snapshot,
    config: &Config,
    node: &str,
    now: Timestamp,
    plane: &D,
) -> Result<SyncReport, AgentError> {
    Syncer::new(plane, node).sync(snapshot, config, now)
}

/// A node's sync engine: remembers what it applied, so that later syncs can be incremental.
#[derive(Debug)]
pub struct Syncer<D = Nft> {
    plane: D,
    node: String,
    applied: Option<Vec<Frontend>>,
    max_incremental: usize,
    /// The pool guard the next sync programs, and the one in the kernel.
    guard: Vec<AddressRange>,
    applied_guard: Vec<AddressRange>,
    /// The ruleset the last sync aimed for, whether or not the kernel took it.
    wanted: Option<Ruleset>,
    /// When time alone changes the last decision (a prefix's lifetime or grace time ends).
    next_change: Option<Timestamp>,
}

impl<D: Dataplane> Syncer<D> {
    /// An engine for `node` programming `plane`'s table; the first sync is a full one.
    pub fn new(plane: D, node: impl Into<String>) -> Syncer<D> {
        Syncer {
            plane,
            node: node.into(),
            applied: None,
            max_incremental: DEFAULT_MAX_INCREMENTAL,
            guard: Vec::new(),
            applied_guard: Vec::new(),
            wanted: None,
            next_change: None,
        }
    }

    /// When time alone changes the last sync's decision (a prefix of a pool that follows the
    /// nodes' prefix ends its lifetime or grace time): sync again then, even if nothing else
    /// changes.
    pub fn next_change(&self) -> Option<Timestamp> {
        self.next_change
    }

    /// Use incremental transactions for at most `max` changed frontends (0: always full).
    pub fn with_max_incremental(mut self, max: usize) -> Syncer<D> {
        self.max_incremental = max;
        self
    }

    /// The data plane this engine programs.
    pub fn plane(&self) -> &D {
        &self.plane
    }

    /// The node this engine programs.
    pub fn node(&self) -> &str {
        &self.node
    }

    /// The frontends applied by the last successful sync, if any.
    pub fn applied(&self) -> Option<&[Frontend]> {
        self.applied.as_deref()
    }

    /// The ruleset the last [`Syncer::sync`] or [`Syncer::apply`] wanted in the kernel
    /// (validated), whether or not the kernel took it: what the agent publishes for the
    /// doctor to compare with (`dualstack_ruleset::published`). `None` before the first,
    /// and in `kube-proxy` mode.
    pub fn wanted(&self) -> Option<&Ruleset> {
        self.wanted.as_ref()
    }

    /// Forget what was applied: the next sync is a full one.
    pub fn invalidate(&mut self) {
        self.applied = None;
    }

    /// Decides for `snapshot` and brings the table to this node's frontends.
    pub fn sync(
        &mut self,
        snapshot: &Snapshot,
        config: &Config,
        now: Timestamp,
    ) -> Result<SyncReport, AgentError> {
        if let Some(done) = self.before_deciding(snapshot, config)? {
            return Ok(done);
        }
        let decision = dualstack_lb::decide(snapshot, config, now);
        self.apply_decision(decision)
    }

    /// [`Syncer::sync`] for a snapshot nobody needs afterwards (the offline agent's, read
    /// from a dump; the live agent's, built from its stores for this one sync): the
    /// snapshot is dropped while deciding ([`dualstack_lb::decide_for_agent`], which also
    /// keeps only this node's frontends and the explanations its agent reads), and the
    /// decision as soon as this node's frontends are taken out of it, so the apply never
    /// holds all three at once. Same result as [`Syncer::sync`].
    pub fn sync_owned(
        &mut self,
        snapshot: Snapshot,
        config: &Config,
        now: Timestamp,
    ) -> Result<SyncReport, AgentError> {
        if let Some(done) = self.before_deciding(&snapshot, config)? {
            return Ok(done);
        }
        let decision = dualstack_lb::decide_for_agent(snapshot, config, now, &self.node);
        self.apply_decision(decision)
    }

    /// The checks before a decision: the node must be in the snapshot; in `kube-proxy`
    /// mode nothing is programmed (`Some` report).
    fn before_deciding(
        &self,
        snapshot: &Snapshot,
        config: &Config,
    ) -> Result<Option<SyncReport>, AgentError> {
        if !snapshot.nodes.iter().any(|n| n.metadata.name == self.node) {
            let mut known: Vec<&str> = snapshot
                .nodes
                .iter()
                .map(|n| n.metadata.name.as_str())
                .collect();
            known.sort_unstable();
            return Err(AgentError::UnknownNode {
                node: self.node.clone(),
                known: if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                },
            });
        }
        if config.mode == Mode::KubeProxy {
            return Ok(Some(self.report(SyncKind::NotProgrammed, Vec::new())));
        }
        Ok(None)
    }

    /// Takes this node's frontends out of `decision`, drops the rest, and applies them.
    fn apply_decision(&mut self, decision: Decision) -> Result<SyncReport, AgentError> {
        self.next_change = decision.next_change;
        let idle = why_nothing(&decision, &self.node);
        let ruleset = into_node_ruleset(decision, &self.node, self.plane.table());
        self.guard = ruleset.guard;
        let mut report = self.apply(ruleset.frontends)?;
        report.idle = idle;
        Ok(report)
    }

    /// Brings the table to exactly `frontends` (validated first): nothing when unchanged,
    /// one incremental transaction for a few changes; for many, the difference when the
    /// plane proves its table is as it left it (netlink: nothing committed since, checked
    /// by the kernel), a full one otherwise; a full one when an incremental one is refused.
    ///
    /// Frontends whose generated chain names collide are left out and reported
    /// ([`SyncReport::excluded`]): names can be chosen to collide, and one such pair must
    /// not stop every other frontend of the node from being programmed.
    pub fn apply(&mut self, mut frontends: Vec<Frontend>) -> Result<SyncReport, AgentError> {
        frontends.sort_by(|a, b| a.name.cmp(&b.name));
        let excluded = leave_out_colliding(&mut frontends);
        let mut report = self.apply_sorted(frontends)?;
        report.excluded = excluded;
        Ok(report)
    }

    fn apply_sorted(&mut self, frontends: Vec<Frontend>) -> Result<SyncReport, AgentError> {
        let ruleset = Ruleset {
            table: self.plane.table().to_string(),
            guard: self.guard.clone(),
            frontends,
        };
        validate(&ruleset).map_err(|source| AgentError::Invalid {
            node: self.node.clone(),
            source,
        })?;
        self.wanted = Some(ruleset.clone());
        // The guard changes only with pools: a full transaction carries it.
        if self.applied.is_some() && self.applied_guard != self.guard {
            return self.full(ruleset, FullReason::GuardChanged);
        }
        let max = if self.plane.incremental() {
            self.max_incremental
        } else {
            0
        };
        match plan(self.applied.as_deref(), &ruleset.frontends, max) {
            Plan::Unchanged => Ok(self.report(SyncKind::Unchanged, ruleset.frontends)),
            Plan::Full => {
                let reason = if self.applied.is_none() {
                    FullReason::FirstSync
                } else {
                    FullReason::ManyChanges
                };
                self.full(ruleset, reason)
            }
            // Many changes: replace the table whole (every element rewritten), unless the
            // plane proves the kernel still holds what it applied last; then only the
            // difference is sent (the kernel refuses it whole otherwise).
            Plan::Many { .. } if max == 0 => self.full(ruleset, FullReason::ManyChanges),
            // A difference that would overflow the maps' capacity would be refused: full.
            Plan::Many { .. }
                if dualstack_ruleset::nft::may_outgrow_capacity(
                    self.applied.as_ref().map_or(0, Vec::len),
                    ruleset.frontends.len(),
                ) =>
            {
                self.full(ruleset, FullReason::ManyChanges)
            }
            Plan::Many { remove, add } => {
                let previous = self.applied.as_deref().unwrap_or_default();
                match self
                    .plane
                    .apply_changes_if_untouched(previous, &remove, &add)
                {
                    Ok(true) => Ok(self.changed(ruleset, &remove, &add, true)),
                    Ok(false) => self.full(ruleset, FullReason::ManyChanges),
                    Err(e) => self.full(ruleset, FullReason::IncrementalFailed(e.to_string())),
                }
            }
            Plan::Incremental { remove, add } => {
                match self.plane.apply_changes(&remove, &add) {
                    Ok(()) => Ok(self.changed(ruleset, &remove, &add, false)),
                    // The transaction was atomic, so the table is as before; but replace
                    // it whole rather than trust our memory of it.
                    Err(e) => self.full(ruleset, FullReason::IncrementalFailed(e.to_string())),
                }
            }
        }
    }

    /// The periodic check: reads the table back and, when it differs from what was applied
    /// (someone flushed or edited it, or it is gone), replaces it whole. Before any
    /// successful sync there is nothing to compare with, and nothing is done.
    pub fn resync(&mut self) -> Result<Option<SyncReport>, AgentError> {
        let Some(applied) = self.applied.clone() else {
            return Ok(None);
        };
        let ruleset = Ruleset {
            table: self.plane.table().to_string(),
            guard: self.applied_guard.clone(),
            frontends: applied,
        };
        let Some(drift) = self.plane.drift(&ruleset).map_err(|e| self.dataplane(e))? else {
            let reason = format!("{} cannot read back; reapplied", self.plane.kind());
            return self.full(ruleset, FullReason::Drift(reason)).map(Some);
        };
        if drift.is_empty() {
            return Ok(Some(self.report(SyncKind::Unchanged, ruleset.frontends)));
        }
        let summary = format!(
            "{} chains and {} elements missing, {} chains and {} elements unexpected",
            drift.missing_chains.len(),
            drift.missing_elements.len(),
            drift.unexpected_chains.len(),
            drift.unexpected_elements.len()
        );
        self.full(ruleset, FullReason::Drift(summary)).map(Some)
    }

    /// The report of an incremental transaction (a proven difference for many changes:
    /// `difference`) that took `ruleset` into the kernel.
    fn changed(
        &mut self,
        ruleset: Ruleset,
        remove: &[Frontend],
        add: &[Frontend],
        difference: bool,
    ) -> SyncReport {
        self.applied = Some(ruleset.frontends.clone());
        let (removed, added) = (remove.len(), add.len());
        let kind = if difference {
            SyncKind::Difference { removed, added }
        } else {
            SyncKind::Incremental { removed, added }
        };
        self.report(kind, ruleset.frontends)
    }

    fn full(&mut self, ruleset: Ruleset, reason: FullReason) -> Result<SyncReport, AgentError> {
        self.applied = None;
        self.plane.apply(&ruleset).map_err(|e| self.dataplane(e))?;
        self.applied = Some(ruleset.frontends.clone());
        self.applied_guard = ruleset.guard.clone();
        Ok(self.report(SyncKind::Full(reason), ruleset.frontends))
    }

    fn dataplane(&self, source: DataplaneError) -> AgentError {
        AgentError::Dataplane {
            table: self.plane.table().to_string(),
            source,
        }
    }

    fn report(&self, kind: SyncKind, frontends: Vec<Frontend>) -> SyncReport {
        SyncReport {
            node: self.node.clone(),
            table: self.plane.table().to_string(),
            kind,
            frontends,
            idle: Vec::new(),
            excluded: Vec::new(),
        }
    }
}
