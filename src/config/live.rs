//! `live:` in stack.yaml — the production targets `stack live …` deploys to: per env target of
//! type `live`, the kube context (required, and allowlisted explicitly: a live context never
//! matches the local `kind-*`/`k3d-*` defaults), namespace and release templates, and the chart
//! (a released `oci://…` reference at a version; a local directory for tests).

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LiveConfig {
    /// Contexts live commands may act on, besides `cluster.allowedContexts` (exact names, or a
    /// prefix ending in `*`). The local defaults (`kind-*`, `k3d-*`) never count for live.
    #[serde(default)]
    pub allowed_contexts: Vec<String>,
    /// Namespace template (minijinja; variables: project, type, name). Default
    /// `{{ project }}-{{ name }}`.
    #[serde(default)]
    pub namespace: Option<String>,
    /// Release name template (variables: project, type, name). Default: `chart.release`.
    #[serde(default)]
    pub release: Option<String>,
    /// The chart every target deploys unless the target names its own.
    #[serde(default)]
    pub chart: Option<LiveChart>,
    /// How long a rollout may take before it counts as failed (and is rolled back). Default 1200.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How often `helm upgrade` is retried when helm says another operation is in progress
    /// (and only then). Default 3.
    #[serde(default = "default_retries")]
    pub retries: u32,
    /// The public host of a target (template; variables: project, type, name), e.g.
    /// `{{ name }}.shop.example`: `stack live verify` runs the checks marked `live` against
    /// `https://<host>`.
    #[serde(default)]
    pub host: Option<String>,
    /// Per env target (`live/acme-shop`): its context and overrides.
    #[serde(default)]
    pub targets: BTreeMap<String, LiveTarget>,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            allowed_contexts: Vec::new(),
            namespace: None,
            release: None,
            chart: None,
            timeout_seconds: default_timeout(),
            retries: default_retries(),
            host: None,
            targets: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LiveTarget {
    /// The kubeconfig context of this target's cluster (required; must be allowlisted).
    pub context: String,
    /// The kubeconfig file. Default: the first entry of `$KUBECONFIG`, else `~/.kube/config`.
    #[serde(default)]
    pub kubeconfig: Option<String>,
    /// Namespace (template, as `live.namespace`).
    #[serde(default)]
    pub namespace: Option<String>,
    /// Release name (template, as `live.release`).
    #[serde(default)]
    pub release: Option<String>,
    #[serde(default)]
    pub chart: Option<LiveChart>,
    /// The public host (template, as `live.host`).
    #[serde(default)]
    pub host: Option<String>,
    /// Where `stack live verify` sends requests instead of `https://<host>` (e.g. an internal
    /// address, or `http://…` behind a TLS-terminating proxy).
    #[serde(default)]
    pub base_url: Option<String>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LiveChart {
    /// `oci://registry/charts/app`, or a chart directory relative to the project root.
    pub reference: String,
    /// The released chart version deployed unless `--version` says otherwise.
    #[serde(default)]
    pub version: Option<String>,
    /// The registry speaks plain HTTP (a local test registry): helm gets `--plain-http`.
    #[serde(default)]
    pub plain_http: bool,
}

fn default_timeout() -> u64 {
    1200
}

fn default_retries() -> u32 {
    3
}
