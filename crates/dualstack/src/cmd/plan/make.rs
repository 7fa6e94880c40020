//! `dualstack plan`: builds a plan from flags (drawing a ULA when none is given), prints a
//! summary or JSON, and with `--out DIR` writes the rendered files.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use dualstack_addr::{Family, OsRandom, SeededRandom, UlaPrefix, parse_prefix};
use dualstack_plan::check::{CheckFiles, check};
use dualstack_plan::plan::{Cni, Plan, PlanOptions, plan};
use dualstack_plan::render::{self, RenderedFile};
use dualstack_plan::version::Version;
use dualstack_plan::{Finding, Severity};
use ipnet::IpNet;

use super::{Format, parse_version};
use crate::exit::{Outcome, usage};

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Primary {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CniArg {
    Flannel,
    Calico,
}

/// Plan options. Every one has a default; `dualstack plan` alone prints a complete plan.
#[derive(Debug, Args)]
pub struct MakeArgs {
    /// IPv6 /48 to use (a ULA from `dualstack ip ula`, or a /48 delegated to you; a smaller
    /// delegation such as a /56 is refused, because the plan carves pods, services and
    /// node masks out of a /48).
    /// Default: a new RFC 4193 ULA from the OS random generator.
    #[arg(long, value_name = "PREFIX")]
    ula: Option<String>,
    /// Draw the ULA from this seed instead of the OS generator (reproducible output).
    #[arg(long, conflicts_with = "ula")]
    seed: Option<u64>,
    /// IPv4 space for pods then services (RFC 1918).
    #[arg(long, value_name = "PREFIX", default_value = "10.42.0.0/15")]
    ipv4_base: String,
    /// Family listed first everywhere (the cluster's primary family).
    #[arg(long, value_enum, default_value_t = Primary::Ipv4)]
    primary: Primary,
    /// Expected maximum number of nodes.
    #[arg(long, default_value_t = 256)]
    nodes: u32,
    /// Pods per node to leave room for (the kubelet default max-pods is 110).
    #[arg(long, default_value_t = 110)]
    pods_per_node: u32,
    /// Services to leave room for.
    #[arg(long, default_value_t = 65_534)]
    services: u32,
    /// Cluster DNS domain.
    #[arg(long, default_value = "cluster.local")]
    cluster_domain: String,
    /// K3s version the plan is for (e.g. v1.33.4+k3s1); makes version notes exact.
    #[arg(long, value_parser = parse_version)]
    k3s_version: Option<Version>,
    /// The CNI.
    #[arg(long, value_enum, default_value_t = CniArg::Flannel)]
    cni: CniArg,
    /// Traefik chart version (picks service.ipFamilyPolicy before 40.0.0, service.spec.* from 40.0.0).
    #[arg(long, value_parser = parse_version, default_value = "39.0.701")]
    traefik_chart: Version,
    /// dualstack replaces K3s ServiceLB: add `disable: [servicelb]`.
    #[arg(long)]
    replace_servicelb: bool,
    /// Write the rendered files under DIR (k3s/config.yaml, calico/…, traefik/…, plan.json).
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Replace files that already exist under --out.
    #[arg(long, requires = "out")]
    force: bool,
    /// Output format: a readable summary, or the plan as JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(args: MakeArgs) -> anyhow::Result<Outcome> {
    let (prefix, generated) = match (&args.ula, args.seed) {
        (Some(text), _) => {
            let net = parse_prefix(text.trim()).map_err(|e| usage(format!("--ula: {e}")))?;
            let IpNet::V6(v6) = net else {
                return Err(usage(format!(
                    "--ula {text}: an IPv6 /48 is needed, this is IPv4"
                )));
            };
            (v6, false)
        }
        (None, Some(seed)) => (generate(&mut SeededRandom::new(seed))?, true),
        (None, None) => (generate(&mut OsRandom)?, true),
    };
    let ipv4_base = match parse_prefix(args.ipv4_base.trim()) {
        Ok(IpNet::V4(net)) => net,
        Ok(IpNet::V6(_)) => {
            return Err(usage(format!(
                "--ipv4-base {}: an IPv4 prefix is needed",
                args.ipv4_base
            )));
        }
        Err(e) => return Err(usage(format!("--ipv4-base: {e}"))),
    };
    let mut options = PlanOptions::new(prefix, generated);
    options.ipv4_base = ipv4_base;
    options.primary = match args.primary {
        Primary::Ipv4 => Family::V4,
        Primary::Ipv6 => Family::V6,
    };
    options.max_nodes = args.nodes;
    options.pods_per_node = args.pods_per_node;
    options.services = args.services;
    options.cluster_domain = args.cluster_domain.clone();
    options.k3s_version = args.k3s_version;
    options.cni = match args.cni {
        CniArg::Flannel => Cni::Flannel,
        CniArg::Calico => Cni::Calico,
    };
    options.traefik_chart = args.traefik_chart;
    options.replace_servicelb = args.replace_servicelb;

    let plan = plan(&options).map_err(|e| usage(e.to_string()))?;
    let files = render::render(&plan);
    let notes = self_check(&plan, &files)?;

    if let Some(dir) = &args.out {
        write_files(dir, &files, args.force)?;
    }
    match args.output {
        Format::Json => println!("{}", render::plan_json(&plan).trim_end()),
        Format::Text => print!("{}", summary(&plan, &notes, args.out.as_deref(), &files)),
    }
    Ok(Outcome::Ok)
}

fn generate(rng: &mut impl dualstack_addr::RandomSource) -> anyhow::Result<ipnet::Ipv6Net> {
    Ok(UlaPrefix::generate(rng)
        .context("generating a ULA prefix")?
        .net())
}

/// Runs `plan check` on what we render: warnings and notes go into the summary. An error here
/// would be a bug in the planner.
fn self_check(plan: &Plan, files: &[RenderedFile]) -> anyhow::Result<Vec<Finding>> {
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
    .context("re-reading the rendered files")?;
    let findings = check(&input);
    if let Some(e) = findings.iter().find(|f| f.severity == Severity::Error) {
        anyhow::bail!(
            "internal error: the rendered plan fails its own check: {}: {}",
            e.code,
            e.message
        );
    }
    Ok(findings
        .into_iter()
        // Capacity is in the summary already; the Traefik key choice is made from the chart
        // version, which a HelmChartConfig does not carry, so the checker cannot see it.
        .filter(|f| {
            !matches!(
                f.code,
                dualstack_plan::Code::Capacity | dualstack_plan::Code::TraefikKeyIgnored
            )
        })
        .collect())
}

/// Writes every file, refusing to replace existing ones without `--force`. Everything is
/// checked before the first write.
fn write_files(dir: &Path, files: &[RenderedFile], force: bool) -> anyhow::Result<()> {
    if !force {
        for f in files {
            let path = dir.join(f.path);
            if path.exists() {
                return Err(usage(format!(
                    "--out: {} already exists; pass --force to replace it",
                    path.display()
                )));
            }
        }
    }
    for f in files {
        let path = dir.join(f.path);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .with_context(|| format!("creating {}", parent.display()))?;
        }
        std::fs::write(&path, &f.contents)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn summary(plan: &Plan, notes: &[Finding], out: Option<&Path>, files: &[RenderedFile]) -> String {
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
