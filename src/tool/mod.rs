//! The only place that spawns processes (clippy.toml forbids `Command::new` elsewhere).
//!
//! [`Cmd`] is one value for every subprocess: program, args, cwd, env, stdin. Its `Display` is the
//! exact shell-escaped command line with secrets redacted, so `--dry-run` plans and error messages
//! show what runs without leaking anything. [`Runner`] is the seam for tests: [`RealRunner`] runs,
//! [`RecordingRunner`] records and answers from a script.

mod discover;
mod host;
mod recording;

pub use discover::{find, Tool};
pub use host::Host;
pub use recording::RecordingRunner;

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// An argument or environment value; secrets never appear in `Display` or `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub enum Arg {
    Plain(String),
    Secret(String),
}

impl Arg {
    pub fn expose(&self) -> &str {
        match self {
            Arg::Plain(s) | Arg::Secret(s) => s,
        }
    }
}

impl fmt::Debug for Arg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Arg::Plain(s) => write!(f, "{s:?}"),
            Arg::Secret(_) => f.write_str("<redacted>"),
        }
    }
}

/// One subprocess, as a value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cmd {
    pub program: PathBuf,
    pub args: Vec<String>,
    pub cwd: Option<PathBuf>,
    pub env: Vec<(String, Arg)>,
    /// Bytes written to stdin (how secrets reach tools: `--password-stdin`).
    pub stdin: Option<Arg>,
    /// Killed (and reported as timed out) when still running after this long.
    pub timeout: Option<Duration>,
    /// Killed (and reported as cancelled) when this is cancelled, besides the process's own
    /// cancellation: a caller that gives up on the command (a check past the run's deadline).
    pub cancel: Option<CancelOn>,
}

/// A cancellation token a command also stops on. Not part of what a command is: two commands
/// that differ only in it are equal.
#[derive(Clone, Debug)]
pub struct CancelOn(pub tokio_util::sync::CancellationToken);

impl PartialEq for CancelOn {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for CancelOn {}

impl Cmd {
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Cmd {
            program: program.into(),
            args: Vec::new(),
            cwd: None,
            env: Vec::new(),
            stdin: None,
            timeout: None,
            cancel: None,
        }
    }

    /// Also stop (as cancelled) when `token` is cancelled.
    pub fn cancel_on(mut self, token: tokio_util::sync::CancellationToken) -> Self {
        self.cancel = Some(CancelOn(token));
        self
    }

    pub fn timeout(mut self, after: Duration) -> Self {
        self.timeout = Some(after);
        self
    }

    pub fn arg(mut self, a: impl Into<String>) -> Self {
        self.args.push(a.into());
        self
    }

    pub fn args<I: IntoIterator<Item = S>, S: Into<String>>(mut self, args: I) -> Self {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    pub fn env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), Arg::Plain(v.into())));
        self
    }

    pub fn secret_env(mut self, k: impl Into<String>, v: impl Into<String>) -> Self {
        self.env.push((k.into(), Arg::Secret(v.into())));
        self
    }

    pub fn stdin_secret(mut self, data: impl Into<String>) -> Self {
        self.stdin = Some(Arg::Secret(data.into()));
        self
    }

    /// argv as strings (program first), for test assertions.
    pub fn argv(&self) -> Vec<String> {
        std::iter::once(self.program.display().to_string())
            .chain(self.args.iter().cloned())
            .collect()
    }

    /// The command line with the program's file name only (stable across machines).
    /// The program's file name (`helm` for `/usr/local/bin/helm`).
    pub fn tool_name(&self) -> String {
        self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        )
    }

    pub fn short_line(&self) -> String {
        let name = self.program.file_name().map_or_else(
            || self.program.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        std::iter::once(name)
            .chain(self.args.iter().cloned())
            .map(|a| quote(&a))
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// POSIX shell quoting: words of safe characters stay bare, others are single-quoted.
pub(crate) fn quote(s: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "_-.,/:=@%+".contains(c);
    if !s.is_empty() && s.chars().all(safe) {
        s.to_owned()
    } else {
        format!("'{}'", s.replace('\'', r"'\''"))
    }
}

impl fmt::Display for Cmd {
    /// `cd DIR && K=V K2=<redacted> program 'arg 1' ... < <redacted>`
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(cwd) = &self.cwd {
            write!(f, "cd {} && ", quote(&cwd.display().to_string()))?;
        }
        for (k, v) in &self.env {
            match v {
                Arg::Plain(v) => write!(f, "{k}={} ", quote(v))?,
                Arg::Secret(_) => write!(f, "{k}=<redacted> ")?,
            }
        }
        write!(f, "{}", quote(&self.program.display().to_string()))?;
        for a in &self.args {
            write!(f, " {}", quote(a))?;
        }
        if self.stdin.is_some() {
            f.write_str(" < <redacted>")?;
        }
        Ok(())
    }
}

/// What a finished process produced.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Output {
    pub status: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    pub fn success(&self) -> bool {
        self.status == 0
    }
}

