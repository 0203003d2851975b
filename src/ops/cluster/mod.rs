//! `stack cluster up | down | status`: the cluster `stack up` runs on.
//!
//! Providers: `kind` and `k3d` (their CLIs, config from `kind/` or `k3d/`), and `existing` (a
//! kubeconfig context the project allows). Every command names its kubeconfig file and context
//! (`kind-<name>`, `k3d-<name>`; the per-project `.stack/kubeconfig`): nothing uses the current
//! context. The cluster's own API (nodes, `/readyz`, its identity, the registry ConfigMap) is asked
//! through kube-rs; Docker through its API (`crate::docker`, the endpoint the docker CLI would
//! use: read while planning, changed by plan steps); the provider CLIs through the `Runner`. `up`
//! and `down` observe first (read-only calls), then build a plan of steps that `--dry-run` prints
//! and a normal run executes; running either twice does the work once. `down` removes only what
//! stack created: clusters it recorded in `.stack/clusters/` when it created them, and containers
//! carrying its Docker labels.
//!
//! Invariant: ops never print; every process goes through the `Runner` in [`Host`].

mod existing;
mod k3d;
mod kind;
pub use crate::cluster_target::ports;
pub mod registry;

use crate::config::cluster::Provider;
use crate::config::Project;
use crate::error::StackError;
use crate::kube::object::ObjectRef;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, Step, StepReport};
use registry::Registry;
use serde::Serialize;
use std::future::Future;

pub use crate::cluster_target::{
    kubeconfig_context_entry, kubeconfig_contexts, provider_name, resolve, Options, Target,
};
pub use crate::tool::Host;

/// The steps before a cluster is created: the record that stack creates it (so `down` deletes
/// only what stack made), then the provider config with stack's additions, when one is generated.
fn before_create(
    t: &Target,
    generated: Option<(String, String)>,
    why_generated: &str,
) -> Vec<Step> {
    generated
        .map(|(path, text)| Step::write(why_generated, t.root.join(path), text))
        .into_iter()
        .collect()
}

/// The ownership record, written only once the create succeeded (and the kubeconfig holds the
/// new context): after a failed create, a same-named cluster somebody else makes later is never
/// taken for stack's. It carries the cluster's identity — the UID of its `kube-system` namespace,
/// new with every cluster — read through the API, which `down` compares before deleting anything.
fn after_create(t: &Target) -> Step {
    Step::record_uid(
        format!(
            "record that stack created {} cluster {}, with its identity",
            provider_name(t.provider),
            t.name
        ),
        t.owned_marker(),
        t.owned_record(),
        "uid",
        t.api(),
        identity_object(),
    )
}

/// The object whose UID is a cluster's identity.
fn identity_object() -> ObjectRef {
    ObjectRef::new("v1", "Namespace", None, "kube-system")
}

/// Runs `f` with a client for the target's context on the process runtime. `Ok(Err(why))`: the
/// API server could not be asked or refused (one line, for reports); `Err`: the user cancelled.
fn ask<T, Fut>(
    t: &Target,
    what: &str,
    f: impl FnOnce(::kube::Client) -> Fut,
) -> Result<Result<T, String>, StackError>
where
    Fut: Future<Output = Result<T, ::kube::Error>>,
{
    let at = t.api();
    crate::rt::until_cancelled(what, async move {
        let client = at.client().await.map_err(|e| e.to_string())?;
        f(client)
            .await
            .map_err(|e| crate::kube::wait::api_message(&e))
    })
}

/// A kind/k3d command that failed. They run their nodes in Docker, so the daemon is asked through
/// its API whether it answers (what the command printed is not parsed): when it does not, that is
/// the cause (exit 3, naming the endpoint); otherwise the command's own failure.
fn provider_failed(
    host: &Host,
    tool: &str,
    cmd: &crate::tool::Cmd,
    out: &crate::tool::Output,
) -> anyhow::Error {
    match registry::Daemon::connect(host) {
        Err(StackError::Unreachable { what, hint }) => StackError::Unreachable {
            what,
            hint: format!("{tool} runs its nodes in Docker: {hint}"),
        }
        .into(),
        Err(e @ StackError::Cancelled { .. }) => e.into(),
        _ => anyhow::anyhow!(
            "`{cmd}` failed with exit status {}\n{}",
            out.status,
            out.stderr.trim_end()
        ),
    }
}

