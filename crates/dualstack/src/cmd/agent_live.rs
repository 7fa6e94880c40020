//! The in-cluster agent (`dualstack agent` without `--snapshot`).

use dualstack_dataplane::Nft;

use super::agent::AgentArgs;
use crate::exit::{Outcome, usage};

pub fn run(_args: AgentArgs, _node: String, _nft: Nft) -> anyhow::Result<Outcome> {
    Err(usage(
        "the in-cluster agent is not available in this build yet; use --snapshot FILE --once",
    ))
}
