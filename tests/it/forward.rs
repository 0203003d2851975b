//! `stack::kube::forward` and `stack::kube::logs` against the rig (tier "rig"): the real API server
//! and controllers (Deployments replace deleted pods); kwok plays the kubelet and maps port-forwards
//! (`PortForward` objects) to local TCP servers and logs (`ClusterLogs`) to local files. Each test
//! works in its own namespace.

use crate::support;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Namespace as NamespaceObject, Pod};
use kube::api::{Api, DeleteParams, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::json;
use stack::kube::forward::{serve, Forward, ForwardEvent, ForwardTarget};
use stack::kube::logs::{follow, LogLine};
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

struct Rig {
    client: kube::Client,
    rt: tokio::runtime::Runtime,
}

fn rig() -> Option<Rig> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let found = support::rig_env().and_then(|env| {
        let kubeconfig = env.vars.get("KUBECONFIG").ok_or("no KUBECONFIG")?.clone();
        rt.block_on(stack::kube::client(Path::new(&kubeconfig), "stack-rig"))
            .map_err(|e| format!("{e} (run `cargo xtask rig up`)"))
    });
    let available = found.as_ref().map(|_| ()).map_err(Clone::clone);
    if !support::require("rig", available) {
        return None;
    }
    Some(Rig {
        client: found.unwrap(),
        rt,
    })
}

/// A fresh namespace, deleted when dropped (outside the test's `block_on`).
struct Namespace<'a> {
    rig: &'a Rig,
    name: String,
}

impl Rig {
    fn namespace(&self, prefix: &str) -> Namespace<'_> {
        use std::sync::atomic::{AtomicU32, Ordering};
        static N: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "{prefix}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        );
        let api: Api<NamespaceObject> = Api::all(self.client.clone());
        let object = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.rt
            .block_on(api.create(&PostParams::default(), &object))
            .unwrap();
        Namespace { rig: self, name }
    }
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let api: Api<NamespaceObject> = Api::all(self.rig.client.clone());
        let _ = self
            .rig
            .rt
            .block_on(api.delete(&self.name, &DeleteParams::default()));
    }
}

/// A kwok object (`PortForward`, `ClusterLogs`), namespaced or not.
fn kwok_api(client: &kube::Client, kind: &str, namespace: Option<&str>) -> Api<DynamicObject> {
    let gvk = GroupVersionKind::gvk("kwok.x-k8s.io", "v1alpha1", kind);
    let plural = match kind {
        "ClusterLogs" => "clusterlogs".to_owned(),
        k => format!("{}s", k.to_lowercase()),
    };
    let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
    match namespace {
        Some(ns) => Api::namespaced_with(client.clone(), ns, &resource),
        None => Api::all_with(client.clone(), &resource),
    }
}

async fn create_deployment(client: &kube::Client, ns: &str, name: &str, replicas: u32) {
    let object: Deployment = serde_json::from_value(json!({
        "metadata": { "name": name, "labels": { "app.kubernetes.io/instance": "t" } },
        "spec": {
            "replicas": replicas,
            "selector": { "matchLabels": { "app": name } },
            "template": {
                "metadata": { "labels": { "app": name, "app.kubernetes.io/instance": "t" } },
                "spec": { "containers": [{ "name": name, "image": "busybox:latest",
                    "ports": [{ "containerPort": 8080 }] }] }
            }
        }
    }))
    .unwrap();
    Api::<Deployment>::namespaced(client.clone(), ns)
        .create(&PostParams::default(), &object)
        .await
        .unwrap_or_else(|e| panic!("creating deployment {name}: {e}"));
}

