//! The incremental transaction as typed steps (verb + object): decided once here, then
//! written as nft text ([`Changes`]'s `Display`, exactly what `nft -f` is fed and the
//! snapshots show) or encoded as netlink messages (`dualstack-nftnl` walks the same
//! [`Changes::steps`]). So the two appliers cannot disagree on what a change does, only on
//! how they spell it, and the kernel equivalence tests check the spelling.
//!
//! Order: for each removed frontend, its map elements are deleted, then its own `fe*` chains;
//! then for each added frontend, each chain it needs (except a shared `allow*` chain the
//! caller knows is there, or one an earlier frontend of this transaction already wrote) is
//! created if absent, flushed and filled, and then its elements are added.

use std::collections::BTreeSet;
use std::fmt;

use super::plan::{Chain, ChainRole, Element, FrontendPlan, plan};
use crate::model::Frontend;
use crate::validate::{InvalidRuleset, validate_frontend, validate_table_name};

/// One step of an incremental transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step<'a> {
    /// `delete element`: the element's key from its map.
    DeleteElement(&'a Element),
    /// `delete chain`: a removed frontend's own chain.
    DeleteChain(&'a str),
    /// `add chain` (created if absent), with the frontend chain's comment.
    AddChain(&'a Chain),
    /// `flush chain`: its rules removed, so the next step fills it from scratch.
    FlushChain(&'a str),
    /// `add rule` for every rule of the chain, in order.
    AddRules(&'a Chain),
    /// `add element`: the element into its map.
    AddElement(&'a Element),
}

/// A validated incremental transaction on table `inet <table>` (see the module docs).
#[derive(Debug, Clone)]
pub struct Changes {
    table: String,
    remove: Vec<FrontendPlan>,
    add: Vec<FrontendPlan>,
    present: BTreeSet<String>,
}

impl Changes {
    /// Removes `remove`'s elements and `fe*` chains, then adds `add`; shared `allow*` chains
    /// in `present` are taken as already there. Every frontend and the table name are
    /// validated first (all problems reported at once); overlap with frontends left in the
    /// table is the caller's to check.
    pub fn new(
        table: &str,
        remove: &[Frontend],
        add: &[Frontend],
        present: &BTreeSet<String>,
    ) -> Result<Changes, InvalidRuleset> {
        let mut errors = Vec::new();
        if let Err(e) = validate_table_name(table) {
            errors.push(e);
        }
        for (i, fe) in remove.iter().chain(add).enumerate() {
            errors.extend(validate_frontend(i, fe));
        }
        if !errors.is_empty() {
            return Err(InvalidRuleset(errors));
        }
        Ok(Changes {
            table: table.to_string(),
            remove: remove.iter().map(plan).collect(),
            add: add.iter().map(plan).collect(),
            present: present.clone(),
        })
    }

    /// The table the transaction is for.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// The steps, in the order they are sent.
    pub fn steps(&self) -> Vec<Step<'_>> {
        let mut out = Vec::new();
        for p in &self.remove {
            out.extend(p.elements.iter().map(Step::DeleteElement));
            out.extend(
                p.chains
                    .iter()
                    .filter(|c| c.role == ChainRole::Frontend)
                    .map(|c| Step::DeleteChain(&c.name)),
            );
        }
        let mut written: BTreeSet<&str> = BTreeSet::new();
        for p in &self.add {
            for chain in &p.chains {
                let known = chain.role == ChainRole::Allow && self.present.contains(&*chain.name);
                if known || !written.insert(&chain.name) {
                    continue;
                }
                out.extend([
                    Step::AddChain(chain),
                    Step::FlushChain(&chain.name),
                    Step::AddRules(chain),
                ]);
            }
            out.extend(p.elements.iter().map(Step::AddElement));
        }
        out
    }
}

impl fmt::Display for Changes {
    /// The transaction as `nft -f` text, one statement per line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let table = &self.table;
        for step in self.steps() {
            match step {
                Step::DeleteElement(e) => writeln!(
                    f,
                    "delete element inet {table} {} {{ {} }}",
                    e.map,
                    e.key_text()
                )?,
                Step::DeleteChain(name) => writeln!(f, "delete chain inet {table} {name}")?,
                Step::AddChain(chain) => match &chain.comment {
                    Some(comment) => writeln!(
                        f,
                        "add chain inet {table} {} {{ comment \"{comment}\"; }}",
                        chain.name
                    )?,
                    None => writeln!(f, "add chain inet {table} {}", chain.name)?,
                },
                Step::FlushChain(name) => writeln!(f, "flush chain inet {table} {name}")?,
                Step::AddRules(chain) => {
                    for rule in chain.body.rules() {
                        writeln!(f, "add rule inet {table} {} {rule}", chain.name)?;
                    }
                }
                Step::AddElement(e) => {
                    writeln!(f, "add element inet {table} {} {{ {e} }}", e.map)?;
                }
            }
        }
        Ok(())
    }
}
