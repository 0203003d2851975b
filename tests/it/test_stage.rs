//! `stack test local|ci` on the reference stack against the rig (tier "rig"): a real API server +
//! controllers, real helm, a real OCI registry (chart pushed with `helm push`, images with `docker
//! push`), the real Docker engine for `local`'s builds. kwok simulates the kubelet: pods become
//! Ready, pod logs come from a file (`ClusterLogs`), port-forwards reach a local HTTP server this
//! test runs (`ClusterPortForward`) — so an `http` check really goes through the API server's
//! port-forward, and a `logs` check through its log endpoint.

use crate::support;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

/// The registry token planted in the environment: it must appear nowhere stack writes.
const TOKEN: &str = "canary-Tok3n-6f1d2c";

struct Proj {
    _turn: std::sync::MutexGuard<'static, ()>,
    dir: tempfile::TempDir,
    env: support::RigEnv,
    /// Unique per test: namespace suffix and registry path.
    id: String,
    namespace: String,
    registry: String,
    server: Option<Server>,
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

fn proj(profile: &str) -> Option<Proj> {
    let env = support::rig_env().and_then(|e| support::rig_docker().map(|_| e));
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    let env = env.unwrap();
    let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
    let dir = tempfile::tempdir().unwrap();
    for item in ["stack.yaml", "charts", "envs", "demo"] {
        support::copy(&support::project_root().join(item), &dir.path().join(item));
    }
    let _ = std::fs::remove_dir_all(dir.path().join("charts/app/charts"));
    let id = dir
        .path()
        .file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .replace(['.', '_'], "");
    let namespace = format!("shop-{profile}-{id}");
    let registry = env
        .vars
        .get("STACK_RIG_REGISTRY")
        .cloned()
        .unwrap_or_else(|| "127.0.0.1:25000".into());
    let yaml = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap().replace(
        "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
    );
    let yaml = yaml.replace(
        "test:\n",
        &format!(
            "test:\n  local:\n    namespace: shop-local-{id}\n  ci:\n    namespace: shop-ci-{id}\n  pullSecret:\n    registry: {registry}\n    usernameEnv: STACK_T_USER\n    passwordEnv: STACK_T_TOKEN\n"
        ),
    );
    assert!(yaml.contains("provider: existing") && yaml.contains(&namespace));
    std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
    Some(Proj {
        _turn: turn,
        dir,
        env,
        id,
        namespace,
        registry,
        server: None,
    })
}

impl Proj {
    fn cmd(&self, program: &Path) -> std::process::Command {
        let mut c = std::process::Command::new(program);
        c.current_dir(self.dir.path())
            .envs(&self.env.vars)
            .env("NO_COLOR", "1")
            .env("STACK_T_USER", "ci-bot")
            .env("STACK_T_TOKEN", TOKEN)
            .env_remove("GITHUB_ACTIONS")
            .env_remove("GITHUB_STEP_SUMMARY");
        let mut path = vec![self.env.bin_dir.clone()];
        path.extend(std::env::split_paths(
            &std::env::var_os("PATH").unwrap_or_default(),
        ));
        c.env("PATH", std::env::join_paths(path).unwrap());
        c
    }

    fn tool(&self, name: &str, args: &[&str]) -> String {
        let program = if name == "docker" {
            PathBuf::from("docker")
        } else {
            self.env.bin_dir.join(name)
        };
        let o = self.cmd(&program).args(args).output().unwrap();
        assert!(
            o.status.success(),
            "{name} {args:?}: {}{}",
            text(&o.stdout),
            text(&o.stderr)
        );
        text(&o.stdout)
    }

    fn kubectl(&self, args: &[&str]) -> String {
        let mut all = vec!["--context", "stack-rig"];
        all.extend(args);
        self.tool("kubectl", &all)
    }

