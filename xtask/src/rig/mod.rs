//! `cargo xtask rig up | down | status | env`: the real components the integration tests run against.
//!
//! - Docker Engine (our own `dockerd` unless one already answers) with seeded `busybox:latest` and
//!   `registry:2` images, and an OCI registry on 127.0.0.1.
//! - Kubernetes: etcd, the real kube-apiserver, kube-controller-manager and kube-scheduler, with kwok
//!   simulating the kubelet and container runtime of one node.
//! - Pinned helm, kubectl, tofu and kind in `$STACK_DEV_CACHE/bin`.
//!
//! Everything listens on 127.0.0.1. State lives in `$STACK_DEV_CACHE/rig` (default
//! `~/.cache/stack-dev/rig`): `env` there holds the `export` lines `rig env` prints, which is also how
//! tests find the rig without any environment variable. `rig down` stops the processes whose pids
//! are recorded under `pids/` and removes the state directory; built tools stay cached.
// xtask is a chore runner, not the `stack` crate: it starts daemons and runs tools directly.
#![allow(clippy::disallowed_methods)]

mod docker;
mod kube;
mod pki;
mod process;
mod registry;

use crate::tools::{self, Tools};
use anyhow::{bail, Context, Result};
use process::Daemon;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

pub const PORT_ETCD: u16 = 23790;
pub const PORT_ETCD_PEER: u16 = 23800;
pub const PORT_APISERVER: u16 = 26443;
pub const PORT_KCM: u16 = 20257;
pub const PORT_SCHEDULER: u16 = 20259;
pub const PORT_KWOK: u16 = 20250;
pub const PORT_REGISTRY: u16 = 25000;

pub struct Rig {
    pub state: PathBuf,
    pub tools: Tools,
}

impl Rig {
    /// The forbidden identity's kubeconfig (contexts `prod`, `kind-prod`).
    pub fn forbidden_kubeconfig(&self) -> PathBuf {
        self.state.join("forbidden.kubeconfig")
    }

    /// The API server's audit log (JSON lines, Metadata level).
    pub fn audit_log(&self) -> PathBuf {
        self.state.join("audit.log")
    }

    pub fn kubeconfig(&self) -> PathBuf {
        self.state.join("kubeconfig")
    }
    fn env_file(&self) -> PathBuf {
        self.state.join("env")
    }
}

pub fn state_dir() -> PathBuf {
    tools::cache_dir().join("rig")
}

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        Some("up") => up(),
        Some("down") => down(),
        Some("status") => status(),
        Some("env") => env(),
        _ => bail!(
            "usage: cargo xtask rig <up|down|status|env>\n  up      build the pinned tools (cached) and start the rig (no-op when up)\n  \
             down    stop every process `up` started and remove the rig's state\n  status  report each component\n  \
             env     print the export lines (KUBECONFIG, DOCKER_HOST, PATH, ...) for a shell: eval \"$(cargo xtask rig env)\""
        ),
    }
}

fn up() -> Result<()> {
    let started = Instant::now();
    let state = state_dir();
    ensure_debian_packages()?;
    // Builds only what is missing or pinned differently; a no-op when the cache is current.
    let tools = tools::setup_groups(&[tools::DEFAULT_GROUP, "rig"])?;
    let rig = Rig { state, tools };
    if rig.env_file().exists() && all_healthy(&rig) {
        eprintln!(
            "rig: already up ({}); `cargo xtask rig status` for details \
             (after changing xtask/pins.txt: `cargo xtask rig down && cargo xtask rig up`)",
            rig.state.display()
        );
        return Ok(());
    }
    std::fs::create_dir_all(&rig.state)?;
    eprintln!("rig: tools ready after {:.1?}", started.elapsed());

    let pki = pki::ensure(&rig.state.join("pki"))?;
    registry::up(&rig)?;
    let engine = docker::up(&rig)?;
    eprintln!(
        "rig: docker and registry ready after {:.1?}",
        started.elapsed()
    );
    kube::up(&rig, &pki)?;

    // An empty OpenTofu CLI config: a TF_CLI_CONFIG_FILE naming a missing file (as on some machines)
    // makes tofu print a warning on stdout, which breaks `tofu output -json`.
    let tofurc = rig.state.join("tofurc");
    std::fs::write(
        &tofurc,
        "# OpenTofu CLI configuration for the rig (intentionally empty)\n",
    )?;
    let lines = [
        format!("export KUBECONFIG={}", rig.kubeconfig().display()),
        format!("export DOCKER_HOST={}", engine.host()),
        format!("export STACK_RIG_REGISTRY={}", registry::address()),
        format!("export STACK_RIG_DIR={}", rig.state.display()),
        format!(
            "export STACK_RIG_FORBIDDEN_KUBECONFIG={}",
            rig.forbidden_kubeconfig().display()
        ),
        format!("export STACK_RIG_AUDIT_LOG={}", rig.audit_log().display()),
        format!("export TF_CLI_CONFIG_FILE={}", tofurc.display()),
        format!("export PATH={}:\"$PATH\"", rig.tools.bin_dir.display()),
    ];
    std::fs::write(rig.env_file(), lines.join("\n") + "\n")?;
    eprintln!(
        "rig: up in {:.1?}; `eval \"$(cargo xtask rig env)\"` to use it",
        started.elapsed()
    );
    Ok(())
}

/// Every daemon the rig may have started, in the order `down` stops them.
fn daemons(state: &Path) -> Vec<Daemon> {
    [
        "kwok",
        "kube-scheduler",
        "kube-controller-manager",
        "kube-apiserver",
        "etcd",
        "registry",
        "dockerd",
    ]
    .into_iter()
    .map(|n| Daemon::new(state, n))
    .collect()
}

