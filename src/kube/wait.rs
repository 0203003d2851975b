//! Waiting for a release's workloads to roll out, through watches (never polling).
//!
//! Watches run side by side on one label selector: Deployments, StatefulSets and DaemonSets
//! (readiness and progress, judged as `kubectl rollout status` judges each kind),
//! Pods (named failures: image pulls, crash loops, config errors, unschedulable, failed hook pods)
//! and Jobs (failed Helm hook Jobs). Every event re-judges the whole picture, so the wait ends on the
//! event that decides it. Failures end the wait at once: a dev loop wants the reason now, not after
//! the timeout (a pod being deleted, or a pod of an already rolled-out Deployment, does not count).

pub use super::classify::{Failure, Reason, ResourceProgress};

use super::classify::{
    daemonset_progress, deployment_failure, deployment_progress, job_failure, pod_failures,
    statefulset_progress,
};
use crate::error::StackError;
use ::kube::api::{Api, LogParams};
use ::kube::runtime::watcher::{self, watcher, Event};
use ::kube::runtime::WatchStreamExt;
use ::kube::{Client, ResourceExt};
use futures::{Stream, StreamExt};
use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, StatefulSet};
use k8s_openapi::api::batch::v1::Job;
use k8s_openapi::api::core::v1::Pod;
use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::time::Duration;

/// How many log lines of a crashing container a failure carries.
const LAST_LOG_LINES: i64 = 20;

/// How a wait ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Readiness {
    /// Every Deployment matching the selector is rolled out and Available.
    Ready,
    /// Named reasons, one per failing resource (or per not-ready Deployment on timeout).
    Failed(Vec<Failure>),
}

/// Waits until every Deployment in `namespace` matching `selector` (e.g.
/// `app.kubernetes.io/instance=<release>`) is rolled out and Available, reporting each one's
/// progress whenever it changes.
///
/// Ends early with `Failed` when a matching pod shows a named failure or a hook fails; on timeout,
/// `Failed` names every Deployment that is not ready. No matching Deployment at all is `Ready`.
/// The API server refusing the watch (bad selector, no permission) is an error at once; an API
/// server that stops answering is retried with backoff and, at the timeout, `Unreachable`.
pub async fn wait_ready(
    client: &Client,
    namespace: &str,
    selector: &str,
    timeout: Duration,
    progress: &(dyn Fn(ResourceProgress) + Sync),
) -> Result<Readiness, StackError> {
    let config = watcher::Config::default().labels(selector);
    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let deployments_api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let jobs_api: Api<Job> = Api::namespaced(client.clone(), namespace);
    let statefulsets_api: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let daemonsets_api: Api<DaemonSet> = Api::namespaced(client.clone(), namespace);
    let mut deployments_events = pin!(watch(deployments_api, &config));
    let mut statefulset_events = pin!(watch(statefulsets_api, &config));
    let mut daemonset_events = pin!(watch(daemonsets_api, &config));
    let mut pod_events = pin!(watch(pods_api.clone(), &config));
    let mut job_events = pin!(watch(jobs_api, &config));
    let deadline = tokio::time::sleep(timeout);
    let mut deadline = pin!(deadline);

    let mut deployments = Store::default();
    let mut statefulsets = Store::default();
    let mut daemonsets = Store::default();
    let mut pods = Store::default();
    let mut jobs = Store::default();
    let mut reported: BTreeMap<String, ResourceProgress> = BTreeMap::new();
    let mut last_error: Option<String> = None;
    let fatal = |what: &str, e: &watcher::Error| refused(what, namespace, selector, e);

    loop {
        tokio::select! {
            ev = deployments_events.next() => match ev {
                Some(Ok(ev)) => deployments.apply(ev),
                Some(Err(e)) => { fatal("deployments", &e)?; last_error = Some(e.to_string()) }
                None => last_error = Some("the deployment watch ended".into()),
            },
            ev = pod_events.next() => match ev {
                Some(Ok(ev)) => pods.apply(ev),
                Some(Err(e)) => { fatal("pods", &e)?; last_error = Some(e.to_string()) }
                None => last_error = Some("the pod watch ended".into()),
            },
            ev = statefulset_events.next() => match ev {
                Some(Ok(ev)) => statefulsets.apply(ev),
                Some(Err(e)) => { fatal("statefulsets", &e)?; last_error = Some(e.to_string()) }
                None => last_error = Some("the statefulset watch ended".into()),
            },
            ev = daemonset_events.next() => match ev {
                Some(Ok(ev)) => daemonsets.apply(ev),
                Some(Err(e)) => { fatal("daemonsets", &e)?; last_error = Some(e.to_string()) }
                None => last_error = Some("the daemonset watch ended".into()),
            },
            ev = job_events.next() => match ev {
                Some(Ok(ev)) => jobs.apply(ev),
                Some(Err(e)) => { fatal("jobs", &e)?; last_error = Some(e.to_string()) }
                None => last_error = Some("the job watch ended".into()),
            },
            () = &mut deadline => {
                let workloads = workload_progress(&deployments, &statefulsets, &daemonsets);
                return if deployments.listed && statefulsets.listed && daemonsets.listed && pods.listed && jobs.listed {
                    Ok(Readiness::Failed(timed_out(workloads, &pods, timeout)))
                } else {
                    Err(StackError::Unreachable {
                        what: format!("the Kubernetes API server (watching namespace `{namespace}`)"),
                        hint: format!(
                            "no complete picture of `{selector}` within {}s: {}",
                            timeout.as_secs(),
                            last_error.as_deref().unwrap_or("no answer")
                        ),
                    })
                };
            }
        }
        if !(deployments.listed && statefulsets.listed && daemonsets.listed) {
            continue;
        }
        let workloads = workload_progress(&deployments, &statefulsets, &daemonsets);
        let total = workloads.len();
        let mut done = BTreeSet::new();
        for p in workloads {
            if p.done {
                done.insert(p.resource.clone());
            }
            if reported.get(&p.resource) != Some(&p) {
                reported.insert(p.resource.clone(), p.clone());
                progress(p);
            }
        }
        if !(pods.listed && jobs.listed) {
            continue;
        }
        let hooks: Vec<Failure> = jobs.live.values().filter_map(job_failure).collect();
        if !hooks.is_empty() {
            return Ok(Readiness::Failed(hooks));
        }
        if done.len() == total {
            return Ok(Readiness::Ready);
        }
        let failures: Vec<Failure> = deployments
            .live
            .values()
            .filter_map(deployment_failure)
            .chain(pods.live.values().flat_map(pod_failures))
            .filter(|f| !f.owner.as_ref().is_some_and(|o| done.contains(o)))
            .collect();
        if !failures.is_empty() {
            return Ok(Readiness::Failed(with_logs(&pods_api, failures).await));
        }
    }
}

