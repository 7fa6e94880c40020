//! The offline agent counts itself as live for its own node.
//!
//! In `nftables` mode the decision drops a node whose agent Lease is missing, held by someone
//! else or expired: nobody would program it. For the offline agent (`dualstack agent --node N
//! --snapshot dump.yaml --once`) that reasoning does not hold for N — the agent running *is*
//! N's agent, and a dump taken before the agent was installed has no Lease for it at all. So
//! before deciding, the offline agent makes N's Lease say so: held by N, renewed `now`.
//! Other nodes' Leases are left as the dump has them.

use std::fmt;

use dualstack_lb::objects::{Lease, LeaseSpec, ObjectMeta};
use dualstack_lb::{Config, Snapshot, Timestamp};

/// How long the Lease we stand in for is valid: the live agent's own Lease duration.
pub const OWN_LEASE_SECONDS: i64 = 15;

/// What [`count_own_agent_live`] changed in the snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnLease {
    /// The node's Lease was live already; nothing changed.
    AlreadyLive,
    /// The dump has no Lease for the node; one held by the node was added (without live
    /// addresses, so the node's addresses come from its Node object).
    Added {
        /// The Lease's `namespace/name`.
        lease: String,
    },
    /// The dump's Lease was expired or held by another identity (`was`); it now says the
    /// node holds it, renewed now. Live addresses it carried are dropped: they are as old as
    /// the Lease.
    Renewed {
        /// The Lease's `namespace/name`.
        lease: String,
        /// Why it did not count, as a phrase (`expired at …`, `is held by "n2"`).
        was: String,
    },
}

impl fmt::Display for OwnLease {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OwnLease::AlreadyLive => f.write_str("its agent Lease in the dump is live"),
            OwnLease::Added { lease } => write!(
                f,
                "the dump has no agent Lease {lease} (agent not installed yet?); this agent is \
                 the node's own, so the node counts as live, with the addresses of its Node object"
            ),
            OwnLease::Renewed { lease, was } => write!(
                f,
                "agent Lease {lease} in the dump {was}; this agent is the node's own, so the \
                 node counts as live, with the addresses of its Node object"
            ),
        }
    }
}

/// Makes `node`'s agent Lease in `snapshot` live at `now` (see the module docs).
pub fn count_own_agent_live(
    snapshot: &mut Snapshot,
    config: &Config,
    node: &str,
    now: Timestamp,
) -> OwnLease {
    let name = Config::lease_name(node);
    let display = format!("{}/{name}", config.lease_namespace);
    let fresh = LeaseSpec {
        holder_identity: Some(node.into()),
        lease_duration_seconds: Some(OWN_LEASE_SECONDS),
        renew_time: Some(now),
    };
    let existing = snapshot
        .leases
        .iter_mut()
        .find(|l| l.metadata.namespace == config.lease_namespace && l.metadata.name == name);
    let Some(lease) = existing else {
        snapshot.leases.push(Lease {
            metadata: ObjectMeta {
                name: name.into(),
                namespace: config.lease_namespace.as_str().into(),
                ..ObjectMeta::default()
            },
            spec: fresh,
        });
        return OwnLease::Added { lease: display };
    };
    let was = match (
        lease.spec.holder_identity.as_deref(),
        lease.spec.renew_time,
        lease.spec.lease_duration_seconds,
    ) {
        // The decision's liveness rule (crate docs of dualstack_lb, node rule 5).
        (Some(holder), Some(renewed), Some(duration))
            if holder == node && renewed.plus_seconds(duration) >= now =>
        {
            return OwnLease::AlreadyLive;
        }
        (Some(holder), _, _) if holder != node => format!("is held by {holder:?}"),
        (None, _, _) => "has no holder".to_string(),
        (_, Some(renewed), Some(duration)) => {
            format!("expired at {}", renewed.plus_seconds(duration))
        }
        _ => "was never renewed".to_string(),
    };
    lease.spec = fresh;
    lease
        .metadata
        .annotations
        .remove(dualstack_lb::live::ADDRESSES_ANNOTATION);
    OwnLease::Renewed {
        lease: display,
        was,
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use dualstack_lb::decision::DropReason;

    const NOW: &str = "2026-01-01T00:00:10Z";

    fn snapshot(leases: &str) -> Snapshot {
        Snapshot::parse(&format!(
            "kind: Node\nmetadata: {{name: n1}}\nstatus:\n  addresses: [{{type: InternalIP, address: 10.0.0.1}}]\n  conditions: [{{type: Ready, status: 'True'}}]\n---\n\
             kind: Service\nmetadata: {{name: web, namespace: default}}\nspec: {{type: LoadBalancer, loadBalancerClass: dualstack.io/lb, ipFamilies: [IPv4], ports: [{{port: 80}}]}}\n{leases}"
        ))
        .unwrap()
    }

    fn dropped(snapshot: &Snapshot) -> Option<DropReason> {
        let d = dualstack_lb::decide(snapshot, &Config::default(), NOW.parse().unwrap());
        d.services[0].why.nodes[0].dropped.clone()
    }

    #[test]
    fn a_dump_without_the_agent_lease_gets_one_and_the_node_serves() {
        let mut s = snapshot("");
        assert!(matches!(dropped(&s), Some(DropReason::NoAgentLease { .. })));
        let what = count_own_agent_live(&mut s, &Config::default(), "n1", NOW.parse().unwrap());
        assert_eq!(
            what,
            OwnLease::Added {
                lease: "dualstack-system/dualstack-agent-n1".into()
            }
        );
        assert_eq!(dropped(&s), None);
        assert_eq!(s.leases.len(), 1);
    }

    #[test]
    fn an_expired_or_foreign_lease_is_taken_over_and_a_live_one_kept() {
        let lease = |holder: &str, renewed: &str| {
            format!(
                "---\nkind: Lease\nmetadata:\n  name: dualstack-agent-n1\n  namespace: dualstack-system\n  annotations: {{dualstack.io/addresses: 10.9.9.9}}\nspec: {{holderIdentity: {holder}, leaseDurationSeconds: 15, renewTime: '{renewed}'}}\n"
            )
        };
        let now: Timestamp = NOW.parse().unwrap();
        let cases = [
            (
                lease("n1", "2026-01-01T00:00:00Z"),
                OwnLease::AlreadyLive,
                Some("10.9.9.9"),
            ),
            (
                lease("n1", "2025-12-31T23:00:00Z"),
                OwnLease::Renewed {
                    lease: "dualstack-system/dualstack-agent-n1".into(),
                    was: "expired at 2025-12-31T23:00:15Z".into(),
                },
                None,
            ),
            (
                lease("n2", "2026-01-01T00:00:00Z"),
                OwnLease::Renewed {
                    lease: "dualstack-system/dualstack-agent-n1".into(),
                    was: "is held by \"n2\"".into(),
                },
                None,
            ),
        ];
        for (text, expected, address) in cases {
            let mut s = snapshot(&text);
            let what = count_own_agent_live(&mut s, &Config::default(), "n1", now);
            assert_eq!(what, expected, "{text}");
            assert_eq!(dropped(&s), None, "{text}");
            assert_eq!(
                s.leases[0]
                    .metadata
                    .annotations
                    .get("dualstack.io/addresses")
                    .map(String::as_str),
                address
            );
        }
    }
}
