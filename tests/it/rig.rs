//! The rig tier: tests against the real components `cargo xtask rig up` runs (see tests/README.md).
//!
//! They find the rig through `$STACK_DEV_CACHE/rig/env` (default `~/.cache/stack-dev/rig/env`), the
//! file `cargo xtask rig env` prints, so no environment variable is needed. Each test works in its own
//! namespace / image name / state path, so they run in parallel and leave nothing behind.
// These tests drive the real tools (kubectl, helm, docker, tofu) directly, as a user would.
#![allow(clippy::disallowed_methods)]

use crate::support;
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

/// The running rig, as described by its env file.
struct Rig {
    vars: BTreeMap<String, String>,
    bin_dir: PathBuf,
}

impl Rig {
    /// `Some` when the rig is up; otherwise skips (or fails under `STACK_TEST_REQUIRE`).
    fn require() -> Option<Rig> {
        let found = Rig::discover().and_then(|rig| {
            let out = rig
                .cmd("kubectl")
                .args(["get", "--raw", "/readyz"])
                .output()
                .map_err(|e| e.to_string())?;
            if !out.status.success() {
                return Err(format!(
                    "the rig's API server is not ready: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(rig)
        });
        let available = found
            .as_ref()
            .map(|_| ())
            .map_err(|e| format!("{e} (run `cargo xtask rig up`)"));
        support::require("rig", available).then(|| found.unwrap())
    }

    fn discover() -> Result<Rig, String> {
        let env = support::rig_env()?;
        Ok(Rig {
            vars: env.vars,
            bin_dir: env.bin_dir,
        })
    }

    fn var(&self, key: &str) -> &str {
        self.vars.get(key).map(String::as_str).unwrap_or_default()
    }

    /// A command with the rig's environment, preferring the pinned tools.
    fn cmd(&self, program: &str) -> Command {
        let pinned = self.bin_dir.join(program);
        let mut cmd = Command::new(if pinned.exists() {
            pinned
        } else {
            PathBuf::from(program)
        });
        cmd.envs(&self.vars);
        let mut path = vec![self.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        cmd.env("PATH", std::env::join_paths(path).unwrap());
        cmd
    }

    /// Runs and asserts success, returning stdout.
    fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self
            .cmd(program)
            .args(args)
            .output()
            .unwrap_or_else(|e| panic!("running {program}: {e}"));
        check(&format!("{program} {}", args.join(" ")), out)
    }

    fn kubectl(&self, args: &[&str]) -> String {
        self.run("kubectl", args)
    }

    /// A fresh namespace, deleted when the guard drops.
    fn namespace(&self, prefix: &str) -> Namespace<'_> {
        let name = format!("{prefix}-{}", unique());
        self.kubectl(&["create", "namespace", &name]);
        Namespace { rig: self, name }
    }
}

struct Namespace<'a> {
    rig: &'a Rig,
    name: String,
}

impl Drop for Namespace<'_> {
    fn drop(&mut self) {
        let _ = self
            .rig
            .cmd("kubectl")
            .args(["delete", "namespace", &self.name, "--wait=false"])
            .output();
    }
}

fn check(what: &str, out: Output) -> String {
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "`{what}` failed ({}):\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

fn unique() -> String {
    use std::sync::atomic::{AtomicU32, Ordering};
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    format!(
        "{}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed),
        nanos % 10_000
    )
}

/// Retries `f` until it returns `Some` or `timeout` passes.
fn eventually<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Result<T, String>) -> T {
    let deadline = Instant::now() + timeout;
    loop {
        match f() {
            Ok(v) => return v,
            Err(e) if Instant::now() > deadline => {
                panic!("{what}: still failing after {timeout:?}: {e}")
            }
            Err(_) => std::thread::sleep(Duration::from_millis(300)),
        }
    }
}

fn fixture(name: &str) -> PathBuf {
    support::project_root().join("tests/fixtures").join(name)
}

