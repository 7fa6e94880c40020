//! [`ServiceKey`]: a Service's namespace and name, the key the decision and the controller
//! use for it. Shown (and serialized) as `namespace/name`.

use serde::Serialize;
use std::fmt;

use crate::objects::Service;

/// A Service's `namespace/name`. Orders by namespace, then name (the order of the decision's
/// output).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ServiceKey {
    /// `metadata.namespace`.
    pub namespace: String,
    /// `metadata.name`.
    pub name: String,
}

impl ServiceKey {
    /// The key of `namespace`/`name`.
    pub fn new(namespace: impl Into<String>, name: impl Into<String>) -> ServiceKey {
        ServiceKey {
            namespace: namespace.into(),
            name: name.into(),
        }
    }

    /// The key of a Service object.
    pub fn of(service: &Service) -> ServiceKey {
        ServiceKey::new(
            service.metadata.namespace.as_str(),
            service.metadata.name.as_str(),
        )
    }

    /// Whether this is the key of `namespace`/`name`.
    pub fn is(&self, namespace: &str, name: &str) -> bool {
        self.namespace == namespace && self.name == name
    }
}

impl From<&Service> for ServiceKey {
    fn from(service: &Service) -> ServiceKey {
        ServiceKey::of(service)
    }
}

impl fmt::Display for ServiceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.namespace, self.name)
    }
}

/// As the string `namespace/name`, as before the key was typed.
impl Serialize for ServiceKey {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_and_serializes_as_namespace_slash_name_and_orders_by_namespace_first() {
        let a = ServiceKey::new("a", "z");
        let b = ServiceKey::new("b", "a");
        assert_eq!(a.to_string(), "a/z");
        assert_eq!(serde_json::to_value(&a).unwrap(), "a/z");
        assert!(a < b);
    }
}
