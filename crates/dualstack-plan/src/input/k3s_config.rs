//! K3s options as one merged model, and the K3s config file reader
//! (`/etc/rancher/k3s/config.yaml` plus `config.yaml.d/*.yaml`).
//!
//! Semantics (K3s docs, `docs/installation/configuration.md`): CLI flags map to YAML keys,
//! repeatable flags are YAML lists, booleans are `true`/`false`. Files are read in order
//! (`config.yaml`, then the drop-ins alphabetically); "the last value for a given key will be
//! used", and "a `+` can be appended to the key to append the value". Command-line flags win
//! over the files: a key given on the command line replaces the files' values for that key.

use std::collections::BTreeMap;

use serde_json::Value;

use super::yaml::{documents, scalar_text};
use super::{InputError, Origin, Sourced};
use crate::version::Version;

/// K3s's own components that take `--<component>-arg key=value` pass-through flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    /// kube-apiserver (`--kube-apiserver-arg`).
    ApiServer,
    /// kube-controller-manager (`--kube-controller-manager-arg`).
    ControllerManager,
    /// kube-proxy (`--kube-proxy-arg`).
    KubeProxy,
    /// The kubelet (`--kubelet-arg`).
    Kubelet,
}

impl Component {
    /// The K3s option that carries this component's arguments.
    pub fn option(self) -> &'static str {
        match self {
            Component::ApiServer => "kube-apiserver-arg",
            Component::ControllerManager => "kube-controller-manager-arg",
            Component::KubeProxy => "kube-proxy-arg",
            Component::Kubelet => "kubelet-arg",
        }
    }

    /// Every component, in the order findings list them.
    pub const ALL: [Component; 4] = [
        Component::ApiServer,
        Component::ControllerManager,
        Component::KubeProxy,
        Component::Kubelet,
    ];
}

/// Every K3s option that was set, with its values in order and where each came from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K3sOptions {
    options: BTreeMap<String, Vec<Sourced<String>>>,
    /// The K3s version, when an input names one.
    pub version: Option<Sourced<Version>>,
}

impl K3sOptions {
    /// Replaces the values of `key`.
    pub fn set(&mut self, key: &str, values: Vec<Sourced<String>>) {
        self.options.insert(key.to_owned(), values);
    }

    /// Appends to the values of `key`.
    pub fn append(&mut self, key: &str, values: Vec<Sourced<String>>) {
        self.options
            .entry(key.to_owned())
            .or_default()
            .extend(values);
    }

    /// Every value given for `key`, in order.
    pub fn values(&self, key: &str) -> &[Sourced<String>] {
        self.options.get(key).map(Vec::as_slice).unwrap_or(&[])
    }

    /// The value a single-valued option ends up with (the last one).
    pub fn last(&self, key: &str) -> Option<&Sourced<String>> {
        self.values(key).last()
    }

    /// A list option (`cluster-cidr`, `node-ip`, …) as K3s sees it: all values joined with `,`,
    /// located at the first value.
    pub fn list(&self, key: &str) -> Option<Sourced<String>> {
        let values = self.values(key);
        let first = values.first()?;
        let joined = values
            .iter()
            .map(|v| v.value.as_str())
            .collect::<Vec<_>>()
            .join(",");
        Some(Sourced {
            value: joined,
            origin: first.origin.clone(),
        })
    }

    /// Whether a boolean flag is on.
    pub fn flag(&self, key: &str) -> bool {
        self.last(key)
            .is_some_and(|v| v.value.eq_ignore_ascii_case("true"))
    }

    /// Whether `disable` (a list, also comma-separated) names `component`.
    pub fn disables(&self, component: &str) -> bool {
        self.values("disable")
            .iter()
            .flat_map(|v| v.value.split(','))
            .any(|c| c.trim() == component)
    }

    /// `key=value` arguments passed through to `component`, leading dashes removed.
    pub fn component_args(&self, component: Component) -> Vec<(String, Sourced<String>)> {
        self.values(component.option())
            .iter()
            .map(|arg| {
                let text = arg.value.trim_start_matches('-');
                let (key, value) = text.split_once('=').unwrap_or((text, ""));
                (
                    key.to_owned(),
                    Sourced {
                        value: value.to_owned(),
                        origin: arg.origin.clone(),
                    },
                )
            })
            .collect()
    }

    /// The last value of `key` passed through to `component`.
    pub fn component_arg(&self, component: Component, key: &str) -> Option<Sourced<String>> {
        self.component_args(component)
            .into_iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v)
    }

    /// Whether nothing was set.
    pub fn is_empty(&self) -> bool {
        self.options.is_empty()
    }

    /// Layers `other` (e.g. command-line flags) over `self`: each key of `other` replaces ours.
    pub fn overlay(&mut self, other: K3sOptions) {
        for (key, values) in other.options {
            self.options.insert(key, values);
        }
        if other.version.is_some() {
            self.version = other.version;
        }
    }

    /// Option names that were set.
    pub fn keys(&self) -> impl Iterator<Item = &str> {
        self.options.keys().map(String::as_str)
    }
}

