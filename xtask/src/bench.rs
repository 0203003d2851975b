//! Benchmarks: each prints stack's figure next to an anchor measured in the same run, and the ratio.
//! Never asserted: this machine is shared and noisy; the figures go into issue notes.
//!
//! `bench validate`: trees of N env files (the reference chart, vendored), `stack validate envs`
//! against the `helm template`-per-env loop it replaces (what `mage validate:envs` does).
//!
//! `bench build`: the cache decision of `stack build` on an unchanged context of N files, against
//! `docker build` of the same unchanged context (which re-sends the context and walks its layer
//! cache). Needs the rig's dockerd (`cargo xtask rig up`).
//!
//! `bench up`: on the rig, an up-to-date `stack up --once` to ready (median of 5), then the live
//! sync latency of a running `stack up`: save → new content served through stack's port-forward
//! from the (kwok-simulated) container, 50 edits, p50 and p95, next to Tilt's 200 ms and Skaffold's 1 s quiet periods before they even start.
//!
//! `bench test`: on the rig, the reference stack's six checks against one kept test release, done
//! by `stack test ci --no-deploy` and by the glue it replaces (`kubectl wait`, an EndpointSlice
//! poll, `kubectl port-forward` + `curl --retry`, `kubectl logs | grep`, the e2e command, one after
//! another, as `mage test:ci` does), alternating, median of 7 each (goal: glue/stack ≥ 3); then 20
//! independent `command` checks sleeping 0.1…2.0 s with `--jobs 20` against the same release, the
//! check phase (first start → last end, from stack's JSON events) against the slowest check (goal:
//! under 2×). Every measured run must pass every check, or the bench fails.

use crate::tools::{self, Tools};
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("validate") => validate(&args[1..]),
        Some("build") => build(&args[1..]),
        Some("up") => up(&args[1..]),
        Some("test") => test(&args[1..]),
        _ => bail!(
            "usage: cargo xtask bench validate [--sizes 10,100,1000] [--helm-sample 100]\n       cargo xtask bench build [--sizes 10000,100000]\n       cargo xtask bench up [--edits 50]\n       cargo xtask bench test [--runs 7]"
        ),
    }
}

fn flag<'a>(args: &'a [String], name: &str) -> Option<&'a str> {
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .map(String::as_str)
}

fn validate(args: &[String]) -> Result<()> {
    let sizes: Vec<usize> = flag(args, "--sizes")
        .unwrap_or("10,100,1000")
        .split(',')
        .map(|s| s.trim().parse().context("--sizes takes numbers"))
        .collect::<Result<_>>()?;
    let sample: usize = flag(args, "--helm-sample").unwrap_or("100").parse()?;
    let tools = tools::setup()?;
    let root = tools::project_root();
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "stack"])
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    let stack = root.join("target/release/stack");
    println!("stack validate envs vs the helm-template-per-env loop (same tree, same run)");
    println!(
        "{:>6}  {:>12}  {:>14}  {:>16}  {:>8}",
        "envs", "stack", "stack/env", "helm loop", "ratio"
    );
    let mut per_env = Vec::new();
    for &n in &sizes {
        let tmp = tempdir()?;
        let tree = generate(&tools, &root, &tmp, n)?;
        // Warm the page cache once, then take the median of 5 runs.
        run_stack(&stack, &tree)?;
        let mut times: Vec<Duration> = (0..5)
            .map(|_| run_stack(&stack, &tree))
            .collect::<Result<_>>()?;
        times.sort();
        let ours = times[2];
        let measured = n.min(sample);
        let helm_total = helm_loop(&tools, &tree, measured)?;
        let helm = helm_total.mul_f64(n as f64 / measured as f64);
        let note = if measured < n {
            format!(" (mean of {measured} × {n})")
        } else {
            String::new()
        };
        per_env.push(ours.as_secs_f64() / n as f64);
        println!(
            "{n:>6}  {:>10.1}ms  {:>12.3}ms  {:>14.0}ms  {:>7.0}×{note}",
            ms(ours),
            ms(ours) / n as f64,
            ms(helm),
            helm.as_secs_f64() / ours.as_secs_f64()
        );
        let _ = std::fs::remove_dir_all(&tmp);
    }
    if per_env.len() > 1 {
        let first = per_env[0];
        let last = *per_env.last().unwrap();
        println!("growth: per-env time at the largest size is {:.2}× that at the smallest (1.0 = linear)", last / first);
    }
    Ok(())
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn tempdir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("stack-bench-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn copy(from: &Path, to: &Path) -> Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            copy(&e.path(), &to.join(e.file_name()))?;
        }
    } else {
        if let Some(parent) = to.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::copy(from, to).with_context(|| format!("copying {}", from.display()))?;
    }
    Ok(())
}

const TYPES: [&str; 4] = ["local", "ci", "preview", "live"];

