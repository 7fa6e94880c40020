//! Runs benchmark code on a thread inside a throwaway namespace, and proves it is there
//! before anything touches the kernel: the host's own ruleset is never a benchmark target.

use std::os::unix::fs::MetadataExt;
use std::path::Path;

use dualstack_testbed::Netns;

use crate::BenchError;

/// Runs `f` on a thread that has entered `ns`, after checking that the thread's network
/// namespace really is `ns` (same nsfs inode as `/run/netns/<name>`). Processes `f` starts
/// (`nft`, `iptables`) inherit that namespace, so no `ip netns exec` is timed.
pub fn inside<T, F>(ns: &Netns, f: F) -> Result<T, BenchError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, BenchError> + Send + 'static,
{
    let name = ns.name().to_string();
    let expected = inode(&Path::new("/run/netns").join(&name))?;
    ns.run_in(move || {
        let here = inode(Path::new("/proc/thread-self/ns/net"))?;
        if here != expected {
            return Err(BenchError::NotInNamespace(name));
        }
        f()
    })?
}

fn inode(path: &Path) -> Result<(u64, u64), BenchError> {
    std::fs::metadata(path)
        .map(|m| (m.dev(), m.ino()))
        .map_err(|source| BenchError::Io {
            what: format!("stat {}", path.display()),
            source,
        })
}
