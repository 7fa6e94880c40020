//! Helpers shared by the decision tests.

use dualstack_lb::objects::LoadBalancerIngress;
use dualstack_lb::{Decision, Snapshot};

/// Writes every decided ingress into the Services' status (what the controller publishes).
pub fn publish(snapshot: &mut Snapshot, decision: &Decision) {
    for service in &mut snapshot.services {
        if let Some(d) = decision.service(&service.metadata.namespace, &service.metadata.name) {
            service.status.load_balancer.ingress = d
                .ingress
                .iter()
                .map(|i| LoadBalancerIngress {
                    ip: Some(i.ip.to_string().into()),
                })
                .collect();
        }
    }
}