/// The reference chart (subcharts vendored so helm can render) and `n` env files spread over the
/// four env types, each overriding a realistic handful of values.
fn generate(tools: &Tools, root: &Path, dir: &Path, n: usize) -> Result<PathBuf> {
    let tree = dir.join("tree");
    copy(&root.join("charts"), &tree.join("charts"))?;
    copy(&root.join("stack.yaml"), &tree.join("stack.yaml"))?;
    let _ = std::fs::remove_dir_all(tree.join("charts/app/charts"));
    let out = tools
        .command(tools.bin("helm"))
        .args(["dependency", "build", "charts/app"])
        .current_dir(&tree)
        .output()?;
    if !out.status.success() {
        bail!(
            "helm dependency build: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    copy(&root.join("envs/aws.yaml"), &tree.join("envs/aws.yaml"))?;
    for t in TYPES {
        copy(
            &root.join(format!("envs/{t}/default.yaml")),
            &tree.join(format!("envs/{t}/default.yaml")),
        )?;
    }
    for i in 0..n {
        let t = TYPES[i % TYPES.len()];
        let text = format!(
            "# generated env {i}\ningress:\n  host: env{i}.example.com\nbackend-api:\n  replicaCount: {}\n  image:\n    tag: \"1.{i}.0\"\n  env:\n    TENANT: t{i}\n    FEATURE_X: \"on\"\n  podAnnotations:\n    team: core\nbackend-ws:\n  enabled: {}\n  image:\n    tag: \"1.{i}.0\"\nfrontend:\n  image:\n    tag: \"1.{i}.0\"\n",
            1 + i % 3,
            i % 2 == 0
        );
        std::fs::write(tree.join(format!("envs/{t}/env-{i:04}.yaml")), text)?;
    }
    Ok(tree)
}

fn run_stack(stack: &Path, tree: &Path) -> Result<Duration> {
    let start = Instant::now();
    let out = Command::new(stack)
        .args(["validate", "envs", "--format", "json"])
        .current_dir(tree)
        .output()?;
    let took = start.elapsed();
    if out.status.code() != Some(0) {
        bail!(
            "stack validate envs failed on the generated tree:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

/// `helm template` for the first `count` env files, one after another, as the glue does.
fn helm_loop(tools: &Tools, tree: &Path, count: usize) -> Result<Duration> {
    let mut envs = Vec::new();
    for t in TYPES {
        for e in std::fs::read_dir(tree.join("envs").join(t))? {
            let p = e?.path();
            if p.file_name().is_some_and(|n| n != "default.yaml") {
                envs.push((t, p));
            }
        }
    }
    envs.sort_by(|a, b| a.1.cmp(&b.1));
    let start = Instant::now();
    for (t, p) in envs.iter().take(count) {
        let out = tools
            .command(tools.bin("helm"))
            .args([
                "template",
                "bench",
                "charts/app",
                "-f",
                "envs/aws.yaml",
                "-f",
                &format!("envs/{t}/default.yaml"),
                "-f",
            ])
            .arg(p)
            .current_dir(tree)
            .output()?;
        if !out.status.success() {
            bail!(
                "helm template failed for {}: {}",
                p.display(),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    Ok(start.elapsed())
}

fn release_stack(root: &Path) -> Result<PathBuf> {
    let status = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["build", "--release", "--quiet", "-p", "stack"])
        .current_dir(root)
        .status()?;
    if !status.success() {
        bail!("cargo build --release failed");
    }
    Ok(root.join("target/release/stack"))
}

/// DOCKER_HOST of the running rig.
fn rig_docker_host() -> Result<String> {
    rig_env_vars()?
        .into_iter()
        .find_map(|(k, v)| (k == "DOCKER_HOST").then_some(v))
        .context("the rig env has no DOCKER_HOST")
}

fn timed(cmd: &mut Command) -> Result<Duration> {
    let start = Instant::now();
    let out = cmd.output()?;
    let took = start.elapsed();
    if !out.status.success() {
        bail!(
            "{cmd:?} failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(took)
}

fn build(args: &[String]) -> Result<()> {
    let sizes: Vec<usize> = flag(args, "--sizes")
        .unwrap_or("10000,100000")
        .split(',')
        .map(|s| s.trim().parse().context("--sizes takes numbers"))
        .collect::<Result<_>>()?;
    let root = tools::project_root();
    let stack = release_stack(&root)?;
    let host = rig_docker_host()?;
    println!(
        "stack build cache decision vs docker build, unchanged context (same run, rig dockerd)"
    );
    println!(
        "{:>8}  {:>14}  {:>16}  {:>8}",
        "files", "stack build", "docker build", "ratio"
    );
    for &n in &sizes {
        let dir = tempdir()?;
        let ctx = dir.join("ctx");
        for i in 0..n {
            // 100 files per directory, like a source tree.
            let sub = ctx.join(format!("src/d{:04}", i / 100));
            if i % 100 == 0 {
                std::fs::create_dir_all(&sub)?;
            }
            std::fs::write(sub.join(format!("f{i}.txt")), format!("file {i}\n"))?;
        }
        std::fs::write(ctx.join("Dockerfile"), "FROM busybox:latest\nCOPY . /ctx\n")?;
        let tag = format!("bench-{n}");
        std::fs::write(
            dir.join("stack.yaml"),
            format!("apiVersion: stack/v1\nimages:\n  big:\n    context: ctx\n    repository: stack-bench/{tag}\n"),
        )?;
        let stack_cmd = || {
            let mut c = Command::new(&stack);
            c.args(["build", "--format", "json"])
                .current_dir(&dir)
                .env("DOCKER_HOST", &host);
            c
        };
        // First build fills the daemon and the stat cache; then time the unchanged case.
        timed(&mut stack_cmd())?;
        std::thread::sleep(Duration::from_secs(2)); // past the stat cache's racy window
        timed(&mut stack_cmd())?;
        let mut ours: Vec<Duration> = (0..3)
            .map(|_| timed(&mut stack_cmd()))
            .collect::<Result<_>>()?;
        ours.sort();
        let docker_cmd = || {
            let mut c = Command::new("docker");
            c.args([
                "-H",
                &host,
                "build",
                "-q",
                "-t",
                &format!("stack-bench/docker-{tag}"),
                ".",
            ])
            .current_dir(&ctx)
            .env("DOCKER_BUILDKIT", "0");
            c
        };
        timed(&mut docker_cmd())?; // warm: the layer cache now holds this context
        let theirs = timed(&mut docker_cmd())?;
        println!(
            "{n:>8}  {:>12.0}ms  {:>14.0}ms  {:>7.1}×",
            ms(ours[1]),
            ms(theirs),
            theirs.as_secs_f64() / ours[1].as_secs_f64()
        );
        for repo in [
            format!("stack-bench/docker-{tag}"),
            format!("stack-bench/{tag}"),
        ] {
            let ids = Command::new("docker")
                .args(["-H", &host, "images", "-q", &repo])
                .output()?;
            for id in String::from_utf8_lossy(&ids.stdout).lines() {
                let _ = Command::new("docker")
                    .args(["-H", &host, "rmi", "-f", id])
                    .output();
            }
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
    Ok(())
}

fn rig_env_vars() -> Result<Vec<(String, String)>> {
    let env = std::fs::read_to_string(tools::cache_dir().join("rig/env"))
        .context("the rig is not up: `cargo xtask rig up`")?;
    Ok(env
        .lines()
        .filter_map(|l| l.strip_prefix("export "))
        .filter_map(|l| l.split_once('='))
        .filter(|(k, _)| *k != "PATH")
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect())
}

fn up(args: &[String]) -> Result<()> {
    let edits: usize = flag(args, "--edits").unwrap_or("50").parse()?;
    let root = tools::project_root();
    let stack = release_stack(&root)?;
    let vars = rig_env_vars()?;
    let bin = tools::cache_dir().join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempdir()?;
    for item in ["stack.yaml", "charts", "envs", "demo"] {
        copy(&root.join(item), &dir.join(item))?;
    }
    let _ = std::fs::remove_dir_all(dir.join("charts/app/charts"));
    let ns = format!("bench-up-{}", std::process::id());
    let container_fs = dir.join("container-fs");
    let dest = container_fs.join("app/public");
    std::fs::create_dir_all(&dest)?;
    let yaml = std::fs::read_to_string(dir.join("stack.yaml"))?
        .replace(
            "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
            "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
        )
        .replace("dev:\n  env: local/dev\n", &format!("dev:\n  env: local/dev\n  namespace: {ns}\n"))
        .replace("dest: /app/public", &format!("dest: {}", dest.display()));
    std::fs::write(dir.join("stack.yaml"), yaml)?;
    let cmd = |program: &Path| {
        let mut c = Command::new(program);
        c.current_dir(&dir)
            .envs(vars.iter().cloned())
            .env("PATH", &path)
            .env("NO_COLOR", "1");
        c
    };
    let kubectl = bin.join("kubectl");
    // What the simulated container serves on port 8000: its filesystem, over HTTP/1.0.
    let web_root = container_fs.join("app");
    let server = std::net::TcpListener::bind("127.0.0.1:0")?;
    let server_port = server.local_addr()?.port();
    std::thread::spawn(move || {
        use std::io::{BufRead, Write};
        for mut conn in server.incoming().flatten() {
            let mut request = String::new();
            let _ = std::io::BufReader::new(&conn).read_line(&mut request);
            let path = request
                .split_whitespace()
                .nth(1)
                .unwrap_or("/")
                .trim_start_matches('/')
                .to_owned();
            let body = std::fs::read_to_string(web_root.join(path)).unwrap_or_default();
            let _ = conn.write_all(
                format!(
                    "HTTP/1.0 200 OK\r\nContent-Length: {}\r\n\r\n{body}",
                    body.len()
                )
                .as_bytes(),
            );
        }
    });
    let exec = format!(
        r#"{{"apiVersion":"v1","kind":"List","items":[
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterExec","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"execs":[{{"local":{{"workDir":"{}"}}}}]}}}},
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterPortForward","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"forwards":[{{"ports":[8000],"target":{{"address":"127.0.0.1","port":{server_port}}}}}]}}}}
        ]}}"#,
        container_fs.display()
    );
    std::fs::write(dir.join("exec.json"), exec)?;
    timed(cmd(&kubectl).args(["--context", "stack-rig", "apply", "-f", "exec.json"]))?;

    // First converge (builds, deploys), then the up-to-date case.
    timed(cmd(&stack).args(["up", "--once"]))?;
    let mut again: Vec<Duration> = (0..5)
        .map(|_| timed(cmd(&stack).args(["up", "--once"])))
        .collect::<Result<_>>()?;
    again.sort();

    let mut child = cmd(&stack)
        .arg("up")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()?;
    let stderr = child.stderr.take().expect("piped");
    // Ctrl-C for the running `stack up` however this function ends (a failed edit included).
    struct Interrupt(std::process::Child);
    impl Drop for Interrupt {
        fn drop(&mut self) {
            let _ = Command::new("kill")
                .args(["-INT", &self.0.id().to_string()])
                .status();
            let _ = self.0.wait();
        }
    }
    let child = Interrupt(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    // Wait for the watcher and for stack's own port-forward to the backend.
    let deadline = Instant::now() + Duration::from_secs(120);
    let (mut watching, mut port) = (false, None);
    while !(watching && port.is_some()) {
        let l = rx
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .context("stack up did not start watching and forwarding")?;
        watching |= l.contains("watching ");
        if let Some(rest) = l.split("backend-api 8000 → http://127.0.0.1:").nth(1) {
            port = rest.trim().parse::<u16>().ok();
        }
    }
    let port = port.expect("loop ends with a port");
    // GET through the port-forward, as a browser would.
    // Reads by Content-Length: a port-forward stream need not close when the target does.
    let served = |path: &str| -> Option<String> {
        use std::io::{Read, Write};
        let mut c = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
        c.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        c.write_all(format!("GET /{path} HTTP/1.0\r\n\r\n").as_bytes())
            .ok()?;
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            let text = String::from_utf8_lossy(&buf).into_owned();
            if let Some((head, body)) = text.split_once("\r\n\r\n") {
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("Content-Length: "))
                    .and_then(|n| n.trim().parse().ok())?;
                if body.len() >= len {
                    return Some(body[..len].to_owned());
                }
            }
            let n = c.read(&mut chunk).ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(&chunk[..n]);
        }
    };
    let file = dir.join("demo/backend/public/api/health.json");
    // One request through the forward, content unchanged: what each poll below costs.
    let mut request: Vec<Duration> = (0..20)
        .map(|_| {
            let t = Instant::now();
            let _ = served("public/api/health.json");
            t.elapsed()
        })
        .collect();
    request.sort();
    let mut lat = Vec::new();
    let mut sync_ms: Vec<u64> = Vec::new();
    for i in 0..edits {
        let body = format!("{{\"edit\": {i}}}\n");
        let start = Instant::now();
        std::fs::write(&file, &body)?;
        loop {
            if served("public/api/health.json").as_deref() == Some(body.as_str()) {
                break;
            }
            if start.elapsed() > Duration::from_secs(10) {
                bail!("edit {i} did not arrive within 10 s");
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        lat.push(start.elapsed());
        std::thread::sleep(Duration::from_millis(100));
        // stack's own figure for the sync step (exec + tar into the container).
        for l in rx.try_iter() {
            if let Some(n) = l
                .rsplit_once(" in ")
                .filter(|_| l.contains(": synced "))
                .and_then(|(_, t)| t.trim().strip_suffix(" ms"))
                .and_then(|n| n.parse().ok())
            {
                sync_ms.push(n);
            }
        }
    }
    sync_ms.sort_unstable();
    drop(child);
    let _ = cmd(&stack).args(["down"]).output();
    let _ = cmd(&kubectl)
        .args([
            "--context",
            "stack-rig",
            "delete",
            "namespace",
            &ns,
            "--wait=false",
        ])
        .output();
    let _ = cmd(&kubectl)
        .args([
            "--context",
            "stack-rig",
            "delete",
            "clusterexec,clusterportforward",
            &ns,
        ])
        .output();
    lat.sort();
    let pct = |p: f64| lat[((lat.len() as f64 * p).ceil() as usize).clamp(1, lat.len()) - 1];
    println!("stack up on the rig (real API server + controllers, kwok-simulated kubelet)");
    println!(
        "  up-to-date `stack up --once` to ready: median {:.0} ms of 5 (target ≤ 2000 ms)",
        ms(again[2])
    );
    println!(
        "  live sync, save → new content served through stack's port-forward, {edits} edits: p50 {:.0} ms, p95 {:.0} ms, max {:.0} ms (targets p50 ≤ 150, p95 ≤ 400)",
        ms(pct(0.5)),
        ms(pct(0.95)),
        ms(*lat.last().unwrap())
    );
    println!(
        "  of which: the watch window {} ms; the sync step (exec + tar) p50 {} ms ({} syncs); one request through the forward p50 {:.0} ms",
        50,
        sync_ms.get(sync_ms.len() / 2).copied().unwrap_or_default(),
        sync_ms.len(),
        ms(request[request.len() / 2])
    );
    println!("  anchors: Tilt waits 200 ms of quiet and Skaffold 1000 ms before starting a sync");
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}

/// The glue `stack test ci` replaces: the reference stack's six checks, one after another, each
/// failing the script by its exit status (`set -e`).
const GLUE: &str = r#"set -eu
k() { kubectl --context stack-rig --kubeconfig "$KUBECONFIG" -n "$NS" "$@"; }
svc="$RELEASE-backend-api"
# backend rolled out
k wait --for=condition=Available "deployment/$RELEASE-backend-api" --timeout=60s >/dev/null
# api service has endpoints
i=0
until [ -n "$(k get endpointslices -l "kubernetes.io/service-name=$svc" -o jsonpath='{.items[*].endpoints[?(@.conditions.ready==true)].addresses[0]}')" ]; do
  i=$((i + 1)); [ "$i" -lt 60 ] || { echo "no ready endpoints for $svc" >&2; exit 1; }; sleep 1
done
# env config present, labelled with the release
[ "$(k get configmap app-env -o jsonpath='{.metadata.labels.app\.kubernetes\.io/instance}')" = "$RELEASE" ]
# api answers, through a port-forward (kubectl itself in the background: `$!` must be its pid)
kubectl --context stack-rig --kubeconfig "$KUBECONFIG" -n "$NS" port-forward "svc/$svc" :8000 >pf.out 2>&1 &
pf=$!
trap 'kill $pf 2>/dev/null' EXIT
i=0
until port=$(sed -n 's/^Forwarding from 127\.0\.0\.1:\([0-9]*\) .*/\1/p' pf.out | head -n1) && [ -n "$port" ]; do
  i=$((i + 1)); [ "$i" -lt 300 ] || { cat pf.out >&2; exit 1; }; sleep 0.1
done
export BASE_URL="http://127.0.0.1:$port"
curl -sf --retry 10 --retry-connrefused --retry-delay 1 "$BASE_URL/api/version.json" | grep -q '"version"'
# backend logged the request
i=0
until k logs -l app.kubernetes.io/name=backend-api -c backend-api | grep -q 'api/version\.json'; do
  i=$((i + 1)); [ "$i" -lt 10 ] || { echo "api/version.json not logged" >&2; exit 1; }; sleep 1
done
# e2e suite
sh -c 'busybox wget -q -O- "$BASE_URL/api/version.json"' >/dev/null
"#;

/// One run of a command: its wall time, stdout, and each stderr line with when it arrived.
struct Run {
    wall: Duration,
    stdout: String,
    stderr: Vec<(Duration, String)>,
}

fn run_timed(cmd: &mut Command) -> Result<Run> {
    use std::io::{BufRead, Read};
    let start = Instant::now();
    let mut child = cmd
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .with_context(|| format!("starting {cmd:?}"))?;
    let stderr = child.stderr.take().expect("piped");
    let lines = std::thread::spawn(move || {
        std::io::BufReader::new(stderr)
            .lines()
            .map_while(Result::ok)
            .map(|l| (start.elapsed(), l))
            .collect::<Vec<_>>()
    });
    let mut stdout = String::new();
    child
        .stdout
        .take()
        .expect("piped")
        .read_to_string(&mut stdout)?;
    let status = child.wait()?;
    let wall = start.elapsed();
    let stderr = lines.join().expect("stderr reader");
    if !status.success() {
        let err: Vec<&str> = stderr.iter().map(|(_, l)| l.as_str()).collect();
        bail!("{cmd:?} failed ({status}):\n{stdout}\n{}", err.join("\n"));
    }
    Ok(Run {
        wall,
        stdout,
        stderr,
    })
}

/// A `stack test --format json` run: every check passed, or an error naming those that did not.
/// Returns the report and the checks' (name, seconds).
fn passed(run: &Run, expected: usize) -> Result<(Json, Vec<(String, f64)>)> {
    let report = Json::parse(&run.stdout).context("stack's JSON report")?;
    let checks: Vec<(String, String, f64)> = report
        .get("checks")
        .map(Json::items)
        .unwrap_or_default()
        .iter()
        .map(|c| {
            (
                c.get("name").and_then(Json::str).unwrap_or("?").to_owned(),
                c.get("status")
                    .and_then(Json::str)
                    .unwrap_or("?")
                    .to_owned(),
                c.get("seconds").and_then(Json::num).unwrap_or(f64::NAN),
            )
        })
        .collect();
    let failed: Vec<String> = checks
        .iter()
        .filter(|(_, s, _)| s != "passed")
        .map(|(n, s, _)| format!("{n}: {s}"))
        .collect();
    let status = report.get("status").and_then(Json::str).unwrap_or("?");
    if status != "passed" || !failed.is_empty() || checks.len() != expected {
        bail!(
            "stack test reported {status} with {} of {expected} checks ({failed:?}):\n{}",
            checks.len(),
            run.stdout
        );
    }
    Ok((report, checks.into_iter().map(|(n, _, s)| (n, s)).collect()))
}

/// When (since the start) the first check started and the last one finished, from the JSON
/// events on stderr.
fn check_span(run: &Run) -> Option<(Duration, Duration)> {
    let at = |event: &str| {
        let tag = format!("\"event\":\"{event}\"");
        run.stderr
            .iter()
            .filter(move |(_, l)| l.contains(&tag))
            .map(|(t, _)| *t)
    };
    Some((at("check-started").min()?, at("check-finished").max()?))
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn median_f(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// An RFC 3339 UTC timestamp of now, as CRI log lines carry.
fn rfc3339_now() -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() as libc::time_t;
    // SAFETY: gmtime_r writes only into the tm it is given.
    let mut tm: libc::tm = unsafe { std::mem::zeroed() };
    unsafe { libc::gmtime_r(&secs, &mut tm) };
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{:09}Z",
        tm.tm_year + 1900,
        tm.tm_mon + 1,
        tm.tm_mday,
        tm.tm_hour,
        tm.tm_min,
        tm.tm_sec,
        now.subsec_nanos()
    )
}

/// The container behind port 8000 of the test release's pods (kwok forwards to it): answers
/// `/api/version.json` and logs each request to the container's log file, as httpd -v does.
/// Stops when dropped.
struct Container {
    port: u16,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Container {
    fn start(log: PathBuf) -> Result<Container> {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0")?;
        let port = listener.local_addr()?.port();
        listener.set_nonblocking(true)?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = stop.clone();
        std::thread::spawn(move || {
            while !flag.load(Ordering::Relaxed) {
                let Ok((mut conn, _)) = listener.accept() else {
                    std::thread::sleep(Duration::from_millis(5));
                    continue;
                };
                let _ = conn.set_nonblocking(false);
                let mut buf = [0u8; 4096];
                let n = conn.read(&mut buf).unwrap_or(0);
                let request = String::from_utf8_lossy(&buf[..n]).into_owned();
                let path = request.split(' ').nth(1).unwrap_or("?").to_owned();
                if let Ok(mut f) = std::fs::OpenOptions::new().append(true).open(&log) {
                    let _ = writeln!(f, "{} stdout F [::1]:41000: url:{path}", rfc3339_now());
                }
                let (status, body) = if path == "/api/version.json" {
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
        });
        Ok(Container { port, stop })
    }
}

impl Drop for Container {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
    }
}

/// Runs its closure when dropped: the bench's cleanup, however it ends.
struct Finally<F: FnMut()>(F);

impl<F: FnMut()> Drop for Finally<F> {
    fn drop(&mut self) {
        (self.0)()
    }
}

fn test(args: &[String]) -> Result<()> {
    let runs: usize = flag(args, "--runs").unwrap_or("7").parse()?;
    let root = tools::project_root();
    let stack = release_stack(&root)?;
    let vars = rig_env_vars()?;
    let var = |k: &str| {
        vars.iter()
            .find_map(|(n, v)| (n == k).then(|| v.clone()))
            .with_context(|| format!("the rig env has no {k}"))
    };
    let (host, kubeconfig) = (var("DOCKER_HOST")?, var("KUBECONFIG")?);
    let registry = var("STACK_RIG_REGISTRY").unwrap_or_else(|_| "127.0.0.1:25000".into());
    let bin = tools::cache_dir().join("bin");
    let path = format!(
        "{}:{}",
        bin.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let dir = tempdir()?;
    let id = format!("bench{}", std::process::id());
    let ns = format!("shop-ci-{id}");
    let release = "shop-test";
    // Two copies of the reference stack on the same release: its own checks, and 20 sleepers.
    let (main, par) = (dir.join("main"), dir.join("parallel"));
    for d in [&main, &par] {
        for item in ["stack.yaml", "charts", "envs", "demo"] {
            copy(&root.join(item), &d.join(item))?;
        }
        let _ = std::fs::remove_dir_all(d.join("charts/app/charts"));
    }
    let yaml = std::fs::read_to_string(main.join("stack.yaml"))?.replace(
        "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
        "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
    );
    let Some(test_at) = yaml.find("\ntest:\n") else {
        bail!("the reference stack.yaml has no top-level `test:`")
    };
    if !yaml.contains("provider: existing") {
        bail!("the reference stack.yaml's cluster is not the kind one this bench rewrites");
    }
    let namespace = format!("test:\n  ci:\n    namespace: {ns}\n");
    std::fs::write(
        main.join("stack.yaml"),
        yaml.replacen("\ntest:\n", &format!("\n{namespace}"), 1),
    )?;
    std::fs::write(
        par.join("stack.yaml"),
        format!(
            "{}{namespace}  checks: []\n  forwards: {{}}\n  files: [bench/parallel.yaml]\n",
            &yaml[..=test_at]
        ),
    )?;
    let sleeps: Vec<String> = (1..=20)
        .map(|i| format!("{:.1}", i as f64 / 10.0))
        .collect();
    std::fs::create_dir_all(par.join("bench"))?;
    std::fs::write(
        par.join("bench/parallel.yaml"),
        sleeps
            .iter()
            .map(|s| format!("- name: sleep {s}\n  command:\n    run: [sleep, \"{s}\"]\n"))
            .collect::<String>(),
    )?;
    std::fs::write(main.join("glue.sh"), GLUE)?;

    let cmd = |program: &Path, cwd: &Path| {
        let mut c = Command::new(program);
        c.current_dir(cwd)
            .envs(vars.iter().cloned())
            .env("PATH", &path)
            .env("NO_COLOR", "1")
            .env_remove("GITHUB_ACTIONS");
        c
    };
    let (helm, kubectl) = (bin.join("helm"), bin.join("kubectl"));

    // Publish the chart and the images, as a release pipeline would.
    let published = format!("{registry}/{id}");
    timed(cmd(&helm, &main).args(["dependency", "build", "charts/app"]))?;
    timed(cmd(&helm, &main).args(["package", "charts/app", "-d", "dist"]))?;
    timed(cmd(&helm, &main).args([
        "push",
        "dist/app-0.1.0.tgz",
        &format!("oci://{published}"),
        "--plain-http",
    ]))?;
    let _ = std::fs::remove_dir_all(main.join("charts/app/charts"));
    let mut images = Vec::new();
    for name in ["backend", "frontend"] {
        let reference = format!("{published}/{name}:1.0.0");
        let docker = Path::new("docker");
        timed(cmd(docker, &main).args(["-H", &host, "tag", "busybox:latest", &reference]))?;
        timed(cmd(docker, &main).args(["-H", &host, "push", &reference]))?;
        images.push(format!("{name}={reference}"));
    }
    let chart = format!("oci://{published}/app");
    let ci_args = |extra: &[&str]| -> Vec<String> {
        let mut a: Vec<String> = ["test", "ci", "--chart", &chart, "--chart-version", "0.1.0"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for i in &images {
            a.extend(["--image".to_owned(), i.clone()]);
        }
        a.extend(["--format", "json"].map(String::from));
        a.extend(extra.iter().map(|s| s.to_string()));
        a
    };

    // kwok: port 8000 of the namespace's pods → the local container; its logs → a file.
    let log = dir.join("backend-api.log");
    std::fs::write(
        &log,
        "2026-01-01T00:00:00.000000000Z stdout F httpd: started\n",
    )?;
    let container = Container::start(log.clone())?;
    std::fs::write(
        dir.join("kwok.json"),
        format!(
            r#"{{"apiVersion":"v1","kind":"List","items":[
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterPortForward","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"forwards":[{{"ports":[8000],"target":{{"address":"127.0.0.1","port":{port}}}}}]}}}},
          {{"apiVersion":"kwok.x-k8s.io/v1alpha1","kind":"ClusterLogs","metadata":{{"name":"{ns}"}},"spec":{{"selector":{{"matchNamespaces":["{ns}"]}},"logs":[{{"containers":["backend-api"],"logsFile":"{log}"}}]}}}}
        ]}}"#,
            port = container.port,
            log = log.display()
        ),
    )?;
    let _cleanup = Finally(|| {
        // The release and the namespace stack created, then the kwok objects and the temp dirs.
        if let Ok(o) = cmd(&stack, &main).args(["test", "clean", "ci"]).output() {
            if !o.status.success() {
                eprintln!(
                    "warning: `stack test clean ci` failed: {}",
                    String::from_utf8_lossy(&o.stderr)
                );
            }
        }
        let _ = cmd(&kubectl, &dir)
            .args([
                "--context",
                "stack-rig",
                "delete",
                "clusterportforward,clusterlogs",
                &ns,
                "--ignore-not-found",
            ])
            .output();
        let _ = std::fs::remove_dir_all(&dir);
    });
    timed(cmd(&kubectl, &dir).args(["--context", "stack-rig", "apply", "-f", "kwok.json"]))?;

    // Deploy once and keep the release.
    let deploy = run_timed(cmd(&stack, &main).args(ci_args(&["--keep"])))?;
    passed(&deploy, 6).context("the deploy run (`stack test ci --keep`)")?;
    println!(
        "deployed once with `stack test ci --keep` in {:.1} s (not part of the comparison)",
        deploy.wall.as_secs_f64()
    );

    let ours = || -> Result<(Run, Vec<(String, f64)>)> {
        let run = run_timed(cmd(&stack, &main).args(ci_args(&["--no-deploy"])))?;
        let (_, checks) = passed(&run, 6)?;
        Ok((run, checks))
    };
    let glue = || {
        run_timed(
            cmd(Path::new("sh"), &main)
                .arg("glue.sh")
                .env("KUBECONFIG", &kubeconfig)
                .env("NS", &ns)
                .env("RELEASE", release),
        )
    };
    // One unmeasured run of each (page cache, helm's and kubectl's caches), then alternate.
    ours()?;
    glue()?;
    let (mut ours_wall, mut glue_wall) = (vec![], vec![]);
    let (mut setup, mut phase, mut tail) = (vec![], vec![], vec![]);
    let mut per_check: Vec<Vec<(String, f64)>> = Vec::new();
    for _ in 0..runs {
        let (run, checks) = ours()?;
        ours_wall.push(run.wall);
        if let Some((first, last)) = check_span(&run) {
            setup.push(first);
            phase.push(last - first);
            tail.push(run.wall.saturating_sub(last));
        }
        per_check.push(checks);
        glue_wall.push(glue()?.wall);
    }

    // Parallelism: 20 sleepers, all at once.
    let par_runs = 3;
    let (mut par_wall, mut par_span, mut par_report, mut par_slowest, mut par_sum) =
        (vec![], vec![], vec![], vec![], vec![]);
    for _ in 0..par_runs {
        let run = run_timed(cmd(&stack, &par).args(ci_args(&["--no-deploy", "--jobs", "20"])))?;
        let (report, checks) = passed(&run, 20)?;
        let (first, last) =
            check_span(&run).context("no check-started/check-finished events on stderr")?;
        par_wall.push(run.wall.as_secs_f64());
        par_span.push((last - first).as_secs_f64());
        par_report.push(
            report
                .get("seconds")
                .and_then(Json::num)
                .unwrap_or(f64::NAN),
        );
        par_slowest.push(checks.iter().map(|c| c.1).fold(0.0, f64::max));
        par_sum.push(checks.iter().map(|c| c.1).sum::<f64>());
    }

    let (ours_m, glue_m) = (median(ours_wall.clone()), median(glue_wall.clone()));
    let range = |v: &[Duration]| {
        format!(
            "{:.0}–{:.0} ms",
            ms(*v.iter().min().unwrap()),
            ms(*v.iter().max().unwrap())
        )
    };
    println!("stack test: the reference stack's 6 checks on one kept release (rig, alternating, median of {runs})");
    println!("  {:<58}  {:>8}  {:>14}", "", "median", "range");
    println!(
        "  {:<58}  {:>5.0} ms  {:>14}",
        "stack test ci --no-deploy (test.jobs: the default 4)",
        ms(ours_m),
        range(&ours_wall)
    );
    println!(
        "  {:<58}  {:>5.0} ms  {:>14}",
        "glue: kubectl wait/get, port-forward + curl, logs | grep",
        ms(glue_m),
        range(&glue_wall)
    );
    println!(
        "  ratio glue/stack: {:.2}×  (goal ≥ 3×)",
        glue_m.as_secs_f64() / ours_m.as_secs_f64()
    );
    if !setup.is_empty() {
        println!(
            "  stack's run: start → first check {:.0} ms, check phase {:.0} ms, last check → exit {:.0} ms (medians)",
            ms(median(setup)),
            ms(median(phase)),
            ms(median(tail))
        );
    }
    let names: Vec<String> = per_check[0].iter().map(|c| c.0.clone()).collect();
    let per: Vec<String> = names
        .iter()
        .enumerate()
        .map(|(i, n)| {
            format!(
                "{n} {:.0}",
                1000.0 * median_f(per_check.iter().map(|c| c[i].1).collect())
            )
        })
        .collect();
    println!("  per check (ms, median): {}", per.join(", "));
    let (span, slowest) = (median_f(par_span), median_f(par_slowest));
    println!("parallelism: 20 independent command checks sleeping 0.1…2.0 s, --jobs 20 (median of {par_runs})");
    println!(
        "  slowest check {slowest:.2} s; sum of checks {:.1} s; check phase (first start → last end) {span:.2} s; report seconds {:.2} s; wall {:.2} s",
        median_f(par_sum),
        median_f(par_report.clone()),
        median_f(par_wall.clone())
    );
    println!(
        "  check phase / slowest: {:.2}×  (goal < 2×); report seconds / slowest: {:.2}×; wall / slowest: {:.2}×",
        span / slowest,
        median_f(par_report) / slowest,
        median_f(par_wall) / slowest
    );
    drop(container);
    Ok(())
}

