//! `job` checks: a Job or a Pod from a manifest (a file under the project root, or inline) is
//! created in the test namespace under a generated name, watched until it ends, and deleted; its
//! exit code is the verdict and its containers' logs are the evidence.
//!
//! The check's object runs once: a Job without `backoffLimit` gets 0 and a Pod without
//! `restartPolicy` gets `Never`, so a failing command fails the check instead of being retried
//! until the timeout. Only the object the check created (its generated name and uid) is deleted.

use super::spec::JobSpec;
use super::{Ctx, Finished};
use crate::kube::wait::api_message;
use ::kube::api::{
    Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams,
    PostParams, Preconditions,
};
use ::kube::ResourceExt;
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Log lines kept per container.
const LOG_LINES: i64 = 200;
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Job,
    Pod,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Job => "job",
            Kind::Pod => "pod",
        }
    }
}

pub async fn run(spec: &JobSpec, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let manifest = match manifest(spec, ctx) {
        Ok(m) => m,
        Err(message) => return Finished::error(message),
    };
    let (kind, object) = match prepare(manifest, &ctx.namespace) {
        Ok(p) => p,
        Err(message) => return Finished::error(message),
    };
    let resource = match kind {
        Kind::Job => ApiResource::from_gvk(&GroupVersionKind::gvk("batch", "v1", "Job")),
        Kind::Pod => ApiResource::from_gvk(&GroupVersionKind::gvk("", "v1", "Pod")),
    };
    let api: Api<DynamicObject> =
        Api::namespaced_with(ctx.client.clone(), &ctx.namespace, &resource);
    let object: DynamicObject = match serde_json::from_value(object) {
        Ok(o) => o,
        Err(e) => return Finished::error(format!("job: the manifest is not an object: {e}")),
    };
    let params = PostParams {
        field_manager: Some(crate::kube::object::FIELD_MANAGER.to_owned()),
        ..PostParams::default()
    };
    let created = match api.create(&params, &object).await {
        Ok(o) => o,
        Err(e) => {
            return Finished::error(format!(
                "job: the API server refused the {}: {}",
                kind.name(),
                api_message(&e)
            ))
        }
    };
    let guard = Created {
        api: api.clone(),
        name: created.name_any(),
        uid: created.uid().unwrap_or_default(),
        deleted: false,
    };
    let finished = watch(kind, &guard.name, &guard.uid, ctx, deadline, timeout).await;
    guard.delete().await;
    finished
}

/// The manifest as JSON: the file (YAML, relative to the project root) or the inline one.
fn manifest(spec: &JobSpec, ctx: &Ctx) -> Result<Value, String> {
    if let Some(m) = &spec.manifest {
        return Ok(m.clone());
    }
    let file = spec.file.as_deref().unwrap_or_default();
    let text = std::fs::read_to_string(ctx.root.join(file))
        .map_err(|e| format!("job: cannot read {file}: {e}"))?;
    let name: Arc<str> = Arc::from(file);
    let doc = crate::yaml::parse(&name, &text).map_err(|e| {
        format!(
            "job: {}:{}:{}: {}",
            e.file, e.pos.line, e.pos.col, e.message
        )
    })?;
    Ok(doc.root.value.to_json())
}

