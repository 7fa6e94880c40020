//! Human-readable rendering of a [`Decision`]: per Service the decision and why, per node its
//! frontends (what `dualstack lb explain` prints).

use std::fmt::Write as _;

use dualstack_ruleset::{Destination, Frontend, Selection};

use crate::config::Config;
use crate::decision::{Decision, NodeVerdict, ServiceDecision};
use crate::time::Timestamp;

/// Renders the decision as text, ending with a newline.
pub fn explain(decision: &Decision, config: &Config, now: Timestamp) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "configuration: class {:?}{}, mode {} (ipMode {}), agent Leases in {}, now {now}",
        config.class,
        if config.default_class {
            " (also the default class)"
        } else {
            ""
        },
        config.mode,
        config.mode.ip_mode(),
        config.lease_namespace,
    );
    if config.ignore_exclusion_label {
        out.push_str("  ignoring label node.kubernetes.io/exclude-from-external-load-balancers\n");
    }
    if decision.services.is_empty() {
        out.push_str("\nno Service is ours\n");
    }
    for service in &decision.services {
        out.push('\n');
        service_text(&mut out, service);
    }
    for node in &decision.nodes {
        let _ = writeln!(out, "\nnode {}", node.name);
        if node.frontends.is_empty() {
            out.push_str("  no frontends\n");
        }
        for a in decision.announcements_for(&node.name) {
            let on = if a.interfaces.is_empty() {
                a.via.map_or("no interface known".to_string(), |via| {
                    format!("the interface holding {via}")
                })
            } else {
                a.interfaces.join(", ")
            };
            let _ = writeln!(out, "  announces {} (pool {}) on {on}", a.ip, a.pool);
        }
        for frontend in &node.frontends {
            frontend_text(&mut out, frontend);
        }
    }
    pools_text(&mut out, decision);
    if !decision.ignored.is_empty() {
        out.push_str("\nnot ours (no status, no frontends):\n");
        for ignored in &decision.ignored {
            let _ = writeln!(
                out,
                "  {}/{}: {}",
                ignored.namespace, ignored.name, ignored.reason
            );
        }
    }
    out
}

fn service_text(out: &mut String, service: &ServiceDecision) {
    let why = &service.why;
    let _ = writeln!(out, "service {}", service.key());
    let _ = writeln!(
        out,
        "  class {}, created {}",
        why.load_balancer_class
            .as_deref()
            .map_or("<unset>".to_string(), |c| format!("{c:?}")),
        why.created
            .map_or("<unknown>".to_string(), |t| t.to_string()),
    );
    let families = why
        .families
        .iter()
        .map(|f| f.k8s_name())
        .collect::<Vec<_>>()
        .join(", ");
    let _ = writeln!(
        out,
        "  ipFamilyPolicy {}, families [{families}], externalTrafficPolicy {}{}",
        why.ip_family_policy,
        why.external_traffic_policy,
        why.pool
            .as_deref()
            .map_or(String::new(), |p| format!(", lbpool {p:?}")),
    );
    if !why.source_ranges.is_empty() {
        let _ = writeln!(out, "  source ranges: {}", join(&why.source_ranges));
    }
    for port in &why.ports {
        let _ = writeln!(
            out,
            "  port {} {}/{}: ready endpoints IPv4 {}, IPv6 {}",
            port.name, port.port, port.protocol, port.ready_ipv4, port.ready_ipv6
        );
    }
    if !why.nodes.is_empty() {
        out.push_str("  nodes:\n");
    }
    for verdict in &why.nodes {
        node_verdict_text(out, verdict);
    }
    for note in &why.notes {
        let _ = writeln!(out, "  note: {note}");
    }
    if service.ingress.is_empty() {
        out.push_str("  ingress: none\n");
    } else {
        let ingress = service
            .ingress
            .iter()
            .map(|i| format!("{} ({})", i.ip, i.ip_mode))
            .collect::<Vec<_>>()
            .join(", ");
        let _ = writeln!(out, "  ingress: {ingress}");
    }
    for assigned in &why.prefix_addresses {
        if let Some(used) = &assigned.prefix {
            let _ = writeln!(
                out,
                "  address {} = prefix {} + host {}",
                assigned.ip, used.prefix, used.host
            );
        }
    }
    for condition in &service.conditions {
        let _ = writeln!(
            out,
            "  condition {}={} {}: {}",
            condition.type_, condition.status, condition.reason, condition.message
        );
    }
    for event in &service.events {
        let _ = writeln!(
            out,
            "  event {} {}: {}",
            event.type_, event.reason, event.message
        );
    }
}

