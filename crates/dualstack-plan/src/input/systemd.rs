//! The K3s systemd unit (`k3s.service` and its `k3s.service.d/*.conf` drop-ins): the command
//! systemd really runs, read with systemd's own rules, and what K3s makes of it.
//!
//! * lines, comments and continuations: [`super::unit_file`];
//! * words, escapes, quoting, `%` specifiers and `$VAR` expansion: [`super::systemd_words`];
//! * `ExecStart=` from the unit and then each drop-in in order; an empty `ExecStart=` resets
//!   the list; `Environment=` and `EnvironmentFile=` likewise (file values win over
//!   `Environment=`);
//! * the K3s flags: [`super::k3s_argv`].
//!
//! Wherever the command systemd runs differs from what the file's layout suggests, a
//! [`UnitProblem`] says so: the options hold only what K3s really receives and reads.

use std::collections::BTreeMap;

use super::env_file::parse_env_file;
use super::k3s_argv::{Arg, parse_k3s_argv};
use super::k3s_config::K3sOptions;
use super::systemd_words::{
    ExecLine, UnitName, Word, expand, split_environment, split_exec, split_words_relaxed,
};
use super::unit_file::{Assignment, Logical, UnitFile, continues, parse_unit_file};
use super::{InputError, Origin, Sourced};
use crate::version::Version;

/// Why the `ExecStart=` block ends on the line it ends on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EndCause {
    /// The line ends in `\` followed by spaces or tabs.
    TrailingWhitespace,
    /// A `\` is followed by more text, typically `\ # comment`; the text from the `\` on.
    TextAfterBackslash(String),
    /// The line ends in `\\`: an escaped backslash, which does not continue.
    EscapedBackslash,
    /// The line does not end in `\` at all.
    NoBackslash,
}

/// `ExecStart=` ends on a line after which more of the command was meant to follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EndsEarly {
    /// The last line systemd reads as part of `ExecStart=`.
    pub origin: Origin,
    pub cause: EndCause,
    /// The lines after it that systemd reads as separate (unknown, ignored) settings:
    /// (1-based line, trimmed text without a trailing `\`).
    pub dropped: Vec<(usize, String)>,
    /// The K3s flags on those lines, with their values.
    pub dropped_flags: Vec<String>,
}

/// Where the command systemd runs differs from the file's layout, or cannot be known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnitProblem {
    EndsEarly(EndsEarly),
    /// Words K3s receives that are neither flags nor flag values.
    Stray {
        origin: Origin,
        words: Vec<String>,
        /// Flags K3s does not read because it stopped reading flags at a stray word.
        unread: Vec<String>,
        /// The first argument is not `server`/`agent`: K3s runs no server or agent.
        no_subcommand: bool,
    },
    /// A word with an escape systemd does not know, kept verbatim (backslash and all).
    UnknownEscape {
        origin: Origin,
        word: String,
    },
    /// More than one command for a service that is not `Type=oneshot`: systemd refuses it.
    MultipleExecStart {
        /// How many commands (several `ExecStart=`, or `;` in one).
        count: usize,
        origins: Vec<Origin>,
        service_type: String,
    },
    /// `$NAME` / `${NAME}` with no value from `Environment=` or an environment file read.
    UnsetVariable {
        origin: Origin,
        name: String,
        /// Environment files the unit names that were not available to read.
        unread_files: Vec<String>,
    },
}

/// An `EnvironmentFile=` the unit names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    pub path: String,
    /// Written with a leading `-`: a missing file is no error.
    pub optional: bool,
}

/// What the unit says about K3s.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct K3sUnit {
    /// The flags K3s reads from the command systemd runs.
    pub options: K3sOptions,
    /// The command systemd runs (`argv[0]` first).
    pub argv: Vec<String>,
    pub problems: Vec<UnitProblem>,
}

/// A unit file and its drop-ins as `(name, contents)`, in systemd's order.
fn parse_all(unit: (&str, &str), drop_ins: &[(String, String)]) -> Vec<UnitFile> {
    std::iter::once(parse_unit_file(unit.0, unit.1))
        .chain(drop_ins.iter().map(|(n, t)| parse_unit_file(n, t)))
        .collect()
}

/// Every `[Service]` assignment of `key` across the files, with an empty value resetting the
/// list: `(file index, assignment)`.
fn effective<'a>(files: &'a [UnitFile], key: &'a str) -> Vec<(usize, &'a Assignment)> {
    let mut out = Vec::new();
    for (i, file) in files.iter().enumerate() {
        for a in file.assignments("Service", key) {
            if a.value.is_empty() {
                out.clear();
            } else {
                out.push((i, a));
            }
        }
    }
    out
}

