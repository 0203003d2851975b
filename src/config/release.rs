//! `release:` in stack.yaml — where `stack release` publishes the chart (`oci://…`), how its git
//! tag is named, whether `appVersion` follows the version, and the names of the environment
//! variables holding the registry credentials (never the credentials themselves).

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReleaseConfig {
    /// Where the chart is pushed: `oci://REGISTRY/PATH` (the chart's name is appended, as
    /// `helm push` does). `--registry` overrides it.
    #[serde(default)]
    pub registry: Option<String>,
    /// The registry speaks plain HTTP (a local test registry): helm gets `--plain-http`.
    #[serde(default)]
    pub plain_http: bool,
    /// The git tag of a release (minijinja; variable: version). Default `v{{ version }}`.
    #[serde(default = "default_tag_template")]
    pub tag_template: String,
    /// Set Chart.yaml `appVersion` to the released version too. Default true.
    #[serde(default = "yes")]
    pub app_version: bool,
    /// The environment variable holding the registry user name.
    #[serde(default)]
    pub username_env: Option<String>,
    /// The environment variable holding the registry password or token (given to `helm registry
    /// login` on stdin, never on argv).
    #[serde(default)]
    pub password_env: Option<String>,
}

impl Default for ReleaseConfig {
    fn default() -> Self {
        ReleaseConfig {
            registry: None,
            plain_http: false,
            tag_template: default_tag_template(),
            app_version: true,
            username_env: None,
            password_env: None,
        }
    }
}

fn default_tag_template() -> String {
    "v{{ version }}".into()
}

fn yes() -> bool {
    true
}
