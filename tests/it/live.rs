//! `stack live deploy | history | rollback`. The safety refusals run everywhere with a recording
//! fake helm (`STACK_HELM`): they must happen before any tool runs. The deploy/rollback flow runs
//! against the rig (tier "rig"): real helm, real API server, kwok nodes, charts pushed to the rig
//! registry as released OCI artifacts.

use crate::support;
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};

const CHART_YAML: &str = "apiVersion: v2\nname: web\nversion: 1.0.0\nappVersion: \"1.0\"\n";
const VALUES: &str =
    "image:\n  repository: registry.example/web\n  tag: \"1.0\"\nreplicas: 1\nnodeSelector: {}\n";
const DEPLOYMENT: &str = r#"apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
  labels:
    app.kubernetes.io/instance: {{ .Release.Name }}
spec:
  replicas: {{ .Values.replicas }}
  selector:
    matchLabels:
      app.kubernetes.io/instance: {{ .Release.Name }}
  template:
    metadata:
      labels:
        app.kubernetes.io/instance: {{ .Release.Name }}
    spec:
      {{- with .Values.nodeSelector }}
      nodeSelector:
        {{- toYaml . | nindent 8 }}
      {{- end }}
      containers:
        - name: web
          image: "{{ .Values.image.repository }}:{{ .Values.image.tag }}"
"#;

