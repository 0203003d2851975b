//! Plan, then execute: a list of steps built from what was observed, printed by `--dry-run`, run
//! in order otherwise. Observation (read-only commands) happens before the plan is built.

use crate::error::StackError;
use crate::tool::{Cmd, RunError, Runner};
use serde::Serialize;
use std::path::PathBuf;

/// One thing `up` or `down` changes.
#[derive(Clone, Debug)]
pub enum Action {
    /// A command; `input` is what it reads on stdin (shown by `--dry-run`, never a secret).
    Run { cmd: Cmd, input: Option<String> },
    /// A file stack owns under `.stack/` (written to a temp file, then renamed).
    Write { path: PathBuf, contents: String },
    /// A file stack owns under `.stack/`; a missing file is fine.
    Remove { path: PathBuf },
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
            action: Action::Run { cmd, input: None },
        }
    }

    pub fn run_with_input(why: impl Into<String>, cmd: Cmd, input: String) -> Self {
        let cmd = cmd.stdin_secret(input.clone());
        Step {
            why: why.into(),
            action: Action::Run {
                cmd,
                input: Some(input),
            },
        }
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
            Action::Run { cmd, .. } => cmd.to_string(),
            Action::Write { path, .. } => format!("write {}", path.display()),
            Action::Remove { path } => format!("rm -f {}", path.display()),
        }
    }

    pub fn report(&self) -> StepReport {
        StepReport {
            why: self.why.clone(),
            line: self.line(),
            input: match &self.action {
                Action::Run { input, .. } => input.clone(),
                Action::Write { contents, .. } => Some(contents.clone()),
                Action::Remove { .. } => None,
            },
        }
    }
}

/// A step as reports show it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepReport {
    pub why: String,
    pub line: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input: Option<String>,
}

/// Runs steps in order, stopping at the first failure (re-running converges: every step is
/// planned from what exists).
pub fn execute(steps: &[Step], runner: &dyn Runner) -> anyhow::Result<()> {
    for step in steps {
        match &step.action {
            Action::Run { cmd, .. } => {
                runner.run(cmd).map_err(|e| step_error(step, e))?;
            }
            Action::Write { path, contents } => write_atomic(path, contents)?,
            Action::Remove { path } => match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(anyhow::anyhow!("cannot remove {}: {e}", path.display())),
            },
        }
    }
    Ok(())
}

fn step_error(step: &Step, e: RunError) -> anyhow::Error {
    anyhow::Error::new(StackError::tool(
        e,
        "fix the cause above, then run the command again: each step is planned from what exists",
    ))
    .context(format!("could not {}", step.why))
}

/// [`crate::state::write_atomic`], naming the file on failure.
pub fn write_atomic(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    crate::state::write_atomic(path, contents.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot write {}: {e}", path.display()))
}
