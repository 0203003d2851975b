//! In-process port-forwards (the `kubectl port-forward` of `stack up`), surviving pod restarts.
//!
//! One local listener per forward; every accepted connection picks the target's newest
//! Running+Ready pod afresh — from a watch-fed store of the namespace's pods and the target's
//! selector resolved once (again after a failure), so a connection costs one API call, the
//! port-forward itself — and opens its own port-forward stream to it. So a pod that is replaced
//! (rollout, crash, deletion) costs the connections it was serving, never the forward: the next
//! connection goes to the new pod. When no pod is ready or the stream cannot be opened, the
//! connection waits with exponential backoff (bounded attempts) before giving up, which covers the
//! seconds a restarting pod needs.
//!
//! Nothing here prints: what happens goes to the caller's `events` callback.

use crate::error::StackError;
use ::kube::api::Api;
use ::kube::core::{Selector, SelectorExt};
use ::kube::runtime::reflector::{self, Store};
use ::kube::runtime::{watcher, WatchStreamExt};
use ::kube::{Client, ResourceExt};
use futures::StreamExt;
use k8s_openapi::api::apps::v1::Deployment;
use k8s_openapi::api::core::v1::{Pod, Service};
use k8s_openapi::apimachinery::pkg::util::intstr::IntOrString;
use std::fmt;
use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// First wait after a failed attempt; doubled per attempt up to `MAX_BACKOFF`.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// Attempts per connection before it is closed: about 12 s of waiting in all, enough for a pod
/// to be replaced, short enough that a client is not left hanging on a broken target.
const MAX_ATTEMPTS: u32 = 10;
/// How long a finished connection's stream gets to close before its task is aborted.
const CLOSE_GRACE: Duration = Duration::from_secs(1);

/// What a forward points at; its pods are found through the object's selector at each connection.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ForwardTarget {
    Deployment {
        namespace: String,
        name: String,
    },
    /// The remote port is the Service's port, mapped to its `targetPort` as kubectl does.
    Service {
        namespace: String,
        name: String,
    },
}

impl ForwardTarget {
    pub fn namespace(&self) -> &str {
        match self {
            ForwardTarget::Deployment { namespace, .. }
            | ForwardTarget::Service { namespace, .. } => namespace,
        }
    }
}

impl fmt::Display for ForwardTarget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ForwardTarget::Deployment { name, .. } => write!(f, "deployment/{name}"),
            ForwardTarget::Service { name, .. } => write!(f, "service/{name}"),
        }
    }
}

/// `127.0.0.1:<local_port>` → `<target>:<remote_port>`. Local port 0 means "any free port".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Forward {
    pub target: ForwardTarget,
    pub remote_port: u16,
    pub local_port: u16,
}

/// What a running forward reports.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum ForwardEvent {
    /// The listener is up on 127.0.0.1:`port`.
    Listening { port: u16 },
    /// `wanted` was taken (or not allowed), so the forward listens on `got` instead.
    PortTaken { wanted: u16, got: u16 },
    /// A connection is served by `pod`, which differs from the pod of the previous connection.
    Connected { pod: String },
    /// Opening a connection's stream failed (no ready pod, pod gone, API error); it is retried.
    Reconnecting {
        pod: Option<String>,
        error: String,
        attempt: u32,
    },
    /// A connection was closed after `attempts` failed attempts.
    GaveUp { error: String, attempts: u32 },
    /// The pod reported an error on an open stream (e.g. nothing listens on the port there).
    StreamError { pod: String, error: String },
}

