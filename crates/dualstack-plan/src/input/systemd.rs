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

mod environment;
mod layout;

use environment::{Environment, environment};
use layout::ends_early;

use super::k3s_argv::{Arg, K3sCommandLine, parse_k3s_argv};
use super::k3s_config::K3sOptions;
use super::systemd_words::{ExecLine, UnitName, Word, expand, split_exec};
use super::unit_file::{Assignment, UnitFile, parse_unit_file};
use super::{InputError, Origin};

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
    /// Why the command ends there.
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
    /// `ExecStart=` ends before the file's layout suggests it does.
    EndsEarly(EndsEarly),
    /// Words K3s receives that are neither flags nor flag values.
    Stray {
        /// Where the stray words are.
        origin: Origin,
        /// The stray words.
        words: Vec<String>,
        /// Flags K3s does not read because it stopped reading flags at a stray word.
        unread: Vec<String>,
        /// The first argument is not `server`/`agent`: K3s runs no server or agent.
        no_subcommand: bool,
    },
    /// A word with an escape systemd does not know, kept verbatim (backslash and all).
    UnknownEscape {
        /// Where the word is.
        origin: Origin,
        /// The word, as systemd keeps it.
        word: String,
    },
    /// More than one command for a service that is not `Type=oneshot`: systemd refuses it.
    MultipleExecStart {
        /// How many commands (several `ExecStart=`, or `;` in one).
        count: usize,
        /// Where each command was written.
        origins: Vec<Origin>,
        /// The unit's `Type=` (`simple` when unset).
        service_type: String,
    },
    /// `$NAME` / `${NAME}` with no value from `Environment=` or an environment file read.
    UnsetVariable {
        /// Where the variable is used.
        origin: Origin,
        /// The variable's name.
        name: String,
        /// Environment files the unit names that were not available to read.
        unread_files: Vec<String>,
    },
}

/// An `EnvironmentFile=` the unit names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnvFileRef {
    /// The path as written, without a leading `-`.
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
    /// Where the command systemd runs differs from the file's layout.
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

    let env = environment(&files, &name, env_files);

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
    problems.extend(multiple_commands(&files, &execs));
    let Some(command) = k3s_command(&commands) else {
        return Err(InputError::invalid(
            &Origin::new(&unit.name, Some(exec.first_line)).to_string(),
            "ExecStart= has no command",
        ));
    };

    if let Some(early) = ends_early(unit, exec) {
        problems.push(UnitProblem::EndsEarly(early));
    }
    let argv = expand_command(command, exec, unit, &name, &env, &mut problems);
    let line = parse_k3s_argv(&argv);
    // A stray word's own finding says what systemd made of it.
    problems.retain(|p| {
        !matches!(p, UnitProblem::UnknownEscape { word, .. } if line.stray.iter().any(|s| s.text == *word))
    });
    problems.extend(stray_words(
        &line,
        Origin::new(&unit.name, Some(exec.first_line)),
    ));
    let mut options = line.options;
    options.version = env.version;
    Ok(K3sUnit {
        options,
        argv: argv.into_iter().map(|a| a.text).collect(),
        problems,
    })
}

/// More than one command is allowed only for `Type=oneshot` (default `simple`).
fn multiple_commands(files: &[UnitFile], execs: &[(usize, &Assignment)]) -> Option<UnitProblem> {
    let service_type = files
        .iter()
        .flat_map(|f| f.assignments("Service", "Type"))
        .last()
        .filter(|a| !a.value.is_empty())
        .map_or_else(|| "simple".to_owned(), |a| a.value.clone());
    let count: usize = execs
        .iter()
        .map(|(_, a)| split_exec(&a.value).map_or(1, |c| c.len()))
        .sum();
    (count > 1 && service_type != "oneshot").then(|| UnitProblem::MultipleExecStart {
        count,
        origins: execs
            .iter()
            .map(|(i, a)| Origin::new(&files[*i].name, Some(a.first_line)))
            .collect(),
        service_type,
    })
}

/// The command that runs K3s: the first whose program is named `k3s…`, else the first.
fn k3s_command(commands: &[ExecLine]) -> Option<&ExecLine> {
    commands
        .iter()
        .find(|c| {
            c.path
                .text
                .rsplit('/')
                .next()
                .is_some_and(|b| b.starts_with("k3s"))
        })
        .or(commands.first())
}

/// Words K3s receives but does not read as flags; `fallback` locates a missing subcommand.
fn stray_words(line: &K3sCommandLine, fallback: Origin) -> Option<UnitProblem> {
    if line.stray.is_empty() && line.unread.is_empty() && line.subcommand.is_some() {
        return None;
    }
    let origin = line
        .stray
        .first()
        .or(line.unread.first())
        .map_or(fallback, |a| a.origin.clone());
    Some(UnitProblem::Stray {
        origin,
        words: line.stray.iter().map(|a| a.text.clone()).collect(),
        unread: line.unread.iter().map(|a| a.text.clone()).collect(),
        no_subcommand: line.subcommand.is_none(),
    })
}

/// The words of the command after `%` specifiers and `$VAR` expansion, each located on its
/// line.
fn expand_command(
    command: &ExecLine,
    exec: &Assignment,
    unit: &UnitFile,
    name: &UnitName,
    env: &Environment,
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
        let expanded = expand(&text, &env.vars);
        for var in expanded.refers_to {
            if !env.vars.contains_key(&var) {
                problems.push(UnitProblem::UnsetVariable {
                    origin: origin(w),
                    name: var,
                    unread_files: env.unread_files.clone(),
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

#[cfg(test)]
mod tests;
