//! Calico configuration in its three shapes: a manifest install (`calico.yaml`: the CNI `ipam`
//! JSON inside the `calico-config` ConfigMap and the `calico-node` env), a tigera-operator
//! `Installation`, or `IPPool` resources. Sources: `dualstack-planning.md` §3.

use serde_json::Value;

use super::yaml::{documents, get, get_text, line_of, scalar_text};
use super::{InputError, Origin, Sourced};
use crate::version::{Version, image_tag_version};

/// Where a pool was defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PoolSource {
    /// `CALICO_IPV4POOL_*` / `CALICO_IPV6POOL_*` env of calico-node.
    NodeEnv,
    /// `spec.calicoNetwork.ipPools` of an operator Installation.
    Installation,
    /// An `IPPool` resource.
    IpPool,
}

/// One Calico IP pool, with Calico's defaults applied where the input left a field out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalicoPool {
    /// The pool's name (generated for env and Installation pools, as Calico names them).
    pub name: String,
    /// The pool's CIDR, as written.
    pub cidr: Sourced<String>,
    /// `blockSize`, if written (Calico's default depends on the family).
    pub block_size: Option<Sourced<String>>,
    /// IPIP on (any mode other than Never/Disabled).
    pub ipip: bool,
    /// VXLAN on.
    pub vxlan: bool,
    /// Whether Calico masquerades traffic from the pool leaving the cluster.
    pub nat_outgoing: bool,
    /// Whether the pool hands out no addresses.
    pub disabled: bool,
    /// Which kind of input defined it.
    pub source: PoolSource,
}

/// Everything read from the Calico inputs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalicoConfig {
    /// Every pool found, in input order.
    pub pools: Vec<CalicoPool>,
    /// `FELIX_IPV6SUPPORT` env of calico-node (manifest installs).
    pub felix_ipv6_support: Option<Sourced<String>>,
    /// CNI `ipam.assign_ipv6` (a string, default `"false"`).
    pub assign_ipv6: Option<Sourced<String>>,
    /// CNI `ipam.ipv6_pools`.
    pub cni_ipv6_pools: Vec<Sourced<String>>,
    /// CNI `ipam.ipv4_pools`.
    pub cni_ipv4_pools: Vec<Sourced<String>>,
    /// `IP6` env of calico-node (unset: no IPv6 autodetection).
    pub ip6: Option<Sourced<String>>,
    /// Whether a calico-node DaemonSet was seen (so an unset `IP6` means "not autodetected").
    pub has_node_daemonset: bool,
    /// BGP in use (`calico_backend: bird`, or Installation `bgp` not Disabled).
    pub bgp: Option<bool>,
    /// The Calico version from the calico/node image tag.
    pub version: Option<Sourced<Version>>,
    /// Whether an operator Installation was read.
    pub operator: bool,
}

