//! Rules over Traefik values (`dualstack-planning.md` §2.7): chart 40.0.0 moved the
//! dual-stack keys from `service.ipFamilyPolicy` to `service.spec.ipFamilyPolicy`, and the old
//! key is silently ignored from then on.

use crate::code::Code;
use crate::finding::{Finding, Severity};
use crate::input::traefik::{TraefikSource, TraefikValues};
use crate::version::Version;

/// The first chart version that reads only `service.spec.*`.
pub const SPEC_KEYS_FROM_MAJOR: u32 = 40;

/// Adds findings about Traefik's Service settings: dual-stack keys written where the chart version does not read them, and (on a dual-stack cluster) a Service left single-stack.
pub fn check_traefik(values: &TraefikValues, dual_stack: bool, findings: &mut Vec<Finding>) {
    let version = values.chart_version.as_ref().map(|v| v.value);
    let new_layout = version.map(|v| v.major >= SPEC_KEYS_FROM_MAJOR);
    let old_keys = values
        .service_policy
        .as_ref()
        .map(|s| s.origin.to_string())
        .or(values
            .service_families
            .as_ref()
            .map(|s| s.origin.to_string()));
    if let Some(at) = &old_keys {
        match new_layout {
            Some(true) => findings.push(Finding::new(Severity::Error, Code::TraefikKeyIgnored,
                format!("Traefik chart {} ignores service.ipFamilyPolicy / service.ipFamilies (moved to service.spec in chart 40.0.0): the Service stays single-stack", version.map(|v| v.to_string()).unwrap_or_default()),
                "move them under service.spec: service: {spec: {ipFamilyPolicy: PreferDualStack, ipFamilies: [IPv4, IPv6]}}").at(Some(at.clone()))),
            Some(false) => if values.spec_policy.is_some() {
                findings.push(Finding::new(Severity::Warning, Code::TraefikKeyIgnored,
                    "both service.ipFamilyPolicy and service.spec.ipFamilyPolicy are set; charts before 40.0.0 render both into the Service spec (a duplicate key)",
                    "keep only service.ipFamilyPolicy for this chart version").at(Some(at.clone())));
            },
            None => findings.push(Finding::new(Severity::Warning, Code::TraefikKeyIgnored,
                "service.ipFamilyPolicy / service.ipFamilies are read only by Traefik charts before 40.0.0 and silently ignored from 40.0.0 on; the chart version is not known here",
                "look up the chart version (spec.chart of the traefik HelmChart in /var/lib/rancher/k3s/server/manifests/traefik.yaml) and pass it as --traefik-chart; from 40.0.0 use service.spec.ipFamilyPolicy").at(Some(at.clone()))),
        }
    }
    // No Service (service.enabled: false), or nothing to be dual-stack for.
    if !dual_stack || values.service_disabled.is_some() {
        return;
    }
    let policy = match new_layout {
        Some(true) => values.spec_policy.as_ref(),
        _ => values
            .service_policy
            .as_ref()
            .or(values.spec_policy.as_ref()),
    };
    let fix = policy_fix(version);
    match policy {
        None => findings.push(no_policy(values, version, fix)),
        Some(p) if p.value == "SingleStack" => findings.push(Finding::new(Severity::Warning, Code::TraefikNoIpFamilyPolicy,
            "Traefik's Service is SingleStack on a dual-stack cluster: ingress is reachable on one family only",
            fix).at(Some(p.origin.to_string()))),
        Some(_) => {}
    }
}

/// How to set the Service's ipFamilyPolicy in this chart version's values.
fn policy_fix(version: Option<Version>) -> String {
    match version {
        Some(v) if v.major >= SPEC_KEYS_FROM_MAJOR => format!(
            "set service.spec.ipFamilyPolicy: PreferDualStack (chart {v} reads only service.spec; service.ipFamilyPolicy is ignored from 40.0.0)"
        ),
        Some(v) => format!(
            "set service.ipFamilyPolicy: PreferDualStack (the key chart {v} reads; from chart 40.0.0 it moves to service.spec.ipFamilyPolicy)"
        ),
        None => "set service.ipFamilyPolicy: PreferDualStack for charts before 40.0.0, or service.spec.ipFamilyPolicy: PreferDualStack from 40.0.0 (pass --traefik-chart so the check knows which)".to_owned(),
    }
}

/// No effective ipFamilyPolicy: what that means depends on what the file is.
fn no_policy(values: &TraefikValues, version: Option<Version>, fix: String) -> Finding {
    let chart = version.map_or_else(|| "the chart".to_owned(), |v| format!("chart {v}"));
    let (severity, message) = match values.source {
        TraefikSource::HelmChart => (
            Severity::Warning,
            "the cluster is dual-stack but the traefik HelmChart sets no effective ipFamilyPolicy: its Service gets only the primary family".to_owned(),
        ),
        TraefikSource::HelmChartConfig => (
            Severity::Info,
            "this HelmChartConfig sets no effective ipFamilyPolicy; K3s's bundled traefik HelmChart sets PreferDualStack since k3s PR #5535 (2022), older bundles do not".to_owned(),
        ),
        TraefikSource::ValuesFile => (
            Severity::Warning,
            format!(
                "the cluster is dual-stack but this Traefik values file sets no effective ipFamilyPolicy: {chart}'s default leaves it unset, so Kubernetes makes the Service SingleStack and IPv6 clients get nothing"
            ),
        ),
    };
    Finding::new(severity, Code::TraefikNoIpFamilyPolicy, message, fix)
}
