//! Single objects through the API, for plan steps: server-side apply of an object given as JSON,
//! and an object's UID (the identity of what a step created). Any kind works (`DynamicObject`):
//! the plan names the object, not a Rust type.

use ::kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use std::fmt;

/// The field manager of every server-side apply stack makes.
pub const FIELD_MANAGER: &str = "stack";

/// An object by apiVersion, kind, namespace (none: cluster-scoped) and name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectRef {
    pub api_version: String,
    pub kind: String,
    pub namespace: Option<String>,
    pub name: String,
}

impl ObjectRef {
    pub fn new(api_version: &str, kind: &str, namespace: Option<&str>, name: &str) -> Self {
        ObjectRef {
            api_version: api_version.to_owned(),
            kind: kind.to_owned(),
            namespace: namespace.map(str::to_owned),
            name: name.to_owned(),
        }
    }

    /// The reference of an object given as JSON (`apiVersion`, `kind`, `metadata`).
    pub fn of(object: &serde_json::Value) -> Self {
        let text = |v: &serde_json::Value| v.as_str().unwrap_or_default().to_owned();
        ObjectRef {
            api_version: text(&object["apiVersion"]),
            kind: text(&object["kind"]),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
            name: text(&object["metadata"]["name"]),
        }
    }

    fn api(&self, client: ::kube::Client) -> Api<DynamicObject> {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", &self.api_version));
        let resource = ApiResource::from_gvk(&GroupVersionKind::gvk(group, version, &self.kind));
        match &self.namespace {
            Some(ns) => Api::namespaced_with(client, ns, &resource),
            None => Api::all_with(client, &resource),
        }
    }
}

/// `configmap kube-public/local-registry-hosting`, `namespace kube-system`: as kubectl names them.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = self.kind.to_ascii_lowercase();
        match &self.namespace {
            Some(ns) => write!(f, "{kind} {ns}/{}", self.name),
            None => write!(f, "{kind} {}", self.name),
        }
    }
}

/// Server-side apply of `object` as [`FIELD_MANAGER`]; with `force`, fields another manager set
/// are taken over (for objects stack is the one author of), else that is a 409 conflict.
pub async fn apply(
    client: ::kube::Client,
    object: &serde_json::Value,
    force: bool,
) -> Result<(), ::kube::Error> {
    let at = ObjectRef::of(object);
    let mut params = PatchParams::apply(FIELD_MANAGER);
    if force {
        params = params.force();
    }
    at.api(client)
        .patch(&at.name, &params, &Patch::Apply(object))
        .await
        .map(|_| ())
}

/// The object's `metadata.uid`: new with every object, so it tells a re-created one apart.
pub async fn uid(client: ::kube::Client, object: &ObjectRef) -> Result<String, ::kube::Error> {
    let found = object.api(client).get(&object.name).await?;
    Ok(found.metadata.uid.unwrap_or_default())
}
