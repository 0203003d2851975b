//! `stack init github`: writes the project's GitHub Actions workflows from templates embedded in
//! the binary (`templates/github/*.yml.j2`, minijinja), so no file outside the binary is needed.
//!
//! A workflow file is stack's while it is byte for byte what stack would write now: such a file
//! is left alone ("up to date"), a missing one is created, and one that differs — edited by its
//! user, or written by an older template — is never overwritten without `--force`: the report
//! carries the unified diff (your file → stack's) and the run ends with findings (exit 1).
//! Everything is planned before anything is written, so a refusal writes nothing at all; writes
//! go through the step executor (atomic, announced, skipped under `--dry-run`).
//!
//! The template context is deliberately small (`Context`): nothing in it depends on the stack
//! version or the time, else every upgrade of stack would turn every file into a conflict.

use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, StepReport};
use crate::tool::{Cmd, Host, Tool};
use serde::Serialize;
use std::path::Path;

/// The workflows `stack init github` writes: the path (relative to the project root) and its
/// template.
const WORKFLOWS: &[(&str, &str)] = &[(
    ".github/workflows/ci.yml",
    include_str!("../../templates/github/ci.yml.j2"),
)];

/// The branch pushes run CI on when the repository does not say (no `origin/HEAD`).
const FALLBACK_BRANCH: &str = "main";

#[derive(Debug, Default)]
pub struct Options {
    /// Overwrite files that differ from what stack would write.
    pub force: bool,
    pub dry_run: bool,
}

