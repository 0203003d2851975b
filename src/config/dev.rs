//! `dev:` in stack.yaml — what `stack up` deploys for the inner loop.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Deserialize, JsonSchema)]
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
    /// In-process port-forwards while `stack up` runs.
    #[serde(default)]
    pub port_forwards: Vec<PortForwardConfig>,
    /// Follow the logs of every pod of the release. Default true.
    #[serde(default = "yes")]
    pub logs: bool,
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PortForwardConfig {
    /// `deployment/<name>` or `service/<name>`; a minijinja template over `release`, e.g.
    /// `deployment/{{ release }}-backend-api`.
    pub target: String,
    /// The port in the pod (or the Service's port).
    pub port: u16,
    /// The port on 127.0.0.1. Default: `port`; when taken, a free one is used (and said so).
    #[serde(default)]
    pub local_port: Option<u16>,
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

impl Default for DevConfig {
    fn default() -> Self {
        DevConfig {
            env: None,
            namespace: None,
            dotenv: None,
            port_forwards: Vec::new(),
            logs: true,
        }
    }
}

fn default_dotenv_file() -> String {
    ".env".into()
}
