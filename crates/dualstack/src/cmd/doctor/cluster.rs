//! `dualstack doctor cluster`: lists nodes, Services, a sample of running pods, the DNS
//! Service and Calico IPPools (when the CRD exists) and runs the cluster checks.
//!
//! The fetching and converting is `dualstack_kube::doctor`'s; here are the flags, the
//! kubeconfig and the printing.

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use clap::Args;
use dualstack_doctor::cluster;
use dualstack_lb::config::DEFAULT_CLASS;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

use super::{k3s, print};
use crate::exit::{Outcome, usage};
use crate::output::Format;

/// K3s writes the admin kubeconfig here; tried when nothing else is configured.
const K3S_KUBECONFIG: &str = "/etc/rancher/k3s/k3s.yaml";

#[derive(Debug, Args)]
pub struct ClusterArgs {
    /// Kubeconfig file. Default: $KUBECONFIG, ~/.kube/config, the in-cluster service
    /// account, then /etc/rancher/k3s/k3s.yaml.
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
    /// Kubeconfig context (default: the current one).
    #[arg(long, value_name = "NAME")]
    context: Option<String>,
    /// The cluster CIDRs (K3s `cluster-cidr`) Calico pools must sit inside, e.g.
    /// 10.42.0.0/16,fd12:3456:789a::/56. Default: from the K3s config if readable.
    #[arg(long, value_name = "CIDR[,CIDR]")]
    cluster_cidr: Vec<String>,
    /// K3s config file to read `cluster-cidr` from. Default: /etc/rancher/k3s/config.yaml
    /// when it exists.
    #[arg(long, value_name = "FILE")]
    k3s_config: Option<PathBuf>,
    /// Our `spec.loadBalancerClass`.
    #[arg(long, default_value = DEFAULT_CLASS)]
    class: String,
    /// We also own LoadBalancer Services that set no `loadBalancerClass`.
    #[arg(long)]
    default_class: bool,
    /// How many running pods to sample.
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pod_sample: u32,
    /// Output format: a checklist with the fix under every problem, or `{"checks":[…]}`.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

pub fn run(args: ClusterArgs) -> anyhow::Result<Outcome> {
    let mut cluster_cidrs = k3s::parse_cidrs(&args.cluster_cidr, "--cluster-cidr")?;
    if cluster_cidrs.is_empty()
        && let Some(k) = k3s::find(args.k3s_config.as_deref())?
        && !k.pod_cidrs.source.starts_with("K3s default")
    {
        cluster_cidrs = k.pod_cidrs.cidrs;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let facts = runtime.block_on(async {
        let client = client(args.kubeconfig.as_deref(), args.context.as_deref()).await?;
        let mut facts = dualstack_kube::doctor::fetch(client, args.pod_sample).await?;
        facts.cluster_cidrs = cluster_cidrs;
        facts.lb_class = args.class.clone();
        facts.default_class = args.default_class;
        anyhow::Ok(facts)
    })?;
    print(&cluster::check(&facts), args.output)
}

async fn client(kubeconfig: Option<&Path>, context: Option<&str>) -> anyhow::Result<Client> {
    let options = KubeConfigOptions {
        context: context.map(String::from),
        ..KubeConfigOptions::default()
    };
    let from_file = |path: &Path| {
        Kubeconfig::read_from(path)
            .map_err(|e| usage(format!("--kubeconfig: {}: {e}", path.display())))
    };
    let config = match kubeconfig {
        Some(path) => Config::from_custom_kubeconfig(from_file(path)?, &options)
            .await
            .map_err(|e| usage(format!("--kubeconfig: {}: {e}", path.display())))?,
        None if context.is_some() => Config::from_kubeconfig(&options)
            .await
            .map_err(|e| usage(format!("--context: {e}")))?,
        None => match Config::infer().await {
            Ok(c) => c,
            Err(e) if Path::new(K3S_KUBECONFIG).is_file() => {
                Config::from_custom_kubeconfig(from_file(Path::new(K3S_KUBECONFIG))?, &options)
                    .await
                    .with_context(|| format!("no kubeconfig found ({e}); {K3S_KUBECONFIG}"))?
            }
            Err(e) => {
                return Err(usage(format!(
                    "no kubeconfig: {e}; pass --kubeconfig FILE or set KUBECONFIG"
                )));
            }
        },
    };
    Ok(Client::try_from(config)?)
}
