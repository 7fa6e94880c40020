//! What the agent publishes about the ruleset it wants in the kernel, so that
//! `dualstack doctor node` can compare what is with what should be.
//!
//! * [`Published`]: the full form, served as JSON on the agent's health endpoint
//!   (`GET /ruleset`) and written by the offline agent (`--publish-ruleset FILE`): node,
//!   [`Canonical`] hash, generation, since when, and the whole [`Ruleset`] (every frontend
//!   with its destination, protocol, port, source ranges and backends).
//! * [`Summary`]: the compact form, the value of the agent Lease annotation
//!   [`RULESET_ANNOTATION`]:
//!   `sha256:<hex>;frontends=<count>;generation=<n>;since=<RFC 3339>`.
//!
//! `generation` counts the distinct rulesets the agent process has wanted (1 for the first);
//! `since` is when the current one became wanted. Both stay the same while the ruleset
//! does, so a renewal that changes nothing rewrites the same annotation.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::canonical::Canonical;
use crate::model::Ruleset;
use crate::validate::InvalidRuleset;

/// The agent Lease annotation carrying a [`Summary`].
pub const RULESET_ANNOTATION: &str = "dualstack.io/ruleset";

/// The ruleset an agent wants, with its identity (see the module documentation).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Published {
    /// The node whose agent wants this ruleset.
    pub node: String,
    /// [`Canonical::hash`] of `ruleset`.
    pub hash: String,
    /// How many distinct rulesets this agent process has wanted, this one included.
    pub generation: u64,
    /// RFC 3339: when this ruleset became the wanted one.
    pub since: String,
    /// The whole ruleset.
    pub ruleset: Ruleset,
}

impl Published {
    /// What to publish when `node` wants `ruleset` at `now` (RFC 3339), after `previous`:
    /// `previous` unchanged when the ruleset hashes the same, else the next generation.
    pub fn next(
        previous: Option<&Published>,
        node: &str,
        ruleset: Ruleset,
        now: &str,
    ) -> Result<Published, InvalidRuleset> {
        let hash = Canonical::of_ruleset(&ruleset)?.hash();
        if let Some(p) = previous
            && p.hash == hash
            && p.node == node
            && p.ruleset.table == ruleset.table
        {
            return Ok(p.clone());
        }
        Ok(Published {
            node: node.to_string(),
            hash,
            generation: previous.map_or(1, |p| p.generation.saturating_add(1)),
            since: now.to_string(),
            ruleset,
        })
    }

    /// The compact form for the Lease annotation.
    pub fn summary(&self) -> Summary {
        Summary {
            hash: self.hash.clone(),
            frontends: self.ruleset.frontends.len(),
            generation: self.generation,
            since: self.since.clone(),
        }
    }
}

/// The value of [`RULESET_ANNOTATION`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// [`Canonical::hash`] of the ruleset, `sha256:` and 64 hex digits.
    pub hash: String,
    /// How many frontends it has.
    pub frontends: usize,
    /// As in [`Published::generation`].
    pub generation: u64,
    /// RFC 3339: when it became the wanted one.
    pub since: String,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{};frontends={};generation={};since={}",
            self.hash, self.frontends, self.generation, self.since
        )
    }
}

/// Why a [`RULESET_ANNOTATION`] value could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SummaryError {
    /// The hash part is not `sha256:` followed by 64 lower-case hex digits.
    #[error(
        "{RULESET_ANNOTATION} {value:?}: the hash must be sha256: and 64 lower-case hex digits"
    )]
    Hash {
        /// The whole annotation value.
        value: String,
    },
    /// A `key=number` part is missing or not a number.
    #[error("{RULESET_ANNOTATION} {value:?}: {field} is missing or not a number")]
    Field {
        /// The whole annotation value.
        value: String,
        /// Which part (`frontends` or `generation`).
        field: &'static str,
    },
}

impl FromStr for Summary {
    type Err = SummaryError;