/// What the templates see. Every value is already quoted for the place it goes, so a project
/// name or branch with YAML-special characters cannot break the file.
#[derive(Debug, Serialize)]
pub struct Context {
    /// `"<project> CI"` as a YAML double-quoted string (`Project::project_name`).
    pub name: String,
    /// The branch pushes run on, a YAML double-quoted string: `origin/HEAD`'s branch, else `main`.
    pub default_branch: String,
    /// stack's source repository as a GitHub expression string literal (`'https://…'`), the
    /// default of `STACK_GIT`; empty when this build of stack does not know it (Cargo.toml has no
    /// `repository`), and the workflow then requires the Actions variable `STACK_GIT`.
    pub stack_git: String,
    /// The environment variables `test.pullSecret` reads (user name, password/token): the e2e step
    /// gets each from the repository secret of the same name.
    pub registry_secrets: Vec<String>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FileStatus {
    /// The file did not exist: created (or, in a dry run, would be).
    Create,
    /// The file is exactly what stack would write: left alone.
    UpToDate,
    /// The file differed and `--force` was given: overwritten (or would be).
    Overwrite,
    /// The file differs and no `--force`: not written.
    Refused,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileReport {
    /// Relative to the project root.
    pub path: String,
    pub status: FileStatus,
    /// The unified diff from the file on disk (`/dev/null` when missing) to what stack writes;
    /// absent when up to date.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub files: Vec<FileReport>,
    /// Things the user must do for the workflows to work (e.g. set `STACK_GIT`).
    pub notes: Vec<String>,
    pub dry_run: bool,
    pub force: bool,
    pub steps: Vec<StepReport>,
}

impl Report {
    /// A file differs from what stack would write and was left as it is (no `--force`).
    pub fn refused(&self) -> bool {
        self.files.iter().any(|f| f.status == FileStatus::Refused)
    }

    /// Every file is already what stack would write.
    pub fn up_to_date(&self) -> bool {
        self.files.iter().all(|f| f.status == FileStatus::UpToDate)
    }
}

/// The context for `project`: its name, its default branch (read-only git, when git is there).
pub fn context(project: &Project, host: &Host) -> Context {
    let branch = host
        .tool(Tool::Git)
        .ok()
        .and_then(|git| origin_head(host, &git, &project.root))
        .unwrap_or_else(|| FALLBACK_BRANCH.to_owned());
    Context {
        name: yaml_string(&format!("{} CI", project.project_name())),
        default_branch: yaml_string(&branch),
        stack_git: stack_repository()
            .map(|url| format!("'{}'", url.replace('\'', "''")))
            .unwrap_or_default(),
        registry_secrets: project
            .config
            .test
            .pull_secret
            .iter()
            .flat_map(|p| [p.username_env.clone(), p.password_env.clone()])
            // A name a secret can have (and a YAML key needs no quoting): others are left out.
            .filter(|n| {
                !n.is_empty()
                    && !n.starts_with(|c: char| c.is_ascii_digit())
                    && n.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
            })
            .collect(),
    }
}

/// The branch `refs/remotes/origin/HEAD` points at (what `git clone` records as the remote's
/// default branch); `None` when there is no such ref or no repository.
fn origin_head(host: &Host, git: &Path, root: &Path) -> Option<String> {
    let cmd = Cmd::new(git).arg("-C").arg(root.to_string_lossy()).args([
        "symbolic-ref",
        "--quiet",
        "--short",
        "refs/remotes/origin/HEAD",
    ]);
    let out = host.runner.output(&cmd).ok().filter(|o| o.success())?;
    let short = out.stdout.trim();
    let branch = short.strip_prefix("origin/").unwrap_or(short);
    (!branch.is_empty()).then(|| branch.to_owned())
}

/// Where stack's source lives, from Cargo.toml's `repository` at build time.
fn stack_repository() -> Option<&'static str> {
    Some(env!("CARGO_PKG_REPOSITORY")).filter(|s| !s.is_empty())
}

/// A YAML double-quoted scalar (JSON's string syntax is a subset of it).
fn yaml_string(s: &str) -> String {
    serde_json::to_string(s).expect("strings serialize")
}

/// Every workflow, rendered: (relative path, contents).
pub fn render(ctx: &Context) -> Vec<(&'static str, String)> {
    let mut env = minijinja::Environment::new();
    env.set_keep_trailing_newline(true);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    WORKFLOWS
        .iter()
        .map(|(path, template)| {
            let text = env
                .render_str(template, ctx)
                .unwrap_or_else(|e| panic!("the embedded template for {path} renders: {e:#}"));
            (*path, text)
        })
        .collect()
}

/// `stack init github`: plan every workflow file against what is on disk, then write what is
/// missing (and, with `--force`, what differs) — or nothing, when a file differs without `--force`.
pub fn github(
    project: &Project,
    opts: &Options,
    host: &Host,
    sink: &dyn Sink,
) -> Result<Report, StackError> {
    let ctx = context(project, host);
    let mut planned = Vec::new();
    for (rel, text) in render(&ctx) {
        let path = project.root.join(rel);
        let current = read_existing(&path)?;
        let (status, diff) = match &current {
            None => (FileStatus::Create, Some(unified(None, rel, &text))),
            Some(old) if *old == text => (FileStatus::UpToDate, None),
            Some(old) if opts.force => {
                (FileStatus::Overwrite, Some(unified(Some(old), rel, &text)))
            }
            Some(old) => (FileStatus::Refused, Some(unified(Some(old), rel, &text))),
        };
        planned.push((
            FileReport {
                path: rel.to_owned(),
                status,
                diff,
            },
            text,
        ));
    }
    let refused = planned.iter().any(|(f, _)| f.status == FileStatus::Refused);
    let exec = Exec::new(host.runner, sink, opts.dry_run);
    if !refused {
        for (file, text) in &planned {
            let why = match file.status {
                FileStatus::Create => format!("create the GitHub Actions workflow {}", file.path),
                FileStatus::Overwrite => {
                    format!("overwrite {} with what stack writes (--force)", file.path)
                }
                FileStatus::UpToDate | FileStatus::Refused => continue,
            };
            exec.write(&why, &project.root.join(&file.path), text)?;
        }
    }
    let mut notes = Vec::new();
    let writes = planned
        .iter()
        .any(|(f, _)| matches!(f.status, FileStatus::Create | FileStatus::Overwrite));
    if ctx.stack_git.is_empty() && writes && !refused {
        notes.push(
            "this build of stack does not know where its source lives: set the Actions variable \
             STACK_GIT to stack's git URL (Settings → Secrets and variables → Actions → \
             Variables), or the install step fails"
                .to_owned(),
        );
    }
    Ok(Report {
        files: planned.into_iter().map(|(f, _)| f).collect(),
        notes,
        dry_run: opts.dry_run,
        force: opts.force,
        steps: exec.steps(),
    })
}

/// The file's text, or `None` when there is none. A file that is not UTF-8 is compared (and
/// diffed) as read lossily: it differs from what stack writes either way.
fn read_existing(path: &Path) -> Result<Option<String>, StackError> {
    match std::fs::read(path) {
        Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(StackError::config(
            None,
            format!("cannot read {}: {e}", path.display()),
            "it must be a readable file (or absent) for stack to write the workflow there",
        )),
    }
}

/// `--- a/<path>` (or `/dev/null`) / `+++ b/<path>`, hunks with three lines of context.
fn unified(old: Option<&String>, path: &str, new: &str) -> String {
    let from = match old {
        Some(_) => format!("a/{path}"),
        None => "/dev/null".to_owned(),
    };
    similar::TextDiff::from_lines(old.map_or("", String::as_str), new)
        .unified_diff()
        .context_radius(3)
        .header(&from, &format!("b/{path}"))
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(stack_git: &str) -> Context {
        Context {
            name: yaml_string("shop CI"),
            default_branch: yaml_string("main"),
            stack_git: stack_git.into(),
            registry_secrets: Vec::new(),
        }
    }

    #[test]
    fn renders_github_expressions_untouched_and_the_context_quoted() {
        let (path, text) = &render(&ctx("'https://example.com/stack.git'"))[0];
        assert_eq!(*path, ".github/workflows/ci.yml");
        assert!(text.starts_with("# Generated by `stack init github`"));
        assert!(text.ends_with("run: stack cluster down\n"));
        assert!(text.contains("name: \"shop CI\"\n"));
        assert!(text.contains("branches: [\"main\"]\n"));
        assert!(text.contains("  group: ${{ github.workflow }}-${{ github.ref }}\n  cancel"));
        assert!(text.contains(
            "  STACK_GIT: ${{ vars.STACK_GIT || 'https://example.com/stack.git' }}\n  STACK_REV: ${{ vars.STACK_REV }}\n\njobs:"
        ));
        assert!(!text.contains("{%") && !text.contains("{#"), "{text}");
    }

    #[test]
    fn without_a_known_repository_stack_git_must_be_set() {
        let (_, text) = &render(&ctx(""))[0];
        assert!(text.contains("  STACK_GIT: ${{ vars.STACK_GIT }}\n  STACK_REV:"));
    }

    #[test]
    fn quoting_keeps_odd_names_inside_their_scalar() {
        assert_eq!(yaml_string("a\"b: c"), "\"a\\\"b: c\"");
    }
}
