//! Findings about the K3s systemd unit itself: where the command systemd runs differs from the
//! one the file's layout suggests (`systemd.syntax(7)`, `systemd.service(5)`), and what K3s
//! then does with it. The K3s rules run on what systemd really passes.

use crate::code::Code;
use crate::finding::{Finding, Severity};
use crate::input::systemd::{EndCause, EndsEarly, UnitProblem};

/// `a`, `b` and `c` as "`a`, `b`, `c`".
fn quoted(items: &[String]) -> String {
    items
        .iter()
        .map(|i| format!("`{i}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Adds a finding for each place where the command systemd runs differs from what the unit file's layout suggests, with the fix.
pub fn check_unit(problems: &[UnitProblem], findings: &mut Vec<Finding>) {
    // Where the block ends on a `\` followed by text, that text is also where the stray words
    // come from: one fix for both.
    let ending = problems.iter().find_map(|p| match p {
        UnitProblem::EndsEarly(e) => Some(e),
        _ => None,
    });
    for problem in problems {
        findings.push(finding(problem, ending));
    }
}

fn finding(problem: &UnitProblem, ending: Option<&EndsEarly>) -> Finding {
    match problem {
        UnitProblem::EndsEarly(e) => ends_early(e),
        UnitProblem::Stray {
            origin,
            words,
            unread,
            no_subcommand,
        } => {
            let what = if *no_subcommand {
                format!(
                    "K3s receives {} where it expects the `server` or `agent` subcommand: it starts no server or agent at all",
                    if words.is_empty() { "nothing".to_owned() } else { quoted(words) }
                )
            } else if unread.is_empty() {
                format!(
                    "systemd passes K3s the stray argument(s) {}: they are not flags, so K3s takes them as positional arguments, which `k3s server` ignores; every flag before them is read",
                    quoted(words)
                )
            } else {
                format!(
                    "systemd passes K3s the stray argument(s) {}: K3s stops reading flags at the first one (it comes right after a flag without a value), so these flags are NOT in force: {}",
                    quoted(words),
                    quoted(unread)
                )
            };
            Finding::new(
                Severity::Error,
                Code::SystemdStrayArgument,
                what,
                match ending.filter(|e| e.origin == *origin).map(|e| &e.cause) {
                    Some(EndCause::TextAfterBackslash(text)) => format!(
                        "they come from `{text}` on this line: end the line in `\\` right after its last flag (a comment goes on a line of its own) so the command continues (see systemd-continuation-broken), then `systemctl daemon-reload` and restart k3s"
                    ),
                    Some(EndCause::TrailingWhitespace) => "it is the `\\` that was meant to continue this line: delete the whitespace after it so the line ends in `\\` (see systemd-continuation-broken), then `systemctl daemon-reload` and restart k3s".to_owned(),
                    Some(EndCause::EscapedBackslash) => "it is the `\\\\` at the end of this line: end the line in a single `\\` (see systemd-continuation-broken), then `systemctl daemon-reload` and restart k3s".to_owned(),
                    _ => format!(
                        "remove {} from ExecStart= and keep only flags and their values (a comment goes on a line of its own: `#` and `;` start one only at the start of a line), then `systemctl daemon-reload` and restart k3s",
                        if words.is_empty() {
                            "the stray words".to_owned()
                        } else {
                            quoted(words)
                        }
                    ),
                },
            )
            .at(Some(origin.to_string()))
        }
        UnitProblem::UnknownEscape { origin, word } => Finding::new(
            Severity::Warning,
            Code::SystemdUnknownEscape,
            format!(
                "`{word}`: systemd does not know this escape sequence and passes it to K3s verbatim, backslash included (\"Ignoring unknown escape sequences\")"
            ),
            "write the character without a backslash, quote the word (\"a b\") for spaces, or use `\\\\` for a literal backslash",
        )
        .at(Some(origin.to_string())),
        UnitProblem::MultipleExecStart {
            count,
            origins,
            service_type,
        } => Finding::new(
            Severity::Error,
            Code::SystemdMultipleExecStart,
            format!(
                "{} ExecStart= commands ({}) for a Type={service_type} service: systemd refuses to start it (\"Service has more than one ExecStart= setting, which is only allowed for Type=oneshot services\"); the checks here read the last one",
                count,
                origins
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "in the drop-in, put an empty `ExecStart=` line before the new `ExecStart=…` so it replaces the unit's command",
        )
        .at(origins.last().map(ToString::to_string)),
        UnitProblem::UnsetVariable {
            origin,
            name,
            unread_files,
        } => {
            let message = if unread_files.is_empty() {
                format!(
                    "`{name}` is used in ExecStart= but no Environment= or EnvironmentFile= sets it: systemd substitutes nothing (`$` {name} as a word of its own vanishes)"
                )
            } else {
                format!(
                    "`{name}` is used in ExecStart= and may come from {} (not readable here): checked as if unset, which is what systemd does when the file lacks it",
                    quoted(unread_files)
                )
            };
            Finding::new(
                Severity::Warning,
                Code::SystemdUnsetVariable,
                message,
                format!(
                    "set {name} with Environment={name}=… in the unit, or give a copy of the environment file with --k3s-env (or run the check on the node)"
                ),
            )
            .at(Some(origin.to_string()))
        }
    }
}

fn ends_early(e: &EndsEarly) -> Finding {
    let why = match &e.cause {
        EndCause::TrailingWhitespace => {
            "it ends in `\\` followed by whitespace, so `\\` is not its last character".to_owned()
        }
        EndCause::TextAfterBackslash(text) => format!(
            "its `\\` is followed by more text (`{text}`), so `\\` is not its last character"
        ),
        EndCause::EscapedBackslash => "it ends in `\\\\`, an escaped backslash".to_owned(),
        EndCause::NoBackslash => "it does not end in `\\`".to_owned(),
    };
    let fix = match &e.cause {
        EndCause::TrailingWhitespace => {
            "delete the whitespace after the `\\` so the line ends in `\\`"
        }
        EndCause::TextAfterBackslash(_) => {
            "move the comment to its own line (or delete it) so the line ends in `\\`"
        }
        EndCause::EscapedBackslash => "end the line in a single `\\`",
        EndCause::NoBackslash => "end the line in `\\` to continue the command",
    };
    let line = e
        .origin
        .line
        .map_or_else(String::new, |l| format!(" on line {l}"));
    let numbers = e
        .dropped
        .iter()
        .map(|(line, _)| line.to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let dropped = if e.dropped_flags.is_empty() {
        let texts = e
            .dropped
            .iter()
            .map(|(line, text)| format!("{line}: `{text}`"))
            .collect::<Vec<_>>()
            .join(", ");
        format!("and ignores them ({texts})")
    } else {
        format!(
            "and ignores them, so these flags are NOT passed to K3s: {}",
            quoted(&e.dropped_flags)
        )
    };
    Finding::new(
        Severity::Error,
        Code::SystemdContinuationBroken,
        format!(
            "ExecStart= ends{line}: {why}, and systemd continues a line only when `\\` is its very last character. It reads line(s) {numbers} as settings of their own {dropped}"
        ),
        format!("{fix}, then `systemctl daemon-reload` and restart k3s"),
    )
    .at(Some(e.origin.to_string()))
}
