//! The cluster-facing check kinds (`ready`, `assert`, `absent`, `job`) against the rig (tier
//! "rig"): checks declared in a stack.yaml, loaded by `stack::check::load` and run by
//! `stack::check::run_all` through a `stack::check::Ctx` on the real API server and controllers.
//! kwok plays the kubelet: pods become Ready, Job pods complete, and a pod annotated
//! `stack.dev/kwok-exit-code: "<n>"` ends with that exit code (the rig's own stage). Each test
//! works in its own namespace.

use crate::rig_ns::{rig, Ns};
use kube::api::ListParams;
use serde_json::{json, Value};
use stack::check::{Outcome, Status};
use std::path::Path;
use std::time::{Duration, Instant};

impl Ns<'_> {
    fn count(&self, api_version: &str, kind: &str, selector: &str) -> usize {
        let api = self.api(&json!({"apiVersion": api_version, "kind": kind}));
        self.rig
            .rt
            .block_on(api.list(&ListParams::default().labels(selector)))
            .unwrap()
            .items
            .iter()
            .filter(|o| o.metadata.deletion_timestamp.is_none())
            .count()
    }

    /// kwok serves `lines` as the logs of every container of every pod in this namespace.
    fn serve_logs(&self, container: &str, lines: &[&str]) {
        let file = self.root.path().join(format!("{container}.log"));
        cri_log(&file, lines);
        self.create(json!({
            "apiVersion": "kwok.x-k8s.io/v1alpha1", "kind": "ClusterLogs",
            "metadata": {"name": self.name},
            "spec": {"selector": {"matchNamespaces": [self.name]},
                "logs": [{"containers": [container], "logsFile": file}]}
        }));
    }
}

fn cri_log(path: &Path, lines: &[&str]) {
    let text: String = lines
        .iter()
        .map(|l| format!("2026-01-01T00:00:00.000000000Z stdout F {l}\n"))
        .collect();
    std::fs::write(path, text).unwrap();
}

fn deployment(name: &str, replicas: i32, pod: Value) -> Value {
    let labels = json!({"app": name});
    let mut spec = json!({"containers": [{"name": "app", "image": "busybox:latest"}]});
    if let (Some(a), Value::Object(b)) = (spec.as_object_mut(), pod) {
        a.extend(b);
    }
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": labels},
        "spec": {"replicas": replicas, "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": spec}}
    })
}

/// A Job whose pod kwok ends with `exit` (`None`: kwok's own pod-complete, exit 0).
fn job(name: &str, exit: Option<&str>) -> Value {
    let annotations = match exit {
        Some(code) => json!({"stack.dev/kwok-exit-code": code}),
        None => json!({}),
    };
    json!({
        "apiVersion": "batch/v1", "kind": "Job",
        "metadata": {"name": name},
        "spec": {"backoffLimit": 0, "template": {
            "metadata": {"annotations": annotations},
            "spec": {"restartPolicy": "Never",
                "containers": [{"name": "main", "image": "busybox:latest"}]}}}
    })
}

fn outcome<'a>(outcomes: &'a [Outcome], name: &str) -> &'a Outcome {
    outcomes
        .iter()
        .find(|o| o.name == name)
        .unwrap_or_else(|| panic!("no outcome `{name}` in {outcomes:#?}"))
}

fn assert_status(o: &Outcome, status: Status) {
    assert_eq!(
        o.status, status,
        "check `{}`: {} / {}",
        o.name, o.message, o.detail
    );
}

fn eventually(what: &str, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !f() {
        assert!(Instant::now() < deadline, "{what}: not within 60s");
        std::thread::sleep(Duration::from_millis(250));
    }
}

