//! The seam between the sync engine and the kernel: a [`Dataplane`] applies a whole
//! ruleset, applies incremental changes, reads its table back and cleans up. Implemented by
//! the netlink applier ([`crate::Netlink`]), the `nft -f` applier ([`crate::Nft`]), the
//! `iptables-restore` fallback ([`crate::IptablesRestore`]) and an in-memory fake
//! ([`crate::fake::Fake`]) for tests without root.

use std::fmt;

use dualstack_ruleset::{Frontend, Ruleset, nft as render};

use crate::readback::{self, Drift, Observed};
use crate::{DataplaneError, IptablesRestore, Netlink, Nft};

/// One owner's data plane (one table).
pub trait Dataplane: fmt::Debug + Send + Sync {
    /// The table name the rulesets given to this plane carry.
    fn table(&self) -> &str;

    /// Replaces everything of ours with `ruleset`, atomically where the backend allows.
    fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError>;

    /// Whether [`Dataplane::apply_changes`] is supported (otherwise every change is a full
    /// [`Dataplane::apply`]).
    fn incremental(&self) -> bool {
        true
    }

    /// Removes the frontends in `remove`, adds those in `add`, in one transaction.
    fn apply_changes(&self, remove: &[Frontend], add: &[Frontend]) -> Result<(), DataplaneError>;

    /// [`Dataplane::apply_changes`] for a difference from `previous`, sent only when the
    /// plane can prove the kernel still holds exactly what its own last commit left, which
    /// was `previous`: nothing else has changed the kernel's tables since, checked by the
    /// kernel in the same transaction. `Ok(false)` when it cannot prove it (nothing was
    /// sent; the caller replaces the table whole). Planes that cannot prove it (the
    /// default) always answer `Ok(false)`.
    fn apply_changes_if_untouched(
        &self,
        previous: &[Frontend],
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<bool, DataplaneError> {
        let _ = (previous, remove, add);
        Ok(false)
    }

    /// Reads our table back: `Ok(None)` when it does not exist.
    fn observe(&self) -> Result<Option<Observed>, DataplaneError>;

    /// Compares the kernel with `ruleset`: `Ok(None)` when this plane cannot read back
    /// (the caller repairs by applying).
    fn drift(&self, ruleset: &Ruleset) -> Result<Option<Drift>, DataplaneError> {
        let expected = render::expected(ruleset)?;
        let observed = self.observe()?.unwrap_or_default();
        let (base, _) = render::skeleton();
        Ok(Some(readback::diff(&expected, &base, &observed)))
    }

    /// Removes everything of ours and nothing else (idempotent).
    fn cleanup(&self) -> Result<(), DataplaneError>;

    /// A short name for logs: `netlink`, `nft`, `iptables-restore`, `fake`.
    fn kind(&self) -> &'static str;
}

impl Dataplane for Nft {
    fn table(&self) -> &str {
        Nft::table(self)
    }
    fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        Nft::apply(self, ruleset)
    }
    fn apply_changes(&self, remove: &[Frontend], add: &[Frontend]) -> Result<(), DataplaneError> {
        Nft::apply_changes(self, remove, add)
    }
    fn observe(&self) -> Result<Option<Observed>, DataplaneError> {
        Nft::observe(self)
    }
    fn cleanup(&self) -> Result<(), DataplaneError> {
        Nft::cleanup(self)
    }
    fn kind(&self) -> &'static str {
        "nft"
    }
}

impl Dataplane for Netlink {
    fn table(&self) -> &str {
        Netlink::table(self)
    }
    fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        Netlink::apply(self, ruleset)
    }
    fn apply_changes(&self, remove: &[Frontend], add: &[Frontend]) -> Result<(), DataplaneError> {
        Netlink::apply_changes(self, remove, add)
    }
    fn apply_changes_if_untouched(
        &self,
        previous: &[Frontend],
        remove: &[Frontend],
        add: &[Frontend],
    ) -> Result<bool, DataplaneError> {
        Netlink::apply_changes_if_untouched(self, previous, remove, add)
    }
    fn observe(&self) -> Result<Option<Observed>, DataplaneError> {
        Netlink::observe(self)
    }
    fn cleanup(&self) -> Result<(), DataplaneError> {
        Netlink::cleanup(self)
    }
    fn kind(&self) -> &'static str {
        "netlink"
    }
}

impl Dataplane for IptablesRestore {
    fn table(&self) -> &str {
        IptablesRestore::table(self)
    }
    fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
        IptablesRestore::apply(self, ruleset)
    }
    fn incremental(&self) -> bool {
        false
    }
    fn apply_changes(&self, _: &[Frontend], _: &[Frontend]) -> Result<(), DataplaneError> {
        Err(DataplaneError::Unsupported {
            plane: "iptables-restore",
            what: "incremental changes",
        })
    }
    fn observe(&self) -> Result<Option<Observed>, DataplaneError> {
        Err(DataplaneError::Unsupported {
            plane: "iptables-restore",
            what: "reading the table back",
        })
    }
    fn drift(&self, _: &Ruleset) -> Result<Option<Drift>, DataplaneError> {
        Ok(None)
    }
    fn cleanup(&self) -> Result<(), DataplaneError> {
        IptablesRestore::cleanup(self)
    }
    fn kind(&self) -> &'static str {
        "iptables-restore"
    }
}

/// A reference or a box of a data plane is that data plane: every method forwarded (a
/// method left to its default here would silently turn off what the plane implements).
macro_rules! forward {
    ($($ty:ty),*) => {$(
        impl<D: Dataplane + ?Sized> Dataplane for $ty {
            fn table(&self) -> &str {
                (**self).table()
            }
            fn apply(&self, ruleset: &Ruleset) -> Result<(), DataplaneError> {
                (**self).apply(ruleset)
            }
            fn incremental(&self) -> bool {
                (**self).incremental()
            }
            fn apply_changes(
                &self,
                remove: &[Frontend],
                add: &[Frontend],
            ) -> Result<(), DataplaneError> {
                (**self).apply_changes(remove, add)
            }
            fn apply_changes_if_untouched(
                &self,
                previous: &[Frontend],
                remove: &[Frontend],
                add: &[Frontend],
            ) -> Result<bool, DataplaneError> {
                (**self).apply_changes_if_untouched(previous, remove, add)
            }
            fn observe(&self) -> Result<Option<Observed>, DataplaneError> {
                (**self).observe()
            }
            fn drift(&self, ruleset: &Ruleset) -> Result<Option<Drift>, DataplaneError> {
                (**self).drift(ruleset)
            }
            fn cleanup(&self) -> Result<(), DataplaneError> {
                (**self).cleanup()
            }
            fn kind(&self) -> &'static str {
                (**self).kind()
            }
        }
    )*};
}

forward!(&D, Box<D>);
