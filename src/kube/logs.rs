//! Following the logs of every pod of a release (the log pane of `stack up`), surviving restarts.
//!
//! A watch on the release's pods decides which streams run: one per container instance, keyed by
//! pod uid, container name and restart count. A new pod, or a container whose restart count moves,
//! gets a new stream; a stream ends quietly when its container does. Containers already running
//! when following starts show their last few lines only; containers that start while we watch show
//! everything from their start.
//!
//! A stream can also end while its container keeps running (API server restart, network blip, a
//! kubelet that hit an error reading the log file). Whether the instance still runs is what the pod
//! watch last said, never the error text: while it runs, the stream is reopened with backoff from
//! the second of the last line shown (`sinceTime`), and lines already shown are dropped by their
//! timestamps (`Shown`), so nothing is shown twice or lost.
//!
//! Nothing here prints: lines go to the caller's `sink`.

use crate::error::StackError;
use ::kube::api::{Api, LogParams};
use ::kube::runtime::watcher::{self, watcher, Event};
use ::kube::runtime::WatchStreamExt;
use ::kube::{Client, ResourceExt};
use futures::{AsyncBufReadExt, TryStreamExt};
use k8s_openapi::api::core::v1::Pod;
use k8s_openapi::jiff::Timestamp;
use std::collections::{BTreeMap, BTreeSet};
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// Lines shown of a container that was already running when following started.
const TAIL_LINES: i64 = 10;
/// Opening (or reopening) a stream is tried this often in a row without showing anything (a
/// container that just started may not serve logs yet; a kubelet may be briefly unreachable).
const OPEN_ATTEMPTS: u32 = 6;
const FIRST_BACKOFF: Duration = Duration::from_millis(200);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// A stream that stayed open this long was working: its end starts the attempts afresh.
const STEADY: Duration = Duration::from_secs(10);

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
    // Pods listed since the watch (re)started: instances of pods missing from a relist are gone.
    let mut relisted = BTreeSet::new();
    let result = loop {
        let event = tokio::select! {
            () = shutdown.cancelled() => break Ok(()),
            Some(_) = streams.join_next(), if !streams.is_empty() => continue,
            event = events.try_next() => event,
        };
        let pod = match event {
            Ok(Some(Event::Init)) => {
                initial = true;
                relisted.clear();
                continue;
            }
            Ok(Some(Event::InitDone)) => {
                initial = false;
                // Dropping an instance's sender tells its stream the instance is gone.
                started.retain(|(uid, _), _| relisted.contains(uid));
                continue;
            }
            Ok(Some(Event::InitApply(pod))) => {
                relisted.insert(pod.uid().unwrap_or_default());
                pod
            }
            Ok(Some(Event::Apply(pod))) => pod,
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
        for (container, tail, running) in new_streams(&mut started, &pod, initial) {
            let params = LogParams {
                container: Some(container.clone()),
                follow: true,
                tail_lines: tail.then_some(TAIL_LINES),
                // Each line's timestamp is what a reopened stream resumes from.
                timestamps: true,
                ..LogParams::default()
            };
            let line = LogLine {
                resource: format!("{}/{container}", resource_name(&pod)),
                pod: pod.name_any(),
                container,
                line: String::new(),
            };
            streams.spawn(stream(pods.clone(), params, line, sink.clone(), running));
        }
    };
    streams.shutdown().await;
    result
}

/// The container instance whose stream was started, and what the pod watch last said of it.
struct Instance {
    restarts: i32,
    /// Whether it still runs (the same restart count, state running). Dropped when the instance
    /// is replaced by a restart or its pod is deleted: its stream then knows it is gone.
    running: watch::Sender<bool>,
}

/// (pod uid, container) → the instance whose stream was started.
type Started = BTreeMap<(String, String), Instance>;