/// The environment files the unit names, in order (the binary reads them).
pub fn environment_files(unit: (&str, &str), drop_ins: &[(String, String)]) -> Vec<EnvFileRef> {
    let files = parse_all(unit, drop_ins);
    env_file_refs(&files, &UnitName::from_path(unit.0))
}

fn env_file_refs(files: &[UnitFile], name: &UnitName) -> Vec<EnvFileRef> {
    effective(files, "EnvironmentFile")
        .into_iter()
        .map(|(_, a)| {
            let value = name.resolve(&a.value);
            match value.strip_prefix('-') {
                Some(path) => EnvFileRef {
                    path: path.to_owned(),
                    optional: true,
                },
                None => EnvFileRef {
                    path: value,
                    optional: false,
                },
            }
        })
        .collect()
}

/// Reads a unit file alone (no drop-ins, no environment files).
pub fn read_unit(file: &str, text: &str) -> Result<K3sUnit, InputError> {
    read_unit_with(file, text, &[], &[])
}

/// Reads a unit, its drop-ins (in order) and the contents of its environment files
/// (`(path, contents)`; `None` for a file that could not be read).
pub fn read_unit_with(
    file: &str,
    text: &str,
    drop_ins: &[(String, String)],
    env_files: &[(String, Option<String>)],
) -> Result<K3sUnit, InputError> {
    let files = parse_all((file, text), drop_ins);
    let name = UnitName::from_path(file);
    let mut problems = Vec::new();

    let (env, version, unread_files) = environment(&files, &name, env_files);

    let execs = effective(&files, "ExecStart");
    let Some(&(file_index, exec)) = execs.last() else {
        return Err(InputError::invalid(
            file,
            "no ExecStart= line: is this the K3s systemd unit?",
        ));
    };
    let unit = &files[file_index];
    let commands = split_exec(&exec.value).map_err(|e| {
        InputError::invalid(
            &Origin::new(&unit.name, Some(exec.first_line)).to_string(),
            format!("ExecStart=: {e}"),
        )
    })?;
    let service_type = files
        .iter()
        .flat_map(|f| f.assignments("Service", "Type"))
        .last()
        .map_or_else(|| "simple".to_owned(), |a| a.value.clone());
    let command_count: usize = execs
        .iter()
        .map(|(_, a)| split_exec(&a.value).map_or(1, |c| c.len()))
        .sum();
    if command_count > 1 && service_type != "oneshot" {
        problems.push(UnitProblem::MultipleExecStart {
            count: command_count,
            origins: execs
                .iter()
                .map(|(i, a)| Origin::new(&files[*i].name, Some(a.first_line)))
                .collect(),
            service_type: service_type.clone(),
        });
    }
    let Some(command) = commands
        .iter()
        .find(|c| {
            c.path
                .text
                .rsplit('/')
                .next()
                .is_some_and(|b| b.starts_with("k3s"))
        })
        .or(commands.first())
    else {
        return Err(InputError::invalid(
            &Origin::new(&unit.name, Some(exec.first_line)).to_string(),
            "ExecStart= has no command",
        ));
    };

    if let Some(early) = ends_early(unit, exec) {
        problems.push(UnitProblem::EndsEarly(early));
    }
    let argv = expand_command(
        command,
        exec,
        unit,
        &name,
        &env,
        &unread_files,
        &mut problems,
    );
    let line = parse_k3s_argv(&argv);
    // A stray word's own finding says what systemd made of it.
    problems.retain(|p| {
        !matches!(p, UnitProblem::UnknownEscape { word, .. } if line.stray.iter().any(|s| s.text == *word))
    });
    if !line.stray.is_empty() || !line.unread.is_empty() || line.subcommand.is_none() {
        let origin = line.stray.first().or(line.unread.first()).map_or_else(
            || Origin::new(&unit.name, Some(exec.first_line)),
            |a| a.origin.clone(),
        );
        problems.push(UnitProblem::Stray {
            origin,
            words: line.stray.iter().map(|a| a.text.clone()).collect(),
            unread: line.unread.iter().map(|a| a.text.clone()).collect(),
            no_subcommand: line.subcommand.is_none(),
        });
    }
    let mut options = line.options;
    options.version = version;
    Ok(K3sUnit {
        options,
        argv: argv.into_iter().map(|a| a.text).collect(),
        problems,
    })
}

/// The environment `ExecStart=` sees, the K3s version it names, and the environment files
/// that could not be read.
fn environment(
    files: &[UnitFile],
    name: &UnitName,
    env_files: &[(String, Option<String>)],
) -> (
    BTreeMap<String, String>,
    Option<Sourced<Version>>,
    Vec<String>,
) {
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
    (env, version, unread)
}

