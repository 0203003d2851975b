//! `stack::kube` against the rig (tier "rig"): the real API server, controllers and scheduler;
//! kwok plays the kubelet. Where a failure needs a kubelet's report (CrashLoopBackOff,
//! ImagePullBackOff), the test writes the pod status subresource itself, as a kubelet would; every
//! other state comes from the real controllers. Each test works in its own namespace.

use crate::support;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, DynamicObject, ListParams, Patch, PatchParams, PostParams};
use kube::core::{ApiResource, GroupVersionKind};
use serde_json::{json, Value};
use stack::kube::{wait_ready, Failure, Readiness, Reason, ResourceProgress};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SELECTOR: &str = "app.kubernetes.io/instance=t";

/// The rig's API server through `stack::kube::client`, and a runtime to drive it.
struct Rig {
    kubeconfig: PathBuf,
    bin_dir: PathBuf,
    client: kube::Client,
    rt: tokio::runtime::Runtime,
}

fn rig() -> Option<Rig> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let found = support::rig_env().and_then(|env| {
        let kubeconfig = PathBuf::from(env.vars.get("KUBECONFIG").ok_or("no KUBECONFIG")?);
        let client = rt
            .block_on(stack::kube::client(&kubeconfig, "stack-rig"))
            .map_err(|e| format!("{e} (run `cargo xtask rig up`)"))?;
        Ok((kubeconfig, env.bin_dir, client))
    });
    let available = found.as_ref().map(|_| ()).map_err(Clone::clone);
    if !support::require("rig", available) {
        return None;
    }
    let (kubeconfig, bin_dir, client) = found.unwrap();
    Some(Rig {
        kubeconfig,
        bin_dir,
        client,
        rt,
    })
}

/// A fresh namespace, deleted (without waiting) when dropped.
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
        let namespaces: Api<k8s_openapi::api::core::v1::Namespace> = Api::all(self.client.clone());
        let object = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        self.rt
            .block_on(namespaces.create(&PostParams::default(), &object))
            .unwrap();
        Namespace { rig: self, name }
    }

    fn tool(&self, name: &str) -> std::process::Command {
        let mut c = std::process::Command::new(self.bin_dir.join(name));
        c.env("KUBECONFIG", &self.kubeconfig);
        c
    }
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .rig
            .tool("kubectl")
            .args(["--context", "stack-rig", "delete", "namespace", &self.name])
            .arg("--wait=false")
            .output();
    }
}

