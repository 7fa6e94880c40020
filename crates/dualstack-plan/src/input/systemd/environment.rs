//! The environment `ExecStart=` is expanded with: `Environment=` (an empty assignment resets
//! it) and then every `EnvironmentFile=` in order, whose values override (`systemd.exec(5)`).
//! The K3s version the install script records (`INSTALL_K3S_VERSION`) is noted on the way.

use std::collections::BTreeMap;

use super::{effective, env_file_refs};
use crate::input::env_file::parse_env_file;
use crate::input::systemd_words::{UnitName, split_environment};
use crate::input::unit_file::UnitFile;
use crate::input::{Origin, Sourced};
use crate::version::Version;

/// What `ExecStart=` sees of the environment.
#[derive(Debug, Clone, Default)]
pub(super) struct Environment {
    pub vars: BTreeMap<String, String>,
    /// `INSTALL_K3S_VERSION` / `K3S_VERSION`, where set.
    pub version: Option<Sourced<Version>>,
    /// Environment files the unit names that could not be read.
    pub unread_files: Vec<String>,
}

/// `Environment=` assignments in order (an empty one resets), then each environment file
/// read (its values win).
pub(super) fn environment(
    files: &[UnitFile],
    name: &UnitName,
    env_files: &[(String, Option<String>)],
) -> Environment {
    let mut env = BTreeMap::new();
    let mut version = None;
    let mut note_version = |key: &str, value: &str, origin: Origin| {
        if matches!(key, "INSTALL_K3S_VERSION" | "K3S_VERSION")
            && let Some(v) = Version::parse(value)
        {
            version = Some(Sourced { value: v, origin });
        }
    };
    for (i, a) in effective(files, "Environment") {
        // A line systemd cannot split is ignored by systemd too.
        let Ok(words) = split_environment(&a.value) else {
            continue;
        };
        for w in words {
            let word = name.resolve(&w.text);
            if let Some((k, v)) = word.split_once('=')
                && !k.is_empty()
            {
                note_version(k, v, Origin::new(&files[i].name, Some(a.line_of(w.start))));
                env.insert(k.to_owned(), v.to_owned());
            }
        }
    }
    let mut unread = Vec::new();
    for r in env_file_refs(files, name) {
        match env_files.iter().find(|(p, _)| *p == r.path) {
            Some((path, Some(text))) => {
                for (k, v) in parse_env_file(text) {
                    note_version(&k, &v, Origin::new(path, None));
                    env.insert(k, v);
                }
            }
            _ => unread.push(r.path),
        }
    }
    Environment {
        vars: env,
        version,
        unread_files: unread,
    }
}
