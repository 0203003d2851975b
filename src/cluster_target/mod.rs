//! The cluster a project's configuration points at, resolved once for every stage that needs it
//! (`cluster`, `build --deliver`, `up`, `down`, `doctor`, and later preview and live): provider,
//! name, context, kubeconfig, the provider's config file, its registry and the context allowlist.
//! Below the stages: no stage reaches into another to learn where its cluster is.

pub mod ports;

use crate::config::cluster::Provider;
use crate::config::Project;
use crate::error::StackError;
use crate::kube::KubeContext;
use crate::tool::Host;
use crate::yaml::{self, Node};
use ::kube::config::Kubeconfig;
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

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

    pub fn config_origin(&self) -> Option<crate::yaml::Origin> {
        self.config_file.as_deref().map(crate::config::file_origin)
    }
}

/// A registry stack runs next to a cluster.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Registry {
    /// Container name (also its host name on the cluster network).
    pub name: String,
    /// Host port on 127.0.0.1.
    pub host_port: u16,
    pub image: String,
}

impl Registry {
    /// How nodes and users address it: `localhost:<port>`.
    pub fn host(&self) -> String {
        format!("localhost:{}", self.host_port)
    }
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
    // The local defaults (`kind-*`, `k3d-*`) cover the clusters stack creates, whose contexts live
    // in stack's own kubeconfig; a context of the user's kubeconfig (`existing`) must be listed —
    // a `kind-prod` there is somebody's cluster, not stack's.
    let allowlist = match c.provider {
        Provider::Existing => c.allowed_contexts.clone(),
        Provider::Kind | Provider::K3d => crate::release::allowlist::allowlist(&c.allowed_contexts),
    };
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