impl Namespace<'_> {
    fn create(&self, object: Value) {
        let kind = object["kind"].as_str().unwrap().to_owned();
        let (group, version) = match object["apiVersion"].as_str().unwrap().split_once('/') {
            Some((g, v)) => (g.to_owned(), v.to_owned()),
            None => (
                String::new(),
                object["apiVersion"].as_str().unwrap().to_owned(),
            ),
        };
        let gvk = GroupVersionKind::gvk(&group, &version, &kind);
        let plural = match kind.as_str() {
            "Logs" => "logs".to_owned(),
            k => format!("{}s", k.to_lowercase()),
        };
        let resource = ApiResource::from_gvk_with_plural(&gvk, &plural);
        let api: Api<DynamicObject> =
            Api::namespaced_with(self.rig.client.clone(), &self.name, &resource);
        let object: DynamicObject = serde_json::from_value(object).unwrap();
        self.rig
            .rt
            .block_on(api.create(&PostParams::default(), &object))
            .unwrap_or_else(|e| panic!("creating {kind}: {e}"));
    }

    fn pods(&self) -> Api<Pod> {
        Api::namespaced(self.rig.client.clone(), &self.name)
    }

    /// Waits (test-side setup only) until `n` pods of `app` are Running, and returns their names.
    fn running_pods(&self, app: &str, n: usize) -> Vec<String> {
        let pods = self.pods();
        let params = ListParams::default().labels(&format!("app={app}"));
        eventually(&format!("{n} running {app} pods"), || {
            let list = self.rig.rt.block_on(pods.list(&params)).unwrap();
            let names: Vec<String> = list
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .filter_map(|p| p.metadata.name.clone())
                .collect();
            (names.len() == n).then_some(names)
        })
    }

    fn wait(
        &self,
        timeout: Duration,
    ) -> (
        Result<Readiness, stack::error::StackError>,
        Vec<ResourceProgress>,
    ) {
        let seen = Mutex::new(Vec::new());
        let record = |p: ResourceProgress| seen.lock().unwrap().push(p);
        let result = self.rig.rt.block_on(wait_ready(
            &self.rig.client,
            &self.name,
            SELECTOR,
            timeout,
            &record,
        ));
        (result, seen.into_inner().unwrap())
    }

    /// Writes the pod status as a kubelet reporting `state` for container `app` would.
    fn report_waiting(&self, pod: &str, waiting: Value, restarts: i32) {
        let mut status = json!({
            "name": "app", "image": "busybox:latest", "imageID": "", "ready": false, "started": false,
            "restartCount": restarts, "state": {"waiting": waiting}
        });
        if restarts > 0 {
            status["lastState"] = json!({"terminated": {"exitCode": 1, "reason": "Error"}});
        }
        let patch = json!({"status": {
            "phase": "Running",
            "conditions": [
                {"type": "PodScheduled", "status": "True"},
                {"type": "Initialized", "status": "True"},
                {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady"},
                {"type": "Ready", "status": "False", "reason": "ContainersNotReady"}
            ],
            "containerStatuses": [status]
        }});
        // kwok may still apply a pod-ready update it queued before this patch; report again
        // until the status has stayed as written for a moment (as a kubelet keeps reporting).
        let reason = waiting["reason"].as_str().unwrap().to_owned();
        let pods = self.pods();
        eventually(&format!("{pod} to keep reporting {reason}"), || {
            self.rig
                .rt
                .block_on(pods.patch_status(pod, &PatchParams::default(), &Patch::Merge(&patch)))
                .unwrap();
            std::thread::sleep(Duration::from_millis(700));
            let now = self.rig.rt.block_on(pods.get(pod)).unwrap();
            let shown = now
                .status
                .and_then(|s| s.container_statuses)
                .and_then(|c| c.into_iter().next()?.state?.waiting?.reason);
            (shown.as_deref() == Some(reason.as_str())).then_some(())
        });
    }
}

/// A Deployment of the selector's instance; `pod` and `spec` are merged into the pod spec and the
/// Deployment spec.
fn deployment(name: &str, replicas: i32, pod: Value, spec: Value) -> Value {
    let labels = json!({"app.kubernetes.io/instance": "t", "app": name});
    let mut pod_spec = json!({"containers": [{"name": "app", "image": "busybox:latest"}]});
    merge(&mut pod_spec, pod);
    let mut d = json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": pod_spec}
        }
    });
    merge(&mut d["spec"], spec);
    d
}

fn merge(into: &mut Value, from: Value) {
    if let (Some(a), Value::Object(b)) = (into.as_object_mut(), from) {
        a.extend(b);
    }
}

fn eventually<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "{what}: not within 90s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

fn failures(result: Result<Readiness, stack::error::StackError>) -> Vec<Failure> {
    match result.unwrap() {
        Readiness::Failed(f) => f,
        Readiness::Ready => panic!("expected a failure, got Ready"),
    }
}

