//! systemd unit file syntax (`systemd.syntax(7)`), line by line as systemd's own parser reads
//! it: which physical lines make one logical line, which are comments, and what each logical
//! line assigns.
//!
//! * A line continues on the next one only when its very last character is a `\` that is not
//!   itself escaped (an odd run of trailing backslashes). `\` followed by a space, a tab or a
//!   `# comment` ends the line. systemd replaces the continuing `\` with a space and appends
//!   the next line as it is.
//! * A line whose first non-blank character is `#` or `;` is a comment, also inside a
//!   continued block, where it is skipped without ending the block. Anywhere else `#` and `;`
//!   are ordinary characters.
//! * A logical line is a `[Section]` header, blank, or `Key=Value` (both sides trimmed). A line
//!   without `=` is ignored ("Missing '='").

/// Whitespace as systemd's `WHITESPACE` (" \t\n\r").
const WHITESPACE: &[char] = &[' ', '\t', '\n', '\r'];

/// Where a part of a logical line's text came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Segment {
    /// Byte offset into the assignment's value where this physical line's text starts
    /// (0 for text before the value starts).
    pub offset: usize,
    /// 1-based physical line.
    pub line: usize,
}

/// One `Key=Value` logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Assignment {
    /// The section it is in, without brackets (`Service`); empty before the first header.
    pub section: String,
    /// The setting's name (`ExecStart`).
    pub key: String,
    /// Its value, with continuation lines joined as systemd joins them.
    pub value: String,
    /// 1-based first and last physical line of the logical line.
    pub first_line: usize,
    /// See `first_line`.
    pub last_line: usize,
    /// The physical lines the value is made of, in order of offset.
    pub segments: Vec<Segment>,
}

impl Assignment {
    /// The physical line a byte offset of the value is on.
    pub fn line_of(&self, offset: usize) -> usize {
        self.segments
            .iter()
            .take_while(|s| s.offset <= offset)
            .last()
            .map_or(self.first_line, |s| s.line)
    }
}

/// One logical line of a unit file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Logical {
    /// A `[Section]` header.
    Section {
        /// The section's name, without brackets.
        name: String,
        /// Its 1-based line.
        line: usize,
    },
    /// A `Key=Value` line.
    Assignment(Assignment),
    /// A line systemd ignores (no `=`, or nothing before it): its trimmed text.
    Ignored {
        /// The ignored line's trimmed text.
        text: String,
        /// Its 1-based first physical line.
        first_line: usize,
        /// Its 1-based last physical line.
        last_line: usize,
    },
}

/// A unit file as systemd reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnitFile {
    /// The file's name, for messages.
    pub name: String,
    /// The logical lines, in order.
    pub lines: Vec<Logical>,
    /// The physical lines, without their line ends, for messages.
    pub physical: Vec<String>,
}

impl UnitFile {
    /// Every assignment of `key` in `section`, in file order.
    pub fn assignments<'a>(
        &'a self,
        section: &'a str,
        key: &'a str,
    ) -> impl Iterator<Item = &'a Assignment> + 'a {
        self.lines.iter().filter_map(move |l| match l {
            Logical::Assignment(a) if a.section == section && a.key == key => Some(a),
            _ => None,
        })
    }

    /// A physical line's text (1-based), or "" past the end.
    pub fn physical_line(&self, line: usize) -> &str {
        line.checked_sub(1)
            .and_then(|i| self.physical.get(i))
            .map_or("", String::as_str)
    }
}

/// Whether a line ends in an unescaped `\` (an odd run of trailing backslashes).
pub fn continues(line: &str) -> bool {
    line.chars().rev().take_while(|&c| c == '\\').count() % 2 == 1
}

/// Whether a line is a comment (`#` or `;` as its first non-blank character).
fn is_comment(line: &str) -> bool {
    line.trim_start_matches(WHITESPACE).starts_with(['#', ';'])
}

/// The logical line being continued: its text, its first line, and (offset in the text,
/// physical line) where each physical line's text starts.
type Pending = (String, usize, Vec<(usize, usize)>);

/// Reads a unit file's text.
pub fn parse_unit_file(name: &str, text: &str) -> UnitFile {
    // systemd's read_line ends a line at "\n" or "\r\n"; a UTF-8 byte order mark is skipped.
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let physical: Vec<String> = text
        .split('\n')
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_owned())
        .collect();
    let physical_count = if text.ends_with('\n') {
        physical.len().saturating_sub(1)
    } else {
        physical.len()
    };
    let mut out = UnitFile {
        name: name.to_owned(),
        lines: Vec::new(),
        physical,
    };
    let mut section = String::new();
    let mut pending: Option<Pending> = None;
    for index in 0..physical_count {
        let line_no = index + 1;
        let raw = out.physical[index].as_str();
        if is_comment(raw) {
            continue;
        }
        let (mut text, first, mut starts) = pending
            .take()
            .unwrap_or_else(|| (String::new(), line_no, Vec::new()));
        starts.push((text.len(), line_no));
        text.push_str(raw);
        if continues(raw) {
            text.pop();
            text.push(' ');
            pending = Some((text, first, starts));
            continue;
        }
        if let Some(logical) = logical_line(&text, first, line_no, &starts, &mut section) {
            out.lines.push(logical);
        }
    }
    if let Some((text, first, starts)) = pending {
        let last = starts.last().map_or(first, |s| s.1);
        if let Some(logical) = logical_line(&text, first, last, &starts, &mut section) {
            out.lines.push(logical);
        }
    }
    out
}

