//! `test:` in stack.yaml — what `stack test local|ci` deploys and checks: the env target whose
//! values it composes, the checks (inline, and check files), named port-forwards, per-profile
//! release/namespace templates, the published chart and images `ci` deploys, and the registry
//! pull Secret made from environment variables.

use crate::check::spec::{CheckSpec, ForwardSpec};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TestConfig {
    /// The env target whose value layers the test release uses (then the chart's
    /// `values.test.yaml` and `values.test.<profile>.yaml` when present). Default: the dev target.
    #[serde(default)]
    pub env: Option<String>,
    /// Checks, in the order they are reported.
    #[serde(default)]
    pub checks: Vec<CheckSpec>,
    /// More check files (globs relative to the project root), each a list of checks or a map
    /// with `checks:`.
    #[serde(default)]
    pub files: Vec<String>,
    /// Port-forwards the checks share by name (`http: {forward: api}`, `{{ forwards.api.url }}`).
    #[serde(default)]
    pub forwards: BTreeMap<String, ForwardSpec>,
    /// Checks running at once. Default 4.
    #[serde(default = "default_jobs")]
    pub jobs: usize,
    /// The whole check run's deadline, in seconds. Default 900.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
    /// How long the release's workloads may take to become ready. Default 300.
    #[serde(default = "default_rollout")]
    pub rollout_timeout_seconds: u64,
    /// The values path receiving build metadata (`profile`, `sha`, `branch`, `describe`,
    /// `time`). Default `global.build`; empty disables it.
    #[serde(default = "default_build_values")]
    pub build_values: String,
    /// A `kubernetes.io/dockerconfigjson` pull Secret made from environment variables.
    #[serde(default)]
    pub pull_secret: Option<PullSecret>,
    #[serde(default)]
    pub local: Profile,
    #[serde(default)]
    pub ci: Profile,
}

impl Default for TestConfig {
    fn default() -> Self {
        TestConfig {
            env: None,
            checks: Vec::new(),
            files: Vec::new(),
            forwards: BTreeMap::new(),
            jobs: default_jobs(),
            timeout_seconds: default_timeout(),
            rollout_timeout_seconds: default_rollout(),
            build_values: default_build_values(),
            pull_secret: None,
            local: Profile::default(),
            ci: Profile::default(),
        }
    }
}

/// One profile (`local` or `ci`).
#[derive(Debug, Clone, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Profile {
    /// Release name template (variables: project, profile). Default `{{ project }}-test`.
    #[serde(default)]
    pub release: Option<String>,
    /// Namespace template (variables: project, profile). Default `{{ project }}-test-local`
    /// (local) / `{{ project }}-ci` (ci).
    #[serde(default)]
    pub namespace: Option<String>,
    /// `ci`: the published chart (`--chart`/`--chart-version` override it).
    #[serde(default)]
    pub chart: Option<super::live::LiveChart>,
    /// `ci`: published image references by image name (`--image NAME=REF` overrides), written to
    /// each image's `images.<name>.values` paths. Images not named keep the env's values.
    #[serde(default)]
    pub images: BTreeMap<String, String>,
}

/// Registry credentials, from the environment only (never from a file, never on argv).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PullSecret {
    /// The Secret's name. Default `stack-pull`.
    #[serde(default = "default_secret_name")]
    pub name: String,
    /// The registry host, e.g. `ghcr.io`.
    pub registry: String,
    /// The environment variable holding the user name.
    pub username_env: String,
    /// The environment variable holding the password or token.
    pub password_env: String,
}

fn default_jobs() -> usize {
    4
}

fn default_timeout() -> u64 {
    900
}

fn default_rollout() -> u64 {
    300
}

fn default_build_values() -> String {
    "global.build".into()
}

fn default_secret_name() -> String {
    "stack-pull".into()
}