/// Test-side setup only: waits until `app` has exactly `n` Running+Ready pods, none terminating.
async fn ready_pods(client: &kube::Client, ns: &str, app: &str, n: usize) -> Vec<String> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
    let params = ListParams::default().labels(&format!("app={app}"));
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let list = pods.list(&params).await.unwrap();
        let all = list.items.len();
        // For the failure message: what each pod looks like.
        let states: Vec<String> = list
            .items
            .iter()
            .map(|p| {
                let status = p.status.clone().unwrap_or_default();
                let conditions: Vec<String> = status
                    .conditions
                    .unwrap_or_default()
                    .into_iter()
                    .map(|c| format!("{}={}", c.type_, c.status))
                    .collect();
                format!(
                    "{} {:?} deleting={} [{}]",
                    p.metadata.name.as_deref().unwrap_or_default(),
                    status.phase,
                    p.metadata.deletion_timestamp.is_some(),
                    conditions.join(",")
                )
            })
            .collect();
        let ready: Vec<String> = list
            .items
            .into_iter()
            .filter(|p| {
                p.metadata.deletion_timestamp.is_none()
                    && p.status.as_ref().is_some_and(|s| {
                        s.phase.as_deref() == Some("Running")
                            && s.conditions
                                .iter()
                                .flatten()
                                .any(|c| c.type_ == "Ready" && c.status == "True")
                    })
            })
            .filter_map(|p| p.metadata.name)
            .collect();
        if ready.len() == n && all == n {
            return ready;
        }
        assert!(
            Instant::now() < deadline,
            "{app}: wanted {n} ready pods, have {ready:?} of {all}: {states:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// What a simulated container serves: a TCP server answering each line with `<tag>: <line>`.
fn tagged_echo_server(tag: &'static str) -> u16 {
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for mut conn in server.incoming().flatten() {
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            let _ = conn.write_all(format!("{tag}: {line}").as_bytes());
        }
    });
    port
}

/// Tells kwok to map port-forwards to `pod`'s port 8080 onto the local `target_port`.
async fn forward_pod_to(client: &kube::Client, ns: &str, pod: &str, target_port: u16) {
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "PortForward",
        "metadata": { "name": pod, "namespace": ns },
        "spec": { "forwards": [{ "ports": [8080],
            "target": { "address": "127.0.0.1", "port": target_port } }] }
    }))
    .unwrap();
    kwok_api(client, "PortForward", Some(ns))
        .create(&PostParams::default(), &object)
        .await
        .unwrap();
}

/// One request through the forward: the first reply line, or why there is none.
async fn request(port: u16) -> Result<String, String> {
    let attempt = async {
        let mut conn = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .map_err(|e| format!("connect: {e}"))?;
        conn.write_all(b"ping\n")
            .await
            .map_err(|e| format!("write: {e}"))?;
        // One line, not EOF: a port-forward stream need not close when the target does.
        let mut reply = String::new();
        tokio::io::BufReader::new(conn)
            .read_line(&mut reply)
            .await
            .map_err(|e| format!("read: {e}"))?;
        Ok(reply)
    };
    match tokio::time::timeout(Duration::from_secs(20), attempt).await {
        Ok(Ok(reply)) if !reply.is_empty() => Ok(reply),
        Ok(Ok(_)) => Err("connection closed without a reply".into()),
        Ok(Err(e)) => Err(e),
        Err(_) => Err("no reply within 20s".into()),
    }
}

/// Requests until the reply is `want` (kwok picks its objects up through a watch, with a delay).
async fn eventually_replies(port: u16, want: &str) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let got = request(port).await;
        if got.as_deref() == Ok(want) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "wanted {want:?} through 127.0.0.1:{port}, last got {got:?}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

type Events = Arc<Mutex<Vec<ForwardEvent>>>;

