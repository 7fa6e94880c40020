//! Benchmarks of the data plane, run as root inside throwaway network namespaces (never the
//! host's own ruleset; traffic only between namespaces the bench created).
//!
//! * [`sync`]: programming N dual-stack Services — our nft full sync and incremental
//!   change, klipper-lb's one `iptables` process per rule (capped by a time budget), and our
//!   `iptables-restore` fallback;
//! * [`datapath`]: new-connection latency and request rate through the node for our nft
//!   ruleset and for a linear list of iptables DNAT rules, at N = 1 and larger N, against the
//!   direct routed path; bulk throughput through DNAT against the direct path;
//! * [`memory`]: peak resident memory of `dualstack agent --snapshot FILE --once` on a
//!   generated cluster dump with N Services;
//! * [`workload`]: what gets programmed (pure); [`stats`]: medians and percentiles (pure);
//! * [`machine`]: the machine description every report carries.
//!
//! Benchmarks measure; they do not pass or fail. `BENCHMARKS.md` holds the method and the
//! results.

pub mod datapath;
mod inside;
pub mod machine;
pub mod memory;
mod sink;
pub mod stats;
pub mod sync;
pub mod text;
pub mod workload;

use dualstack_dataplane::DataplaneError;
use dualstack_ruleset::InvalidRuleset;
use dualstack_testbed::TestbedError;

pub use dualstack_testbed::is_root;
pub use workload::MAX_SERVICES;

/// Why a benchmark could not run.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// `--services` asked for a number of Services the workload cannot generate.
    #[error("--services: {0} is out of range (1 to {MAX_SERVICES})")]
    Services(usize),
    /// `--services` was given no number.
    #[error("--services: the list is empty")]
    NoServices,
    /// The network namespaces could not be set up or driven.
    #[error(transparent)]
    Testbed(#[from] TestbedError),
    /// The data plane refused the generated table.
    #[error(transparent)]
    Dataplane(#[from] DataplaneError),
    /// The generated ruleset is invalid (a bug in the workload).
    #[error(transparent)]
    Invalid(#[from] InvalidRuleset),
    /// A guard against touching the host: the measuring thread is not in the bench's namespace.
    #[error("refusing to run: this thread is not inside the bench namespace {0}")]
    NotInNamespace(String),
    /// A file or process the bench needs failed.
    #[error("{what}: {source}")]
    Io {
        /// What was being done, for the message.
        what: String,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A measurement could not be taken (a connection failed, a tool printed nonsense).
    #[error("{0}")]
    Measurement(String),
}

impl BenchError {
    pub(crate) fn internal(what: &str) -> BenchError {
        BenchError::Measurement(format!("bench bug: {what}"))
    }
}

/// Every N must be 1 to [`MAX_SERVICES`], and there must be at least one.
pub fn check_services(services: &[usize]) -> Result<(), BenchError> {
    if services.is_empty() {
        return Err(BenchError::NoServices);
    }
    match services.iter().find(|n| **n == 0 || **n > MAX_SERVICES) {
        Some(n) => Err(BenchError::Services(*n)),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn service_counts_are_checked() {
        assert!(check_services(&[1, 10_000, MAX_SERVICES]).is_ok());
        assert!(matches!(check_services(&[]), Err(BenchError::NoServices)));
        assert!(matches!(
            check_services(&[5, 0]),
            Err(BenchError::Services(0))
        ));
        let too_many = MAX_SERVICES + 1;
        assert!(
            matches!(check_services(&[too_many]), Err(BenchError::Services(n)) if n == too_many)
        );
    }
}
