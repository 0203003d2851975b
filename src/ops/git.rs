//! git in the project's work tree, through the Runner: read-only questions (`ask`), and changes as
//! steps of the executor. Shared by `stack promote` (the source values' revision, the branch a pull
//! request comes from, the commit with its trailers — here) and `stack release` (tags and commit
//! messages — in `ops::publish`).

use crate::error::StackError;
use crate::ops::plan::Exec;
use crate::tool::{Cmd, Runner};
use std::path::{Path, PathBuf};

pub struct Git<'a> {
    pub bin: PathBuf,
    pub root: &'a Path,
}

impl Git<'_> {
    pub(crate) fn cmd(&self) -> Cmd {
        Cmd::new(&self.bin)
            .arg("-C")
            .arg(self.root.to_string_lossy())
    }

    /// A read-only question; `None` when git says no (not a repository, no such ref).
    pub(crate) fn ask(&self, runner: &dyn Runner, args: &[&str]) -> Option<String> {
        let out = runner.output(&self.cmd().args(args.iter().copied())).ok()?;
        out.success().then(|| out.stdout.trim().to_owned())
    }

    /// Fails unless the project is in a git work tree.
    pub fn require_repo(&self, runner: &dyn Runner, flag: &str) -> Result<(), StackError> {
        match self.ask(runner, &["rev-parse", "--is-inside-work-tree"]) {
            Some(s) if s == "true" => Ok(()),
            _ => Err(StackError::Usage {
                message: format!(
                    "{flag} needs a git repository: {} is not in one",
                    self.root.display()
                ),
                hint: Some(format!("run `git init` there, or drop {flag}")),
            }),
        }
    }

    /// The last commit that changed `files` (`-dirty` when they have uncommitted changes).
    pub fn revision(&self, runner: &dyn Runner, files: &[String]) -> Option<String> {
        let mut log = vec!["log", "-1", "--format=%H", "--"];
        log.extend(files.iter().map(String::as_str));
        let rev = self.ask(runner, &log).filter(|r| !r.is_empty())?;
        let mut status = vec!["status", "--porcelain", "--"];
        status.extend(files.iter().map(String::as_str));
        let dirty = self.ask(runner, &status).is_some_and(|s| !s.is_empty());
        Some(if dirty { format!("{rev}-dirty") } else { rev })
    }

    /// Switches to `branch`, creating it from the current commit when it does not exist.
    pub fn switch(&self, exec: &Exec, branch: &str) -> Result<(), StackError> {
        let current = self.ask(exec.runner, &["rev-parse", "--abbrev-ref", "HEAD"]);
        if current.as_deref() == Some(branch) {
            return Ok(());
        }
        let exists = self
            .ask(
                exec.runner,
                &[
                    "rev-parse",
                    "--verify",
                    "--quiet",
                    &format!("refs/heads/{branch}"),
                ],
            )
            .is_some();
        let cmd = if exists {
            self.cmd().args(["switch", branch])
        } else {
            self.cmd().args(["switch", "-c", branch])
        };
        exec.run(
            &format!("switch to branch {branch} for the pull request"),
            &cmd,
        )
        .map(|_| ())
        .map_err(|e| StackError::tool(e, "commit or stash your changes, then run again"))
    }

    /// Stages `files` and commits exactly them with `message`; the new commit's id (None in a
    /// dry run).
    pub fn commit(
        &self,
        exec: &Exec,
        files: &[String],
        message: &str,
    ) -> Result<Option<String>, StackError> {
        let hint = "fix what git says above (e.g. set user.name and user.email), then run again: the files are already written";
        exec.run(
            "stage the promoted files",
            &self.cmd().args(["add", "--"]).args(files.iter().cloned()),
        )
        .map_err(|e| StackError::tool(e, hint))?;
        let ran = exec
            .run(
                "commit the promotion",
                &self
                    .cmd()
                    .args(["commit", "--quiet", "-m", message, "--"])
                    .args(files.iter().cloned()),
            )
            .map_err(|e| StackError::tool(e, hint))?;
        Ok(ran.and_then(|_| self.ask(exec.runner, &["rev-parse", "HEAD"])))
    }
}