    /// Fields after the hash may come in any order; unknown ones are ignored (a newer agent
    /// may add some).
    fn from_str(value: &str) -> Result<Summary, SummaryError> {
        let mut parts = value.trim().split(';');
        let hash = parts.next().unwrap_or_default().trim();
        let hex = hash.strip_prefix("sha256:").unwrap_or_default();
        if hex.len() != 64
            || !hex
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return Err(SummaryError::Hash {
                value: value.to_string(),
            });
        }
        let (mut frontends, mut generation, mut since) = (None, None, String::new());
        for part in parts {
            match part.trim().split_once('=') {
                Some(("frontends", n)) => frontends = n.parse().ok(),
                Some(("generation", n)) => generation = n.parse().ok(),
                Some(("since", t)) => since = t.to_string(),
                _ => {}
            }
        }
        let field = |field| SummaryError::Field {
            value: value.to_string(),
            field,
        };
        Ok(Summary {
            hash: hash.to_string(),
            frontends: frontends.ok_or_else(|| field("frontends"))?,
            generation: generation.ok_or_else(|| field("generation"))?,
            since,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Backend, Destination, Frontend, Protocol};

    fn ruleset(port: u16) -> Ruleset {
        Ruleset {
            table: "dualstack".into(),
            frontends: vec![Frontend {
                name: "default/web:http".into(),
                destination: Destination::Addresses(vec!["10.0.1.1".parse().unwrap()]),
                protocol: Protocol::Tcp,
                port,
                source_ranges: vec!["0.0.0.0/0".parse().unwrap(), "::/0".parse().unwrap()],
                backends: vec![Backend {
                    addr: "10.42.0.7".parse().unwrap(),
                    port: 8080,
                }],
                selection: Default::default(),
                masquerade: true,
            }],
            guard: Vec::new(),
        }
    }

    #[test]
    fn generations_follow_changes_only() {
        let t0 = "2026-01-01T00:00:00Z";
        let first = Published::next(None, "n1", ruleset(80), t0).unwrap();
        assert_eq!((first.generation, first.since.as_str()), (1, t0));
        let same =
            Published::next(Some(&first), "n1", ruleset(80), "2026-01-01T00:01:00Z").unwrap();
        assert_eq!(same, first);
        let changed =
            Published::next(Some(&first), "n1", ruleset(81), "2026-01-01T00:02:00Z").unwrap();
        assert_eq!(changed.generation, 2);
        assert_ne!(changed.hash, first.hash);
        assert_eq!(changed.since, "2026-01-01T00:02:00Z");
    }

    #[test]
    fn summary_round_trips_and_rejects_garbage() {
        let p = Published::next(None, "n1", ruleset(80), "2026-01-01T00:00:00Z").unwrap();
        let text = p.summary().to_string();
        assert!(text.starts_with("sha256:"), "{text}");
        assert!(
            text.ends_with(";frontends=1;generation=1;since=2026-01-01T00:00:00Z"),
            "{text}"
        );
        assert_eq!(text.parse::<Summary>().unwrap(), p.summary());
        // Unknown fields and any order.
        let reordered = format!("{};since=x;extra=1;generation=3;frontends=2", p.hash);
        let s: Summary = reordered.parse().unwrap();
        assert_eq!((s.frontends, s.generation, s.since.as_str()), (2, 3, "x"));
        for bad in [
            "",
            "md5:abc;frontends=1;generation=1",
            "sha256:ABC;frontends=1;generation=1",
        ] {
            assert!(
                matches!(bad.parse::<Summary>(), Err(SummaryError::Hash { .. })),
                "{bad}"
            );
        }
        let missing = format!("{};generation=1", p.hash);
        assert!(
            missing
                .parse::<Summary>()
                .unwrap_err()
                .to_string()
                .contains("frontends")
        );
    }

    #[test]
    fn json_is_camel_case_and_round_trips() {
        let p = Published::next(None, "n1", ruleset(80), "2026-01-01T00:00:00Z").unwrap();
        let json = serde_json::to_value(&p).unwrap();
        for key in ["node", "hash", "generation", "since", "ruleset"] {
            assert!(json.get(key).is_some(), "{key} in {json}");
        }
        assert_eq!(json["ruleset"]["frontends"][0]["port"], 80);
        let back: Published = serde_json::from_value(json).unwrap();
        assert_eq!(back, p);
    }
}
