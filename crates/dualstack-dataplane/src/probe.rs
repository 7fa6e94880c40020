//! Which data plane this host (or namespace) supports, decided by asking the kernel with a
//! dry-run transaction — never by `lsmod` (which misses built-in modules).

use crate::{DataplaneError, Runner};

/// A data plane we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// nf_tables with NAT: our `table inet` (preferred).
    Nftables,
    /// `iptables-restore` / `ip6tables-restore` into our own chains.
    IptablesRestore,
}

/// A throwaway table with a NAT chain and a DNAT rule of each family, checked with
/// `nft -c` (the kernel validates the batch, then it is aborted: nothing changes).
const PROBE: &str = "table inet dualstack-probe {
\tchain p {
\t\ttype nat hook prerouting priority dstnat - 10; policy accept;
\t\tmeta l4proto tcp ip daddr 127.0.0.1 dnat ip to 127.0.0.1:1
\t\tmeta l4proto tcp ip6 daddr ::1 dnat ip6 to [::1]:1
\t}
}
";

/// Probes nft first, then `iptables-restore --test` (also a dry run). Returns the error of
/// the last attempt when neither works.
pub fn probe(runner: &Runner) -> Result<Backend, DataplaneError> {
    match runner.run("nft", &["-c", "-f", "-"], PROBE) {
        Ok(_) => Ok(Backend::Nftables),
        Err(_) => {
            let text = "*nat\n:DUALSTACK-PROBE - [0:0]\nCOMMIT\n";
            runner.run(
                "iptables-restore",
                &["--test", "--noflush", "-w", "5"],
                text,
            )?;
            Ok(Backend::IptablesRestore)
        }
    }
}