/// Whether the cluster `down` is about to delete is the one stack created.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Ownership {
    /// Recorded, and (when it exists) the identity matches.
    Ours,
    /// No record: stack did not create it (in this project).
    NotRecorded,
    /// Recorded, but the cluster there now has another identity (deleted and re-created outside
    /// stack): the record is stale.
    Replaced { recorded: String, found: String },
    /// Recorded, but the identity cannot be read now (API server down): nothing is deleted.
    Unverified(String),
}

impl Ownership {
    /// Why a cluster that exists is kept, for `down`'s report.
    pub(crate) fn kept_reason(&self, t: &Target) -> String {
        match self {
            Ownership::Ours => String::new(),
            Ownership::NotRecorded => format!(
                "not created by stack in this project (no {})",
                t.owned_marker()
                    .strip_prefix(&t.root)
                    .unwrap_or(&t.owned_marker())
                    .display()
            ),
            Ownership::Replaced { recorded, found } => format!(
                "not the cluster stack created: its kube-system UID is {found}, stack recorded {recorded} (it was re-created outside stack)"
            ),
            Ownership::Unverified(why) => format!(
                "cannot check that it is the cluster stack created ({why}); start it and run `stack cluster down` again"
            ),
        }
    }
}

/// Reads the ownership record and, when the cluster exists, compares its identity.
pub(crate) fn ownership(t: &Target, exists: bool) -> anyhow::Result<Ownership> {
    let Ok(text) = std::fs::read_to_string(t.owned_marker()) else {
        return Ok(Ownership::NotRecorded);
    };
    if !exists {
        return Ok(Ownership::Ours);
    }
    let recorded = serde_json::from_str::<serde_json::Value>(&text)
        .ok()
        .and_then(|v| v["uid"].as_str().map(str::to_owned));
    let Some(recorded) = recorded else {
        return Ok(Ownership::Unverified(format!(
            "{} records no identity",
            t.owned_marker().display()
        )));
    };
    let identity = identity_object();
    let found = match ask(t, "reading the cluster's identity", |c| async move {
        crate::kube::object::uid(c, &identity).await
    })? {
        Ok(found) if !found.is_empty() => found,
        Ok(_) => return Ok(Ownership::Unverified("kube-system has no uid".into())),
        Err(why) => return Ok(Ownership::Unverified(why)),
    };
    Ok(if found == recorded {
        Ownership::Ours
    } else {
        Ownership::Replaced { recorded, found }
    })
}

/// What `up` or `down` did, or would do under `--dry-run`.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ChangeReport {
    pub command: &'static str,
    pub provider: &'static str,
    pub name: String,
    pub context: String,
    pub kubeconfig: String,
    pub dry_run: bool,
    /// The changes, in order (empty: everything was already as wanted).
    pub steps: Vec<StepReport>,
    /// Things found and deliberately left alone, with why.
    pub kept: Vec<String>,
    pub notes: Vec<String>,
}

impl ChangeReport {
    fn new(command: &'static str, t: &Target, dry_run: bool) -> Self {
        ChangeReport {
            command,
            provider: provider_name(t.provider),
            name: t.name.clone(),
            context: t.context.clone(),
            kubeconfig: t.kubeconfig.clone(),
            dry_run,
            steps: Vec::new(),
            kept: Vec::new(),
            notes: Vec::new(),
        }
    }
}

/// What `status` found.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub provider: &'static str,
    pub name: String,
    pub context: String,
    pub kubeconfig: String,
    /// Whether mutating commands may act on this context.
    pub context_allowed: bool,
    pub allowlist: Vec<String>,
    /// Whether the kubeconfig file holds the context.
    pub context_in_kubeconfig: bool,
    pub exists: bool,
    /// `None` when not checked (no cluster or no credentials).
    pub reachable: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    pub nodes: Vec<NodeStatus>,
    pub registry: Option<RegistryStatus>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct NodeStatus {
    pub name: String,
    pub role: String,
    /// `Ready` condition (Kubernetes) or container running (k3d list); `None` when unknown.
    pub ready: Option<bool>,
}

#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RegistryStatus {
    pub name: String,
    pub host: String,
    pub exists: bool,
    pub running: bool,
    pub owned_by_stack: bool,
    pub networks: Vec<String>,
    pub ports: Vec<String>,
}

impl RegistryStatus {
    fn from(reg: &Registry, c: Option<&registry::Container>) -> Self {
        RegistryStatus {
            name: reg.name.clone(),
            host: reg.host(),
            exists: c.is_some(),
            running: c.is_some_and(|c| c.running),
            owned_by_stack: c.is_some_and(|c| c.owned_by_stack()),
            networks: c.map(|c| c.networks.clone()).unwrap_or_default(),
            ports: c.map(|c| c.ports.clone()).unwrap_or_default(),
        }
    }
}