/// Just enough JSON for stack's reports (xtask has no serde).
#[derive(Debug)]
enum Json {
    /// `null`, `true`, `false`: nothing here reads them.
    Literal,
    Num(f64),
    Str(String),
    Arr(Vec<Json>),
    Obj(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json> {
        let mut p = JsonParser {
            b: text.as_bytes(),
            i: 0,
        };
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            bail!("trailing characters at byte {}", p.i);
        }
        Ok(v)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Obj(m) => m.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn items(&self) -> &[Json] {
        match self {
            Json::Arr(v) => v,
            _ => &[],
        }
    }

    fn str(&self) -> Option<&str> {
        match self {
            Json::Str(s) => Some(s),
            _ => None,
        }
    }

    fn num(&self) -> Option<f64> {
        match self {
            Json::Num(n) => Some(*n),
            _ => None,
        }
    }
}

struct JsonParser<'a> {
    b: &'a [u8],
    i: usize,
}

impl JsonParser<'_> {
    fn ws(&mut self) {
        while self.b.get(self.i).is_some_and(u8::is_ascii_whitespace) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        self.ws();
        let hit = self.b.get(self.i) == Some(&c);
        self.i += usize::from(hit);
        hit
    }

    fn value(&mut self) -> Result<Json> {
        self.ws();
        let rest = &self.b[self.i..];
        for word in ["null", "true", "false"] {
            if rest.starts_with(word.as_bytes()) {
                self.i += word.len();
                return Ok(Json::Literal);
            }
        }
        match rest.first() {
            Some(b'"') => Ok(Json::Str(self.string()?)),
            Some(b'[') => {
                self.i += 1;
                let mut v = Vec::new();
                if !self.eat(b']') {
                    loop {
                        v.push(self.value()?);
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            bail!("expected , or ] at byte {}", self.i);
                        }
                    }
                }
                Ok(Json::Arr(v))
            }
            Some(b'{') => {
                self.i += 1;
                let mut m = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let k = self.string()?;
                        if !self.eat(b':') {
                            bail!("expected : at byte {}", self.i);
                        }
                        m.push((k, self.value()?));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            bail!("expected , or }} at byte {}", self.i);
                        }
                    }
                }
                Ok(Json::Obj(m))
            }
            Some(_) => {
                let n = rest
                    .iter()
                    .take_while(|c| c.is_ascii_digit() || b"+-.eE".contains(c))
                    .count();
                let text = std::str::from_utf8(&rest[..n])?;
                self.i += n;
                Ok(Json::Num(text.parse().with_context(|| {
                    format!("bad JSON value at byte {}", self.i - n)
                })?))
            }
            None => bail!("unexpected end of JSON"),
        }
    }

    fn string(&mut self) -> Result<String> {
        if self.b.get(self.i) != Some(&b'"') {
            bail!("expected a string at byte {}", self.i);
        }
        self.i += 1;
        let mut out = Vec::new();
        loop {
            let Some(&c) = self.b.get(self.i) else {
                bail!("unterminated string")
            };
            self.i += 1;
            match c {
                b'"' => return Ok(String::from_utf8_lossy(&out).into_owned()),
                b'\\' => {
                    let e = *self.b.get(self.i).context("unterminated escape")?;
                    self.i += 1;
                    let ch = match e {
                        b'n' => '\n',
                        b't' => '\t',
                        b'r' => '\r',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'u' => {
                            let hex = std::str::from_utf8(
                                self.b.get(self.i..self.i + 4).context("short \\u escape")?,
                            )?;
                            self.i += 4;
                            char::from_u32(u32::from_str_radix(hex, 16)?).unwrap_or('\u{fffd}')
                        }
                        other => other as char,
                    };
                    let mut buf = [0u8; 4];
                    out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                }
                _ => out.push(c),
            }
        }
    }
}
