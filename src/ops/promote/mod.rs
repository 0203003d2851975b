//! `stack promote FROM TO`: copies the versions the source env runs — each image's tag (and
//! digest) as Helm composes FROM's values, and the chart version its Argo CD Applications pin —
//! into the target env's files, by editing only the scalar bytes that change (`yaml::edit`):
//! TO's env values file (where TO sets the value, else its own env file), its Kustomize overlays'
//! `images:` entries, its Argo CD Applications' `targetRevision`, and Flux `$imagepolicy` markers.
//!
//! Plan first: every edit is planned and every refusal collected (anchors, merge keys, values that
//! differ between aliases of one chart), each file's change shown as a unified diff; `--dry-run`
//! stops there. Then the files are written atomically through the step executor and, with
//! `--commit`, committed (`--branch` first switches to the pull request's branch) with the
//! trailers `Promoted-From`, `Source-Revision` and `Verify`. Promoting what TO already runs
//! changes nothing and commits nothing.

mod diff;
mod files;
mod gitops;
mod plan;
mod source;
mod verify;

pub use source::{ChartVersion, Image};

use crate::config::Project;
use crate::envs;
use crate::error::StackError;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, StepReport};
use crate::tool::{Host, Tool};
use serde::Serialize;

#[derive(Debug, Default)]
pub struct Options {
    pub from: String,
    pub to: String,
    /// Images to promote (stack.yaml `images:` names); none given and no `chart`: all of them.
    pub images: Vec<String>,
    /// Promote the chart version (Argo CD `targetRevision`).
    pub chart: bool,
    pub commit: bool,
    /// Commit on this branch (created from the current commit when missing); implies `commit`.
    pub branch: Option<String>,
    /// Promote without a passing verify record of FROM.
    pub force: bool,
    pub dry_run: bool,
    pub cloud: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    pub from: String,
    pub to: String,
    /// The versions promoted, as FROM runs them.
    pub images: Vec<Image>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart: Option<ChartVersion>,
    /// Files that change (none: TO already runs FROM's versions).
    pub files: Vec<FileChange>,
    /// FROM's verify result, as the `Verify:` trailer says it.
    pub verify: String,
    /// The last commit that changed FROM's values files.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_revision: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    pub dry_run: bool,
    pub steps: Vec<StepReport>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct FileChange {
    pub path: String,
    pub changes: Vec<Change>,
    /// The unified diff of the file.
    pub diff: String,
}

/// One value that changes.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Change {
    /// The value's path (`backend-api.image.tag`, `images[name=web].newTag`) or what names it.
    pub what: String,
    /// Where it is written (file:line:col), or `<file> (added)`.
    pub at: String,
    pub old: Option<String>,
    pub new: String,
}

impl Report {
    /// Nothing to change: TO already runs what FROM runs.
    pub fn up_to_date(&self) -> bool {
        self.files.is_empty()
    }
}

