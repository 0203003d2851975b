//! Reading object statuses: how far a Deployment's rollout is, and why a Pod or hook Job failed.
//! Pure functions over the API objects, so the rules are unit-tested without a cluster.

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::{ContainerStatus, Pod};
use serde::Serialize;
use std::fmt;

/// The annotation Helm marks hook resources with (`pre-install`, `post-upgrade`, `test`, ...).
pub const HOOK_ANNOTATION: &str = "helm.sh/hook";

/// Why a rollout did not become ready, named the way `kubectl` users know it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub enum Reason {
    ImagePullBackOff,
    ErrImagePull,
    CrashLoopBackOff,
    CreateContainerConfigError,
    /// The runtime could not create the container (bad command, mount, security context).
    CreateContainerError,
    /// The container was created but could not start (e.g. its entrypoint does not exist).
    RunContainerError,
    /// The image reference itself is malformed: no pull will ever succeed.
    InvalidImageName,
    Unschedulable,
    /// A Helm hook (Job or Pod annotated `helm.sh/hook`) failed.
    HookFailed,
    /// The Deployment's `progressDeadlineSeconds` passed (condition Progressing=False).
    ProgressDeadlineExceeded,
    /// Still not ready when the wait's timeout passed.
    Timeout,
}

impl Reason {
    pub fn as_str(self) -> &'static str {
        match self {
            Reason::ImagePullBackOff => "ImagePullBackOff",
            Reason::ErrImagePull => "ErrImagePull",
            Reason::CrashLoopBackOff => "CrashLoopBackOff",
            Reason::CreateContainerConfigError => "CreateContainerConfigError",
            Reason::CreateContainerError => "CreateContainerError",
            Reason::RunContainerError => "RunContainerError",
            Reason::InvalidImageName => "InvalidImageName",
            Reason::Unschedulable => "Unschedulable",
            Reason::HookFailed => "HookFailed",
            Reason::ProgressDeadlineExceeded => "ProgressDeadlineExceeded",
            Reason::Timeout => "Timeout",
        }
    }

    /// The container `waiting.reason`s that mean the pod will not start without a change.
    fn from_waiting(reason: &str) -> Option<Reason> {
        Some(match reason {
            "ImagePullBackOff" => Reason::ImagePullBackOff,
            "ErrImagePull" => Reason::ErrImagePull,
            "CrashLoopBackOff" => Reason::CrashLoopBackOff,
            "CreateContainerConfigError" => Reason::CreateContainerConfigError,
            "CreateContainerError" => Reason::CreateContainerError,
            "RunContainerError" => Reason::RunContainerError,
            "InvalidImageName" => Reason::InvalidImageName,
            _ => return None,
        })
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One named reason why a resource is not ready.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Failure {
    /// `pod/web-7d4f9-abcde`, `job/migrate`, `deployment/web`.
    pub resource: String,
    /// The container, for container-level reasons.
    pub container: Option<String>,
    /// What owns a pod, e.g. `deployment/web` (from its ReplicaSet), `job/migrate`.
    pub owner: Option<String>,
    pub reason: Reason,
    pub message: String,
    /// The last log lines of the failing container (CrashLoopBackOff): the previous instance's,
    /// else the current one's; a single `no logs: <why>` line when neither could be read.
    pub last_logs: Vec<String>,
}

/// How far one Deployment's rollout is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ResourceProgress {
    /// `deployment/web`.
    pub resource: String,
    pub ready: i32,
    pub updated: i32,
    pub available: i32,
    pub desired: i32,
    /// The rollout is complete and the Deployment Available.
    pub done: bool,
}

