//! `dualstack controller --release-all`: hands every Service we own back before uninstall.
//!
//! For each Service on which *we* added our finalizer (see [`crate::finalizer`]): the status
//! we wrote is cleared and the finalizer removed — the same steps as the reconcile of a
//! Service that stopped being ours ([`crate::reconcile::release`]). Nothing is sent for any
//! other Service. Run it after the controller Deployment is gone (otherwise the leader puts
//! everything back), before deleting the rest of `deploy/`; otherwise deleting a Service would
//! wait forever for a finalizer nobody removes.

use k8s_openapi::api::core::v1::Service;
use kube::api::ListParams;
use kube::{Api, Client, ResourceExt};

use crate::reconcile::{Error, release};

/// What `release_all` did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Released {
    /// `namespace/name` of every Service released, in the API's order.
    pub services: Vec<String>,
    /// How many Services were looked at.
    pub seen: usize,
}

/// Releases every Service of `class` we hold a finalizer on (see the module docs).
pub async fn release_all(client: &Client, class: &str) -> Result<Released, Error> {
    let all: Api<Service> = Api::all(client.clone());
    let list = all
        .list(&ListParams::default())
        .await
        .map_err(|source| Error::Api {
            action: "list",
            service: "(all namespaces)".to_string(),
            source,
        })?;
    let mut done = Released {
        seen: list.items.len(),
        ..Released::default()
    };
    for svc in &list.items {
        let namespace = svc.namespace().unwrap_or_default();
        let api: Api<Service> = Api::namespaced(client.clone(), &namespace);
        if release(&api, svc, class).await? {
            done.services
                .push(format!("{namespace}/{}", svc.name_any()));
        }
    }
    Ok(done)
}
