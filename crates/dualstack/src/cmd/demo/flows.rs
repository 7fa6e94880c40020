//! Sends the predicted flows from the client's namespace and reports what happened
//! ([`dualstack_demo::observe`] compares it with the prediction). Only the demo's own
//! addresses are ever dialled: every target is a node address inside the demo's namespaces.

use std::time::Duration;

use dualstack_demo::observe::{Observed, destination};
use dualstack_demo::predict::Flow;
use dualstack_ruleset::Protocol;
use dualstack_testbed::{Netns, TestbedError, tcp_request, udp_request};

/// How long one flow may take before it counts as unanswered.
pub const TIMEOUT: Duration = Duration::from_millis(1500);

/// Sends one flow from `client` and reports what happened.
pub fn send(client: &Netns, flow: &Flow) -> Observed {
    let to = destination(flow);
    let result = match flow.protocol {
        Protocol::Tcp => tcp_request(client, to, TIMEOUT),
        Protocol::Udp => udp_request(client, to, TIMEOUT),
        Protocol::Sctp => return Observed::Failed("the demo sends no SCTP".into()),
    };
    match result {
        Ok(reply) => Observed::Answered {
            pod: reply.server,
            peer: reply.peer,
        },
        Err(TestbedError::Client { source, .. }) => match source.kind() {
            std::io::ErrorKind::ConnectionRefused => Observed::Refused,
            std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock => Observed::Silence,
            _ => Observed::Failed(source.to_string()),
        },
        Err(other) => Observed::Failed(other.to_string()),
    }
}