/// A project with a chart `web`, live targets `live/prod` (context `stack-rig`, allowed) and
/// `live/rogue` (context `prod`, not allowed), deploying `oci://<registry>/<repo>/web`.
fn project(dir: &Path, namespace: &str, registry: &str, repo: &str, kubeconfig: &str) {
    let chart = dir.join("charts/web");
    std::fs::create_dir_all(chart.join("templates")).unwrap();
    std::fs::write(chart.join("Chart.yaml"), CHART_YAML).unwrap();
    std::fs::write(chart.join("values.yaml"), VALUES).unwrap();
    std::fs::write(chart.join("templates/deployment.yaml"), DEPLOYMENT).unwrap();
    std::fs::create_dir_all(dir.join("envs/live")).unwrap();
    std::fs::write(dir.join("envs/live/default.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(dir.join("envs/live/prod.yaml"), "image:\n  tag: \"1.0\"\n").unwrap();
    std::fs::write(dir.join("envs/live/rogue.yaml"), "image:\n  tag: \"1.0\"\n").unwrap();
    let yaml = format!(
        "apiVersion: stack/v1
project: shop
chart:
  path: charts/web
live:
  allowedContexts: [stack-rig]
  timeoutSeconds: 45
  retries: 1
  chart:
    reference: oci://{registry}/{repo}/web
    plainHttp: true
  targets:
    live/prod:
      context: stack-rig
      kubeconfig: {kubeconfig}
      namespace: {namespace}
    live/rogue:
      context: prod
      kubeconfig: {kubeconfig}
      namespace: {namespace}
"
    );
    std::fs::write(dir.join("stack.yaml"), yaml).unwrap();
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// A `helm` that records every call (one line each) and answers like a cluster without the release.
fn recording_helm(dir: &Path) -> (PathBuf, PathBuf) {
    let log = dir.join("helm-calls.log");
    let script = dir.join("fake-helm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\necho 'Error: release: not found' >&2\nexit 1\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

/// A `helm` whose answers are a shell `case` on the subcommand (calls recorded like above).
fn scripted_helm(dir: &Path, cases: &str) -> (PathBuf, PathBuf) {
    let log = dir.join("helm-calls.log");
    let script = dir.join("scripted-helm");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\necho \"$@\" >> '{}'\ncase \"$1\" in\n{cases}\nesac\n",
            log.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
    (script, log)
}

#[test]
fn a_release_stuck_in_pending_is_reported_and_nothing_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "ns", "127.0.0.1:1", "r", "kubeconfig");
    let (helm, log) = scripted_helm(
        dir.path(),
        r#"status) echo '{"version": 4, "info": {"status": "pending-upgrade", "first_deployed": "x"}}';;
*) exit 1;;"#,
    );
    let o = run_fake(
        dir.path(),
        &helm,
        &[
            "live",
            "deploy",
            "prod",
            "--version",
            "1.0.0",
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["result"]["status"], "stuck", "{report}");
    assert_eq!(report["result"]["releaseStatus"], "pending-upgrade");
    assert!(report["result"]["hint"]
        .as_str()
        .unwrap()
        .contains("stack live recover live/prod"));
    let ran = calls(&log);
    assert!(ran.iter().all(|c| c.starts_with("status ")), "{ran:?}");
}

#[test]
fn upgrade_is_retried_only_while_another_operation_is_in_progress() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "ns", "127.0.0.1:1", "r", "kubeconfig");
    let (helm, log) = scripted_helm(
        dir.path(),
        r#"upgrade) echo 'Error: UPGRADE FAILED: another operation (install/upgrade/rollback) is in progress' >&2; exit 1;;
*) exit 1;;"#,
    );
    let o = run_fake(
        dir.path(),
        &helm,
        &[
            "live",
            "deploy",
            "prod",
            "--version",
            "1.0.0",
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // retries: 1 in stack.yaml → two attempts; no release before, so nothing to roll back to, and
    // never an uninstall.
    assert_eq!(report["retries"], 1, "{report}");
    assert_eq!(report["result"]["status"], "failed", "{report}");
    let ran = calls(&log);
    assert_eq!(
        ran.iter().filter(|c| c.starts_with("upgrade ")).count(),
        2,
        "{ran:?}"
    );
    assert!(
        !ran.iter()
            .any(|c| c.starts_with("uninstall") || c.starts_with("rollback")),
        "{ran:?}"
    );
    let diag = dir
        .path()
        .join(".stack/diagnostics/shop-prod/helm-upgrade.txt");
    assert!(std::fs::read_to_string(diag)
        .unwrap()
        .contains("another operation"));

    // Any other helm failure is not retried.
    let (helm, log) = scripted_helm(
        dir.path(),
        r#"upgrade) echo 'Error: chart not found' >&2; exit 1;;
*) exit 1;;"#,
    );
    std::fs::remove_file(&log).unwrap();
    let o = run_fake(
        dir.path(),
        &helm,
        &[
            "live",
            "deploy",
            "prod",
            "--version",
            "1.0.0",
            "--yes",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let ran = calls(&log);
    assert_eq!(
        ran.iter().filter(|c| c.starts_with("upgrade ")).count(),
        1,
        "{ran:?}"
    );
}

fn calls(log: &Path) -> Vec<String> {
    std::fs::read_to_string(log)
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

fn run_fake(dir: &Path, helm: &Path, args: &[&str]) -> Output {
    std::process::Command::new(support::stack_bin())
        .current_dir(dir)
        .env("STACK_HELM", helm)
        .env("NO_COLOR", "1")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn deploy_without_a_tty_and_without_yes_is_refused_before_anything_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "ns", "127.0.0.1:1", "r", "kubeconfig");
    let (helm, log) = recording_helm(dir.path());
    let o = run_fake(
        dir.path(),
        &helm,
        &["live", "deploy", "prod", "--version", "1.0.0"],
    );
    assert_eq!(
        o.status.code(),
        Some(2),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let err = text(&o.stderr);
    assert!(err.contains("--yes"), "{err}");
    assert!(
        err.contains("stack-rig") && err.contains("shop-prod"),
        "{err}"
    );
    assert_eq!(calls(&log), Vec::<String>::new());
}

#[test]
fn a_context_outside_the_allowlist_is_refused_with_no_tool_call() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "ns", "127.0.0.1:1", "r", "kubeconfig");
    let (helm, log) = recording_helm(dir.path());
    for args in [
        &["live", "deploy", "rogue", "--version", "1.0.0", "--yes"][..],
        &["live", "rollback", "rogue", "--yes"][..],
        &["live", "history", "rogue"][..],
    ] {
        let o = run_fake(dir.path(), &helm, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains("refusing to") && text(&o.stderr).contains("`prod`"),
            "{}",
            text(&o.stderr)
        );
    }
    assert_eq!(calls(&log), Vec::<String>::new());
}

#[test]
fn a_live_target_never_uses_a_local_context() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "ns", "127.0.0.1:1", "r", "kubeconfig");
    let yaml = std::fs::read_to_string(dir.path().join("stack.yaml"))
        .unwrap()
        .replace("context: prod", "context: kind-stack")
        .replace(
            "allowedContexts: [stack-rig]",
            "allowedContexts: [stack-rig, kind-stack]",
        );
    std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
    let (helm, log) = recording_helm(dir.path());
    let o = run_fake(
        dir.path(),
        &helm,
        &["live", "deploy", "rogue", "--version", "1", "--yes"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("local context"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(calls(&log), Vec::<String>::new());
}

#[test]
fn targets_are_resolved_and_checked_before_any_tool_runs() {
    let dir = tempfile::tempdir().unwrap();
    project(dir.path(), "ns", "127.0.0.1:1", "r", "kubeconfig");
    std::fs::create_dir_all(dir.path().join("envs/local")).unwrap();
    std::fs::write(dir.path().join("envs/local/dev.yaml"), "replicas: 1\n").unwrap();
    std::fs::write(
        dir.path().join("envs/live/undeclared.yaml"),
        "replicas: 1\n",
    )
    .unwrap();
    let (helm, log) = recording_helm(dir.path());
    let cases: [(&[&str], &str); 4] = [
        (&["live", "deploy", "local/dev", "--yes"], "not a live one"),
        (
            &["live", "deploy", "undeclared", "--yes"],
            "declares no kube context",
        ),
        // An OCI chart needs a version: none in stack.yaml, none on the command line.
        (&["live", "deploy", "prod", "--yes"], "which version"),
        (&["live", "history", "nope"], "no env target `nope`"),
    ];
    for (args, says) in cases {
        let o = run_fake(dir.path(), &helm, args);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {}", text(&o.stderr));
        assert!(
            text(&o.stderr).contains(says),
            "{args:?}: {}",
            text(&o.stderr)
        );
    }
    // An env with errors is refused before the cluster is touched, as `up` refuses its dev env.
    std::fs::write(
        dir.path().join("envs/live/prod.yaml"),
        "image:\n  tag: latest\n",
    )
    .unwrap();
    let o = run_fake(
        dir.path(),
        &helm,
        &["live", "deploy", "prod", "--version", "1", "--yes"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    assert!(
        text(&o.stderr).contains("envs/live/prod.yaml"),
        "{}",
        text(&o.stderr)
    );
    assert_eq!(calls(&log), Vec::<String>::new());
}

#[test]
fn dry_run_prints_the_exact_helm_command_and_runs_nothing_that_mutates() {
    let dir = tempfile::tempdir().unwrap();
    project(
        dir.path(),
        "web-ns",
        "127.0.0.1:25000",
        "charts",
        "kube.yaml",
    );
    let (helm, log) = recording_helm(dir.path());
    let o = run_fake(
        dir.path(),
        &helm,
        &[
            "live",
            "deploy",
            "prod",
            "--version",
            "2.0.0",
            "--dry-run",
            "--format",
            "json",
        ],
    );
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let root = dir.path().display();
    let command = format!(
        "cd {root} && {} upgrade --install shop-prod oci://127.0.0.1:25000/charts/web --create-namespace -n web-ns --kube-context stack-rig --kubeconfig kube.yaml -f envs/live/default.yaml -f envs/live/prod.yaml --version 2.0.0 --plain-http",
        helm.display()
    );
    assert_eq!(report["command"], command.as_str(), "{report}");
    assert_eq!(report["result"]["status"], "would-deploy");
    assert_eq!(report["steps"][0]["status"], "would-run", "{report}");
    // Only the read-only `helm status` ran.
    let ran = calls(&log);
    assert!(ran.iter().all(|c| c.starts_with("status ")), "{ran:?}");
}

/// The rig, or why not (its env file, and an API server that answers).
fn rig() -> Option<support::RigEnv> {
    let env = support::rig_env().and_then(|env| {
        let ok = std::process::Command::new(env.bin_dir.join("kubectl"))
            .envs(&env.vars)
            .args(["--context", "stack-rig", "get", "--raw", "/readyz"])
            .output()
            .map_err(|e| e.to_string())?;
        if !ok.status.success() || !env.vars.contains_key("STACK_RIG_REGISTRY") {
            return Err("the rig's API server does not answer (`cargo xtask rig up`)".into());
        }
        Ok(env)
    });
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    env.ok()
}

struct Live {
    dir: tempfile::TempDir,
    env: support::RigEnv,
    namespace: String,
}

impl Live {
    fn cmd(&self, program: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.current_dir(self.dir.path())
            .envs(&self.env.vars)
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        let mut path = vec![self.env.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        c.env("PATH", std::env::join_paths(path).unwrap());
        c
    }

    fn stack(&self, args: &[&str]) -> (Option<i32>, serde_json::Value, String) {
        let o = self
            .cmd(&support::stack_bin())
            .args(args)
            .args(["--format", "json"])
            .output()
            .unwrap();
        let report = serde_json::from_slice(&o.stdout).unwrap_or(serde_json::Value::Null);
        (o.status.code(), report, text(&o.stderr))
    }

    fn helm(&self, args: &[&str]) -> Output {
        self.cmd(&self.env.bin_dir.join("helm"))
            .args(args)
            .output()
            .unwrap()
    }

    /// Packages the chart at `version` (with `values` appended) and pushes it to the rig registry.
    fn release_chart(&self, repo: &str, version: &str, extra_values: &str) {
        let src = self.dir.path().join("charts/web");
        let work = self.dir.path().join(format!("pkg-{version}"));
        support::copy(&src, &work.join("web"));
        let values = work.join("web/values.yaml");
        let mut v = std::fs::read_to_string(&values).unwrap();
        v.push_str(extra_values);
        std::fs::write(&values, v).unwrap();
        let o = self.helm(&[
            "package",
            work.join("web").to_str().unwrap(),
            "--version",
            version,
            "-d",
            work.to_str().unwrap(),
        ]);
        assert!(o.status.success(), "helm package: {}", text(&o.stderr));
        let registry = &self.env.vars["STACK_RIG_REGISTRY"];
        let tgz = work.join(format!("web-{version}.tgz"));
        let o = self.helm(&[
            "push",
            tgz.to_str().unwrap(),
            &format!("oci://{registry}/{repo}"),
            "--plain-http",
        ]);
        assert!(o.status.success(), "helm push: {}", text(&o.stderr));
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        let kube = self.env.vars.get("KUBECONFIG").cloned().unwrap_or_default();
        let _ = self.helm(&[
            "uninstall",
            "shop-prod",
            "-n",
            &self.namespace,
            "--kube-context",
            "stack-rig",
            "--kubeconfig",
            &kube,
        ]);
        let _ = self
            .cmd(&self.env.bin_dir.join("kubectl"))
            .args([
                "--context",
                "stack-rig",
                "delete",
                "namespace",
                &self.namespace,
                "--wait=false",
            ])
            .output();
    }
}

/// A project on the rig with its own namespace and chart repository, charts 1.0.0 (good) and
/// 2.0.0 (pods no node can take: never ready) pushed.
fn live_on_rig() -> Option<(Live, String)> {
    let env = rig()?;
    let dir = tempfile::tempdir().unwrap();
    let suffix = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .replace(['.', '_'], "");
    let namespace = format!("live-{suffix}");
    let repo = format!("live-{suffix}");
    let kubeconfig = env.vars["KUBECONFIG"].clone();
    project(
        dir.path(),
        &namespace,
        &env.vars["STACK_RIG_REGISTRY"],
        &repo,
        &kubeconfig,
    );
    let live = Live {
        dir,
        env,
        namespace,
    };
    live.release_chart(&repo, "1.0.0", "");
    // Pods no node can take: never ready (Unschedulable, or the timeout).
    live.release_chart(
        &repo,
        "2.0.0",
        "nodeSelector:\n  stack.dev/no-such-node: \"yes\"\n",
    );
    Some((live, repo))
}

#[test]
fn deploy_good_then_bad_rolls_back_then_explicit_rollback() {
    let Some((live, _)) = live_on_rig() else {
        return;
    };

    let (code, good, err) = live.stack(&["live", "deploy", "prod", "--version", "1.0.0", "--yes"]);
    assert_eq!(code, Some(0), "{good}\n{err}");
    assert_eq!(good["result"]["status"], "deployed", "{good}");
    assert_eq!(good["result"]["revision"], 1);

    let (code, history, err) = live.stack(&["live", "history", "prod"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(history["revisions"][0]["chart"], "web-1.0.0", "{history}");
    assert_eq!(history["revisions"][0]["status"], "deployed");
    // What the revision ran, from its manifest.
    assert_eq!(
        history["revisions"][0]["images"],
        serde_json::json!(["registry.example/web:1.0"]),
        "{history}"
    );

    let (code, bad, err) = live.stack(&["live", "deploy", "prod", "--version", "2.0.0", "--yes"]);
    assert_eq!(code, Some(1), "{bad}\n{err}");
    assert_eq!(bad["result"]["status"], "rolled-back", "{bad}");
    assert_eq!(bad["result"]["to"], 1);
    assert_eq!(bad["previous"], 1);
    let reasons: Vec<&str> = bad["result"]["failures"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["reason"].as_str())
        .collect();
    assert!(
        reasons.contains(&"Unschedulable") || reasons.contains(&"Timeout"),
        "{bad}"
    );
    let diagnostics = live
        .dir
        .path()
        .join(bad["result"]["diagnostics"].as_str().unwrap());
    assert!(diagnostics.is_dir(), "{bad}");
    assert!(
        bad["steps"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| !s["line"].as_str().unwrap().contains(" uninstall ")),
        "{bad}"
    );

    let (_, history, _) = live.stack(&["live", "history", "prod"]);
    // helm calls the bad revision superseded (its upgrade succeeded); stack knows it was backed out.
    let statuses: Vec<(u64, String, String, bool)> = history["revisions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["revision"].as_u64().unwrap(),
                r["status"].as_str().unwrap().to_owned(),
                r["chart"].as_str().unwrap().to_owned(),
                r["backedOut"].as_bool().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        statuses,
        [
            (1, "superseded".into(), "web-1.0.0".into(), false),
            (2, "superseded".into(), "web-2.0.0".into(), true),
            (3, "deployed".into(), "web-1.0.0".into(), false),
        ],
        "{history}"
    );

    // A dry run names the helm command and changes nothing.
    let (code, would, err) = live.stack(&["live", "rollback", "prod", "1", "--dry-run"]);
    assert_eq!(code, Some(0), "{would}\n{err}");
    assert_eq!(would["revision"], serde_json::Value::Null);
    assert!(
        would["steps"][0]["line"]
            .as_str()
            .unwrap()
            .contains("helm rollback shop-prod 1 --wait -n"),
        "{would}"
    );

    // Default target of an explicit rollback: the newest good revision before the deployed one
    // (revision 2 was backed out, so 1).
    let (code, back, err) = live.stack(&["live", "rollback", "prod", "--yes"]);
    assert_eq!(code, Some(0), "{back}\n{err}");
    assert_eq!(
        (back["from"].as_u64(), back["to"].as_u64()),
        (Some(3), Some(1)),
        "{back}"
    );
    assert_eq!(back["revision"], 4);

    // Without --yes and without a terminal: refused, nothing runs.
    let (code, _, err) = live.stack(&["live", "rollback", "prod"]);
    assert_eq!(code, Some(2), "{err}");
    let (_, history, _) = live.stack(&["live", "history", "prod"]);
    assert_eq!(
        history["revisions"].as_array().unwrap().len(),
        4,
        "{history}"
    );
}

#[test]
fn a_release_left_pending_by_a_killed_helm_is_reported_then_recovered() {
    let Some((live, repo)) = live_on_rig() else {
        return;
    };
    let (code, good, err) = live.stack(&["live", "deploy", "prod", "--version", "1.0.0", "--yes"]);
    assert_eq!(code, Some(0), "{good}\n{err}");
    // helm killed in the middle of an upgrade leaves the release in pending-upgrade.
    let registry = &live.env.vars["STACK_RIG_REGISTRY"];
    let kube = live.env.vars["KUBECONFIG"].clone();
    let mut helm = live
        .cmd(&live.env.bin_dir.join("helm"))
        .args([
            "upgrade",
            "shop-prod",
            &format!("oci://{registry}/{repo}/web"),
            "--version",
            "2.0.0",
            "--plain-http",
            "--wait",
            "--timeout",
            "5m",
            "-n",
            &live.namespace,
            "--kube-context",
            "stack-rig",
            "--kubeconfig",
            &kube,
        ])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    loop {
        let (_, history, _) = live.stack(&["live", "history", "prod"]);
        let pending = history["revisions"]
            .as_array()
            .is_some_and(|r| r.iter().any(|r| r["status"] == "pending-upgrade"));
        if pending {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never pending: {history}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    helm.kill().unwrap();
    let _ = helm.wait();

    let (code, stuck, err) = live.stack(&["live", "deploy", "prod", "--version", "1.0.0", "--yes"]);
    assert_eq!(code, Some(1), "{stuck}\n{err}");
    assert_eq!(stuck["result"]["status"], "stuck", "{stuck}");
    assert!(stuck["steps"].as_array().unwrap().is_empty(), "{stuck}");

    let (code, recovered, err) = live.stack(&["live", "recover", "prod", "--yes"]);
    assert_eq!(code, Some(0), "{recovered}\n{err}");
    assert_eq!(recovered["status"], "recovered", "{recovered}");
    assert_eq!(
        (recovered["from"].as_u64(), recovered["to"].as_u64()),
        (Some(2), Some(1)),
        "{recovered}"
    );

    let (code, again, err) = live.stack(&["live", "recover", "prod", "--yes"]);
    assert_eq!(code, Some(0), "{err}");
    assert_eq!(again["status"], "healthy", "{again}");
    let (code, good, err) = live.stack(&["live", "deploy", "prod", "--version", "1.0.0", "--yes"]);
    assert_eq!(code, Some(0), "{good}\n{err}");
    assert_eq!(good["result"]["status"], "deployed", "{good}");
}

const SECRET: &str = r#"apiVersion: v1
kind: Secret
metadata:
  name: {{ .Release.Name }}
type: Opaque
stringData:
  user: admin
  password: {{ .Values.password | quote }}
"#;

/// `live_on_rig`, plus chart 3.0.0 with a Secret whose password comes from the values, and the
/// prod env file written as `prod` (image tag 1.0 and whatever else is given).
fn diff_on_rig() -> Option<Live> {
    let (live, repo) = live_on_rig()?;
    std::fs::write(
        live.dir.path().join("charts/web/templates/secret.yaml"),
        SECRET,
    )
    .unwrap();
    live.release_chart(&repo, "3.0.0", "password: \"\"\n");
    Some(live)
}

impl Live {
    fn prod(&self, extra: &str) {
        std::fs::write(
            self.dir.path().join("envs/live/prod.yaml"),
            format!("image:\n  tag: \"1.0\"\n{extra}"),
        )
        .unwrap();
    }

    /// `stack live diff prod --version 3.0.0` as people read it: exit code and stdout.
    fn diff_text(&self) -> (Option<i32>, String, String) {
        let o = self
            .cmd(&support::stack_bin())
            .args(["live", "diff", "prod", "--version", "3.0.0"])
            .output()
            .unwrap();
        (o.status.code(), text(&o.stdout), text(&o.stderr))
    }
}

fn changed<'a>(report: &'a serde_json::Value, kind: &str) -> &'a serde_json::Value {
    report["objects"]
        .as_array()
        .unwrap()
        .iter()
        .find(|o| o["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {report}"))
}

#[test]
fn diff_exit_codes_before_and_after_a_deploy_and_after_a_values_change() {
    let Some(live) = diff_on_rig() else {
        return;
    };
    live.prod("password: \"pw-one-7f3a9c\"\n");

    // Not installed: every object added, exit 1.
    let (code, fresh, err) = live.stack(&["live", "diff", "prod", "--version", "3.0.0"]);
    assert_eq!(code, Some(1), "{fresh}\n{err}");
    assert_eq!(fresh["installed"], false, "{fresh}");
    let objects = fresh["objects"].as_array().unwrap();
    let mut kinds: Vec<&str> = objects.iter().filter_map(|o| o["kind"].as_str()).collect();
    kinds.sort();
    assert_eq!(kinds, ["Deployment", "Secret"], "{fresh}");
    assert!(objects.iter().all(|o| o["change"] == "added"), "{fresh}");
    assert_eq!(
        (fresh["added"].as_u64(), fresh["changed"].as_u64()),
        (Some(2), Some(0))
    );
    assert!(!fresh.to_string().contains("pw-one-7f3a9c"), "{fresh}");

    let (code, deployed, err) =
        live.stack(&["live", "deploy", "prod", "--version", "3.0.0", "--yes"]);
    assert_eq!(code, Some(0), "{deployed}\n{err}");
    // The deploy read the same diff first.
    assert_eq!(
        deployed["changes"],
        serde_json::json!({"added": 2, "removed": 0, "changed": 0}),
        "{deployed}"
    );

    // Right after the deploy: nothing to change, exit 0.
    let (code, same, err) = live.stack(&["live", "diff", "prod", "--version", "3.0.0"]);
    assert_eq!(code, Some(0), "{same}\n{err}");
    assert_eq!(same["installed"], true, "{same}");
    assert!(same["objects"].as_array().unwrap().is_empty(), "{same}");
    let (code, out, err) = live.diff_text();
    assert_eq!(code, Some(0), "{out}\n{err}");
    assert!(out.contains("no changes"), "{out}");

    // A values change: exit 1, the Deployment's diff names the field.
    live.prod("password: \"pw-one-7f3a9c\"\nreplicas: 3\n");
    let (code, more, err) = live.stack(&["live", "diff", "prod", "--version", "3.0.0"]);
    assert_eq!(code, Some(1), "{more}\n{err}");
    assert_eq!(more["objects"].as_array().unwrap().len(), 1, "{more}");
    let d = changed(&more, "Deployment");
    assert_eq!(d["change"], "changed", "{more}");
    let diff = d["diff"].as_str().unwrap();
    assert!(
        diff.contains("-  replicas: 1") && diff.contains("+  replicas: 3"),
        "{diff}"
    );
    let (code, out, err) = live.diff_text();
    assert_eq!(code, Some(1), "{out}\n{err}");
    assert!(
        out.contains("changed: Deployment") && out.contains("+  replicas: 3"),
        "{out}"
    );
}

#[test]
fn a_changed_secret_value_is_never_printed() {
    let Some(live) = diff_on_rig() else {
        return;
    };
    live.prod("password: \"pw-one-7f3a9c\"\n");
    let (code, deployed, err) =
        live.stack(&["live", "deploy", "prod", "--version", "3.0.0", "--yes"]);
    assert_eq!(code, Some(0), "{deployed}\n{err}");
    assert!(
        !deployed.to_string().contains("pw-one-7f3a9c"),
        "{deployed}"
    );

    live.prod("password: \"pw-two-0d4e8b\"\n");
    let (code, report, err) = live.stack(&["live", "diff", "prod", "--version", "3.0.0"]);
    assert_eq!(code, Some(1), "{report}\n{err}");
    let s = changed(&report, "Secret");
    assert_eq!(s["change"], "changed", "{report}");
    let diff = s["diff"].as_str().unwrap();
    assert!(
        diff.contains("password") && diff.contains("<redacted: changed>"),
        "{diff}"
    );
    let (code, out, err) = live.diff_text();
    assert_eq!(code, Some(1), "{out}\n{err}");
    for shown in [report.to_string(), out, err] {
        assert!(
            !shown.contains("pw-one-7f3a9c") && !shown.contains("pw-two-0d4e8b"),
            "{shown}"
        );
    }
}

/// A local HTTP server standing in for the public host: answers `/health` with `status`.
fn health_server(status: &'static str) -> (u16, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    listener.set_nonblocking(true).unwrap();
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = stop.clone();
    std::thread::spawn(move || {
        while !flag.load(std::sync::atomic::Ordering::Relaxed) {
            match listener.accept() {
                Ok((mut conn, _)) => {
                    conn.set_nonblocking(false).unwrap();
                    let mut buf = [0u8; 2048];
                    let _ = conn.read(&mut buf);
                    let body = "{\"status\": \"ok\"}";
                    let _ = write!(
                        conn,
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                }
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
            }
        }
    });
    (port, stop)
}

#[test]
fn verify_runs_the_live_checks_against_the_host_and_records_the_result_for_promote() {
    let Some((live, _)) = live_on_rig() else {
        return;
    };
    let (code, report, err) =
        live.stack(&["live", "deploy", "prod", "--version", "1.0.0", "--yes"]);
    assert_eq!(code, Some(0), "{report}\n{err}");
    // Checks: two marked live (the cluster's rollout, the public health page through the named
    // forward — which in live means the host), one not (a forward-only check that would fail).
    let yaml = std::fs::read_to_string(live.dir.path().join("stack.yaml")).unwrap();
    let yaml = format!(
        "{yaml}test:
  forwards:
    web:
      service: web
      port: 80
  checks:
    - name: web rolled out
      live: true
      ready: deployment/{{{{ release }}}}
    - name: health
      live: true
      http:
        forward: web
        path: /health
        expect:
          json:
            /status: ok
      timeout: 3s
    - name: only in test
      command:
        run: [\"false\"]
"
    );
    std::fs::write(live.dir.path().join("stack.yaml"), yaml).unwrap();
    let junit = live.dir.path().join("verify.xml");
    let record = live.dir.path().join(".stack/verify/live/prod.json");

    let (port, stop) = health_server("200 OK");
    let host = format!("http://127.0.0.1:{port}");
    let (code, report, err) = live.stack(&[
        "live",
        "verify",
        "prod",
        "--host",
        &host,
        "--junit",
        junit.to_str().unwrap(),
    ]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(code, Some(0), "{report}\n{err}");
    let names: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["web rolled out", "health"],
        "only the live checks run"
    );
    assert_eq!(
        report["checks"][1]["message"],
        format!("GET {host}/health: status 200"),
        "the host, not a port-forward"
    );
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(saved["passed"], true);
    assert_eq!(saved["revision"], "1");
    assert_eq!(saved["chart"], "1.0.0");
    assert!(std::fs::read_to_string(&junit)
        .unwrap()
        .contains(r#"tests="2" failures="0""#));

    // The host failing: exit 1, the evidence, and a failed record (promote refuses it).
    let (port, stop) = health_server("503 Service Unavailable");
    let host = format!("http://127.0.0.1:{port}");
    let (code, report, _) = live.stack(&["live", "verify", "prod", "--host", &host]);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    assert_eq!(code, Some(1), "{report}");
    assert_eq!(report["checks"][1]["status"], "failed");
    assert!(report["checks"][1]["detail"]
        .as_str()
        .unwrap()
        .contains("503 Service Unavailable"));
    let saved: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&record).unwrap()).unwrap();
    assert_eq!(saved["passed"], false);
}