/// Reads K3s config files in the order K3s reads them (`config.yaml` first, then the
/// `config.yaml.d` drop-ins alphabetically; the caller orders them) into one [`K3sOptions`].
pub fn read_config_files(files: &[(String, String)]) -> Result<K3sOptions, InputError> {
    let mut options = K3sOptions::default();
    for (name, text) in files {
        read_config_file(&mut options, name, text)?;
    }
    Ok(options)
}

fn read_config_file(options: &mut K3sOptions, file: &str, text: &str) -> Result<(), InputError> {
    let docs = documents(file, text)?;
    let root = match docs.as_slice() {
        [] => return Ok(()),
        [root] => root,
        _ => {
            return Err(InputError::invalid(
                file,
                "a K3s config file holds one YAML document, found several",
            ));
        }
    };
    let Value::Object(map) = root else {
        return Err(InputError::invalid(
            file,
            "a K3s config file is a mapping of option names to values",
        ));
    };
    for (raw_key, value) in map {
        let origin = Origin::new(file, top_level_key_line(text, raw_key));
        let (key, append) = match raw_key.strip_suffix('+') {
            Some(k) => (k.trim_start_matches('-'), true),
            None => (raw_key.trim_start_matches('-'), false),
        };
        let values = match value {
            Value::Null => Vec::new(),
            Value::Array(items) => items
                .iter()
                .map(|item| {
                    scalar_text(item).ok_or_else(|| {
                        InputError::invalid(
                            &origin.to_string(),
                            format!("`{raw_key}` must be a list of plain values"),
                        )
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            other => vec![scalar_text(other).ok_or_else(|| {
                InputError::invalid(
                    &origin.to_string(),
                    format!("`{raw_key}` must be a value or a list, not a mapping"),
                )
            })?],
        };
        let values = values
            .into_iter()
            .map(|value| Sourced {
                value,
                origin: origin.clone(),
            })
            .collect();
        if append {
            options.append(key, values);
        } else {
            options.set(key, values);
        }
    }
    Ok(())
}

/// The line of a top-level key (`key:` at column 0, possibly quoted).
fn top_level_key_line(text: &str, key: &str) -> Option<usize> {
    text.lines()
        .position(|line| {
            let unquoted = line.trim_start_matches(['"', '\'']);
            line.len() == line.trim_start().len()
                && unquoted.starts_with(key)
                && unquoted[key.len()..]
                    .trim_start_matches(['"', '\''])
                    .trim_start()
                    .starts_with(':')
        })
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn files(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect()
    }

    #[test]
    fn drop_ins_replace_keys_and_plus_keys_append() {
        let opts = read_config_files(&files(&[
            (
                "config.yaml",
                "# written by hand\ncluster-cidr: \"10.42.0.0/16\"\ndisable:\n  - traefik\nnode-ip: 192.168.1.10\n",
            ),
            (
                "config.yaml.d/10-v6.yaml",
                "cluster-cidr: 10.42.0.0/16,fd12:3456:789a::/56\ndisable+: [servicelb]\n",
            ),
            ("config.yaml.d/20-empty.yaml", "# nothing here\n"),
        ]))
        .unwrap();
        let cidr = opts.list("cluster-cidr").unwrap();
        assert_eq!(cidr.value, "10.42.0.0/16,fd12:3456:789a::/56");
        assert_eq!(cidr.origin.to_string(), "config.yaml.d/10-v6.yaml:1");
        assert!(opts.disables("traefik"));
        assert!(opts.disables("servicelb"));
        assert_eq!(
            opts.list("node-ip").unwrap().origin.to_string(),
            "config.yaml:5"
        );
    }

    #[test]
    fn lists_booleans_and_component_args() {
        let opts = read_config_files(&files(&[(
            "config.yaml",
            "flannel-ipv6-masq: true\ncluster-cidr:\n  - 10.42.0.0/16\n  - fd00:42::/56\nkube-controller-manager-arg:\n  - \"node-cidr-mask-size-ipv6=64\"\n  - --node-cidr-mask-size-ipv4=24\n",
        )]))
        .unwrap();
        assert!(opts.flag("flannel-ipv6-masq"));
        assert_eq!(
            opts.list("cluster-cidr").unwrap().value,
            "10.42.0.0/16,fd00:42::/56"
        );
        assert_eq!(
            opts.component_arg(Component::ControllerManager, "node-cidr-mask-size-ipv4")
                .unwrap()
                .value,
            "24"
        );
    }

    #[test]
    fn mappings_and_syntax_errors_are_input_errors() {
        let err = read_config_files(&files(&[("c.yaml", "cluster-cidr:\n  a: b\n")])).unwrap_err();
        assert!(err.to_string().contains("c.yaml:1"), "{err}");
        let err = read_config_files(&files(&[("c.yaml", "- a\n- b\n")])).unwrap_err();
        assert!(err.to_string().contains("mapping"), "{err}");
        assert!(read_config_files(&files(&[("c.yaml", "a: 'x\n")])).is_err());
    }
}
