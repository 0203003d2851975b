//! `ready` checks: a resource (`deployment/api`) or every object of a kind matching a label
//! selector is ready as kstatus judges it, polled until the check's deadline.
//!
//! Deployments, StatefulSets and DaemonSets are rolled out as `kubectl rollout status` judges
//! them (`kube::classify`); a Job is complete; a Pod is Ready (or Succeeded); a PVC is Bound; a
//! Service has a ready endpoint (ExternalName Services and Services without a selector have none
//! to wait for). While not ready, the message carries the named reasons of the resource's pods
//! (ImagePullBackOff, CrashLoopBackOff, Unschedulable, ...). A failed Job and a failed Pod never
//! become ready: they end the check at once.

use super::spec::ReadySpec;
use super::{Attempt, Ctx, Finished};
use crate::kube::classify::{
    daemonset_progress, deployment_failure, deployment_progress, pod_failures, pod_owner,
    statefulset_progress, Failure, ResourceProgress,
};
use crate::kube::wait::api_message;
use ::kube::api::{Api, ListParams};
use ::kube::{Resource, ResourceExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::NamespaceResourceScope;
use std::cell::RefCell;
use std::fmt::Write as _;
use std::time::Duration;
use tokio::time::Instant;

/// The kinds a `ready` check judges.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Deployment,
    StatefulSet,
    DaemonSet,
    Job,
    Pod,
    Pvc,
    Service,
}

impl Kind {
    /// kubectl's names for the kind (singular, plural, short), any case.
    fn parse(text: &str) -> Option<Kind> {
        Some(match text.to_ascii_lowercase().as_str() {
            "deployment" | "deployments" | "deploy" => Kind::Deployment,
            "statefulset" | "statefulsets" | "sts" => Kind::StatefulSet,
            "daemonset" | "daemonsets" | "ds" => Kind::DaemonSet,
            "job" | "jobs" => Kind::Job,
            "pod" | "pods" | "po" => Kind::Pod,
            "persistentvolumeclaim" | "persistentvolumeclaims" | "pvc" => Kind::Pvc,
            "service" | "services" | "svc" => Kind::Service,
            _ => return None,
        })
    }

    /// As kubectl prints it: `deployment/api`.
    fn name(self) -> &'static str {
        match self {
            Kind::Deployment => "deployment",
            Kind::StatefulSet => "statefulset",
            Kind::DaemonSet => "daemonset",
            Kind::Job => "job",
            Kind::Pod => "pod",
            Kind::Pvc => "persistentvolumeclaim",
            Kind::Service => "service",
        }
    }
}

const KINDS: &str = "deployment, statefulset, daemonset, job, pod, pvc, service";

/// What to look at: one object by name, or every object a selector matches.
enum Target {
    Named(String),
    Selected(String),
}

/// One object's judgement.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Judged {
    state: State,
    /// `deployment/api: 1/2 available, 2 updated`.
    message: String,
    /// Status conditions and pods' named reasons, as indented text.
    detail: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Ready,
    NotReady,
    /// Will never become ready (a failed Job or Pod).
    Failed,
}

pub async fn run(spec: &ReadySpec, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let (kind, target) = match parse(spec) {
        Ok(t) => t,
        Err(message) => return Finished::error(message),
    };
    let failed = RefCell::new(None);
    let polled = super::poll(deadline, timeout, || async {
        match observe(kind, &target, ctx).await {
            Ok(judged) => verdict(kind, &target, judged, &failed),
            Err(attempt) => attempt,
        }
    })
    .await;
    failed.into_inner().unwrap_or(polled)
}

fn parse(spec: &ReadySpec) -> Result<(Kind, Target), String> {
    let (kind, target) = match spec {
        ReadySpec::Ref(text) => {
            let Some((kind, name)) = text
                .split_once('/')
                .filter(|(k, n)| !k.is_empty() && !n.is_empty())
            else {
                return Err(format!(
                    "ready: `{text}` is not `kind/name` (e.g. `deployment/api`)"
                ));
            };
            (kind, Target::Named(name.to_owned()))
        }
        ReadySpec::Select(s) => (s.kind.as_str(), Target::Selected(s.selector.clone())),
    };
    let kind = Kind::parse(kind)
        .ok_or_else(|| format!("ready: unknown kind `{kind}` (one of: {KINDS})"))?;
    Ok((kind, target))
}

