//! `plan check`: runs every rule over the inputs a user has and returns findings.
//!
//! Several inputs are checked together: the K3s side (config files, unit, args) gives the
//! cluster view that the Calico and Traefik rules compare against.

pub mod calico;
pub mod k3s;
pub mod lists;
pub mod ranges;
pub mod systemd;
pub mod traefik;

use crate::finding::{Finding, sort_findings};
use crate::input::calico::CalicoConfig;
use crate::input::k3s_config::K3sOptions;
use crate::input::systemd::UnitProblem;
use crate::input::traefik::TraefikValues;
use crate::version::Version;

/// Everything `plan check` was given, already read.
#[derive(Debug, Clone, Default)]
pub struct CheckInput {
    /// Merged K3s options (config files, then unit or args on top), if any K3s input was given.
    pub k3s: Option<K3sOptions>,
    /// Where the command systemd runs differs from the unit file's layout.
    pub unit_problems: Vec<UnitProblem>,
    /// The Calico pools and settings, if a Calico input was given.
    pub calico: Option<CalicoConfig>,
    /// The Traefik Service settings, if a Traefik input was given.
    pub traefik: Option<TraefikValues>,
    /// `--k3s-version`; wins over a version found in the inputs.
    pub k3s_version: Option<Version>,
}

/// Runs every rule. Findings come errors first.
pub fn check(input: &CheckInput) -> Vec<Finding> {
    let mut findings = Vec::new();
    systemd::check_unit(&input.unit_problems, &mut findings);
    let version = input.k3s_version.or_else(|| {
        input
            .k3s
            .as_ref()
            .and_then(|k| k.version.as_ref())
            .map(|v| v.value)
    });
    let view = input
        .k3s
        .as_ref()
        .map(|options| k3s::check_k3s(options, version, &mut findings));
    if let Some(calico) = &input.calico {
        calico::check_calico(calico, view.as_ref(), &mut findings);
    }
    if let Some(traefik) = &input.traefik {
        let dual = view.as_ref().is_none_or(k3s::ClusterView::is_dual);
        traefik::check_traefik(traefik, dual, &mut findings);
    }
    sort_findings(&mut findings);
    findings
}

/// The raw inputs of `plan check`: file names and contents, as the binary read them.
#[derive(Debug, Clone, Default)]
pub struct CheckFiles {
    /// `config.yaml` first, then `config.yaml.d/*.yaml` in alphabetical order.
    pub k3s_config: Vec<(String, String)>,
    /// The K3s systemd unit (`k3s.service`): `(name, contents)`.
    pub k3s_service: Option<(String, String)>,
    /// The unit's drop-ins (`k3s.service.d/*.conf`), in systemd's order (by file name).
    pub k3s_service_drop_ins: Vec<(String, String)>,
    /// The unit's `EnvironmentFile=`s as read here: `(path, contents)`, `None` when the file
    /// could not be read (see [`crate::input::systemd::environment_files`]).
    pub k3s_env_files: Vec<(String, Option<String>)>,
    /// `--k3s-args`: K3s arguments as one string.
    pub k3s_args: Option<String>,
    /// The Calico input (operator `Installation`, `IPPool`s or calico-node manifest): `(name, contents)`.
    pub calico: Option<(String, String)>,
    /// The Traefik values or `HelmChartConfig`: `(name, contents)`.
    pub traefik: Option<(String, String)>,
    /// `--k3s-version`: wins over a version found in the inputs.
    pub k3s_version: Option<Version>,
    /// `--traefik-chart`: the chart version, for a HelmChartConfig (which carries none).
    /// A version the file itself names wins.
    pub traefik_chart: Option<Version>,
}

impl CheckFiles {
    /// Reads every input. Command-line flags (unit, then `--k3s-args`) win over config files.
    pub fn read(&self) -> Result<CheckInput, crate::input::InputError> {
        use crate::input::{Origin, args, calico, k3s_config, systemd, traefik};
        let mut input = CheckInput {
            k3s_version: self.k3s_version,
            ..CheckInput::default()
        };
        let mut options = None;
        if !self.k3s_config.is_empty() {
            options = Some(k3s_config::read_config_files(&self.k3s_config)?);
        }
        if let Some((name, text)) = &self.k3s_service {
            let unit = systemd::read_unit_with(
                name,
                text,
                &self.k3s_service_drop_ins,
                &self.k3s_env_files,
            )?;
            options
                .get_or_insert_with(K3sOptions::default)
                .overlay(unit.options);
            input.unit_problems = unit.problems;
        }
        if let Some(line) = &self.k3s_args {
            let words = args::split_words("--k3s-args", line)?;
            let parsed = args::read_args(&words, &Origin::new("--k3s-args", None))?;
            options
                .get_or_insert_with(K3sOptions::default)
                .overlay(parsed);
        }
        input.k3s = options;
        if let Some((name, text)) = &self.calico {
            input.calico = Some(calico::read_calico(name, text)?);
        }
        if let Some((name, text)) = &self.traefik {
            let mut values = traefik::read_traefik(name, text)?;
            if values.chart_version.is_none()
                && let Some(version) = self.traefik_chart
            {
                values.chart_version = Some(crate::input::Sourced {
                    value: version,
                    origin: Origin::new("--traefik-chart", None),
                });
            }
            input.traefik = Some(values);
        }
        Ok(input)
    }
}
