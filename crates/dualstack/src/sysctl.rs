//! Reading forwarding sysctls of the current network namespace from `/proc/sys`.
//!
//! `/proc/sys/net` shows the namespace of the reading process, so this answers for the
//! namespace the binary runs in (a pod, a node, or a test namespace).

use std::path::{Path, PathBuf};

use dualstack_addr::Family;

/// The sysctl that turns forwarding on for `family`, in dotted form.
pub fn forwarding_key(family: Family) -> &'static str {
    match family {
        Family::V4 => "net.ipv4.ip_forward",
        Family::V6 => "net.ipv6.conf.all.forwarding",
    }
}

fn path_of(root: &Path, key: &str) -> PathBuf {
    root.join(key.replace('.', "/"))
}

/// Reads a sysctl under `root` (normally `/proc/sys`). `None` when it does not exist or
/// cannot be read (for example IPv6 disabled in the kernel).
pub fn read(root: &Path, key: &str) -> Option<String> {
    std::fs::read_to_string(path_of(root, key))
        .ok()
        .map(|s| s.trim().to_owned())
}

/// Whether forwarding is on (exactly `1`) for `family` in this namespace.
pub fn forwarding_enabled(root: &Path, family: Family) -> bool {
    read(root, forwarding_key(family)).as_deref() == Some("1")
}

/// The default root of sysctls.
pub fn proc_sys() -> &'static Path {
    Path::new("/proc/sys")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_forwarding_from_a_fake_root() {
        let dir = std::env::temp_dir().join(format!("dualstack-sysctl-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("net/ipv4")).unwrap();
        std::fs::create_dir_all(dir.join("net/ipv6/conf/all")).unwrap();
        std::fs::write(dir.join("net/ipv4/ip_forward"), "1\n").unwrap();
        std::fs::write(dir.join("net/ipv6/conf/all/forwarding"), "0\n").unwrap();
        assert!(forwarding_enabled(&dir, Family::V4));
        assert!(!forwarding_enabled(&dir, Family::V6));
        std::fs::remove_dir_all(&dir).unwrap();
        assert!(!forwarding_enabled(&dir, Family::V4), "missing means off");
    }
}