    fn kubectl_apply(&self, json: &str) {
        let mut apply = self
            .cmd(&self.env.bin_dir.join("kubectl"))
            .args(["--context", "stack-rig", "apply", "-f", "-"])
            .stdin(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        apply
            .stdin
            .as_mut()
            .unwrap()
            .write_all(json.as_bytes())
            .unwrap();
        drop(apply.stdin.take());
        assert!(apply.wait().unwrap().success());
    }

    /// Publishes the chart (0.1.0) and both images (1.0.0) to the rig registry under this test's
    /// path, as a release pipeline would.
    fn publish(&self) -> (String, String, String) {
        let path = format!("{}/{}", self.registry, self.id);
        self.tool("helm", &["dependency", "build", "charts/app"]);
        let out = self.dir.path().join("dist");
        self.tool(
            "helm",
            &["package", "charts/app", "-d", &out.display().to_string()],
        );
        self.tool(
            "helm",
            &[
                "push",
                &out.join("app-0.1.0.tgz").display().to_string(),
                &format!("oci://{path}"),
                "--plain-http",
            ],
        );
        let _ = std::fs::remove_dir_all(self.dir.path().join("charts/app/charts"));
        let mut images = Vec::new();
        for name in ["backend", "frontend"] {
            let reference = format!("{path}/{name}:1.0.0");
            let host = &self.env.vars["DOCKER_HOST"];
            self.tool("docker", &["-H", host, "tag", "busybox:latest", &reference]);
            self.tool("docker", &["-H", host, "push", &reference]);
            images.push(reference);
        }
        (
            format!("oci://{path}/app"),
            images[0].clone(),
            images[1].clone(),
        )
    }

    /// kwok: port 8000 of the namespace's pods → a local HTTP server; container logs → a file.
    fn simulate_pods(&mut self, namespace: &str) {
        let log = self.dir.path().join("backend.log");
        std::fs::write(
            &log,
            "2026-01-01T00:00:00.000000000Z stdout F httpd: started\n",
        )
        .unwrap();
        let server = Server::start(log.clone());
        self.kubectl_apply(&format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[
              {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterPortForward","metadata":{{"name":"{namespace}"}},"spec":{{"selector":{{"matchNamespaces":["{namespace}"]}},"forwards":[{{"ports":[8000],"target":{{"address":"127.0.0.1","port":{port}}}}}]}}}},
              {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterLogs","metadata":{{"name":"{namespace}"}},"spec":{{"selector":{{"matchNamespaces":["{namespace}"]}},"logs":[{{"containers":["backend-api"],"logsFile":"{log}"}}]}}}}
            ]}}"#,
            port = server.port,
            log = log.display(),
        ));
        self.server = Some(server);
    }

    fn stack(&self, args: &[&str]) -> Output {
        self.cmd(&support::stack_bin()).args(args).output().unwrap()
    }

    /// Runs stack while sampling every process's argv on this machine for the token.
    fn stack_sampled(&self, args: &[&str]) -> (Output, usize, usize) {
        let stop = Arc::new(AtomicBool::new(false));
        let sampler = {
            let stop = stop.clone();
            std::thread::spawn(move || {
                let (mut samples, mut hits) = (0usize, 0usize);
                while !stop.load(Ordering::Relaxed) {
                    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
                        if let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) {
                            samples += 1;
                            if String::from_utf8_lossy(&cmdline).contains(TOKEN) {
                                hits += 1;
                            }
                        }
                    }
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                (samples, hits)
            })
        };
        let out = self.stack(args);
        stop.store(true, Ordering::Relaxed);
        let (samples, hits) = sampler.join().unwrap();
        (out, samples, hits)
    }

    fn namespace_exists(&self, namespace: &str) -> bool {
        let o = self
            .cmd(&self.env.bin_dir.join("kubectl"))
            .args([
                "--context",
                "stack-rig",
                "get",
                "namespace",
                namespace,
                "-o",
                "jsonpath={.status.phase}",
            ])
            .output()
            .unwrap();
        o.status.success() && text(&o.stdout) == "Active"
    }

    fn release_installed(&self, namespace: &str) -> bool {
        self.cmd(&self.env.bin_dir.join("helm"))
            .args([
                "status",
                "shop-test",
                "-n",
                namespace,
                "--kube-context",
                "stack-rig",
            ])
            .output()
            .unwrap()
            .status
            .success()
    }
}

impl Drop for Proj {
    fn drop(&mut self) {
        for ns in [
            format!("shop-ci-{}", self.id),
            format!("shop-local-{}", self.id),
        ] {
            let _ = self
                .cmd(&self.env.bin_dir.join("helm"))
                .args([
                    "uninstall",
                    "shop-test",
                    "-n",
                    &ns,
                    "--kube-context",
                    "stack-rig",
                ])
                .output();
            for kind in ["clusterportforward", "clusterlogs"] {
                let _ = self
                    .cmd(&self.env.bin_dir.join("kubectl"))
                    .args([
                        "--context",
                        "stack-rig",
                        "delete",
                        kind,
                        &ns,
                        "--ignore-not-found",
                    ])
                    .output();
            }
            let _ = self
                .cmd(&self.env.bin_dir.join("kubectl"))
                .args([
                    "--context",
                    "stack-rig",
                    "delete",
                    "namespace",
                    &ns,
                    "--wait=false",
                    "--ignore-not-found",
                ])
                .output();
        }
    }
}

