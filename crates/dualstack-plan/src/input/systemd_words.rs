//! systemd's word splitting and expansion for `ExecStart=` and `Environment=`
//! (`systemd.service(5)` "Command lines", `systemd.syntax(7)` "Quoting"), as systemd's
//! `extract_first_word()` does it:
//!
//! * words are separated by whitespace; `'…'` and `"…"` quote, also in the middle of a word,
//!   and C-style escapes work the same inside both quotes and outside;
//! * escapes: `\a \b \f \n \r \t \v \\ \" \' \s` (space), `\xHH`, `\uHHHH`, `\UHHHHHHHH`,
//!   `\OOO` (octal). An unknown escape such as `\ ` or `\#` is kept verbatim, backslash and
//!   all ("Ignoring unknown escape sequences"); so is a `\` at the end of the value;
//! * in `ExecStart=` a lone `;` separates commands and `\;` is a literal `;`; the first word may
//!   carry the prefixes `-@:+!`; `%` specifiers are resolved per word (`%%` is `%`);
//! * environment expansion: a word that is exactly `$NAME` becomes the variable's value split
//!   at whitespace (zero or more words), `${NAME}` inside a word is replaced as it is, `$$` is
//!   `$`. Unset variables are empty.

use std::collections::BTreeMap;

/// One word as systemd extracted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Word {
    /// The word after unquoting and unescaping.
    pub text: String,
    /// Byte offset of the word's first character in the value it came from.
    pub start: usize,
    /// systemd kept an unknown escape sequence verbatim in this word.
    pub unknown_escape: bool,
}

/// A value systemd cannot split.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WordError {
    /// A quote that does not close: systemd ignores the whole line.
    #[error("unbalanced {quote} quote starting at byte {at}: systemd ignores the whole line")]
    UnbalancedQuote {
        /// The quote character (`'` or `"`).
        quote: char,
        /// Byte offset of the opening quote.
        at: usize,
    },
    /// An escape sequence systemd refuses.
    #[error("invalid escape sequence at byte {at}")]
    Escape {
        /// Byte offset of the backslash.
        at: usize,
    },
}

/// How to treat escapes and quotes (systemd's `EXTRACT_*` flags).
#[derive(Debug, Clone, Copy)]
struct Mode {
    /// C-style escapes (`EXTRACT_CUNESCAPE`); otherwise `\` takes the next character as is.
    cunescape: bool,
    /// Keep unknown escapes verbatim (`EXTRACT_UNESCAPE_RELAX`).
    keep_unknown: bool,
    /// Accept an unterminated quote (`EXTRACT_RELAX`).
    relax_quotes: bool,
}

const EXEC: Mode = Mode {
    cunescape: true,
    keep_unknown: false,
    relax_quotes: false,
};

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// The value of one C escape (the text after the `\`): its bytes and how many bytes of `rest`
/// it used. `None` for an escape systemd does not know (or a NUL).
fn cunescape_one(rest: &str) -> Option<(Vec<u8>, usize)> {
    let b = rest.as_bytes();
    let simple = |c: u8| Some((vec![c], 1));
    let hex = |n: usize| -> Option<u32> {
        let digits = rest.get(1..=n)?;
        if digits.chars().all(|c| c.is_ascii_hexdigit()) {
            u32::from_str_radix(digits, 16).ok()
        } else {
            None
        }
    };
    match *b.first()? {
        b'a' => simple(7),
        b'b' => simple(8),
        b'f' => simple(12),
        b'n' => simple(b'\n'),
        b'r' => simple(b'\r'),
        b't' => simple(b'\t'),
        b'v' => simple(11),
        b'\\' => simple(b'\\'),
        b'"' => simple(b'"'),
        b'\'' => simple(b'\''),
        b's' => simple(b' '),
        b'x' => {
            let v = hex(2).filter(|&v| v != 0)?;
            Some((vec![u8::try_from(v).ok()?], 3))
        }
        b'u' | b'U' => {
            let n = if b[0] == b'u' { 4 } else { 8 };
            let c = hex(n).filter(|&v| v != 0).and_then(char::from_u32)?;
            Some((c.to_string().into_bytes(), n + 1))
        }
        b'0'..=b'7' => {
            let digits = b.get(..3)?;
            if !digits.iter().all(|d| (b'0'..=b'7').contains(d)) {
                return None;
            }
            let v = digits
                .iter()
                .fold(0u32, |acc, d| acc * 8 + u32::from(d - b'0'));
            let byte = u8::try_from(v).ok().filter(|&v| v != 0)?;
            Some((vec![byte], 3))
        }
        _ => None,
    }
}

