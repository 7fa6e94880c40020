//! Applies our `table inet <name>` with `nft` (rendering and decisions live in
//! [`dualstack_ruleset::nft`]; this module only runs the tool and reports).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex, PoisonError};

use dualstack_addr::Family;
use dualstack_ruleset::nft::Present;
use dualstack_ruleset::{Frontend, Protocol, Ruleset, nft as render, validate_table_name};

use crate::conntrack::{self, SharedUdpFlows, UdpFlows};
use crate::readback::{self, Drift, Observed};
use crate::{DataplaneError, Runner};

/// The nft data plane for one table.
///
/// The handle remembers which shared source-range chains (`allow*`, see
/// [`dualstack_ruleset::nft`]) its own successful transactions left in the table, so that
/// [`Nft::apply_changes`] adding a frontend whose ranges already have a chain adds elements
/// only instead of re-declaring (flushing) the chain — a transaction that removes nothing
/// avoids a wait in the kernel. Clones share this memory. It is forgotten after any failure
/// and after [`Nft::run_script`] or [`Nft::cleanup`]; if the table was changed behind the
/// handle's back, an incremental transaction that relies on it is rejected as a whole
/// (nothing changes) and a full [`Nft::apply`] repairs everything.
#[derive(Debug, Clone)]
pub struct Nft {
    runner: Runner,
    table: String,
    shared: Arc<Mutex<BTreeSet<String>>>,
    /// The UDP frontends in force, to flush only the flows of those a sync changes.
    udp: SharedUdpFlows,
}

impl Nft {
    /// A handle on `table inet <table>`, commands run by `runner`. Fails on an invalid name.
    pub fn new(runner: Runner, table: &str) -> Result<Nft, DataplaneError> {
        validate_table_name(table)
            .map_err(|e| DataplaneError::Invalid(dualstack_ruleset::InvalidRuleset(vec![e])))?;
        Ok(Nft {
            runner,
            table: table.to_string(),
            shared: Arc::default(),
            udp: SharedUdpFlows::default(),
        })
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Replaces our whole table with `ruleset` in one atomic transaction (`nft -f -`): if the
    /// kernel rejects anything, the previous table stays as it was. Afterwards, UDP conntrack
    /// entries of the UDP frontends the sync added, removed or changed are flushed (all of
    /// them on the handle's first sync), so flows that predate the rules do not bypass
    /// them, while an unchanged UDP frontend keeps its flows.
    pub fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        self.check_table(ruleset)?;
        // Validated before anything is read or run.
        dualstack_ruleset::validate(ruleset)?;
        let text = match self.present()? {
            Some(present) => render::render_full_in_place(ruleset, &present)?,
            None => render::render_full(ruleset)?,
        };
        self.forget_shared();
        let (ports, next) = self.udp.full(&ruleset.frontends);
        self.run_nft(&text)?;
        self.remember_shared(render::shared_chains(&ruleset.frontends));
        self.flush_udp(&ports, next)
    }

    fn flush_udp(&self, ports: &[(Family, u16)], next: UdpFlows) -> Result<(), DataplaneError> {
        self.udp
            .settle(next, conntrack::flush_udp(&self.runner, ports))
    }

    /// Dry run of [`Nft::apply`] (`nft -c -f -`): the kernel validates, nothing changes.
    pub fn check(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        self.check_table(ruleset)?;
        let text = render::render_full(ruleset)?;
        self.runner
            .run("nft", &["-c", "-f", "-"], &text)
            .map(|_| ())
    }

