//! Service conditions and Events with stable `type`/`reason` strings (the table is in the
//! crate docs). Events mirror the conditions that are not OK.
//!
//! The strings are typed: [`ConditionType`], [`ConditionStatus`], [`Reason`] and
//! [`EventType`] serialize (and [`Display`](std::fmt::Display)) as exactly the strings on
//! the wire, and parse back from them with [`FromStr`] or `TryFrom<&str>`.

use serde::Serialize;
use std::fmt;
use std::str::FromStr;

/// A string that is not one of the values of the enum it was parsed as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownValue {
    /// What was being parsed (`condition type`, `reason`, …).
    pub what: &'static str,
    /// The string that did not match.
    pub value: String,
}

impl fmt::Display for UnknownValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown {} {:?}", self.what, self.value)
    }
}

impl std::error::Error for UnknownValue {}

/// A fieldless enum whose values are fixed wire strings: `as_str`, `ALL`, `Display`,
/// `Serialize`, `FromStr`, `TryFrom<&str>` and comparison with `str` and `String`.
macro_rules! wire_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident ($what:literal) {
            $( $(#[$vmeta:meta])* $variant:ident => $string:literal, )+
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        $vis enum $name {
            $( $(#[$vmeta])* $variant, )+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The string on the wire.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $string,)+
                }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($string => Ok($name::$variant),)+
                    _ => Err(UnknownValue { what: $what, value: s.to_string() }),
                }
            }
        }

        impl TryFrom<&str> for $name {
            type Error = UnknownValue;

            fn try_from(s: &str) -> Result<Self, Self::Error> {
                s.parse()
            }
        }

        impl PartialEq<str> for $name {
            fn eq(&self, other: &str) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<&str> for $name {
            fn eq(&self, other: &&str) -> bool {
                self.as_str() == *other
            }
        }

        impl PartialEq<$name> for str {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }

        impl PartialEq<$name> for &str {
            fn eq(&self, other: &$name) -> bool {
                *self == other.as_str()
            }
        }

        impl PartialEq<String> for $name {
            fn eq(&self, other: &String) -> bool {
                self.as_str() == other
            }
        }

        impl PartialEq<$name> for String {
            fn eq(&self, other: &$name) -> bool {
                self == other.as_str()
            }
        }
    };
}

wire_enum! {
    /// The `type` of a condition we write. All of ours start with `dualstack.io/`.
    pub enum ConditionType ("condition type") {
        /// Is the Service served (status published, frontends programmed)?
        LoadBalancerReady => "dualstack.io/LoadBalancerReady",
        /// Did the Service lose a node address + protocol + port to an older one?
        PortConflict => "dualstack.io/PortConflict",
        /// (Services of prefix-following pools only) do the pool's nodes report the same
        /// prefixes?
        PrefixMismatch => "dualstack.io/PrefixMismatch",
    }
}

wire_enum! {
    /// A condition's `status`.
    pub enum ConditionStatus ("condition status") {
        /// `True`.
        True => "True",
        /// `False`.
        False => "False",
    }
}

impl From<bool> for ConditionStatus {
    fn from(ok: bool) -> ConditionStatus {
        if ok {
            ConditionStatus::True
        } else {
            ConditionStatus::False
        }
    }
}

wire_enum! {
    /// The `reason` of a condition or Event we write.
    pub enum Reason ("reason") {
        /// `LoadBalancerReady=True`: served on at least one node for every family it gets.
        Ready => "Ready",
        /// `LoadBalancerReady=False`: a spec field we cannot use (no families, bad source
        /// range, unknown protocol, no ports).
        InvalidSpec => "InvalidSpec",
        /// `LoadBalancerReady=False`: node selection (readiness, agent Lease, labels, pools)
        /// left no node.
        NoEligibleNodes => "NoEligibleNodes",
        /// `LoadBalancerReady=False`: `externalTrafficPolicy: Local` and no eligible node has
        /// a ready endpoint.
        NoLocalEndpoints => "NoLocalEndpoints",
        /// `LoadBalancerReady=False`: a required family (or every family) has no address on
        /// any eligible node.
        FamilyUnavailable => "FamilyUnavailable",
        /// `LoadBalancerReady=False` when every candidate address was lost to older
        /// Services; `PortConflict=True` when at least one was.
        PortConflict => "PortConflict",
        /// `LoadBalancerReady=False`: `dualstack.io/pool` names a pool that does not exist
        /// or is unusable.
        PoolNotFound => "PoolNotFound",
        /// `LoadBalancerReady=False`: a requested address is in no (or not the named) pool.
        AddressNotInPool => "AddressNotInPool",
        /// `LoadBalancerReady=False`: a requested address is held by a Service that does not
        /// share.
        AddressInUse => "AddressInUse",
        /// `LoadBalancerReady=False`: same sharing key, but a port overlaps or traffic policy
        /// is Local.
        SharingClash => "SharingClash",
        /// `LoadBalancerReady=False`: every address of the Service's pools for a family is in
        /// use.
        PoolExhausted => "PoolExhausted",
        /// `LoadBalancerReady=False` (or the IPv6 family not served): a pool that follows the
        /// nodes' IPv6 prefix has no node that reports one.
        NoPrefix => "NoPrefix",
        /// `PrefixMismatch=True`: the pool's nodes report different prefixes (named).
        PrefixMismatch => "PrefixMismatch",
        /// `PrefixMismatch=False`.
        PrefixesAgree => "PrefixesAgree",
        /// `PortConflict=False`.
        NoConflict => "NoConflict",
        /// `Normal` Event only: a new prefix's address was published (host part kept).
        PrefixAdded => "PrefixAdded",
        /// `Normal` Event only: an old prefix's address was withdrawn (and why).
        PrefixWithdrawn => "PrefixWithdrawn",
    }
}

wire_enum! {
    /// An Event's `type`.
    pub enum EventType ("event type") {
        /// A step worth recording that is not a problem (a prefix change).
        Normal => "Normal",
        /// A problem: mirrors a problem condition.
        Warning => "Warning",
    }
}

/// One entry of the Service's `status.conditions`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// What the condition is about.
    #[serde(rename = "type")]
    pub type_: ConditionType,
    /// `True` or `False`.
    pub status: ConditionStatus,
    /// Why, in one CamelCase word.
    pub reason: Reason,
    /// Why, for a person.
    pub message: String,
}