/// The object to create: a generated name from the manifest's, stack's labels, the test
/// namespace, no retries unless the manifest asks for them.
fn prepare(mut manifest: Value, namespace: &str) -> Result<(Kind, Value), String> {
    let kind = match (manifest["apiVersion"].as_str(), manifest["kind"].as_str()) {
        (Some("batch/v1"), Some("Job")) => Kind::Job,
        (Some("v1"), Some("Pod")) => Kind::Pod,
        (api_version, kind) => {
            return Err(format!(
                "job: the manifest is {} {}, not a Job (batch/v1) or a Pod (v1)",
                api_version.unwrap_or("(no apiVersion)"),
                kind.unwrap_or("(no kind)")
            ))
        }
    };
    if !manifest["metadata"].is_object() {
        manifest["metadata"] = json!({});
    }
    let metadata = &mut manifest["metadata"];
    let base = metadata["name"]
        .as_str()
        .or_else(|| metadata["generateName"].as_str())
        .map(|n| n.trim_end_matches('-').to_owned())
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "check".to_owned());
    let meta = metadata.as_object_mut().expect("metadata is a map");
    for key in [
        "name",
        "uid",
        "resourceVersion",
        "creationTimestamp",
        "managedFields",
    ] {
        meta.remove(key);
    }
    meta.insert("generateName".into(), json!(format!("{base}-")));
    meta.insert("namespace".into(), json!(namespace));
    if !meta.get("labels").is_some_and(Value::is_object) {
        meta.insert("labels".into(), json!({}));
    }
    let labels = meta["labels"].as_object_mut().expect("labels is a map");
    labels.insert("dev.stack.owned".into(), json!("true"));
    labels.insert("dev.stack.check".into(), json!(label_value(&base)));
    match kind {
        Kind::Job => {
            if !manifest["spec"].is_object() {
                return Err("job: the Job has no `spec`".into());
            }
            if manifest["spec"]["backoffLimit"].is_null() {
                manifest["spec"]["backoffLimit"] = json!(0);
            }
            // Its pods carry the same labels, so `-l dev.stack.check=…` finds them too.
            let template = &mut manifest["spec"]["template"];
            if template.is_object() {
                if !template["metadata"].is_object() {
                    template["metadata"] = json!({});
                }
                if !template["metadata"]["labels"].is_object() {
                    template["metadata"]["labels"] = json!({});
                }
                let labels = template["metadata"]["labels"]
                    .as_object_mut()
                    .expect("a map");
                labels.insert("dev.stack.owned".into(), json!("true"));
                labels.insert("dev.stack.check".into(), json!(label_value(&base)));
            }
        }
        Kind::Pod => {
            if !manifest["spec"].is_object() {
                return Err("job: the Pod has no `spec`".into());
            }
            if manifest["spec"]["restartPolicy"].is_null() {
                manifest["spec"]["restartPolicy"] = json!("Never");
            }
        }
    }
    Ok((kind, manifest))
}

/// A label value: at most 63 characters of `[A-Za-z0-9._-]`, starting and ending alphanumeric.
fn label_value(text: &str) -> String {
    let mapped: String = text
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(63)
        .collect();
    mapped
        .trim_matches(|c: char| !c.is_ascii_alphanumeric())
        .to_owned()
}

/// What one look at the created object found.
enum Seen {
    Ended(Finished),
    /// Still running: what it is doing.
    Running(String),
    /// Could not look.
    Unknown(String),
}