impl StatusReport {
    fn new(t: &Target) -> Self {
        StatusReport {
            provider: provider_name(t.provider),
            name: t.name.clone(),
            context: t.context.clone(),
            kubeconfig: t.kubeconfig.clone(),
            context_allowed: crate::release::allowlist::is_allowed(&t.context, &t.allowlist),
            allowlist: t.allowlist.clone(),
            context_in_kubeconfig: kubeconfig_contexts(&t.root.join(&t.kubeconfig))
                .contains(&t.context),
            exists: false,
            reachable: None,
            problem: None,
            nodes: Vec::new(),
            registry: None,
        }
    }
}

/// `stack cluster up`.
pub fn up(
    project: &Project,
    host: &Host,
    opts: &Options,
    sink: &dyn Sink,
) -> anyhow::Result<ChangeReport> {
    let t = resolve(project, host, opts)?;
    crate::release::allowlist::check(&t.context, &t.allowlist, "create or change a cluster")?;
    let mut report = ChangeReport::new("up", &t, opts.dry_run);
    let steps = match t.provider {
        Provider::Kind => kind::plan_up(&t, host, &mut report)?,
        Provider::K3d => k3d::plan_up(&t, host, &mut report)?,
        Provider::Existing => existing::plan_up(&t, host, &mut report)?,
    };
    finish(steps, host, opts, report, sink)
}

/// `stack cluster down`.
pub fn down(
    project: &Project,
    host: &Host,
    opts: &Options,
    sink: &dyn Sink,
) -> anyhow::Result<ChangeReport> {
    let t = resolve(project, host, opts)?;
    crate::release::allowlist::check(&t.context, &t.allowlist, "delete a cluster")?;
    let mut report = ChangeReport::new("down", &t, opts.dry_run);
    let steps = match t.provider {
        Provider::Kind => kind::plan_down(&t, host, &mut report)?,
        Provider::K3d => k3d::plan_down(&t, host, &mut report)?,
        Provider::Existing => {
            report.notes.push(format!(
                "provider `existing`: stack did not create `{}`, so down removes nothing",
                t.context
            ));
            Vec::new()
        }
    };
    finish(steps, host, opts, report, sink)
}

/// `stack cluster status` (read-only; any explicit context may be inspected).
pub fn status(project: &Project, host: &Host, opts: &Options) -> anyhow::Result<StatusReport> {
    let t = resolve(project, host, opts)?;
    match t.provider {
        Provider::Kind => kind::status(&t, host),
        Provider::K3d => k3d::status(&t, host),
        Provider::Existing => existing::status(&t, host),
    }
}

fn finish(
    steps: Vec<Step>,
    host: &Host,
    opts: &Options,
    mut report: ChangeReport,
    sink: &dyn Sink,
) -> anyhow::Result<ChangeReport> {
    let exec = Exec::new(host.runner, sink, opts.dry_run);
    let result = exec.execute(&steps);
    report.steps = exec.steps();
    result.map(|()| report)
}

/// Readiness and roles of the nodes, listed through the API. `Err` says why they could not be.
fn kube_nodes(t: &Target) -> Result<Result<Vec<NodeStatus>, String>, StackError> {
    use k8s_openapi::api::core::v1::Node;
    let listed = ask(t, "listing the cluster's nodes", |c| async move {
        ::kube::Api::<Node>::all(c).list(&Default::default()).await
    })?;
    Ok(listed.map(|list| {
        list.items
            .into_iter()
            .map(|n| {
                let role = n
                    .metadata
                    .labels
                    .iter()
                    .flat_map(|l| l.keys())
                    .find_map(|k| k.strip_prefix("node-role.kubernetes.io/"))
                    .map_or_else(|| "worker".to_owned(), str::to_owned);
                let ready = n
                    .status
                    .iter()
                    .flat_map(|s| s.conditions.iter().flatten())
                    .find(|c| c.type_ == "Ready")
                    .map(|c| c.status == "True");
                NodeStatus {
                    name: n.metadata.name.unwrap_or_default(),
                    role,
                    ready,
                }
            })
            .collect()
    }))
}

/// The provider config with stack's additions (JSON is YAML), relative to the project root.
fn generated_config_path(t: &Target) -> String {
    crate::state::State::rel_provider_config(provider_name(t.provider), &t.name)
}