/// Whether every component answers (what makes `up` a no-op).
fn all_healthy(rig: &Rig) -> bool {
    let docker_ok = match docker::daemon(rig).running_pid() {
        Some(_) => docker::version(&docker::own_host(rig)).is_ok(),
        // An external daemon the rig used: still answering?
        None => env_value(rig, "DOCKER_HOST").is_some_and(|h| docker::version(&h).is_ok()),
    };
    let daemons_ok = daemons(&rig.state)
        .iter()
        .filter(|d| d.name != "dockerd")
        .all(|d| d.running_pid().is_some());
    docker_ok
        && daemons_ok
        && registry::healthy().is_ok()
        && kube::health(rig, "kube-apiserver").is_ok()
        && kube::health(rig, "kwok").is_ok_and(|s| s.ends_with("True"))
}

fn env_value(rig: &Rig, key: &str) -> Option<String> {
    let text = std::fs::read_to_string(rig.env_file()).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("export {key}=")).map(String::from))
}

fn down() -> Result<()> {
    let state = state_dir();
    if !state.exists() {
        eprintln!("rig: not up (no {})", state.display());
        return Ok(());
    }
    for d in daemons(&state) {
        let grace = if d.name == "dockerd" {
            Duration::from_secs(30)
        } else {
            Duration::from_secs(10)
        };
        if let Some(pid) = d.running_pid() {
            eprintln!("rig: stopping {} (pid {pid})", d.name);
            d.stop(grace)?;
        }
    }
    unmount_under(&state)?;
    std::fs::remove_dir_all(&state).with_context(|| format!("removing {}", state.display()))?;
    eprintln!("rig: down; removed {}", state.display());
    Ok(())
}

/// Docker may leave overlay or shm mounts under its data root if it was killed; remove only those
/// below our own state directory.
fn unmount_under(state: &Path) -> Result<()> {
    let mounts = std::fs::read_to_string("/proc/self/mounts").unwrap_or_default();
    let prefix = format!("{}/", state.display());
    let mut points: Vec<&str> = mounts
        .lines()
        .filter_map(|l| l.split_whitespace().nth(1))
        .filter(|p| p.starts_with(&prefix))
        .collect();
    points.sort_by_key(|p| std::cmp::Reverse(p.len()));
    for p in points {
        let _ = Command::new("umount").args(["-l", p]).status();
    }
    Ok(())
}

fn status() -> Result<()> {
    let state = state_dir();
    let tools = tools::setup_groups(&[])?;
    let rig = Rig {
        state: state.clone(),
        tools,
    };
    println!(
        "rig state: {}{}",
        state.display(),
        if rig.env_file().exists() {
            ""
        } else {
            " (not up)"
        }
    );
    let mut all_ok = rig.env_file().exists();
    for d in daemons(&state).into_iter().rev() {
        let pid = d.running_pid();
        let health = match (d.name, pid) {
            ("dockerd", None) => match env_value(&rig, "DOCKER_HOST") {
                Some(h) => {
                    docker::version(&h).map(|v| format!("external daemon at {h}, version {v}"))
                }
                None => Err(anyhow::anyhow!("not started")),
            },
            (_, None) => Err(anyhow::anyhow!("not running")),
            ("dockerd", Some(_)) => {
                docker::version(&docker::own_host(&rig)).map(|v| format!("version {v}"))
            }
            ("registry", Some(_)) => {
                registry::healthy().map(|_| format!("http://{}/v2/ ok", registry::address()))
            }
            (name, Some(_)) => kube::health(&rig, name),
        };
        let pid = pid
            .map(|p| format!("pid {p}"))
            .unwrap_or_else(|| "-".into());
        match health {
            Ok(h) => println!("  {:<24} {:<10} ok    {h}", d.name, pid),
            Err(e) => {
                all_ok = false;
                println!(
                    "  {:<24} {:<10} DOWN  {}",
                    d.name,
                    pid,
                    format!("{e:#}").lines().next().unwrap_or_default()
                );
            }
        }
    }
    if !all_ok {
        bail!("the rig is not (fully) up: `cargo xtask rig up`");
    }
    Ok(())
}

fn env() -> Result<()> {
    let file = state_dir().join("env");
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("reading {} (run `cargo xtask rig up`)", file.display()))?;
    print!("{text}");
    Ok(())
}

/// Installs the Debian packages listed in `xtask/pins.txt` that are missing.
fn ensure_debian_packages() -> Result<()> {
    let missing: Vec<String> = tools::debian_packages()?
        .into_iter()
        .filter(|p| {
            let out = Command::new("dpkg-query")
                .args(["-W", "-f=${Status}", p])
                .output();
            !out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("rig: apt-get install {}", missing.join(" "));
    let update = Command::new("apt-get")
        .args(["update", "-q"])
        .status()
        .context("running apt-get")?;
    if !update.success() {
        bail!("apt-get update failed ({update})");
    }
    let status = Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive")
        .status()?;
    if !status.success() {
        bail!("apt-get install {} failed ({status})", missing.join(" "));
    }
    Ok(())
}

/// A plain-HTTP GET on 127.0.0.1 (etcd and registry health), without an HTTP client dependency.
pub fn http_get(addr: &str, path: &str) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect_timeout(&addr.parse()?, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(5)))?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n")?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let code = response
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .context("malformed HTTP response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|x| x.1)
        .unwrap_or_default()
        .to_string();
    Ok((code, body))
}