/// Reads a Calico manifest, Installation or IPPool list.
pub fn read_calico(file: &str, text: &str) -> Result<CalicoConfig, InputError> {
    let mut config = CalicoConfig::default();
    let at = |needle: &str| Origin::new(file, line_of(text, needle));
    let mut recognised = false;
    for doc in documents(file, text)? {
        let kind = get_text(&doc, &["kind"]).unwrap_or_default();
        match kind.as_str() {
            "ConfigMap" => {
                if let Some(cni) = get_text(&doc, &["data", "cni_network_config"]) {
                    recognised = true;
                    read_cni_config(file, text, &cni, &mut config)?;
                }
                if let Some(backend) = get_text(&doc, &["data", "calico_backend"]) {
                    config.bgp = Some(backend == "bird");
                }
            }
            "DaemonSet" | "Deployment" => {
                let containers = get(&doc, &["spec", "template", "spec", "containers"])
                    .and_then(Value::as_array);
                for container in containers.into_iter().flatten() {
                    if get_text(container, &["name"]).as_deref() != Some("calico-node") {
                        continue;
                    }
                    recognised = true;
                    config.has_node_daemonset = true;
                    if let Some(image) = get_text(container, &["image"])
                        && let Some(v) = image_tag_version(&image)
                    {
                        config.version = Some(Sourced {
                            value: v,
                            origin: at(&image),
                        });
                    }
                    read_node_env(container, &at, &mut config);
                }
            }
            "Installation" => {
                recognised = true;
                config.operator = true;
                let network = get(&doc, &["spec", "calicoNetwork"]);
                if let Some(bgp) = network.and_then(|n| get_text(n, &["bgp"])) {
                    config.bgp = Some(bgp != "Disabled");
                } else {
                    config.bgp = Some(true);
                }
                let pools = network
                    .and_then(|n| n.get("ipPools"))
                    .and_then(Value::as_array);
                for (i, pool) in pools.into_iter().flatten().enumerate() {
                    let Some(cidr) = get_text(pool, &["cidr"]) else {
                        return Err(InputError::invalid(
                            file,
                            format!("Installation spec.calicoNetwork.ipPools[{i}] has no cidr"),
                        ));
                    };
                    let encap = get_text(pool, &["encapsulation"]).unwrap_or_else(|| "IPIP".into());
                    config.pools.push(CalicoPool {
                        name: get_text(pool, &["name"]).unwrap_or_else(|| format!("ipPools[{i}]")),
                        block_size: get_text(pool, &["blockSize"]).map(|b| Sourced {
                            value: b,
                            origin: at("blockSize"),
                        }),
                        ipip: encap.starts_with("IPIP"),
                        vxlan: encap.starts_with("VXLAN"),
                        nat_outgoing: get_text(pool, &["natOutgoing"]).as_deref()
                            != Some("Disabled"),
                        disabled: false,
                        source: PoolSource::Installation,
                        cidr: Sourced {
                            origin: at(&cidr),
                            value: cidr,
                        },
                    });
                }
            }
            "IPPool" | "IPPoolList" => {
                recognised = true;
                let items: Vec<&Value> = match doc.get("items").and_then(Value::as_array) {
                    Some(items) => items.iter().collect(),
                    None => vec![&doc],
                };
                for item in items {
                    let name = get_text(item, &["metadata", "name"]).unwrap_or_default();
                    let Some(cidr) = get_text(item, &["spec", "cidr"]) else {
                        return Err(InputError::invalid(
                            file,
                            format!("IPPool `{name}` has no spec.cidr"),
                        ));
                    };
                    let on =
                        |key: &str| get_text(item, &["spec", key]).is_some_and(|m| m != "Never");
                    config.pools.push(CalicoPool {
                        name,
                        block_size: get_text(item, &["spec", "blockSize"]).map(|b| Sourced {
                            value: b,
                            origin: at("blockSize"),
                        }),
                        ipip: on("ipipMode"),
                        vxlan: on("vxlanMode"),
                        nat_outgoing: get_text(item, &["spec", "natOutgoing"]).as_deref()
                            == Some("true"),
                        disabled: get_text(item, &["spec", "disabled"]).as_deref() == Some("true"),
                        source: PoolSource::IpPool,
                        cidr: Sourced {
                            origin: at(&cidr),
                            value: cidr,
                        },
                    });
                }
            }
            _ => {}
        }
    }
    if !recognised {
        return Err(InputError::invalid(
            file,
            "no Calico configuration found: expected the calico-config ConfigMap / calico-node \
             DaemonSet of a manifest, an operator Installation, or IPPool resources",
        ));
    }
    Ok(config)
}

