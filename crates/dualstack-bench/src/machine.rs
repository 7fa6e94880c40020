//! The machine a benchmark ran on: CPUs, kernel, tool versions and load (for the report).

use std::process::Command;

use serde::Serialize;

/// What a reader needs to judge the numbers.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Machine {
    /// CPUs available to the bench.
    pub nproc: usize,
    /// `uname -r`.
    pub kernel: String,
    /// `nft --version`, or `unavailable`.
    pub nft: String,
    /// `iptables --version`, or `unavailable`.
    pub iptables: String,
    /// `/proc/loadavg` when the bench started: other work on the machine adds noise.
    pub loadavg: String,
}

impl Machine {
    /// Reads everything; a missing tool shows as `unavailable`.
    pub fn describe() -> Machine {
        Machine {
            nproc: std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            kernel: read_trimmed("/proc/sys/kernel/osrelease"),
            nft: version("nft", "--version"),
            iptables: version("iptables", "--version"),
            loadavg: read_trimmed("/proc/loadavg"),
        }
    }
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_string())
        .unwrap_or_else(|_| "unavailable".to_string())
}

fn version(program: &str, flag: &str) -> String {
    match Command::new(program).arg(flag).output() {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().to_string(),
        _ => "unavailable".to_string(),
    }
}
