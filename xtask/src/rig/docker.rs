//! Docker Engine (Debian's `docker.io`) and the base images tests build from.
//!
//! Nothing can be pulled here, so `busybox:latest` and `registry:2` are made locally with
//! `docker import` of tiny root filesystems (Debian's `busybox-static` and `docker-registry`).
//!
//! Our own dockerd runs with `--bridge=none --iptables=false --ip-forward=false --ip-masq=false`:
//! containers get only their loopback interface unless a test creates a network (`docker network
//! create --internal`), and the host does not forward their packets (`ip_forward` stays 0), so they
//! never reach past this machine.

use super::process::{wait_for, Daemon};
use super::Rig;
use anyhow::{bail, Context, Result};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

/// Where the daemon the rig uses listens.
pub enum Engine {
    /// A daemon that already answered; the rig neither starts nor stops it.
    External(String),
    /// Ours, on `<state>/docker.sock`.
    Own(String),
}

impl Engine {
    pub fn host(&self) -> &str {
        match self {
            Engine::External(h) | Engine::Own(h) => h,
        }
    }
}

pub fn daemon(rig: &Rig) -> Daemon {
    Daemon::new(&rig.state, "dockerd")
}

pub fn own_host(rig: &Rig) -> String {
    format!("unix://{}", rig.state.join("docker.sock").display())
}

