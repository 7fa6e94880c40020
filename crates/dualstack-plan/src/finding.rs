//! Findings: what `plan check` reports — a severity, a stable code, a message and a fix.

use std::fmt;

use serde::Serialize;

use crate::code::Code;

/// How bad a finding is. Orders `Info < Warning < Error`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; nothing is broken.
    Info,
    /// Works, but probably not the way you want (or only on some versions).
    Warning,
    /// K3s, Kubernetes, Calico or Traefik will refuse it, crash, or silently ignore it.
    Error,
}

impl Severity {
    /// `error`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem (or note) about the checked configuration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// How bad it is.
    pub severity: Severity,
    /// The stable identifier of the rule it breaks (for filtering and docs).
    pub code: Code,
    /// What is wrong, naming the setting and its value.
    pub message: String,
    /// What to change.
    pub fix: String,
    /// Where the offending value was read (`file:line`), when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

impl Finding {
    /// A finding with no source location.
    pub fn new(
        severity: Severity,
        code: Code,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity,
            code,
            message: message.into(),
            fix: fix.into(),
            source: None,
        }
    }

    /// The same finding, located at `source`.
    pub fn at(mut self, source: Option<String>) -> Self {
        self.source = source;
        self
    }
}

/// Findings in a stable order: errors first, then warnings, then infos; within a severity in
/// the order the rules produced them.
pub fn sort_findings(findings: &mut [Finding]) {
    findings.sort_by_key(|f| std::cmp::Reverse(f.severity));
}

/// Whether any finding is an error (`plan check` then exits 1).
pub fn has_errors(findings: &[Finding]) -> bool {
    findings.iter().any(|f| f.severity == Severity::Error)
}
