//! Following the logs of every pod of a release (the log pane of `stack up`), surviving restarts.
//!
//! A watch on the release's pods decides which streams run: one per container instance, keyed by
//! pod uid, container name and restart count. A new pod, or a container whose restart count moves,
//! gets a new stream; a stream ends quietly when its container does. Containers already running
//! when following starts show their last few lines only; containers that start while we watch show
//! everything from their start.
//!
//! Nothing here prints: lines go to the caller's `sink`.

use crate::error::StackError;
use ::kube::api::{Api, LogParams};
use ::kube::runtime::watcher::{self, watcher, Event};
use ::kube::runtime::WatchStreamExt;
use ::kube::{Client, ResourceExt};
use futures::{AsyncBufReadExt, StreamExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use std::collections::BTreeMap;
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Lines shown of a container that was already running when following started.
const TAIL_LINES: i64 = 10;
/// Opening a stream is retried this often (a container that just started may not serve logs yet).
const OPEN_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// One line of a container's output.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LogLine {
    /// `<deployment>/<container>` for a Deployment's pod (or the StatefulSet, DaemonSet, Job that
    /// owns it), else `<pod>/<container>`: what the user named, stable across pod restarts.
    pub resource: String,
    pub pod: String,
    pub container: String,
    /// The text, without the line break.
    pub line: String,
}

/// Follows every container of every pod in `namespace` matching `selector` until `shutdown` is
/// cancelled, then ends every stream before returning. Owned arguments, so it can be spawned.
///
/// The API server refusing the watch (bad selector, no permission) is an error at once; an API
/// server that stops answering is retried with backoff.
pub async fn follow(
    client: Client,
    namespace: String,
    selector: String,
    sink: impl Fn(LogLine) + Send + Sync + 'static,
    shutdown: CancellationToken,
) -> Result<(), StackError> {
    let sink: Arc<dyn Fn(LogLine) + Send + Sync> = Arc::new(sink);
    let pods: Api<Pod> = Api::namespaced(client, &namespace);
    let mut events =
        pin!(watcher(pods.clone(), watcher::Config::default().labels(&selector)).default_backoff());
    let mut started = Started::new();
    let mut streams = JoinSet::new();
    let mut initial = true;
    let result = loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            Some(_) = streams.join_next(), if !streams.is_empty() => continue,
            event = events.try_next() => event,
        };
        let pod = match event {
            Ok(Some(Event::Init)) => {
                initial = true;
                continue;
            }
            Ok(Some(Event::InitDone)) => {
                initial = false;
                continue;
            }
            Ok(Some(Event::InitApply(pod) | Event::Apply(pod))) => pod,
            Ok(Some(Event::Delete(pod))) => {
                let uid = pod.uid().unwrap_or_default();
                started.retain(|(u, _), _| *u != uid);
                continue;
            }
            Ok(None) => break Ok(()),
            Err(e) => match refused(&namespace, &selector, &e) {
                Some(error) => break Err(error),
                None => continue,
            },
        };
        for (container, tail) in new_streams(&mut started, &pod, initial) {
            let params = LogParams {
                container: Some(container.clone()),
                follow: true,
                tail_lines: tail.then_some(TAIL_LINES),
                ..LogParams::default()
            };
            let line = LogLine {
                resource: format!("{}/{container}", resource_name(&pod)),
                pod: pod.name_any(),
                container,
                line: String::new(),
            };
            streams.spawn(stream(pods.clone(), params, line, sink.clone()));
        }
    };
    streams.shutdown().await;
    result
}

/// (pod uid, container) → the restart count whose stream was started.
type Started = BTreeMap<(String, String), i32>;

/// The containers of `pod` that need a stream now, each with whether to show only its tail, and
/// records them in `started`. `initial`: the pod was listed when following started.
fn new_streams(started: &mut Started, pod: &Pod, initial: bool) -> Vec<(String, bool)> {
    let mut new = Vec::new();
    for (container, restarts, has_run) in containers(pod) {
        let key = (pod.uid().unwrap_or_default(), container.clone());
        if !has_run || started.get(&key).is_some_and(|&r| r >= restarts) {
            continue;
        }
        // A container seen at the start has history the user has seen before; one that starts
        // (or restarts) while we watch is shown from its first line.
        let tail = initial && !started.contains_key(&key);
        started.insert(key, restarts);
        new.push((container, tail));
    }
    new
}

/// Streams one container's log into `sink`, each line stamped like `template`.
async fn stream(
    pods: Api<Pod>,
    params: LogParams,
    template: LogLine,
    sink: Arc<dyn Fn(LogLine) + Send + Sync>,
) {
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 1;
    let reader = loop {
        match pods.log_stream(&template.pod, &params).await {
            Ok(reader) => break reader,
            Err(_) if attempt < OPEN_ATTEMPTS => {
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
                attempt += 1;
            }
            // The container is gone or never served logs: nothing to show.
            Err(_) => return,
        }
    };
    let mut lines = pin!(reader.lines());
    while let Some(Ok(line)) = lines.next().await {
        sink(LogLine {
            line,
            ..template.clone()
        });
    }
}