/// Extracts the next word starting at `*pos`, or `None` at the end.
fn extract(input: &str, pos: &mut usize, mode: Mode) -> Result<Option<Word>, WordError> {
    let rest = &input[*pos..];
    let skipped = rest.len() - rest.trim_start_matches(is_space).len();
    *pos += skipped;
    if *pos >= input.len() {
        return Ok(None);
    }
    let start = *pos;
    let mut out: Vec<u8> = Vec::new();
    let mut quote: Option<(char, usize)> = None;
    let mut unknown = false;
    let mut i = start;
    loop {
        let Some(c) = input[i..].chars().next() else {
            if let Some((q, at)) = quote
                && !mode.relax_quotes
            {
                return Err(WordError::UnbalancedQuote { quote: q, at });
            }
            break;
        };
        let next = i + c.len_utf8();
        if c == '\\' {
            let after = &input[next..];
            let Some(escaped) = after.chars().next() else {
                // A `\` at the very end: kept when relaxed, unless inside quotes, which then
                // never close.
                if mode.keep_unknown && quote.is_none() {
                    out.push(b'\\');
                    unknown = true;
                } else if !mode.relax_quotes {
                    return Err(match quote {
                        Some((quote, at)) if mode.keep_unknown => {
                            WordError::UnbalancedQuote { quote, at }
                        }
                        _ => WordError::Escape { at: i },
                    });
                }
                i = next;
                continue;
            };
            if !mode.cunescape {
                out.extend_from_slice(escaped.to_string().as_bytes());
                i = next + escaped.len_utf8();
                continue;
            }
            match cunescape_one(after) {
                Some((bytes, used)) => {
                    out.extend_from_slice(&bytes);
                    i = next + used;
                }
                None if mode.keep_unknown => {
                    out.push(b'\\');
                    out.extend_from_slice(escaped.to_string().as_bytes());
                    unknown = true;
                    i = next + escaped.len_utf8();
                }
                None => return Err(WordError::Escape { at: i }),
            }
            continue;
        }
        match quote {
            Some((q, _)) if c == q => quote = None,
            Some(_) => out.extend_from_slice(c.to_string().as_bytes()),
            None if c == '\'' || c == '"' => quote = Some((c, i)),
            None if is_space(c) => break,
            None => out.extend_from_slice(c.to_string().as_bytes()),
        }
        i = next;
    }
    *pos = i;
    Ok(Some(Word {
        text: String::from_utf8_lossy(&out).into_owned(),
        start,
        unknown_escape: unknown,
    }))
}

/// `extract_first_word_and_warn()`: strict first, then again keeping unknown escapes.
fn extract_and_warn(input: &str, pos: &mut usize) -> Result<Option<Word>, WordError> {
    let mut try_pos = *pos;
    match extract(input, &mut try_pos, EXEC) {
        Err(WordError::Escape { .. }) => extract(
            input,
            pos,
            Mode {
                keep_unknown: true,
                ..EXEC
            },
        ),
        other => {
            *pos = try_pos;
            other
        }
    }
}

/// Splits an `Environment=` value into its `NAME=value` words (unknown escapes make systemd
/// ignore the line: an error here).
pub fn split_environment(value: &str) -> Result<Vec<Word>, WordError> {
    let mut pos = 0;
    let mut words = Vec::new();
    while let Some(w) = extract(value, &mut pos, EXEC)? {
        words.push(w);
    }
    Ok(words)
}

/// Splits text into words as `ExecStart=` arguments are split, stopping at the first word
/// systemd could not split (used to show what a dropped line held).
pub fn split_words_relaxed(value: &str) -> Vec<Word> {
    let mut pos = 0;
    let mut words = Vec::new();
    while let Ok(Some(w)) = extract_and_warn(value, &mut pos) {
        words.push(w);
    }
    words
}

/// One command of an `ExecStart=` value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExecLine {
    /// The prefix characters of the first word (`-`, `@`, `:`, `+`, `!`).
    pub prefixes: String,
    /// The program's path (the first word without its prefixes).
    pub path: Word,
    /// The arguments, `argv[0]` first (the path, or with `@` the second word).
    pub argv: Vec<Word>,
}

impl ExecLine {
    /// Whether `:` turned off environment expansion.
    pub fn expands_environment(&self) -> bool {
        !self.prefixes.contains(':')
    }
}

