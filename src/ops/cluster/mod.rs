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
pub mod ports;
pub mod registry;

use crate::config::cluster::Provider;
use crate::config::Project;
use crate::error::StackError;
use crate::kube::object::ObjectRef;
use crate::kube::KubeContext;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, Step, StepReport};
use crate::yaml::{self, Node};
use ::kube::config::Kubeconfig;
use registry::Registry;
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub use crate::tool::Host;

/// What the user asked for on the command line.
#[derive(Clone, Debug, Default)]
pub struct Options {
    /// Print the plan; change nothing.
    pub dry_run: bool,
    /// `--context`: must be the provider's own context (kind/k3d) or an allowed one (existing).
    pub context: Option<String>,
}

/// The cluster a project's configuration points at, fully resolved.
#[derive(Clone, Debug)]
pub struct Target {
    pub root: PathBuf,
    pub provider: Provider,
    pub name: String,
    pub context: String,
    /// `--kubeconfig` as passed (relative to the project root for clusters stack creates).
    pub kubeconfig: String,
    /// The provider's config file as written in stack.yaml (relative to the root), when present.
    pub config_file: Option<String>,
    /// Its parsed content, with origins for error messages.
    pub provider_config: Option<Node>,
    pub registry: Option<Registry>,
    pub allowlist: Vec<String>,
    pub node_labels: BTreeMap<String, String>,
}

impl Target {
    pub fn kubeconfig_path(&self) -> PathBuf {
        self.root.join(&self.kubeconfig)
    }

    /// Where this target's API calls go: its kubeconfig file and context.
    pub fn api(&self) -> KubeContext {
        KubeContext {
            kubeconfig: self.kubeconfig_path(),
            context: self.context.clone(),
        }
    }

    /// The record `up` writes before creating a cluster, so `down` deletes only what stack made.
    pub fn owned_marker(&self) -> PathBuf {
        crate::state::State::new(&self.root).cluster_record(&self.context)
    }

    /// The ownership record before its identity (`uid`) is filled in.
    pub fn owned_record(&self) -> serde_json::Value {
        serde_json::json!({
            "provider": provider_name(self.provider),
            "name": self.name,
            "context": self.context,
            "createdBy": "stack",
        })
    }

    /// Whether the kubeconfig file holds this target's context.
    pub fn kubeconfig_has_context(&self) -> bool {
        kubeconfig_contexts(&self.kubeconfig_path()).contains(&self.context)
    }

    fn config_origin(&self) -> Option<crate::yaml::Origin> {
        self.config_file.as_deref().map(crate::config::file_origin)
    }
}

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

pub fn provider_name(p: Provider) -> &'static str {
    match p {
        Provider::Kind => "kind",
        Provider::K3d => "k3d",
        Provider::Existing => "existing",
    }
}

/// The cluster and user entries (a context may name no user) a context names in a kubeconfig
/// file.
pub fn kubeconfig_context_entry(path: &Path, context: &str) -> Option<(String, Option<String>)> {
    let file = Kubeconfig::read_from(path).ok()?;
    let entry = file.contexts.into_iter().find(|c| c.name == context)?;
    let entry = entry.context?;
    Some((entry.cluster, entry.user))
}

/// Context names in a kubeconfig file (empty when it is missing or unreadable).
pub fn kubeconfig_contexts(path: &Path) -> Vec<String> {
    Kubeconfig::read_from(path)
        .map(|file| file.contexts.into_iter().map(|c| c.name).collect())
        .unwrap_or_default()
}