/// A watch on one kind, retried with kube-rs's default backoff when the connection drops.
fn watch<K>(
    api: Api<K>,
    config: &watcher::Config,
) -> impl Stream<Item = Result<Event<K>, watcher::Error>> + Send
where
    K: ::kube::Resource + Clone + std::fmt::Debug + serde::de::DeserializeOwned + Send + 'static,
{
    watcher(api, config.clone()).default_backoff()
}

/// An error that retrying cannot fix (bad selector, no permission, unknown resource) ends the wait.
fn refused(
    what: &str,
    namespace: &str,
    selector: &str,
    e: &watcher::Error,
) -> Result<(), StackError> {
    let status = match e {
        watcher::Error::InitialListFailed(::kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(::kube::Error::Api(s)) => s,
        _ => return Ok(()),
    };
    match status.code {
        400 | 401 | 403 | 404 | 422 => Err(StackError::config(
            None,
            format!(
                "the API server refused to list {what} in namespace `{namespace}` with selector `{selector}`: {}",
                status.message
            ),
            "check the selector, the namespace and the context's permissions",
        )),
        _ => Ok(()),
    }
}

/// The rollout progress of every workload the selector matches, of every kind waited on.
fn workload_progress(
    deployments: &Store<Deployment>,
    statefulsets: &Store<StatefulSet>,
    daemonsets: &Store<DaemonSet>,
) -> Vec<ResourceProgress> {
    deployments
        .live
        .values()
        .map(deployment_progress)
        .chain(statefulsets.live.values().map(statefulset_progress))
        .chain(daemonsets.live.values().map(daemonset_progress))
        .collect()
}

/// One timeout failure per workload not rolled out, naming its pods that are not ready.
fn timed_out(
    workloads: Vec<ResourceProgress>,
    pods: &Store<Pod>,
    timeout: Duration,
) -> Vec<Failure> {
    workloads
        .into_iter()
        .filter(|p| !p.done)
        .map(|p| {
            let waiting: Vec<String> = pods
                .live
                .values()
                .filter(|pod| super::classify::pod_owner(pod).as_deref() == Some(&p.resource))
                .filter(|pod| !pod_ready(pod))
                .map(pod_state)
                .collect();
            let mut message = format!(
                "not ready after {}s: {}/{} ready, {} updated, {} available",
                timeout.as_secs(),
                p.ready,
                p.desired,
                p.updated,
                p.available
            );
            if !waiting.is_empty() {
                message.push_str(&format!("; pods not ready: {}", waiting.join(", ")));
            }
            Failure {
                resource: p.resource,
                container: None,
                owner: None,
                reason: Reason::Timeout,
                message,
                last_logs: Vec::new(),
            }
        })
        .collect()
}

fn pod_ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// `web-abc (Pending: ContainerCreating)`.
fn pod_state(pod: &Pod) -> String {
    let status = pod.status.as_ref();
    let phase = status.and_then(|s| s.phase.as_deref()).unwrap_or("Unknown");
    let waiting: Vec<&str> = status
        .and_then(|s| s.container_statuses.as_ref())
        .into_iter()
        .flatten()
        .filter_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.as_deref())
        .collect();
    if waiting.is_empty() {
        format!("{} ({phase})", pod.name_any())
    } else {
        format!("{} ({phase}: {})", pod.name_any(), waiting.join(", "))
    }
}

