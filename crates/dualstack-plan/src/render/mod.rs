//! Renders a [`Plan`] into the files that carry it: K3s `config.yaml`, Calico `Installation`
//! and `IPPool`s (Calico plans only), the Traefik `HelmChartConfig`, and `plan.json`.
//!
//! YAML is written by hand, deterministically: every string is a JSON-style double-quoted
//! scalar (valid YAML 1.1 and 1.2, so K3s, kubectl and helm read it the same way).

use std::fmt::Write as _;

use dualstack_addr::Family;

use crate::plan::{Cni, Plan};

/// One rendered file: a path relative to the output directory, and its contents.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderedFile {
    /// Where the file goes, relative to the output directory.
    pub path: &'static str,
    /// What it holds.
    pub contents: String,
}

/// The K3s configuration (`/etc/rancher/k3s/config.yaml` on each server).
pub const K3S_CONFIG: &str = "k3s/config.yaml";
/// The Calico operator `Installation` with both pools.
pub const CALICO_INSTALLATION: &str = "calico/installation.yaml";
/// Calico `IPPool` resources, for manifest installs.
pub const CALICO_IPPOOLS: &str = "calico/ippools.yaml";
/// Traefik's `HelmChartConfig`, making its Service dual-stack.
pub const TRAEFIK_CONFIG: &str = "traefik/helmchartconfig.yaml";
/// The plan itself as JSON (what `plan --json` prints).
pub const PLAN_JSON: &str = "plan.json";

/// A double-quoted YAML scalar.
fn q(s: &str) -> String {
    serde_json::Value::String(s.to_owned()).to_string()
}

/// Every file of the plan.
pub fn render(plan: &Plan) -> Vec<RenderedFile> {
    let mut files = vec![RenderedFile {
        path: K3S_CONFIG,
        contents: k3s_config(plan),
    }];
    if plan.cni == Cni::Calico {
        files.push(RenderedFile {
            path: CALICO_INSTALLATION,
            contents: calico_installation(plan),
        });
        files.push(RenderedFile {
            path: CALICO_IPPOOLS,
            contents: calico_ippools(plan),
        });
    }
    files.push(RenderedFile {
        path: TRAEFIK_CONFIG,
        contents: traefik_config(plan),
    });
    files.push(RenderedFile {
        path: PLAN_JSON,
        contents: plan_json(plan),
    });
    files
}

/// The plan as pretty JSON with a trailing newline.
pub fn plan_json(plan: &Plan) -> String {
    let mut text = serde_json::to_string_pretty(plan).unwrap_or_default();
    text.push('\n');
    text
}

fn family_word(f: Family) -> &'static str {
    match f {
        Family::V4 => "IPv4",
        Family::V6 => "IPv6",
    }
}

/// K3s config file (`docs/installation/configuration.md`, §2.6 example).
pub fn k3s_config(plan: &Plan) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# K3s server configuration from `dualstack plan` (dual-stack, {} primary).",
        family_word(plan.primary)
    );
    out.push_str(
        "# Install as /etc/rancher/k3s/config.yaml on every server BEFORE the first start:\n",
    );
    out.push_str(
        "# dual-stack cannot be enabled on a cluster that already ran IPv4-only, and these\n",
    );
    out.push_str("# values must be identical on all servers.\n");
    let _ = writeln!(
        out,
        "cluster-cidr: {}",
        q(&plan.joined(|f| f.cluster_cidr.to_string()))
    );
    let _ = writeln!(
        out,
        "service-cidr: {}",
        q(&plan.joined(|f| f.service_cidr.to_string()))
    );
    let _ = writeln!(
        out,
        "cluster-dns: {}",
        q(&plan.joined(|f| f.cluster_dns.to_string()))
    );
    let _ = writeln!(out, "cluster-domain: {}", q(&plan.cluster_domain));
    out.push_str(
        "# node-ip differs per node: set it in each node's own config, primary family first,\n",
    );
    out.push_str("# or K3s may find only one family and refuse to start:\n");
    let _ = writeln!(
        out,
        "# node-ip: \"{}\"",
        plan.joined(|f| format!("<this node's {}>", family_word(f.family)))
    );
    out.push_str("kube-controller-manager-arg:\n");
    for family in Family::BOTH {
        if let Some(f) = plan.family(family) {
            let _ = writeln!(
                out,
                "  - {}",
                q(&format!(
                    "node-cidr-mask-size-{}={}",
                    family.as_str(),
                    f.node_mask
                ))
            );
        }
    }
    match plan.cni {
        Cni::Flannel => {
            if plan.family(Family::V6).is_some_and(|f| {
                dualstack_addr::kind_of(f.cluster_cidr.addr())
                    != dualstack_addr::Kind::GlobalUnicast
            }) {
                out.push_str("# The IPv6 pod range is not routed from outside: masquerade pod IPv6 traffic.\n");
                out.push_str("flannel-ipv6-masq: true\n");
            }
        }
        Cni::Calico => {
            out.push_str("# Calico is the CNI: no flannel, no K3s network-policy controller.\n");
            out.push_str("flannel-backend: \"none\"\n");
            out.push_str("disable-network-policy: true\n");
        }
    }
    if plan.replace_servicelb {
        out.push_str("# dualstack serves type: LoadBalancer Services instead of ServiceLB.\n");
        out.push_str("disable:\n  - \"servicelb\"\n");
    }
    out
}