/// A process that could not be started, that failed, ran too long or was cancelled.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("could not start `{cmd}`: {source}")]
    Spawn {
        /// The program's file name (`helm`, `kind`).
        tool: String,
        cmd: String,
        source: std::io::Error,
    },
    #[error("`{cmd}` failed with exit status {}\n{}", output.status, output.stderr.trim_end())]
    Failed {
        tool: String,
        cmd: String,
        output: Output,
    },
    #[error("`{cmd}` was stopped after {}s without finishing", after.as_secs())]
    TimedOut {
        tool: String,
        cmd: String,
        after: Duration,
    },
    /// The user cancelled (Ctrl-C) while it ran; the process was killed.
    #[error("`{cmd}` was cancelled")]
    Cancelled { tool: String, cmd: String },
}

impl RunError {
    fn spawn(cmd: &Cmd, source: std::io::Error) -> Self {
        RunError::Spawn {
            tool: cmd.tool_name(),
            cmd: cmd.to_string(),
            source,
        }
    }
}

/// Fails unless the exit status is 0.
fn check(cmd: &Cmd, out: Output) -> Result<Output, RunError> {
    if out.success() {
        Ok(out)
    } else {
        Err(RunError::Failed {
            tool: cmd.tool_name(),
            cmd: cmd.to_string(),
            output: out,
        })
    }
}

/// The seam between stages and processes.
pub trait Runner: Send + Sync {
    /// Runs to completion and captures output; a non-zero exit is returned as `Ok(output)`.
    fn output(&self, cmd: &Cmd) -> Result<Output, RunError>;

    /// Runs and fails unless the exit status is 0.
    fn run(&self, cmd: &Cmd) -> Result<Output, RunError> {
        let out = self.output(cmd)?;
        check(cmd, out)
    }

    /// As [`Runner::run`], handing each line of stdout and stderr to `on_line` as the tool prints
    /// it (long `helm upgrade --wait` / `tofu apply` runs show progress). The output is still
    /// captured whole. Fakes answer at once, then replay the lines.
    fn stream(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
        let out = self.output(cmd)?;
        out.stdout
            .lines()
            .chain(out.stderr.lines())
            .for_each(&mut *on_line);
        check(cmd, out)
    }
}

/// Runs real processes: honours `Cmd::timeout` and the process's cancellation (`rt::token`),
/// killing the child within 50 ms of either.
#[derive(Clone, Copy, Debug, Default)]
pub struct RealRunner;

/// How often a running child is checked for exit, timeout and cancellation.
const POLL: Duration = Duration::from_millis(50);

