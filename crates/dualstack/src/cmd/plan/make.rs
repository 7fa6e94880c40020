//! `dualstack plan`: builds a plan from flags (drawing a ULA when none is given), prints a
//! summary or JSON, and with `--out DIR` writes the rendered files.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use dualstack_addr::{Family, OsRandom, SeededRandom, UlaPrefix, parse_prefix};
use dualstack_plan::plan::{Cni, PlanOptions, plan};
use dualstack_plan::render::{self, RenderedFile};
use dualstack_plan::report;
use dualstack_plan::version::Version;
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
    let notes = report::self_check(&plan, &files)?;

    if let Some(dir) = &args.out {
        write_files(dir, &files, args.force)?;
    }
    match args.output {
        Format::Json => println!("{}", render::plan_json(&plan).trim_end()),
        Format::Text => print!(
            "{}",
            report::summary(&plan, &notes, args.out.as_deref(), &files)
        ),
    }
    Ok(Outcome::Ok)
}

fn generate(rng: &mut impl dualstack_addr::RandomSource) -> anyhow::Result<ipnet::Ipv6Net> {
    Ok(UlaPrefix::generate(rng)
        .context("generating a ULA prefix")?
        .net())
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