/// Starts `serve` for deployment `web` in `ns`; returns its events, its listening port, the
/// shutdown token and the task.
async fn start_forward(
    client: &kube::Client,
    ns: &str,
    local_port: u16,
) -> (
    Events,
    u16,
    CancellationToken,
    tokio::task::JoinHandle<Result<(), stack::error::StackError>>,
) {
    let events: Events = Arc::default();
    let shutdown = CancellationToken::new();
    let forward = Forward {
        target: ForwardTarget::Deployment {
            namespace: ns.to_owned(),
            name: "web".into(),
        },
        remote_port: 8080,
        local_port,
    };
    let sink = events.clone();
    let task = tokio::spawn(serve(
        client.clone(),
        forward,
        move |e| sink.lock().unwrap().push(e),
        shutdown.clone(),
    ));
    let deadline = Instant::now() + Duration::from_secs(10);
    let port = loop {
        let listening = events.lock().unwrap().iter().find_map(|e| match e {
            ForwardEvent::Listening { port } => Some(*port),
            _ => None,
        });
        if let Some(port) = listening {
            break port;
        }
        assert!(Instant::now() < deadline, "not listening: {events:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    (events, port, shutdown, task)
}

fn connected_pods(events: &Events) -> Vec<String> {
    events
        .lock()
        .unwrap()
        .iter()
        .filter_map(|e| match e {
            ForwardEvent::Connected { pod } => Some(pod.clone()),
            _ => None,
        })
        .collect()
}

/// Cancels, waits for `serve` to return, and checks the listener is gone.
async fn stop(
    port: u16,
    shutdown: CancellationToken,
    task: tokio::task::JoinHandle<Result<(), stack::error::StackError>>,
) {
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(10), task)
        .await
        .expect("serve returns promptly after shutdown")
        .unwrap()
        .unwrap();
    let refused = tokio::net::TcpStream::connect(("127.0.0.1", port)).await;
    assert!(
        refused.is_err(),
        "the listener on {port} is closed after shutdown"
    );
}

#[test]
fn forward_reaches_what_the_deployments_pod_serves_and_closes_on_shutdown() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("fwd-basic");
    let (client, ns) = (&rig.client, ns.name.as_str());
    rig.rt.block_on(async {
        create_deployment(client, ns, "web", 1).await;
        let pod = ready_pods(client, ns, "web", 1).await.remove(0);
        forward_pod_to(client, ns, &pod, tagged_echo_server("first")).await;

        let (events, port, shutdown, task) = start_forward(client, ns, 0).await;
        eventually_replies(port, "first: ping\n").await;
        assert_eq!(connected_pods(&events), [pod.as_str()]);
        // A second connection through the same pod says nothing new.
        assert_eq!(request(port).await.as_deref(), Ok("first: ping\n"));
        assert_eq!(connected_pods(&events), [pod]);
        stop(port, shutdown, task).await;
    });
}

#[test]
fn a_taken_local_port_falls_back_to_a_free_one_and_says_so() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("fwd-taken");
    let (client, ns) = (&rig.client, ns.name.as_str());
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let wanted = taken.local_addr().unwrap().port();
    rig.rt.block_on(async {
        create_deployment(client, ns, "web", 1).await;
        let pod = ready_pods(client, ns, "web", 1).await.remove(0);
        forward_pod_to(client, ns, &pod, tagged_echo_server("taken")).await;

        let (events, port, shutdown, task) = start_forward(client, ns, wanted).await;
        assert_ne!(port, wanted);
        assert_eq!(
            events.lock().unwrap()[0],
            ForwardEvent::PortTaken { wanted, got: port }
        );
        eventually_replies(port, "taken: ping\n").await;
        stop(port, shutdown, task).await;
    });
    drop(taken);
}

#[test]
fn after_the_pod_is_deleted_the_next_connection_goes_to_its_replacement() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("fwd-replace");
    let (client, ns) = (&rig.client, ns.name.as_str());
    rig.rt.block_on(async {
        create_deployment(client, ns, "web", 1).await;
        let first = ready_pods(client, ns, "web", 1).await.remove(0);
        forward_pod_to(client, ns, &first, tagged_echo_server("first")).await;
        let (events, port, shutdown, task) = start_forward(client, ns, 0).await;
        eventually_replies(port, "first: ping\n").await;

        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        pods.delete(&first, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
        let second = ready_pods(client, ns, "web", 1).await.remove(0);
        assert_ne!(second, first, "the Deployment replaced the pod");
        forward_pod_to(client, ns, &second, tagged_echo_server("second")).await;

        // The same forward, never restarted, now reaches the new pod.
        eventually_replies(port, "second: ping\n").await;
        assert_eq!(connected_pods(&events), [first, second]);
        stop(port, shutdown, task).await;
    });
}

