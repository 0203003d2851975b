//! The one step executor every stage changes the world through.
//!
//! A stage observes with read-only calls, then changes things only through an [`Exec`]: each
//! command, file change, API write (server-side apply) or Docker API change is announced as an [`Event::Step`] before
//! it runs (so output appears in the order things happen), recorded as a [`StepReport`] for the
//! stage's report, and — under `--dry-run` — not run at all. A whole plan built up front
//! ([`Step`]s, as `cluster up|down` does) and steps decided one at a time (as `up` decides whether
//! `helm upgrade` is needed) go through the same executor, so every stage's `--dry-run` prints the
//! exact command lines it would run, secrets redacted (stdin contents and applied objects are
//! never shown).

use crate::docker::DockerOp;
use crate::error::StackError;
use crate::kube::object::{ObjectRef, FIELD_MANAGER};
use crate::kube::KubeContext;
use crate::ops::events::{Event, Sink};
use crate::tool::{Cmd, Output, RunError, Runner};
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// One thing a stage changes.
#[derive(Clone, Debug)]
pub enum Action {
    /// A command (its stdin, if any, is never shown).
    Run { cmd: Cmd },
    /// A file stack owns under `.stack/` (written to a temp file, then renamed).
    Write { path: PathBuf, contents: String },
    /// A file stack owns under `.stack/`; a missing file is fine.
    Remove { path: PathBuf },
    /// Server-side apply of `object` through the API of `at`, as field manager `stack` (`force`:
    /// take over fields another manager set). Its contents are never shown (it may be a Secret).
    Apply {
        at: KubeContext,
        object: serde_json::Value,
        force: bool,
    },
    /// A JSON record under `.stack/` whose `key` is the UID of `object`, read through the API of
    /// `at` when the step runs — e.g. an ownership record carrying the identity of what was just
    /// created.
    RecordUid {
        path: PathBuf,
        record: serde_json::Value,
        key: String,
        at: KubeContext,
        object: ObjectRef,
    },
    /// A change through the Docker API of the daemon at `endpoint` (resolved as the docker CLI
    /// resolves it), shown as the equivalent `docker …` command.
    Docker { endpoint: String, op: DockerOp },
}

#[derive(Clone, Debug)]
pub struct Step {
    /// Why this step is needed, for people.
    pub why: String,
    pub action: Action,
}

impl Step {
    pub fn run(why: impl Into<String>, cmd: Cmd) -> Self {
        Step {
            why: why.into(),
            action: Action::Run { cmd },
        }
    }

    /// A command that reads `input` on stdin (shown as `< <redacted>`, like every stdin).
    pub fn run_with_input(why: impl Into<String>, cmd: Cmd, input: String) -> Self {
        Step::run(why, cmd.stdin_secret(input))
    }

    pub fn write(why: impl Into<String>, path: PathBuf, contents: String) -> Self {
        Step {
            why: why.into(),
            action: Action::Write { path, contents },
        }
    }

    pub fn remove(why: impl Into<String>, path: PathBuf) -> Self {
        Step {
            why: why.into(),
            action: Action::Remove { path },
        }
    }

    /// What the step does, as a user would type it.
    pub fn line(&self) -> String {
        match &self.action {
            Action::Run { cmd } => cmd.to_string(),
            Action::Write { path, .. } => format!("write {}", path.display()),
            Action::Remove { path } => format!("rm -f {}", path.display()),
            Action::Apply { object, force, .. } => apply_line(object, *force),
            Action::RecordUid {
                path, key, object, ..
            } => format!(
                "write {} ({key}: the uid of {object}, read through the API)",
                path.display()
            ),
            Action::Docker { op, .. } => op.line(),
        }
    }

    /// A change through the Docker API (see [`Action::Docker`]).
    pub fn docker(why: impl Into<String>, endpoint: &str, op: DockerOp) -> Self {
        Step {
            why: why.into(),
            action: Action::Docker {
                endpoint: endpoint.to_owned(),
                op,
            },
        }
    }

    /// Server-side apply of `object` through the API (see [`Action::Apply`]).
    pub fn apply(
        why: impl Into<String>,
        at: KubeContext,
        object: serde_json::Value,
        force: bool,
    ) -> Self {
        Step {
            why: why.into(),
            action: Action::Apply { at, object, force },
        }
    }