/// A local HTTP server standing in for the container behind port 8000 (kwok forwards to it); it
/// logs each request to the container's log file (CRI format, timestamped now), as httpd -v does.
struct Server {
    port: u16,
    stop: Arc<AtomicBool>,
}

impl Server {
    fn start(log: PathBuf) -> Server {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        listener.set_nonblocking(true).unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        conn.set_nonblocking(false).unwrap();
                        let mut buf = [0u8; 4096];
                        let n = conn.read(&mut buf).unwrap_or(0);
                        let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                        let path = request.split(' ').nth(1).unwrap_or("?").to_owned();
                        if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                            let now = k8s_openapi::jiff::Timestamp::now();
                            let _ = writeln!(f, "{now} stdout F [::1]:41000: url:{path}");
                        }
                        let (status, body) = if request.starts_with("GET /api/version.json") {
                            ("200 OK", r#"{"version": "1.0.0"}"#)
                        } else {
                            ("404 Not Found", "not found")
                        };
                        let _ = write!(
                            conn,
                            "HTTP/1.1 {status}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                            body.len()
                        );
                    }
                    Err(_) => std::thread::sleep(std::time::Duration::from_millis(5)),
                }
            }
        });
        Server { port, stop }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
    let mut hits = Vec::new();
    for entry in walk(dir) {
        if let Ok(bytes) = std::fs::read(&entry) {
            if String::from_utf8_lossy(&bytes).contains(needle) {
                hits.push(entry.display().to_string());
            }
        }
    }
    hits
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

/// The images of the repositories this project builds (`stack/backend`, `stack/frontend`), with
/// their tags: a build during the run would add one.
fn image_ids(p: &Proj) -> String {
    let mut all = String::new();
    for repo in ["stack/backend", "stack/frontend"] {
        all.push_str(&p.tool(
            "docker",
            &[
                "-H",
                &p.env.vars["DOCKER_HOST"],
                "images",
                repo,
                "--format",
                "{{.Repository}}:{{.Tag}} {{.ID}}",
            ],
        ));
    }
    // Sorted: the daemon lists images by creation time, which a re-tag elsewhere reorders.
    let mut lines: Vec<&str> = all.lines().collect();
    lines.sort_unstable();
    lines.join("\n")
}