/// The rollout state of a Deployment, as `kubectl rollout status` judges it: the controller has
/// seen the latest spec, every replica runs the new template and is available, no old replica is
/// left, and the Available condition is True.
pub fn deployment_progress(d: &Deployment) -> ResourceProgress {
    let desired = d.spec.as_ref().and_then(|s| s.replicas).unwrap_or(1);
    let status = d.status.clone().unwrap_or_default();
    let observed = match d.metadata.generation {
        Some(generation) => status.observed_generation.unwrap_or(0) >= generation,
        None => true,
    };
    let updated = status.updated_replicas.unwrap_or(0);
    let available = status.available_replicas.unwrap_or(0);
    let total = status.replicas.unwrap_or(0);
    let condition_available = status
        .conditions
        .iter()
        .flatten()
        .any(|c| c.type_ == "Available" && c.status == "True");
    ResourceProgress {
        resource: format!("deployment/{}", name(&d.metadata.name)),
        ready: status.ready_replicas.unwrap_or(0),
        updated,
        available,
        desired,
        done: observed
            && updated == desired
            && available == desired
            && total <= updated
            && condition_available,
    }
}

/// A Deployment whose controller gave up (`progressDeadlineSeconds` passed).
/// A StatefulSet's rollout as `kubectl rollout status` judges it: the controller saw the latest
/// spec, every replica is ready, the replicas past the partition run the new revision, and (without
/// a partition) the current revision is the update revision.
pub fn statefulset_progress(s: &StatefulSet) -> ResourceProgress {
    let spec = s.spec.clone().unwrap_or_default();
    let desired = spec.replicas.unwrap_or(1);
    let status = s.status.clone().unwrap_or_default();
    let observed = match s.metadata.generation {
        Some(generation) => status.observed_generation.unwrap_or(0) >= generation,
        None => true,
    };
    let ready = status.ready_replicas.unwrap_or(0);
    let updated = status.updated_replicas.unwrap_or(0);
    let rolling = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.type_.as_deref())
        .is_none_or(|t| t == "RollingUpdate");
    let partition = spec
        .update_strategy
        .as_ref()
        .and_then(|u| u.rolling_update.as_ref())
        .and_then(|r| r.partition)
        .unwrap_or(0);
    let revision_done = if !rolling {
        true // OnDelete: pods change only when deleted; readiness is all that can be judged
    } else if partition > 0 {
        updated >= desired - partition
    } else {
        status.update_revision.is_some() && status.update_revision == status.current_revision
    };
    ResourceProgress {
        resource: format!("statefulset/{}", name(&s.metadata.name)),
        ready,
        updated,
        available: status.available_replicas.unwrap_or(ready),
        desired,
        done: observed && ready >= desired && revision_done,
    }
}

/// A DaemonSet's rollout as `kubectl rollout status` judges it: the controller saw the latest spec
/// and every scheduled pod is updated and available.
pub fn daemonset_progress(d: &DaemonSet) -> ResourceProgress {
    let status = d.status.clone().unwrap_or_default();
    let observed = match d.metadata.generation {
        Some(generation) => status.observed_generation.unwrap_or(0) >= generation,
        None => true,
    };
    let desired = status.desired_number_scheduled;
    let updated = status.updated_number_scheduled.unwrap_or(0);
    let available = status.number_available.unwrap_or(0);
    ResourceProgress {
        resource: format!("daemonset/{}", name(&d.metadata.name)),
        ready: status.number_ready,
        updated,
        available,
        desired,
        done: observed && updated >= desired && available >= desired,
    }
}

pub fn deployment_failure(d: &Deployment) -> Option<Failure> {
    let c = d.status.as_ref()?.conditions.iter().flatten().find(|c| {
        c.type_ == "Progressing"
            && c.status == "False"
            && c.reason.as_deref() == Some("ProgressDeadlineExceeded")
    })?;
    Some(Failure {
        resource: format!("deployment/{}", name(&d.metadata.name)),
        container: None,
        owner: None,
        reason: Reason::ProgressDeadlineExceeded,
        message: c.message.clone().unwrap_or_default(),
        last_logs: Vec::new(),
    })
}

