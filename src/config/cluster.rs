//! `cluster:` in stack.yaml — where `stack up` runs: a kind or k3d cluster stack creates, or an
//! existing context the user allows explicitly.

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    #[default]
    Kind,
    K3d,
    Existing,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClusterConfig {
    /// kind (default), k3d, or existing (a kubeconfig context named in `allowedContexts`).
    #[serde(default)]
    pub provider: Provider,
    /// Cluster name. Default: the `name` in the provider's config file, else the project name.
    #[serde(default)]
    pub name: Option<String>,
    /// The provider's config file. Default `kind/cluster.yaml` or `k3d/cluster.yaml`.
    #[serde(default)]
    pub config: Option<String>,
    /// For `existing`: the kubeconfig context to use (must also be in `allowedContexts`).
    #[serde(default)]
    pub context: Option<String>,
    /// Contexts mutating commands may act on, besides the ones stack creates (`kind-<name>`,
    /// `k3d-<name>`). Nothing ever uses the current context implicitly.
    #[serde(default)]
    pub allowed_contexts: Vec<String>,
    #[serde(default)]
    pub registry: RegistryConfig,
    /// Kubernetes labels stack adds to every node it creates (e.g. `ingress-ready: "true"` or a
    /// hardware-affinity label), on top of the labels in the provider's config file.
    #[serde(default)]
    pub node_labels: BTreeMap<String, String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RegistryConfig {
    /// Run a local registry next to the cluster (images are pushed there). Default true.
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Registry container name. Default `<cluster>-registry`.
    #[serde(default)]
    pub name: Option<String>,
    /// Port on 127.0.0.1 the registry is published on. Default 5001 for kind and k3d; an
    /// `existing` cluster has a registry (images are pushed to `localhost:<port>`) only when this
    /// names the port of one it pulls from.
    #[serde(default)]
    pub host_port: Option<u16>,
    /// Registry image (kind provider). Default `registry:2`.
    #[serde(default = "default_registry_image")]
    pub image: String,
}

impl Default for RegistryConfig {
    fn default() -> Self {
        RegistryConfig {
            enabled: true,
            name: None,
            host_port: None,
            image: default_registry_image(),
        }
    }
}

fn yes() -> bool {
    true
}

/// The registry's host port for kind and k3d when `hostPort` is not set.
pub const DEFAULT_REGISTRY_PORT: u16 = 5001;

fn default_registry_image() -> String {
    "registry:2".into()
}
