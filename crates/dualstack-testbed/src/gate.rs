//! Whether kernel tests (network namespaces, nftables) can run here, decided loudly.

use std::os::unix::fs::MetadataExt;

/// Env var that turns a skip into a failure (CI sets it, so CI can never silently skip).
pub const REQUIRE_ENV: &str = "DUALSTACK_REQUIRE_KERNEL_TESTS";

/// True when we run as root. Without `unsafe`: the owner of `/proc/self` is our effective uid.
pub fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| m.uid() == 0)
        .unwrap_or(false)
}

/// Call first in every kernel test: `if !kernel_tests_enabled("name") { return; }`.
///
/// Returns true as root. Otherwise prints `skipping <test>: needs root for network
/// namespaces and nftables` and returns false — or panics when
/// `DUALSTACK_REQUIRE_KERNEL_TESTS=1`.
pub fn kernel_tests_enabled(test_name: &str) -> bool {
    decide(
        test_name,
        is_root(),
        std::env::var(REQUIRE_ENV).ok().as_deref(),
    )
}

fn decide(test_name: &str, root: bool, require: Option<&str>) -> bool {
    if root {
        return true;
    }
    let reason = format!("{test_name}: needs root for network namespaces and nftables");
    if require == Some("1") {
        panic!("{REQUIRE_ENV}=1 but cannot run {reason}");
    }
    eprintln!("skipping {reason}");
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decides_by_root_and_env() {
        assert!(decide("t", true, Some("1")));
        assert!(!decide("t", false, None));
        assert!(!decide("t", false, Some("0")));
        let panicked = std::panic::catch_unwind(|| decide("t", false, Some("1")));
        assert!(panicked.is_err());
    }
}
