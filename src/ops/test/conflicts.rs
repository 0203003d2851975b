//! Helm ownership conflicts, found before anything changes: `helm template` renders what the
//! release would own; each object that already exists must carry this release's
//! `meta.helm.sh/release-name` and `meta.helm.sh/release-namespace` annotations, or helm's
//! upgrade fails half-way ("exists and cannot be imported into the current release"). Each
//! conflict names the object, its current owner and the fix — nothing is deleted.

use super::profile::Plan;
use super::pull::RegistryLogin;
use crate::error::StackError;
use crate::release::Release;
use crate::tool::Host;
use ::kube::api::{Api, DynamicObject};
use ::kube::discovery::{self, Scope};
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Clone, Debug, Serialize)]
pub struct Conflict {
    /// `configmap test-ns/settings`.
    pub object: String,
    /// `release other in namespace x`, or `not managed by Helm`.
    pub owner: String,
    pub fix: String,
}

/// The objects the release would own, as `helm template` renders them (hooks included).
pub fn render(
    rel: &Release,
    plan: &Plan,
    registry: &RegistryLogin,
    host: &Host,
) -> Result<Vec<serde_json::Value>, StackError> {
    let cmd = registry.helm_env(plan.template_cmd(rel));
    let out = host.runner.run(&cmd).map_err(|e| {
        StackError::tool(
            e,
            "`stack validate envs --helm` reproduces template errors offline",
        )
    })?;
    crate::release::manifest::objects(&out.stdout, "helm template")
}

/// Objects of `manifests` that exist without belonging to `release` in `namespace`.
pub async fn find(
    client: &::kube::Client,
    manifests: &[serde_json::Value],
    release: &str,
    namespace: &str,
) -> Result<Vec<Conflict>, StackError> {
    let mut resources = BTreeMap::new();
    let mut out = Vec::new();
    for m in manifests {
        let api_version = m["apiVersion"].as_str().unwrap_or_default();
        let kind = m["kind"].as_str().unwrap_or_default();
        let Some(name) = m["metadata"]["name"].as_str() else {
            continue;
        };
        let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
        let gvk = ::kube::api::GroupVersionKind::gvk(group, version, kind);
        let key = format!("{api_version}/{kind}");
        if !resources.contains_key(&key) {
            // A kind the server does not know (a CRD the chart installs) cannot conflict yet.
            let found = discovery::pinned_kind(client, &gvk).await.ok();
            resources.insert(key.clone(), found);
        }
        let Some((resource, caps)) = &resources[&key] else {
            continue;
        };
        let ns = m["metadata"]["namespace"].as_str().unwrap_or(namespace);
        let api: Api<DynamicObject> = match caps.scope {
            Scope::Namespaced => Api::namespaced_with(client.clone(), ns, resource),
            Scope::Cluster => Api::all_with(client.clone(), resource),
        };
        let live = api
            .get_opt(name)
            .await
            .map_err(|e| StackError::Unreachable {
                what: format!("the cluster (reading {kind} {name})"),
                hint: crate::kube::wait::api_message(&e),
            })?;
        let Some(live) = live else { continue };
        let annotations = live.metadata.annotations.clone().unwrap_or_default();
        let owner_release = annotations.get("meta.helm.sh/release-name");
        let owner_ns = annotations.get("meta.helm.sh/release-namespace");
        if owner_release.map(String::as_str) == Some(release)
            && owner_ns.map(String::as_str) == Some(namespace)
        {
            continue;
        }
        let shown = match caps.scope {
            Scope::Namespaced => format!("{} {ns}/{name}", kind.to_ascii_lowercase()),
            Scope::Cluster => format!("{} {name}", kind.to_ascii_lowercase()),
        };
        let (owner, fix) = match (owner_release, owner_ns) {
            (Some(r), Some(n)) => (
                format!("helm release `{r}` in namespace `{n}`"),
                "another release owns it: uninstall that release, or give this test release another name/namespace (test.<profile>.release / .namespace)".to_owned(),
            ),
            _ => (
                "not managed by Helm".to_owned(),
                format!(
                    "if it may be replaced, delete it; to let this release adopt it: `kubectl annotate {kind_l} {name}{nsflag} meta.helm.sh/release-name={release} meta.helm.sh/release-namespace={namespace}` and `kubectl label {kind_l} {name}{nsflag} app.kubernetes.io/managed-by=Helm`",
                    kind_l = kind.to_ascii_lowercase(),
                    nsflag = if caps.scope == Scope::Namespaced { format!(" -n {ns}") } else { String::new() },
                ),
            ),
        };
        out.push(Conflict {
            object: shown,
            owner,
            fix,
        });
    }
    Ok(out)
}