/// Reads the project's cluster section and the provider's config file into a [`Target`].
pub fn resolve(project: &Project, host: &Host, opts: &Options) -> Result<Target, StackError> {
    let c = &project.config.cluster;
    let root = project.root.clone();
    let default_file = match c.provider {
        Provider::Kind => Some("kind/cluster.yaml"),
        Provider::K3d => Some("k3d/cluster.yaml"),
        Provider::Existing => None,
    };
    let config_file = c.config.clone().or(default_file.map(str::to_owned));
    let provider_config = match (&config_file, c.provider) {
        (Some(f), Provider::Kind | Provider::K3d) => {
            let path = root.join(f);
            match std::fs::read_to_string(&path) {
                Ok(text) => Some(
                    yaml::parse(&Arc::from(f.as_str()), &text)
                        .map_err(StackError::from_parse)?
                        .root,
                ),
                Err(_) if c.config.is_none() => None,
                Err(e) => {
                    return Err(StackError::config(
                        None,
                        format!("cannot read cluster config {f}: {e}"),
                        "fix `cluster.config` in stack.yaml or create the file",
                    ))
                }
            }
        }
        _ => None,
    };
    let config_file = provider_config.as_ref().and(config_file);
    let json = provider_config.as_ref().map(|n| n.value.to_json());
    let file_name = json.as_ref().and_then(|j| match c.provider {
        Provider::Kind => j["name"].as_str().map(str::to_owned),
        Provider::K3d => j["metadata"]["name"].as_str().map(str::to_owned),
        Provider::Existing => None,
    });
    let allowlist = crate::release::allowlist::allowlist(&c.allowed_contexts);
    let (name, context, kubeconfig) = match c.provider {
        Provider::Kind | Provider::K3d => {
            let name = c
                .name
                .clone()
                .or(file_name)
                .unwrap_or_else(|| sanitize(&project.project_name()));
            let own = format!("{}-{name}", provider_name(c.provider));
            if let Some(flag) = &opts.context {
                if *flag != own {
                    return Err(StackError::Usage {
                        message: format!(
                            "--context {flag} does not match this project's {} cluster, whose context is `{own}`",
                            provider_name(c.provider)
                        ),
                        hint: Some(format!(
                            "drop --context, or use `--context {own}`; to use another cluster set `cluster.provider: existing`"
                        )),
                    });
                }
            }
            (name, own, crate::state::State::rel_kubeconfig())
        }
        Provider::Existing => {
            let Some(ctx) = opts.context.clone().or(c.context.clone()) else {
                return Err(StackError::config(
                    None,
                    "cluster.provider is `existing` but no context is named",
                    "set `cluster.context` (and list it in `cluster.allowedContexts`) or pass --context",
                ));
            };
            let name = c.name.clone().unwrap_or_else(|| ctx.clone());
            (name, ctx, host.user_kubeconfig.display().to_string())
        }
    };
    let registry = registry_for(c, &name, json.as_ref())?;
    Ok(Target {
        root,
        provider: c.provider,
        name,
        context,
        kubeconfig,
        config_file,
        provider_config,
        registry,
        allowlist,
        node_labels: c.node_labels.clone(),
    })
}

fn registry_for(
    c: &crate::config::cluster::ClusterConfig,
    cluster: &str,
    provider_json: Option<&serde_json::Value>,
) -> Result<Option<Registry>, StackError> {
    let port = c
        .registry
        .host_port
        .unwrap_or(crate::config::cluster::DEFAULT_REGISTRY_PORT);
    Ok(match c.provider {
        // Stack runs no registry for a cluster it did not create: only one the project names,
        // which the cluster pulls from.
        Provider::Existing => match (c.registry.enabled, c.registry.host_port) {
            (true, Some(host_port)) => Some(Registry {
                name: c
                    .registry
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("{cluster}-registry")),
                host_port,
                image: c.registry.image.clone(),
            }),
            _ => None,
        },
        Provider::Kind => c.registry.enabled.then(|| Registry {
            name: c
                .registry
                .name
                .clone()
                .unwrap_or_else(|| format!("{cluster}-registry")),
            host_port: port,
            image: c.registry.image.clone(),
        }),
        Provider::K3d => {
            // k3d's own `registries.create` wins; stack's registry settings fill in when absent.
            let create = provider_json.map(|j| &j["registries"]["create"]);
            match create.filter(|v| v.is_object()) {
                Some(cr) => Some(Registry {
                    name: cr["name"]
                        .as_str()
                        .map_or_else(|| format!("k3d-{cluster}-registry"), str::to_owned),
                    host_port: ports::host_port(
                        &cr["hostPort"],
                        "registries.create.hostPort",
                        None,
                    )?
                    .unwrap_or(0),
                    image: cr["image"].as_str().unwrap_or("registry:2").to_owned(),
                }),
                None => c.registry.enabled.then(|| Registry {
                    name: c
                        .registry
                        .name
                        .clone()
                        .unwrap_or_else(|| format!("k3d-{cluster}-registry")),
                    host_port: port,
                    image: c.registry.image.clone(),
                }),
            }
        }
    })
}

/// Cluster names are DNS labels.
fn sanitize(s: &str) -> String {
    let s: String = s
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .collect();
    s.trim_matches('-').to_owned()
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