/// A CRI-format log file (what kwok serves for a container), one entry per line.
fn cri_log(path: &Path, lines: &[String]) {
    let text: String = lines
        .iter()
        .map(|l| format!("2026-01-01T00:00:00.000000000Z stdout F {l}\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

fn find_tool(name: &str) -> Result<PathBuf, stack::error::StackError> {
    Ok(support::rig_env()
        .map_err(|e| stack::error::StackError::MissingTool {
            tool: name.into(),
            hint: e,
        })?
        .bin_dir
        .join(name))
}

#[test]
fn a_release_becomes_ready_with_progress_and_its_diagnostics_are_collected() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-ready");
    let chart = support::project_root().join("tests/fixtures/rig-chart");
    // The rig chart labels everything `app.kubernetes.io/instance: <release>`: release `t`.
    let out = rig
        .tool("helm")
        .args(["install", "t", chart.to_str().unwrap(), "-n", &ns.name])
        .args(["--kube-context", "stack-rig"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (result, seen) = ns.wait(Duration::from_secs(90));
    assert_eq!(result.unwrap(), Readiness::Ready);
    let last = |resource: &str| seen.iter().rev().find(|p| p.resource == resource).cloned();
    let web = last("deployment/t-web").expect("progress for t-web");
    assert_eq!((web.ready, web.desired, web.done), (2, 2, true));
    let worker = last("deployment/t-worker").expect("progress for t-worker");
    assert_eq!((worker.ready, worker.desired, worker.done), (1, 1, true));
    // One web pod gets logs (kwok serves them from files); the others have none.
    let pods: Api<Pod> = ns.pods();
    let mut names: Vec<String> = ns
        .rig
        .rt
        .block_on(pods.list(&ListParams::default().labels(SELECTOR)))
        .unwrap()
        .items
        .into_iter()
        .filter_map(|p| p.metadata.name)
        .collect();
    names.sort();
    assert_eq!(names.len(), 3, "{names:?}");
    let web_pod = names.iter().find(|n| n.starts_with("t-web-")).unwrap();
    let files = tempfile::tempdir().unwrap();
    let (current, previous) = (files.path().join("cur.log"), files.path().join("prev.log"));
    cri_log(&current, &["serving on :8080".into()]);
    cri_log(
        &previous,
        &(1..=250).map(|i| format!("old {i}")).collect::<Vec<_>>(),
    );
    ns.create(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": web_pod},
        "spec": {"logs": [{"containers": ["web"], "logsFile": current, "previousLogsFile": previous}]}
    }));
    eventually("kwok serving the web pod's logs", || {
        let lp = kube::api::LogParams {
            container: Some("web".into()),
            ..Default::default()
        };
        rig.rt.block_on(pods.logs(web_pod, &lp)).ok()
    });

    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("diagnostics");
    let runner = stack::tool::RealRunner;
    let mut host = stack::tool::Host::from_env(&runner);
    host.locate = |tool| find_tool(tool.name());
    let kubeconfig = rig.kubeconfig.display().to_string();
    let target = stack::release::KubeTarget::new(
        dir.path(),
        &kubeconfig,
        "stack-rig",
        &ns.name,
        &["stack-rig".to_owned()],
        "inspect",
    )
    .unwrap();
    let release = stack::release::Release::new(&target, "t", &host).unwrap();
    let helm = stack::kube::HelmStatus {
        runner: &runner,
        cmd: release.status_cmd(),
    };
    let collected = rig
        .rt
        .block_on(stack::kube::collect(
            &rig.client,
            &ns.name,
            SELECTOR,
            &out_dir,
            Some(&helm),
        ))
        .unwrap();
    let read = |name: &str| std::fs::read_to_string(out_dir.join(name)).unwrap();

    let events = read("events.txt");
    assert!(
        events.contains("Scheduled") && events.contains("ScalingReplicaSet"),
        "{events}"
    );
    let times: Vec<&str> = events
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert!(
        times.windows(2).all(|w| w[0] <= w[1]),
        "oldest first:\n{events}"
    );

    let table = read("pods.txt");
    assert_eq!(table.lines().count(), 4, "{table}");
    assert!(
        table.contains("stack-rig-node") && table.contains("deployment/t-web"),
        "{table}"
    );
    let json: Value = serde_json::from_str(&read("pods.json")).unwrap();
    assert_eq!(json["kind"], "List");
    assert_eq!(json["items"].as_array().unwrap().len(), 3);
    let deployments: Value = serde_json::from_str(&read("deployments.json")).unwrap();
    assert_eq!(deployments["items"].as_array().unwrap().len(), 2);

    assert_eq!(
        read(&format!("logs/{web_pod}_web.log")),
        "serving on :8080\n"
    );
    let prev = read(&format!("logs/{web_pod}_web.previous.log"));
    assert_eq!(prev.lines().count(), 200, "tail 200");
    assert!(prev.ends_with("old 250\n") && prev.starts_with("old 51\n"));
    for pod in names.iter().filter(|n| *n != web_pod) {
        let container = if pod.starts_with("t-web-") {
            "web"
        } else {
            "worker"
        };
        for suffix in [".log", ".previous.log"] {
            let text = read(&format!("logs/{pod}_{container}{suffix}"));
            assert!(text.starts_with("no logs: "), "{pod}{suffix}: {text}");
        }
    }
    assert_eq!(
        collected.gaps.len(),
        4,
        "two pods without logs: {:?}",
        collected.gaps
    );

    let status: Value = serde_json::from_str(&read("helm-status.json")).unwrap();
    assert_eq!(status["info"]["status"], "deployed");
    assert_eq!(status["namespace"], ns.name.as_str());

    let mut on_disk: Vec<PathBuf> = walk(&out_dir);
    on_disk.sort();
    let mut listed = collected.files.clone();
    listed.sort();
    assert_eq!(
        on_disk, listed,
        "exactly the listed files, no temp files left"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(
                walk(&path)
                    .into_iter()
                    .map(|p| Path::new(path.file_name().unwrap()).join(p)),
            );
        } else {
            out.push(PathBuf::from(path.file_name().unwrap()));
        }
    }
    out
}

#[test]
fn progress_is_reported_as_the_rollout_advances() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-progress");
    // Paused, the controller creates no pods: the wait starts on a rollout that has not begun.
    ns.create(deployment("web", 2, json!({}), json!({"paused": true})));
    let deployments: Api<k8s_openapi::api::apps::v1::Deployment> =
        Api::namespaced(rig.client.clone(), &ns.name);
    let seen = Mutex::new(Vec::new());
    let record = |p: ResourceProgress| seen.lock().unwrap().push(p);
    let resume = async {
        tokio::time::sleep(Duration::from_millis(500)).await;
        let patch = json!({"spec": {"paused": false}});
        deployments
            .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap();
    };
    let waited = wait_ready(
        &rig.client,
        &ns.name,
        SELECTOR,
        Duration::from_secs(90),
        &record,
    );
    let (result, ()) = rig.rt.block_on(async { tokio::join!(waited, resume) });
    assert_eq!(result.unwrap(), Readiness::Ready);
    let seen = seen.into_inner().unwrap();
    let counts: Vec<(i32, i32, bool)> = seen.iter().map(|p| (p.ready, p.desired, p.done)).collect();
    assert_eq!(counts.first(), Some(&(0, 2, false)), "{seen:?}");
    assert_eq!(counts.last(), Some(&(2, 2, true)), "{seen:?}");
    assert!(seen.iter().all(|p| p.resource == "deployment/web"));
    for pair in seen.windows(2) {
        assert_ne!(pair[0], pair[1], "only changes are reported");
    }
}