impl RealRunner {
    #[allow(clippy::disallowed_methods)] // the one place allowed to spawn
    fn spawn(cmd: &Cmd) -> Result<std::process::Child, RunError> {
        use std::process::{Command, Stdio};
        let mut c = Command::new(&cmd.program);
        c.args(&cmd.args);
        if let Some(d) = &cmd.cwd {
            c.current_dir(d);
        }
        for (k, v) in &cmd.env {
            c.env(k, v.expose());
        }
        c.stdin(if cmd.stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        c.stdout(Stdio::piped()).stderr(Stdio::piped());
        c.spawn().map_err(|e| RunError::spawn(cmd, e))
    }

    /// Spawns, feeds stdin, collects both pipes line by line (each line to `on_line` as it comes)
    /// and waits — killing the child on timeout or cancellation.
    fn wait(cmd: &Cmd, mut on_line: Option<&mut dyn FnMut(&str)>) -> Result<Output, RunError> {
        use std::io::{BufRead, BufReader, Read, Write};
        use std::sync::mpsc;
        let mut child = Self::spawn(cmd)?;
        if let (Some(data), Some(mut stdin)) = (&cmd.stdin, child.stdin.take()) {
            let data = data.expose().to_owned();
            // A tool that exits before reading stdin is reported through its exit status; a
            // thread, so a tool that writes much before reading cannot deadlock us.
            std::thread::spawn(move || {
                let _ = stdin.write_all(data.as_bytes());
            });
        }
        let (tx, rx) = mpsc::channel::<(bool, String)>();
        fn reader(pipe: impl Read + Send + 'static, err: bool, tx: mpsc::Sender<(bool, String)>) {
            std::thread::spawn(move || {
                let mut r = BufReader::new(pipe);
                let mut buf = Vec::new();
                while matches!(r.read_until(b'\n', &mut buf), Ok(n) if n > 0) {
                    if tx
                        .send((err, String::from_utf8_lossy(&buf).into_owned()))
                        .is_err()
                    {
                        return;
                    }
                    buf.clear();
                }
            });
        }
        reader(child.stdout.take().expect("piped"), false, tx.clone());
        reader(child.stderr.take().expect("piped"), true, tx);
        let token = crate::rt::token();
        let start = std::time::Instant::now();
        let (mut stdout, mut stderr) = (String::new(), String::new());
        let mut status = None;
        let mut exited_at = None;
        loop {
            match rx.recv_timeout(POLL) {
                Ok((err, text)) => {
                    if let Some(f) = on_line.as_deref_mut() {
                        f(text.trim_end_matches(['\n', '\r']));
                    }
                    if err { &mut stderr } else { &mut stdout }.push_str(&text);
                    continue;
                }
                // Both pipes closed: everything was read.
                Err(mpsc::RecvTimeoutError::Disconnected) if status.is_some() => break,
                Err(_) => {}
            }
            if status.is_none() {
                status = child.try_wait().map_err(|e| RunError::spawn(cmd, e))?;
                if status.is_some() {
                    exited_at = Some(std::time::Instant::now());
                    continue;
                }
                let given_up = cmd.cancel.as_ref().is_some_and(|c| c.0.is_cancelled());
                let stop = if token.is_cancelled() || given_up {
                    Some(RunError::Cancelled {
                        tool: cmd.tool_name(),
                        cmd: cmd.to_string(),
                    })
                } else {
                    cmd.timeout
                        .filter(|t| start.elapsed() >= *t)
                        .map(|after| RunError::TimedOut {
                            tool: cmd.tool_name(),
                            cmd: cmd.to_string(),
                            after,
                        })
                };
                if let Some(e) = stop {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(e);
                }
            } else if exited_at.is_some_and(|t| t.elapsed() > Duration::from_secs(2)) {
                // A grandchild kept the pipes open after the tool exited: do not wait for it.
                break;
            }
        }
        Ok(Output {
            status: status.and_then(|s| s.code()).unwrap_or(-1),
            stdout,
            stderr,
        })
    }
}

impl Runner for RealRunner {
    fn output(&self, cmd: &Cmd) -> Result<Output, RunError> {
        Self::wait(cmd, None)
    }

    fn stream(&self, cmd: &Cmd, on_line: &mut dyn FnMut(&str)) -> Result<Output, RunError> {
        let out = Self::wait(cmd, Some(on_line))?;
        check(cmd, out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_shell_escaped_and_redacted() {
        let c = Cmd::new("/usr/bin/helm")
            .args(["template", "my app", "--set", "a=b"])
            .env("HELM_DEBUG", "1")
            .secret_env("TOKEN", "s3cret")
            .stdin_secret("hunter2");
        let line = c.to_string();
        assert_eq!(
            line,
            "HELM_DEBUG=1 TOKEN=<redacted> /usr/bin/helm template 'my app' --set a=b < <redacted>"
        );
        assert!(!format!("{c:?}").contains("s3cret") && !format!("{c:?}").contains("hunter2"));
        let quoted = Cmd::new("sh").args(["-c", "echo 'hi'", ""]).to_string();
        assert_eq!(quoted, r#"sh -c 'echo '\''hi'\''' ''"#);
    }

    #[test]
    fn real_runner_captures_output_and_status() {
        let out = RealRunner
            .output(&Cmd::new("sh").args(["-c", "echo out; echo err >&2; exit 3"]))
            .unwrap();
        assert_eq!(
            (out.status, out.stdout.as_str(), out.stderr.as_str()),
            (3, "out\n", "err\n")
        );
        let err = RealRunner
            .run(&Cmd::new("sh").args(["-c", "exit 2"]))
            .unwrap_err();
        assert!(err.to_string().contains("exit status 2"));
    }

    #[test]
    fn streaming_hands_over_lines_as_they_come_and_a_timeout_kills() {
        let mut lines = Vec::new();
        let out = RealRunner
            .stream(
                &Cmd::new("sh").args(["-c", "echo one; echo two >&2; echo three"]),
                &mut |l| lines.push(l.to_owned()),
            )
            .unwrap();
        lines.sort();
        assert_eq!(lines, ["one", "three", "two"]);
        assert_eq!(out.stdout, "one\nthree\n");
        let start = std::time::Instant::now();
        let err = RealRunner
            .output(
                &Cmd::new("sleep")
                    .arg("30")
                    .timeout(Duration::from_millis(200)),
            )
            .unwrap_err();
        assert!(matches!(err, RunError::TimedOut { .. }), "{err}");
        assert!(start.elapsed() < Duration::from_secs(5), "killed promptly");
    }

    #[test]
    fn secrets_reach_the_process_through_stdin_only() {
        let out = RealRunner
            .output(&Cmd::new("sh").args(["-c", "cat"]).stdin_secret("pw"))
            .unwrap();
        assert_eq!(out.stdout, "pw");
    }
}