/// Serves `forward` until `shutdown` is cancelled, then closes the listener and ends every
/// connection before returning.
///
/// Errs only when no local port at all can be bound; everything else (a missing target, no ready
/// pod, a dropped stream) is reported through `events` and retried per connection.
pub async fn serve(
    client: Client,
    forward: Forward,
    events: impl Fn(ForwardEvent) + Send + Sync + 'static,
    shutdown: CancellationToken,
) -> Result<(), StackError> {
    let listener = bind(forward.local_port, &events).await?;
    let (pods, writer) = reflector::store();
    let api: Api<Pod> = Api::namespaced(client.clone(), forward.target.namespace());
    let mut pod_events = std::pin::pin!(reflector::reflector(
        writer,
        watcher(api, watcher::Config::default()).default_backoff()
    )
    .touched_objects());
    let shared = Arc::new(Shared {
        client,
        forward,
        events,
        last_pod: Mutex::new(None),
        pods,
        resolved: Mutex::new(None),
    });
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            // Drives the pod store; its errors are retried with backoff by the watcher.
            Some(_) = pod_events.next() => {}
            accepted = listener.accept() => match accepted {
                Ok((conn, _)) => {
                    connections.spawn(serve_connection(shared.clone(), conn));
                }
                // Out of file descriptors and the like: transient, try again shortly.
                Err(_) => tokio::time::sleep(FIRST_BACKOFF).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
    drop(listener);
    connections.shutdown().await;
    Ok(())
}

async fn bind(wanted: u16, events: &impl Fn(ForwardEvent)) -> Result<TcpListener, StackError> {
    let cannot_bind = |port: u16, e: std::io::Error| {
        StackError::config(
            None,
            format!("cannot listen on 127.0.0.1:{port}: {e}"),
            "port-forwards listen on the loopback interface; check that it is up",
        )
    };
    let listener = match TcpListener::bind((Ipv4Addr::LOCALHOST, wanted)).await {
        Ok(listener) => listener,
        Err(e)
            if wanted != 0
                && matches!(
                    e.kind(),
                    std::io::ErrorKind::AddrInUse | std::io::ErrorKind::PermissionDenied
                ) =>
        {
            let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .await
                .map_err(|e| cannot_bind(0, e))?;
            let got = local_port(&listener);
            events(ForwardEvent::PortTaken { wanted, got });
            listener
        }
        Err(e) => return Err(cannot_bind(wanted, e)),
    };
    events(ForwardEvent::Listening {
        port: local_port(&listener),
    });
    Ok(listener)
}

fn local_port(listener: &TcpListener) -> u16 {
    listener.local_addr().map(|a| a.port()).unwrap_or_default()
}

struct Shared<F> {
    client: Client,
    forward: Forward,
    events: F,
    /// The pod of the latest connection, so `Connected` is said once per pod change.
    last_pod: Mutex<Option<String>>,
    /// The namespace's pods, kept current by a watch.
    pods: Store<Pod>,
    /// The target's selector (and a Service's targetPort), resolved once; cleared on a failure.
    resolved: Mutex<Option<(Selector, Option<IntOrString>)>>,
}

/// How long a connection waits for the pod store's first list.
const STORE_READY: Duration = Duration::from_secs(10);

/// A failed attempt to open a stream.
struct Failure {
    pod: Option<String>,
    error: String,
}

async fn serve_connection<F: Fn(ForwardEvent)>(shared: Arc<Shared<F>>, mut conn: TcpStream) {
    let mut delay = FIRST_BACKOFF;
    let mut attempt = 0;
    let (pod, forwarder, port) = loop {
        attempt += 1;
        match open(&shared).await {
            Ok(opened) => break opened,
            Err(failure) if attempt >= MAX_ATTEMPTS => {
                (shared.events)(ForwardEvent::GaveUp {
                    error: failure.error,
                    attempts: attempt,
                });
                return;
            }
            Err(failure) => {
                (shared.events)(ForwardEvent::Reconnecting {
                    pod: failure.pod,
                    error: failure.error,
                    attempt,
                });
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_BACKOFF);
            }
        }
    };
    let is_new = {
        let mut last = shared.last_pod.lock().unwrap_or_else(|e| e.into_inner());
        let is_new = last.as_deref() != Some(pod.as_str());
        *last = Some(pod.clone());
        is_new
    };
    if is_new {
        (shared.events)(ForwardEvent::Connected { pod: pod.clone() });
    }
    let mut forwarder = AbortOnDrop(Some(forwarder));
    let Some(pf) = forwarder.0.as_mut() else {
        return;
    };
    let (Some(mut upstream), Some(stream_error)) = (pf.take_stream(port), pf.take_error(port))
    else {
        return;
    };
    tokio::select! {
        // Either side closing (or failing) ends the connection; the client reconnects.
        _ = tokio::io::copy_bidirectional(&mut conn, &mut upstream) => {}
        Some(error) = stream_error => {
            (shared.events)(ForwardEvent::StreamError { pod, error });
        }
    }
    drop(upstream);
    if let Some(pf) = forwarder.0.take() {
        let _ = tokio::time::timeout(CLOSE_GRACE, pf.join()).await;
    }
}

