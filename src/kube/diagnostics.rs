//! A diagnostics directory for a release that did not become ready: what a person (or a CI
//! artifact upload) needs to see why, without a live cluster.
//!
//! ```text
//! <dir>/events.txt            every event of the namespace, oldest first
//! <dir>/pods.txt, pods.json   the selector's pods: a table, and the full objects (a v1 List)
//! <dir>/describe/<pod>.txt    per pod, what `kubectl describe pod` shows: conditions, container
//!                             states (init first), restarts, the pod's events
//! <dir>/deployments.json      the selector's Deployments (a v1 List)
//! <dir>/logs/<pod>_<container>.log, .previous.log   the last 200 lines, current and previous instance
//! <dir>/helm-status.json      `helm status -o json` (or helm-status.error.txt)
//! ```
//!
//! Best effort: whatever cannot be read is recorded (a log file says `no logs: <why>`) and listed in
//! [`Collected::gaps`]; only an unwritable directory is an error. Every file is written whole
//! (temp file + rename).

use super::wait::api_message;
use crate::error::StackError;
use crate::state::write_atomic;
use crate::tool::{Cmd, Runner};
use ::kube::api::{Api, ListParams, LogParams};
use ::kube::{Client, ResourceExt};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Event, Pod};
use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use std::path::{Path, PathBuf};

/// Lines of each container log kept.
const LOG_TAIL_LINES: i64 = 200;
/// Log requests in flight at once.
const LOG_CONCURRENCY: usize = 4;

/// `helm status -o json` of the release, as the release layer builds it (pinned to the target's
/// kubeconfig and context), run for the diagnostics bundle.
pub struct HelmStatus<'a> {
    pub runner: &'a dyn Runner,
    pub cmd: Cmd,
}

/// What was written.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Collected {
    pub dir: PathBuf,
    /// Files written, relative to `dir`, in the order written.
    pub files: Vec<PathBuf>,
    /// What could not be collected, and why.
    pub gaps: Vec<String>,
}

impl Collected {
    fn write(&mut self, name: impl Into<PathBuf>, contents: &[u8]) -> Result<(), StackError> {
        let name = name.into();
        let path = self.dir.join(&name);
        write_atomic(&path, contents).map_err(|e| unwritable(&path, e))?;
        self.files.push(name);
        Ok(())
    }
}

fn unwritable(path: &Path, e: std::io::Error) -> StackError {
    StackError::config(
        None,
        format!("cannot write diagnostics to {}: {e}", path.display()),
        "choose a writable diagnostics directory",
    )
}

/// Collects events, pods, Deployments, logs and (with `helm`) the release status of `selector` in
/// `namespace` into `dir`. The helm call runs on the calling thread (it is one short process).
pub async fn collect(
    client: &Client,
    namespace: &str,
    selector: &str,
    dir: &Path,
    helm: Option<&HelmStatus<'_>>,
) -> Result<Collected, StackError> {
    std::fs::create_dir_all(dir.join("logs")).map_err(|e| unwritable(dir, e))?;
    let mut out = Collected {
        dir: dir.to_owned(),
        ..Default::default()
    };
    let selected = ListParams::default().labels(selector);

    let events: Api<Event> = Api::namespaced(client.clone(), namespace);
    let all_events = match events.list(&ListParams::default()).await {
        Ok(list) => Ok(list.items),
        Err(e) => {
            out.gaps.push(format!("events: {}", api_message(&e)));
            Err(format!("no events: {}\n", api_message(&e)))
        }
    };
    let text = match &all_events {
        Ok(items) => events_text(namespace, items.clone()),
        Err(text) => text.clone(),
    };
    out.write("events.txt", text.as_bytes())?;

    let pods_api: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let pods = match pods_api.list(&selected).await {
        Ok(list) => list.items,
        Err(e) => {
            out.gaps.push(format!("pods: {}", api_message(&e)));
            Vec::new()
        }
    };
    out.write("pods.txt", pods_table(&pods).as_bytes())?;
    out.write("pods.json", &list_json("v1", &pods))?;
    let no_events = Vec::new();
    for pod in &pods {
        let events = all_events.as_ref().unwrap_or(&no_events);
        out.write(
            PathBuf::from("describe").join(format!("{}.txt", pod.name_any())),
            describe_pod(pod, events).as_bytes(),
        )?;
    }

    let deployments: Api<Deployment> = Api::namespaced(client.clone(), namespace);
    let items = match deployments.list(&selected).await {
        Ok(list) => list.items,
        Err(e) => {
            out.gaps.push(format!("deployments: {}", api_message(&e)));
            Vec::new()
        }
    };
    out.write("deployments.json", &list_json("v1", &items))?;

    let wanted: Vec<(String, String, bool)> = pods
        .iter()
        .flat_map(|pod| {
            let spec = pod.spec.as_ref();
            let containers = spec
                .and_then(|s| s.init_containers.as_ref())
                .into_iter()
                .flatten()
                .chain(spec.map(|s| &s.containers).into_iter().flatten());
            containers
                .flat_map(|c| [false, true].map(|prev| (pod.name_any(), c.name.clone(), prev)))
                .collect::<Vec<_>>()
        })
        .collect();
    let logs: Vec<_> = futures::stream::iter(wanted)
        .map(|(pod, container, previous)| {
            let api = pods_api.clone();
            async move {
                let params = LogParams {
                    container: Some(container.clone()),
                    previous,
                    tail_lines: Some(LOG_TAIL_LINES),
                    ..Default::default()
                };
                let text = api.logs(&pod, &params).await.map_err(|e| api_message(&e));
                (pod, container, previous, text)
            }
        })
        .buffered(LOG_CONCURRENCY)
        .collect()
        .await;
    for (pod, container, previous, text) in logs {
        let suffix = if previous { ".previous.log" } else { ".log" };
        let text = text.unwrap_or_else(|why| {
            let which = if previous { "previous " } else { "" };
            out.gaps
                .push(format!("{which}logs of {pod}/{container}: {why}"));
            format!("no logs: {why}\n")
        });
        out.write(
            Path::new("logs").join(format!("{pod}_{container}{suffix}")),
            text.as_bytes(),
        )?;
    }

    if let Some(helm) = helm {
        let result = helm.runner.run(&helm.cmd).map_err(|e| e.to_string());
        match result {
            Ok(output) => out.write("helm-status.json", output.stdout.as_bytes())?,
            Err(why) => {
                out.gaps.push(format!("helm status: {why}"));
                out.write("helm-status.error.txt", format!("{why}\n").as_bytes())?;
            }
        }
    }
    Ok(out)
}