/// Adds the last log lines to crash-looping containers' failures.
async fn with_logs(pods: &Api<Pod>, mut failures: Vec<Failure>) -> Vec<Failure> {
    for f in &mut failures {
        if f.reason != Reason::CrashLoopBackOff {
            continue;
        }
        let (Some(pod), Some(container)) = (f.resource.strip_prefix("pod/"), &f.container) else {
            continue;
        };
        f.last_logs = match last_logs(pods, pod, container, LAST_LOG_LINES).await {
            Ok(text) => text.lines().map(str::to_owned).collect(),
            Err(why) => vec![format!("no logs: {why}")],
        };
    }
    failures
}

/// The last `lines` of the previous instance of a container (the one that crashed), else of the
/// current one.
pub(crate) async fn last_logs(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    lines: i64,
) -> Result<String, String> {
    let params = |previous| LogParams {
        container: Some(container.to_owned()),
        previous,
        tail_lines: Some(lines),
        ..Default::default()
    };
    match pods.logs(pod, &params(true)).await {
        Ok(text) if !text.is_empty() => Ok(text),
        previous => match pods.logs(pod, &params(false)).await {
            Ok(text) => Ok(text),
            Err(e) => Err(match previous {
                Err(p) => format!(
                    "previous: {}; current: {}",
                    api_message(&p),
                    api_message(&e)
                ),
                Ok(_) => api_message(&e),
            }),
        },
    }
}

/// The API server's message for an API error (not the Debug dump kube-rs's Display adds).
pub(crate) fn api_message(e: &::kube::Error) -> String {
    match e {
        ::kube::Error::Api(s) => s.message.clone(),
        e => e.to_string(),
    }
}

/// What one watch has seen: the objects by name, and whether the initial list has completed.
struct Store<K> {
    live: BTreeMap<String, K>,
    /// Objects of a (re)list in progress; replace `live` at `InitDone`.
    relist: Option<BTreeMap<String, K>>,
    listed: bool,
}

impl<K> Default for Store<K> {
    fn default() -> Self {
        Store {
            live: BTreeMap::new(),
            relist: None,
            listed: false,
        }
    }
}

impl<K: ResourceExt> Store<K> {
    fn apply(&mut self, ev: Event<K>) {
        match ev {
            Event::Apply(o) => {
                self.live.insert(o.name_any(), o);
            }
            Event::Delete(o) => {
                self.live.remove(&o.name_any());
            }
            Event::Init => self.relist = Some(BTreeMap::new()),
            Event::InitApply(o) => {
                self.relist
                    .get_or_insert_with(BTreeMap::new)
                    .insert(o.name_any(), o);
            }
            Event::InitDone => {
                self.live = self.relist.take().unwrap_or_default();
                self.listed = true;
            }
        }
    }
}