#[test]
fn ready_passes_for_a_rolled_out_deployment_its_service_and_a_completed_job() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-ready");
    ns.create(deployment("api", 2, json!({})));
    ns.create(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "api"},
        "spec": {"selector": {"app": "api"}, "ports": [{"port": 80}]}
    }));
    ns.create(json!({
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": "db"},
        "spec": {"type": "ExternalName", "externalName": "db.example.com"}
    }));
    ns.create(job("migrate", None));
    let out = ns.run_checks(
        "- {name: api, ready: deployment/api}
- {name: api-by-label, ready: {kind: Deploy, selector: app=api}}
- {name: api-pods, ready: {kind: po, selector: app=api}}
- {name: svc, ready: svc/api}
- {name: external, ready: service/db}
- {name: migrate, ready: job/migrate}",
    );
    for o in &out {
        assert_status(o, Status::Passed);
    }
    assert_eq!(
        outcome(&out, "api").message,
        "deployment/api: 2/2 available"
    );
    assert_eq!(
        outcome(&out, "api-by-label").message,
        "1 deployment matching `app=api` ready"
    );
    assert_eq!(
        outcome(&out, "api-pods").message,
        "2 pods matching `app=api` ready"
    );
    // Ready as soon as one endpoint is (the EndpointSlice controller may not list both pods yet).
    let svc = &outcome(&out, "svc").message;
    assert!(
        svc == "service/api: 1 ready endpoint" || svc == "service/api: 2 ready endpoints",
        "{svc}"
    );
    assert_eq!(
        outcome(&out, "external").message,
        "service/db: ExternalName"
    );
    assert_eq!(outcome(&out, "migrate").message, "job/migrate: complete");
}

#[test]
fn ready_fails_with_the_named_reason_and_a_failed_job_fails_at_once() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-unready");
    // No node has this label: the scheduler reports the pod Unschedulable.
    ns.create(deployment(
        "stuck",
        1,
        json!({"nodeSelector": {"stack.dev/no-such-node": "true"}}),
    ));
    ns.create(job("broken", Some("1")));
    let start = Instant::now();
    let out = ns.run_checks(
        "- {name: stuck, ready: deployment/stuck, timeout: 5s}
- {name: missing, ready: sts/nope, timeout: 1s}
- {name: nothing-matches, ready: {kind: ds, selector: app=none}, timeout: 1s}
- {name: broken, ready: job/broken, timeout: 60s}
- {name: typo, ready: cronjob/x}",
    );
    assert!(
        start.elapsed() < Duration::from_secs(40),
        "a failed Job ends its check at once, not at the 60s timeout ({:?})",
        start.elapsed()
    );

    let stuck = outcome(&out, "stuck");
    assert_status(stuck, Status::Failed);
    assert!(
        stuck
            .message
            .starts_with("deployment/stuck: 0/1 available, 1 updated; pod/stuck-"),
        "{}",
        stuck.message
    );
    assert!(
        stuck
            .message
            .contains(": Unschedulable: 0/1 nodes are available")
            && stuck.message.ends_with("(still so after 5s)"),
        "{}",
        stuck.message
    );
    assert!(
        stuck
            .detail
            .starts_with("deployment/stuck:\n  conditions:\n")
            && stuck
                .detail
                .contains("  - Available=False (MinimumReplicasUnavailable)")
            && stuck.detail.contains("  pods:\n  - pod/stuck-")
            && stuck
                .detail
                .contains("    Unschedulable: 0/1 nodes are available"),
        "{}",
        stuck.detail
    );

    let missing = outcome(&out, "missing");
    assert_status(missing, Status::Failed);
    assert_eq!(
        missing.message,
        "statefulset/nope not found (still so after 1s)"
    );
    assert_eq!(
        outcome(&out, "nothing-matches").message,
        "no daemonset matches `app=none` (still so after 1s)"
    );

    let broken = outcome(&out, "broken");
    assert_status(broken, Status::Failed);
    assert!(
        broken
            .message
            .starts_with("job/broken: failed (BackoffLimitExceeded: Job has reached the specified backoff limit); pod/broken-")
            && broken.message.ends_with(" container main exited 1 (Error)"),
        "{}",
        broken.message
    );
    assert!(
        broken
            .detail
            .contains("  - Failed=True (BackoffLimitExceeded)"),
        "{}",
        broken.detail
    );

    let typo = outcome(&out, "typo");
    assert_status(typo, Status::Error);
    assert_eq!(
        typo.message,
        "ready: unknown kind `cronjob` (one of: deployment, statefulset, daemonset, job, pod, pvc, service)"
    );
}