/// Every named failure a Pod shows now (without logs; the waiter adds those). A pod being deleted
/// shows none: it is on its way out, usually replaced by a newer one.
pub fn pod_failures(pod: &Pod) -> Vec<Failure> {
    if pod.metadata.deletion_timestamp.is_some() {
        return Vec::new();
    }
    let resource = format!("pod/{}", name(&pod.metadata.name));
    let owner = pod_owner(pod);
    let failure = |container: Option<&str>, reason, message: String| Failure {
        resource: resource.clone(),
        container: container.map(str::to_owned),
        owner: owner.clone(),
        reason,
        message,
        last_logs: Vec::new(),
    };
    let mut out = Vec::new();
    let Some(status) = &pod.status else {
        return out;
    };
    if let Some(hook) = hook_kind(&pod.metadata) {
        if status.phase.as_deref() == Some("Failed") {
            let why = [status.reason.as_deref(), status.message.as_deref()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ");
            out.push(failure(
                None,
                Reason::HookFailed,
                format!("{hook} hook pod failed{}", prefixed(&why)),
            ));
        }
    }
    if let Some(c) = status.conditions.iter().flatten().find(|c| {
        c.type_ == "PodScheduled"
            && c.status == "False"
            && c.reason.as_deref() == Some("Unschedulable")
    }) {
        out.push(failure(
            None,
            Reason::Unschedulable,
            c.message.clone().unwrap_or_default(),
        ));
    }
    let containers = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten());
    for cs in containers {
        let Some(waiting) = cs.state.as_ref().and_then(|s| s.waiting.as_ref()) else {
            continue;
        };
        let Some(reason) = waiting.reason.as_deref().and_then(Reason::from_waiting) else {
            continue;
        };
        let mut message = waiting.message.clone().unwrap_or_default();
        if let Some(last) = last_termination(cs) {
            if !message.is_empty() {
                message.push_str("; ");
            }
            message.push_str(&last);
        }
        if message.is_empty() {
            message = format!("image {}", cs.image);
        }
        out.push(failure(Some(&cs.name), reason, message));
    }
    out
}

/// `last run exited 1 (Error), 3 restarts` for a container that has run before.
fn last_termination(cs: &ContainerStatus) -> Option<String> {
    let t = cs.last_state.as_ref()?.terminated.as_ref()?;
    let mut s = format!("last run exited {}", t.exit_code);
    if let Some(reason) = &t.reason {
        s.push_str(&format!(" ({reason})"));
    }
    s.push_str(&format!(", {} restarts", cs.restart_count));
    Some(s)
}

/// A Helm hook Job with condition Failed=True.
pub fn job_failure(job: &Job) -> Option<Failure> {
    let hook = hook_kind(&job.metadata)?;
    let c = job
        .status
        .as_ref()?
        .conditions
        .iter()
        .flatten()
        .find(|c| c.type_ == "Failed" && c.status == "True")?;
    let why = [c.reason.as_deref(), c.message.as_deref()]
        .into_iter()
        .flatten()
        .collect::<Vec<_>>()
        .join(": ");
    Some(Failure {
        resource: format!("job/{}", name(&job.metadata.name)),
        container: None,
        owner: None,
        reason: Reason::HookFailed,
        message: format!("{hook} hook job failed{}", prefixed(&why)),
        last_logs: Vec::new(),
    })
}

/// The hook kinds (`pre-install,pre-upgrade`) of a resource Helm treats as a hook.
fn hook_kind(meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta) -> Option<&str> {
    meta.annotations
        .as_ref()?
        .get(HOOK_ANNOTATION)
        .map(String::as_str)
}

/// What owns a pod, as `kind/name`; a ReplicaSet of a Deployment is reported as the Deployment
/// (its name is `<deployment>-<pod-template-hash>`).
pub fn pod_owner(pod: &Pod) -> Option<String> {
    let owner = pod
        .metadata
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))?;
    if owner.kind == "ReplicaSet" {
        let hash = pod.metadata.labels.as_ref()?.get("pod-template-hash");
        if let Some(deployment) = hash.and_then(|h| owner.name.strip_suffix(&format!("-{h}"))) {
            return Some(format!("deployment/{deployment}"));
        }
    }
    Some(format!("{}/{}", owner.kind.to_lowercase(), owner.name))
}

fn name(n: &Option<String>) -> &str {
    n.as_deref().unwrap_or("?")
}