/// The words of the command after `%` specifiers and `$VAR` expansion, each located on its
/// line.
fn expand_command(
    command: &ExecLine,
    exec: &Assignment,
    unit: &UnitFile,
    name: &UnitName,
    env: &BTreeMap<String, String>,
    unread_files: &[String],
    problems: &mut Vec<UnitProblem>,
) -> Vec<Arg> {
    let origin = |w: &Word| Origin::new(&unit.name, Some(exec.line_of(w.start)));
    let mut argv = Vec::new();
    for w in &command.argv {
        let text = name.resolve(&w.text);
        if w.unknown_escape {
            problems.push(UnitProblem::UnknownEscape {
                origin: origin(w),
                word: text.clone(),
            });
        }
        if !command.expands_environment() {
            argv.push(Arg {
                text,
                origin: origin(w),
            });
            continue;
        }
        let expanded = expand(&text, env);
        for var in expanded.refers_to {
            if !env.contains_key(&var) {
                problems.push(UnitProblem::UnsetVariable {
                    origin: origin(w),
                    name: var,
                    unread_files: unread_files.to_vec(),
                });
            }
        }
        argv.extend(expanded.words.into_iter().map(|text| Arg {
            text,
            origin: origin(w),
        }));
    }
    argv
}

/// Whether a key is a systemd directive (letters, digits, `-`, `_`, starting with a letter):
/// `--kubelet-arg feature-gates` is not.
fn is_directive(key: &str) -> bool {
    key.starts_with(|c: char| c.is_ascii_alphabetic())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// The lines right after `ExecStart=` that read as more of the command but that systemd
/// parses as settings of their own (and ignores).
fn ends_early(unit: &UnitFile, exec: &Assignment) -> Option<EndsEarly> {
    let position = unit
        .lines
        .iter()
        .position(|l| matches!(l, Logical::Assignment(a) if std::ptr::eq(a, exec)))?;
    let mut dropped = Vec::new();
    let mut dropped_flags = Vec::new();
    for logical in &unit.lines[position + 1..] {
        let (first, last, text) = match logical {
            Logical::Assignment(a) if !is_directive(&a.key) => {
                (a.first_line, a.last_line, format!("{}={}", a.key, a.value))
            }
            Logical::Ignored {
                text,
                first_line,
                last_line,
            } => (*first_line, *last_line, text.clone()),
            _ => break,
        };
        for line in first..=last {
            let raw = unit.physical_line(line).trim();
            if raw.is_empty() || raw.starts_with(['#', ';']) {
                continue;
            }
            let shown = if continues(raw) {
                raw[..raw.len() - 1].trim_end()
            } else {
                raw
            };
            dropped.push((line, shown.to_owned()));
        }
        dropped_flags.extend(flags_in(&text));
    }
    if dropped.is_empty() {
        return None;
    }
    let raw = unit.physical_line(exec.last_line);
    Some(EndsEarly {
        origin: Origin::new(&unit.name, Some(exec.last_line)),
        cause: end_cause(raw),
        dropped,
        dropped_flags,
    })
}

/// `--flag value` / `--flag=value` groups in a dropped line.
fn flags_in(text: &str) -> Vec<String> {
    let words = split_words_relaxed(text);
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        let w = &words[i].text;
        if w.starts_with('-') {
            let name = w.trim_start_matches('-');
            let bool_flag = super::args::BOOLEAN_FLAGS.contains(&super::args::long_name(name));
            match words.get(i + 1) {
                Some(next) if !w.contains('=') && !bool_flag && !next.text.starts_with('-') => {
                    out.push(format!("{w} {}", next.text));
                    i += 1;
                }
                _ => out.push(w.clone()),
            }
        }
        i += 1;
    }
    out
}

fn end_cause(raw: &str) -> EndCause {
    let trimmed = raw.trim_end();
    if trimmed.len() < raw.len() && continues(trimmed) {
        return EndCause::TrailingWhitespace;
    }
    if trimmed.ends_with("\\\\") {
        return EndCause::EscapedBackslash;
    }
    // The last `\` followed by whitespace and more text.
    let bytes = trimmed.as_bytes();
    let stray = (0..bytes.len())
        .rev()
        .find(|&i| bytes[i] == b'\\' && bytes.get(i + 1).is_some_and(|b| b.is_ascii_whitespace()));
    match stray {
        Some(i) => EndCause::TextAfterBackslash(trimmed[i..].to_owned()),
        None => EndCause::NoBackslash,
    }
}

#[cfg(test)]
mod tests;