/// One joined logical line: a section header, an assignment, or an ignored line.
fn logical_line(
    text: &str,
    first_line: usize,
    last_line: usize,
    starts: &[(usize, usize)],
    section: &mut String,
) -> Option<Logical> {
    let lead = text.len() - text.trim_start_matches(WHITESPACE).len();
    let trimmed = text.trim_matches(WHITESPACE);
    if trimmed.is_empty() {
        return None;
    }
    if let Some(header) = trimmed.strip_prefix('[') {
        let name = header.strip_suffix(']').unwrap_or(header).to_owned();
        section.clone_from(&name);
        return Some(Logical::Section {
            name,
            line: first_line,
        });
    }
    let ignored = || Logical::Ignored {
        text: trimmed.to_owned(),
        first_line,
        last_line,
    };
    let Some(eq) = trimmed.find('=') else {
        return Some(ignored());
    };
    let key = trimmed[..eq].trim_matches(WHITESPACE);
    if key.is_empty() {
        return Some(ignored());
    }
    let after = &trimmed[eq + 1..];
    let value = after.trim_matches(WHITESPACE);
    // Offset of the value in `text`.
    let value_start = lead + eq + 1 + (after.len() - after.trim_start_matches(WHITESPACE).len());
    let segments = starts
        .iter()
        .map(|&(start, line)| Segment {
            offset: start.saturating_sub(value_start),
            line,
        })
        .collect();
    Some(Logical::Assignment(Assignment {
        section: section.clone(),
        key: key.to_owned(),
        value: value.to_owned(),
        first_line,
        last_line,
        segments,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn assignments(text: &str) -> Vec<(String, String, usize, usize)> {
        parse_unit_file("u", text)
            .lines
            .into_iter()
            .filter_map(|l| match l {
                Logical::Assignment(a) => Some((a.key, a.value, a.first_line, a.last_line)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn continuation_needs_the_backslash_as_the_very_last_character() {
        // (text, [(key, value, first line, last line)])
        type Expected<'a> = &'a [(&'a str, &'a str, usize, usize)];
        let table: &[(&str, Expected)] = &[
            ("A=1 \\\n  2\n", &[("A", "1    2", 1, 2)]),
            // Trailing whitespace after the backslash ends the line.
            ("A=1 \\ \nB=2\n", &[("A", "1 \\", 1, 1), ("B", "2", 2, 2)]),
            ("A=1 \\\t\nB=2\n", &[("A", "1 \\", 1, 1), ("B", "2", 2, 2)]),
            // An escaped backslash does not continue.
            (
                "A=1 \\\\\nB=2\n",
                &[("A", "1 \\\\", 1, 1), ("B", "2", 2, 2)],
            ),
            ("A=1 \\\\\\\n2\n", &[("A", "1 \\\\ 2", 1, 2)]),
            // Comments are skipped inside a continuation; `#` elsewhere is text.
            ("A=1 \\\n# c\n ; d\n 2 # e\n", &[("A", "1   2 # e", 1, 4)]),
            // An empty line ends a continuation.
            ("A=1 \\\n\nB=2\n", &[("A", "1", 1, 2), ("B", "2", 3, 3)]),
            // A continuation running into the end of the file is still read.
            ("A=1 \\\n2 \\", &[("A", "1  2", 1, 2)]),
            ("A = x=y \r\n", &[("A", "x=y", 1, 1)]),
            ("\u{feff}A=1\n", &[("A", "1", 1, 1)]),
        ];
        for (text, want) in table {
            let got = assignments(text);
            let want: Vec<_> = want
                .iter()
                .map(|(k, v, a, b)| ((*k).to_owned(), (*v).to_owned(), *a, *b))
                .collect();
            assert_eq!(got, want, "{text:?}");
        }
    }

    #[test]
    fn sections_ignored_lines_and_physical_lines_of_the_value() {
        let unit = parse_unit_file(
            "u",
            "[Unit]\nDescription=x\n[Service]\nExecStart=/bin/k3s \\\n    server \\\n# c\n  --flag\n  --stray line\n",
        );
        let exec = unit.assignments("Service", "ExecStart").next().unwrap();
        assert_eq!(exec.value, "/bin/k3s      server    --flag");
        assert_eq!(exec.line_of(0), 4);
        assert_eq!(exec.line_of(exec.value.find("server").unwrap()), 5);
        assert_eq!(exec.line_of(exec.value.find("--flag").unwrap()), 7);
        assert!(matches!(
            unit.lines.last(),
            Some(Logical::Ignored { text, first_line: 8, .. }) if text == "--stray line"
        ));
        assert_eq!(unit.assignments("Unit", "Description").count(), 1);
        assert_eq!(unit.physical_line(6), "# c");
    }
}