/// The port-forward's background task is detached by kube-rs; a connection aborted at shutdown
/// must not leave it running.
struct AbortOnDrop(Option<::kube::api::Portforwarder>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        if let Some(pf) = &self.0 {
            pf.abort();
        }
    }
}

/// Finds the newest ready pod of the target and opens a port-forward to it:
/// (pod name, forwarder, the pod's port).
async fn open<F>(shared: &Shared<F>) -> Result<(String, ::kube::api::Portforwarder, u16), Failure> {
    let opened = open_once(shared).await;
    if opened.is_err() {
        // The target may have changed (re-created with another selector): resolve it again.
        *shared.resolved.lock().unwrap_or_else(|e| e.into_inner()) = None;
    }
    opened
}

async fn open_once<F>(
    shared: &Shared<F>,
) -> Result<(String, ::kube::api::Portforwarder, u16), Failure> {
    let forward = &shared.forward;
    let namespace = forward.target.namespace();
    let no_pod = |error: String| Failure { pod: None, error };
    let cached = shared
        .resolved
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .clone();
    let (selector, service_port) = match cached {
        Some(r) => r,
        None => {
            let r = resolve(&shared.client, &forward.target, forward.remote_port)
                .await
                .map_err(no_pod)?;
            *shared.resolved.lock().unwrap_or_else(|e| e.into_inner()) = Some(r.clone());
            r
        }
    };
    if tokio::time::timeout(STORE_READY, shared.pods.wait_until_ready())
        .await
        .is_err()
    {
        return Err(no_pod(format!(
            "the watch of pods in {namespace} has not answered for {}s",
            STORE_READY.as_secs()
        )));
    }
    let matching: Vec<Pod> = shared
        .pods
        .state()
        .iter()
        .filter(|p| selector.matches(p.labels()))
        .map(|p| (**p).clone())
        .collect();
    let pod = newest_ready(&matching).ok_or_else(|| {
        no_pod(format!(
            "no Running and Ready pod of {} ({} matching)",
            forward.target,
            matching.len()
        ))
    })?;
    let name = pod.name_any();
    let port = match &service_port {
        Some(target) => container_port(pod, target).ok_or_else(|| Failure {
            pod: Some(name.clone()),
            error: format!("pod {name} has no container port named `{target:?}`"),
        })?,
        None => forward.remote_port,
    };
    let pods: Api<Pod> = Api::namespaced(shared.client.clone(), namespace);
    match pods.portforward(&name, &[port]).await {
        Ok(forwarder) => Ok((name, forwarder, port)),
        Err(e) => Err(Failure {
            pod: Some(name.clone()),
            error: format!("port-forward to pod {name}:{port}: {e}"),
        }),
    }
}

/// The target's pod selector and, for a Service, its `targetPort` for `remote_port`.
async fn resolve(
    client: &Client,
    target: &ForwardTarget,
    remote_port: u16,
) -> Result<(Selector, Option<IntOrString>), String> {
    let not_found = |e: ::kube::Error| match e {
        ::kube::Error::Api(status) if status.code == 404 => {
            format!("{target} not found in namespace {}", target.namespace())
        }
        e => format!("reading {target}: {e}"),
    };
    match target {
        ForwardTarget::Deployment { namespace, name } => {
            let api: Api<Deployment> = Api::namespaced(client.clone(), namespace);
            let deployment = api.get(name).await.map_err(not_found)?;
            let selector = deployment.spec.map(|s| s.selector).unwrap_or_default();
            let selector = Selector::try_from(selector).map_err(|e| format!("{target}: {e}"))?;
            Ok((selector, None))
        }
        ForwardTarget::Service { namespace, name } => {
            let api: Api<Service> = Api::namespaced(client.clone(), namespace);
            let service = api.get(name).await.map_err(not_found)?;
            let spec = service.spec.unwrap_or_default();
            let labels = spec.selector.unwrap_or_default();
            if labels.is_empty() {
                return Err(format!("{target} has no pod selector"));
            }
            let target_port = spec
                .ports
                .unwrap_or_default()
                .into_iter()
                .find(|p| p.port == i32::from(remote_port))
                .map(|p| {
                    p.target_port
                        .unwrap_or(IntOrString::Int(i32::from(remote_port)))
                })
                .unwrap_or(IntOrString::Int(i32::from(remote_port)));
            Ok((labels.into_iter().collect(), Some(target_port)))
        }
    }
}

