//! `dualstack klipper`: the entrypoint for K3s `svclb` containers (klipper-lb env contract).
//!
//! Reads the environment, checks all of it before touching the kernel, programs one nft table
//! for both families, writes the readiness file, waits for SIGTERM/SIGINT, then deletes its
//! table and exits 0. A restart that finds its own table already carrying exactly this
//! program (SIGKILL leaves the table) leaves it in place. See `docs/klipper.md`.

use std::path::{Path, PathBuf};

use anyhow::Context;
use clap::Args;
use dualstack_addr::Family;
use dualstack_dataplane::{Dataplane, Runner};
use dualstack_klipper::{FamilyPlan, Forwarding, KlipperConfig, Program, default_table_name};
use dualstack_ruleset::{Ruleset, validate};
use dualstack_signal::Termination;

use crate::exit::{Outcome, usage};
use crate::logging::{self, LogFormat};
use crate::sysctl;

#[derive(Debug, Args)]
pub struct KlipperArgs {
    /// File created once the rules are in the kernel, removed on exit.
    #[arg(long, value_name = "PATH", default_value = "/run/dualstack/ready")]
    pub ready_file: PathBuf,
    /// The nft table to own. Default: `dualstack-klipper-<proto>-<SRC_PORT>`, one per container,
    /// because every container of an svclb pod shares the pod's network namespace.
    #[arg(long, value_name = "NAME")]
    pub table: Option<String>,
    /// Log line format.
    #[arg(long, value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

pub fn run(args: KlipperArgs) -> anyhow::Result<Outcome> {
    logging::init(args.log_format);
    // A ready file left by a killed predecessor (a restart in the same pod) must not make
    // this container look ready before its rules are back.
    remove_ready(&args.ready_file);

    // 1. Everything is checked before the kernel is touched.
    let config = KlipperConfig::from_vars(|name| std::env::var(name).ok())
        .map_err(|e| usage(e.to_string()))?;
    let table = args
        .table
        .clone()
        .unwrap_or_else(|| default_table_name(config.protocol, config.src_port));
    let forwarding = Forwarding {
        v4: sysctl::forwarding_enabled(sysctl::proc_sys(), Family::V4),
        v6: sysctl::forwarding_enabled(sysctl::proc_sys(), Family::V6),
    };
    let program = dualstack_klipper::program(&config, forwarding, &table);
    validate(&program.ruleset).map_err(|e| usage(e.to_string()))?;
    dualstack_ruleset::validate_table_name(&table).map_err(|e| usage(e.to_string()))?;
    // Netlink first, then the nft binary, then iptables-restore (dry-run probes).
    let (nft, backend) = dualstack_dataplane::connect(&Runner::host(), &table)
        .with_context(|| "no usable data plane (nf_tables over netlink, nft, iptables-restore)")?;
    tracing::info!(?backend, "data plane chosen");

    // Installed before anything is programmed, so that a signal that arrives mid-way still
    // leads to cleanup instead of the default "die at once".
    let termination = Termination::listen()?;
    log_families(&program, &config);

    // 2. Program (or, with nothing to serve, make sure nothing stale of ours remains).
    if program.serves_anything() {
        // A container restarted in the same pod (crash, OOM kill, SIGKILL) finds its table
        // still in force. When it already carries exactly this program, it is left as it
        // is: replacing it would gain nothing, and a replacement is not free for traffic.
        // The transaction is atomic for the rules, but the new base chains are hooked in
        // before it commits and, at the same priority, run *before* the old ones; a packet
        // that passes the new (still empty) chain just before the commit and the old
        // (now emptied) chain just after sees no rule at all, and a new connection is
        // refused (seen under load, RELIABILITY.md § 2). Flushing UDP conntrack would
        // also make in-flight requests lose their replies.
        if already_programmed(nft.as_ref(), &program.ruleset) {
            tracing::info!(
                "table inet {table} already carries this program (a restart): left in place, \
                 conntrack untouched"
            );
        } else {
            nft.apply(&program.ruleset)
                .with_context(|| format!("programming table inet {table}"))?;
        }
        write_ready(&args.ready_file)?;
        tracing::info!(
            "table inet {table} programmed; ready ({})",
            args.ready_file.display()
        );
    } else {
        nft.cleanup()
            .with_context(|| format!("removing stale table inet {table}"))?;
        tracing::error!(
            "no family can be forwarded: nothing programmed, not ready; waiting for termination"
        );
    }

    // 3. Wait for SIGTERM/SIGINT, then remove exactly what we added.
    termination.wait();
    tracing::info!("terminating: removing table inet {table}");
    remove_ready(&args.ready_file);
    nft.cleanup()
        .with_context(|| format!("removing table inet {table}"))?;
    tracing::info!("table inet {table} removed");
    Ok(Outcome::Ok)
}

/// True when the kernel already has our table with exactly `ruleset`'s chains and elements
/// (every frontend as this program would put it). False when the table is absent, differs,
/// or cannot be read back (the iptables fallback): then the caller programs it.
fn already_programmed(plane: &dyn Dataplane, ruleset: &Ruleset) -> bool {
    match plane.drift(ruleset) {
        Ok(Some(drift)) => drift.is_empty(),
        Ok(None) => false,
        Err(e) => {
            tracing::debug!(error = %e, "could not read the table back");
            false
        }
    }
}

/// One line per family: what is forwarded where, or why it is not.
fn log_families(program: &Program, config: &KlipperConfig) {
    let frontend = format!("{}/{}", config.protocol, config.src_port);
    for (family, plan) in &program.families {
        match plan {
            FamilyPlan::Served {
                destinations,
                src_ranges,
            } => {
                let to = join(destinations.iter().map(|ip| match ip {
                    std::net::IpAddr::V4(_) => format!("{ip}:{}", config.dest_port),
                    std::net::IpAddr::V6(_) => format!("[{ip}]:{}", config.dest_port),
                }));
                let from = if src_ranges.is_empty() {
                    "nobody (SRC_RANGES lists no range of this family)".to_owned()
                } else {
                    join(src_ranges.iter())
                };
                tracing::info!(family = %family, "{family}: forwarding {frontend} to {to} from {from}, masqueraded");
            }
            FamilyPlan::NotForwarding { destinations } => {
                let key = sysctl::forwarding_key(*family);
                tracing::warn!(
                    family = %family,
                    "{family}: skipped: {key} is not 1 in this pod, so {} cannot be reached; \
                     set it in the pod's securityContext.sysctls",
                    join(destinations.iter())
                );
            }
            FamilyPlan::NoDestination => {
                tracing::info!(family = %family, "{family}: not configured: no destination of this family");
            }
        }
    }
}

fn join<T: std::fmt::Display>(items: impl Iterator<Item = T>) -> String {
    items.map(|i| i.to_string()).collect::<Vec<_>>().join(", ")
}

fn write_ready(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).with_context(|| {
            format!(
                "creating the directory of the ready file {}",
                path.display()
            )
        })?;
    }
    std::fs::write(path, b"ready\n")
        .with_context(|| format!("writing the ready file {}", path.display()))
}

fn remove_ready(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        tracing::warn!(path = %path.display(), error = %e, "could not remove the ready file");
    }
}
