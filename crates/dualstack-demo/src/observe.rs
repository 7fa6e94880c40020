//! What the demo saw happen to a flow, and whether it is what the decision predicted
//! (pure: the binary sends the flows and fills in [`Observed`]).

use std::net::{IpAddr, SocketAddr};

use crate::predict::{Expect, Flow, Sees};
use crate::topology;

/// What happened to one flow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Observed {
    /// A backend answered with its name and the source address it saw.
    Answered {
        /// The name the backend's echo server answered with (its pod's name).
        pod: String,
        /// The client address the backend saw.
        peer: IpAddr,
    },
    /// Refused (TCP reset, or ICMP port unreachable for UDP).
    Refused,
    /// Nothing came back in time.
    Silence,
    /// Something else went wrong (the message).
    Failed(String),
}

/// The flow's destination.
pub fn destination(flow: &Flow) -> SocketAddr {
    SocketAddr::new(flow.target.addr, flow.port)
}

/// Whether what happened is what the decision predicted.
pub fn matches(flow: &Flow, observed: &Observed) -> bool {
    match (&flow.expect, observed) {
        (Expect::Answer { backends, sees, .. }, Observed::Answered { pod, peer }) => {
            let answered_by_a_backend = topology::pod_by_name(pod)
                .is_some_and(|p| backends.contains(&p.addr(flow.target.family)));
            let source_as_predicted = match sees {
                Sees::Client(client) => peer == client,
                Sees::Node(node) => topology::node(node).is_some_and(|n| n.owns(*peer)),
            };
            answered_by_a_backend && source_as_predicted
        }
        (Expect::Answer { .. }, _) => false,
        (Expect::Nothing { .. }, Observed::Refused | Observed::Silence) => true,
        (Expect::Nothing { .. }, _) => false,
    }
}

#[cfg(test)]
mod tests {
    use dualstack_addr::Family;

    use dualstack_ruleset::Protocol;

    use super::*;
    use crate::predict::Target;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn flow(expect: Expect) -> Flow {
        Flow {
            target: Target {
                node: "node-1".into(),
                family: Family::V4,
                addr: ip("192.0.2.11"),
            },
            protocol: Protocol::Tcp,
            port: 80,
            expect,
        }
    }

    fn answered(pod: &str, peer: &str) -> Observed {
        Observed::Answered {
            pod: pod.into(),
            peer: ip(peer),
        }
    }

    #[test]
    fn compares_backend_and_source() {
        let masq = flow(Expect::Answer {
            frontend: "demo/web:http".into(),
            backends: vec![ip("198.51.100.10"), ip("198.51.100.130")],
            sees: Sees::Node("node-1".into()),
            losers: vec![],
        });
        assert!(matches(&masq, &answered("web-2", "192.0.2.11")));
        assert!(matches(&masq, &answered("web-1", "198.51.100.1")));
        assert!(
            !matches(&masq, &answered("web-2", "192.0.2.100")),
            "not masqueraded"
        );
        assert!(
            !matches(&masq, &answered("web-2", "192.0.2.12")),
            "other node"
        );
        assert!(
            !matches(&masq, &answered("api-1", "192.0.2.11")),
            "wrong backend"
        );
        assert!(!matches(&masq, &answered("nobody", "192.0.2.11")));
        assert!(!matches(&masq, &Observed::Refused));

        let local = flow(Expect::Answer {
            frontend: "demo/api:https".into(),
            backends: vec![ip("198.51.100.20")],
            sees: Sees::Client(ip("192.0.2.100")),
            losers: vec![],
        });
        assert!(matches(&local, &answered("api-1", "192.0.2.100")));
        assert!(!matches(&local, &answered("api-1", "192.0.2.11")));

        let nothing = flow(Expect::Nothing { why: "x".into() });
        assert!(matches(&nothing, &Observed::Refused));
        assert!(matches(&nothing, &Observed::Silence));
        assert!(!matches(&nothing, &answered("legacy-1", "192.0.2.11")));
        assert!(!matches(&nothing, &Observed::Failed("boom".into())));
    }
}