/// Turns the judgements of one attempt into the attempt's outcome; a definitive failure is kept in
/// `failed` and ends the polling (as a pass of the poll loop, replaced by the failure).
fn verdict(
    kind: Kind,
    target: &Target,
    judged: Vec<Judged>,
    failed: &RefCell<Option<Finished>>,
) -> Attempt {
    if judged.is_empty() {
        let message = match target {
            Target::Named(name) => format!("{}/{name} not found", kind.name()),
            Target::Selected(selector) => format!("no {} matches `{selector}`", kind.name()),
        };
        return Attempt::NotYet {
            message,
            detail: String::new(),
        };
    }
    let bad: Vec<&Judged> = judged.iter().filter(|j| j.state == State::Failed).collect();
    if !bad.is_empty() {
        *failed.borrow_mut() = Some(Finished::failed(
            join(bad.iter().map(|j| j.message.as_str())),
            join_detail(bad.iter().copied()),
        ));
        return Attempt::Pass(String::new());
    }
    let waiting: Vec<&Judged> = judged
        .iter()
        .filter(|j| j.state == State::NotReady)
        .collect();
    if waiting.is_empty() {
        return Attempt::Pass(match target {
            Target::Named(_) => judged[0].message.clone(),
            Target::Selected(selector) => format!(
                "{} {}{} matching `{selector}` ready",
                judged.len(),
                kind.name(),
                if judged.len() == 1 { "" } else { "s" }
            ),
        });
    }
    Attempt::NotYet {
        message: join(waiting.iter().map(|j| j.message.as_str())),
        detail: join_detail(waiting.iter().copied()),
    }
}

fn join<'a>(messages: impl Iterator<Item = &'a str>) -> String {
    messages.collect::<Vec<_>>().join("; ")
}