impl Condition {
    pub(crate) fn new(
        type_: ConditionType,
        ok: bool,
        reason: Reason,
        message: String,
    ) -> Condition {
        Condition {
            type_,
            status: ok.into(),
            reason,
            message,
        }
    }

    /// Whether this condition reports a problem (`Ready` False, `PortConflict` True).
    pub fn is_problem(&self) -> bool {
        match self.type_ {
            ConditionType::PortConflict | ConditionType::PrefixMismatch => {
                self.status == ConditionStatus::True
            }
            ConditionType::LoadBalancerReady => self.status != ConditionStatus::True,
        }
    }
}

/// An Event to record on the Service.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Event {
    /// `Warning` for the Events that mirror a problem condition, `Normal` for the steps of a
    /// prefix change.
    #[serde(rename = "type")]
    pub type_: EventType,
    /// Why, in one CamelCase word.
    pub reason: Reason,
    /// Why, for a person.
    pub message: String,
}

/// The Events that mirror the problem conditions.
pub(crate) fn events_for(conditions: &[Condition]) -> Vec<Event> {
    conditions
        .iter()
        .filter(|c| c.is_problem())
        .map(|c| Event {
            type_: EventType::Warning,
            reason: c.reason,
            message: c.message.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wire_strings_round_trip() {
        for r in Reason::ALL {
            assert_eq!(r.as_str().parse::<Reason>(), Ok(*r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
            assert_eq!(r.to_string(), r.as_str());
        }
        for t in ConditionType::ALL {
            assert_eq!(ConditionType::try_from(t.as_str()), Ok(*t));
        }
        assert_eq!(ConditionStatus::from(true).as_str(), "True");
        assert_eq!(ConditionStatus::from(false).as_str(), "False");
        assert!("Nope".parse::<Reason>().is_err());
    }
}