#[test]
fn a_selector_the_api_server_refuses_is_a_configuration_error_at_once() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-selector");
    let started = Instant::now();
    let noop = |_: ResourceProgress| {};
    let result = rig.rt.block_on(wait_ready(
        &rig.client,
        &ns.name,
        "app in (",
        Duration::from_secs(60),
        &noop,
    ));
    let err = result.unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(
        err.to_string().contains("with selector `app in (`"),
        "{err}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "not retried until the timeout"
    );
}

#[test]
fn an_unschedulable_pod_fails_the_wait_at_once_with_the_schedulers_message() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-unsched");
    ns.create(deployment(
        "nowhere",
        1,
        json!({"nodeSelector": {"stack.dev/no-such-node": "true"}}),
        json!({}),
    ));
    let started = Instant::now();
    let failures = failures(ns.wait(Duration::from_secs(120)).0);
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "fails on the event, not at the timeout"
    );
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(f.reason, Reason::Unschedulable);
    assert!(f.resource.starts_with("pod/nowhere-"), "{f:?}");
    assert_eq!(f.owner.as_deref(), Some("deployment/nowhere"));
    assert!(
        f.message.contains("0/1 nodes are available"),
        "{}",
        f.message
    );
    assert!(
        f.message.contains("node affinity/selector"),
        "{}",
        f.message
    );
}

#[test]
fn a_timeout_names_the_deployment_that_is_not_ready() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-timeout");
    ns.create(deployment("fast", 1, json!({}), json!({})));
    // Ready pods that only count as available after an hour: no failure, just not ready.
    ns.create(deployment(
        "slow",
        1,
        json!({}),
        json!({"minReadySeconds": 3600, "progressDeadlineSeconds": 7200}),
    ));
    ns.running_pods("fast", 1);
    ns.running_pods("slow", 1);
    // Long enough for `fast` to become Available on a loaded machine (kwok marks pods ready a
    // moment after they run); `slow` cannot, whatever the timeout.
    let (result, seen) = ns.wait(Duration::from_secs(15));
    let failures = failures(result);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(
        (f.resource.as_str(), f.reason),
        ("deployment/slow", Reason::Timeout)
    );
    assert!(
        f.message
            .starts_with("not ready after 15s: 1/1 ready, 1 updated, 0 available"),
        "{}",
        f.message
    );
    assert!(seen
        .iter()
        .any(|p| p.resource == "deployment/fast" && p.done));
}