/// The containers of `pod` that need a stream now, each with whether to show only its tail and
/// the watch of whether it still runs; records them in `started` and tells the streams already
/// started whether their instance still runs. `initial`: the pod was listed when following started.
fn new_streams(
    started: &mut Started,
    pod: &Pod,
    initial: bool,
) -> Vec<(String, bool, watch::Receiver<bool>)> {
    let mut new = Vec::new();
    for c in containers(pod) {
        let key = (pod.uid().unwrap_or_default(), c.name.clone());
        if let Some(instance) = started.get(&key) {
            let running = instance.restarts == c.restarts && c.running;
            instance
                .running
                .send_if_modified(|was| std::mem::replace(was, running) != running);
        }
        if !c.has_run || started.get(&key).is_some_and(|i| i.restarts >= c.restarts) {
            continue;
        }
        // A container seen at the start has history the user has seen before; one that starts
        // (or restarts) while we watch is shown from its first line.
        let tail = initial && !started.contains_key(&key);
        let (running, watch) = watch::channel(c.running);
        started.insert(
            key,
            Instance {
                restarts: c.restarts,
                running,
            },
        );
        new.push((c.name, tail, watch));
    }
    new
}

/// How far a container's log has been shown, so that a reopened stream shows only what is new.
/// Lines are told apart by the timestamps the kubelet adds (`timestamps=true`); the API passes
/// `sinceTime` on in whole seconds, so a reopened stream starts up to a second early.
#[derive(Debug, Default)]
struct Shown {
    /// The latest timestamp shown, and how many lines shown carry exactly it.
    last: Option<(Timestamp, usize)>,
    /// While replaying the start of a reopened stream: how many lines stamped `last` to drop.
    replaying: Option<usize>,
}

impl Shown {
    /// The parameters that reopen the stream first opened with `first`: from the second of the
    /// last line shown; with nothing shown yet, as first opened.
    fn resume(&mut self, first: &LogParams) -> LogParams {
        self.replaying = self.last.map(|(_, n)| n);
        match self.last {
            Some((ts, _)) => LogParams {
                since_time: Timestamp::from_second(ts.as_second()).ok(),
                tail_lines: None,
                ..first.clone()
            },
            None => first.clone(),
        }
    }

    /// Whether a line stamped `ts` is new (to show), recording it. A reopened stream first
    /// replays lines shown already: those stamped before the last one shown, and as many
    /// stamped exactly as it as were shown. A line without a timestamp is always new.
    fn admit(&mut self, ts: Option<Timestamp>) -> bool {
        let Some(ts) = ts else { return true };
        if let (Some(skip), Some((last, _))) = (self.replaying.as_mut(), self.last) {
            if ts < last {
                return false;
            }
            if ts == last && *skip > 0 {
                *skip -= 1;
                return false;
            }
            self.replaying = None;
        }
        match &mut self.last {
            Some((last, n)) if *last == ts => *n += 1,
            Some((last, _)) if *last > ts => {}
            last => *last = Some((ts, 1)),
        }
        true
    }
}

/// A line of a stream opened with `timestamps=true`: the kubelet's RFC 3339 stamp, a space, the
/// text. Text the kubelet writes itself (an error ending the stream) has no stamp.
fn split_timestamp(line: &str) -> (Option<Timestamp>, &str) {
    match line.split_once(' ') {
        Some((ts, text)) => match ts.parse::<Timestamp>() {
            Ok(ts) => (Some(ts), text),
            Err(_) => (None, line),
        },
        None => (None, line),
    }
}

