//! The check model (`{"id","status","message","fix"}`) and its text rendering.

use std::fmt::Write as _;

use serde::Serialize;

/// The verdict of one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// Works as it should.
    Ok,
    /// Works, but not the way it should (or only partly); see the fix.
    Warn,
    /// Broken: something the cluster needs does not work; see the fix.
    Fail,
}

impl Status {
    /// `✓`, `⚠` or `✗`.
    pub fn symbol(self) -> &'static str {
        match self {
            Status::Ok => "✓",
            Status::Warn => "⚠",
            Status::Fail => "✗",
        }
    }
}

/// One answered question. `fix` is set for every non-ok check: a command or config line that
/// can be pasted as is (angle-bracket placeholders only where the value cannot be known).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable dotted identifier (`node.forwarding.ipv6`), for filtering and docs.
    pub id: String,
    /// The verdict.
    pub status: Status,
    /// What was found, with the values.
    pub message: String,
    /// What to run or write to fix it; `None` only when the check is ok.
    pub fix: Option<String>,
}

impl Check {
    /// A passing check (no fix).
    pub fn ok(id: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            id: id.into(),
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    /// A warning, with the fix.
    pub fn warn(
        id: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status: Status::Warn,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    /// A failure, with the fix.
    pub fn fail(
        id: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            id: id.into(),
            status: Status::Fail,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// All checks of one run, in the order they were made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    /// Every check, in the order it was made.
    pub checks: Vec<Check>,
}

impl Report {
    /// A report of `checks`, in that order.
    pub fn new(checks: Vec<Check>) -> Report {
        Report { checks }
    }

    /// Whether any check failed (the command then exits 1).
    pub fn has_failures(&self) -> bool {
        self.checks.iter().any(|c| c.status == Status::Fail)
    }

    /// The check with this id, if it was made.
    pub fn get(&self, id: &str) -> Option<&Check> {
        self.checks.iter().find(|c| c.id == id)
    }

    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }

    /// The checklist: one `✓/⚠/✗ id  message` line per check, the fix indented below, and a
    /// summary line.
    pub fn to_text(&self) -> String {
        let width = self.checks.iter().map(|c| c.id.len()).max().unwrap_or(0);
        let mut out = String::new();
        for c in &self.checks {
            let _ = writeln!(out, "{} {:<width$}  {}", c.status.symbol(), c.id, c.message);
            if let Some(fix) = &c.fix {
                for (i, line) in fix.lines().enumerate() {
                    let label = if i == 0 { "fix:" } else { "    " };
                    let _ = writeln!(out, "    {label} {line}");
                }
            }
        }
        let _ = writeln!(
            out,
            "{} ok, {} warning(s), {} failed",
            self.count(Status::Ok),
            self.count(Status::Warn),
            self.count(Status::Fail)
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_shape_is_the_documented_one() {
        let r = Report::new(vec![
            Check::ok("a", "fine"),
            Check::warn("b", "hmm", "do x"),
        ]);
        let json = serde_json::to_value(&r).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"checks": [
                {"id": "a", "status": "ok", "message": "fine", "fix": null},
                {"id": "b", "status": "warn", "message": "hmm", "fix": "do x"}
            ]})
        );
        assert!(!r.has_failures());
    }

    #[test]
    fn text_aligns_ids_and_indents_multi_line_fixes() {
        let r = Report::new(vec![
            Check::ok("short", "fine"),
            Check::fail("a.longer.id", "broken", "first\nsecond"),
        ]);
        assert_eq!(
            r.to_text(),
            "✓ short        fine\n✗ a.longer.id  broken\n    fix: first\n         second\n1 ok, 0 warning(s), 1 failed\n"
        );
        assert!(r.has_failures());
    }
}