#[test]
fn crash_loops_and_image_pulls_are_named_with_the_crashed_containers_last_logs() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-crash");
    ns.create(deployment("crash", 1, json!({}), json!({})));
    ns.create(deployment("pull", 1, json!({}), json!({})));
    let crash = ns.running_pods("crash", 1).remove(0);
    let pull = ns.running_pods("pull", 1).remove(0);

    let files = tempfile::tempdir().unwrap();
    let (current, previous) = (files.path().join("cur.log"), files.path().join("prev.log"));
    cri_log(&current, &["starting again".into()]);
    let crashed: Vec<String> = (1..=30).map(|i| format!("line {i}")).collect();
    cri_log(&previous, &crashed);
    ns.create(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs",
        "metadata": {"name": crash},
        "spec": {"logs": [{"containers": ["app"], "logsFile": current, "previousLogsFile": previous}]}
    }));
    let pods = ns.pods();
    eventually("kwok serving the crashing pod's logs", || {
        let lp = kube::api::LogParams {
            container: Some("app".into()),
            previous: true,
            ..Default::default()
        };
        rig.rt.block_on(pods.logs(&crash, &lp)).ok()
    });

    // What a kubelet reports for these two containers.
    ns.report_waiting(
        &crash,
        json!({"reason": "CrashLoopBackOff", "message": "back-off 40s restarting failed container=app"}),
        3,
    );
    ns.report_waiting(
        &pull,
        json!({"reason": "ImagePullBackOff", "message": "Back-off pulling image \"registry.invalid/app:1\""}),
        0,
    );

    let mut failures = failures(ns.wait(Duration::from_secs(60)).0);
    failures.sort_by_key(|f| f.reason.as_str());
    assert_eq!(failures.len(), 2, "{failures:?}");
    let (c, p) = (&failures[0], &failures[1]);
    assert_eq!(c.reason, Reason::CrashLoopBackOff);
    assert_eq!(c.resource, format!("pod/{crash}"));
    assert_eq!(
        (c.container.as_deref(), c.owner.as_deref()),
        (Some("app"), Some("deployment/crash"))
    );
    assert_eq!(
        c.message,
        "back-off 40s restarting failed container=app; last run exited 1 (Error), 3 restarts"
    );
    assert_eq!(
        c.last_logs,
        crashed[10..],
        "the previous instance's last 20 lines"
    );

    assert_eq!(p.reason, Reason::ImagePullBackOff);
    assert_eq!(p.resource, format!("pod/{pull}"));
    assert_eq!(
        p.message,
        "Back-off pulling image \"registry.invalid/app:1\""
    );
    assert!(p.last_logs.is_empty());
}

#[test]
fn a_crash_loop_without_logs_says_why() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-nologs");
    ns.create(deployment("crash", 1, json!({}), json!({})));
    let crash = ns.running_pods("crash", 1).remove(0);
    ns.report_waiting(&crash, json!({"reason": "CrashLoopBackOff"}), 1);
    let failures = failures(ns.wait(Duration::from_secs(60)).0);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].last_logs.len(), 1);
    assert!(
        failures[0].last_logs[0].starts_with("no logs: "),
        "{:?}",
        failures[0].last_logs
    );
}

#[test]
fn a_failed_hook_job_fails_the_wait() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-hook");
    // Never available (so the wait keeps watching), never failing by itself.
    ns.create(deployment(
        "app",
        1,
        json!({}),
        json!({"minReadySeconds": 3600, "progressDeadlineSeconds": 7200}),
    ));
    // A pre-install hook whose pod cannot be scheduled: the Job controller fails it at its deadline.
    ns.create(json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": "migrate", "labels": {"app.kubernetes.io/instance": "t"},
            "annotations": {"helm.sh/hook": "pre-install"}},
        "spec": {"activeDeadlineSeconds": 2, "backoffLimit": 0, "template": {"spec": {
            "restartPolicy": "Never",
            "nodeSelector": {"stack.dev/no-such-node": "true"},
            "containers": [{"name": "migrate", "image": "busybox:latest"}]}}}
    }));
    let failures = failures(ns.wait(Duration::from_secs(90)).0);
    assert_eq!(failures.len(), 1, "{failures:?}");
    let f = &failures[0];
    assert_eq!(
        (f.resource.as_str(), f.reason),
        ("job/migrate", Reason::HookFailed)
    );
    assert!(
        f.message
            .starts_with("pre-install hook job failed: DeadlineExceeded"),
        "{}",
        f.message
    );
}