/// Splits an `ExecStart=` value into its commands (more than one only with `;`).
pub fn split_exec(value: &str) -> Result<Vec<ExecLine>, WordError> {
    let mut commands = Vec::new();
    let mut pos = 0;
    while let Some(mut first) = extract_and_warn(value, &mut pos)? {
        let prefix_len = first
            .text
            .find(|c| !matches!(c, '-' | '@' | ':' | '+' | '!'))
            .unwrap_or(first.text.len());
        let prefixes = first.text[..prefix_len].to_owned();
        first.text.drain(..prefix_len);
        let mut args: Vec<Word> = Vec::new();
        loop {
            let rest = &value[pos..];
            let skipped = rest.len() - rest.trim_start_matches(is_space).len();
            pos += skipped;
            let rest = &value[pos..];
            let token_end = |n: usize| rest[n..].chars().next().is_none_or(is_space);
            if rest.starts_with(';') && token_end(1) {
                pos += 1;
                break;
            }
            if rest.starts_with("\\;") && token_end(2) {
                args.push(Word {
                    text: ";".to_owned(),
                    start: pos,
                    unknown_escape: false,
                });
                pos += 2;
                continue;
            }
            match extract_and_warn(value, &mut pos)? {
                Some(w) => args.push(w),
                None => break,
            }
        }
        let mut argv = Vec::with_capacity(args.len() + 1);
        if prefixes.contains('@') && !args.is_empty() {
            argv.extend(args);
        } else {
            argv.push(first.clone());
            argv.extend(args);
        }
        commands.push(ExecLine {
            prefixes,
            path: first,
            argv,
        });
    }
    Ok(commands)
}

/// What a unit's name gives the `%` specifiers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UnitName {
    /// `%n`: the full name, e.g. `k3s.service`.
    pub full: String,
}

impl UnitName {
    /// The unit name of a file path (its last component).
    pub fn from_path(path: &str) -> Self {
        UnitName {
            full: path.rsplit('/').next().unwrap_or(path).to_owned(),
        }
    }

    /// `%N`: without the type suffix.
    fn without_suffix(&self) -> &str {
        self.full
            .rsplit_once('.')
            .map_or(self.full.as_str(), |(n, _)| n)
    }

    /// `%p`: the part before `@` (or `%N`).
    fn prefix(&self) -> &str {
        let n = self.without_suffix();
        n.split_once('@').map_or(n, |(p, _)| p)
    }

    /// `%i`: the instance of a template, empty otherwise.
    fn instance(&self) -> &str {
        self.without_suffix().split_once('@').map_or("", |(_, i)| i)
    }

    /// Resolves the specifiers that follow from the unit's name (`%%`, `%n`, `%N`, `%p`,
    /// `%P`, `%i`, `%I`, `%j`, `%J`); host-dependent ones (`%H`, `%m`, …) are left as written.
    pub fn resolve(&self, word: &str) -> String {
        let mut out = String::with_capacity(word.len());
        let mut chars = word.chars();
        while let Some(c) = chars.next() {
            if c != '%' {
                out.push(c);
                continue;
            }
            match chars.next() {
                Some('%') => out.push('%'),
                Some('n') => out.push_str(&self.full),
                Some('N') => out.push_str(self.without_suffix()),
                Some('p' | 'P') => out.push_str(self.prefix()),
                Some('i' | 'I') => out.push_str(self.instance()),
                Some('j' | 'J') => {
                    let p = self.prefix();
                    out.push_str(p.rsplit('-').next().unwrap_or(p));
                }
                Some(other) => {
                    out.push('%');
                    out.push(other);
                }
                None => out.push('%'),
            }
        }
        out
    }
}

/// Splits a variable's value the way a `$NAME` word is split (whitespace, quotes removed,
/// `\` takes the next character, unterminated quotes accepted).
fn split_value(value: &str) -> Vec<String> {
    let mode = Mode {
        cunescape: false,
        keep_unknown: false,
        relax_quotes: true,
    };
    let mut pos = 0;
    let mut out = Vec::new();
    while let Ok(Some(w)) = extract(value, &mut pos, mode) {
        out.push(w.text);
    }
    out
}

/// The result of expanding one word.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Expanded {
    /// The words it expands to (`$NAME` alone splits at whitespace, `${NAME}` does not).
    pub words: Vec<String>,
    /// Variables the word refers to.
    pub refers_to: Vec<String>,
}

