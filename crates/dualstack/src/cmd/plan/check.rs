//! `dualstack plan check`: reads the user's files, runs the rules, prints findings.
//! Exit 0 without errors, 1 with at least one error finding, 2 when an input cannot be read
//! or parsed.

use std::fmt::Write as _;
use std::path::PathBuf;

use clap::Args;
use dualstack_plan::check::{CheckFiles, check};
use dualstack_plan::finding::has_errors;
use dualstack_plan::version::Version;
use dualstack_plan::{Finding, Severity};
use serde::Serialize;

use super::{Format, parse_version};
use crate::exit::{Outcome, usage};
use crate::input_files::{k3s_config_files, read_named, unit_drop_ins, unit_env_files};

/// What to check. Give any combination; several inputs are checked together.
#[derive(Debug, Args)]
pub struct CheckArgs {
    /// K3s config file (config.yaml). Repeatable; a directory means its *.yaml files in
    /// alphabetical order. A `<file>.d/` directory next to a file is read after it, like K3s's
    /// config.yaml.d.
    #[arg(long, value_name = "FILE")]
    k3s_config: Vec<PathBuf>,
    /// K3s systemd unit (k3s.service), read as systemd reads it, with its `<FILE>.d/*.conf`
    /// drop-ins and the EnvironmentFile= files it names (when readable here). Its ExecStart=
    /// flags win over the config files.
    #[arg(long, value_name = "FILE")]
    k3s_service: Option<PathBuf>,
    /// A copy of an EnvironmentFile= the unit names, used in place of the file of the same name
    /// (e.g. k3s.service.env for /etc/systemd/system/k3s.service.env) when checking away from
    /// the node. Repeatable.
    #[arg(long, value_name = "FILE", requires = "k3s_service")]
    k3s_env: Vec<PathBuf>,
    /// K3s arguments as one string, e.g. "server --cluster-cidr=…" (win over unit and files).
    #[arg(long, value_name = "ARGS", allow_hyphen_values = true)]
    k3s_args: Option<String>,
    /// Calico manifest (calico.yaml), operator Installation, or IPPool resources.
    #[arg(long, value_name = "FILE")]
    calico: Option<PathBuf>,
    /// Traefik settings: K3s's HelmChart or HelmChartConfig (its valuesContent), or a plain
    /// Helm values file (what `helm install traefik traefik/traefik -f FILE` takes). Told apart
    /// by content: Kubernetes objects (apiVersion and kind) are HelmChart(Config)s; one mapping
    /// of chart values, `{}` or an empty file (the chart defaults) is a values file.
    #[arg(long, value_name = "FILE")]
    traefik: Option<PathBuf>,
    /// K3s version (e.g. v1.30.4+k3s1): makes version-dependent rules exact.
    #[arg(long, value_parser = parse_version)]
    k3s_version: Option<Version>,
    /// Traefik chart version (e.g. 39.0.701) for any --traefik file: it decides which values
    /// keys the chart reads (service.spec.* from 40.0.0). A HelmChartConfig or values file names
    /// none; a version a HelmChart names (spec.version or its chart URL) wins.
    #[arg(long, value_parser = parse_version, value_name = "VERSION")]
    traefik_chart: Option<Version>,
    /// Output format: text, or `{"findings":[…]}` as JSON.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Text)]
    output: Format,
}

#[derive(Serialize)]
struct Report<'a> {
    findings: &'a [Finding],
}

pub fn run(args: CheckArgs) -> anyhow::Result<Outcome> {
    if args.k3s_config.is_empty()
        && args.k3s_service.is_none()
        && args.k3s_args.is_none()
        && args.calico.is_none()
        && args.traefik.is_none()
    {
        return Err(usage(
            "nothing to check: give --k3s-config, --k3s-service, --k3s-args, --calico and/or --traefik",
        ));
    }
    let k3s_service = args.k3s_service.as_deref().map(read_named).transpose()?;
    let k3s_service_drop_ins = match &args.k3s_service {
        Some(path) => unit_drop_ins(path)?,
        None => Vec::new(),
    };
    let k3s_env_files = match &k3s_service {
        Some(unit) => unit_env_files(unit, &k3s_service_drop_ins, &args.k3s_env)?,
        None => Vec::new(),
    };
    let files = CheckFiles {
        k3s_config: k3s_config_files(&args.k3s_config)?,
        k3s_service,
        k3s_service_drop_ins,
        k3s_env_files,
        k3s_args: args.k3s_args.clone(),
        calico: args.calico.as_deref().map(read_named).transpose()?,
        traefik: args.traefik.as_deref().map(read_named).transpose()?,
        k3s_version: args.k3s_version,
        traefik_chart: args.traefik_chart,
    };
    let input = files.read().map_err(|e| usage(e.to_string()))?;
    let findings = check(&input);
    match args.output {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                findings: &findings
            })?
        ),
        Format::Text => print!("{}", text(&findings)),
    }
    Ok(if has_errors(&findings) {
        Outcome::Problems
    } else {
        Outcome::Ok
    })
}

fn text(findings: &[Finding]) -> String {
    let mut s = String::new();
    for f in findings {
        let _ = write!(s, "{:<7} {}", f.severity.as_str(), f.code);
        if let Some(src) = &f.source {
            let _ = write!(s, "  ({src})");
        }
        let _ = writeln!(s, "\n        {}\n        fix: {}", f.message, f.fix);
    }
    let count = |sev: Severity| findings.iter().filter(|f| f.severity == sev).count();
    let _ = writeln!(
        s,
        "{} error(s), {} warning(s), {} note(s)",
        count(Severity::Error),
        count(Severity::Warning),
        count(Severity::Info)
    );
    s
}
