//! Where an `ExecStart=` block ends against what its layout suggests: the lines after it that
//! read as more of the command, but that systemd parses as settings of their own (and ignores
//! as unknown), and why the block ended where it did.

use super::{EndCause, EndsEarly};
use crate::input::Origin;
use crate::input::args::{BOOLEAN_FLAGS, long_name};
use crate::input::systemd_words::split_words_relaxed;
use crate::input::unit_file::{Assignment, Logical, UnitFile, continues};

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
pub(super) fn ends_early(unit: &UnitFile, exec: &Assignment) -> Option<EndsEarly> {
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
            let bool_flag = BOOLEAN_FLAGS.contains(&long_name(name));
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
