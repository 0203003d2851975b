//! The YAML model of a check, as written in stack.yaml `test.checks` and in check files
//! (`test.files`). One key names the kind (`ready`, `assert`, `absent`, `http`, `logs`,
//! `command`, `job`); exactly one must be present (`check::load` enforces it at file:line:col).

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// One declared check.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CheckSpec {
    /// Unique name: the JUnit testcase name and what `needs:` refers to.
    pub name: String,
    /// How long the check may take: `30s`, `2m`, `1m30s`, `500ms`, or a number of seconds.
    /// Default 60s. Polled kinds (ready, assert, absent, http, logs) retry until then.
    #[serde(default)]
    pub timeout: Option<DurationSpec>,
    /// Checks that must pass first (by name); when one does not, this one is skipped.
    #[serde(default)]
    pub needs: Vec<String>,
    /// Also run by `stack live verify` (against the live host, no port-forwards).
    #[serde(default)]
    pub live: bool,
    /// A resource is ready as kstatus judges it: `deployment/api`, or `{kind, selector}`.
    #[serde(default)]
    pub ready: Option<ReadySpec>,
    /// A partial object the live object must contain (apiVersion, kind, metadata.name required).
    #[serde(default)]
    pub assert: Option<serde_json::Value>,
    /// An object that must not exist (apiVersion, kind, metadata.name).
    #[serde(default)]
    pub absent: Option<serde_json::Value>,
    #[serde(default)]
    pub http: Option<HttpSpec>,
    #[serde(default)]
    pub logs: Option<LogsSpec>,
    #[serde(default)]
    pub command: Option<CommandSpec>,
    #[serde(default)]
    pub job: Option<JobSpec>,
}

/// A duration as people write it (`30s`, `2m`, `1m30s`, `500ms`) or a number of seconds.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum DurationSpec {
    Seconds(u64),
    Text(String),
}

/// `kind/name` (`deployment/api`, `job/migrate`, `pvc/data`, `service/api`), or every object of a
/// kind matching a label selector.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum ReadySpec {
    Ref(String),
    Select(ReadySelect),
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ReadySelect {
    /// Deployment, StatefulSet, DaemonSet, Job, Pod, PersistentVolumeClaim (pvc), Service.
    pub kind: String,
    /// Label selector, e.g. `app.kubernetes.io/name=api`. At least one object must match.
    pub selector: String,
}

/// An HTTP (or WebSocket) request, retried until the expectation holds or the timeout.
/// The target is one of: `url` (http, https, ws, wss — templated), `forward` (a named
/// `test.forwards` entry), or `service`/`deployment` + `port` (an in-process port-forward).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpSpec {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub forward: Option<String>,
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub deployment: Option<String>,
    /// The Service's port (or the container port of a Deployment).
    #[serde(default)]
    pub port: Option<u16>,
    /// Path and query, appended to a forward's address. Default `/`.
    #[serde(default)]
    pub path: Option<String>,
    /// Default GET.
    #[serde(default)]
    pub method: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: Option<String>,
    /// Send a WebSocket upgrade (implied by a `ws://`/`wss://` url); expects 101 by default.
    #[serde(default)]
    pub websocket: bool,
    #[serde(default)]
    pub expect: HttpExpect,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct HttpExpect {
    /// Accepted statuses: numbers, `2xx`-style classes, or ranges `200-299`. Default `2xx`
    /// (101 for WebSocket).
    #[serde(default)]
    pub status: Vec<StatusSpec>,
    /// The body contains this text.
    #[serde(default)]
    pub contains: Option<String>,
    /// The body matches this regex.
    #[serde(default)]
    pub regex: Option<String>,
    /// JSON pointer → the value it must equal, e.g. `/status: ok`.
    #[serde(default)]
    pub json: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(untagged)]
pub enum StatusSpec {
    Code(u16),
    Text(String),
}

/// A regex appears in the logs of the selected containers since the deploy.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LogsSpec {
    /// Label selector of the pods, e.g. `app.kubernetes.io/name=api`.
    pub selector: String,
    /// The container (init containers and sidecars included); default: every container.
    #[serde(default)]
    pub container: Option<String>,
    pub regex: String,
}

/// A local command (the team's own suite); its exit code is the verdict.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CommandSpec {
    /// The argv, e.g. `[go, test, ./tests/e2e]`.
    pub run: Vec<String>,
    /// Working directory relative to the project root. Default: the root.
    #[serde(default)]
    pub dir: Option<String>,
    /// Environment, as minijinja templates over `forwards.<name>.url` / `.ws` / `.port`,
    /// `release`, `namespace`, and `env.<VAR>` (the process environment; such values are
    /// masked in every output).
    #[serde(default)]
    pub env: BTreeMap<String, String>,
}

/// A Job or Pod run in the test namespace; its exit code is the verdict, its logs are kept.
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct JobSpec {
    /// A manifest file (a Job or a Pod), relative to the project root.
    #[serde(default)]
    pub file: Option<String>,
    /// The manifest inline.
    #[serde(default)]
    pub manifest: Option<serde_json::Value>,
}

/// A port-forward the checks share by name (`test.forwards.api`).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ForwardSpec {
    #[serde(default)]
    pub service: Option<String>,
    #[serde(default)]
    pub deployment: Option<String>,
    pub port: u16,
}
