//! The fallback data plane: `iptables-restore` / `ip6tables-restore --noflush` into our own
//! `DUALSTACK-*` chains (rendering in [`dualstack_ruleset::iptables`]). Each family is
//! synced by reading its current state with `*-save`, then one restore run.

use dualstack_addr::Family;
use dualstack_ruleset::Ruleset;
use dualstack_ruleset::iptables::{Owned, render_cleanup, render_sync};

use crate::conntrack::{self, SharedUdpFlows};
use crate::{DataplaneError, Runner};

/// Seconds `*-restore` waits for the xtables lock.
const LOCK_WAIT: &str = "5";

/// The iptables-restore data plane.
#[derive(Debug, Clone)]
pub struct IptablesRestore {
    runner: Runner,
    table: String,
    /// The UDP frontends in force, to flush only the flows of those a sync changes
    /// (shared by clones, like the nf_tables appliers').
    udp: SharedUdpFlows,
}

fn tools(family: Family) -> (&'static str, &'static str) {
    match family {
        Family::V4 => ("iptables-save", "iptables-restore"),
        Family::V6 => ("ip6tables-save", "ip6tables-restore"),
    }
}

impl IptablesRestore {
    /// The iptables data plane running its tools through `runner`, for rulesets that carry
    /// the default table name ([`dualstack_ruleset::DEFAULT_TABLE`]).
    pub fn new(runner: Runner) -> IptablesRestore {
        IptablesRestore::with_table(runner, dualstack_ruleset::DEFAULT_TABLE)
    }

    /// The same, for rulesets that carry table name `table` (iptables has no table of ours;
    /// the name only tells the sync engine what to put in the rulesets it builds).
    pub fn with_table(runner: Runner, table: &str) -> IptablesRestore {
        IptablesRestore {
            runner,
            table: table.to_string(),
            udp: SharedUdpFlows::default(),
        }
    }

    /// The table name rulesets for this plane carry.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// What of ours exists now in one family.
    pub fn owned(&self, family: Family) -> Result<Owned, DataplaneError> {
        let (save, _) = tools(family);
        let mut text = String::new();
        for table in ["mangle", "nat"] {
            text.push_str(&self.runner.run(save, &["-t", table], "")?);
        }
        Ok(Owned::parse(&text))
    }

    /// Makes both families match `ruleset` (one restore per family), then deletes the UDP
    /// conntrack entries of the UDP frontends it added, removed or changed (all of its UDP
    /// frontends on the handle's first sync, or after a failed one), so that a flow to an
    /// unchanged UDP Service keeps its NAT binding.
    pub fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        // Validate (and render) both families before touching either.
        let mut scripts = Vec::new();
        for family in Family::BOTH {
            let current = self.owned(family)?;
            scripts.push((family, render_sync(ruleset, family, &current)?));
        }
        let (ports, next) = self.udp.full(&ruleset.frontends);
        for (family, text) in scripts {
            if let Err(e) = self.restore(family, &text) {
                self.udp.forget();
                return Err(e);
            }
        }
        self.udp
            .settle(next, conntrack::flush_udp(&self.runner, &ports))
    }

    /// Removes every chain and jump of ours in both families, nothing else. Idempotent.
    pub fn cleanup(&self) -> Result<(), DataplaneError> {
        self.udp.forget();
        for family in Family::BOTH {
            let text = render_cleanup(&self.owned(family)?);
            if !text.is_empty() {
                self.restore(family, &text)?;
            }
        }
        Ok(())
    }

    fn restore(&self, family: Family, text: &str) -> Result<(), DataplaneError> {
        let (_, restore) = tools(family);
        self.runner
            .run(restore, &["--noflush", "-w", LOCK_WAIT], text)
            .map(|_| ())
    }
}