/// `TIME  TYPE  REASON  KIND/NAME  MESSAGE (xN)`, oldest first.
/// What `kubectl describe pod` shows that matters for a failure: node, phase, conditions, each
/// container's (init ones first) image, state, last state, readiness and restarts, and the pod's
/// events oldest first.
fn describe_pod(pod: &Pod, events: &[Event]) -> String {
    use k8s_openapi::api::core::v1::ContainerState;
    let spec = pod.spec.clone().unwrap_or_default();
    let status = pod.status.clone().unwrap_or_default();
    let mut s = format!(
        "Name:       {}\nNamespace:  {}\nNode:       {}\nStatus:     {}{}\nIP:         {}\n",
        pod.name_any(),
        pod.namespace().unwrap_or_default(),
        spec.node_name.as_deref().unwrap_or("<none>"),
        status.phase.as_deref().unwrap_or("Unknown"),
        status
            .reason
            .as_deref()
            .map(|r| format!(" ({r})"))
            .unwrap_or_default(),
        status.pod_ip.as_deref().unwrap_or("<none>"),
    );
    s.push_str("Conditions:\n");
    for c in status.conditions.iter().flatten() {
        s.push_str(&format!(
            "  {:<16} {:<6} {} {}\n",
            c.type_,
            c.status,
            c.reason.as_deref().unwrap_or(""),
            c.message.as_deref().unwrap_or("")
        ));
    }
    let state = |st: Option<&ContainerState>| -> String {
        match st {
            Some(ContainerState {
                waiting: Some(w), ..
            }) => format!(
                "Waiting ({}){}",
                w.reason.as_deref().unwrap_or("-"),
                w.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            Some(ContainerState {
                running: Some(r), ..
            }) => format!(
                "Running since {}",
                r.started_at
                    .as_ref()
                    .map_or_else(|| "?".into(), |t| t.0.to_string())
            ),
            Some(ContainerState {
                terminated: Some(t),
                ..
            }) => format!(
                "Terminated ({}), exit code {}{}",
                t.reason.as_deref().unwrap_or("-"),
                t.exit_code,
                t.message
                    .as_deref()
                    .map(|m| format!(": {m}"))
                    .unwrap_or_default()
            ),
            _ => "<none>".into(),
        }
    };
    let statuses: Vec<_> = status
        .init_container_statuses
        .iter()
        .flatten()
        .chain(status.container_statuses.iter().flatten())
        .collect();
    for (init, c) in spec
        .init_containers
        .iter()
        .flatten()
        .map(|c| (true, c))
        .chain(spec.containers.iter().map(|c| (false, c)))
    {
        let st = statuses.iter().find(|st| st.name == c.name);
        s.push_str(&format!(
            "{} {}:\n  Image:       {}\n  State:       {}\n  Last State:  {}\n  Ready:       {}\n  Restarts:    {}\n",
            if init { "Init container" } else { "Container" },
            c.name,
            c.image.as_deref().unwrap_or("<none>"),
            state(st.and_then(|st| st.state.as_ref())),
            state(st.and_then(|st| st.last_state.as_ref())),
            st.is_some_and(|st| st.ready),
            st.map_or(0, |st| st.restart_count),
        ));
    }
    let mine: Vec<Event> = events
        .iter()
        .filter(|e| e.involved_object.name.as_deref() == Some(pod.name_any().as_str()))
        .cloned()
        .collect();
    s.push_str(
        &events_text(&pod.namespace().unwrap_or_default(), mine).replacen(
            "# events in namespace",
            "Events (namespace",
            1,
        ),
    );
    s
}

fn events_text(namespace: &str, mut events: Vec<Event>) -> String {
    events.sort_by_key(|e| (event_time(e), e.metadata.name.clone()));
    let mut s = format!(
        "# events in namespace {namespace}, oldest first ({})\n",
        events.len()
    );
    for e in &events {
        // Fixed precision keeps the column aligned (and sortable as text).
        let time = event_time(e).map_or_else(|| "-".to_owned(), |t| format!("{t:.6}"));
        let object = format!(
            "{}/{}",
            e.involved_object
                .kind
                .as_deref()
                .unwrap_or("?")
                .to_lowercase(),
            e.involved_object.name.as_deref().unwrap_or("?")
        );
        let count = match e.count {
            Some(n) if n > 1 => format!(" (x{n})"),
            _ => String::new(),
        };
        s.push_str(&format!(
            "{time}  {:<7}  {:<24}  {object}  {}{count}\n",
            e.type_.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("-"),
            e.message.as_deref().unwrap_or("").trim_end(),
        ));
    }
    s
}

/// When an event last happened: the newest of its timestamps.
fn event_time(e: &Event) -> Option<Timestamp> {
    e.last_timestamp
        .as_ref()
        .map(|t| t.0)
        .or(e.event_time.as_ref().map(|t| t.0))
        .or(e.first_timestamp.as_ref().map(|t| t.0))
        .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
}

/// A `kubectl get pods -o wide`-like table.
fn pods_table(pods: &[Pod]) -> String {
    let mut rows = vec![[
        "NAME".to_owned(),
        "READY".into(),
        "STATUS".into(),
        "RESTARTS".into(),
        "NODE".into(),
        "IP".into(),
        "OWNER".into(),
    ]];
    for pod in pods {
        let status = pod.status.clone().unwrap_or_default();
        let containers = status.container_statuses.clone().unwrap_or_default();
        let ready = containers.iter().filter(|c| c.ready).count();
        let total = pod.spec.as_ref().map_or(0, |s| s.containers.len());
        let restarts: i32 = containers.iter().map(|c| c.restart_count).sum();
        let waiting = status
            .init_container_statuses
            .iter()
            .flatten()
            .chain(&containers)
            .find_map(|c| c.state.as_ref()?.waiting.as_ref()?.reason.clone());
        let phase = if pod.metadata.deletion_timestamp.is_some() {
            "Terminating".to_owned()
        } else {
            waiting.unwrap_or_else(|| status.phase.clone().unwrap_or_else(|| "Unknown".into()))
        };
        rows.push([
            pod.name_any(),
            format!("{ready}/{total}"),
            phase,
            restarts.to_string(),
            pod.spec
                .as_ref()
                .and_then(|s| s.node_name.clone())
                .unwrap_or_else(|| "<none>".into()),
            status.pod_ip.clone().unwrap_or_else(|| "<none>".into()),
            super::classify::pod_owner(pod).unwrap_or_else(|| "<none>".into()),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len())
        .map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0))
        .collect();
    rows.iter()
        .map(|r| {
            let line: Vec<String> = r
                .iter()
                .zip(&widths)
                .map(|(cell, w)| format!("{cell:<w$}"))
                .collect();
            format!("{}\n", line.join("   ").trim_end())
        })
        .collect()
}

/// Objects as a `List` document `kubectl` reads back (`kubectl get -f pods.json`).
fn list_json<T: Serialize>(api_version: &str, items: &[T]) -> Vec<u8> {
    let doc = serde_json::json!({"apiVersion": api_version, "kind": "List", "items": items});
    let mut bytes = serde_json::to_vec_pretty(&doc).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn events_sorted_by_their_latest_time() {
        let ev = |name: &str, last: &str, reason: &str| -> Event {
            serde_json::from_value(json!({
                "metadata": {"name": name}, "involvedObject": {"kind": "Pod", "name": "web-1"},
                "lastTimestamp": last, "type": "Warning", "reason": reason, "message": "m", "count": 3
            }))
            .unwrap()
        };
        let text = events_text(
            "ns",
            vec![
                ev("b", "2026-01-01T00:00:02Z", "BackOff"),
                ev("a", "2026-01-01T00:00:01Z", "Failed"),
            ],
        );
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "# events in namespace ns, oldest first (2)");
        assert!(lines[1].starts_with("2026-01-01T00:00:01.000000Z  Warning  Failed"));
        assert!(lines[1].ends_with("pod/web-1  m (x3)"), "{}", lines[1]);
        assert!(lines[2].contains("BackOff"));
    }

    #[test]
    fn pod_table_shows_the_waiting_reason() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "web-1"},
            "spec": {"containers": [{"name": "app"}], "nodeName": "n1"},
            "status": {"phase": "Running", "podIP": "10.0.0.1", "containerStatuses": [{
                "name": "app", "image": "i", "imageID": "", "ready": false, "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}}}]}
        }))
        .unwrap();
        assert_eq!(
            pods_table(&[pod]),
            "NAME    READY   STATUS             RESTARTS   NODE   IP         OWNER\n\
             web-1   0/1     CrashLoopBackOff   2          n1     10.0.0.1   <none>\n"
        );
    }
}