fn node_verdict_text(out: &mut String, verdict: &NodeVerdict) {
    let addresses = verdict
        .addresses
        .iter()
        .map(|a| {
            format!(
                "{} {} ({}, {})",
                a.family.k8s_name(),
                a.ip,
                a.source,
                a.detail
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    match (&verdict.dropped, verdict.taken) {
        (Some(reason), _) => {
            let _ = writeln!(out, "    - {} dropped: {reason}", verdict.node);
        }
        (None, true) => {
            let _ = writeln!(out, "    + {} taken: {addresses}", verdict.node);
        }
        (None, false) => {
            let _ = writeln!(
                out,
                "    - {} eligible but not programmed (see the condition): {addresses}",
                verdict.node
            );
        }
    }
    for conflict in &verdict.conflicts {
        let _ = writeln!(
            out,
            "      lost {}/{} on {} to {}",
            conflict.port, conflict.protocol, conflict.ip, conflict.winner
        );
    }
}

fn frontend_text(out: &mut String, frontend: &Frontend) {
    let destination = match &frontend.destination {
        Destination::AnyLocal => "any local address".to_string(),
        Destination::Addresses(list) => join(list),
    };
    let _ = writeln!(
        out,
        "  {} {}/{} on {destination}",
        frontend.name, frontend.port, frontend.protocol
    );
    let _ = writeln!(out, "    from {}", join(&frontend.source_ranges));
    let backends = if frontend.backends.is_empty() {
        "no backend".to_string()
    } else {
        frontend
            .backends
            .iter()
            .map(|b| std::net::SocketAddr::new(b.addr, b.port).to_string())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let _ = writeln!(
        out,
        "    to {backends} ({}, {} choice)",
        if frontend.masquerade {
            "masquerade"
        } else {
            "client address kept"
        },
        match frontend.selection {
            Selection::Random => "random",
            Selection::Hash => "hashed",
        }
    );
}

fn pools_text(out: &mut String, decision: &Decision) {
    for pool in &decision.pools {
        let _ = writeln!(
            out,
            "\npool {}{}: {}",
            pool.name,
            if pool.auto_assign {
                " (autoAssign)"
            } else {
                ""
            },
            pool.addresses.join(", ")
        );
        for (family, size, used) in &pool.usage {
            let _ = writeln!(out, "  {}: {used} of {size} in use", family.k8s_name());
        }
        if !pool.node_selector.is_empty() {
            let _ = writeln!(out, "  nodeSelector: {}", pool.node_selector.join(", "));
        }
        if !pool.interfaces.is_empty() {
            let _ = writeln!(out, "  interfaces: {}", pool.interfaces.join(", "));
        }
        for error in &pool.errors {
            let _ = writeln!(out, "  not used: {error}");
        }
        if let Some(view) = &pool.prefixes {
            for prefix in &view.prefixes {
                let _ = writeln!(out, "  prefix {prefix}");
            }
            if let Some(missing) = &view.missing {
                let _ = writeln!(out, "  no prefix: {missing}");
            }
            if let Some(mismatch) = &view.mismatch {
                let _ = writeln!(out, "  nodes disagree: {mismatch}");
            }
        }
        for address in decision
            .pool_addresses
            .iter()
            .filter(|a| a.pool == pool.name)
        {
            let services = address
                .services
                .iter()
                .map(|(s, origin)| format!("{s} ({origin})"))
                .collect::<Vec<_>>()
                .join(", ");
            let announcer = match &address.announcer {
                Some(node) => format!(
                    "announced by {node} (candidates: {})",
                    address.candidates.join(", ")
                ),
                None => "announced by nobody: no node programs it for every Service on it".into(),
            };
            let _ = writeln!(out, "  {} -> {services}; {announcer}", address.ip);
        }
    }
}

fn join<T: std::fmt::Display>(items: &[T]) -> String {
    items
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}