    /// One incremental transaction: removes the frontends in `remove`, adds those in `add`
    /// (pass a frontend's old version in `remove` and its new one in `add` to change it),
    /// then flushes UDP conntrack entries for the affected ports. The caller is responsible
    /// for the result being a valid ruleset (validate it first).
    pub fn apply_changes(
        &self,
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<(), DataplaneError> {
        let present = self.known_shared();
        let text = render::render_changes_with(&self.table, remove, add, &present)?;
        if text.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.run_nft(&text) {
            self.forget_shared();
            return Err(e);
        }
        self.remember_shared(render::shared_chains(add));
        let (ports, next) = self.udp.changes(remove, add);
        self.flush_udp(&ports, next)
    }

    /// Runs any nft script in one transaction (used by tests to inject changes, and for
    /// callers that render their own).
    pub fn run_script(&self, text: &str) -> Result<(), DataplaneError> {
        // Whatever the script does, the shared chains it leaves are unknown from here.
        self.forget_shared();
        self.udp.forget();
        self.run_nft(text)
    }

    fn run_nft(&self, text: &str) -> Result<(), DataplaneError> {
        self.runner.run("nft", &["-f", "-"], text).map(|_| ())
    }

    /// Our table as `nft -j` reports it, or `None` when it does not exist.
    pub fn list_json(&self) -> Result<Option<String>, DataplaneError> {
        let out = self
            .runner
            .output("nft", &["-j", "list", "table", "inet", &self.table], "")?;
        if out.success {
            Ok(Some(out.stdout))
        } else if out.stderr.contains("No such file or directory") {
            Ok(None)
        } else {
            Err(DataplaneError::Failed {
                command: format!("nft -j list table inet {}", self.table),
                stderr: out.stderr,
            })
        }
    }

    /// Our table's chains and maps with their capacity (two `nft` runs, no elements or
    /// rules listed), for a full sync that replaces the table in place: `Ok(None)` when the
    /// table does not exist. A table changed between this reading and the transaction
    /// makes `nft` refuse the transaction (a flush or delete of what is gone), and nothing
    /// changes.
    pub fn present(&self) -> Result<Option<Present>, DataplaneError> {
        let mut present = Present::default();
        for args in [
            &["-j", "list", "chains", "inet"][..],
            &["-t", "-j", "list", "maps", "inet"],
        ] {
            let out = self.runner.output("nft", args, "")?;
            if !out.success {
                return Err(DataplaneError::Failed {
                    command: format!("nft {}", args.join(" ")),
                    stderr: out.stderr,
                });
            }
            readback::parse_present(&out.stdout, &self.table, &mut present)?;
        }
        Ok((!present.chains.is_empty() || !present.maps.is_empty()).then_some(present))
    }

    /// Reads our table back and parses its chains and map elements.
    pub fn observe(&self) -> Result<Option<Observed>, DataplaneError> {
        self.list_json()?.map(|j| readback::parse(&j)).transpose()
    }

    /// Compares the kernel with `ruleset`. A missing table is reported as drift too
    /// (every chain and element missing).
    pub fn drift(&self, ruleset: &Ruleset) -> Result<Drift, DataplaneError> {
        let expected = render::expected(ruleset)?;
        let observed = self.observe()?.unwrap_or_default();
        let (base, _) = render::skeleton();
        Ok(readback::diff(&expected, &base, &observed))
    }

    /// Deletes our table and nothing else. No error when it does not exist.
    pub fn cleanup(&self) -> Result<(), DataplaneError> {
        let text = render::render_delete(&self.table)?;
        self.run_script(&text)
    }

    /// The shared chains known to be in the table.
    fn known_shared(&self) -> BTreeSet<String> {
        self.lock_shared().clone()
    }

    /// Records shared chains a successful transaction left in the table.
    fn remember_shared(&self, chains: BTreeSet<String>) {
        self.lock_shared().extend(chains);
    }

    fn forget_shared(&self) {
        self.lock_shared().clear();
    }

    fn lock_shared(&self) -> std::sync::MutexGuard<'_, BTreeSet<String>> {
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn check_table(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        if ruleset.table == self.table {
            Ok(())
        } else {
            Err(DataplaneError::WrongTable {
                handle: self.table.clone(),
                ruleset: ruleset.table.clone(),
            })
        }
    }
}

/// The `(family, port)` pairs whose UDP conntrack entries a change to `frontends` affects.
pub fn udp_ports(frontends: &[Frontend]) -> Vec<(Family, u16)> {
    let set: BTreeSet<(Family, u16)> = frontends
        .iter()
        .filter(|f| f.protocol == Protocol::Udp)
        .flat_map(|f| {
            f.served_families()
                .into_iter()
                .map(move |fam| (fam, f.port))
        })
        .collect();
    set.into_iter().collect()
}