/// Streams one container instance's log into `sink`, each line stamped like `template`, until
/// its stream ends and the instance no longer runs (`running`, kept by the pod watch). A stream
/// that ends while the instance runs is reopened where it stopped; after `OPEN_ATTEMPTS`
/// attempts in a row that show nothing, the instance is given up on quietly.
async fn stream(
    pods: Api<Pod>,
    first: LogParams,
    template: LogLine,
    sink: Arc<dyn Fn(LogLine) + Send + Sync>,
    mut running: watch::Receiver<bool>,
) {
    let mut shown = Shown::default();
    let mut params = first.clone();
    let mut opened = false;
    let mut fruitless = 0;
    let mut delay = FIRST_BACKOFF;
    loop {
        let mut fruitful = false;
        if let Ok(reader) = pods.log_stream(&template.pod, &params).await {
            opened = true;
            let since = Instant::now();
            let mut reader = pin!(reader);
            let mut raw = Vec::new();
            // Until the stream ends or fails (a line that is not UTF-8 does not end it).
            while matches!(reader.read_until(b'\n', &mut raw).await, Ok(n) if n > 0) {
                let text = String::from_utf8_lossy(&raw);
                let text = text.strip_suffix('\n').unwrap_or(&text);
                let text = text.strip_suffix('\r').unwrap_or(text);
                let (ts, text) = split_timestamp(text);
                if shown.admit(ts) {
                    fruitful = true;
                    sink(LogLine {
                        line: text.to_owned(),
                        ..template.clone()
                    });
                }
                raw.clear();
            }
            fruitful |= since.elapsed() >= STEADY;
        }
        if fruitful {
            fruitless = 0;
            delay = FIRST_BACKOFF;
        } else {
            fruitless += 1;
        }
        if fruitless >= OPEN_ATTEMPTS {
            return;
        }
        // A pod watch update (the container ended, the pod was deleted) cuts the wait short.
        tokio::select! {
            () = tokio::time::sleep(delay) => {}
            _ = running.changed() => {}
        }
        // Before the first open, any instance is retried (one that crashed at once still shows
        // why); after it, only one the pod watch still reports running.
        let gone = running.has_changed().is_err();
        if gone || (opened && !*running.borrow_and_update()) {
            return;
        }
        delay = (delay * 2).min(MAX_BACKOFF);
        params = shown.resume(&first);
    }
}

/// What the pod's status says of one container.
#[derive(Debug, PartialEq, Eq)]
struct ContainerState {
    name: String,
    restarts: i32,
    /// This instance has started: running, or terminated (a container that crashes at once
    /// still shows why).
    has_run: bool,
    running: bool,
}