/// A daemon already answering at `$DOCKER_HOST` or the default socket, if any (ours excluded).
fn external() -> Option<String> {
    let candidates = [
        std::env::var("DOCKER_HOST").ok(),
        Some("unix:///var/run/docker.sock".to_string()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find(|h| version(h).is_ok())
}

pub fn version(host: &str) -> Result<String> {
    let out = Command::new("docker")
        .args(["-H", host, "version", "--format", "{{.Server.Version}}"])
        .output()
        .context("running docker (apt-get install docker.io)")?;
    if !out.status.success() {
        bail!(
            "docker -H {host} version: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
}

/// Finds or starts a daemon, then seeds the base images.
pub fn up(rig: &Rig) -> Result<Engine> {
    let own = daemon(rig);
    let engine = if own.running_pid().is_some() {
        Engine::Own(own_host(rig))
    } else if let Some(host) = external() {
        eprintln!("rig: using the Docker daemon already answering at {host}");
        Engine::External(host)
    } else {
        // Without iptables rules, a network a test creates is kept off the outside world only by the
        // host not forwarding packets; say so when it does.
        if std::fs::read_to_string("/proc/sys/net/ipv4/ip_forward").is_ok_and(|v| v.trim() == "1") {
            eprintln!(
                "rig: warning: net.ipv4.ip_forward=1 on this host; containers on networks a test creates \
                 could route off the machine (the default bridge is off)"
            );
        }
        let root = rig.state.join("docker");
        std::fs::create_dir_all(&root)?;
        let mut cmd = Command::new("dockerd");
        cmd.arg(format!("--host={}", own_host(rig)))
            .arg(format!("--data-root={}", root.join("data").display()))
            .arg(format!("--exec-root={}", root.join("exec").display()))
            .arg(format!("--pidfile={}", root.join("dockerd.pid").display()))
            .args([
                "--bridge=none",
                "--iptables=false",
                "--ip-forward=false",
                "--ip-masq=false",
            ])
            .arg("--userland-proxy=false")
            .arg("--log-level=warn");
        own.spawn(cmd)?;
        Engine::Own(own_host(rig))
    };
    wait_for("dockerd", Duration::from_secs(60), || {
        if let Engine::Own(_) = engine {
            if own.running_pid().is_none() {
                bail!(
                    "dockerd exited; last lines of {}:\n{}",
                    own.log_file.display(),
                    own.log_tail()
                );
            }
        }
        version(engine.host()).map(|_| ())
    })?;
    seed_busybox(rig, engine.host())?;
    seed_registry_image(rig, engine.host())?;
    Ok(engine)
}

fn has_image(host: &str, image: &str) -> bool {
    Command::new("docker")
        .args(["-H", host, "image", "inspect", "--format", "{{.Id}}", image])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// `busybox:latest`: Debian's static busybox with a link for every applet.
fn seed_busybox(rig: &Rig, host: &str) -> Result<()> {
    if has_image(host, "busybox:latest") {
        return Ok(());
    }
    let rootfs = fresh_dir(&rig.state.join("seed/busybox"))?;
    std::fs::create_dir_all(rootfs.join("bin"))?;
    for dir in [
        "etc", "tmp", "root", "proc", "sys", "dev", "var", "usr/bin", "usr/sbin", "sbin",
    ] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy("/bin/busybox", rootfs.join("bin/busybox"))
        .context("copying /bin/busybox (apt-get install busybox-static)")?;
    let list = Command::new("/bin/busybox").arg("--list-full").output()?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = rootfs.join(applet);
        if applet.is_empty() || link.exists() {
            continue;
        }
        std::fs::create_dir_all(link.parent().unwrap())?;
        std::os::unix::fs::symlink("/bin/busybox", link)?;
    }
    std::fs::write(
        rootfs.join("etc/passwd"),
        "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n",
    )?;
    std::fs::write(rootfs.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    import(host, &rootfs, "busybox:latest", &["CMD [\"sh\"]"])
}

/// `registry:2`: Debian's `docker-registry` (distribution v2) with the libraries it links, run like the
/// upstream image (`registry serve /etc/docker/registry/config.yml`, port 5000).
fn seed_registry_image(rig: &Rig, host: &str) -> Result<()> {
    if has_image(host, "registry:2") {
        return Ok(());
    }
    let binary = Path::new("/usr/bin/docker-registry");
    let rootfs = fresh_dir(&rig.state.join("seed/registry"))?;
    for dir in ["bin", "etc/docker/registry", "var/lib/registry", "tmp"] {
        std::fs::create_dir_all(rootfs.join(dir))?;
    }
    std::fs::copy(binary, rootfs.join("bin/registry"))
        .context("copying docker-registry (apt-get install docker-registry)")?;
    for lib in linked_libraries(binary)? {
        let dest = rootfs.join(lib.strip_prefix("/").unwrap_or(&lib));
        std::fs::create_dir_all(dest.parent().unwrap())?;
        std::fs::copy(&lib, &dest).with_context(|| format!("copying {}", lib.display()))?;
    }
    std::fs::write(
        rootfs.join("etc/docker/registry/config.yml"),
        "version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: /var/lib/registry\n  delete:\n    enabled: true\n\
         http:\n  addr: :5000\n",
    )?;
    import(
        host,
        &rootfs,
        "registry:2",
        &[
            "ENTRYPOINT [\"/bin/registry\", \"serve\"]",
            "CMD [\"/etc/docker/registry/config.yml\"]",
            "EXPOSE 5000",
            "VOLUME /var/lib/registry",
        ],
    )
}

/// The shared libraries `ldd` reports for a binary (absolute paths).
fn linked_libraries(binary: &Path) -> Result<Vec<PathBuf>> {
    let out = Command::new("ldd")
        .arg(binary)
        .output()
        .context("running ldd")?;
    let text = String::from_utf8_lossy(&out.stdout);
    Ok(text
        .lines()
        .filter_map(|l| {
            l.split_whitespace()
                .find(|w| w.starts_with('/'))
                .map(PathBuf::from)
        })
        .collect())
}

fn fresh_dir(dir: &Path) -> Result<PathBuf> {
    if dir.exists() {
        std::fs::remove_dir_all(dir)?;
    }
    std::fs::create_dir_all(dir)?;
    Ok(dir.to_path_buf())
}

fn import(host: &str, rootfs: &Path, tag: &str, changes: &[&str]) -> Result<()> {
    let tarball = rootfs.with_extension("tar");
    let status = Command::new("tar")
        .arg("-C")
        .arg(rootfs)
        .arg("-cf")
        .arg(&tarball)
        .arg(".")
        .status()?;
    if !status.success() {
        bail!("tar of {} failed", rootfs.display());
    }
    let mut cmd = Command::new("docker");
    cmd.args(["-H", host, "import"]);
    for change in changes {
        cmd.args(["--change", change]);
    }
    let out = cmd.arg(&tarball).arg(tag).output()?;
    if !out.status.success() {
        bail!(
            "docker import {tag}: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    eprintln!("rig: seeded {tag}");
    Ok(())
}