    /// A JSON record with `key` filled with `object`'s UID when the step runs.
    pub fn record_uid(
        why: impl Into<String>,
        path: PathBuf,
        record: serde_json::Value,
        key: &str,
        at: KubeContext,
        object: ObjectRef,
    ) -> Self {
        Step {
            why: why.into(),
            action: Action::RecordUid {
                path,
                record,
                key: key.to_owned(),
                at,
                object,
            },
        }
    }
}

/// `apply configmap kube-public/local-registry-hosting (server-side, manager stack)`.
fn apply_line(object: &serde_json::Value, force: bool) -> String {
    format!(
        "apply {} (server-side, manager {FIELD_MANAGER}{})",
        ObjectRef::of(object),
        if force { ", force-conflicts" } else { "" }
    )
}

fn pretty(v: &serde_json::Value) -> String {
    format!(
        "{}\n",
        serde_json::to_string_pretty(v).expect("JSON values serialize")
    )
}

/// How a recorded step ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    Done,
    /// `--dry-run`: announced, not run.
    WouldRun,
    Failed,
}

/// A step as reports show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub why: String,
    pub line: String,
    pub status: StepStatus,
    /// What a file step writes (generated configs, never secrets); commands' stdin is never kept.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contents: Option<String>,
}

/// Runs (or, in a dry run, only announces) steps, recording each for the report.
pub struct Exec<'a> {
    pub runner: &'a dyn Runner,
    pub sink: &'a dyn Sink,
    pub dry_run: bool,
    steps: Mutex<Vec<StepReport>>,
}

impl<'a> Exec<'a> {
    pub fn new(runner: &'a dyn Runner, sink: &'a dyn Sink, dry_run: bool) -> Self {
        Exec {
            runner,
            sink,
            dry_run,
            steps: Mutex::new(Vec::new()),
        }
    }

    /// Announces and records a step; returns whether it should really run.
    fn begin(&self, why: &str, line: String, contents: Option<&str>) -> bool {
        self.sink.emit(Event::Step {
            why: why.to_owned(),
            line: line.clone(),
            dry_run: self.dry_run,
        });
        self.steps.lock().expect("steps lock").push(StepReport {
            why: why.to_owned(),
            line,
            status: if self.dry_run {
                StepStatus::WouldRun
            } else {
                StepStatus::Done
            },
            contents: contents.map(str::to_owned),
        });
        !self.dry_run
    }

    fn failed(&self) {
        if let Some(last) = self.steps.lock().expect("steps lock").last_mut() {
            last.status = StepStatus::Failed;
        }
    }

    /// Runs `cmd` (output streamed to the sink line by line); `Ok(None)` in a dry run.
    pub fn run(&self, why: &str, cmd: &Cmd) -> Result<Option<Output>, RunError> {
        if !self.begin(why, cmd.to_string(), None) {
            return Ok(None);
        }
        let tool = cmd.tool_name();
        let mut on_line = |line: &str| {
            self.sink.emit(Event::Output {
                tool: tool.clone(),
                line: line.to_owned(),
            })
        };
        match self.runner.stream(cmd, &mut on_line) {
            Ok(out) => Ok(Some(out)),
            Err(e) => {
                self.failed();
                Err(e)
            }
        }
    }

    /// Writes a file stack owns (atomically); nothing in a dry run.
    pub fn write(&self, why: &str, path: &Path, contents: &str) -> Result<(), StackError> {
        if !self.begin(why, format!("write {}", path.display()), Some(contents)) {
            return Ok(());
        }
        crate::state::write_file(path, contents).inspect_err(|_| self.failed())
    }