/// A cluster-scoped kwok object, deleted when dropped.
struct ClusterObject<'a> {
    rig: &'a Rig,
    kind: &'static str,
    name: String,
}

impl Drop for ClusterObject<'_> {
    fn drop(&mut self) {
        let api = kwok_api(&self.rig.client, self.kind, None);
        let _ = self
            .rig
            .rt
            .block_on(api.delete(&self.name, &DeleteParams::default()));
    }
}

/// A CRI-format log line, as the kubelet stores it.
fn cri(text: &str) -> String {
    format!("2026-01-01T00:00:00.000000000Z stdout F {text}\n")
}

#[test]
fn logs_of_every_pod_are_followed_with_resource_names_across_replacements_and_restarts() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("fwd-logs");
    let client = &rig.client;
    let dir = tempfile::tempdir().unwrap();
    let (web_log, worker_log) = (dir.path().join("web.log"), dir.path().join("worker.log"));
    std::fs::write(&web_log, cri("web started")).unwrap();
    std::fs::write(&worker_log, cri("worker started")).unwrap();
    let logs = ClusterObject {
        rig: &rig,
        kind: "ClusterLogs",
        name: ns.name.clone(),
    };
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
        "metadata": { "name": logs.name },
        "spec": {
            "selector": { "matchNamespaces": [ns.name] },
            "logs": [
                { "containers": ["web"], "logsFile": web_log, "follow": true },
                { "containers": ["worker"], "logsFile": worker_log, "follow": true }
            ]
        }
    }))
    .unwrap();
    rig.rt
        .block_on(kwok_api(client, "ClusterLogs", None).create(&PostParams::default(), &object))
        .unwrap();

    let ns = ns.name.as_str();
    rig.rt.block_on(async {
        let lines: Arc<Mutex<Vec<LogLine>>> = Arc::default();
        let sink = lines.clone();
        let shutdown = CancellationToken::new();
        let task = tokio::spawn(follow(
            client.clone(),
            ns.to_owned(),
            "app.kubernetes.io/instance=t".to_owned(),
            move |line| sink.lock().unwrap().push(line),
            shutdown.clone(),
        ));
        create_deployment(client, ns, "web", 1).await;
        create_deployment(client, ns, "worker", 1).await;
        let web = ready_pods(client, ns, "web", 1).await.remove(0);
        let worker = ready_pods(client, ns, "worker", 1).await.remove(0);

        let seen = |want: &[(&str, &str, &str)]| {
            let lines = lines.clone();
            let want: Vec<(String, String, String)> = want
                .iter()
                .map(|(r, p, l)| (r.to_string(), p.to_string(), l.to_string()))
                .collect();
            async move {
                let deadline = Instant::now() + Duration::from_secs(60);
                loop {
                    let got: Vec<(String, String, String)> = lines
                        .lock()
                        .unwrap()
                        .iter()
                        .map(|l| (l.resource.clone(), l.pod.clone(), l.line.clone()))
                        .collect();
                    if want.iter().all(|w| got.contains(w)) {
                        return;
                    }
                    assert!(Instant::now() < deadline, "wanted {want:?}, got {got:?}");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        };
        seen(&[
            ("web/web", &web, "web started"),
            ("worker/worker", &worker, "worker started"),
        ])
        .await;

        // Followed, not just read: a line written now arrives.
        std::fs::OpenOptions::new()
            .append(true)
            .open(&web_log)
            .unwrap()
            .write_all(cri("web handled a request").as_bytes())
            .unwrap();
        seen(&[("web/web", &web, "web handled a request")]).await;

        // A replaced pod is followed from its first line, under the same resource name.
        let pods: Api<Pod> = Api::namespaced(client.clone(), ns);
        pods.delete(&web, &DeleteParams::default().grace_period(0))
            .await
            .unwrap();
        let replacement = ready_pods(client, ns, "web", 1).await.remove(0);
        assert_ne!(replacement, web);
        seen(&[("web/web", &replacement, "web started")]).await;

        let first_lines = |lines: &Mutex<Vec<LogLine>>| {
            lines
                .lock()
                .unwrap()
                .iter()
                .filter(|l| l.pod == replacement && l.line == "web started")
                .count()
        };
        assert_eq!(first_lines(&lines), 1, "one stream per container instance");

        // A container restart (the kubelet reports a higher restart count) gets a new stream: the
        // new container's output shows again, from its first line.
        let restarted = json!({"status": {"containerStatuses": [{
            "name": "web", "image": "busybox:latest", "imageID": "", "ready": true,
            "started": true, "restartCount": 1,
            "state": {"running": {"startedAt": "2026-01-01T00:01:00Z"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error"}}
        }]}});
        pods.patch_status(
            &replacement,
            &PatchParams::default(),
            &Patch::Merge(&restarted),
        )
        .await
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let shown = first_lines(&lines);
            if shown == 2 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "the restarted container's first line shown {shown} times, wanted 2"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }

        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("follow returns promptly after shutdown")
            .unwrap()
            .unwrap();
        let after = lines.lock().unwrap().len();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&web_log)
            .unwrap()
            .write_all(cri("after shutdown").as_bytes())
            .unwrap();
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert_eq!(
            lines.lock().unwrap().len(),
            after,
            "no stream outlives shutdown"
        );
    });
    drop(logs);
}

#[test]
fn a_connection_before_any_pod_is_ready_waits_with_backoff_and_is_then_served() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("fwd-wait");
    let client = &rig.client;
    // Every pod of the namespace forwards to one server, so the pod need not be known in advance.
    let forwards = ClusterObject {
        rig: &rig,
        kind: "ClusterPortForward",
        name: ns.name.clone(),
    };
    let object: DynamicObject = serde_json::from_value(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterPortForward",
        "metadata": { "name": forwards.name },
        "spec": {
            "selector": { "matchNamespaces": [ns.name] },
            "forwards": [{ "ports": [8080],
                "target": { "address": "127.0.0.1", "port": tagged_echo_server("late") } }]
        }
    }))
    .unwrap();
    rig.rt
        .block_on(
            kwok_api(client, "ClusterPortForward", None).create(&PostParams::default(), &object),
        )
        .unwrap();
    let ns = ns.name.as_str();
    rig.rt.block_on(async {
        let (events, port, shutdown, task) = start_forward(client, ns, 0).await;
        // The client connects while deployment/web does not even exist yet.
        let early = tokio::spawn(request(port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while !events
            .lock()
            .unwrap()
            .iter()
            .any(|e| matches!(e, ForwardEvent::Reconnecting { .. }))
        {
            assert!(Instant::now() < deadline, "no retry reported: {events:?}");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        create_deployment(client, ns, "web", 1).await;
        let pod = ready_pods(client, ns, "web", 1).await.remove(0);

        assert_eq!(early.await.unwrap().as_deref(), Ok("late: ping\n"));
        let events = events.lock().unwrap().clone();
        let retries: Vec<(u32, &str)> = events
            .iter()
            .filter_map(|e| match e {
                ForwardEvent::Reconnecting {
                    pod: None,
                    error,
                    attempt,
                } => Some((*attempt, error.as_str())),
                _ => None,
            })
            .collect();
        assert_eq!(retries[0].0, 1, "{events:?}");
        assert!(
            retries[0]
                .1
                .contains("deployment/web not found in namespace"),
            "{events:?}"
        );
        assert!(
            retries.windows(2).all(|w| w[1].0 == w[0].0 + 1),
            "attempts count up: {events:?}"
        );
        assert_eq!(
            events.last(),
            Some(&ForwardEvent::Connected { pod }),
            "{events:?}"
        );
        stop(port, shutdown, task).await;
    });
    drop(forwards);
}