/// Each container of `pod`, as its status reports it.
fn containers(pod: &Pod) -> Vec<ContainerState> {
    pod.status
        .iter()
        .flat_map(|s| s.container_statuses.iter().flatten())
        .map(|c| {
            let state = c.state.as_ref();
            let running = state.is_some_and(|s| s.running.is_some());
            ContainerState {
                name: c.name.clone(),
                restarts: c.restart_count,
                has_run: running || state.is_some_and(|s| s.terminated.is_some()),
                running,
            }
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

    /// `new_streams` without the watches: (container, tail only).
    fn started_now(started: &mut Started, pod: &Pod, initial: bool) -> Vec<(String, bool)> {
        new_streams(started, pod, initial)
            .into_iter()
            .map(|(c, tail, _)| (c, tail))
            .collect()
    }

    #[test]
    fn one_stream_per_container_instance_tail_only_for_what_was_already_running() {
        let running = json!({ "running": {} });
        let mut started = Started::new();
        assert_eq!(
            started_now(&mut started, &app(0, running.clone()), true),
            [("app".to_owned(), true)]
        );
        // Status updates of the same instance start nothing.
        assert!(started_now(&mut started, &app(0, running.clone()), false).is_empty());
        assert!(started_now(
            &mut started,
            &app(0, json!({ "terminated": { "exitCode": 1 } })),
            false
        )
        .is_empty());
        // The restarted container is new: shown from its first line.
        assert!(started_now(&mut started, &app(1, json!({ "waiting": {} })), false).is_empty());
        assert_eq!(
            started_now(&mut started, &app(1, running.clone()), false),
            [("app".to_owned(), false)]
        );
        // A pod that appears while we watch is shown whole; one that crashed at once still is.
        let mut started = Started::new();
        assert_eq!(
            started_now(
                &mut started,
                &app(0, json!({ "terminated": { "exitCode": 2 } })),
                false
            ),
            [("app".to_owned(), false)]
        );
    }

    #[test]
    fn a_stream_learns_from_the_pod_watch_whether_its_instance_still_runs() {
        let running = json!({ "running": {} });
        let mut started = Started::new();
        let (_, _, first) = new_streams(&mut started, &app(0, running.clone()), true).remove(0);
        assert!(*first.borrow());
        // It stops running: the stream is told.
        new_streams(
            &mut started,
            &app(0, json!({ "terminated": { "exitCode": 1 } })),
            false,
        );
        assert!(first.has_changed().unwrap() && !*first.borrow());
        // A restart replaces the instance: the old stream's watch closes, the new one runs.
        let (_, _, second) = new_streams(&mut started, &app(1, running.clone()), false).remove(0);
        assert!(first.has_changed().is_err());
        assert!(*second.borrow());
        // The pod is deleted: its instances are dropped, and so are their watches.
        started.retain(|(uid, _), _| uid != "u1");
        assert!(second.has_changed().is_err());
    }

    fn ts(text: &str) -> Option<Timestamp> {
        Some(text.parse().unwrap())
    }

    #[test]
    fn a_reopened_stream_shows_only_lines_not_shown_yet() {
        let first = LogParams {
            follow: true,
            tail_lines: Some(TAIL_LINES),
            timestamps: true,
            ..LogParams::default()
        };
        let mut shown = Shown::default();
        // Nothing shown yet: reopened as first opened.
        assert_eq!(shown.resume(&first).tail_lines, Some(TAIL_LINES));
        // Two lines in the same nanosecond, then one later in the same second.
        for t in ["12:00:00.5Z", "12:00:00.5Z", "12:00:00.7Z"] {
            assert!(shown.admit(ts(&format!("2026-01-01T{t}"))));
        }
        assert!(shown.admit(ts("2026-01-01T12:00:00.7Z")));
        // Reopened from the second of the last line (the API passes whole seconds on), no tail.
        let again = shown.resume(&first);
        assert_eq!(
            (again.since_time, again.tail_lines),
            (ts("2026-01-01T12:00:00Z"), None)
        );
        assert!(again.follow && again.timestamps);
        // The replay drops what was shown (both 0.7 lines), then shows what is new, even a third
        // line stamped 0.7 and a line stamped earlier once the replay is over.
        let replay = ["12:00:00.5Z", "12:00:00.5Z", "12:00:00.7Z", "12:00:00.7Z"];
        for t in replay {
            assert!(!shown.admit(ts(&format!("2026-01-01T{t}"))), "{t}");
        }
        assert!(shown.admit(ts("2026-01-01T12:00:00.7Z")));
        assert!(shown.admit(ts("2026-01-01T12:00:01Z")));
        assert!(shown.admit(ts("2026-01-01T12:00:00.9Z")));
        // Reopened again: three lines of 0.7 were not the last any more; 01 was.
        shown.resume(&first);
        assert!(!shown.admit(ts("2026-01-01T12:00:00.9Z")));
        assert!(!shown.admit(ts("2026-01-01T12:00:01Z")));
        assert!(shown.admit(ts("2026-01-01T12:00:02Z")));
        // Text the kubelet writes itself has no stamp and is shown as it comes.
        assert!(shown.admit(None));
    }

    #[test]
    fn lines_are_split_from_the_kubelets_timestamps() {
        assert_eq!(
            split_timestamp("2026-12-01T02:44:35.207820558Z line one"),
            (ts("2026-12-01T02:44:35.207820558Z"), "line one")
        );
        assert_eq!(
            split_timestamp("2026-12-01T02:44:35Z "),
            (ts("2026-12-01T02:44:35Z"), "")
        );
        let error = "failed to read log file \"/l/app.log\": read /l/app.log: is a directory";
        assert_eq!(split_timestamp(error), (None, error));
    }

    #[test]
    fn containers_report_restarts_and_whether_they_have_run() {
        let p = pod(json!({
            "metadata": { "name": "p" },
            "status": { "containerStatuses": [
                { "name": "app", "restartCount": 2, "ready": true, "image": "i", "imageID": "",
                  "state": { "running": { "startedAt": "2026-01-01T00:00:00Z" } } },
                { "name": "sidecar", "restartCount": 0, "ready": false, "image": "i", "imageID": "",
                  "state": { "waiting": { "reason": "ContainerCreating" } } },
                { "name": "init", "restartCount": 0, "ready": false, "image": "i", "imageID": "",
                  "state": { "terminated": { "exitCode": 0 } } }
            ] }
        }));
        let state = |name: &str, restarts, has_run, running| ContainerState {
            name: name.to_owned(),
            restarts,
            has_run,
            running,
        };
        assert_eq!(
            containers(&p),
            [
                state("app", 2, true, true),
                state("sidecar", 0, false, false),
                state("init", 0, true, false)
            ]
        );
    }
}
