//! Pointing a NetworkAttachmentDefinition's `master` at its host interface: a compare-and-swap on
//! `resourceVersion`, re-read and tried again on a conflict.
//!
//! Every node whose netwatcher has made the interface tries, and all write the same value (the rewrite
//! is a function of the object alone, see [`danm_core::netwatch::attachment`]): the first write wins,
//! the others conflict, re-read, find `master` already pointing at the interface and stop.

use danm_core::netwatch::attachment::{HOST_DEVICE_ANNOTATION, HOST_INTERFACE_ANNOTATION};
use kube::api::{Api, PostParams};
use kube::{Client, ResourceExt};

use super::Error;
use crate::nad::NetworkAttachmentDefinition;

/// How many times a write that conflicts is tried, each after a fresh read.
const ATTEMPTS: usize = 5;

/// Rewrites `nad`'s `master` to `interface`, its host interface on this node, with the original parent
/// and the interface in the annotations, unless it names the interface already. Returns whether it
/// wrote. Nothing is written when the object, read again after a conflict, wants another interface
/// (this node has not made that one yet; the pass its change triggers will), or is gone.
pub(crate) async fn point_master_at_interface(
    client: &Client,
    nad: &NetworkAttachmentDefinition,
    interface: &str,
) -> Result<bool, Error> {
    let (namespace, name) = (nad.namespace().unwrap_or_default(), nad.name_any());
    let failed = |source| Error::Rewrite { namespace: namespace.clone(), name: name.clone(), source };
    let api: Api<NetworkAttachmentDefinition> = Api::namespaced(client.clone(), &namespace);
    let mut current = nad.clone();
    for _ in 0..ATTEMPTS {
        let Some(rewrite) = current.attachment().rewrite().filter(|r| r.host_interface == interface) else {
            return Ok(false);
        };
        let mut next = current.clone();
        next.spec.config = rewrite.config;
        let annotations = next.annotations_mut();
        annotations.insert(HOST_DEVICE_ANNOTATION.to_owned(), rewrite.host_device);
        annotations.insert(HOST_INTERFACE_ANNOTATION.to_owned(), rewrite.host_interface);
        // `next` carries the resourceVersion it was read at: a write in between is a 409.
        match api.replace(&name, &PostParams::default(), &next).await {
            Ok(_) => return Ok(true),
            Err(kube::Error::Api(s)) if s.code == 404 => return Ok(false),
            Err(kube::Error::Api(s)) if s.code == 409 => {
                current = match api.get_opt(&name).await.map_err(|e| failed(Some(e)))? {
                    Some(fresh) => fresh,
                    None => return Ok(false),
                };
            }
            Err(e) => return Err(failed(Some(e))),
        }
    }
    Err(failed(None))
}