fn pools(plan: &Plan) -> impl Iterator<Item = (&'static str, &crate::plan::FamilyPlan)> {
    plan.families.iter().map(|f| {
        let name = match f.family {
            Family::V4 => "default-ipv4-ippool",
            Family::V6 => "default-ipv6-ippool",
        };
        (name, f)
    })
}

/// tigera-operator `Installation` with both pools (§3.3).
pub fn calico_installation(plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(
        "# tigera-operator Installation from `dualstack plan`: one pool per family, equal to the\n",
    );
    out.push_str(
        "# K3s cluster-cidr of that family. The ipPools cannot be changed after install.\n",
    );
    out.push_str("# IPv6 VXLAN needs Calico 3.23 or newer and a kernel of 4.19.1 or newer.\n");
    out.push_str("apiVersion: operator.tigera.io/v1\nkind: Installation\nmetadata:\n  name: \"default\"\nspec:\n  calicoNetwork:\n");
    out.push_str("    bgp: \"Disabled\"\n    containerIPForwarding: \"Enabled\"\n    ipPools:\n");
    for (name, f) in pools(plan) {
        let _ = writeln!(out, "      - name: {}", q(name));
        let _ = writeln!(out, "        cidr: {}", q(&f.cluster_cidr.to_string()));
        let _ = writeln!(out, "        blockSize: {}", f.calico_block_size);
        out.push_str("        encapsulation: \"VXLAN\"\n        natOutgoing: \"Enabled\"\n        nodeSelector: \"all()\"\n");
    }
    for family in Family::BOTH {
        if plan.family(family).is_some() {
            let suffix = if family == Family::V4 { "V4" } else { "V6" };
            let _ = writeln!(
                out,
                "    nodeAddressAutodetection{suffix}:\n      kubernetes: \"NodeInternalIP\""
            );
        }
    }
    out
}

/// `IPPool` resources for manifest installs (§3.1).
pub fn calico_ippools(plan: &Plan) -> String {
    let mut out = String::new();
    out.push_str(
        "# Calico IPPools from `dualstack plan`, for manifest (calico.yaml) installs. Apply with\n",
    );
    out.push_str(
        "# `calicoctl apply -f` (or kubectl with the Calico API server). In calico.yaml also set\n",
    );
    out.push_str(
        "# FELIX_IPV6SUPPORT=\"true\", IP6=\"autodetect\" and ipam \"assign_ipv6\": \"true\".\n",
    );
    for (name, f) in pools(plan) {
        out.push_str("---\napiVersion: projectcalico.org/v3\nkind: IPPool\nmetadata:\n");
        let _ = writeln!(out, "  name: {}", q(name));
        out.push_str("spec:\n");
        let _ = writeln!(out, "  cidr: {}", q(&f.cluster_cidr.to_string()));
        let _ = writeln!(out, "  blockSize: {}", f.calico_block_size);
        out.push_str("  ipipMode: \"Never\"\n  vxlanMode: \"Always\"\n  natOutgoing: true\n  nodeSelector: \"all()\"\n");
    }
    out
}

/// K3s `HelmChartConfig` for Traefik with the value keys of the chart version (§2.7).
pub fn traefik_config(plan: &Plan) -> String {
    let new_layout = plan.traefik_chart.major >= crate::check::traefik::SPEC_KEYS_FROM_MAJOR;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Dual-stack Service for K3s's bundled Traefik, for chart {} ({}).",
        plan.traefik_chart,
        if new_layout {
            "40.0.0 and newer read service.spec.*"
        } else {
            "charts before 40.0.0 read service.ipFamilyPolicy"
        }
    );
    out.push_str("# Install as /var/lib/rancher/k3s/server/manifests/traefik-config.yaml.\n");
    out.push_str("apiVersion: helm.cattle.io/v1\nkind: HelmChartConfig\nmetadata:\n  name: \"traefik\"\n  namespace: \"kube-system\"\nspec:\n  valuesContent: |-\n    service:\n");
    let indent = if new_layout {
        out.push_str("      spec:\n");
        "        "
    } else {
        "      "
    };
    let _ = writeln!(
        out,
        "{indent}ipFamilyPolicy: \"PreferDualStack\"\n{indent}ipFamilies:"
    );
    for f in &plan.families {
        let _ = writeln!(out, "{indent}  - {}", q(family_word(f.family)));
    }
    out
}
