//! `dualstack demo --cleanup`: removes what a kept (or killed) demo left behind — the
//! namespaces named `dsdemo-*` and the demo's own backend processes inside them — and nothing
//! else.

use std::process::Command;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use dualstack_dataplane::{Nft, Runner};

use super::topology::{PREFIX, TABLE};

/// The argument that marks a kept backend process (`dualstack demo --serve-echo POD …`).
pub const SERVE_FLAG: &str = "--serve-echo";

/// The demo's namespaces that exist now (`ip netns list`, names starting with `dsdemo-`).
pub fn ours() -> anyhow::Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("running `ip netns list`")?;
    if !out.status.success() {
        bail!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(names_with_prefix(&String::from_utf8_lossy(&out.stdout)))
}

/// Names in `ip netns list` output (`name` or `name (id: N)` per line) that are ours.
pub fn names_with_prefix(list: &str) -> Vec<String> {
    let mut names: Vec<String> = list
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(PREFIX))
        .map(str::to_string)
        .collect();
    names.sort();
    names
}

/// Whether a process command line (NUL-separated, from `/proc/PID/cmdline`) is a kept
/// demo backend.
pub fn is_backend(cmdline: &[u8]) -> bool {
    let args: Vec<&[u8]> = cmdline.split(|b| *b == 0).collect();
    args.windows(2)
        .any(|w| w[0] == b"demo".as_slice() && w[1] == SERVE_FLAG.as_bytes())
}

/// Whether a process is still running: it exists and is not a zombie waiting for a parent
/// (init, since the demo that started it has exited) to collect it.
pub fn running(pid: &str) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|stat| stat_state(&stat))
        .is_some_and(|state| state != 'Z' && state != 'X')
}

/// The state letter of a `/proc/PID/stat` line (after the command name in parentheses).
fn stat_state(stat: &str) -> Option<char> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.trim_start().chars().next()
}

/// Stops the demo backends inside `ns` (SIGTERM, then waits up to 2 s for each). Other
/// processes in the namespace (a shell someone opened there) are left alone.
fn stop_backends(ns: &str) -> anyhow::Result<usize> {
    let out = Command::new("ip")
        .args(["netns", "pids", ns])
        .output()
        .with_context(|| format!("running `ip netns pids {ns}`"))?;
    let pids: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut stopped = 0;
    for pid in pids {
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !is_backend(&cmdline) {
            continue;
        }
        let status = Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("running `kill`")?;
        if status.success() {
            let deadline = Instant::now() + Duration::from_secs(2);
            while running(&pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            stopped += 1;
        }
    }
    Ok(stopped)
}

/// Removes every `dsdemo-*` namespace: backends first, then the agent table, then the
/// namespace. Returns the lines to print.
pub fn run() -> anyhow::Result<Vec<String>> {
    let names = ours()?;
    if names.is_empty() {
        return Ok(vec![format!(
            "nothing to remove: no network namespace named {PREFIX}*"
        )]);
    }
    let mut lines = Vec::new();
    let mut errors = Vec::new();
    for name in &names {
        let stopped = stop_backends(name)?;
        // Only nodes have a table; removing a missing one is not an error.
        Nft::new(Runner::in_netns(name.clone()), TABLE)?
            .cleanup()
            .with_context(|| format!("removing table inet {TABLE} in {name}"))?;
        let out = Command::new("ip")
            .args(["netns", "delete", name])
            .output()
            .context("running `ip netns delete`")?;
        if out.status.success() {
            let backends = match stopped {
                0 => String::new(),
                n => format!(" (stopped {n} backend process(es))"),
            };
            lines.push(format!("removed namespace {name}{backends}"));
        } else {
            errors.push(format!(
                "{name}: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ));
        }
    }
    if !errors.is_empty() {
        bail!("could not remove: {}", errors.join("; "));
    }
    Ok(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_our_prefix_is_ours() {
        let list = "dsdemo-node-1 (id: 3)\nds1234-0-ab12-node\ndsdemo-lan\nmyns\n xdsdemo-a\n";
        assert_eq!(names_with_prefix(list), vec!["dsdemo-lan", "dsdemo-node-1"]);
        assert!(names_with_prefix("").is_empty());
    }

    #[test]
    fn reads_the_process_state() {
        assert_eq!(stat_state("42 (dualstack) S 1 42"), Some('S'));
        assert_eq!(stat_state("42 (odd ) name) Z 1 42"), Some('Z'));
        assert_eq!(stat_state("garbage"), None);
        assert!(running(&std::process::id().to_string()));
        assert!(!running("not-a-pid"));
    }

    #[test]
    fn recognizes_kept_backends_only() {
        assert!(is_backend(
            b"/usr/bin/dualstack\0demo\0--serve-echo\0web-1\0--port\x008080\0"
        ));
        assert!(!is_backend(b"/bin/bash\0"));
        assert!(!is_backend(b"/usr/bin/dualstack\0demo\0--keep\0"));
        assert!(!is_backend(b"sh\0-c\0demo --serve-echo x\0"));
    }
}
