//! Why a node programs nothing: the decision's reasons, grouped, for the sync report.
//!
//! An empty table is a legitimate outcome (no Service is ours, or none is served on this
//! node), but a silent one is indistinguishable from a bug. So whenever a sync leaves a
//! node without frontends, the report carries one line per distinct reason, naming the
//! Services it applies to.

use std::collections::BTreeMap;

use dualstack_lb::Decision;
use dualstack_lb::conditions::ConditionType;

/// At most this many Service names are listed per reason.
const NAMES: usize = 3;

/// Why `node` has no frontend in `decision`: one line per distinct reason, in a stable
/// order. Empty when it has frontends.
pub fn why_nothing(decision: &Decision, node: &str) -> Vec<String> {
    if !decision.frontends_for(node).is_empty() {
        return Vec::new();
    }
    if decision.services.is_empty() {
        let mut line = "no LoadBalancer Service is ours".to_string();
        if !decision.ignored.is_empty() {
            let names: Vec<String> = decision
                .ignored
                .iter()
                .map(|s| format!("{}/{}: {}", s.namespace, s.name, s.reason))
                .collect();
            line.push_str(&format!(" (ignored: {})", listed(&names)));
        }
        return vec![line];
    }
    let mut by_reason: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for service in &decision.services {
        let name = format!("{}/{}", service.namespace, service.name);
        let verdict = service.why.nodes.iter().find(|v| v.node == node);
        let reason = match verdict.and_then(|v| v.dropped.as_ref()) {
            Some(dropped) => format!("node {node}: {dropped}"),
            // Not dropped on this node, yet not served: the Service as a whole is not (its
            // spec, a required family, port conflicts); its Ready condition says why.
            None => match service
                .conditions
                .iter()
                .find(|c| c.type_ == ConditionType::LoadBalancerReady)
            {
                Some(c) => format!("{}: {}", c.reason, c.message),
                None => "not served".to_string(),
            },
        };
        by_reason.entry(reason).or_default().push(name);
    }
    by_reason
        .into_iter()
        .map(|(reason, names)| format!("{reason} ({})", listed(&names)))
        .collect()
}

fn listed(names: &[String]) -> String {
    let mut text = names
        .iter()
        .take(NAMES)
        .cloned()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > NAMES {
        text.push_str(&format!(", and {} more", names.len() - NAMES));
    }
    text
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use dualstack_lb::{Config, Snapshot};

    fn decide(text: &str) -> Decision {
        let s = Snapshot::parse(text).unwrap();
        dualstack_lb::decide(
            &s,
            &Config::default(),
            "2026-01-01T00:00:10Z".parse().unwrap(),
        )
    }

    const NODE: &str = "kind: Node\nmetadata: {name: n1}\nstatus:\n  addresses: [{type: InternalIP, address: 10.0.0.1}]\n  conditions: [{type: Ready, status: 'True'}]\n";

    fn service(name: &str, spec: &str) -> String {
        format!(
            "---\nkind: Service\nmetadata: {{name: {name}, namespace: default}}\nspec: {{type: LoadBalancer, {spec}}}\n"
        )
    }

    #[test]
    fn no_service_of_ours_says_so_and_names_the_ignored_ones() {
        let d = decide(&format!(
            "{NODE}{}",
            service(
                "other",
                "loadBalancerClass: example.com/lb, ports: [{port: 80}]"
            )
        ));
        assert_eq!(
            why_nothing(&d, "n1"),
            [
                "no LoadBalancer Service is ours (ignored: default/other: loadBalancerClass \"example.com/lb\" is not ours (\"dualstack.io/lb\"))"
            ]
        );
        assert_eq!(
            why_nothing(&decide(NODE), "n1"),
            ["no LoadBalancer Service is ours"]
        );
    }

    #[test]
    fn reasons_are_grouped_and_the_services_named() {
        let ours = "loadBalancerClass: dualstack.io/lb, ipFamilies: [IPv4]";
        let mut text = NODE.to_string();
        for name in ["a", "b", "c", "d"] {
            text.push_str(&service(name, &format!("{ours}, ports: [{{port: 80}}]")));
        }
        text.push_str(&service("broken", &format!("{ours}, ports: []")));
        let d = decide(&text);
        assert_eq!(
            why_nothing(&d, "n1"),
            [
                "InvalidSpec: spec.ports is empty (default/broken)",
                "node n1: no agent Lease dualstack-system/dualstack-agent-n1: no agent programs this node (default/a, default/b, default/c, and 1 more)",
            ]
        );
    }

    #[test]
    fn a_node_with_frontends_needs_no_reason() {
        let text = format!(
            "{NODE}---\nkind: Lease\nmetadata: {{name: dualstack-agent-n1, namespace: dualstack-system}}\nspec: {{holderIdentity: n1, leaseDurationSeconds: 15, renewTime: '2026-01-01T00:00:05Z'}}\n{}",
            service(
                "web",
                "loadBalancerClass: dualstack.io/lb, ipFamilies: [IPv4], ports: [{port: 80}]"
            )
        );
        let d = decide(&text);
        assert_eq!(d.frontends_for("n1").len(), 1);
        assert!(why_nothing(&d, "n1").is_empty());
    }
}
