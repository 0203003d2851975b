//! Background processes the rig starts and stops: each one's pid (and its start time, so a reused
//! pid is never mistaken for ours) is recorded in `<state>/pids/<name>.pid`; `rig down` stops exactly
//! those pids, never anything found by name.

use anyhow::{bail, Context, Result};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

pub struct Daemon {
    pub name: &'static str,
    pid_file: PathBuf,
    pub log_file: PathBuf,
}

impl Daemon {
    pub fn new(state: &Path, name: &'static str) -> Daemon {
        Daemon {
            name,
            pid_file: state.join("pids").join(format!("{name}.pid")),
            log_file: state.join("logs").join(format!("{name}.log")),
        }
    }

    /// The recorded pid, if that process still runs and is the one we started.
    pub fn running_pid(&self) -> Option<u32> {
        let text = std::fs::read_to_string(&self.pid_file).ok()?;
        let mut parts = text.split_whitespace();
        let pid: u32 = parts.next()?.parse().ok()?;
        let started: u64 = parts.next()?.parse().ok()?;
        (start_time(pid) == Some(started) && !is_zombie(pid)).then_some(pid)
    }

    /// Starts `cmd` detached (own process group, stdin closed, output to the log file).
    pub fn spawn(&self, mut cmd: Command) -> Result<u32> {
        std::fs::create_dir_all(self.pid_file.parent().unwrap())?;
        std::fs::create_dir_all(self.log_file.parent().unwrap())?;
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)?;
        let shown = format!("{cmd:?}");
        cmd.stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .process_group(0);
        let child = cmd
            .spawn()
            .with_context(|| format!("starting {}: {shown}", self.name))?;
        let pid = child.id();
        // Dropping `Child` neither waits for nor kills it; the daemon outlives xtask.
        drop(child);
        let started = start_time(pid).with_context(|| {
            format!(
                "{} (pid {pid}) exited at once; see {}",
                self.name,
                self.log_file.display()
            )
        })?;
        std::fs::write(&self.pid_file, format!("{pid} {started}\n"))?;
        Ok(pid)
    }

    /// SIGTERM, up to `grace`, then SIGKILL. Only the recorded pid is signalled.
    pub fn stop(&self, grace: Duration) -> Result<bool> {
        let Some(pid) = self.running_pid() else {
            let _ = std::fs::remove_file(&self.pid_file);
            return Ok(false);
        };
        signal(pid, libc::SIGTERM)?;
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if self.running_pid().is_none() {
                break;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        if self.running_pid().is_some() {
            eprintln!(
                "rig: {} (pid {pid}) did not stop in {grace:?}; killing it",
                self.name
            );
            signal(pid, libc::SIGKILL)?;
            std::thread::sleep(Duration::from_millis(200));
        }
        let _ = std::fs::remove_file(&self.pid_file);
        Ok(true)
    }

    /// The last lines of the log, for error messages.
    pub fn log_tail(&self) -> String {
        let text = std::fs::read_to_string(&self.log_file).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(15)..].join("\n")
    }
}

fn signal(pid: u32, sig: i32) -> Result<()> {
    // SAFETY: kill(2) with a pid we recorded ourselves and verified by its start time.
    let rc = unsafe { libc::kill(pid as libc::pid_t, sig) };
    if rc != 0 {
        let err = std::io::Error::last_os_error();
        if err.raw_os_error() != Some(libc::ESRCH) {
            bail!("signalling pid {pid}: {err}");
        }
    }
    Ok(())
}

/// Field 22 of /proc/<pid>/stat: start time in clock ticks since boot.
fn start_time(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it start past the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn is_zombie(pid: u32) -> bool {
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| s.rfind(')').map(|i| s[i + 2..].starts_with('Z')))
        .unwrap_or(true)
}

/// Polls `check` until it succeeds or `timeout` passes; the error names what was awaited.
pub fn wait_for(
    what: &str,
    timeout: Duration,
    mut check: impl FnMut() -> Result<()>,
) -> Result<()> {
    let deadline = Instant::now() + timeout;
    loop {
        match check() {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => {
                return Err(e.context(format!("{what} not ready after {timeout:?}")));
            }
            Err(_) => std::thread::sleep(Duration::from_millis(250)),
        }
    }
}