/// Looks until the object ends or `deadline` passes.
async fn watch(
    kind: Kind,
    name: &str,
    uid: &str,
    ctx: &Ctx,
    deadline: Instant,
    timeout: Duration,
) -> Finished {
    let label = format!("{}/{name}", kind.name());
    let mut pause = FIRST_PAUSE;
    loop {
        let last = match look(kind, name, uid, ctx).await {
            Seen::Ended(f) => return f,
            Seen::Running(message) => message,
            Seen::Unknown(why) => format!("{label}: {why}"),
        };
        let now = Instant::now();
        if now >= deadline {
            return Finished::timed_out(
                format!("{last} (no verdict within {})", super::seconds(timeout)),
                "",
            );
        }
        tokio::time::sleep(pause.min(deadline - now)).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

async fn look(kind: Kind, name: &str, uid: &str, ctx: &Ctx) -> Seen {
    let pods_api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    match kind {
        Kind::Job => {
            let jobs: Api<Job> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
            let job = match jobs.get_opt(name).await {
                Ok(Some(j)) if j.uid().as_deref() == Some(uid) => j,
                Ok(_) => return Seen::Ended(Finished::error(format!("job/{name} disappeared"))),
                Err(e) => return Seen::Unknown(api_message(&e)),
            };
            let pods = match pods_api
                .list(
                    &ListParams::default()
                        .labels(&format!("batch.kubernetes.io/controller-uid={uid}")),
                )
                .await
            {
                Ok(l) => l.items,
                Err(e) => return Seen::Unknown(api_message(&e)),
            };
            judge_job(&job, &pods, &pods_api).await
        }
        Kind::Pod => {
            let pod = match pods_api.get_opt(name).await {
                Ok(Some(p)) if p.uid().as_deref() == Some(uid) => p,
                Ok(_) => return Seen::Ended(Finished::error(format!("pod/{name} disappeared"))),
                Err(e) => return Seen::Unknown(api_message(&e)),
            };
            judge_pod(&pod, &pods_api).await
        }
    }
}

async fn judge_job(job: &Job, pods: &[Pod], pods_api: &Api<Pod>) -> Seen {
    let label = format!("job/{}", job.name_any());
    let conditions = job
        .status
        .as_ref()
        .and_then(|s| s.conditions.clone())
        .unwrap_or_default();
    let holds = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    };
    if holds("Complete").is_some() {
        return Seen::Ended(Finished::passed(format!("{label} completed")));
    }
    // FailureTarget comes first (the Job will fail once its pods have ended); wait for Failed so
    // the pods' final statuses and logs are there.
    if let Some(c) = holds("Failed") {
        let why = match pods.iter().find_map(exit) {
            Some(exit) => exit,
            None => [c.reason.as_deref(), c.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": "),
        };
        return Seen::Ended(Finished::failed(
            format!("{label} failed: {why}"),
            logs(pods, pods_api).await,
        ));
    }
    let status = job.status.clone().unwrap_or_default();
    let mut message = format!(
        "{label}: {} active, {} succeeded, {} failed",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    );
    for p in pods {
        message.push_str(&format!("; {}", pod_state(p)));
    }
    Seen::Running(message)
}

async fn judge_pod(pod: &Pod, pods_api: &Api<Pod>) -> Seen {
    let label = format!("pod/{}", pod.name_any());
    match pod.status.as_ref().and_then(|s| s.phase.as_deref()) {
        Some("Succeeded") => Seen::Ended(Finished::passed(format!("{label} completed"))),
        Some("Failed") => {
            let why = exit(pod)
                .or_else(|| pod.status.as_ref()?.reason.clone())
                .unwrap_or_else(|| "Failed".into());
            Seen::Ended(Finished::failed(
                format!("{label} failed: {why}"),
                logs(std::slice::from_ref(pod), pods_api).await,
            ))
        }
        _ => Seen::Running(pod_state(pod)),
    }
}

/// `exited 1` (with the container's name when the pod has several) for the first container that
/// ended non-zero.
fn exit(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    let containers: Vec<_> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    let several = containers.len() > 1;
    containers.into_iter().find_map(|cs| {
        let t = cs.state.as_ref()?.terminated.as_ref()?;
        (t.exit_code != 0).then(|| {
            let mut s = if several {
                format!("container {} exited {}", cs.name, t.exit_code)
            } else {
                format!("exited {}", t.exit_code)
            };
            if let Some(reason) = t.reason.as_deref().filter(|r| *r != "Error") {
                let _ = write!(s, " ({reason})");
            }
            s
        })
    })
}

/// `pod/x: Pending (ImagePullBackOff: ...)`.
fn pod_state(pod: &Pod) -> String {
    let phase = pod
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    let mut s = format!("pod/{}: {phase}", pod.name_any());
    for f in crate::kube::classify::pod_failures(pod) {
        let _ = write!(s, " ({}: {})", f.reason, f.message);
    }
    s
}

/// The last lines of every container of `pods`, each under a header; a container whose logs
/// cannot be read says why.
async fn logs(pods: &[Pod], api: &Api<Pod>) -> String {
    let mut out = String::new();
    for pod in pods {
        let name = pod.name_any();
        let spec = pod.spec.clone().unwrap_or_default();
        let containers = spec
            .init_containers
            .iter()
            .flatten()
            .chain(spec.containers.iter())
            .map(|c| c.name.clone());
        for container in containers {
            let params = LogParams {
                container: Some(container.clone()),
                tail_lines: Some(LOG_LINES),
                ..LogParams::default()
            };
            let _ = writeln!(out, "--- pod/{name} container {container} ---");
            match api.logs(&name, &params).await {
                Ok(text) if text.is_empty() => out.push_str("(no output)\n"),
                Ok(text) => {
                    out.push_str(&text);
                    if !text.ends_with('\n') {
                        out.push('\n');
                    }
                }
                Err(e) => {
                    let _ = writeln!(out, "(no logs: {})", api_message(&e));
                }
            }
        }
    }
    out
}

/// The object the check created; deleted (background propagation, precondition: its uid) when
/// the check ends, or in the background when the check is dropped first (the run's deadline).
struct Created {
    api: Api<DynamicObject>,
    name: String,
    uid: String,
    deleted: bool,
}

impl Created {
    fn params(&self) -> DeleteParams {
        DeleteParams {
            preconditions: Some(Preconditions {
                uid: Some(self.uid.clone()),
                resource_version: None,
            }),
            ..DeleteParams::background()
        }
    }

    async fn delete(mut self) {
        // Best effort: a failed delete leaves a labelled object (`dev.stack.owned=true`) in the
        // test namespace, which goes with the namespace.
        let _ = self.api.delete(&self.name, &self.params()).await;
        self.deleted = true;
    }
}

impl Drop for Created {
    fn drop(&mut self) {
        if self.deleted {
            return;
        }
        if let Ok(rt) = tokio::runtime::Handle::try_current() {
            let (api, name, params) = (self.api.clone(), self.name.clone(), self.params());
            rt.spawn(async move {
                let _ = api.delete(&name, &params).await;
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_gets_a_generated_name_stack_labels_the_namespace_and_no_retries() {
        let (kind, o) = prepare(
            json!({"apiVersion": "batch/v1", "kind": "Job",
                "metadata": {"name": "smoke", "namespace": "elsewhere", "labels": {"a": "b"}},
                "spec": {"template": {"spec": {"containers": []}}}}),
            "t-1",
        )
        .unwrap();
        assert_eq!(kind, Kind::Job);
        assert_eq!(
            o["metadata"],
            json!({"generateName": "smoke-", "namespace": "t-1",
                "labels": {"a": "b", "dev.stack.owned": "true", "dev.stack.check": "smoke"}})
        );
        assert_eq!(o["spec"]["backoffLimit"], json!(0));
        let (_, kept) = prepare(
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "x"},
                "spec": {"backoffLimit": 2}}),
            "t",
        )
        .unwrap();
        assert_eq!(kept["spec"]["backoffLimit"], json!(2));
    }

    #[test]
    fn a_pod_runs_once_and_other_kinds_are_refused() {
        let (kind, o) = prepare(
            json!({"apiVersion": "v1", "kind": "Pod", "spec": {"containers": []}}),
            "t",
        )
        .unwrap();
        assert_eq!(kind, Kind::Pod);
        assert_eq!(o["metadata"]["generateName"], json!("check-"));
        assert_eq!(o["spec"]["restartPolicy"], json!("Never"));
        let err = prepare(
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}}),
            "t",
        )
        .unwrap_err();
        assert_eq!(
            err,
            "job: the manifest is apps/v1 Deployment, not a Job (batch/v1) or a Pod (v1)"
        );
    }

    #[test]
    fn label_values_are_sanitized() {
        assert_eq!(label_value("db migrate/1"), "db-migrate-1");
        assert_eq!(label_value("-x-"), "x");
        assert_eq!(label_value(&"a".repeat(80)).len(), 63);
    }
}
