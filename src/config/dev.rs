//! `dev:` in stack.yaml — what `stack up` deploys for the inner loop.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DevConfig {
    /// The env target `stack up` deploys (as `stack validate envs` names it). Default `local/dev`,
    /// else the only `local/*` target.
    #[serde(default)]
    pub env: Option<String>,
    /// Namespace of the dev release. Default: the project name.
    #[serde(default)]
    pub namespace: Option<String>,
}
