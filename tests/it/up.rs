//! `stack up` / `stack down` on the reference stack against the rig (tier "rig"): real dockerd and
//! registry for the images, real helm, real API server + controllers; kwok simulates the kubelet.
//! The cluster is the rig's (provider `existing`, context `stack-rig` in the allowlist).

use crate::support;
use std::path::Path;
use std::process::Output;

/// The `stack up` tests each drive a whole release (builds, helm, rollouts, a watch loop) on the one
/// simulated node; run one at a time so that a loaded machine slows them rather than starves them.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

struct Dev {
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    env: support::RigEnv,
    namespace: String,
}

fn dev() -> Option<Dev> {
    let env = support::rig_env().and_then(|e| support::rig_docker().map(|_| e));
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    let env = env.unwrap();
    let turn = ONE_AT_A_TIME
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let dir = tempfile::tempdir().unwrap();
    for item in ["stack.yaml", "charts", "envs", "demo"] {
        support::copy(&support::project_root().join(item), &dir.path().join(item));
    }
    let _ = std::fs::remove_dir_all(dir.path().join("charts/app/charts"));
    let namespace = format!(
        "up-{}",
        dir.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase()
            .replace(['.', '_'], "")
    );
    let yaml = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap().replace(
        "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
    );
    let yaml = yaml.replace(
        "dev:\n  env: local/dev\n",
        &format!("dev:\n  env: local/dev\n  namespace: {namespace}\n"),
    );
    assert!(
        yaml.contains("provider: existing") && yaml.contains(&namespace),
        "stack.yaml changed shape:\n{yaml}"
    );
    std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
    Some(Dev {
        _turn: turn,
        dir,
        env,
        namespace,
    })
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Dev {
    fn cmd(&self, program: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.current_dir(self.dir.path())
            .envs(&self.env.vars)
            .env("NO_COLOR", "1");
        let mut path = vec![self.env.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        c.env("PATH", std::env::join_paths(path).unwrap());
        c
    }

    fn stack(&self, args: &[&str]) -> Output {
        self.cmd(&support::stack_bin()).args(args).output().unwrap()
    }

    fn up(&self) -> serde_json::Value {
        let o = self.stack(&["up", "--once", "--format", "json"]);
        assert_eq!(
            o.status.code(),
            Some(0),
            "stack up failed:\n{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        serde_json::from_slice(&o.stdout).unwrap()
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let o = self
            .cmd(&self.env.bin_dir.join("kubectl"))
            .args(["--context", "stack-rig"])
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "kubectl {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.stack(&["down"]);
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

fn image_statuses(report: &serde_json::Value) -> Vec<String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"]["status"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn up_deploys_then_does_nothing_when_nothing_changed() {
    let Some(d) = dev() else { return };
    let first = d.up();
    assert_eq!(first["helm"]["status"], "upgraded", "{first}");
    assert_eq!(first["helm"]["revision"], 1);
    assert_eq!(
        first["rollout"]["status"], "ready",
        "waited for the Deployments: {first}"
    );
    let cmd = first["helm"]["command"].as_str().unwrap();
    assert!(
        cmd.contains("--kube-context stack-rig")
            && cmd.contains("--kubeconfig ")
            && cmd.contains(&format!("-n {}", d.namespace)),
        "explicit context, kubeconfig and namespace: {cmd}"
    );
    // The values files in order, the generated overrides last (then only the upgrade's token).
    let files = "-f envs/aws.yaml -f envs/local/default.yaml -f envs/local/dev.yaml -f .stack/up/shop-dev.values.json";
    let after = cmd.split_once(files).map(|(_, rest)| rest);
    assert!(after.is_some_and(|rest| !rest.contains(" -f ")), "{cmd}");

    // The release runs the images stack built and pushed.
    let images = d.kubectl(&[
        "get",
        "deploy",
        "-n",
        &d.namespace,
        "-o",
        "jsonpath={.items[*].spec.template.spec.containers[0].image}",
    ]);
    let backend = first["images"][0]["delivered"].as_str().unwrap();
    assert!(
        backend.starts_with("localhost:25000/stack/backend:"),
        "{backend}"
    );
    assert!(
        images.split_whitespace().filter(|i| *i == backend).count() == 2,
        "backend-api and backend-ws run {backend}: {images}"
    );

    // Nothing changed: no build, no helm upgrade.
    let second = d.up();
    assert_eq!(image_statuses(&second), ["up-to-date", "up-to-date"]);
    assert_eq!(second["helm"]["status"], "up-to-date", "{second}");
    assert_eq!(second["rollout"]["status"], "ready");
    assert_eq!(second["helm"]["revision"], 1);
    let history = d.kubectl(&[
        "get",
        "secrets",
        "-n",
        &d.namespace,
        "-l",
        "owner=helm,name=shop-dev",
        "-o",
        "name",
    ]);
    assert_eq!(
        history.lines().count(),
        1,
        "one helm revision only: {history}"
    );

    // A values change upgrades without building; a source change rebuilds and upgrades.
    let dev_yaml = d.dir.path().join("envs/local/dev.yaml");
    let mut v = std::fs::read_to_string(&dev_yaml).unwrap();
    v.push_str("frontend:\n  replicaCount: 2\n");
    std::fs::write(&dev_yaml, v).unwrap();
    let third = d.up();
    assert_eq!(image_statuses(&third), ["up-to-date", "up-to-date"]);
    assert_eq!(
        (
            third["helm"]["status"].as_str(),
            third["helm"]["revision"].as_u64()
        ),
        (Some("upgraded"), Some(2))
    );
    // Unique content: the daemon may hold images of earlier runs (builds are content-addressed).
    let page = format!("<h1>{}</h1>\n", d.namespace);
    std::fs::write(d.dir.path().join("demo/frontend/public/index.html"), page).unwrap();
    let fourth = d.up();
    assert_eq!(image_statuses(&fourth), ["up-to-date", "built"]);
    assert_eq!(
        (
            fourth["helm"]["status"].as_str(),
            fourth["helm"]["revision"].as_u64()
        ),
        (Some("upgraded"), Some(3))
    );

    // down uninstalls the release; a second down has nothing to do.
    let o = d.stack(&["down"]);
    assert!(
        o.status.success() && text(&o.stdout).contains("shop-dev uninstalled"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let o = d.stack(&["down"]);
    assert!(
        o.status.success() && text(&o.stdout).contains("was not installed"),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
}

#[test]
fn up_refuses_contexts_outside_the_allowlist_and_invalid_envs() {
    let Some(d) = dev() else { return };
    let yaml = std::fs::read_to_string(d.dir.path().join("stack.yaml"))
        .unwrap()
        .replace("allowedContexts: [stack-rig]", "allowedContexts: []");
    std::fs::write(d.dir.path().join("stack.yaml"), &yaml).unwrap();
    let o = d.stack(&["up", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("refusing to deploy on context `stack-rig`"),
        "{}",
        text(&o.stderr)
    );
    let ns = d.kubectl(&["get", "namespace", "-o", "name"]);
    assert!(!ns.contains(&d.namespace), "nothing was created");

    // An env with a schema error is refused before anything is built or deployed.
    std::fs::write(
        d.dir.path().join("stack.yaml"),
        yaml.replace("allowedContexts: []", "allowedContexts: [stack-rig]"),
    )
    .unwrap();
    let dev_yaml = d.dir.path().join("envs/local/dev.yaml");
    let mut v = std::fs::read_to_string(&dev_yaml).unwrap();
    v.push_str("frontend:\n  replicaCount: many\n");
    std::fs::write(&dev_yaml, v).unwrap();
    let o = d.stack(&["up", "--once"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("the dev env `local/dev` has errors") && err.contains("envs/local/dev.yaml:"),
        "{err}"
    );
    assert!(
        !text(&o.stderr).contains("building"),
        "nothing was built: {err}"
    );
}

#[test]
fn up_names_why_a_rollout_fails_and_writes_diagnostics() {
    let Some(d) = dev() else { return };
    // No node carries this label: the scheduler reports the pods Unschedulable.
    let dev_yaml = d.dir.path().join("envs/local/dev.yaml");
    let mut v = std::fs::read_to_string(&dev_yaml).unwrap();
    v.push_str("frontend:\n  nodeSelector:\n    disk: none-such\n");
    std::fs::write(&dev_yaml, v).unwrap();
    let o = d.stack(&["up", "--once", "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(1),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["rollout"]["status"], "failed", "{report}");
    let failures = report["rollout"]["failures"].as_array().unwrap();
    assert!(
        failures.iter().any(|f| f["reason"] == "Unschedulable"
            && f["owner"].as_str().is_some_and(|o| o.contains("frontend"))),
        "{failures:?}"
    );
    let dir = d
        .dir
        .path()
        .join(report["rollout"]["diagnostics"].as_str().unwrap());
    for f in ["events.txt", "helm-status.json"] {
        assert!(dir.join(f).is_file(), "{} missing in {}", f, dir.display());
    }
    // The human view names the reason and where the diagnostics are.
    let o = d.stack(&["up", "--once"]);
    let out = text(&o.stdout);
    assert!(
        out.contains("Unschedulable") && out.contains(".stack/diagnostics/shop-dev/"),
        "{out}"
    );
}

/// `stack up` running in the background, its stdout lines collected.
struct Running {
    child: std::process::Child,
    lines: std::sync::Arc<std::sync::Mutex<Vec<String>>>,
}

impl Running {
    fn wait_for(&self, what: &str, timeout: std::time::Duration) -> String {
        let start = std::time::Instant::now();
        loop {
            if let Some(l) = self.lines.lock().unwrap().iter().find(|l| l.contains(what)) {
                return l.clone();
            }
            assert!(
                start.elapsed() < timeout,
                "no line with {what:?} within {timeout:?}; output so far:\n{}",
                self.lines.lock().unwrap().join("\n")
            );
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn up_live_syncs_into_the_running_pod_rebuilds_on_dockerfile_and_stops_on_ctrl_c() {
    let Some(d) = dev() else { return };
    // The simulated container's filesystem: kwok runs exec'd commands in this directory, so the
    // sync destination is a path inside it.
    let container_fs = tempfile::tempdir().unwrap();
    let dest = container_fs.path().join("app/public");
    std::fs::create_dir_all(&dest).unwrap();
    let yaml = std::fs::read_to_string(d.dir.path().join("stack.yaml"))
        .unwrap()
        .replace("dest: /app/public", &format!("dest: {}", dest.display()))
        // The backend's sync also runs a step afterwards (in the container: here, kwok's workDir).
        .replacen(
            &format!("dest: {}\n", dest.display()),
            &format!(
                "dest: {}\n        run: [[sh, -c, \"echo reloaded > ran.txt\"]]\n",
                dest.display()
            ),
            1,
        );
    std::fs::write(d.dir.path().join("stack.yaml"), yaml).unwrap();
    // What the simulated containers "serve" on port 8000: the files of their filesystem.
    let web_root = container_fs.path().join("app");
    let server = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let server_port = server.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for conn in server.incoming().flatten() {
            let mut conn = conn;
            let mut request = String::new();
            let _ = std::io::BufRead::read_line(&mut std::io::BufReader::new(&conn), &mut request);
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let body =
                std::fs::read_to_string(web_root.join(path)).unwrap_or_else(|_| "not found".into());
            let _ = std::io::Write::write_all(
                &mut conn,
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    // What they log: a CRI-format log file.
    let log_file = container_fs.path().join("app.log");
    std::fs::write(
        &log_file,
        "2026-01-01T00:00:00.000000000Z stdout F hello from the app\n",
    )
    .unwrap();
    // A .env with a secret: synced into the ConfigMap, never printed.
    std::fs::write(
        d.dir.path().join(".env"),
        "GREETING=hello\nexport API_TOKEN='s3cret-value'\n",
    )
    .unwrap();
    let exec = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterExec","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"execs":[{{"local":{{"workDir":"{dir}"}}}}]}}}},
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterPortForward","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"forwards":[{{"ports":[8000],"target":{{"address":"127.0.0.1","port":{server_port}}}}}]}}}},
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterLogs","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"logs":[{{"containers":["backend-api"],"logsFile":"{log}"}}]}}}}
        ]}}"#,
        ns = d.namespace,
        dir = container_fs.path().display(),
        log = log_file.display(),
    );
    let mut apply = d
        .cmd(&d.env.bin_dir.join("kubectl"))
        .args(["--context", "stack-rig", "apply", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::io::Write::write_all(apply.stdin.as_mut().unwrap(), exec.as_bytes()).unwrap();
    drop(apply.stdin.take());
    assert!(apply.wait().unwrap().success());
    // The kwok objects are cluster-scoped: removed even when an assertion fails.
    struct KwokObjects<'a>(&'a Dev);
    impl Drop for KwokObjects<'_> {
        fn drop(&mut self) {
            for kind in ["clusterexec", "clusterportforward", "clusterlogs"] {
                let _ = self
                    .0
                    .cmd(&self.0.env.bin_dir.join("kubectl"))
                    .args(["--context", "stack-rig", "delete", kind, &self.0.namespace])
                    .output();
            }
        }
    }
    let _kwok_objects = KwokObjects(&d);

    let mut child = d
        .cmd(&support::stack_bin())
        .arg("up")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let lines = lines.clone();
        std::thread::spawn(move || {
            for l in std::io::BufRead::lines(std::io::BufReader::new(stream)).map_while(Result::ok)
            {
                lines.lock().unwrap().push(l);
            }
        });
    }
    let run = Running { child, lines };
    run.wait_for(
        "watching backend, frontend",
        std::time::Duration::from_secs(60),
    );
    let pod_uid = || {
        d.kubectl(&[
            "get",
            "pods",
            "-n",
            &d.namespace,
            "-l",
            "app.kubernetes.io/name=backend-api",
            "-o",
            "jsonpath={.items[*].metadata.uid}",
        ])
    };
    let before = pod_uid();
    assert!(!before.is_empty());

    // The port-forward (in-process, kube-rs) and the log follower are up.
    let forward = run.wait_for(
        "forward deployment/shop-dev-backend-api 8000 → http://127.0.0.1:",
        std::time::Duration::from_secs(30),
    );
    let local_port: u16 = forward.rsplit(':').next().unwrap().trim().parse().unwrap();
    let get = |path: &str| -> String {
        let mut c = std::net::TcpStream::connect(("127.0.0.1", local_port)).unwrap();
        c.set_read_timeout(Some(std::time::Duration::from_secs(5)))
            .unwrap();
        std::io::Write::write_all(&mut c, format!("GET /{path} HTTP/1.0\r\n\r\n").as_bytes())
            .unwrap();
        let mut out = String::new();
        let _ = std::io::Read::read_to_string(&mut c, &mut out);
        out.split("\r\n\r\n").nth(1).unwrap_or_default().to_owned()
    };
    let eventually = |path: &str, want: &str| {
        let start = std::time::Instant::now();
        loop {
            let got = get(path);
            if got == want {
                return;
            }
            assert!(
                start.elapsed() < std::time::Duration::from_secs(20),
                "through the port-forward {path} is {got:?}, want {want:?}"
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    };
    run.wait_for("│ hello from the app", std::time::Duration::from_secs(30));
    // The .env ConfigMap holds the file's keys; the secret value was never printed.
    run.wait_for(
        "configmap/app-env: 2 key(s) synced",
        std::time::Duration::from_secs(10),
    );
    let data = d.kubectl(&[
        "get",
        "configmap",
        "app-env",
        "-n",
        &d.namespace,
        "-o",
        "jsonpath={.data.API_TOKEN}",
    ]);
    assert_eq!(data, "s3cret-value");
    assert!(
        !run.lines
            .lock()
            .unwrap()
            .iter()
            .any(|l| l.contains("s3cret")),
        "a secret was printed"
    );

    // A synced file: the new content is served through the port-forward; the pod is not replaced.
    let content = format!("{{\"status\": \"edited {}\"}}\n", d.namespace);
    std::fs::write(
        d.dir.path().join("demo/backend/public/api/health.json"),
        &content,
    )
    .unwrap();

    let synced = run.wait_for(
        "backend: synced 1 file(s)",
        std::time::Duration::from_secs(20),
    );
    assert_eq!(
        std::fs::read_to_string(dest.join("api/health.json")).unwrap(),
        content,
        "{synced}"
    );
    assert_eq!(pod_uid(), before, "a sync never replaces the pod");
    assert_eq!(
        std::fs::read_to_string(container_fs.path().join("ran.txt")).unwrap(),
        "reloaded\n",
        "the sync's run step ran after the files landed"
    );
    eventually("public/api/health.json", &content);

    // Killing the pod: the Deployment replaces it and the same forward serves through the new one.
    let old_pod = d.kubectl(&[
        "get",
        "pods",
        "-n",
        &d.namespace,
        "-l",
        "app.kubernetes.io/name=backend-api",
        "-o",
        "jsonpath={.items[0].metadata.name}",
    ]);
    d.kubectl(&[
        "delete",
        "pod",
        "-n",
        &d.namespace,
        &old_pod,
        "--wait=false",
    ]);
    let start = std::time::Instant::now();
    let new_pod = loop {
        let names = d.kubectl(&[
            "get",
            "pods",
            "-n",
            &d.namespace,
            "-l",
            "app.kubernetes.io/name=backend-api",
            "--field-selector=status.phase=Running",
            "-o",
            "jsonpath={.items[*].metadata.name}",
        ]);
        if let Some(n) = names.split_whitespace().find(|n| *n != old_pod) {
            break n.to_owned();
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(30),
            "no replacement pod"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    eventually("public/api/health.json", &content);
    run.wait_for(
        &format!("via pod/{new_pod}"),
        std::time::Duration::from_secs(20),
    );
    // A deletion is synced as a deletion.
    std::fs::remove_file(d.dir.path().join("demo/backend/public/api/items.json")).unwrap();
    std::fs::write(dest.join("api/items.json"), "stale").unwrap();
    run.wait_for("1 deletion(s)", std::time::Duration::from_secs(20));
    assert!(!dest.join("api/items.json").exists());

    // A rebuildOn file: rebuild, helm upgrade, rollout.
    let dockerfile = d.dir.path().join("demo/backend/Dockerfile");
    let mut df = std::fs::read_to_string(&dockerfile).unwrap();
    df.push_str(&format!("# {}\n", d.namespace));
    std::fs::write(&dockerfile, df).unwrap();
    run.wait_for(
        "backend: Dockerfile changed — rebuilding",
        std::time::Duration::from_secs(20),
    );
    run.wait_for(
        "redeployed: release shop-dev upgraded to revision 2",
        std::time::Duration::from_secs(180),
    );

    // Ctrl-C: a clean stop, exit 0, no child process left behind.
    let pid = run.child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let mut run = run;
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = run.child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(10),
            "stack up did not stop on SIGINT"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(status.success(), "{status}");
    run.wait_for("stopped", std::time::Duration::from_secs(2));
    let children = std::process::Command::new("pgrep")
        .args(["-P", &pid])
        .output()
        .unwrap();
    assert!(
        text(&children.stdout).trim().is_empty(),
        "children left: {}",
        text(&children.stdout)
    );
}

#[test]
fn down_refuses_a_release_stack_did_not_install_and_removes_its_own() {
    let Some(dev) = dev() else { return };
    // A teammate's release of the same name, installed with plain helm on the shared cluster.
    let helm = dev.env.bin_dir.join("helm");
    let o = dev
        .cmd(&helm)
        .args(["dependency", "build", "charts/app"])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "helm dependency build: {}",
        text(&o.stderr)
    );
    let o = dev
        .cmd(&helm)
        .args([
            "install",
            "shop-dev",
            "charts/app",
            "-n",
            &dev.namespace,
            "--create-namespace",
            "--kube-context",
            "stack-rig",
            "--set",
            "backend-api.enabled=false,frontend.enabled=false,backend-ws.enabled=false",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "helm install: {}", text(&o.stderr));
    let down = dev.stack(&["down"]);
    assert_eq!(
        down.status.code(),
        Some(2),
        "{}{}",
        text(&down.stdout),
        text(&down.stderr)
    );
    assert!(
        text(&down.stderr).contains("refusing to uninstall release `shop-dev`"),
        "{}",
        text(&down.stderr)
    );
    let status = dev
        .cmd(&helm)
        .args([
            "status",
            "shop-dev",
            "-n",
            &dev.namespace,
            "--kube-context",
            "stack-rig",
        ])
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "the teammate's release survived: {}",
        text(&status.stderr)
    );
    // Gone and installed again by stack: now it is stack's, and `down` removes it.
    let o = dev
        .cmd(&helm)
        .args([
            "uninstall",
            "shop-dev",
            "-n",
            &dev.namespace,
            "--kube-context",
            "stack-rig",
            "--wait",
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", text(&o.stderr));
    dev.up();
    let down = dev.stack(&["down"]);
    assert_eq!(
        down.status.code(),
        Some(0),
        "{}{}",
        text(&down.stdout),
        text(&down.stderr)
    );
    let status = dev
        .cmd(&helm)
        .args([
            "status",
            "shop-dev",
            "-n",
            &dev.namespace,
            "--kube-context",
            "stack-rig",
        ])
        .output()
        .unwrap();
    assert!(!status.status.success(), "stack's own release was removed");
}

/// Each stderr line of a `--format json` run is one event; returns them in order.
fn events(stderr: &[u8]) -> Vec<serde_json::Value> {
    text(stderr)
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not a JSON event line ({e}): {l}"))
        })
        .collect()
}

#[test]
fn dry_runs_print_the_exact_steps_and_change_nothing() {
    let Some(d) = dev() else { return };
    let root = d.dir.path().display().to_string();
    let bin = d.env.bin_dir.display().to_string();
    let kubeconfig = d
        .env
        .vars
        .iter()
        .find(|(k, _)| *k == "KUBECONFIG")
        .map(|(_, v)| v.clone());
    let mut pairs: Vec<(&str, &str)> = vec![
        (root.as_str(), "<root>"),
        (bin.as_str(), "<bin>"),
        (d.namespace.as_str(), "<ns>"),
    ];
    if let Some(k) = &kubeconfig {
        pairs.insert(0, (k.as_str(), "<kubeconfig>"));
    }
    let json = |o: &Output| -> serde_json::Value {
        assert_eq!(
            o.status.code(),
            Some(0),
            "{}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        // stdout is exactly one JSON document; progress went to stderr as JSON lines.
        let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
        events(&o.stderr);
        doc
    };

    // Sources no earlier run built (builds are content-addressed; the daemon keeps old images).
    for (file, tag) in [
        ("demo/frontend/public/index.html", "p"),
        ("demo/backend/public/index.html", "h1"),
    ] {
        let page = format!("<{tag}>{}</{tag}>\n", d.namespace);
        std::fs::write(d.dir.path().join(file), page).unwrap();
    }
    // Nothing installed yet: up --dry-run plans the upgrade, builds nothing, deploys nothing.
    let o = d.stack(&["up", "--once", "--dry-run", "--format", "json"]);
    let mut report = json(&o);
    assert_eq!(report["helm"]["status"], "would-upgrade", "{report}");
    let steps: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["status"].as_str().unwrap())
        .collect();
    assert!(steps.iter().all(|s| *s == "would-run"), "{report}");
    assert!(
        !d.dir.path().join(".stack/up").exists(),
        "a dry run wrote the overrides"
    );
    let helm_list = d.kubectl(&[
        "get",
        "secrets",
        "-n",
        &d.namespace,
        "-l",
        "owner=helm",
        "-o",
        "name",
    ]);
    assert_eq!(helm_list.trim(), "", "a dry run installed something");
    // Image hashes are content hashes of the demo sources: stable, but not the point here.
    for img in report["images"].as_array_mut().unwrap() {
        img["reference"] = "<reference>".into();
        img["files"] = 0.into();
        img["filesRehashed"] = 0.into();
    }
    report["fingerprint"] = "<fingerprint>".into();
    // Pushes name the content-hash tags: redacted to the repository.
    for step in report["steps"].as_array_mut().unwrap() {
        let line = step["line"].as_str().unwrap().to_owned();
        if let Some(repo) = line.strip_prefix("docker push ") {
            assert!(repo.starts_with("localhost:25000/stack/"), "{line}");
            step["line"] = format!("docker push {}:<tag>", repo.rsplit_once(':').unwrap().0).into();
        }
    }
    // The overrides name the content-hash tags: checked, then redacted.
    let overrides = report["steps"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|s| s["line"].as_str().unwrap().ends_with(".values.json"))
        .map(|s| &mut s["contents"])
        .unwrap();
    let parsed: serde_json::Value = serde_json::from_str(overrides.as_str().unwrap()).unwrap();
    assert_eq!(parsed["frontend"]["image"]["repository"], "stack/frontend");
    *overrides = "<image overrides>".into();
    let report = support::redact(&report, &pairs);
    // The upgrade's token (its revision's description, for adopting a revision helm finished
    // after stack was killed) is new every run.
    let token = regex::Regex::new(r"stack upgrade [0-9a-f]{16}").unwrap();
    let report: serde_json::Value =
        serde_json::from_str(&token.replace_all(&report.to_string(), "stack upgrade <token>"))
            .unwrap();
    insta::assert_json_snapshot!("up_once_dry_run_json", report);

    // Installed: down --dry-run shows the uninstall it would run, and runs none.
    d.up();
    let o = d.stack(&["down", "--dry-run", "--format", "json"]);
    let down = json(&o);
    assert_eq!(down["status"], "would-uninstall", "{down}");
    insta::assert_json_snapshot!("down_dry_run_json", support::redact(&down, &pairs));
    let helm_list = d.kubectl(&[
        "get",
        "secrets",
        "-n",
        &d.namespace,
        "-l",
        "owner=helm",
        "-o",
        "name",
    ]);
    assert_eq!(
        helm_list.lines().count(),
        1,
        "down --dry-run uninstalled: {helm_list}"
    );

    // A source change: build --dry-run says what it would build, builds nothing.
    std::fs::write(
        d.dir.path().join("demo/frontend/public/index.html"),
        format!("<h3>{}</h3>\n", d.namespace),
    )
    .unwrap();
    let o = d.stack(&["build", "--dry-run", "--format", "json"]);
    let mut build = json(&o);
    let statuses: Vec<&str> = build["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["outcome"]["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["up-to-date", "would-build"], "{build}");
    for img in build["images"].as_array_mut().unwrap() {
        img["reference"] = "<reference>".into();
        img["files"] = 0.into();
        img["filesRehashed"] = 0.into();
    }
    insta::assert_json_snapshot!("build_dry_run_json", support::redact(&build, &pairs));
}

#[test]
fn up_events_come_in_the_order_things_happen() {
    let Some(d) = dev() else { return };
    let o = d.stack(&["up", "--once", "--format", "json"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(report["helm"]["status"], "upgraded");
    let events = events(&o.stderr);
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    let position = |pred: &dyn Fn(&serde_json::Value) -> bool| events.iter().position(pred);
    let planned = position(&|e| e["event"] == "image-planned").expect("image events");
    let upgrade = position(&|e| {
        e["event"] == "step"
            && e["line"]
                .as_str()
                .is_some_and(|l| l.contains(" upgrade --install "))
    })
    .unwrap_or_else(|| panic!("no helm upgrade step: {kinds:?}"));
    let rollout = position(&|e| e["event"] == "rollout").unwrap_or_else(|| panic!("{kinds:?}"));
    assert!(planned < upgrade && upgrade < rollout, "{kinds:?}");
    assert_eq!(events[upgrade]["dryRun"], false);

    // The human view prints the same order on stderr: the upgrade's command line, then its rollout.
    let page = format!("<h2>{}</h2>\n", d.namespace);
    std::fs::write(d.dir.path().join("demo/frontend/public/index.html"), page).unwrap();
    let o = d.stack(&["up", "--once"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let err = text(&o.stderr);
    let at = |needle: &str| {
        err.find(needle)
            .unwrap_or_else(|| panic!("no `{needle}` in:\n{err}"))
    };
    assert!(at("upgrade --install") < at("available"), "{err}");
    assert!(at("frontend: building") < at("upgrade --install"), "{err}");
    // -q keeps the result and drops the progress.
    let o = d.stack(&["up", "--once", "-q"]);
    assert_eq!(o.status.code(), Some(0));
    assert_eq!(text(&o.stderr), "", "quiet: no progress");
    assert!(
        text(&o.stdout).contains("release up to date"),
        "{}",
        text(&o.stdout)
    );
}

#[test]
fn ctrl_c_during_a_build_stops_stack_up_within_a_second() {
    let Some(d) = dev() else { return };
    // A build step that takes a minute: Ctrl-C must not wait for it.
    let dockerfile = d.dir.path().join("demo/backend/Dockerfile");
    let df = std::fs::read_to_string(&dockerfile).unwrap();
    let df = df.replacen(
        "\nCOPY",
        &format!("\nRUN echo {} && sleep 60\nCOPY", d.namespace),
        1,
    );
    assert!(df.contains("sleep 60"), "Dockerfile changed shape:\n{df}");
    std::fs::write(&dockerfile, df).unwrap();
    let mut child = d
        .cmd(&support::stack_bin())
        .args(["up", "--once"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(line);
        }
    });
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("no build started: {seen:?}"));
        let started = line.contains("backend: building");
        seen.push(line);
        if started {
            break;
        }
    }
    // Let the build reach its sleep.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let pid = child.id().to_string();
    assert!(std::process::Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .unwrap()
        .success());
    let start = std::time::Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        assert!(
            start.elapsed() < std::time::Duration::from_secs(5),
            "stack up ignored Ctrl-C during a build"
        );
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let took = start.elapsed();
    assert_eq!(status.code(), Some(130), "{status}");
    assert!(
        took < std::time::Duration::from_secs(1),
        "stopped after {took:?}"
    );
    let rest: Vec<String> = rx.try_iter().collect();
    assert!(rest.iter().any(|l| l.contains("cancelled")), "{rest:?}");
}

/// Every file under `dir` (recursively) whose bytes contain `needle`.
fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return hits;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            hits.extend(files_containing(&p, needle));
        } else if std::fs::read(&p)
            .map(|b| b.windows(needle.len()).any(|w| w == needle.as_bytes()))
            .unwrap_or(false)
        {
            hits.push(p.display().to_string());
        }
    }
    hits
}