    /// Removes a file stack owns (a missing file is fine); nothing in a dry run.
    pub fn remove(&self, why: &str, path: &Path) -> Result<(), StackError> {
        if !self.begin(why, format!("rm -f {}", path.display()), None) {
            return Ok(());
        }
        match std::fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => {
                self.failed();
                Err(StackError::config(
                    None,
                    format!("cannot remove {}: {e}", path.display()),
                    "check the file's permissions",
                ))
            }
        }
    }

    /// Server-side applies `object` through the API of `at`; nothing in a dry run.
    pub fn apply(
        &self,
        why: &str,
        at: &KubeContext,
        object: &serde_json::Value,
        force: bool,
    ) -> anyhow::Result<()> {
        if !self.begin(why, apply_line(object, force), None) {
            return Ok(());
        }
        let applied = crate::rt::until_cancelled(why, async {
            let client = at.client().await?;
            Ok::<_, anyhow::Error>(crate::kube::object::apply(client, object, force).await)
        })
        .map_err(anyhow::Error::new)
        .and_then(|r| r);
        let failed = |e: anyhow::Error| {
            self.failed();
            e.context(format!("could not {why}"))
        };
        match applied.map_err(failed)? {
            Ok(()) => Ok(()),
            Err(::kube::Error::Api(s)) if s.code == 409 => Err(failed(anyhow::anyhow!(
                "another field manager owns fields of {}: {}",
                ObjectRef::of(object),
                s.message
            ))),
            Err(e) => Err(failed(anyhow::anyhow!(
                "the API server of context `{}` refused it: {}",
                at.context,
                crate::kube::wait::api_message(&e)
            ))),
        }
    }

    /// Runs a plan's steps in order, stopping at the first failure (re-running converges: every
    /// step is planned from what exists).
    pub fn execute(&self, steps: &[Step]) -> anyhow::Result<()> {
        for step in steps {
            match &step.action {
                Action::Run { cmd } => {
                    self.run(&step.why, cmd).map_err(|e| {
                        anyhow::Error::new(StackError::tool(
                            e,
                            "fix the cause above, then run the command again: each step is planned from what exists",
                        ))
                        .context(format!("could not {}", step.why))
                    })?;
                }
                Action::Write { path, contents } => self.write(&step.why, path, contents)?,
                Action::Remove { path } => self.remove(&step.why, path)?,
                Action::Apply { at, object, force } => self.apply(&step.why, at, object, *force)?,
                Action::RecordUid {
                    path,
                    record,
                    key,
                    at,
                    object,
                } => self.record_uid(step, path, record, key, at, object)?,
                Action::Docker { endpoint, op } => self.docker(&step.why, endpoint, op)?,
            }
        }
        Ok(())
    }

    /// Applies `op` through the Docker API at `endpoint`; nothing in a dry run (no connection
    /// either).
    pub fn docker(&self, why: &str, endpoint: &str, op: &DockerOp) -> anyhow::Result<()> {
        if !self.begin(why, op.line(), None) {
            return Ok(());
        }
        let done = crate::rt::until_cancelled(why, async {
            let docker = crate::docker::Docker::connect(endpoint).await?;
            op.apply(&docker).await
        })
        .and_then(|r| r);
        done.map_err(|e| {
            self.failed();
            anyhow::Error::new(e).context(format!("could not {why}"))
        })
    }

    fn record_uid(
        &self,
        step: &Step,
        path: &Path,
        record: &serde_json::Value,
        key: &str,
        at: &KubeContext,
        object: &ObjectRef,
    ) -> anyhow::Result<()> {
        let mut shown = record.clone();
        shown[key] = format!("<uid of {object}>").into();
        if !self.begin(&step.why, step.line(), Some(&pretty(&shown))) {
            return Ok(());
        }
        let failed = |e: anyhow::Error| {
            self.failed();
            e.context(format!("could not {}", step.why))
        };
        let read = crate::rt::until_cancelled(&step.why, async {
            let client = at.client().await?;
            crate::kube::object::uid(client, object).await.map_err(|e| {
                anyhow::anyhow!(
                    "reading {object} through context `{}`: {}",
                    at.context,
                    crate::kube::wait::api_message(&e)
                )
            })
        })
        .map_err(anyhow::Error::new)
        .and_then(|r| r);
        let value = read.map_err(failed)?;
        if value.is_empty() {
            return Err(failed(anyhow::anyhow!("{object} has no uid")));
        }
        let mut full = record.clone();
        full[key] = value.into();
        crate::state::write_file(path, &pretty(&full)).inspect_err(|_| self.failed())?;
        Ok(())
    }

    /// A change made through an API rather than a command (a registry push, an object applied):
    /// announced and recorded like any step; returns whether to make it (false in a dry run).
    pub fn api_step(&self, why: &str, line: &str) -> bool {
        self.begin(why, line.to_owned(), None)
    }

    /// Marks the last announced step failed (an API step whose call failed).
    pub fn fail_last(&self) {
        self.failed();
    }

    /// The steps announced so far, in order.
    pub fn steps(&self) -> Vec<StepReport> {
        self.steps.lock().expect("steps lock").clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::events::Collect;
    use crate::tool::RecordingRunner;

    #[test]
    fn dry_run_announces_every_step_and_runs_none() {
        let runner = RecordingRunner::new();
        let events = Collect::default();
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("f.json");
        let exec = Exec::new(&runner, &events, true);
        let steps = [
            Step::run(
                "create it",
                Cmd::new("/bin/kind").args(["create", "cluster"]),
            ),
            Step::run_with_input(
                "apply",
                Cmd::new("kubectl").args(["apply", "-f", "-"]),
                "token: hunter2".into(),
            ),
            Step::write("record it", file.clone(), "{}".into()),
            // API steps: no client is even built (the kubeconfig does not exist).
            Step::apply(
                "publish it",
                KubeContext {
                    kubeconfig: dir.path().join("no-kubeconfig"),
                    context: "kind-x".into(),
                },
                serde_json::json!({
                    "apiVersion": "v1", "kind": "Secret",
                    "metadata": { "name": "s", "namespace": "ns" },
                    "stringData": { "token": "hunter2" },
                }),
                false,
            ),
            Step::record_uid(
                "record its identity",
                file.clone(),
                serde_json::json!({ "createdBy": "stack" }),
                "uid",
                KubeContext {
                    kubeconfig: dir.path().join("no-kubeconfig"),
                    context: "kind-x".into(),
                },
                ObjectRef::new("v1", "Namespace", None, "kube-system"),
            ),
            // A Docker API step: no daemon is even asked.
            Step::docker(
                "map the registry on the node",
                "unix:///nonexistent/docker.sock",
                DockerOp::Exec {
                    container: "stack-control-plane".into(),
                    cmd: vec![
                        "sh".into(),
                        "-c".into(),
                        "cat > \"$1\"".into(),
                        "sh".into(),
                        "/x".into(),
                    ],
                    stdin: Some("token: hunter2".into()),
                },
            ),
        ];
        exec.execute(&steps).unwrap();
        assert!(runner.calls().is_empty(), "a dry run runs nothing");
        assert!(!file.exists(), "a dry run writes nothing");
        let lines: Vec<String> = exec.steps().into_iter().map(|s| s.line).collect();
        assert_eq!(
            lines,
            [
                "/bin/kind create cluster".to_owned(),
                "kubectl apply -f - < <redacted>".to_owned(),
                format!("write {}", file.display()),
                "apply secret ns/s (server-side, manager stack)".to_owned(),
                format!(
                    "write {} (uid: the uid of namespace kube-system, read through the API)",
                    file.display()
                ),
                "docker exec -i stack-control-plane sh -c 'cat > \"$1\"' sh /x < <redacted>"
                    .to_owned(),
            ]
        );
        let reports = exec.steps();
        assert_eq!(reports[3].contents, None, "applied objects are never shown");
        assert_eq!(
            reports[4].contents.as_deref(),
            Some("{\n  \"createdBy\": \"stack\",\n  \"uid\": \"<uid of namespace kube-system>\"\n}\n")
        );
        let json = serde_json::to_string(&events.events()).unwrap();
        assert!(!json.contains("hunter2"), "stdin is never shown: {json}");
        assert_eq!(events.events().len(), 6);
    }

    #[test]
    fn a_failed_step_is_recorded_as_failed_and_stops_the_plan() {
        let runner = RecordingRunner::new();
        runner.on(
            &["false"],
            Output {
                status: 1,
                stdout: String::new(),
                stderr: "boom".into(),
            },
        );
        let events = Collect::default();
        let exec = Exec::new(&runner, &events, false);
        let err = exec
            .execute(&[
                Step::run("fail", Cmd::new("false")),
                Step::run("never", Cmd::new("true")),
            ])
            .unwrap_err();
        assert!(format!("{err:#}").contains("could not fail"));
        let steps = exec.steps();
        assert_eq!(steps.len(), 1);
        assert_eq!(steps[0].status, StepStatus::Failed);
    }
}
