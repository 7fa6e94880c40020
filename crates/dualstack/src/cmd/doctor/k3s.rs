//! The K3s config as far as the doctor needs it: the cluster (pod) CIDRs and whether K3s's
//! flannel is the CNI. Reads `config.yaml` and its `config.yaml.d/*.yaml` drop-ins in K3s's
//! order and merges them with `dualstack-plan`'s reader.

use std::path::Path;

use dualstack_doctor::node::{Cni, PodCidrs};
use ipnet::IpNet;

use crate::exit::usage;
use crate::input_files::k3s_config_files;

/// Where K3s reads its config by default.
pub const DEFAULT_CONFIG: &str = "/etc/rancher/k3s/config.yaml";

/// What the doctor takes from a K3s config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct K3sFacts {
    pub pod_cidrs: PodCidrs,
    pub cni: Cni,
}

/// Reads the K3s config at `path` (exit 2 when it cannot be read or parsed).
pub fn read_config(path: &Path) -> anyhow::Result<K3sFacts> {
    let files = k3s_config_files(&[path.to_path_buf()])?;
    let options = dualstack_plan::input::k3s_config::read_config_files(&files)
        .map_err(|e| usage(e.to_string()))?;
    let cni = match options.last("flannel-backend") {
        Some(v) if v.value.trim() == "none" => Cni::Other,
        _ => Cni::K3sFlannel,
    };
    let pod_cidrs = match options.list("cluster-cidr") {
        Some(list) => PodCidrs {
            cidrs: parse_cidrs(
                std::slice::from_ref(&list.value),
                &format!("cluster-cidr ({})", list.origin),
            )?,
            source: list.origin.to_string(),
        },
        None => PodCidrs {
            cidrs: vec![IpNet::from(ipnet::Ipv4Net::new([10, 42, 0, 0].into(), 16)?)],
            source: format!(
                "K3s default cluster-cidr 10.42.0.0/16 (not set in {})",
                path.display()
            ),
        },
    };
    Ok(K3sFacts { pod_cidrs, cni })
}

/// Reads `--k3s-config` when given, else the default config if it exists and is readable.
pub fn find(explicit: Option<&Path>) -> anyhow::Result<Option<K3sFacts>> {
    match explicit {
        Some(p) => read_config(p).map(Some),
        None => {
            let p = Path::new(DEFAULT_CONFIG);
            if p.is_file() {
                match read_config(p) {
                    Ok(f) => Ok(Some(f)),
                    Err(e) => {
                        eprintln!("note: ignoring {DEFAULT_CONFIG}: {e}");
                        Ok(None)
                    }
                }
            } else {
                Ok(None)
            }
        }
    }
}

/// Parses comma-separated CIDR lists strictly (`field` names the flag in errors).
pub fn parse_cidrs(values: &[String], field: &str) -> anyhow::Result<Vec<IpNet>> {
    let cidrs: Vec<IpNet> = values
        .iter()
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| dualstack_addr::parse_prefix(s).map_err(|e| usage(format!("{field}: `{s}`: {e}"))))
        .collect::<anyhow::Result<_>>()?;
    // Kubernetes takes at most two cluster CIDRs, of different families; silently checking
    // only some of a longer list would hide the mistake.
    for family in dualstack_addr::Family::BOTH {
        let same: Vec<String> = cidrs
            .iter()
            .filter(|c| dualstack_addr::Family::of_net(**c) == family)
            .map(ToString::to_string)
            .collect();
        if same.len() > 1 {
            return Err(usage(format!(
                "{field}: {} {family} ranges ({}); a cluster has at most one pod range per family",
                same.len(),
                same.join(", ")
            )));
        }
    }
    Ok(cidrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_cluster_cidr_drop_ins_and_backend() {
        let dir = std::env::temp_dir().join(format!("dualstack-doctor-k3s-{}", std::process::id()));
        std::fs::create_dir_all(dir.join("config.yaml.d")).unwrap();
        std::fs::write(dir.join("config.yaml"), "cluster-cidr: 10.42.0.0/16\n").unwrap();
        std::fs::write(
            dir.join("config.yaml.d/50-v6.yaml"),
            "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\nflannel-backend: none\n",
        )
        .unwrap();
        let f = read_config(&dir.join("config.yaml")).unwrap();
        assert_eq!(f.cni, Cni::Other);
        assert_eq!(f.pod_cidrs.cidrs.len(), 2);
        assert!(
            f.pod_cidrs.source.ends_with("50-v6.yaml:1"),
            "{}",
            f.pod_cidrs.source
        );
        std::fs::write(
            dir.join("config.yaml.d/50-v6.yaml"),
            "node-ip: 192.168.1.10\n",
        )
        .unwrap();
        let f = read_config(&dir.join("config.yaml")).unwrap();
        assert_eq!(f.cni, Cni::K3sFlannel);
        assert_eq!(
            f.pod_cidrs.cidrs,
            ["10.42.0.0/16".parse::<IpNet>().unwrap()]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_cidrs_name_the_field() {
        let err = parse_cidrs(
            &["10.42.0.0/16,10.43.0.0/16,fd00::/56".into()],
            "--pod-cidr",
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains("--pod-cidr: 2 ipv4 ranges (10.42.0.0/16, 10.43.0.0/16)"),
            "{err}"
        );
        let err = parse_cidrs(&["10.42.0.0/16,fd00::1/56".into()], "--pod-cidr").unwrap_err();
        assert!(
            err.to_string().starts_with("--pod-cidr: `fd00::1/56`"),
            "{err}"
        );
    }
}