#[test]
fn the_client_uses_the_named_context_not_the_current_one() {
    let Some(rig) = rig() else { return };
    // The rig's kubeconfig plus a broken context that is the current one.
    let config = kube::config::Kubeconfig::read_from(&rig.kubeconfig).unwrap();
    let mut config = serde_json::to_value(config).unwrap();
    let server = format!("https://127.0.0.1:{}", free_port());
    config["clusters"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "broken", "cluster": {"server": server}}));
    config["contexts"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "broken", "context": {"cluster": "broken"}}));
    config["current-context"] = json!("broken");
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("kubeconfig");
    // JSON is YAML: kubeconfig readers take it as is.
    std::fs::write(&file, serde_json::to_string(&config).unwrap()).unwrap();

    let client = rig
        .rt
        .block_on(stack::kube::client(&file, "stack-rig"))
        .expect("the named context answers although the current one is broken");
    let version = rig.rt.block_on(client.apiserver_version()).unwrap();
    assert!(version.git_version.starts_with('v'));
    let err = client_error(rig.rt.block_on(stack::kube::client(&file, "broken")));
    assert_eq!(err.exit_code(), 3);
}

fn client_error(r: Result<kube::Client, stack::error::StackError>) -> stack::error::StackError {
    match r {
        Ok(_) => panic!("expected an error, got a client"),
        Err(e) => e,
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A kubeconfig with one context `gone` whose server is a closed local port.
fn unreachable_kubeconfig(dir: &Path) -> (PathBuf, String) {
    let server = format!("https://127.0.0.1:{}", free_port());
    let file = dir.join("kubeconfig");
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: gone\n\
             clusters:\n- name: gone\n  cluster:\n    server: {server}\n    insecure-skip-tls-verify: true\n\
             contexts:\n- name: gone\n  context:\n    cluster: gone\n    user: me\n\
             users:\n- name: me\n  user:\n    token: not-a-secret\n"
        ),
    )
    .unwrap();
    (file, server)
}

#[tokio::test]
async fn an_unreachable_api_server_is_exit_3_naming_context_and_server() {
    let dir = tempfile::tempdir().unwrap();
    let (file, server) = unreachable_kubeconfig(dir.path());
    let err = client_error(stack::kube::client(&file, "gone").await);
    assert_eq!(err.exit_code(), 3, "{err}");
    let text = err.to_string();
    assert!(
        text.contains(&server) && text.contains("context `gone`"),
        "{text}"
    );
}

#[tokio::test]
async fn an_unknown_context_or_missing_file_is_a_configuration_error() {
    let dir = tempfile::tempdir().unwrap();
    let (file, _) = unreachable_kubeconfig(dir.path());
    let err = client_error(stack::kube::client(&file, "prod").await);
    assert_eq!(err.exit_code(), 2);
    assert!(
        err.to_string().contains("context `prod` is not in"),
        "{err}"
    );
    assert_eq!(err.hint(), Some("contexts in that file: gone"));
    let err = client_error(stack::kube::client(&dir.path().join("nope"), "gone").await);
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("cannot read kubeconfig"), "{err}");
}

