//! Which data plane this host (or namespace) supports, decided by asking the kernel with a
//! dry-run transaction — never by `lsmod` (which misses built-in modules). [`connect`]
//! tries netlink first, then the `nft` binary, then `iptables-restore`.

use std::net::IpAddr;

use dualstack_ruleset::{Backend as Target, Destination, Frontend, Protocol, Ruleset, Selection};

use crate::{Dataplane, DataplaneError, IptablesRestore, Netlink, Nft, NftSocket, Runner};

/// A data plane we can use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    /// nf_tables with NAT, programmed over netlink (preferred: no `nft` process).
    Netlink,
    /// nf_tables with NAT, programmed with the `nft` binary.
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

/// The probe table over netlink: one frontend with a DNAT of each family through our maps
/// and chains.
fn probe_ruleset() -> Ruleset {
    let v4 = IpAddr::from([127, 0, 0, 1]);
    let v6 = IpAddr::from(std::net::Ipv6Addr::LOCALHOST);
    Ruleset {
        guard: Vec::new(),
        table: "dualstack-probe".into(),
        frontends: vec![Frontend {
            name: "probe".into(),
            destination: Destination::Addresses(vec![v4, v6]),
            protocol: Protocol::Tcp,
            port: 1,
            source_ranges: vec![],
            backends: vec![Target { addr: v4, port: 1 }, Target { addr: v6, port: 1 }],
            selection: Selection::Random,
            masquerade: true,
        }],
    }
}

/// Whether nf_tables NAT can be programmed over netlink where `runner` runs: a dry-run
/// batch of the probe table (validated by the kernel, then aborted).
pub fn probe_netlink(runner: &Runner) -> Result<(), DataplaneError> {
    let mut sock = NftSocket::for_runner(runner)?;
    let rs = probe_ruleset();
    sock.check(|seq, genid| dualstack_nftnl::full_check(&rs, seq, genid))?;
    Ok(())
}

/// The best data plane for `table` where `runner` runs: netlink, else `nft -f`, else
/// `iptables-restore`. Returns the error of the last attempt when none works.
pub fn connect(
    runner: &Runner,
    table: &str,
) -> Result<(Box<dyn Dataplane>, Backend), DataplaneError> {
    if probe_netlink(runner).is_ok() {
        return Ok((
            Box::new(Netlink::new(runner.clone(), table)?),
            Backend::Netlink,
        ));
    }
    match probe(runner)? {
        Backend::IptablesRestore => Ok((
            Box::new(IptablesRestore::with_table(runner.clone(), table)),
            Backend::IptablesRestore,
        )),
        _ => Ok((
            Box::new(Nft::new(runner.clone(), table)?),
            Backend::Nftables,
        )),
    }
}
