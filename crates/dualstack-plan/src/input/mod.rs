//! Readers for what users already have: K3s config files, systemd units and argument strings,
//! Calico manifests / Installation / IPPool resources, and Traefik HelmChart(Config) values.
//!
//! Every reader takes file *contents* (the binary reads the files) and returns a typed model
//! or an [`InputError`] that names the file and the place in it.

pub mod args;
pub mod calico;
pub mod env_file;
pub mod k3s_argv;
pub mod k3s_config;
pub mod systemd;
pub mod systemd_words;
pub mod traefik;
pub mod unit_file;
pub mod yaml;

use std::fmt;

use serde::Serialize;

/// Where a value was read: a file name (as the user gave it) and a 1-based line when known.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Origin {
    /// The file name as the user gave it (or a label such as `--k3s-args`).
    pub file: String,
    /// The 1-based line, when known.
    pub line: Option<usize>,
}

impl Origin {
    /// Where `file` says, at `line` when known.
    pub fn new(file: impl Into<String>, line: Option<usize>) -> Self {
        Origin {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}", self.file),
            None => f.write_str(&self.file),
        }
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sourced<T> {
    /// The value itself.
    pub value: T,
    /// Where it was read.
    pub origin: Origin,
}

/// An input that cannot be read as what it claims to be (exit 2 at the CLI).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum InputError {
    /// A file that is not YAML.
    #[error("{file}: not valid YAML: {message}")]
    Yaml {
        /// The file's name.
        file: String,
        /// The YAML parser's message.
        message: String,
    },
    /// A file that is YAML but not what was expected (a wrong kind, a field of the wrong type).
    #[error("{file}: {message}")]
    Invalid {
        /// The file's name.
        file: String,
        /// What is wrong.
        message: String,
    },
}

impl InputError {
    /// An [`InputError::Invalid`] about `file`.
    pub fn invalid(file: &str, message: impl Into<String>) -> Self {
        InputError::Invalid {
            file: file.to_owned(),
            message: message.into(),
        }
    }
}
