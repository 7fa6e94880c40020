//! Reading the configuration files users point us at, as `(name, contents)` pairs for the
//! pure readers in `dualstack-plan`; K3s's own order for `config.yaml` and its drop-ins.

use std::path::{Path, PathBuf};

use crate::exit::usage;

/// A file's contents with its name for messages; unreadable means bad input (exit 2).
pub fn read_named(path: &Path) -> anyhow::Result<(String, String)> {
    let name = path.display().to_string();
    let text =
        std::fs::read_to_string(path).map_err(|e| usage(format!("{name}: cannot read: {e}")))?;
    Ok((name, text))
}

/// `*.yaml`/`*.yml` files of a directory, alphabetically.
fn yaml_files(dir: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| usage(format!("{}: cannot read directory: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "yaml" || x == "yml"))
        .collect();
    files.sort();
    Ok(files)
}

/// K3s's order: each given file, then its `<file>.d/*.yaml` drop-ins; directories as their files.
pub fn k3s_config_files(paths: &[PathBuf]) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    for path in paths {
        if path.is_dir() {
            for f in yaml_files(path)? {
                out.push(read_named(&f)?);
            }
            continue;
        }
        out.push(read_named(path)?);
        let mut drop_in = path.as_os_str().to_owned();
        drop_in.push(".d");
        let drop_in = PathBuf::from(drop_in);
        if drop_in.is_dir() {
            for f in yaml_files(&drop_in)? {
                out.push(read_named(&f)?);
            }
        }
    }
    Ok(out)
}

/// A systemd unit's drop-ins: `<unit>.d/*.conf`, by file name (systemd's order).
pub fn unit_drop_ins(unit: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut dir = unit.as_os_str().to_owned();
    dir.push(".d");
    let dir = PathBuf::from(dir);
    if !dir.is_dir() {
        return Ok(Vec::new());
    }
    let entries = std::fs::read_dir(&dir)
        .map_err(|e| usage(format!("{}: cannot read directory: {e}", dir.display())))?;
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort_by(|a, b| a.file_name().cmp(&b.file_name()));
    files.iter().map(|f| read_named(f)).collect()
}

/// The unit's `EnvironmentFile=`s: each from a `--k3s-env` copy with the same file name when
/// one is given, else as this machine has it; `None` when it cannot be read here (the check
/// then says which variables stay unknown). A copy that matches no `EnvironmentFile=` is bad
/// input.
pub fn unit_env_files(
    unit: &(String, String),
    drop_ins: &[(String, String)],
    copies: &[PathBuf],
) -> anyhow::Result<Vec<(String, Option<String>)>> {
    let refs = dualstack_plan::input::systemd::environment_files((&unit.0, &unit.1), drop_ins);
    let file_name = |p: &str| Path::new(p).file_name().map(ToOwned::to_owned);
    for copy in copies {
        if !refs
            .iter()
            .any(|r| file_name(&r.path) == copy.file_name().map(ToOwned::to_owned))
        {
            let named: Vec<&str> = refs.iter().map(|r| r.path.as_str()).collect();
            return Err(usage(format!(
                "--k3s-env {}: {} names no EnvironmentFile= of that name (it names: {})",
                copy.display(),
                unit.0,
                if named.is_empty() {
                    "none".to_owned()
                } else {
                    named.join(", ")
                }
            )));
        }
    }
    refs.into_iter()
        .map(|r| {
            let copy = copies
                .iter()
                .find(|c| c.file_name().map(ToOwned::to_owned) == file_name(&r.path));
            let text = match copy {
                Some(copy) => Some(read_named(copy)?.1),
                None => std::fs::read_to_string(&r.path).ok(),
            };
            Ok((r.path, text))
        })
        .collect()
}