#[test]
fn a_dotenv_canary_never_leaves_the_cluster_secret_in_any_output_mode() {
    // Issue 13's "zero secrets out", for the commands that exist: a canary in `.env` is synced
    // into the cluster (as a Secret, the default) and appears in no output of any format, in no
    // dry run and in no file stack writes.
    let Some(d) = dev() else { return };
    let canary = format!("canary-{}-7f3a", d.namespace);
    std::fs::write(
        d.dir.path().join(".env"),
        format!("GREETING=hello\nAPI_TOKEN={canary}\n"),
    )
    .unwrap();
    // The default target: a Secret (the reference stack.yaml asks for a ConfigMap; drop that).
    let yaml = std::fs::read_to_string(d.dir.path().join("stack.yaml")).unwrap();
    let yaml = yaml.replace("    configMap: app-env\n", "");
    std::fs::write(d.dir.path().join("stack.yaml"), yaml).unwrap();

    let mut outputs: Vec<(String, Output)> = Vec::new();
    for format in ["human", "json", "github"] {
        for args in [
            vec!["up", "--once", "--dry-run"],
            vec!["up", "--once", "-v"],
            vec!["down", "--dry-run"],
            vec!["values", "local/dev"],
            vec!["validate", "envs"],
            vec!["build", "--dry-run", "--deliver"],
        ] {
            let mut all = args.clone();
            all.extend(["--format", format]);
            outputs.push((all.join(" "), d.stack(&all)));
        }
    }
    // The inner loop syncs `.env` (the only command that reads its values), in each format.
    for format in ["human", "json", "github"] {
        let mut child = d
            .cmd(&support::stack_bin())
            .args(["up", "--format", format])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let mut readers = Vec::new();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            readers.push(std::thread::spawn(move || {
                let mut all = String::new();
                for l in
                    std::io::BufRead::lines(std::io::BufReader::new(stream)).map_while(Result::ok)
                {
                    let _ = tx.send(l.clone());
                    all.push_str(&l);
                    all.push('\n');
                }
                all
            }));
        }
        drop(tx);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
        loop {
            let l = rx
                .recv_timeout(deadline.saturating_duration_since(std::time::Instant::now()))
                .unwrap_or_else(|_| panic!("`stack up --format {format}` never synced .env"));
            if l.contains("key(s) synced") || l.contains("dotenv-synced") {
                break;
            }
        }
        assert!(std::process::Command::new("kill")
            .args(["-INT", &child.id().to_string()])
            .status()
            .unwrap()
            .success());
        let status = child.wait().unwrap();
        let text: Vec<String> = readers.into_iter().map(|r| r.join().unwrap()).collect();
        outputs.push((
            format!("up --format {format}"),
            Output {
                status,
                stdout: text[0].clone().into_bytes(),
                stderr: text[1].clone().into_bytes(),
            },
        ));
    }
    // The value did reach the cluster (the canary is real, not absent).
    let data = d.kubectl(&[
        "get",
        "secret",
        "-n",
        &d.namespace,
        "shop-env",
        "-o",
        "jsonpath={.data.API_TOKEN}",
    ]);
    use base64::Engine as _;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .unwrap();
    assert_eq!(String::from_utf8(decoded).unwrap(), canary);

    let hits: Vec<&String> = outputs
        .iter()
        .filter(|(_, o)| text(&o.stdout).contains(&canary) || text(&o.stderr).contains(&canary))
        .map(|(what, _)| what)
        .collect();
    assert!(hits.is_empty(), "the canary was printed by: {hits:?}");
    let files = files_containing(&d.dir.path().join(".stack"), &canary);
    assert!(files.is_empty(), "the canary was written to: {files:?}");
    println!(
        "secrets: {} command runs in 3 formats, canary hits 0, files under .stack/ checked",
        outputs.len()
    );
}
