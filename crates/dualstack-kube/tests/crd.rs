//! The shipped CRD is exactly what the Rust type generates, and its schema accepts what the
//! decision accepts (and rejects plain nonsense before it reaches us).
//!
//! Regenerate after changing `PoolSpec`:
//! `DUALSTACK_UPDATE_CRD=1 cargo test -p dualstack-kube --test crd`.

// Test helpers may panic on fixtures they build themselves.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use dualstack_kube::crd::{pool_crd, pool_crd_value, pool_spec_schema};
use dualstack_lb::pool::{LoadBalancerPool, Pool};

fn shipped() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../deploy/crd-loadbalancerpool.yaml")
}

fn rendered() -> String {
    let body = serde_saphyr::to_string(&pool_crd_value()).unwrap();
    format!(
        "# Generated from dualstack_lb::pool::PoolSpec by dualstack-kube (tests/crd.rs):\n\
         # DUALSTACK_UPDATE_CRD=1 cargo test -p dualstack-kube --test crd\n{body}"
    )
}

#[test]
fn the_shipped_crd_is_the_generated_one() {
    let path = shipped();
    // The Helm chart ships the same file (Helm installs `crds/` before the templates).
    let chart = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../charts/dualstack/crds/loadbalancerpool.yaml");
    for file in [&path, &chart] {
        if std::env::var_os("DUALSTACK_UPDATE_CRD").is_some() {
            std::fs::write(file, rendered()).unwrap();
        }
        let on_disk = std::fs::read_to_string(file).unwrap_or_default();
        assert!(
            on_disk == rendered(),
            "{} differs from the CRD generated from PoolSpec; regenerate with \
             DUALSTACK_UPDATE_CRD=1 cargo test -p dualstack-kube --test crd",
            file.display()
        );
    }
    let kustomization = std::fs::read_to_string(path.with_file_name("kustomization.yaml")).unwrap();
    assert!(kustomization.contains("- crd-loadbalancerpool.yaml"));
}

#[test]
fn the_crd_is_a_valid_structural_custom_resource_definition() {
    let crd = pool_crd().unwrap();
    assert_eq!(
        crd.metadata.name.as_deref(),
        Some("loadbalancerpools.dualstack.io")
    );
    assert_eq!(crd.spec.scope, "Cluster");
    let version = &crd.spec.versions[0];
    assert_eq!(version.name, "v1alpha1");
    let spec = pool_spec_schema();
    // Structural: every property has a type, nothing refers elsewhere.
    let text = spec.to_string();
    assert!(
        !text.contains("$ref") && !text.contains("$schema") && !text.contains("anyOf"),
        "{text}"
    );
    for (name, property) in spec["properties"].as_object().unwrap() {
        assert!(
            property.get("type").is_some(),
            "{name} has no type: {property}"
        );
        assert!(
            property.get("description").is_some(),
            "{name} has no description"
        );
    }
    assert_eq!(spec["properties"]["autoAssign"]["default"], true);
    assert_eq!(spec["properties"]["addresses"]["minItems"], 1);
    // `addresses` or `ipv6Prefix`: a CEL rule (anyOf would not be structural).
    assert_eq!(
        spec["x-kubernetes-validations"][0]["rule"],
        "has(self.addresses) || has(self.ipv6Prefix)"
    );
    assert_eq!(
        spec["properties"]["ipv6Prefix"]["required"],
        serde_json::json!(["hosts"])
    );
    assert!(spec["properties"]["addresses"].get("default").is_none());
    assert_eq!(
        spec["properties"]["nodeSelector"]["additionalProperties"]["type"],
        "string"
    );
}

#[test]
fn the_schema_patterns_agree_with_the_decision() {
    let spec = pool_spec_schema();
    let pattern = |field: &str| {
        regex::Regex::new(
            spec["properties"][field]["items"]["pattern"]
                .as_str()
                .unwrap(),
        )
        .unwrap()
    };
    let address = pattern("addresses");
    for good in [
        "192.0.2.0/28",
        "2001:db8:1::/120",
        "192.0.2.100-192.0.2.110",
        "2001:db8::10 - 2001:db8::20",
        "198.51.100.7",
        "::ffff:192.0.2.1",
    ] {
        assert!(address.is_match(good), "schema refuses {good}");
        dualstack_lb::pool::parse_entry(good).unwrap();
    }
    for bad in [
        "lan",
        "192.0.2.0/24,192.0.3.0/24",
        "",
        "10.0.0.0/8 extra",
        "a b",
    ] {
        assert!(!address.is_match(bad), "schema accepts {bad:?}");
        assert!(dualstack_lb::pool::parse_entry(bad).is_err(), "{bad:?}");
    }
    let interface = pattern("interfaces");
    for good in ["eth0", "enp3s0", "br-lan", "bond0.100"] {
        assert!(interface.is_match(good), "{good}");
    }
    for bad in ["", "a/b", "eth0:1", "averyveryverylongname", "a b"] {
        assert!(!interface.is_match(bad), "{bad:?}");
    }
}

#[test]
fn a_pool_object_as_the_api_returns_it_reads_into_the_core_type() {
    let object: LoadBalancerPool = serde_json::from_value(serde_json::json!({
        "apiVersion": "dualstack.io/v1alpha1", "kind": "LoadBalancerPool",
        "metadata": {"name": "lan", "uid": "u", "resourceVersion": "7", "generation": 1,
                     "creationTimestamp": "2025-04-10T08:00:00Z"},
        "spec": {"addresses": ["192.0.2.240/28", "2001:db8:1::f0-2001:db8:1::ff"],
                 "autoAssign": true, "nodeSelector": {"zone": "a"}, "interfaces": ["eth0"]}
    }))
    .unwrap();
    let pool = Pool::from_object(&object);
    assert!(pool.usable(), "{:?}", pool.errors);
    assert_eq!(pool.spans.len(), 2);
}
