//! Traefik's settings as users have them: K3s's `HelmChart` / `HelmChartConfig` wrappers (the
//! chart version and the dual-stack keys in `valuesContent` and `spec.set`), or a plain Helm
//! values file (what `helm install traefik traefik/traefik -f values.yaml` takes). Source:
//! `dualstack-planning.md` §2.7.
//!
//! The two are told apart by content: a file whose documents are Kubernetes objects (they have
//! `apiVersion` and `kind`) is read as wrappers and must hold a `HelmChart` or
//! `HelmChartConfig` named `traefik`; a file with one mapping and no `kind` (or nothing at all:
//! the chart defaults) is a values file.

use serde_json::Value;

use super::yaml::{documents, get, get_text, line_of};
use super::{InputError, Origin, Sourced};
use crate::version::{Version, chart_version_from_reference};

/// What kind of file the Traefik values were read from.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum TraefikSource {
    /// K3s's `HelmChart` named `traefik` (with or without a `HelmChartConfig` beside it).
    HelmChart,
    /// Only a `HelmChartConfig`: K3s merges it over its bundled `traefik` HelmChart.
    #[default]
    HelmChartConfig,
    /// A plain Helm values file: everything it does not set is the chart's default.
    ValuesFile,
}

/// The dual-stack Service settings found in Traefik values.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TraefikValues {
    /// What kind of document the values came from.
    pub source: TraefikSource,
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
    /// `service.enabled: false`: the chart renders no Service at all.
    pub service_disabled: Option<Origin>,
}

/// Reads a Traefik file: the `HelmChart`/`HelmChartConfig` named `traefik` in it, or a plain
/// Helm values file (told apart by content, see the module documentation).
pub fn read_traefik(file: &str, text: &str) -> Result<TraefikValues, InputError> {
    let docs = documents(file, text)?;
    let objects = docs
        .iter()
        .any(|d| d.get("kind").is_some() && d.get("apiVersion").is_some());
    if objects {
        read_wrappers(file, text, &docs)
    } else {
        read_values_file(file, text, &docs)
    }
}

/// A plain values file: one mapping (or an empty file, `{}`: the chart defaults).
fn read_values_file(file: &str, text: &str, docs: &[Value]) -> Result<TraefikValues, InputError> {
    let mut out = TraefikValues {
        source: TraefikSource::ValuesFile,
        ..TraefikValues::default()
    };
    let at = |needle: &str| Origin::new(file, line_of(text, needle));
    match docs {
        [] => {}
        [values @ Value::Object(_)] => read_values(values, &at, &mut out),
        [other] => {
            return Err(InputError::invalid(
                file,
                format!(
                    "not a Helm values file: its top level is {}, not a mapping of chart values (and it holds no HelmChart or HelmChartConfig named `traefik`)",
                    kind_of(other)
                ),
            ));
        }
        more => {
            return Err(InputError::invalid(
                file,
                format!(
                    "not a Helm values file: it has {} YAML documents and none is a HelmChart or HelmChartConfig named `traefik`",
                    more.len()
                ),
            ));
        }
    }
    Ok(out)
}

fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Array(_) => "a list",
        Value::String(_) => "a string",
        Value::Number(_) => "a number",
        Value::Bool(_) => "a boolean",
        Value::Null => "empty",
        Value::Object(_) => "a mapping",
    }
}

/// Every `HelmChart`/`HelmChartConfig` named `traefik` among Kubernetes objects.
fn read_wrappers(file: &str, text: &str, docs: &[Value]) -> Result<TraefikValues, InputError> {
    let mut out = TraefikValues::default();
    let mut found = false;
    let at = |needle: &str| Origin::new(file, line_of(text, needle));
    for doc in docs {
        let kind = get_text(doc, &["kind"]).unwrap_or_default();
        if kind != "HelmChart" && kind != "HelmChartConfig" {
            continue;
        }
        if get_text(doc, &["metadata", "name"]).as_deref() != Some("traefik") {
            continue;
        }
        found = true;
        if kind == "HelmChart" {
            out.source = TraefikSource::HelmChart;
            let version = get_text(doc, &["spec", "version"])
                .and_then(|v| Version::parse(&v).map(|p| (v, p)))
                .or_else(|| {
                    get_text(doc, &["spec", "chart"])
                        .and_then(|c| chart_version_from_reference(&c, "traefik").map(|p| (c, p)))
                });
            if let Some((raw, v)) = version {
                out.chart_version = Some(Sourced {
                    value: v,
                    origin: at(&raw),
                });
            }
        }
        if let Some(values_text) = get_text(doc, &["spec", "valuesContent"]) {
            let values = documents(&format!("{file} (valuesContent)"), &values_text)?;
            if let Some(values) = values.first() {
                read_values(values, &at, &mut out);
            }
        }
        // `spec.set` keys are dotted paths; they override valuesContent.
        if let Some(Value::Object(set)) = get(doc, &["spec", "set"]) {
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
            "no HelmChart or HelmChartConfig named `traefik` found (and, holding Kubernetes objects, it is not a Helm values file either)",
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
    if get(values, &["service", "enabled"]) == Some(&Value::Bool(false)) {
        out.service_disabled = Some(at("enabled"));
    }
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
        assert_eq!(t.source, TraefikSource::HelmChart);
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
        assert!(t.source == TraefikSource::HelmChartConfig && t.chart_version.is_none());
        assert_eq!(t.service_policy.unwrap().origin.to_string(), "cfg.yaml:9");
        assert!(
            read_traefik(
                "x",
                "apiVersion: helm.cattle.io/v1\nkind: HelmChart\nmetadata: {name: other}\n"
            )
            .is_err()
        );
    }

    #[test]
    fn tells_values_files_from_wrappers_by_content() {
        for empty in ["", "{}\n", "# only a comment\n", "---\n"] {
            let t = read_traefik("values.yaml", empty).unwrap();
            assert_eq!(t.source, TraefikSource::ValuesFile, "{empty:?}");
            assert!(t.spec_policy.is_none() && t.service_policy.is_none());
        }
        let t = read_traefik(
            "values.yaml",
            "service:\n  ipFamilyPolicy: PreferDualStack\n  ipFamilies: [IPv6, IPv4]\n",
        )
        .unwrap();
        assert_eq!(t.source, TraefikSource::ValuesFile);
        assert_eq!(
            t.service_policy.unwrap().origin.to_string(),
            "values.yaml:2"
        );
        assert_eq!(t.service_families.unwrap().value, ["IPv6", "IPv4"]);
        // A `kind:` key alone does not make a Kubernetes object.
        let t = read_traefik(
            "values.yaml",
            "kind: Deployment\nservice:\n  spec:\n    ipFamilyPolicy: RequireDualStack\n",
        )
        .unwrap();
        assert_eq!(t.source, TraefikSource::ValuesFile);
        assert_eq!(t.spec_policy.unwrap().value, "RequireDualStack");

        let bad = [
            ("- service\n", "its top level is a list"),
            ("a: 1\n---\nb: 2\n", "2 YAML documents"),
            (
                "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: traefik}\n",
                "no HelmChart or HelmChartConfig named `traefik`",
            ),
        ];
        for (text, want) in bad {
            let err = read_traefik("values.yaml", text).unwrap_err().to_string();
            assert!(
                err.starts_with("values.yaml: ") && err.contains(want),
                "{err}"
            );
        }
    }
}
