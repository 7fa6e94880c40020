//! Traefik's K3s `HelmChart` / `HelmChartConfig`: the chart version and the dual-stack keys in
//! `valuesContent` (and `spec.set`). Source: `dualstack-planning.md` §2.7.

use serde_json::Value;

use super::yaml::{documents, get, get_text, line_of};
use super::{InputError, Origin, Sourced};
use crate::version::{Version, chart_version_from_reference};

/// The dual-stack Service settings found in Traefik values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraefikValues {
    /// Whether a `HelmChart` (rather than only a `HelmChartConfig`) was read.
    pub is_helm_chart: bool,
    /// Chart version from `spec.version` or the chart URL.
    pub chart_version: Option<Sourced<Version>>,
    /// `service.ipFamilyPolicy` (the key charts before 40.0.0 read).
    pub service_policy: Option<Sourced<String>>,
    /// `service.ipFamilies`.
    pub service_families: Option<Sourced<Vec<String>>>,
    /// `service.spec.ipFamilyPolicy` (the key charts from 40.0.0 read; older charts merge
    /// `service.spec` verbatim too).
    pub spec_policy: Option<Sourced<String>>,
    /// `service.spec.ipFamilies`.
    pub spec_families: Option<Sourced<Vec<String>>>,
}

/// Reads every `HelmChart`/`HelmChartConfig` named `traefik` in the file.
pub fn read_traefik(file: &str, text: &str) -> Result<TraefikValues, InputError> {
    let mut out = TraefikValues::default();
    let mut found = false;
    let at = |needle: &str| Origin::new(file, line_of(text, needle));
    for doc in documents(file, text)? {
        let kind = get_text(&doc, &["kind"]).unwrap_or_default();
        if kind != "HelmChart" && kind != "HelmChartConfig" {
            continue;
        }
        if get_text(&doc, &["metadata", "name"]).as_deref() != Some("traefik") {
            continue;
        }
        found = true;
        if kind == "HelmChart" {
            out.is_helm_chart = true;
            let version = get_text(&doc, &["spec", "version"])
                .and_then(|v| Version::parse(&v).map(|p| (v, p)))
                .or_else(|| {
                    get_text(&doc, &["spec", "chart"])
                        .and_then(|c| chart_version_from_reference(&c, "traefik").map(|p| (c, p)))
                });
            if let Some((raw, v)) = version {
                out.chart_version = Some(Sourced {
                    value: v,
                    origin: at(&raw),
                });
            }
        }
        if let Some(values_text) = get_text(&doc, &["spec", "valuesContent"]) {
            let values = documents(&format!("{file} (valuesContent)"), &values_text)?;
            if let Some(values) = values.first() {
                read_values(values, &at, &mut out);
            }
        }
        // `spec.set` keys are dotted paths; they override valuesContent.
        if let Some(Value::Object(set)) = get(&doc, &["spec", "set"]) {
            for (key, value) in set {
                let value = super::yaml::scalar_text(value).unwrap_or_default();
                let s = Sourced {
                    value,
                    origin: at(key),
                };
                match key.as_str() {
                    "service.ipFamilyPolicy" => out.service_policy = Some(s),
                    "service.spec.ipFamilyPolicy" => out.spec_policy = Some(s),
                    _ => {}
                }
            }
        }
    }
    if !found {
        return Err(InputError::invalid(
            file,
            "no HelmChart or HelmChartConfig named `traefik` found",
        ));
    }
    Ok(out)
}

fn read_values(values: &Value, at: &dyn Fn(&str) -> Origin, out: &mut TraefikValues) {
    let families = |v: &Value| -> Vec<String> {
        v.as_array()
            .into_iter()
            .flatten()
            .filter_map(|f| f.as_str().map(str::to_owned))
            .collect()
    };
    if let Some(p) = get_text(values, &["service", "ipFamilyPolicy"]) {
        out.service_policy = Some(Sourced {
            origin: at("ipFamilyPolicy"),
            value: p,
        });
    }
    if let Some(f) = get(values, &["service", "ipFamilies"]) {
        out.service_families = Some(Sourced {
            value: families(f),
            origin: at("ipFamilies"),
        });
    }
    if let Some(p) = get_text(values, &["service", "spec", "ipFamilyPolicy"]) {
        out.spec_policy = Some(Sourced {
            origin: at("ipFamilyPolicy"),
            value: p,
        });
    }
    if let Some(f) = get(values, &["service", "spec", "ipFamilies"]) {
        out.spec_families = Some(Sourced {
            value: families(f),
            origin: at("ipFamilies"),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const BLOG_TRAEFIK: &str = r#"apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: traefik-crd
  namespace: kube-system
spec:
  chart: https://%{KUBERNETES_API}%/static/charts/traefik-crd-9.18.2.tgz
---
apiVersion: helm.cattle.io/v1
kind: HelmChart
metadata:
  name: traefik
  namespace: kube-system
spec:
  chart: https://%{KUBERNETES_API}%/static/charts/traefik-9.18.2.tgz
  set:
    global.systemDefaultRegistry: ""
  valuesContent: |-
    rbac:
      enabled: true
    service:
      spec:
        ipFamilies:
          - IPv4
          - IPv6
        ipFamilyPolicy: RequireDualStack
      externalIPs:
        - 192.168.0.15
"#;

    #[test]
    fn reads_the_blog_helm_chart() {
        let t = read_traefik("traefik.yaml", BLOG_TRAEFIK).unwrap();
        assert!(t.is_helm_chart);
        assert_eq!(t.chart_version.unwrap().value, Version::new(9, 18, 2));
        assert_eq!(t.spec_policy.unwrap().value, "RequireDualStack");
        assert_eq!(t.spec_families.unwrap().value, ["IPv4", "IPv6"]);
        assert!(t.service_policy.is_none());
    }

    #[test]
    fn reads_a_helm_chart_config_with_old_keys() {
        let t = read_traefik(
            "cfg.yaml",
            "apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: traefik\n  namespace: kube-system\nspec:\n  valuesContent: |-\n    service:\n      ipFamilyPolicy: PreferDualStack\n",
        )
        .unwrap();
        assert!(!t.is_helm_chart && t.chart_version.is_none());
        assert_eq!(t.service_policy.unwrap().origin.to_string(), "cfg.yaml:9");
        assert!(read_traefik("x", "kind: HelmChart\nmetadata: {name: other}\n").is_err());
    }
}