#[test]
fn statefulsets_and_daemonsets_are_waited_on_too() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-sts");
    ns.create(deployment("web", 1, json!({}), json!({})));
    let labels = json!({"app.kubernetes.io/instance": "t", "app": "db"});
    // A database whose pod cannot be scheduled: before StatefulSets were watched, the release was
    // "ready" as soon as `web` was.
    ns.create(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "labels": labels},
        "spec": {
            "replicas": 1, "serviceName": "db",
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "nodeSelector": {"stack.dev/no-such-node": "true"},
                "containers": [{"name": "db", "image": "busybox:latest"}]}}
        }
    }));
    let failures = failures(ns.wait(Duration::from_secs(120)).0);
    assert_eq!(failures.len(), 1, "{failures:?}");
    assert_eq!(failures[0].reason, Reason::Unschedulable);
    assert_eq!(failures[0].owner.as_deref(), Some("statefulset/db"));

    // A DaemonSet on the simulated node rolls out and counts toward readiness.
    let ns = rig.namespace("kube-ds");
    let labels = json!({"app.kubernetes.io/instance": "t", "app": "agent"});
    ns.create(json!({
        "apiVersion": "apps/v1", "kind": "DaemonSet",
        "metadata": {"name": "agent", "labels": labels},
        "spec": {
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": {
                "tolerations": [{"operator": "Exists"}],
                "containers": [{"name": "agent", "image": "busybox:latest"}]}}
        }
    }));
    let (result, seen) = ns.wait(Duration::from_secs(120));
    assert_eq!(result.unwrap(), Readiness::Ready);
    assert!(
        seen.iter()
            .any(|p| p.resource == "daemonset/agent" && p.done && p.desired == 1),
        "{seen:?}"
    );
}

/// Appends a CRI-format line stamped now (as the runtime writes it) to a log file kwok serves.
fn cri_append(path: &Path, text: &str) {
    use std::io::Write;
    let stamp = k8s_openapi::jiff::Timestamp::now();
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .unwrap()
        .write_all(format!("{stamp} stdout F {text}\n").as_bytes())
        .unwrap();
}

#[test]
fn a_log_stream_that_ends_while_its_container_runs_resumes_without_repeats_or_gaps() {
    use std::sync::Arc;
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("kube-logs-resume");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("app.log");
    cri_append(&log, "one");
    cri_append(&log, "two");
    ns.create(json!({
        "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "Logs", "metadata": {"name": "p"},
        "spec": {"logs": [{"containers": ["app"], "logsFile": log, "follow": true}]}
    }));
    ns.create(json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "p", "labels": {"app.kubernetes.io/instance": "t", "app": "p"}},
        "spec": {"containers": [{"name": "app", "image": "busybox:latest"}]}
    }));
    ns.running_pods("p", 1);

    /// Waits until a line containing `text` has been shown.
    async fn until(lines: &Mutex<Vec<String>>, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while !lines.lock().unwrap().iter().any(|l| l.contains(text)) {
            assert!(Instant::now() < deadline, "{text:?} not shown: {lines:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    let lines: Arc<Mutex<Vec<String>>> = Arc::default();
    rig.rt.block_on(async {
        let sink = lines.clone();
        let shutdown = tokio_util::sync::CancellationToken::new();
        let task = tokio::spawn(stack::kube::logs::follow(
            rig.client.clone(),
            ns.name.clone(),
            SELECTOR.to_owned(),
            move |l| sink.lock().unwrap().push(l.line),
            shutdown.clone(),
        ));
        until(&lines, "two").await;
        cri_append(&log, "three");
        until(&lines, "three").await;
        // The kubelet ends the stream while the container keeps running: the log path turns into
        // a directory (a rotation gone wrong) and kwok's reader — the kubelet's own CRI log reader —
        // stops, writing "failed to read log file …" into the stream. The pod stays Running.
        let aside = dir.path().join("app.log.1");
        std::fs::rename(&log, &aside).unwrap();
        std::fs::create_dir(&log).unwrap();
        until(&lines, "failed to read log file").await;
        // Written while no stream is open; the log comes back (reopening fails until then).
        cri_append(&aside, "four");
        std::fs::remove_dir(&log).unwrap();
        std::fs::rename(&aside, &log).unwrap();
        cri_append(&log, "five");
        until(&lines, "five").await;
        // Give a repeated replay the time to show up before judging.
        tokio::time::sleep(Duration::from_secs(1)).await;
        shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(10), task)
            .await
            .expect("follow returns promptly after shutdown")
            .unwrap()
            .unwrap();
    });
    let ours: Vec<String> = lines
        .lock()
        .unwrap()
        .iter()
        .filter(|l| !l.starts_with("failed to read log file"))
        .cloned()
        .collect();
    assert_eq!(ours, ["one", "two", "three", "four", "five"]);
}