#[test]
fn assert_matches_a_subset_and_reports_a_field_diff() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-assert");
    ns.create(json!({
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "settings", "labels": {"app": "api"}},
        "data": {"mode": "dev", "level": "info"}
    }));
    ns.create(deployment("api", 2, json!({})));
    let out = ns.run_checks(&format!(
        "- name: same
  assert:
    apiVersion: v1
    kind: ConfigMap
    metadata: {{name: settings, namespace: {ns}, labels: {{app: api}}}}
    data: {{level: info}}
- name: differs
  timeout: 2s
  assert:
    apiVersion: v1
    kind: ConfigMap
    metadata: {{name: settings, labels: {{tier: web}}}}
    data: {{mode: prod, level: info}}
- name: replicas
  timeout: 1s
  assert:
    apiVersion: apps/v1
    kind: Deployment
    metadata: {{name: api}}
    spec:
      replicas: 3
      template: {{spec: {{containers: [{{name: app, image: busybox:latest}}]}}}}
- name: replicas-as-text
  timeout: 1s
  assert: {{apiVersion: apps/v1, kind: Deployment, metadata: {{name: api}}, spec: {{replicas: '2'}}}}
- name: missing
  timeout: 1s
  assert: {{apiVersion: v1, kind: ConfigMap, metadata: {{name: nope}}}}
- name: cluster-scoped
  assert: {{apiVersion: v1, kind: Namespace, metadata: {{name: {ns}}}, status: {{phase: Active}}}}
- name: unknown-kind
  timeout: 1s
  assert: {{apiVersion: example.com/v1, kind: Widget, metadata: {{name: w}}}}",
        ns = ns.name
    ));
    assert_status(outcome(&out, "same"), Status::Passed);
    assert_eq!(outcome(&out, "same").message, "configmap/settings matches");

    let differs = outcome(&out, "differs");
    assert_status(differs, Status::Failed);
    assert_eq!(
        differs.message,
        "configmap/settings: 2 fields differ (still so after 2s)"
    );
    assert_eq!(
        differs.detail,
        ".data.mode: expected \"prod\", got \"dev\"\n.metadata.labels.tier: missing"
    );

    let replicas = outcome(&out, "replicas");
    assert_status(replicas, Status::Failed);
    assert_eq!(
        replicas.message,
        "deployment/api: 1 field differs (still so after 1s)"
    );
    assert_eq!(replicas.detail, ".spec.replicas: expected 3, got 2");
    assert_eq!(
        outcome(&out, "replicas-as-text").detail,
        ".spec.replicas: expected \"2\", got 2"
    );

    let missing = outcome(&out, "missing");
    assert_status(missing, Status::Failed);
    assert_eq!(
        missing.message,
        "configmap/nope not found (still so after 1s)"
    );
    assert_status(outcome(&out, "cluster-scoped"), Status::Passed);

    let unknown = outcome(&out, "unknown-kind");
    assert_status(unknown, Status::Error);
    assert!(
        unknown
            .message
            .starts_with("no kind Widget in example.com/v1 on the API server"),
        "{}",
        unknown.message
    );
}

#[test]
fn absent_passes_once_the_object_is_gone_and_fails_while_it_stays() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-absent");
    for name in ["old", "going"] {
        ns.create(json!({
            "apiVersion": "v1", "kind": "Secret", "metadata": {"name": name},
            "stringData": {"k": "v"}
        }));
    }
    // `going` is deleted while its check polls.
    let kubectl = rig.bin_dir.join("kubectl");
    let (kubeconfig, namespace) = (rig.kubeconfig.clone(), ns.name.clone());
    let deleter = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        std::process::Command::new(kubectl)
            .env("KUBECONFIG", kubeconfig)
            .args(["--context", "stack-rig", "-n", &namespace])
            .args(["delete", "secret", "going"])
            .output()
            .unwrap()
    });
    let out = ns.run_checks(
        "- {name: never-was, absent: {apiVersion: v1, kind: Secret, metadata: {name: gone}}}
- {name: deleted, timeout: 30s, absent: {apiVersion: v1, kind: Secret, metadata: {name: going}}}
- {name: stays, timeout: 2s, absent: {apiVersion: v1, kind: Secret, metadata: {name: old}}}",
    );
    assert!(deleter.join().unwrap().status.success());
    assert_status(outcome(&out, "never-was"), Status::Passed);
    assert_eq!(outcome(&out, "never-was").message, "secret/gone is absent");
    assert_status(outcome(&out, "deleted"), Status::Passed);
    assert!(
        outcome(&out, "deleted").seconds >= 1.0,
        "passed only after the delete"
    );
    let stays = outcome(&out, "stays");
    assert_status(stays, Status::Failed);
    assert_eq!(stays.message, "secret/old still exists (still so after 2s)");
}

