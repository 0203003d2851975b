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
    /// A ConfigMap kept equal to a local `.env`-style file (created, and resynced on change).
    #[serde(default)]
    pub dotenv: Option<DotenvConfig>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DotenvConfig {
    /// The file, relative to the project root. Default `.env`; a missing file means an empty map.
    #[serde(default = "default_dotenv_file")]
    pub file: String,
    /// The ConfigMap's name in the dev namespace.
    pub config_map: String,
}

fn default_dotenv_file() -> String {
    ".env".into()
}