/// A Service's `targetPort` in `pod`: the number, or the container port of that name.
fn container_port(pod: &Pod, target: &IntOrString) -> Option<u16> {
    match target {
        IntOrString::Int(n) => u16::try_from(*n).ok(),
        IntOrString::String(name) => pod
            .spec
            .iter()
            .flat_map(|s| &s.containers)
            .flat_map(|c| c.ports.iter().flatten())
            .find(|p| p.name.as_deref() == Some(name.as_str()))
            .and_then(|p| u16::try_from(p.container_port).ok()),
    }
}

/// Running, Ready and not terminating; the newest wins (after a rollout, that runs the new code).
fn newest_ready(pods: &[Pod]) -> Option<&Pod> {
    pods.iter().filter(|p| is_ready(p)).max_by(|a, b| {
        let created = |p: &Pod| p.metadata.creation_timestamp.clone().map(|t| t.0);
        created(a)
            .cmp(&created(b))
            .then_with(|| a.name_any().cmp(&b.name_any()))
    })
}

fn is_ready(pod: &Pod) -> bool {
    let Some(status) = &pod.status else {
        return false;
    };
    pod.metadata.deletion_timestamp.is_none()
        && status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn pod(name: &str, created: &str, phase: &str, ready: &str, deleting: bool) -> Pod {
        let mut metadata = json!({ "name": name, "creationTimestamp": created });
        if deleting {
            metadata["deletionTimestamp"] = json!("2026-01-01T00:10:00Z");
        }
        serde_json::from_value(json!({
            "metadata": metadata,
            "spec": { "containers": [{ "name": "app", "ports": [{ "name": "http", "containerPort": 8080 }] }] },
            "status": { "phase": phase, "conditions": [{ "type": "Ready", "status": ready }] }
        }))
        .unwrap()
    }

    #[test]
    fn newest_ready_pod_wins_and_terminating_or_unready_pods_never_do() {
        let pods = [
            pod("old", "2026-01-01T00:00:00Z", "Running", "True", false),
            pod("new", "2026-01-01T00:05:00Z", "Running", "True", false),
            pod(
                "newer-unready",
                "2026-01-01T00:06:00Z",
                "Running",
                "False",
                false,
            ),
            pod(
                "newest-deleting",
                "2026-01-01T00:07:00Z",
                "Running",
                "True",
                true,
            ),
            pod("pending", "2026-01-01T00:08:00Z", "Pending", "True", false),
        ];
        assert_eq!(
            newest_ready(&pods).map(|p| p.name_any()).as_deref(),
            Some("new")
        );
        assert!(newest_ready(&pods[2..]).is_none());
    }

    #[test]
    fn service_target_ports_resolve_by_number_or_name() {
        let p = pod("p", "2026-01-01T00:00:00Z", "Running", "True", false);
        assert_eq!(container_port(&p, &IntOrString::Int(9000)), Some(9000));
        assert_eq!(
            container_port(&p, &IntOrString::String("http".into())),
            Some(8080)
        );
        assert_eq!(
            container_port(&p, &IntOrString::String("grpc".into())),
            None
        );
    }

    #[test]
    fn targets_read_like_kubectl_arguments() {
        let t = ForwardTarget::Deployment {
            namespace: "ns".into(),
            name: "web".into(),
        };
        assert_eq!(t.to_string(), "deployment/web");
        assert_eq!(t.namespace(), "ns");
    }
}
