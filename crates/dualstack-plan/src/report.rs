//! What `dualstack plan` reports besides the files: a check of the rendered files by
//! `plan check`'s own rules ([`self_check`]), and the readable [`summary`].

use std::fmt::Write as _;
use std::path::Path;

use crate::check::{CheckFiles, check};
use crate::input::InputError;
use crate::plan::{Cni, Plan};
use crate::render::{self, RenderedFile};
use crate::{Code, Finding, Severity};

/// Why the rendered plan did not pass its own check: a bug in the planner or the renderer.
#[derive(Debug, thiserror::Error)]
pub enum SelfCheckError {
    /// A rendered file could not be read back by the checker's readers.
    #[error("re-reading the rendered files")]
    Read(#[source] InputError),
    /// A rendered file breaks a rule of `plan check`.
    #[error("internal error: the rendered plan fails its own check: {code}: {message}")]
    Fails {
        /// The rule broken.
        code: Code,
        /// The finding's message.
        message: String,
    },
}

/// Runs `plan check` on what we render: warnings and notes go into the summary. An error here
/// would be a bug in the planner.
pub fn self_check(plan: &Plan, files: &[RenderedFile]) -> Result<Vec<Finding>, SelfCheckError> {
    let get = |path: &str| {
        files
            .iter()
            .find(|f| f.path == path)
            .map(|f| (path.to_owned(), f.contents.clone()))
    };
    let input = CheckFiles {
        k3s_config: get(render::K3S_CONFIG).into_iter().collect(),
        calico: get(render::CALICO_INSTALLATION),
        traefik: get(render::TRAEFIK_CONFIG),
        k3s_version: plan.k3s_version,
        ..CheckFiles::default()
    }
    .read()
    .map_err(SelfCheckError::Read)?;
    let findings = check(&input);
    if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
        return Err(SelfCheckError::Fails {
            code: e.code,
            message: e.message.clone(),
        });
    }
    Ok(findings
        .into_iter()
        // Capacity is in the summary already; the Traefik key choice is made from the chart
        // version, which a HelmChartConfig does not carry, so the checker cannot see it.
        .filter(|f| !matches!(f.code, Code::Capacity | Code::TraefikKeyIgnored))
        .collect())
}

/// The text `dualstack plan` prints: the prefix (and how to keep a generated one), the CIDRs
/// per family, the capacity and its bounds, the self-check's `notes`, and the files written
/// under `out` (or how to write them).
pub fn summary(
    plan: &Plan,
    notes: &[Finding],
    out: Option<&Path>,
    files: &[RenderedFile],
) -> String {
    let mut s = String::new();
    if plan.ipv6_generated {
        let _ = writeln!(
            s,
            "Generated a new IPv6 ULA prefix {} (RFC 4193: fd00::/8 + random 40-bit Global ID).",
            plan.ipv6_prefix
        );
        let _ = writeln!(
            s,
            "Keep it: pass --ula {} to plan again with the same prefix.\n",
            plan.ipv6_prefix
        );
    } else {
        let _ = writeln!(s, "IPv6 prefix {}.\n", plan.ipv6_prefix);
    }
    let names: Vec<&str> = plan.families.iter().map(|f| f.family.k8s_name()).collect();
    let _ = writeln!(
        s,
        "Dual-stack plan ({} primary, {}):",
        names[0],
        match plan.cni {
            Cni::Flannel => "flannel",
            Cni::Calico => "Calico",
        }
    );
    let row = |s: &mut String, label: &str, values: Vec<String>| {
        let _ = writeln!(
            s,
            "  {label:<15} {}",
            values
                .iter()
                .map(|v| format!("{v:<28}"))
                .collect::<String>()
                .trim_end()
        );
    };
    row(&mut s, "", names.iter().map(|n| n.to_string()).collect());
    row(
        &mut s,
        "cluster-cidr",
        plan.families
            .iter()
            .map(|f| f.cluster_cidr.to_string())
            .collect(),
    );
    row(
        &mut s,
        "service-cidr",
        plan.families
            .iter()
            .map(|f| f.service_cidr.to_string())
            .collect(),
    );
    row(
        &mut s,
        "cluster-dns",
        plan.families
            .iter()
            .map(|f| f.cluster_dns.to_string())
            .collect(),
    );
    row(
        &mut s,
        "node mask",
        plan.families
            .iter()
            .map(|f| format!("/{}", f.node_mask))
            .collect(),
    );
    if plan.cni == Cni::Calico {
        row(
            &mut s,
            "Calico block",
            plan.families
                .iter()
                .map(|f| format!("/{}", f.calico_block_size))
                .collect(),
        );
    }
    let _ = writeln!(s, "\nCapacity (and what bounds it):");
    for f in &plan.families {
        let n = f.family.k8s_name();
        let _ = writeln!(
            s,
            "  {n} nodes:         {:>22}  {}",
            f.nodes.value, f.nodes.bound
        );
        let _ = writeln!(
            s,
            "  {n} pods per node: {:>22}  {}",
            f.pods_per_node.value, f.pods_per_node.bound
        );
        let _ = writeln!(
            s,
            "  {n} services:      {:>22}  {}",
            f.services.value, f.services.bound
        );
        if plan.cni == Cni::Calico {
            let _ = writeln!(
                s,
                "  {n} Calico blocks: {:>22}  {}",
                f.calico_blocks.value, f.calico_blocks.bound
            );
        }
    }
    if !notes.is_empty() {
        let _ = writeln!(s, "\nNotes:");
        for n in notes {
            let _ = writeln!(s, "  {} {}: {}", n.severity, n.code, n.message);
        }
    }
    match out {
        Some(dir) => {
            let _ = writeln!(s, "\nWrote:");
            for f in files {
                let _ = writeln!(s, "  {}", dir.join(f.path).display());
            }
        }
        None => {
            let _ = writeln!(
                s,
                "\nWrite the files with --out DIR: {}.",
                files.iter().map(|f| f.path).collect::<Vec<_>>().join(", ")
            );
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{PlanOptions, plan};

    fn default_plan() -> Plan {
        let prefix = "fd12:3456:789a::/48".parse().unwrap();
        plan(&PlanOptions::new(prefix, false)).unwrap()
    }

    #[test]
    fn the_default_plan_passes_its_own_check_without_notes_for_what_the_summary_says() {
        let plan = default_plan();
        let files = render::render(&plan);
        let notes = self_check(&plan, &files).unwrap();
        assert!(
            notes
                .iter()
                .all(|n| n.severity != Severity::Error && n.code != Code::Capacity),
            "{notes:?}"
        );
    }

    #[test]
    fn summary_names_the_cidrs_and_how_to_write_the_files() {
        let plan = default_plan();
        let files = render::render(&plan);
        let text = summary(&plan, &[], None, &files);
        assert!(
            text.starts_with("IPv6 prefix fd12:3456:789a::/48.\n"),
            "{text}"
        );
        assert!(text.contains("  cluster-cidr    10.42.0.0/16"), "{text}");
        assert!(
            text.contains("\nWrite the files with --out DIR: k3s/config.yaml, "),
            "{text}"
        );
        let written = summary(&plan, &[], Some(Path::new("out")), &files);
        assert!(
            written.contains("\nWrote:\n  out/k3s/config.yaml\n"),
            "{written}"
        );
    }
}