fn read_node_env(container: &Value, at: &dyn Fn(&str) -> Origin, config: &mut CalicoConfig) {
    let env: Vec<(String, String)> = container
        .get("env")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|e| Some((get_text(e, &["name"])?, get_text(e, &["value"])?)))
        .collect();
    let var = |name: &str| {
        env.iter()
            .rev()
            .find(|(n, _)| n == name)
            .map(|(_, v)| Sourced {
                value: v.clone(),
                origin: at(name),
            })
    };
    config.felix_ipv6_support = var("FELIX_IPV6SUPPORT");
    config.ip6 = var("IP6");
    // Defaults from calico/reference/configure-calico-node.mdx.
    for (family, ipip_default, nat_default) in
        [("IPV4", "Always", "true"), ("IPV6", "Never", "false")]
    {
        let Some(cidr) = var(&format!("CALICO_{family}POOL_CIDR")) else {
            continue;
        };
        let text = |suffix: &str, default: &str| {
            var(&format!("CALICO_{family}POOL_{suffix}"))
                .map(|v| v.value)
                .unwrap_or_else(|| default.to_owned())
        };
        config.pools.push(CalicoPool {
            name: format!("default-{}-ippool", family.to_ascii_lowercase()),
            block_size: var(&format!("CALICO_{family}POOL_BLOCK_SIZE")),
            ipip: text("IPIP", ipip_default) != "Never",
            vxlan: text("VXLAN", "Never") != "Never",
            nat_outgoing: text("NAT_OUTGOING", nat_default).eq_ignore_ascii_case("true"),
            disabled: false,
            source: PoolSource::NodeEnv,
            cidr,
        });
    }
}

fn read_cni_config(
    file: &str,
    text: &str,
    cni: &str,
    config: &mut CalicoConfig,
) -> Result<(), InputError> {
    let json: Value = serde_json::from_str(&fill_placeholders(cni)).map_err(|e| {
        InputError::invalid(
            file,
            format!(
                "cni_network_config of the calico-config ConfigMap is not valid JSON: {e} \
                 (line {} of the embedded JSON)",
                e.line()
            ),
        )
    })?;
    let plugins: Vec<&Value> = match json.get("plugins").and_then(Value::as_array) {
        Some(p) => p.iter().collect(),
        None => vec![&json],
    };
    let at = |needle: &str| Origin::new(file, line_of(text, needle));
    for plugin in plugins {
        let Some(ipam) = plugin.get("ipam") else {
            continue;
        };
        if let Some(v) = ipam.get("assign_ipv6").and_then(scalar_text) {
            config.assign_ipv6 = Some(Sourced {
                value: v,
                origin: at("assign_ipv6"),
            });
        }
        let list = |key: &str| -> Vec<Sourced<String>> {
            ipam.get(key)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(scalar_text)
                .map(|v| Sourced {
                    value: v,
                    origin: at(key),
                })
                .collect()
        };
        config.cni_ipv4_pools = list("ipv4_pools");
        config.cni_ipv6_pools = list("ipv6_pools");
    }
    Ok(())
}