#[test]
fn test_ci_deploys_the_published_chart_and_images_and_passes_every_check() {
    let Some(mut p) = proj("ci") else { return };
    let (chart, backend, frontend) = p.publish();
    let ns = p.namespace.clone();
    p.simulate_pods(&ns);
    let before = image_ids(&p);
    let junit = p.dir.path().join("junit.xml");
    let (o, samples, argv_hits) = p.stack_sampled(&[
        "test",
        "ci",
        "--chart",
        &chart,
        "--chart-version",
        "0.1.0",
        "--image",
        &format!("backend={backend}"),
        "--image",
        &format!("frontend={frontend}"),
        "--format",
        "json",
        "--junit",
        &junit.display().to_string(),
    ]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(0),
        "stack test ci failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["status"], "passed");
    assert_eq!(report["images"], serde_json::json!([]), "ci builds nothing");
    assert_eq!(
        image_ids(&p),
        before,
        "no image was built or pulled into the daemon during the run"
    );
    let kinds: Vec<&str> = report["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["kind"].as_str().unwrap())
        .collect();
    for kind in ["ready", "assert", "http", "logs", "command"] {
        assert!(
            kinds.contains(&kind),
            "the reference stack's checks cover {kind}: {kinds:?}"
        );
    }
    for c in report["checks"].as_array().unwrap() {
        assert_eq!(c["status"], "passed", "{c}");
        assert!(
            c["definition"].as_str().unwrap().starts_with("stack.yaml:"),
            "{c}"
        );
    }
    let published: Vec<(&str, &str)> = report["published"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["reference"].as_str().unwrap(),
                p["status"].as_str().unwrap(),
            )
        })
        .collect();
    assert!(
        published
            .iter()
            .any(|(r, s)| r.ends_with("/app:0.1.0") && *s == "found"),
        "{published:?}"
    );
    assert!(
        published
            .iter()
            .any(|(r, s)| *r == backend && *s == "found"),
        "{published:?}"
    );
    // The pull Secret was applied and the default ServiceAccount patched — then removed with the
    // namespace stack created, because every check passed.
    assert!(
        stdout.contains("registry pull Secret")
            || report["steps"].to_string().contains("pull Secret"),
        "{stdout}"
    );
    assert_eq!(report["cleanup"]["status"], "removed");
    assert_eq!(report["cleanup"]["namespace_removed"], true);
    assert!(!p.release_installed(&ns));
    // JUnit: one suite, one case per check, no failures.
    let xml = std::fs::read_to_string(&junit).unwrap();
    assert!(
        xml.contains(r#"tests="6""#) && xml.contains(r#"failures="0""#),
        "{xml}"
    );
    // The token: nowhere.
    assert!(
        !stdout.contains(TOKEN) && !stderr.contains(TOKEN),
        "token printed"
    );
    assert!(!xml.contains(TOKEN));
    assert_eq!(
        files_containing(&p.dir.path().join(".stack"), TOKEN),
        Vec::<String>::new()
    );
    assert!(samples > 100, "the argv sampler ran ({samples} samples)");
    assert_eq!(
        argv_hits, 0,
        "the token appeared on a process's command line"
    );
}

#[test]
fn test_ci_refuses_a_missing_chart_version_or_image_and_deploys_nothing() {
    let Some(p) = proj("ci") else { return };
    let (chart, backend, frontend) = p.publish();
    let o = p.stack(&[
        "test",
        "ci",
        "--chart",
        &chart,
        "--chart-version",
        "9.9.9",
        "--format",
        "json",
    ]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["status"], "missing");
    assert_eq!(report["published"][0]["status"], "missing");
    assert!(report["published"][0]["reference"]
        .as_str()
        .unwrap()
        .ends_with("/app:9.9.9"));
    assert!(!p.namespace_exists(&p.namespace) && !p.release_installed(&p.namespace));

    let missing = backend.replace(":1.0.0", ":0.0.404");
    let o = p.stack(&[
        "test",
        "ci",
        "--chart",
        &chart,
        "--chart-version",
        "0.1.0",
        "--image",
        &format!("backend={missing}"),
        "--image",
        &format!("frontend={frontend}"),
    ]);
    let human = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{human}{}", text(&o.stderr));
    assert!(
        human.contains(&format!("{missing} is MISSING from its registry")),
        "{human}"
    );
    assert!(human.contains("nothing was deployed"), "{human}");
    assert!(!p.namespace_exists(&p.namespace) && !p.release_installed(&p.namespace));
}

#[test]
fn test_reports_an_ownership_conflict_and_deletes_nothing() {
    let Some(p) = proj("ci") else { return };
    let (chart, backend, frontend) = p.publish();
    p.kubectl(&["create", "namespace", &p.namespace]);
    p.kubectl(&[
        "-n",
        &p.namespace,
        "create",
        "configmap",
        "app-env",
        "--from-literal=owner=someone-else",
    ]);
    let o = p.stack(&[
        "test",
        "ci",
        "--chart",
        &chart,
        "--chart-version",
        "0.1.0",
        "--image",
        &format!("backend={backend}"),
        "--image",
        &format!("frontend={frontend}"),
    ]);
    let human = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{human}{}", text(&o.stderr));
    assert!(
        human.contains(&format!(
            "conflict: configmap {}/app-env is owned by not managed by Helm",
            p.namespace
        )),
        "{human}"
    );
    assert!(
        human.contains("meta.helm.sh/release-name=shop-test"),
        "the fix names the adoption annotations: {human}"
    );
    assert_eq!(
        p.kubectl(&[
            "-n",
            &p.namespace,
            "get",
            "configmap",
            "app-env",
            "-o",
            "jsonpath={.data.owner}"
        ]),
        "someone-else"
    );
    assert!(!p.release_installed(&p.namespace));
    assert!(
        p.namespace_exists(&p.namespace),
        "a namespace stack did not create is never deleted"
    );
}

#[test]
fn test_local_builds_the_production_stage_and_passes() {
    let Some(mut p) = proj("local") else { return };
    let ns = format!("shop-local-{}", p.id);
    p.simulate_pods(&ns);
    let o = p.stack(&["test", "local", "--format", "json"]);
    let (stdout, stderr) = (text(&o.stdout), text(&o.stderr));
    assert_eq!(
        o.status.code(),
        Some(0),
        "stack test local failed:\n{stdout}\n{stderr}"
    );
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    let images = report["images"].as_array().unwrap();
    assert_eq!(images.len(), 2);
    for i in images {
        // Delivered to the cluster's registry (localhost:25000, as the cluster pulls it).
        let delivered = i["delivered"].as_str().unwrap();
        assert!(
            delivered.ends_with(i["reference"].as_str().unwrap()) && delivered.contains(":25000/"),
            "{i}"
        );
    }
    // The production stage, not the dev one: `stack build` (dev target) gives another tag.
    let dev = p.stack(&["build", "backend", "--dry-run", "--format", "json"]);
    let dev: serde_json::Value = serde_json::from_slice(&dev.stdout).unwrap();
    let backend = images.iter().find(|i| i["name"] == "backend").unwrap();
    assert_ne!(
        backend["reference"], dev["images"][0]["reference"],
        "test local built the dev stage"
    );
    assert_eq!(report["status"], "passed");
    assert_eq!(report["cleanup"]["status"], "removed");
}

/// One failing check of every kind, beside the reference stack's passing ones.
const FAILING: &str = r#"# Each of these fails on purpose: the report must say why, at this file's lines.
- name: a deployment that does not exist
  ready: "deployment/{{ release }}-nope"
  timeout: 2s
- name: settings mode
  assert:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: app-env
    data:
      mode: prod
  timeout: 2s
- name: env config gone
  absent:
    apiVersion: v1
    kind: ConfigMap
    metadata:
      name: app-env
  timeout: 2s
- name: missing page
  http:
    forward: api
    path: /missing
    expect:
      status: [200]
  timeout: 2s
- name: never logged
  logs:
    selector: app.kubernetes.io/name=backend-api
    container: backend-api
    regex: never-logged
  timeout: 2s
- name: suite exits 3
  command:
    run: [sh, -c, 'echo "boom: $BASE_URL" >&2; exit 3']
    env:
      BASE_URL: "{{ forwards.api.url }}"
- name: migration job
  job:
    manifest:
      apiVersion: batch/v1
      kind: Job
      metadata:
        name: migrate
      spec:
        backoffLimit: 0
        template:
          metadata:
            annotations:
              JOB_EXIT_ANNOTATION: "2"
          spec:
            restartPolicy: Never
            containers:
              - name: migrate
                image: busybox
  timeout: 20s
"#;

/// The rig's kwok stage ends a pod with this annotation as if its containers exited with it.
const JOB_EXIT_ANNOTATION: &str = "stack.dev/kwok-exit-code";

/// Durations, ports, temp-dir ids and times out of an output, for snapshots.
fn stable(text: &str, id: &str) -> String {
    let text = text.replace(id, "[id]");
    let text = regex::Regex::new(r"\d+\.\d+s")
        .unwrap()
        .replace_all(&text, "[t]s");
    let text = regex::Regex::new(r"127\.0\.0\.1:\d+")
        .unwrap()
        .replace_all(&text, "127.0.0.1:[port]");
    let text = regex::Regex::new(r"(shop-test-[a-z]+(?:-[a-z]+)?)-[a-z0-9]{6,10}-[a-z0-9]{5}")
        .unwrap()
        .replace_all(&text, "$1-[pod]");
    let text = regex::Regex::new(r"migrate-[a-z0-9]{5}(-[a-z0-9]{5})?")
        .unwrap()
        .replace_all(&text, "migrate-[x]");
    let text = regex::Regex::new(r#""seconds": [0-9.e-]+"#)
        .unwrap()
        .replace_all(&text, r#""seconds": "[t]""#);
    // How often a polled check retried within its timeout varies: so do the log lines it caused.
    let text = regex::Regex::new(r"last \d+ lines")
        .unwrap()
        .replace_all(&text, "last [n] lines");
    let mut lines: Vec<&str> = Vec::new();
    for line in text.lines() {
        if lines.last() != Some(&line) {
            lines.push(line);
        }
    }
    let mut out = lines.join("\n");
    if text.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[test]
fn test_failing_checks_of_every_kind_report_evidence_diagnostics_and_junit() {
    let Some(mut p) = proj("ci") else { return };
    let (chart, backend, frontend) = p.publish();
    let ns = p.namespace.clone();
    p.simulate_pods(&ns);
    std::fs::create_dir_all(p.dir.path().join("tests/checks")).unwrap();
    std::fs::write(
        p.dir.path().join("tests/checks/failing.yaml"),
        FAILING.replace("JOB_EXIT_ANNOTATION", JOB_EXIT_ANNOTATION),
    )
    .unwrap();
    let yaml = std::fs::read_to_string(p.dir.path().join("stack.yaml")).unwrap();
    std::fs::write(
        p.dir.path().join("stack.yaml"),
        yaml.replace("test:\n", "test:\n  files: [tests/checks/*.yaml]\n"),
    )
    .unwrap();
    let images = [format!("backend={backend}"), format!("frontend={frontend}")];
    let run = |format: &str, extra: &[&str]| {
        let mut args = vec![
            "test",
            "ci",
            "--chart",
            &chart,
            "--chart-version",
            "0.1.0",
            "--image",
            &images[0],
            "--image",
            &images[1],
            "--format",
            format,
        ];
        args.extend(extra);
        p.stack(&args)
    };
    let junit = p.dir.path().join("junit.xml");
    let junit_arg = junit.display().to_string();
    let o = run("json", &["--junit", &junit_arg]);
    let stdout = text(&o.stdout);
    assert_eq!(o.status.code(), Some(1), "{stdout}{}", text(&o.stderr));
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["status"], "failed");
    let by_name = |n: &str| {
        report["checks"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["name"] == n)
            .cloned()
            .unwrap_or_else(|| panic!("no check {n}"))
    };
    // Each kind failed with its own evidence, pointing at its definition.
    let diff = by_name("settings mode");
    assert_eq!(diff["status"], "failed");
    assert!(
        diff["detail"].as_str().unwrap().contains(".data: missing"),
        "{diff}"
    );
    assert_eq!(diff["definition"], "tests/checks/failing.yaml:5:3");
    let http = by_name("missing page");
    assert!(http["message"].as_str().unwrap().contains("404"), "{http}");
    assert!(
        http["detail"].as_str().unwrap().contains("not found"),
        "the last response body: {http}"
    );
    let logs = by_name("never logged");
    assert!(
        logs["detail"].as_str().unwrap().contains("url:"),
        "the lines seen: {logs}"
    );
    let cmd = by_name("suite exits 3");
    assert!(
        cmd["message"].as_str().unwrap().contains("exited 3"),
        "{cmd}"
    );
    assert!(
        cmd["detail"]
            .as_str()
            .unwrap()
            .contains("boom: http://127.0.0.1:"),
        "{cmd}"
    );
    assert_eq!(by_name("env config gone")["status"], "failed");
    assert_eq!(
        by_name("a deployment that does not exist")["status"],
        "failed"
    );
    let job = by_name("migration job");
    assert_eq!(job["status"], "failed", "{job}");
    assert!(
        job["message"].as_str().unwrap().contains('2'),
        "the exit code: {job}"
    );
    for passing in ["backend rolled out", "api answers", "e2e suite"] {
        assert_eq!(by_name(passing)["status"], "passed");
    }
    // Diagnostics were collected before the release was kept.
    let diag = &report["diagnostics"];
    let dir = p.dir.path().join(diag["dir"].as_str().unwrap());
    for f in [
        "events.txt",
        "pods.txt",
        "pods.json",
        "helm-status.json",
        "helm-history.json",
        "values.json",
        "checks.json",
    ] {
        assert!(dir.join(f).is_file(), "diagnostics lack {f}: {diag}");
    }
    assert!(
        std::fs::read_dir(dir.join("describe")).unwrap().count() > 0,
        "a describe of each pod"
    );
    assert_eq!(
        files_containing(&p.dir.path().join(".stack"), TOKEN),
        Vec::<String>::new(),
        "the token reached the diagnostics or a record"
    );
    assert!(!stdout.contains(TOKEN) && !text(&o.stderr).contains(TOKEN));
    assert!(
        std::fs::read_dir(dir.join("logs")).unwrap().count() > 0,
        "container logs collected"
    );
    assert_eq!(report["cleanup"]["status"], "kept");
    assert!(
        p.release_installed(&ns),
        "a failing release is kept for inspection"
    );
    // JUnit: valid against the published schema (+ file/line), every failure counted.
    if let Some(xmllint) = crate::junit::xmllint() {
        let xsd = std::fs::read_to_string(
            support::project_root().join("tests/fixtures/junit/junit-10.xsd"),
        )
        .unwrap();
        let extended = p.dir.path().join("junit-file-line.xsd");
        std::fs::write(&extended, crate::junit::with_file_and_line(&xsd)).unwrap();
        crate::junit::validate(&xmllint, &extended, &junit).unwrap();
        let xml = std::fs::read_to_string(&junit).unwrap();
        assert!(
            xml.contains(r#"tests="13""#) && xml.contains(r#"failures="7""#),
            "{xml}"
        );
    }
    let mut checks = report["checks"].clone();
    for c in checks.as_array_mut().unwrap() {
        if let Some(detail) = c["detail"].as_str() {
            c["detail"] = stable(detail, &p.id).into();
        }
    }
    insta::assert_snapshot!(
        "test_failing_json",
        stable(&serde_json::to_string_pretty(&checks).unwrap(), &p.id)
    );

    // Human and GitHub renderings of the same kind of run (kept release: clean up first).
    let clean = p.stack(&["test", "clean", "ci"]);
    assert!(clean.status.success(), "{}", text(&clean.stderr));
    assert!(!p.release_installed(&ns));
    let o = run("human", &[]);
    assert_eq!(o.status.code(), Some(1));
    insta::assert_snapshot!("test_failing_human", stable(&text(&o.stdout), &p.id));
    let _ = p.stack(&["test", "clean", "ci"]);
    let o = run("github", &[]);
    assert_eq!(o.status.code(), Some(1));
    let gh = text(&o.stdout);
    // Workflow commands only (progress lines come in finishing order); within an annotation's
    // message, repeated log lines collapsed as `stable` does for lines.
    let commands: Vec<String> = gh
        .lines()
        .filter(|l| l.starts_with("::"))
        .map(|l| {
            let mut parts: Vec<&str> = Vec::new();
            for part in l.split("%0A") {
                if parts.last() != Some(&part) {
                    parts.push(part);
                }
            }
            parts.join("%0A")
        })
        .collect();
    insta::assert_snapshot!("test_failing_github", stable(&commands.join("\n"), &p.id));
    assert!(
        gh.contains("::group::checks") && gh.contains("::endgroup::"),
        "{gh}"
    );
    assert!(
        gh.contains("::error file=tests/checks/failing.yaml,line=5,col=3,"),
        "{gh}"
    );
    let _ = p.stack(&["test", "clean", "ci"]);
}

#[test]
fn inside_github_actions_test_and_validate_speak_workflow_commands_unless_told_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    for item in ["stack.yaml", "charts", "envs", "demo"] {
        support::copy(&support::project_root().join(item), &dir.path().join(item));
    }
    let run = |args: &[&str]| {
        std::process::Command::new(support::stack_bin())
            .current_dir(dir.path())
            .env("GITHUB_ACTIONS", "true")
            .env_remove("GITHUB_STEP_SUMMARY")
            .env("NO_COLOR", "1")
            .args(args)
            .output()
            .unwrap()
    };
    // `test ci` without a chart: a usage error, as a workflow command.
    let o = run(&["test", "ci"]);
    assert_eq!(o.status.code(), Some(2));
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(all.contains("::error"), "{all}");
    assert!(all.contains("deploys the published chart"), "{all}");
    // An explicit --format wins.
    let o = run(&["test", "ci", "--format", "human"]);
    let all = format!("{}{}", text(&o.stdout), text(&o.stderr));
    assert!(!all.contains("::error"), "{all}");
    // Other commands keep their human output.
    let o = run(&["values", "local/dev"]);
    assert!(o.status.success());
    assert!(!text(&o.stdout).contains("::"), "{}", text(&o.stdout));
    // validate too: its GitHub rendering (a one-line count), not the human one.
    let o = run(&["validate", "envs"]);
    assert!(o.status.success());
    assert_eq!(
        text(&o.stdout).trim(),
        "stack validate envs: 0 errors, 0 warnings in 4 targets"
    );
}