fn prefixed(why: &str) -> String {
    if why.is_empty() {
        String::new()
    } else {
        format!(": {why}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(v: serde_json::Value) -> Pod {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn crash_loop_names_the_container_its_owner_and_last_exit() {
        let p = pod(json!({
            "metadata": {"name": "web-5d8f-abcde", "labels": {"pod-template-hash": "5d8f"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-5d8f",
                    "uid": "u", "controller": true}]},
            "status": {"phase": "Running", "containerStatuses": [{
                "name": "app", "image": "web:1", "imageID": "", "ready": false, "restartCount": 4,
                "state": {"waiting": {"reason": "CrashLoopBackOff",
                    "message": "back-off 1m20s restarting failed container=app"}},
                "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}}]}
        }));
        let f = pod_failures(&p);
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].reason, Reason::CrashLoopBackOff);
        assert_eq!(f[0].resource, "pod/web-5d8f-abcde");
        assert_eq!(f[0].container.as_deref(), Some("app"));
        assert_eq!(f[0].owner.as_deref(), Some("deployment/web"));
        assert_eq!(
            f[0].message,
            "back-off 1m20s restarting failed container=app; last run exited 1 (Error), 4 restarts"
        );
    }

    #[test]
    fn statefulsets_and_daemonsets_roll_out_as_kubectl_judges() {
        let sts = |status: serde_json::Value, spec: serde_json::Value| -> StatefulSet {
            serde_json::from_value(json!({"metadata": {"name": "db", "generation": 2}, "spec": spec, "status": status})).unwrap()
        };
        let spec = json!({"replicas": 2, "selector": {}, "serviceName": "db", "template": {}});
        let rolled = json!({"observedGeneration": 2, "replicas": 2, "readyReplicas": 2, "updatedReplicas": 2,
            "currentRevision": "db-2", "updateRevision": "db-2"});
        assert!(statefulset_progress(&sts(rolled.clone(), spec.clone())).done);
        let mut midway = rolled.clone();
        midway["currentRevision"] = "db-1".into();
        assert!(!statefulset_progress(&sts(midway, spec.clone())).done);
        let mut unready = rolled.clone();
        unready["readyReplicas"] = 1.into();
        let p = statefulset_progress(&sts(unready, spec.clone()));
        assert!(!p.done);
        assert_eq!(
            (p.resource.as_str(), p.ready, p.desired),
            ("statefulset/db", 1, 2)
        );
        let mut stale = rolled;
        stale["observedGeneration"] = 1.into();
        assert!(!statefulset_progress(&sts(stale, spec)).done);

        let ds = |status: serde_json::Value| -> DaemonSet {
            serde_json::from_value(
                json!({"metadata": {"name": "agent", "generation": 1}, "status": status}),
            )
            .unwrap()
        };
        let base = json!({"observedGeneration": 1, "currentNumberScheduled": 3, "numberMisscheduled": 0,
            "desiredNumberScheduled": 3, "numberReady": 3, "updatedNumberScheduled": 3, "numberAvailable": 3});
        assert!(daemonset_progress(&ds(base.clone())).done);
        let mut behind = base;
        behind["updatedNumberScheduled"] = 2.into();
        assert!(!daemonset_progress(&ds(behind)).done);
    }

    #[test]
    fn container_runtime_errors_are_named() {
        for reason in [
            "CreateContainerError",
            "RunContainerError",
            "InvalidImageName",
        ] {
            let p = pod(json!({
                "metadata": {"name": "p"},
                "status": {"phase": "Pending",
                    "containerStatuses": [{"name": "app", "image": "y:1", "imageID": "", "ready": false,
                        "restartCount": 0, "state": {"waiting": {"reason": reason, "message": "boom"}}}]}
            }));
            let f = pod_failures(&p);
            assert_eq!(f.len(), 1, "{reason}");
            assert_eq!(f[0].reason.as_str(), reason);
        }
    }

    #[test]
    fn image_pull_init_container_and_unschedulable() {
        let p = pod(json!({
            "metadata": {"name": "p"},
            "status": {"phase": "Pending",
                "conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 node(s) didn't match Pod's node affinity/selector."}],
                "initContainerStatuses": [{"name": "init", "image": "x:1", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ErrImagePull"}}}],
                "containerStatuses": [{"name": "app", "image": "y:1", "imageID": "", "ready": false,
                    "restartCount": 0, "state": {"waiting": {"reason": "ContainerCreating"}}}]}
        }));
        let f = pod_failures(&p);
        let reasons: Vec<_> = f.iter().map(|f| f.reason).collect();
        assert_eq!(reasons, [Reason::Unschedulable, Reason::ErrImagePull]);
        assert!(f[0].message.contains("didn't match"));
        assert_eq!(f[1].message, "image x:1");
        assert_eq!(f[1].container.as_deref(), Some("init"));
    }

    #[test]
    fn a_pod_being_deleted_shows_no_failure() {
        let p = pod(json!({
            "metadata": {"name": "old", "deletionTimestamp": "2026-01-01T00:00:00Z"},
            "status": {"containerStatuses": [{"name": "app", "image": "y", "imageID": "", "ready": false,
                "restartCount": 9, "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }));
        assert!(pod_failures(&p).is_empty());
    }

    #[test]
    fn failed_hook_job_and_hook_pod() {
        let job: Job = serde_json::from_value(json!({
            "metadata": {"name": "migrate", "annotations": {"helm.sh/hook": "pre-upgrade"}},
            "status": {"conditions": [{"type": "Failed", "status": "True", "reason": "BackoffLimitExceeded",
                "message": "Job has reached the specified backoff limit"}]}
        }))
        .unwrap();
        let f = job_failure(&job).unwrap();
        assert_eq!(
            (f.resource.as_str(), f.reason),
            ("job/migrate", Reason::HookFailed)
        );
        assert_eq!(
            f.message,
            "pre-upgrade hook job failed: BackoffLimitExceeded: Job has reached the specified backoff limit"
        );
        let plain: Job = serde_json::from_value(json!({
            "metadata": {"name": "batch"},
            "status": {"conditions": [{"type": "Failed", "status": "True"}]}
        }))
        .unwrap();
        assert_eq!(job_failure(&plain), None, "only hooks fail a release");
        let p = pod(json!({
            "metadata": {"name": "t", "annotations": {"helm.sh/hook": "test"}},
            "status": {"phase": "Failed"}
        }));
        assert_eq!(pod_failures(&p)[0].message, "test hook pod failed");
    }

    #[test]
    fn deployment_done_only_when_rolled_out_and_available() {
        let d = |status: serde_json::Value| -> Deployment {
            serde_json::from_value(json!({
                "metadata": {"name": "web", "generation": 2},
                "spec": {"replicas": 2, "selector": {}, "template": {}},
                "status": status
            }))
            .unwrap()
        };
        let available = json!([{"type": "Available", "status": "True"}]);
        let done = d(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2, "conditions": available}),
        );
        assert!(deployment_progress(&done).done);
        let stale = d(
            json!({"observedGeneration": 1, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 2, "availableReplicas": 2, "conditions": available}),
        );
        assert!(!deployment_progress(&stale).done, "old generation");
        let old_left = d(
            json!({"observedGeneration": 2, "replicas": 3, "updatedReplicas": 2,
            "readyReplicas": 3, "availableReplicas": 2, "conditions": available}),
        );
        assert!(
            !deployment_progress(&old_left).done,
            "an old replica is left"
        );
        let half = d(
            json!({"observedGeneration": 2, "replicas": 2, "updatedReplicas": 2,
            "readyReplicas": 1, "availableReplicas": 1}),
        );
        let p = deployment_progress(&half);
        assert_eq!((p.ready, p.desired, p.done), (1, 2, false));
        let stuck = d(
            json!({"conditions": [{"type": "Progressing", "status": "False",
            "reason": "ProgressDeadlineExceeded", "message": "ReplicaSet \"web-1\" has timed out progressing."}]}),
        );
        assert_eq!(
            deployment_failure(&stuck).map(|f| f.reason),
            Some(Reason::ProgressDeadlineExceeded)
        );
    }
}