#[test]
fn helm_install_reaches_available_and_chart_pushes_to_the_registry() {
    let Some(rig) = Rig::require() else { return };
    let ns = rig.namespace("rig-helm");
    let chart = fixture("rig-chart");
    let chart = chart.to_str().unwrap();
    rig.run(
        "helm",
        &[
            "upgrade",
            "--install",
            "demo",
            chart,
            "-n",
            &ns.name,
            "--wait",
            "--timeout",
            "120s",
        ],
    );
    for deployment in ["demo-web", "demo-worker"] {
        rig.kubectl(&[
            "wait",
            "-n",
            &ns.name,
            "--for=condition=Available",
            "--timeout=60s",
            &format!("deployment/{deployment}"),
        ]);
    }
    let ready = rig.kubectl(&[
        "get",
        "deployment",
        "demo-web",
        "-n",
        &ns.name,
        "-o",
        "jsonpath={.status.readyReplicas}",
    ]);
    assert_eq!(ready, "2", "both web replicas are Ready (kwok runs them)");
    let status = rig.run("helm", &["status", "demo", "-n", &ns.name, "-o", "json"]);
    assert!(status.contains(r#""status":"deployed""#), "{status}");

    // The same chart as an OCI artifact in the rig's registry.
    let dir = tempfile::tempdir().unwrap();
    let dest = dir.path().to_str().unwrap();
    rig.run("helm", &["package", chart, "-d", dest]);
    let repo = format!(
        "oci://{}/charts-{}",
        rig.var("STACK_RIG_REGISTRY"),
        unique()
    );
    let pushed = rig
        .cmd("helm")
        .args([
            "push",
            &format!("{dest}/rig-chart-0.1.0.tgz"),
            &repo,
            "--plain-http",
        ])
        .output()
        .unwrap();
    let pushed_text = format!(
        "{}{}",
        String::from_utf8_lossy(&pushed.stdout),
        String::from_utf8_lossy(&pushed.stderr)
    );
    assert!(pushed.status.success(), "helm push failed: {pushed_text}");
    assert!(pushed_text.contains("Digest: sha256:"), "{pushed_text}");
    let shown = rig.run(
        "helm",
        &[
            "show",
            "chart",
            &format!("{repo}/rig-chart"),
            "--version",
            "0.1.0",
            "--plain-http",
        ],
    );
    assert!(shown.contains("name: rig-chart"), "{shown}");
    rig.run("helm", &["uninstall", "demo", "-n", &ns.name, "--wait"]);
}

#[test]
fn kube_client_lists_and_watches_pods() {
    use futures::{StreamExt, TryStreamExt};
    use k8s_openapi::api::core::v1::Pod;
    use kube::api::{Api, ListParams, PostParams, WatchEvent, WatchParams};

    let Some(rig) = Rig::require() else { return };
    let ns = rig.namespace("rig-kube");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let kubeconfig = kube::config::Kubeconfig::read_from(rig.var("KUBECONFIG")).unwrap();
        let options = kube::config::KubeConfigOptions {
            context: Some("stack-rig".into()),
            ..Default::default()
        };
        let config = kube::Config::from_custom_kubeconfig(kubeconfig, &options)
            .await
            .unwrap();
        let client = kube::Client::try_from(config).unwrap();
        let pods: Api<Pod> = Api::namespaced(client, &ns.name);

        let list = pods.list(&ListParams::default()).await.unwrap();
        assert!(list.items.is_empty(), "fresh namespace has no pods");
        let version = list.metadata.resource_version.clone().unwrap();
        let mut events = pods
            .watch(&WatchParams::default().timeout(120), &version)
            .await
            .unwrap()
            .boxed();

        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": { "name": "watched" },
            "spec": { "containers": [{ "name": "app", "image": "busybox:latest" }] }
        }))
        .unwrap();
        pods.create(&PostParams::default(), &pod).await.unwrap();

        let mut seen = Vec::new();
        let ready = tokio::time::timeout(Duration::from_secs(90), async {
            while let Some(event) = events.try_next().await.unwrap() {
                match event {
                    WatchEvent::Added(p) | WatchEvent::Modified(p) => {
                        let status = p.status.unwrap_or_default();
                        seen.push(status.phase.clone().unwrap_or_default());
                        let ready = status
                            .conditions
                            .unwrap_or_default()
                            .iter()
                            .any(|c| c.type_ == "Ready" && c.status == "True");
                        if ready && status.phase.as_deref() == Some("Running") {
                            return p.spec.and_then(|s| s.node_name);
                        }
                    }
                    other => seen.push(format!("{other:?}")),
                }
            }
            None
        })
        .await
        .unwrap_or_else(|_| panic!("no Running+Ready event within 90s; saw phases {seen:?}"));
        assert_eq!(
            ready.as_deref(),
            Some("stack-rig-node"),
            "scheduled onto the kwok node"
        );

        let names: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        assert_eq!(names, ["watched"]);
    });
}

