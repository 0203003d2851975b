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
    /// Keep it in this ConfigMap (for charts that mount a ConfigMap). Values are usually tokens:
    /// prefer `secret`.
    #[serde(default)]
    pub config_map: Option<String>,
    /// Keep it in this Secret (the default: `<project>-env` when neither is named).
    #[serde(default)]
    pub secret: Option<String>,
}

/// Where `.env` is kept in the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DotenvTarget {
    ConfigMap(String),
    Secret(String),
}

impl DotenvTarget {
    /// `configmap/<name>` or `secret/<name>`.
    pub fn display(&self) -> String {
        match self {
            DotenvTarget::ConfigMap(n) => format!("configmap/{n}"),
            DotenvTarget::Secret(n) => format!("secret/{n}"),
        }
    }
}

impl DotenvConfig {
    /// The object to keep `.env` in; naming both a ConfigMap and a Secret is an error.
    pub fn target(&self, project: &str) -> Result<DotenvTarget, crate::error::StackError> {
        match (&self.config_map, &self.secret) {
            (Some(_), Some(_)) => Err(crate::error::StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                "dev.dotenv names both a configMap and a secret",
                "keep one: `secret` for values that are tokens (the default), `configMap` only when the chart mounts a ConfigMap",
            )),
            (Some(c), None) => Ok(DotenvTarget::ConfigMap(c.clone())),
            (None, Some(s)) => Ok(DotenvTarget::Secret(s.clone())),
            (None, None) => Ok(DotenvTarget::Secret(format!("{project}-env"))),
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotenv_goes_to_a_secret_unless_a_config_map_is_named() {
        let cfg = |v: serde_json::Value| -> DotenvConfig { serde_json::from_value(v).unwrap() };
        assert_eq!(
            cfg(serde_json::json!({})).target("shop").unwrap(),
            DotenvTarget::Secret("shop-env".into())
        );
        assert_eq!(
            cfg(serde_json::json!({"secret": "s"}))
                .target("shop")
                .unwrap(),
            DotenvTarget::Secret("s".into())
        );
        assert_eq!(
            cfg(serde_json::json!({"configMap": "app-env"}))
                .target("shop")
                .unwrap()
                .display(),
            "configmap/app-env"
        );
        assert!(cfg(serde_json::json!({"configMap": "a", "secret": "b"}))
            .target("shop")
            .is_err());
    }
}