/// Each container of `pod`: (name, restart count, whether this instance has started: running, or
/// terminated, so a container that crashes at once still shows why).
fn containers(pod: &Pod) -> Vec<(String, i32, bool)> {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| {
            let has_run = c
                .state
                .as_ref()
                .is_some_and(|s| s.running.is_some() || s.terminated.is_some());
            (c.name.clone(), c.restart_count, has_run)
        })
        .collect()
}

/// The name the user knows a pod by: its Deployment (through the ReplicaSet named
/// `<deployment>-<pod-template-hash>`), its other controller, else the pod itself.
fn resource_name(pod: &Pod) -> String {
    let owner = pod
        .owner_references()
        .iter()
        .find(|o| o.controller == Some(true));
    let Some(owner) = owner else {
        return pod.name_any();
    };
    if owner.kind == "ReplicaSet" {
        if let Some(deployment) = pod
            .labels()
            .get("pod-template-hash")
            .and_then(|hash| owner.name.strip_suffix(&format!("-{hash}")))
        {
            return deployment.to_owned();
        }
    }
    owner.name.clone()
}

/// An error that retrying cannot fix (bad selector, no permission) ends following.
fn refused(namespace: &str, selector: &str, e: &watcher::Error) -> Option<StackError> {
    let status = match e {
        watcher::Error::InitialListFailed(::kube::Error::Api(s))
        | watcher::Error::WatchStartFailed(::kube::Error::Api(s)) => s,
        _ => return None,
    };
    matches!(status.code, 400 | 401 | 403 | 404 | 422).then(|| {
        StackError::config(
            None,
            format!(
                "the API server refused to watch pods in namespace `{namespace}` with selector `{selector}`: {}",
                status.message
            ),
            "check the selector, the namespace and the context's permissions",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(value: serde_json::Value) -> Pod {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn a_deployments_pod_is_named_after_the_deployment() {
        let p = pod(json!({
            "metadata": {
                "name": "web-7d9f8c6b5-x2k4q",
                "labels": { "pod-template-hash": "7d9f8c6b5" },
                "ownerReferences": [{ "apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-7d9f8c6b5", "uid": "1", "controller": true }]
            }
        }));
        assert_eq!(resource_name(&p), "web");
    }

    #[test]
    fn other_controllers_and_bare_pods_keep_their_names() {
        let set = pod(json!({
            "metadata": { "name": "db-0", "ownerReferences": [{ "apiVersion": "apps/v1",
                "kind": "StatefulSet", "name": "db", "uid": "1", "controller": true }] }
        }));
        assert_eq!(resource_name(&set), "db");
        let bare = pod(json!({ "metadata": { "name": "debug" } }));
        assert_eq!(resource_name(&bare), "debug");
    }

    fn app(restarts: i32, state: serde_json::Value) -> Pod {
        pod(json!({
            "metadata": { "name": "p", "uid": "u1" },
            "status": { "containerStatuses": [
                { "name": "app", "restartCount": restarts, "ready": true, "image": "i",
                  "imageID": "", "state": state }
            ] }
        }))
    }

    #[test]
    fn one_stream_per_container_instance_tail_only_for_what_was_already_running() {
        let running = json!({ "running": {} });
        let mut started = Started::new();
        assert_eq!(
            new_streams(&mut started, &app(0, running.clone()), true),
            [("app".to_owned(), true)]
        );
        // Status updates of the same instance start nothing.
        assert!(new_streams(&mut started, &app(0, running.clone()), false).is_empty());
        assert!(new_streams(
            &mut started,
            &app(0, json!({ "terminated": { "exitCode": 1 } })),
            false
        )
        .is_empty());
        // The restarted container is new: shown from its first line.
        assert!(new_streams(&mut started, &app(1, json!({ "waiting": {} })), false).is_empty());
        assert_eq!(
            new_streams(&mut started, &app(1, running.clone()), false),
            [("app".to_owned(), false)]
        );
        // A pod that appears while we watch is shown whole; one that crashed at once still is.
        let mut started = Started::new();
        assert_eq!(
            new_streams(
                &mut started,
                &app(0, json!({ "terminated": { "exitCode": 2 } })),
                false
            ),
            [("app".to_owned(), false)]
        );
    }

    #[test]
    fn containers_report_restarts_and_whether_they_have_run() {
        let p = pod(json!({
            "metadata": { "name": "p" },
            "status": { "containerStatuses": [
                { "name": "app", "restartCount": 2, "ready": true, "image": "i", "imageID": "",
                  "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } },
                { "name": "sidecar", "restartCount": 0, "ready": false, "image": "i", "imageID": "",
                  "state": { "waiting": { "reason": "ContainerCreating" } } }
            ] }
        }));
        assert_eq!(
            containers(&p),
            [
                ("app".to_owned(), 2, true),
                ("sidecar".to_owned(), 0, false)
            ]
        );
    }
}