/// A simulated pod, Ready on the kwok node.
fn ready_pod(rig: &Rig, ns: &str, name: &str) {
    let manifest = format!(
        r#"{{"apiVersion":"v1","kind":"Pod","metadata":{{"name":"{name}","namespace":"{ns}"}},
            "spec":{{"containers":[{{"name":"app","image":"busybox:latest","ports":[{{"containerPort":8080}}]}}]}}}}"#
    );
    apply(rig, &manifest);
    rig.kubectl(&[
        "wait",
        "-n",
        ns,
        "--for=condition=Ready",
        "--timeout=90s",
        &format!("pod/{name}"),
    ]);
}

fn apply(rig: &Rig, manifest: &str) {
    let mut child = rig
        .cmd("kubectl")
        .args(["apply", "-f", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(manifest.as_bytes())
        .unwrap();
    check("kubectl apply", child.wait_with_output().unwrap());
}

#[test]
fn kubectl_logs_exec_and_port_forward_reach_the_simulated_container() {
    let Some(rig) = Rig::require() else { return };
    let ns = rig.namespace("rig-debug");
    let ns = ns.name.as_str();
    ready_pod(&rig, ns, "sim");

    // What the "container" provides: a CRI-format log file, a working directory, a TCP server.
    let dir = tempfile::tempdir().unwrap();
    let log_file = dir.path().join("app.log");
    std::fs::write(&log_file, "2026-01-01T00:00:00.000000000Z stdout F first line\n2026-01-01T00:00:01.000000000Z stdout F second line\n").unwrap();
    std::fs::write(
        dir.path().join("marker.txt"),
        "inside the simulated container\n",
    )
    .unwrap();
    let server = TcpListener::bind("127.0.0.1:0").unwrap();
    let target_port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            let mut conn = conn;
            let mut line = String::new();
            let _ = BufReader::new(&conn).read_line(&mut line);
            let _ = conn.write_all(format!("echo: {line}").as_bytes());
        }
    });

    let objects = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"Logs","metadata":{{"name":"sim","namespace":"{ns}"}},
            "spec":{{"logs":[{{"containers":["app"],"logsFile":"{log}"}}]}}}},
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"Exec","metadata":{{"name":"sim","namespace":"{ns}"}},
            "spec":{{"execs":[{{"containers":["app"],"local":{{"workDir":"{workdir}","envs":[{{"name":"GREETING","value":"hello"}}]}}}}]}}}},
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"PortForward","metadata":{{"name":"sim","namespace":"{ns}"}},
            "spec":{{"forwards":[{{"ports":[8080],"target":{{"address":"127.0.0.1","port":{target_port}}}}}]}}}}
        ]}}"#,
        log = log_file.display(),
        workdir = dir.path().display(),
    );
    apply(&rig, &objects);

    // kwok picks the objects up through its watch; retry until it has.
    let logs = eventually("kubectl logs", Duration::from_secs(30), || {
        let out = rig
            .cmd("kubectl")
            .args(["logs", "-n", ns, "sim"])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        if out.status.success() && text.contains("second line") {
            Ok(text)
        } else {
            Err(format!("{text}{}", String::from_utf8_lossy(&out.stderr)))
        }
    });
    assert_eq!(logs, "first line\nsecond line\n");

    let exec = eventually("kubectl exec", Duration::from_secs(30), || {
        let out = rig
            .cmd("kubectl")
            .args([
                "exec",
                "-n",
                ns,
                "sim",
                "--",
                "sh",
                "-c",
                "echo $GREETING; cat marker.txt",
            ])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).into_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    });
    assert_eq!(exec, "hello\ninside the simulated container\n");

    let local_port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let forward = KillOnDrop(
        rig.cmd("kubectl")
            .args([
                "port-forward",
                "-n",
                ns,
                "pod/sim",
                &format!("{local_port}:8080"),
                "--address",
                "127.0.0.1",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let reply = eventually(
        "a reply through kubectl port-forward",
        Duration::from_secs(30),
        || {
            let mut conn =
                TcpStream::connect(("127.0.0.1", local_port)).map_err(|e| e.to_string())?;
            conn.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            conn.write_all(b"ping\n").map_err(|e| e.to_string())?;
            // One line, not EOF: a port-forward stream need not close when the target does.
            let mut reply = String::new();
            BufReader::new(conn)
                .read_line(&mut reply)
                .map_err(|e| e.to_string())?;
            if reply.is_empty() {
                Err("empty reply".into())
            } else {
                Ok(reply)
            }
        },
    );
    assert_eq!(reply, "echo: ping\n");
    drop(forward);
}

struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn docker_build_from_seeded_busybox_push_and_pull_back() {
    let Some(rig) = Rig::require() else { return };
    let dir = tempfile::tempdir().unwrap();
    let token = unique();
    std::fs::write(dir.path().join("Dockerfile"), "FROM busybox\nCOPY token.txt /token.txt\nRUN echo built >> /token.txt\nCMD [\"cat\", \"/token.txt\"]\n").unwrap();
    std::fs::write(dir.path().join("token.txt"), format!("{token}\n")).unwrap();
    let image = format!("{}/rig-test/hello:{token}", rig.var("STACK_RIG_REGISTRY"));
    let context = dir.path().to_str().unwrap();
    rig.run("docker", &["build", "-t", &image, context]);
    rig.run("docker", &["push", &image]);
    rig.run("docker", &["rmi", &image]);
    let gone = rig
        .cmd("docker")
        .args(["image", "inspect", &image])
        .output()
        .unwrap();
    assert!(
        !gone.status.success(),
        "the image is really gone locally before the pull"
    );
    rig.run("docker", &["pull", &image]);
    let out = rig.run("docker", &["run", "--rm", &image]);
    assert_eq!(out, format!("{token}\nbuilt\n"));
    // Containers get loopback only: no route anywhere else.
    let routes = rig.run(
        "docker",
        &["run", "--rm", "busybox", "cat", "/proc/net/route"],
    );
    assert_eq!(
        routes.lines().count(),
        1,
        "only the header, no routes: {routes}"
    );
    rig.run("docker", &["rmi", &image]);
}

const TOFU_CONFIG: &str = r#"
terraform {
  backend "local" {}
}

variable "pr" {
  type = string
}

variable "hold_seconds" {
  type    = number
  default = 0
}

resource "terraform_data" "preview" {
  input = "preview-${var.pr}"
  triggers_replace = [var.hold_seconds]

  provisioner "local-exec" {
    command = "sleep ${var.hold_seconds}"
  }
}

output "name" {
  value = terraform_data.preview.output
}
"#;

#[test]
fn tofu_state_per_pr_and_the_state_lock() {
    let Some(rig) = Rig::require() else { return };
    let work = tempfile::tempdir().unwrap();
    let states = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("main.tf"), TOFU_CONFIG).unwrap();
    let state = states.path().join("previews/pr-123/terraform.tfstate");
    let tofu = |args: &[&str]| -> Command {
        let mut cmd = rig.cmd("tofu");
        cmd.current_dir(work.path())
            .args(args)
            .env("TF_IN_AUTOMATION", "1")
            .env("TF_INPUT", "0");
        cmd
    };
    let run = |args: &[&str]| {
        check(
            &format!("tofu {}", args.join(" ")),
            tofu(args).output().unwrap(),
        )
    };

    run(&[
        "init",
        "-no-color",
        &format!("-backend-config=path={}", state.display()),
    ]);
    run(&["apply", "-auto-approve", "-no-color", "-var", "pr=123"]);
    assert!(
        state.exists(),
        "state at the per-PR path {}",
        state.display()
    );
    let output = run(&["output", "-json"]);
    let output: serde_json::Value = serde_json::from_str(&output).unwrap();
    assert_eq!(output["name"]["value"], "preview-123");

    // A long apply holds the lock; a second one at the same time fails on it.
    let mut holder = KillOnDrop(
        tofu(&[
            "apply",
            "-auto-approve",
            "-no-color",
            "-var",
            "pr=123",
            "-var",
            "hold_seconds=8",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap(),
    );
    let lock_info = state.with_file_name(".terraform.tfstate.lock.info");
    eventually(
        "the first apply to take the lock",
        Duration::from_secs(30),
        || {
            if lock_info.exists() {
                Ok(())
            } else {
                Err(format!("no {}", lock_info.display()))
            }
        },
    );
    let second = tofu(&[
        "apply",
        "-auto-approve",
        "-no-color",
        "-lock-timeout=0s",
        "-var",
        "pr=123",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert!(!second.status.success(), "the concurrent apply must fail");
    assert!(
        stderr.contains("Error acquiring the state lock"),
        "{stderr}"
    );
    let first = holder.0.wait().unwrap();
    assert!(first.success(), "the lock holder's apply succeeds");
    assert!(!lock_info.exists(), "the lock is released");

    run(&["destroy", "-auto-approve", "-no-color", "-var", "pr=123"]);
    let after: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&state).unwrap()).unwrap();
    assert_eq!(
        after["resources"].as_array().map(Vec::len),
        Some(0),
        "destroy emptied the state"
    );
}

#[test]
fn rig_runs_the_pinned_versions() {
    let Some(rig) = Rig::require() else { return };
    let pins = std::fs::read_to_string(support::project_root().join("xtask/pins.txt")).unwrap();
    let pinned = |name: &str| -> String {
        let line = pins
            .lines()
            .find(|l| l.split_whitespace().next() == Some(name))
            .unwrap_or_else(|| panic!("{name} not pinned"));
        let spec = line.split_whitespace().nth(1).unwrap();
        spec.rsplit_once('@')
            .unwrap()
            .1
            .trim_start_matches('v')
            .to_string()
    };
    let server = rig.kubectl(&["version", "-o", "json"]);
    let server: serde_json::Value = serde_json::from_str(&server).unwrap();
    assert_eq!(
        server["serverVersion"]["gitVersion"],
        format!("v{}", pinned("kube-apiserver"))
    );
    assert_eq!(
        server["clientVersion"]["gitVersion"],
        format!("v{}", pinned("kubectl"))
    );
    assert!(rig
        .run("helm", &["version", "--short"])
        .starts_with(&format!("v{}", pinned("helm"))));
    assert!(rig
        .run("tofu", &["version"])
        .starts_with(&format!("OpenTofu v{}", pinned("tofu"))));
    assert!(rig
        .run("kind", &["version"])
        .starts_with(&format!("kind v{}", pinned("kind"))));
    let context = rig.kubectl(&["config", "current-context"]);
    assert_eq!(context.trim(), "stack-rig");
    assert!(Path::new(rig.var("KUBECONFIG")).exists());
}
