//! Flushing stale UDP conntrack entries after a change, so datagram "flows" created before a
//! rule (or towards a removed or replaced backend) do not keep bypassing it — and only
//! those: a UDP frontend that a sync leaves exactly as it was keeps its flows.
//!
//! * [`UdpFlows`] (pure) decides which `(family, port)` pairs a sync must flush: every UDP
//!   frontend added, removed or changed since the handle's last successful sync (all UDP
//!   frontends on the handle's first sync, since nothing is known about the table before).
//! * [`flush_udp`] runs `conntrack -D` per pair (the `nft -f` fallback's way);
//!   the netlink handle deletes over ctnetlink on its own socket instead
//!   ([`crate::NftSocket::delete_udp_flows`]), so no process runs.

use std::collections::{BTreeMap, BTreeSet};

use dualstack_addr::Family;
use dualstack_ruleset::{Frontend, Protocol};

use crate::{DataplaneError, Runner};

/// `conntrack -D -p udp --dport P -f ipv4|ipv6` for each pair. Deletes every UDP entry
/// whose original destination port is P in that family (UDP has no connection to break;
/// the next datagram creates a fresh entry through the current rules). "0 flow entries"
/// (exit 1) is not an error.
pub fn flush_udp(runner: &Runner, ports: &[(Family, u16)]) -> Result<(), DataplaneError> {
    for (family, port) in ports {
        let port = port.to_string();
        let args = ["-D", "-p", "udp", "--dport", &port, "-f", family.as_str()];
        let out = runner.output("conntrack", &args, "")?;
        if !out.success && !out.stderr.contains("0 flow entries") {
            return Err(DataplaneError::Failed {
                command: format!("conntrack {}", args.join(" ")),
                stderr: out.stderr,
            });
        }
    }
    Ok(())
}

/// The UDP frontends in force after the last successful sync, by name (`None` before the
/// first one, or after a failure: then the next sync flushes every UDP port it programs).
#[derive(Debug, Clone, Default)]
pub struct UdpFlows {
    applied: Option<BTreeMap<String, Frontend>>,
}

fn pairs(fe: &Frontend, out: &mut BTreeSet<(Family, u16)>) {
    if fe.protocol == Protocol::Udp {
        out.extend(fe.served_families().into_iter().map(|f| (f, fe.port)));
    }
}

impl UdpFlows {
    /// The pairs a full sync to `frontends` must flush, and the state after it succeeds.
    pub fn full(&self, frontends: &[Frontend]) -> (Vec<(Family, u16)>, UdpFlows) {
        let now: BTreeMap<String, Frontend> = frontends
            .iter()
            .filter(|f| f.protocol == Protocol::Udp)
            .map(|f| (f.name.clone(), f.clone()))
            .collect();
        let mut out = BTreeSet::new();
        match &self.applied {
            None => now.values().for_each(|f| pairs(f, &mut out)),
            Some(before) => {
                for (name, fe) in &now {
                    if before.get(name) != Some(fe) {
                        pairs(fe, &mut out);
                    }
                }
                for (name, fe) in before {
                    if now.get(name) != Some(fe) {
                        pairs(fe, &mut out);
                    }
                }
            }
        }
        (out.into_iter().collect(), UdpFlows { applied: Some(now) })
    }

    /// The pairs an incremental change must flush (every UDP frontend it removes or adds),
    /// and the state after it succeeds.
    pub fn changes(&self, remove: &[Frontend], add: &[Frontend]) -> (Vec<(Family, u16)>, UdpFlows) {
        let mut out = BTreeSet::new();
        remove.iter().chain(add).for_each(|f| pairs(f, &mut out));
        let applied = self.applied.clone().map(|mut m| {
            for f in remove {
                m.remove(&f.name);
            }
            for f in add.iter().filter(|f| f.protocol == Protocol::Udp) {
                m.insert(f.name.clone(), f.clone());
            }
            m
        });
        (out.into_iter().collect(), UdpFlows { applied })
    }
}

/// One applier's [`UdpFlows`], shared by its clones: what a sync must flush is read from
/// it, and the state after the sync is recorded only when the sync and its flush both
/// succeeded (otherwise it is forgotten, and the next sync flushes every UDP port).
#[derive(Debug, Clone, Default)]
pub struct SharedUdpFlows(std::sync::Arc<std::sync::Mutex<UdpFlows>>);

impl SharedUdpFlows {
    fn lock(&self) -> std::sync::MutexGuard<'_, UdpFlows> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// [`UdpFlows::full`] of the current state.
    pub fn full(&self, frontends: &[Frontend]) -> (Vec<(Family, u16)>, UdpFlows) {
        self.lock().full(frontends)
    }

    /// [`UdpFlows::changes`] of the current state.
    pub fn changes(&self, remove: &[Frontend], add: &[Frontend]) -> (Vec<(Family, u16)>, UdpFlows) {
        self.lock().changes(remove, add)
    }

    /// Records `next` when `result` is a success, forgets everything otherwise; returns
    /// `result`.
    pub fn settle<T, E>(&self, next: UdpFlows, result: Result<T, E>) -> Result<T, E> {
        *self.lock() = if result.is_ok() {
            next
        } else {
            UdpFlows::default()
        };
        result
    }

    /// Forgets what is in force (after a cleanup or a failed transaction).
    pub fn forget(&self) {
        *self.lock() = UdpFlows::default();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use dualstack_ruleset::{Backend, Destination, Selection};

    fn fe(name: &str, protocol: Protocol, port: u16, backend: &str) -> Frontend {
        Frontend {
            name: name.into(),
            destination: Destination::AnyLocal,
            protocol,
            port,
            source_ranges: vec![],
            backends: vec![Backend {
                addr: backend
                    .parse()
                    .unwrap_or(std::net::IpAddr::from([10, 0, 0, 1])),
                port: 53,
            }],
            selection: Selection::Random,
            masquerade: false,
        }
    }

    #[test]
    fn only_changed_udp_frontends_are_flushed() {
        let a = fe("a", Protocol::Udp, 53, "10.0.0.1");
        let b = fe("b", Protocol::Udp, 5353, "10.0.0.2");
        let t = fe("t", Protocol::Tcp, 80, "10.0.0.3");
        let v4 = Family::V4;
        // First sync: everything UDP (nothing is known about flows from before).
        let (first, state) = UdpFlows::default().full(&[a.clone(), b.clone(), t.clone()]);
        assert_eq!(first, vec![(v4, 53), (v4, 5353)]);
        // Same ruleset again: nothing.
        let (again, state) = state.full(&[a.clone(), b.clone(), t.clone()]);
        assert!(again.is_empty(), "{again:?}");
        // b's backend changes, c is new, a untouched: b and c only.
        let b2 = fe("b", Protocol::Udp, 5353, "10.0.0.9");
        let c = fe("c", Protocol::Udp, 54, "10.0.0.4");
        let (changed, state) = state.full(&[a.clone(), b2.clone(), c.clone(), t]);
        assert_eq!(changed, vec![(v4, 54), (v4, 5353)]);
        // Removing c incrementally flushes c; a later full sync without it knows.
        let (removed, state) = state.changes(std::slice::from_ref(&c), &[]);
        assert_eq!(removed, vec![(v4, 54)]);
        let (after, _) = state.full(&[a, b2]);
        assert!(after.is_empty(), "{after:?}");
    }
}