pub fn run(
    project: &Project,
    opts: &Options,
    host: &Host,
    sink: &dyn Sink,
) -> Result<Report, StackError> {
    let commit = opts.commit || opts.branch.is_some();
    for name in &opts.images {
        if !project.config.images.contains_key(name) {
            let names: Vec<&str> = project.config.images.keys().map(String::as_str).collect();
            return Err(StackError::Usage {
                message: format!("--image {name}: stack.yaml has no image `{name}`"),
                hint: Some(match crate::values::checks::did_you_mean(name, &names) {
                    Some(best) => format!("did you mean `{best}`?"),
                    None => format!("images: {}", names.join(", ")),
                }),
            });
        }
    }
    let chart_dir = envs::chart_dir(project)?;
    let (targets, _) = envs::targets(project, opts.cloud.as_deref())?;
    let from = envs::named(&targets, &opts.from)?;
    let to = envs::named(&targets, &opts.to)?;
    if from.name == to.name {
        return Err(StackError::Usage {
            message: format!("FROM and TO are both {}", from.name),
            hint: Some("promote from one env target to another".into()),
        });
    }
    let images_too = !opts.images.is_empty() || !opts.chart;
    if images_too && project.config.images.is_empty() {
        return Err(StackError::Usage {
            message: "nothing to promote: stack.yaml has no `images:`".into(),
            hint: Some("add the images (with their `values:` paths), or pass --chart".into()),
        });
    }

    let exec = Exec::new(host.runner, sink, opts.dry_run);
    let git = if commit {
        let g = crate::ops::git::Git {
            bin: host.tool(Tool::Git)?,
            root: &project.root,
        };
        g.require_repo(
            host.runner,
            if opts.branch.is_some() {
                "--branch"
            } else {
                "--commit"
            },
        )?;
        Some(g)
    } else {
        host.tool(Tool::Git).ok().map(|bin| crate::ops::git::Git {
            bin,
            root: &project.root,
        })
    };
    // The pull request's branch first: the plan is made from the files on it.
    if let (Some(g), Some(branch)) = (&git, &opts.branch) {
        g.switch(&exec, branch)?;
    }

    let images = if images_too {
        source::images(project, from, &opts.images)?
    } else {
        Vec::new()
    };
    let chart = source::chart(project, from, &chart_dir)?;
    if opts.chart && chart.is_none() {
        return Err(StackError::Usage {
            message: format!(
                "--chart: {} pins no chart version (no Argo CD Application with `spec.source.targetRevision` among its files)",
                from.name
            ),
            hint: Some(format!(
                "list its Application file under `promote.files.{}` in stack.yaml",
                from.name
            )),
        });
    }
    // Without --chart, the chart version goes along only when no image was named.
    let chart = chart.filter(|_| opts.chart || opts.images.is_empty());
    let verify = verify::gate(project, &from.name, &images, chart.as_ref(), opts.force)?;
    let planned = plan::plan(project, &targets, to, &images, chart.as_ref(), &chart_dir)?;
    let source_revision = git
        .as_ref()
        .and_then(|g| g.revision(host.runner, &from.layers));

    let mut report = Report {
        from: from.name.clone(),
        to: to.name.clone(),
        images,
        chart,
        files: Vec::new(),
        verify,
        source_revision,
        branch: opts.branch.clone(),
        commit: None,
        dry_run: opts.dry_run,
        steps: Vec::new(),
    };
    let mut written = Vec::new();
    for (change, text) in planned {
        exec.write(
            &format!("promote {} into {}", report.from, change.path),
            &project.root.join(&change.path),
            &text,
        )?;
        written.push(change.path.clone());
        report.files.push(change);
    }
    if let (Some(g), true, false) = (&git, commit, written.is_empty()) {
        report.commit = g.commit(&exec, &written, &message(&report))?;
    }
    report.steps = exec.steps();
    Ok(report)
}

/// `promote ci/kind → live/prod: backend 1.2.3, chart 0.4.0`, the changes, the trailers.
fn message(report: &Report) -> String {
    let mut what: Vec<String> = report
        .images
        .iter()
        .map(|i| format!("{} {}", i.name, i.tag))
        .collect();
    if let Some(c) = &report.chart {
        what.push(format!("chart {}", c.version));
    }
    let mut body = Vec::new();
    for f in &report.files {
        for c in &f.changes {
            body.push(format!(
                "{}: {} {} → {}",
                f.path,
                c.what,
                c.old.as_deref().unwrap_or("(unset)"),
                c.new
            ));
        }
    }
    format!(
        "promote {} → {}: {}\n\n{}\n\nPromoted-From: {}\nSource-Revision: {}\nVerify: {}\n",
        report.from,
        report.to,
        what.join(", "),
        body.join("\n"),
        report.from,
        report.source_revision.as_deref().unwrap_or("unknown"),
        report.verify
    )
}

/// Every refusal at once: the first at its place, the others listed below it.
fn refuse_all(mut refusals: Vec<StackError>) -> Result<(), StackError> {
    if refusals.is_empty() {
        return Ok(());
    }
    let first = refusals.remove(0);
    if refusals.is_empty() {
        return Err(first);
    }
    let (origin, message, hint) = match first {
        StackError::Config {
            origin,
            message,
            hint,
        } => (origin, message, hint),
        other => return Err(other),
    };
    let more: Vec<String> = refusals.iter().map(|e| format!("  {e}")).collect();
    Err(StackError::Config {
        origin,
        message: format!(
            "{message}\nand {} more:\n{}",
            refusals.len(),
            more.join("\n")
        ),
        hint,
    })
}