#[test]
fn job_checks_pass_on_exit_0_fail_with_the_exit_code_and_logs_and_clean_up() {
    let Some(rig) = rig() else { return };
    let ns = rig.namespace("checks-job");
    ns.serve_logs("main", &["migrating", "error: table users is locked"]);
    std::fs::create_dir_all(ns.root.path().join("checks")).unwrap();
    std::fs::write(
        ns.root.path().join("checks/smoke.yaml"),
        "apiVersion: batch/v1
kind: Job
metadata:
  name: smoke
spec:
  template:
    spec:
      restartPolicy: Never
      containers:
      - name: main
        image: busybox:latest
        args: [sh, -c, 'exit 0']
",
    )
    .unwrap();
    let out = ns.run_checks(
        r#"- {name: smoke, job: {file: checks/smoke.yaml}}
- name: migrate
  job:
    manifest:
      apiVersion: batch/v1
      kind: Job
      metadata: {name: migrate}
      spec:
        template:
          metadata: {annotations: {stack.dev/kwok-exit-code: "1"}}
          spec:
            restartPolicy: Never
            containers: [{name: main, image: busybox:latest}]
- name: pod-ok
  job:
    manifest:
      apiVersion: v1
      kind: Pod
      metadata: {name: probe, annotations: {stack.dev/kwok-exit-code: "0"}}
      spec: {containers: [{name: main, image: busybox:latest}]}
- name: pod-exit-7
  job:
    manifest:
      apiVersion: v1
      kind: Pod
      metadata: {name: probe7, annotations: {stack.dev/kwok-exit-code: "7"}}
      spec: {containers: [{name: main, image: busybox:latest}]}
- name: never-ends
  timeout: 3s
  job:
    manifest:
      apiVersion: v1
      kind: Pod
      metadata: {name: sleeper}
      spec: {containers: [{name: main, image: busybox:latest}]}
- name: not-a-job
  job: {manifest: {apiVersion: apps/v1, kind: Deployment, metadata: {name: x}}}
- {name: no-file, job: {file: checks/nope.yaml}}"#,
    );

    let smoke = outcome(&out, "smoke");
    assert_status(smoke, Status::Passed);
    assert!(
        smoke.message.starts_with("job/smoke-") && smoke.message.ends_with(" completed"),
        "{}",
        smoke.message
    );

    let migrate = outcome(&out, "migrate");
    assert_status(migrate, Status::Failed);
    assert!(
        migrate.message.starts_with("job/migrate-")
            && migrate.message.ends_with(" failed: exited 1"),
        "{}",
        migrate.message
    );
    assert!(
        migrate.detail.starts_with("--- pod/migrate-")
            && migrate
                .detail
                .ends_with(" container main ---\nmigrating\nerror: table users is locked\n"),
        "{}",
        migrate.detail
    );

    assert_status(outcome(&out, "pod-ok"), Status::Passed);
    assert!(outcome(&out, "pod-ok").message.starts_with("pod/probe-"));
    let exit7 = outcome(&out, "pod-exit-7");
    assert_status(exit7, Status::Failed);
    assert!(
        exit7.message.ends_with(" failed: exited 7"),
        "{}",
        exit7.message
    );

    let never = outcome(&out, "never-ends");
    assert_status(never, Status::TimedOut);
    assert!(
        never.message.starts_with("pod/sleeper-")
            && never.message.ends_with(": Running (no verdict within 3s)"),
        "{}",
        never.message
    );

    let not_a_job = outcome(&out, "not-a-job");
    assert_status(not_a_job, Status::Error);
    assert_eq!(
        not_a_job.message,
        "job: the manifest is apps/v1 Deployment, not a Job (batch/v1) or a Pod (v1)"
    );
    let no_file = outcome(&out, "no-file");
    assert_status(no_file, Status::Error);
    assert!(
        no_file
            .message
            .starts_with("job: cannot read checks/nope.yaml: "),
        "{}",
        no_file.message
    );

    // Every object a check created is deleted once its verdict is in.
    eventually("the checks' Jobs and Pods deleted", || {
        ns.count("batch/v1", "Job", "dev.stack.owned=true") == 0
            && ns.count("v1", "Pod", "dev.stack.owned=true") == 0
    });
}