/// Expands `$NAME` / `${NAME}` / `$$` in one word with `env`.
pub fn expand(word: &str, env: &BTreeMap<String, String>) -> Expanded {
    if let Some(name) = word.strip_prefix('$')
        && !name.starts_with(['{', '$'])
    {
        return Expanded {
            words: env.get(name).map(|v| split_value(v)).unwrap_or_default(),
            refers_to: vec![name.to_owned()],
        };
    }
    let mut out = String::with_capacity(word.len());
    let mut refers_to = Vec::new();
    let mut rest = word;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        let after = &rest[at + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
        } else if let Some(body) = after.strip_prefix('{')
            && let Some(end) = body.find('}')
        {
            let name = &body[..end];
            out.push_str(env.get(name).map_or("", String::as_str));
            refers_to.push(name.to_owned());
            rest = &body[end + 1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    Expanded {
        words: vec![out],
        refers_to,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn argv(value: &str) -> Vec<String> {
        split_exec(value).unwrap()[0]
            .argv
            .iter()
            .map(|w| w.text.clone())
            .collect()
    }

    #[test]
    fn splits_exec_start_as_systemd_does() {
        let table: &[(&str, &[&str])] = &[
            ("/bin/k3s server", &["/bin/k3s", "server"]),
            (
                r#"/bin/k3s --x "a b" 'c d' feature-gates="IPv6DualStack=true""#,
                &[
                    "/bin/k3s",
                    "--x",
                    "a b",
                    "c d",
                    "feature-gates=IPv6DualStack=true",
                ],
            ),
            // Escapes work inside single quotes too.
            (
                r"/bin/x 'a\tb' a\sb \x41\101\u00e9",
                &["/bin/x", "a\tb", "a b", "AAé"],
            ),
            // `#` and `;` inside a line are ordinary characters.
            ("/bin/x --a # b", &["/bin/x", "--a", "#", "b"]),
            ("/bin/x a;b", &["/bin/x", "a;b"]),
            (r"/bin/x \; c", &["/bin/x", ";", "c"]),
            // Unknown escapes are kept verbatim, backslash and all.
            (
                r"/bin/x --m=96 \ # 118",
                &["/bin/x", "--m=96", "\\ #", "118"],
            ),
            (r"/bin/x a\#b \q", &["/bin/x", "a\\#b", "\\q"]),
            (r"/bin/x \x00 \x4", &["/bin/x", "\\x00", "\\x4"]),
            ("/bin/x end\\", &["/bin/x", "end\\"]),
            ("-/bin/x y", &["/bin/x", "y"]),
            ("@/bin/x name y", &["name", "y"]),
        ];
        for (value, want) in table {
            assert_eq!(argv(value), *want, "{value}");
        }
        let words = &split_exec(r"/bin/x \ # y").unwrap()[0].argv;
        assert!(words[1].unknown_escape && !words[2].unknown_escape);
        assert_eq!(words[1].start, 7);
        let two = split_exec("/bin/a 1 ; /bin/b 2").unwrap();
        assert_eq!(two.len(), 2);
        assert_eq!(two[1].path.text, "/bin/b");
        assert!(matches!(
            split_exec("/bin/x 'open"),
            Err(WordError::UnbalancedQuote { quote: '\'', at: 7 })
        ));
        assert!(split_environment(r"A=\q").is_err());
        assert!(matches!(
            split_exec(r#"/bin/x "a\"#),
            Err(WordError::UnbalancedQuote { quote: '"', at: 7 })
        ));
        assert_eq!(
            split_environment(r#""A=1 2" B=x"#).unwrap()[0].text,
            "A=1 2"
        );
    }

    #[test]
    fn expands_variables_and_specifiers() {
        let env: BTreeMap<String, String> = [
            ("ARGS".to_owned(), "--a 'b c'  --d".to_owned()),
            ("IP".to_owned(), "10.0.0.1,fd00::1".to_owned()),
        ]
        .into();
        let words = |w: &str| expand(w, &env).words;
        assert_eq!(words("$ARGS"), ["--a", "b c", "--d"]);
        assert_eq!(words("$UNSET"), Vec::<String>::new());
        assert_eq!(words("--node-ip=${IP}"), ["--node-ip=10.0.0.1,fd00::1"]);
        assert_eq!(words("${UNSET}x"), ["x"]);
        assert_eq!(words("--x=$IP"), ["--x=$IP"]);
        assert_eq!(words("$$IP"), ["$IP"]);
        assert_eq!(expand("a${IP}${B}", &env).refers_to, ["IP", "B"]);
        let name = UnitName::from_path("/etc/systemd/system/k3s.service");
        assert_eq!(name.resolve("/etc/default/%N"), "/etc/default/k3s");
        assert_eq!(
            name.resolve("%n %p %i 100%% %H"),
            "k3s.service k3s  100% %H"
        );
        let t = UnitName::from_path("k3s-agent@node-a.service");
        assert_eq!(t.resolve("%p:%i:%j"), "k3s-agent:node-a:agent");
    }

    proptest::proptest! {
        #[test]
        fn any_value_splits_without_panicking(value in "\\PC{0,40}") {
            let _ = split_exec(&value);
            let _ = split_environment(&value);
            let _ = split_words_relaxed(&value);
            let _ = expand(&value, &BTreeMap::new());
        }
    }
}