fn join_detail<'a>(judged: impl Iterator<Item = &'a Judged>) -> String {
    judged
        .map(|j| j.detail.trim_end())
        .filter(|d| !d.is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// One look at the target: each object's judgement (none: not found / nothing matches).
async fn observe(kind: Kind, target: &Target, ctx: &Ctx) -> Result<Vec<Judged>, Attempt> {
    let ns = ctx.namespace.as_str();
    let client = &ctx.client;
    Ok(match kind {
        Kind::Deployment => {
            let mut out = Vec::new();
            for d in fetch::<Deployment>(ctx, target).await? {
                let pods =
                    pods_of(ctx, d.spec.as_ref().map(|s| &s.selector), "deployment", &d).await?;
                out.push(judge_deployment(&d, &pods));
            }
            out
        }
        Kind::StatefulSet => {
            let mut out = Vec::new();
            for s in fetch::<StatefulSet>(ctx, target).await? {
                let pods =
                    pods_of(ctx, s.spec.as_ref().map(|s| &s.selector), "statefulset", &s).await?;
                out.push(judge_rollout(
                    statefulset_progress(&s),
                    conditions_of(&s),
                    &pods,
                    "ready",
                ));
            }
            out
        }
        Kind::DaemonSet => {
            let mut out = Vec::new();
            for d in fetch::<DaemonSet>(ctx, target).await? {
                let pods =
                    pods_of(ctx, d.spec.as_ref().map(|s| &s.selector), "daemonset", &d).await?;
                out.push(judge_rollout(
                    daemonset_progress(&d),
                    conditions_of(&d),
                    &pods,
                    "available",
                ));
            }
            out
        }
        Kind::Job => {
            let mut out = Vec::new();
            for j in fetch::<Job>(ctx, target).await? {
                let pods = pods_of(
                    ctx,
                    j.spec.as_ref().and_then(|s| s.selector.as_ref()),
                    "job",
                    &j,
                )
                .await?;
                out.push(judge_job(&j, &pods));
            }
            out
        }
        Kind::Pod => fetch::<Pod>(ctx, target)
            .await?
            .iter()
            .map(judge_pod)
            .collect(),
        Kind::Pvc => fetch::<PersistentVolumeClaim>(ctx, target)
            .await?
            .iter()
            .map(judge_pvc)
            .collect(),
        Kind::Service => {
            let mut out = Vec::new();
            let slices_api: Api<EndpointSlice> = Api::namespaced(client.clone(), ns);
            for s in fetch::<Service>(ctx, target).await? {
                let name = s.name_any();
                let selector = s
                    .spec
                    .as_ref()
                    .and_then(|s| s.selector.clone())
                    .unwrap_or_default();
                let external =
                    s.spec.as_ref().and_then(|s| s.type_.as_deref()) == Some("ExternalName");
                if external || selector.is_empty() {
                    out.push(judge_unselected_service(&name, external));
                    continue;
                }
                let params =
                    ListParams::default().labels(&format!("kubernetes.io/service-name={name}"));
                let slices = slices_api
                    .list(&params)
                    .await
                    .map_err(|e| api_error("endpointslices", &e))?
                    .items;
                let text = selector
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join(",");
                let pods = list_pods(ctx, &text).await?;
                out.push(judge_service(&name, &slices, &pods));
            }
            out
        }
    })
}

/// The named object (none when absent), or every object the selector matches.
async fn fetch<K>(ctx: &Ctx, target: &Target) -> Result<Vec<K>, Attempt>
where
    K: Resource<Scope = NamespaceResourceScope, DynamicType = ()>
        + Clone
        + std::fmt::Debug
        + serde::de::DeserializeOwned,
{
    let api: Api<K> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    let plural = K::plural(&());
    match target {
        Target::Named(name) => api
            .get_opt(name)
            .await
            .map(|o| o.into_iter().collect())
            .map_err(|e| api_error(&format!("{plural} {name}"), &e)),
        Target::Selected(selector) => api
            .list(&ListParams::default().labels(selector))
            .await
            .map(|l| l.items)
            .map_err(|e| api_error(&plural, &e)),
    }
}

fn api_error(what: &str, e: &::kube::Error) -> Attempt {
    Attempt::Error(format!("cannot read {what}: {}", api_message(e)))
}

/// The pods a workload selects that it owns (`kind/name` as `pod_owner` reports it).
async fn pods_of<K: ResourceExt>(
    ctx: &Ctx,
    selector: Option<&LabelSelector>,
    kind: &str,
    owner: &K,
) -> Result<Vec<Pod>, Attempt> {
    let Some(selector) = selector.and_then(selector_text) else {
        return Ok(Vec::new());
    };
    let owner = format!("{kind}/{}", owner.name_any());
    Ok(list_pods(ctx, &selector)
        .await?
        .into_iter()
        .filter(|p| pod_owner(p).as_deref() == Some(owner.as_str()))
        .collect())
}

async fn list_pods(ctx: &Ctx, selector: &str) -> Result<Vec<Pod>, Attempt> {
    let api: Api<Pod> = Api::namespaced(ctx.client.clone(), &ctx.namespace);
    api.list(&ListParams::default().labels(selector))
        .await
        .map(|l| l.items)
        .map_err(|e| api_error("pods", &e))
}

/// A label selector as the list API's `labelSelector` text; `None` when it selects nothing
/// expressible (an empty selector would select every pod).
fn selector_text(s: &LabelSelector) -> Option<String> {
    let mut parts: Vec<String> = s
        .match_labels
        .iter()
        .flatten()
        .map(|(k, v)| format!("{k}={v}"))
        .collect();
    for e in s.match_expressions.iter().flatten() {
        let values = e.values.clone().unwrap_or_default().join(",");
        parts.push(match e.operator.as_str() {
            "In" => format!("{} in ({values})", e.key),
            "NotIn" => format!("{} notin ({values})", e.key),
            "Exists" => e.key.clone(),
            "DoesNotExist" => format!("!{}", e.key),
            _ => return None,
        });
    }
    (!parts.is_empty()).then(|| parts.join(","))
}

fn judge_deployment(d: &Deployment, pods: &[Pod]) -> Judged {
    let progress = deployment_progress(d);
    let mut judged = judge_rollout(progress, conditions_of(d), pods, "available");
    if let Some(f) = deployment_failure(d) {
        judged.state = State::NotReady;
        judged
            .message
            .push_str(&format!("; {}: {}", f.reason, f.message));
    }
    judged
}

/// A workload rolled out (`progress.done`), or how far it is and why its pods are not ready.
fn judge_rollout(
    p: ResourceProgress,
    conditions: Vec<Condition>,
    pods: &[Pod],
    counted: &str,
) -> Judged {
    let count = if counted == "ready" {
        p.ready
    } else {
        p.available
    };
    if p.done {
        return Judged {
            state: State::Ready,
            message: format!("{}: {count}/{} {counted}", p.resource, p.desired),
            detail: String::new(),
        };
    }
    let failures: Vec<Failure> = pods.iter().flat_map(pod_failures).collect();
    let mut message = format!(
        "{}: {count}/{} {counted}, {} updated",
        p.resource, p.desired, p.updated
    );
    append_failures(&mut message, &failures);
    Judged {
        state: State::NotReady,
        detail: detail(&p.resource, &conditions, &failures, pods),
        message,
    }
}

fn judge_job(j: &Job, pods: &[Pod]) -> Judged {
    let resource = format!("job/{}", j.name_any());
    let status = j.status.clone().unwrap_or_default();
    let conditions = conditions_of(j);
    let is_true = |t: &str| {
        conditions
            .iter()
            .find(|c| c.type_ == t && c.status == "True")
    };
    if is_true("Complete").is_some() {
        return Judged {
            state: State::Ready,
            message: format!("{resource}: complete"),
            detail: String::new(),
        };
    }
    let failures: Vec<Failure> = pods.iter().flat_map(pod_failures).collect();
    if let Some(c) = is_true("Failed").or_else(|| is_true("FailureTarget")) {
        let why = [c.reason.as_str(), c.message.as_str()]
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect::<Vec<_>>()
            .join(": ");
        let mut message = format!("{resource}: failed");
        if !why.is_empty() {
            message.push_str(&format!(" ({why})"));
        }
        if let Some(exit) = pods.iter().find_map(failed_exit) {
            message.push_str(&format!("; {exit}"));
        }
        return Judged {
            state: State::Failed,
            detail: detail(&resource, &conditions, &failures, pods),
            message,
        };
    }
    let mut message = format!(
        "{resource}: not complete ({} active, {} succeeded, {} failed)",
        status.active.unwrap_or(0),
        status.succeeded.unwrap_or(0),
        status.failed.unwrap_or(0)
    );
    append_failures(&mut message, &failures);
    Judged {
        state: State::NotReady,
        detail: detail(&resource, &conditions, &failures, pods),
        message,
    }
}

/// `pod/x container app exited 1 (Error)` for a pod whose container ended badly.
fn failed_exit(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .find_map(|cs| {
            let t = cs.state.as_ref()?.terminated.as_ref()?;
            (t.exit_code != 0).then(|| {
                let reason = t
                    .reason
                    .as_deref()
                    .map(|r| format!(" ({r})"))
                    .unwrap_or_default();
                format!(
                    "pod/{} container {} exited {}{reason}",
                    pod.name_any(),
                    cs.name,
                    t.exit_code
                )
            })
        })
}

fn judge_pod(pod: &Pod) -> Judged {
    let resource = format!("pod/{}", pod.name_any());
    let status = pod.status.clone().unwrap_or_default();
    let phase = status.phase.as_deref().unwrap_or("Unknown");
    let conditions = conditions_of(pod);
    let ready = conditions
        .iter()
        .any(|c| c.type_ == "Ready" && c.status == "True");
    if phase == "Succeeded" || (ready && phase == "Running") {
        return Judged {
            state: State::Ready,
            message: format!("{resource}: {}", if ready { "Ready" } else { "Succeeded" }),
            detail: String::new(),
        };
    }
    let failures = pod_failures(pod);
    let mut message = format!("{resource}: {phase}, not ready");
    let state = if phase == "Failed" {
        message = format!("{resource}: Failed");
        if let Some(why) = status.reason.as_deref() {
            message.push_str(&format!(" ({why})"));
        }
        if let Some(exit) = failed_exit(pod) {
            message.push_str(&format!("; {exit}"));
        }
        State::Failed
    } else {
        State::NotReady
    };
    append_failures(&mut message, &failures);
    Judged {
        state,
        detail: detail(&resource, &conditions, &failures, &[]),
        message,
    }
}

fn judge_pvc(pvc: &PersistentVolumeClaim) -> Judged {
    let resource = format!("persistentvolumeclaim/{}", pvc.name_any());
    let phase = pvc
        .status
        .as_ref()
        .and_then(|s| s.phase.as_deref())
        .unwrap_or("Pending");
    let state = if phase == "Bound" {
        State::Ready
    } else {
        State::NotReady
    };
    Judged {
        state,
        message: format!("{resource}: {phase}"),
        detail: if state == State::Ready {
            String::new()
        } else {
            detail(&resource, &conditions_of(pvc), &[], &[])
        },
    }
}

/// A Service that needs no endpoint to be ready: an ExternalName, or one without a selector
/// (its endpoints are managed elsewhere).
fn judge_unselected_service(name: &str, external: bool) -> Judged {
    Judged {
        state: State::Ready,
        message: format!(
            "service/{name}: {}",
            if external {
                "ExternalName"
            } else {
                "no selector (endpoints managed elsewhere)"
            }
        ),
        detail: String::new(),
    }
}

fn judge_service(name: &str, slices: &[EndpointSlice], pods: &[Pod]) -> Judged {
    let resource = format!("service/{name}");
    let endpoints = slices.iter().flat_map(|s| s.endpoints.iter());
    // A nil `ready` means ready (EndpointConditions' documented default).
    let (ready, not_ready) = endpoints.fold((0, 0), |(r, n), e| {
        if e.conditions.as_ref().and_then(|c| c.ready) == Some(false) {
            (r, n + 1)
        } else {
            (r + 1, n)
        }
    });
    if ready > 0 {
        return Judged {
            state: State::Ready,
            message: format!(
                "{resource}: {ready} ready endpoint{}",
                if ready == 1 { "" } else { "s" }
            ),
            detail: String::new(),
        };
    }
    let failures: Vec<Failure> = pods.iter().flat_map(pod_failures).collect();
    let mut message = format!(
        "{resource}: no ready endpoint ({not_ready} not ready, {} pod{} selected)",
        pods.len(),
        if pods.len() == 1 { "" } else { "s" }
    );
    append_failures(&mut message, &failures);
    Judged {
        state: State::NotReady,
        detail: detail(&resource, &[], &failures, pods),
        message,
    }
}

/// `; pod/api-x: Unschedulable: 0/1 nodes are available: ...` for each named reason.
fn append_failures(message: &mut String, failures: &[Failure]) {
    for f in failures {
        let _ = write!(message, "; {}", f.resource);
        if let Some(c) = &f.container {
            let _ = write!(message, " ({c})");
        }
        let _ = write!(message, ": {}", f.reason);
        if !f.message.is_empty() {
            let _ = write!(message, ": {}", f.message);
        }
    }
}

/// A status condition, whichever API type it came from.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Condition {
    type_: String,
    status: String,
    reason: String,
    message: String,
}

/// The status conditions of any object (through its JSON: every kind spells them the same).
fn conditions_of<K: serde::Serialize>(object: &K) -> Vec<Condition> {
    let json = serde_json::to_value(object).unwrap_or_default();
    let text = |c: &serde_json::Value, k: &str| c[k].as_str().unwrap_or_default().to_owned();
    json["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| Condition {
            type_: text(c, "type"),
            status: text(c, "status"),
            reason: text(c, "reason"),
            message: text(c, "message"),
        })
        .collect()
}

