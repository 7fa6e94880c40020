//! What the subcommands that run the LoadBalancer decision share (`lb explain`, `agent`,
//! `controller`): the configuration flags and reading a cluster dump.

use clap::Args;
use dualstack_lb::config::{DEFAULT_CLASS, DEFAULT_LEASE_NAMESPACE};
use dualstack_lb::time::clock;
use dualstack_lb::{Config, Mode, Snapshot, SnapshotError, Timestamp};

use crate::exit::usage;

/// The decision's configuration, shared by `agent` and `controller` (they must agree).
#[derive(Debug, Clone, Args)]
pub struct DecisionArgs {
    /// Our `spec.loadBalancerClass`.
    #[arg(long, env = "DUALSTACK_CLASS", default_value = DEFAULT_CLASS)]
    pub class: String,
    /// Also handle LoadBalancer Services that set no `loadBalancerClass`.
    #[arg(long, env = "DUALSTACK_DEFAULT_CLASS")]
    pub default_class: bool,
    /// Data plane: `nftables` (our agent, ipMode Proxy) or `kube-proxy` (ipMode VIP; the agent programs nothing).
    #[arg(
        long,
        env = "DUALSTACK_MODE",
        default_value = "nftables",
        value_name = "nftables|kube-proxy"
    )]
    pub mode: Mode,
    /// Namespace of the per-node agent Leases.
    #[arg(long, env = "DUALSTACK_LEASE_NAMESPACE", default_value = DEFAULT_LEASE_NAMESPACE)]
    pub lease_namespace: String,
    /// Ignore `node.kubernetes.io/exclude-from-external-load-balancers` on nodes.
    #[arg(long, env = "DUALSTACK_IGNORE_EXCLUSION_LABEL")]
    pub ignore_exclusion_label: bool,
}

impl DecisionArgs {
    pub fn config(&self) -> Config {
        Config {
            class: self.class.clone(),
            default_class: self.default_class,
            mode: self.mode,
            lease_namespace: self.lease_namespace.clone(),
            ignore_exclusion_label: self.ignore_exclusion_label,
        }
    }
}

/// Dump files up to this size are read whole and parsed as text; larger ones are decoded
/// as they are read ([`Snapshot::read`]), so a 12.5 MB dump is never held as text. Both give
/// the same snapshot; the whole-text path runs less code, which at small sizes is most of
/// the agent's resident memory (its executable's pages).
const READ_WHOLE_BYTES: u64 = 1 << 20;

/// Reads a cluster dump (a `kubectl get … -o yaml|json` List or YAML stream) from `file`,
/// or from standard input when `file` is `-`. `flag` names the option in error messages.
/// JSON from standard input or a file larger than [`READ_WHOLE_BYTES`] is decoded as it is
/// read ([`Snapshot::read`]): a large dump is never held whole.
pub fn load_snapshot(file: &str, flag: &str) -> anyhow::Result<Snapshot> {
    let (read, name) = if file == "-" {
        let read = Snapshot::read(std::io::stdin().lock());
        (read, "standard input".to_owned())
    } else {
        let opened = std::fs::File::open(file)
            .map_err(|err| usage(format!("cannot read {flag} {file}: {err}")))?;
        let small = opened
            .metadata()
            .is_ok_and(|m| m.is_file() && m.len() <= READ_WHOLE_BYTES);
        let read = if small {
            // Small: one read and the whole-text parser (same result, less code run).
            std::io::read_to_string(opened)
                .map_err(SnapshotError::Io)
                .and_then(|text| Snapshot::parse(&text))
        } else {
            Snapshot::read(opened)
        };
        (read, format!("{flag} {file}"))
    };
    read.map_err(|err| match err {
        SnapshotError::Io(err) => usage(format!("cannot read {name}: {err}")),
        other => usage(format!("cannot read {name} as a cluster dump: {other}")),
    })
}

/// The instant an offline decision is made for: `--now` when given, else the time the dump
/// was taken ([`Snapshot::taken_at`]), else the clock. Says on stderr which one it used when it
/// was not given, because Lease expiry depends on it.
pub fn offline_now(explicit: Option<Timestamp>, snapshot: &Snapshot) -> anyhow::Result<Timestamp> {
    if let Some(now) = explicit {
        return Ok(now);
    }
    match snapshot.taken_at() {
        Some(taken) => {
            eprintln!(
                "note: deciding as of {taken}, the newest Lease renewal in the dump; \
                 pass --now to decide for another instant"
            );
            Ok(taken)
        }
        None => Ok(clock()?),
    }
}
