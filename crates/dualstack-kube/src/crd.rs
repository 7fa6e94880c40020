//! The `LoadBalancerPool` CustomResourceDefinition, generated from the core's
//! [`dualstack_lb::pool::PoolSpec`]: its OpenAPI v3 schema (descriptions, item
//! patterns, size limits, the `autoAssign` default) comes from the Rust type through
//! `schemars`, so the CRD shipped in `deploy/crd-loadbalancerpool.yaml` cannot drift from
//! what the decision reads (a test compares the two).

use dualstack_lb::pool::{POOL_API_VERSION, POOL_KIND, PoolSpec};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use schemars::generate::SchemaSettings;
use serde_json::{Value, json};

/// The API group of our kinds.
pub const GROUP: &str = "dualstack.io";
/// Plural resource name of pools.
pub const POOL_PLURAL: &str = "loadbalancerpools";

/// Why the CRD could not be built (a bug in the generator, not user input).
#[derive(Debug, thiserror::Error)]
#[error("the generated CRD does not deserialize as a CustomResourceDefinition: {0}")]
pub struct CrdError(#[from] serde_json::Error);

/// The OpenAPI v3 schema of `spec`, structural (inline, no `$schema`), as Kubernetes wants.
pub fn pool_spec_schema() -> Value {
    let mut settings = SchemaSettings::openapi3();
    settings.meta_schema = None;
    settings.inline_subschemas = true;
    let schema = settings.into_generator().into_root_schema_for::<PoolSpec>();
    let mut value = schema.to_value();
    if let Some(object) = value.as_object_mut() {
        object.remove("title");
    }
    value
}

/// The CRD as JSON.
pub fn pool_crd_value() -> Value {
    let version = POOL_API_VERSION
        .strip_prefix(&format!("{GROUP}/"))
        .unwrap_or(POOL_API_VERSION);
    json!({
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": format!("{POOL_PLURAL}.{GROUP}"),
            "labels": {"app.kubernetes.io/name": "dualstack"}
        },
        "spec": {
            "group": GROUP,
            "scope": "Cluster",
            "names": {
                "kind": POOL_KIND,
                "listKind": format!("{POOL_KIND}List"),
                "plural": POOL_PLURAL,
                "singular": "loadbalancerpool",
                "shortNames": ["lbpool"],
                "categories": ["dualstack"]
            },
            "versions": [{
                "name": version,
                "served": true,
                "storage": true,
                "additionalPrinterColumns": [
                    {"name": "Addresses", "type": "string", "jsonPath": ".spec.addresses"},
                    {"name": "AutoAssign", "type": "boolean", "jsonPath": ".spec.autoAssign"},
                    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"}
                ],
                "schema": {"openAPIV3Schema": {
                    "description": "Dedicated LoadBalancer addresses, per family, announced by ARP and NDP from one node per address.",
                    "type": "object",
                    "required": ["spec"],
                    "properties": {
                        "apiVersion": {"type": "string"},
                        "kind": {"type": "string"},
                        "metadata": {"type": "object"},
                        "spec": pool_spec_schema()
                    }
                }}
            }]
        }
    })
}

/// The CRD as the typed `k8s-openapi` object (what an installer would apply).
pub fn pool_crd() -> Result<CustomResourceDefinition, CrdError> {
    Ok(serde_json::from_value(pool_crd_value())?)
}