/// The evidence, YAML-ish:
///
/// ```text
/// deployment/api:
///   conditions:
///   - Available=False (MinimumReplicasUnavailable): Deployment does not have minimum availability.
///   pods:
///   - pod/api-7d4-x: Pending
///     Unschedulable: 0/1 nodes are available: ...
/// ```
fn detail(resource: &str, conditions: &[Condition], failures: &[Failure], pods: &[Pod]) -> String {
    let mut out = format!("{resource}:\n");
    if !conditions.is_empty() {
        out.push_str("  conditions:\n");
        for c in conditions {
            let _ = write!(out, "  - {}={}", c.type_, c.status);
            if !c.reason.is_empty() {
                let _ = write!(out, " ({})", c.reason);
            }
            if !c.message.is_empty() {
                let _ = write!(out, ": {}", c.message);
            }
            out.push('\n');
        }
    }
    if !pods.is_empty() {
        out.push_str("  pods:\n");
        for pod in pods {
            let name = format!("pod/{}", pod.name_any());
            let phase = pod
                .status
                .as_ref()
                .and_then(|s| s.phase.as_deref())
                .unwrap_or("Unknown");
            let _ = writeln!(out, "  - {name}: {phase}");
            for f in failures.iter().filter(|f| f.resource == name) {
                let _ = writeln!(out, "    {}: {}", f.reason, f.message);
            }
        }
    } else {
        for f in failures {
            let _ = writeln!(out, "  {}: {}", f.reason, f.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn kinds_parse_with_kubectl_aliases_in_any_case() {
        for (text, kind) in [
            ("Deployment", Kind::Deployment),
            ("deploy", Kind::Deployment),
            ("STS", Kind::StatefulSet),
            ("ds", Kind::DaemonSet),
            ("job", Kind::Job),
            ("po", Kind::Pod),
            ("pvc", Kind::Pvc),
            ("PersistentVolumeClaim", Kind::Pvc),
            ("svc", Kind::Service),
        ] {
            assert_eq!(Kind::parse(text), Some(kind), "{text}");
        }
        assert_eq!(Kind::parse("replicaset"), None);
        let err = parse(&ReadySpec::Ref("api".into())).err().unwrap();
        assert_eq!(
            err,
            "ready: `api` is not `kind/name` (e.g. `deployment/api`)"
        );
        let err = parse(&ReadySpec::Ref("cronjob/x".into())).err().unwrap();
        assert!(err.starts_with("ready: unknown kind `cronjob`"), "{err}");
    }

    #[test]
    fn a_failed_job_is_definitive_and_names_the_exit_code() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "migrate"},
            "status": {"failed": 1, "conditions": [{"type": "Failed", "status": "True",
                "reason": "BackoffLimitExceeded", "message": "Job has reached the specified backoff limit"}]}
        }))
        .unwrap();
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "migrate-x"},
            "status": {"phase": "Failed", "containerStatuses": [{"name": "main", "image": "i",
                "imageID": "", "ready": false, "restartCount": 0,
                "state": {"terminated": {"exitCode": 3, "reason": "Error"}}}]}
        }))
        .unwrap();
        let j = judge_job(&job, &[pod]);
        assert_eq!(j.state, State::Failed);
        assert_eq!(
            j.message,
            "job/migrate: failed (BackoffLimitExceeded: Job has reached the specified backoff limit); pod/migrate-x container main exited 3 (Error)"
        );
        assert!(
            j.detail.contains("- Failed=True (BackoffLimitExceeded)"),
            "{}",
            j.detail
        );
    }

    #[test]
    fn services_without_selector_or_external_are_ready_others_need_a_ready_endpoint() {
        assert_eq!(judge_unselected_service("ext", true).state, State::Ready);
        let slice = |ready: Option<bool>| -> EndpointSlice {
            serde_json::from_value(json!({"metadata": {"name": "s"}, "addressType": "IPv4",
                "endpoints": [{"addresses": ["10.0.0.1"], "conditions": {"ready": ready}}]}))
            .unwrap()
        };
        let not_ready = judge_service("api", &[slice(Some(false))], &[]);
        assert_eq!(not_ready.state, State::NotReady);
        assert_eq!(
            not_ready.message,
            "service/api: no ready endpoint (1 not ready, 0 pods selected)"
        );
        let ready = judge_service("api", &[slice(None)], &[]);
        assert_eq!(ready.message, "service/api: 1 ready endpoint");
    }

    #[test]
    fn pvc_is_ready_when_bound() {
        let pvc = |phase: &str| -> PersistentVolumeClaim {
            serde_json::from_value(
                json!({"metadata": {"name": "data"}, "status": {"phase": phase}}),
            )
            .unwrap()
        };
        assert_eq!(judge_pvc(&pvc("Bound")).state, State::Ready);
        let pending = judge_pvc(&pvc("Pending"));
        assert_eq!(pending.message, "persistentvolumeclaim/data: Pending");
        assert_eq!(pending.state, State::NotReady);
    }

    #[test]
    fn selectors_render_as_the_list_api_reads_them() {
        let s: LabelSelector = serde_json::from_value(json!({
            "matchLabels": {"app": "api"},
            "matchExpressions": [{"key": "tier", "operator": "In", "values": ["a", "b"]},
                {"key": "canary", "operator": "DoesNotExist"}]
        }))
        .unwrap();
        assert_eq!(
            selector_text(&s).as_deref(),
            Some("app=api,tier in (a,b),!canary")
        );
        assert_eq!(selector_text(&LabelSelector::default()), None);
    }
}