/// The manifest template has unquoted placeholders such as `"mtu": __CNI_MTU__`; replace them
/// (outside strings) with `0` so the JSON parses.
fn fill_placeholders(json: &str) -> String {
    let mut out = String::with_capacity(json.len());
    let mut in_string = false;
    let mut rest = json;
    while let Some(c) = rest.chars().next() {
        if !in_string && rest.starts_with("__") {
            let end = rest[2..].find("__").filter(|&e| {
                rest[2..2 + e]
                    .chars()
                    .all(|c| c.is_ascii_uppercase() || c == '_' || c.is_ascii_digit())
            });
            if let Some(e) = end {
                out.push('0');
                rest = &rest[e + 4..];
                continue;
            }
        }
        if c == '"' && !out.ends_with('\\') {
            in_string = !in_string;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) const BLOG_MANIFEST: &str = r#"---
# Source: calico/templates/calico-config.yaml
kind: ConfigMap
apiVersion: v1
metadata:
  name: calico-config
  namespace: kube-system
data:
  typha_service_name: "none"
  calico_backend: "bird"
  veth_mtu: "0"
  cni_network_config: |-
    {
      "name": "k8s-pod-network",
      "cniVersion": "0.3.1",
      "plugins": [
        {
          "type": "calico",
          "log_level": "info",
          "datastore_type": "kubernetes",
          "nodename": "__KUBERNETES_NODE_NAME__",
          "mtu": __CNI_MTU__,
          "ipam": {
              "type": "calico-ipam",
              "assign_ipv4": "true",
              "assign_ipv6": "true",
              "nat-outgoing": "false",
              "ipv4_pools": ["10.42.0.0/24"],
              "ipv6_pools": ["fd45:a71:55a6:1:2:2::/96"]
          },
          "policy": { "type": "k8s" },
          "kubernetes": { "kubeconfig": "__KUBECONFIG_FILEPATH__" }
        },
        { "type": "portmap", "snat": true, "capabilities": {"portMappings": true} }
      ]
    }
---
kind: DaemonSet
apiVersion: apps/v1
metadata:
  name: calico-node
  namespace: kube-system
spec:
  template:
    spec:
      containers:
        - name: calico-node
          image: docker.io/calico/node:v3.20.0
          env:
            - name: DATASTORE_TYPE
              value: "kubernetes"
            - name: IP
              value: "autodetect"
            - name: CALICO_IPV4POOL_IPIP
              value: "Always"
            - name: CALICO_IPV4POOL_CIDR
              value: "10.42.0.0/24"
            - name: CALICO_IPV6POOL_CIDR
              value: "fd45:a71:55a6:1:2:2::/96"
            - name: CALICO_IPV6POOL_NAT_OUTGOING
              value: "true"
            - name: FELIX_IPV6SUPPORT
              value: "true"
            - name: NODENAME
              valueFrom:
                fieldRef:
                  fieldPath: spec.nodeName
"#;

    #[test]
    fn reads_the_blog_manifest() {
        let c = read_calico("calico.yaml", BLOG_MANIFEST).unwrap();
        assert_eq!(c.pools.len(), 2);
        assert_eq!(c.pools[1].cidr.value, "fd45:a71:55a6:1:2:2::/96");
        assert!(c.pools[1].nat_outgoing && !c.pools[1].ipip);
        assert!(c.pools[0].ipip);
        assert_eq!(c.assign_ipv6.unwrap().value, "true");
        assert_eq!(c.felix_ipv6_support.unwrap().value, "true");
        assert_eq!(c.cni_ipv6_pools[0].value, "fd45:a71:55a6:1:2:2::/96");
        assert_eq!(c.bgp, Some(true));
        assert!(c.ip6.is_none() && c.has_node_daemonset);
        assert_eq!(c.version.unwrap().value, Version::new(3, 20, 0));
        assert_eq!(c.pools[0].cidr.origin.to_string(), "calico.yaml:56");
    }

    #[test]
    fn reads_installation_and_ippools() {
        let c = read_calico(
            "inst.yaml",
            "apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata: {name: default}\nspec:\n  calicoNetwork:\n    bgp: Disabled\n    ipPools:\n    - cidr: 10.42.0.0/16\n      blockSize: 26\n      encapsulation: VXLANCrossSubnet\n    - cidr: fd00:42::/56\n      encapsulation: None\n      natOutgoing: Disabled\n",
        )
        .unwrap();
        assert_eq!(c.bgp, Some(false));
        assert!(c.pools[0].vxlan && !c.pools[0].ipip && c.pools[0].nat_outgoing);
        assert!(!c.pools[1].nat_outgoing && c.pools[1].block_size.is_none());
        let p = read_calico(
            "pools.yaml",
            "apiVersion: crd.projectcalico.org/v1\nkind: IPPool\nmetadata:\n  name: v6\nspec:\n  cidr: fd00:42::/56\n  blockSize: 122\n  ipipMode: Always\n  natOutgoing: true\n",
        )
        .unwrap();
        assert!(p.pools[0].ipip && p.pools[0].nat_outgoing);
        assert_eq!(p.pools[0].block_size.as_ref().unwrap().value, "122");
    }

    #[test]
    fn unrelated_or_broken_input_is_an_error() {
        assert!(read_calico("x.yaml", "kind: Service\n").is_err());
        let bad = "kind: ConfigMap\ndata:\n  cni_network_config: '{\"plugins\": [}'\n";
        assert!(
            read_calico("x.yaml", bad)
                .unwrap_err()
                .to_string()
                .contains("not valid JSON")
        );
        assert_eq!(
            fill_placeholders(r#"{"a": __X_1__, "b": "__Y__"}"#),
            r#"{"a": 0, "b": "__Y__"}"#
        );
    }
}
