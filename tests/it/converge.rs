//! Crash convergence on the rig (tier "rig"), the bounded CI slice of `cargo xtask reliability
//! converge` (xtask/src/reliability.rs, which runs N ≥ 20 kill points per command): `stack up
//! --once` and `stack build --deliver` are SIGKILLed at random points, then the same command
//! again must converge to what an uninterrupted run gives: exit 0, the same content-addressed
//! images (in the registry), the release `deployed` and nothing `pending-*`, no `*.tmp*` left
//! under `.stack/`, no descendant process left behind.
//!
//! When the kill lands while helm is upgrading, the orphaned helm finishes the upgrade; the rerun
//! adopts that revision (its description carries the token of stack's recorded intent) instead of
//! upgrading again: exactly one new revision per change.

use crate::support;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TRIALS: usize = 3;

struct Project {
    dir: tempfile::TempDir,
    twin: Option<tempfile::TempDir>,
    env: support::RigEnv,
    namespace: String,
}

fn rig() -> Option<support::RigEnv> {
    let env = support::rig_env().and_then(|e| support::rig_docker().map(|_| e));
    if !support::require("rig", env.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    env.ok()
}

fn suffix(dir: &Path) -> String {
    dir.file_name()
        .unwrap()
        .to_string_lossy()
        .to_lowercase()
        .replace(['.', '_'], "")
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

impl Project {
    /// The reference stack on the rig's cluster (provider `existing`), in its own namespace.
    fn up() -> Option<Project> {
        let env = rig()?;
        let dir = tempfile::tempdir().unwrap();
        for item in ["stack.yaml", "charts", "envs", "demo"] {
            support::copy(&support::project_root().join(item), &dir.path().join(item));
        }
        let _ = std::fs::remove_dir_all(dir.path().join("charts/app/charts"));
        let namespace = format!("converge-{}", suffix(dir.path()));
        let yaml = std::fs::read_to_string(dir.path().join("stack.yaml")).unwrap().replace(
            "cluster:\n  provider: kind\n  name: stack\n  config: kind/cluster.yaml\n",
            "cluster:\n  provider: existing\n  context: stack-rig\n  allowedContexts: [stack-rig]\n  registry:\n    hostPort: 25000\n",
        ).replace(
            "dev:\n  env: local/dev\n",
            &format!("dev:\n  env: local/dev\n  namespace: {namespace}\n"),
        );
        assert!(
            yaml.contains(&namespace),
            "stack.yaml changed shape:\n{yaml}"
        );
        std::fs::write(dir.path().join("stack.yaml"), yaml).unwrap();
        Some(Project {
            dir,
            twin: None,
            env,
            namespace,
        })
    }

    /// The demo images under a repository prefix of their own, and a never-killed twin of the
    /// project whose uninterrupted run is the reference.
    fn build() -> Option<Project> {
        let env = rig()?;
        let dir = tempfile::tempdir().unwrap();
        let id = format!("cv{}", suffix(dir.path()));
        support::copy(
            &support::project_root().join("demo"),
            &dir.path().join("demo"),
        );
        std::fs::write(
            dir.path().join("stack.yaml"),
            format!("apiVersion: stack/v1\nproject: shop\ncluster:\n  name: stack\n  registry:\n    hostPort: 25000\nimages:\n  backend:\n    context: demo/backend\n    target: dev\n    repository: {id}/backend\n  frontend:\n    context: demo/frontend\n    repository: {id}/frontend\n"),
        )
        .unwrap();
        let twin = tempfile::tempdir().unwrap();
        support::copy(dir.path(), twin.path());
        Some(Project {
            dir,
            twin: Some(twin),
            env,
            namespace: id,
        })
    }

    fn cmd(&self, program: &Path, dir: &Path) -> Command {
        let mut c = Command::new(program);
        c.current_dir(dir)
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

    fn stack(&self, args: &[&str], dir: &Path) -> Command {
        let mut c = self.cmd(&support::stack_bin(), dir);
        c.args(args).args(["--format", "json"]);
        c
    }

    fn tool(&self, name: &str, args: &[&str]) -> String {
        let o = self
            .cmd(&self.env.bin_dir.join(name), self.dir.path())
            .args(args)
            .output()
            .unwrap();
        assert!(o.status.success(), "{name} {args:?}: {}", text(&o.stderr));
        text(&o.stdout)
    }

    /// (status, revision) of the release, and how many releases are `pending-*`.
    fn release(&self) -> (String, u64, usize) {
        let ns = &self.namespace;
        let list: serde_json::Value =
            serde_json::from_str(&self.tool("helm", &["list", "-a", "-n", ns, "-o", "json"]))
                .unwrap();
        let pending = self
            .tool("helm", &["list", "--pending", "-q", "-n", ns])
            .lines()
            .filter(|l| !l.trim().is_empty())
            .count();
        let r = &list[0];
        (
            r["status"].as_str().unwrap_or_default().to_owned(),
            r["revision"]
                .as_str()
                .and_then(|r| r.parse().ok())
                .unwrap_or(0),
            pending,
        )
    }

    /// Each Deployment's replicas and image.
    fn workloads(&self) -> String {
        self.tool(
            "kubectl",
            &[
                "--context",
                "stack-rig",
                "get",
                "deploy",
                "-n",
                &self.namespace,
                "-o",
                "jsonpath={range .items[*]}{.metadata.name}={.spec.replicas}:{.spec.template.spec.containers[0].image} {end}",
            ],
        )
    }

    fn tmp_files(&self) -> usize {
        fn walk(dir: &Path) -> usize {
            std::fs::read_dir(dir)
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| {
                    if e.path().is_dir() {
                        walk(&e.path())
                    } else {
                        usize::from(e.file_name().to_string_lossy().contains(".tmp"))
                    }
                })
                .sum()
        }
        walk(&self.dir.path().join(".stack"))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        if self.twin.is_none() {
            let _ = self
                .cmd(&support::stack_bin(), self.dir.path())
                .arg("down")
                .output();
            let _ = self
                .cmd(&self.env.bin_dir.join("kubectl"), self.dir.path())
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
}

/// A run to completion: its JSON report (exit 0 asserted) and how long it took.
fn complete(p: &Project, args: &[&str], dir: &Path) -> (serde_json::Value, Duration) {
    let started = Instant::now();
    let o = p.stack(args, dir).output().unwrap();
    assert_eq!(
        o.status.code(),
        Some(0),
        "stack {args:?}:\n{}{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    (
        serde_json::from_slice(&o.stdout).unwrap(),
        started.elapsed(),
    )
}

fn delivered(report: &serde_json::Value) -> Vec<String> {
    report["images"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["delivered"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// pid → (ppid, start time) of every process.
fn processes() -> BTreeMap<u32, (u32, String)> {
    let mut out = BTreeMap::new();
    for e in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Some(pid) = e.file_name().to_str().and_then(|s| s.parse().ok()) else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let f: Vec<&str> = rest.split_whitespace().collect();
        if let (Some(ppid), Some(start)) = (f.get(1).and_then(|p| p.parse().ok()), f.get(19)) {
            if f[0] != "Z" {
                out.insert(pid, (ppid, (*start).to_owned()));
            }
        }
    }
    out
}

/// Starts `stack args`, SIGKILLs it (its pid only) after `at`; returns the descendants that
/// outlived it, after waiting for them (up to 60 s) and killing by pid those still running.
fn kill_at(p: &Project, args: &[&str], at: Duration) -> Vec<u32> {
    let mut child = p
        .stack(args, p.dir.path())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let root = child.id();
    let mut seen: BTreeSet<(u32, String)> = BTreeSet::new();
    let deadline = Instant::now() + at;
    loop {
        let procs = processes();
        let mut known: BTreeSet<u32> = seen.iter().map(|s| s.0).collect();
        known.insert(root);
        let mut grew = true;
        while grew {
            grew = false;
            for (pid, (ppid, start)) in &procs {
                if known.contains(ppid) && known.insert(*pid) {
                    seen.insert((*pid, start.clone()));
                    grew = true;
                }
            }
        }
        if Instant::now() >= deadline || child.try_wait().unwrap().is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    let alive = |seen: &BTreeSet<(u32, String)>| -> Vec<u32> {
        let procs = processes();
        seen.iter()
            .filter(|(pid, start)| procs.get(pid).is_some_and(|(_, s)| s == start))
            .map(|(pid, _)| *pid)
            .collect()
    };
    let orphans = alive(&seen);
    let until = Instant::now() + Duration::from_secs(60);
    while !alive(&seen).is_empty() && Instant::now() < until {
        std::thread::sleep(Duration::from_millis(100));
    }
    for pid in alive(&seen) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    orphans
}

/// Kill points from the clock: each CI run tries other points (printed, to reproduce by hand).
fn kill_points(window: Duration) -> Vec<Duration> {
    let mut x = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        | 1;
    (0..TRIALS)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            Duration::from_millis(x % (window.as_millis() as u64 + 1))
        })
        .collect()
}

#[test]
fn up_killed_at_random_points_converges_on_the_next_run() {
    let Some(p) = Project::up() else { return };
    let args = ["up", "--once"];
    let dev_yaml = p.dir.path().join("envs/local/dev.yaml");
    let a = std::fs::read_to_string(&dev_yaml).unwrap();
    let b = format!("{a}frontend:\n  replicaCount: 2\n");
    let (first, _) = complete(&p, &args, p.dir.path());
    let workloads_a = p.workloads();
    std::fs::write(&dev_yaml, &b).unwrap();
    let (second, took) = complete(&p, &args, p.dir.path());
    let workloads_b = p.workloads();
    assert_ne!(workloads_a, workloads_b);
    assert_eq!(delivered(&first), delivered(&second));
    let (_, mut revision, _) = p.release();
    for (n, at) in kill_points(took.mul_f64(1.2)).into_iter().enumerate() {
        std::fs::write(&dev_yaml, if n % 2 == 0 { &a } else { &b }).unwrap();
        let orphans = kill_at(&p, &args, at);
        let (again, _) = complete(&p, &args, p.dir.path());
        let what = format!("trial {n}: killed at {at:?}, orphans {orphans:?}");
        assert_eq!(delivered(&again), delivered(&first), "{what}");
        let (status, now, pending) = p.release();
        assert_eq!((status.as_str(), pending), ("deployed", 0), "{what}");
        assert_eq!(p.tmp_files(), 0, "{what}: *.tmp* left under .stack/");
        let want = if n % 2 == 0 {
            &workloads_a
        } else {
            &workloads_b
        };
        assert_eq!(&p.workloads(), want, "{what}");
        assert_eq!(now, revision + 1, "{what}: one upgrade per change");
        revision = now;
    }
}

#[test]
fn build_deliver_killed_at_random_points_converges_on_the_next_run() {
    let Some(p) = Project::build() else { return };
    let twin = p.twin.as_ref().unwrap().path().to_owned();
    let args = ["build", "--deliver"];
    let write = |trial: &str| {
        for dir in [p.dir.path(), &twin] {
            for image in ["backend", "frontend"] {
                let f: PathBuf = dir.join(format!("demo/{image}/public/converge.txt"));
                std::fs::write(f, format!("{} {trial}\n", p.namespace)).unwrap();
            }
        }
    };
    write("reference");
    let (_, took) = complete(&p, &args, p.dir.path());
    for (n, at) in kill_points(took.mul_f64(1.2)).into_iter().enumerate() {
        write(&format!("trial {n}"));
        let orphans = kill_at(&p, &args, at);
        let (again, _) = complete(&p, &args, p.dir.path());
        let (reference, _) = complete(&p, &args, &twin);
        let what = format!("trial {n}: killed at {at:?}, orphans {orphans:?}");
        assert_eq!(delivered(&again), delivered(&reference), "{what}");
        assert_eq!(p.tmp_files(), 0, "{what}: *.tmp* left under .stack/");
        for image in delivered(&again) {
            assert!(
                in_registry(&p.env, &image),
                "{what}: {image} not in the registry"
            );
        }
    }
}

/// Whether `host/repo:tag` is listed by the rig registry's `/v2/<repo>/tags/list`.
fn in_registry(env: &support::RigEnv, image: &str) -> bool {
    use std::io::{Read, Write};
    let (repo, tag) = image
        .split_once('/')
        .and_then(|(_, path)| path.rsplit_once(':'))
        .unwrap();
    let addr = &env.vars["STACK_RIG_REGISTRY"];
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    write!(
        stream,
        "GET /v2/{repo}/tags/list HTTP/1.0\r\nHost: {addr}\r\n\r\n"
    )
    .unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    (response.starts_with("HTTP/1.0 200") || response.starts_with("HTTP/1.1 200"))
        && response.contains(&format!("\"{tag}\""))
}
