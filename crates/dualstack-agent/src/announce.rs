//! The agent's announcement step: from a decision to this node's announcer. The decision
//! says which pool addresses this node announces ([`Decision::announcements_for`]); this
//! step resolves them to interfaces and hands them to the
//! [`dualstack_announce::Announcer`], which answers ARP/NDP for them until told
//! otherwise. Addresses another node took over are dropped at once; new ones are announced
//! at once (gratuitous ARP, unsolicited NA).
//!
//! The announcer's sockets and threads live in the network namespace of the thread that
//! calls [`AnnounceStep::apply`] (the node's, for a hostNetwork agent).

use std::fmt;

use dualstack_announce::{Announcer, InterfaceStatus, Options, Target, links, resolve};
use dualstack_lb::Decision;

/// What one [`AnnounceStep::apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AnnounceReport {
    /// (address, interface) pairs announced from now on.
    pub targets: Vec<Target>,
    /// Whether they differ from the previous step.
    pub changed: bool,
    /// Announcements that could not be carried out here, and why.
    pub problems: Vec<String>,
}

impl fmt::Display for AnnounceReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.targets.is_empty() {
            writeln!(f, "announcing nothing")?;
        }
        for t in &self.targets {
            writeln!(f, "announcing {} on {}", t.ip, t.interface)?;
        }
        for p in &self.problems {
            writeln!(f, "cannot announce {p}")?;
        }
        Ok(())
    }
}

/// This node's announcer, fed from decisions.
pub struct AnnounceStep {
    node: String,
    announcer: Announcer,
    last: Option<Vec<Target>>,
}

impl AnnounceStep {
    /// A step for `node` with announcement timing `options`.
    pub fn new(node: impl Into<String>, options: Options) -> AnnounceStep {
        AnnounceStep {
            node: node.into(),
            announcer: Announcer::new(options),
            last: None,
        }
    }

    /// Announces what `decision` assigns to this node, and nothing else.
    pub fn apply(&mut self, decision: &Decision) -> AnnounceReport {
        let (targets, mut problems) = match links() {
            Ok(links) => resolve(decision.announcements_for(&self.node), &links),
            Err(e) => (Vec::new(), vec![e.to_string()]),
        };
        problems.sort();
        let changed = self.last.as_ref() != Some(&targets);
        if changed {
            self.announcer.set(&targets);
            self.last = Some(targets.clone());
        }
        AnnounceReport {
            targets,
            changed,
            problems,
        }
    }

    /// Per interface: addresses, solicited-node groups joined, counters, last error.
    pub fn status(&self) -> Vec<InterfaceStatus> {
        self.announcer.status()
    }
}
