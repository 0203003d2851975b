//! `stack live history TARGET` (Helm's own revisions) and `stack live rollback TARGET
//! [REVISION]` (default: the previous good revision), confirmed like a deploy.

use super::{confirmed, previous_good, revisions, Confirm, Confirmer, Revision};
use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, StepReport};
use crate::release::Release;
use crate::tool::Host;
use serde::Serialize;

#[derive(Debug, Serialize)]
pub struct HistoryReport {
    pub target: String,
    pub context: String,
    pub namespace: String,
    pub release: String,
    /// Oldest first.
    pub revisions: Vec<Revision>,
}

pub fn history(project: &Project, host: &Host, target: &str) -> anyhow::Result<HistoryReport> {
    let t = super::resolve(project, host, target, None, "read the history of")?;
    let rel = Release::new(&t.kube, &t.release, host)?;
    let mut revisions = if rel.status().is_some() {
        revisions(&rel)?
    } else {
        Vec::new()
    };
    // What each revision ran: the images of its manifest (helm keeps every revision's).
    for r in &mut revisions {
        if let Some(text) = rel.manifest_at(Some(r.revision))? {
            let objects = crate::release::manifest::objects(&text, "helm get manifest")?;
            r.images = crate::release::manifest::images(&objects)
                .into_iter()
                .map(|(_, image)| image)
                .collect();
        }
    }
    Ok(HistoryReport {
        target: t.env.name.clone(),
        context: t.kube.context().to_owned(),
        namespace: t.kube.namespace().to_owned(),
        release: t.release,
        revisions,
    })
}

#[derive(Debug, Default)]
pub struct RollbackOptions {
    pub target: String,
    /// Default: the newest good revision below the deployed one.
    pub revision: Option<u64>,
    pub yes: bool,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
pub struct RollbackReport {
    pub target: String,
    pub context: String,
    pub namespace: String,
    pub release: String,
    /// The revision deployed before.
    pub from: u64,
    pub to: u64,
    /// The new revision helm made (none under `--dry-run`).
    pub revision: Option<u64>,
    pub steps: Vec<StepReport>,
}

pub fn rollback(
    project: &Project,
    host: &Host,
    opts: &RollbackOptions,
    confirm: Confirmer,
    sink: &dyn Sink,
) -> anyhow::Result<RollbackReport> {
    let t = super::resolve(project, host, &opts.target, None, "roll back")?;
    let rel = Release::new(&t.kube, &t.release, host)?;
    let Some(status) = rel.status() else {
        return Err(t
            .not_installed(Some(format!(
                "deploy it first: `stack live deploy {}`",
                t.env.name
            )))
            .into());
    };
    let all = revisions(&rel)?;
    let to = match opts.revision {
        Some(r) => {
            if !all.iter().any(|x| x.revision == r) {
                return Err(StackError::Usage {
                    message: format!("release `{}` has no revision {r}", t.release),
                    hint: Some(format!("see `stack live history {}`", t.env.name)),
                }
                .into());
            }
            r
        }
        None => previous_good(&all, status.revision).ok_or_else(|| StackError::Usage {
            message: format!(
                "release `{}` has no good revision before {}",
                t.release, status.revision
            ),
            hint: Some(format!(
                "name one: `stack live rollback {} REVISION`",
                t.env.name
            )),
        })?,
    };
    confirmed(
        opts.yes,
        opts.dry_run,
        &Confirm {
            action: format!("roll back from revision {} to {to}", status.revision),
            context: t.kube.context().to_owned(),
            namespace: t.kube.namespace().to_owned(),
            release: t.release.clone(),
        },
        confirm,
    )?;
    let exec = Exec::new(host.runner, sink, opts.dry_run);
    crate::release::allowlist::check(
        t.kube.context(),
        &super::deploy::allowed(project),
        &format!("roll back live target `{}`", t.env.name),
    )?;
    rel.rollback(to, &exec)?;
    let revision = if opts.dry_run {
        None
    } else {
        rel.status().map(|s| s.revision)
    };
    Ok(RollbackReport {
        target: t.env.name.clone(),
        context: t.kube.context().to_owned(),
        namespace: t.kube.namespace().to_owned(),
        release: t.release,
        from: status.revision,
        to,
        revision,
        steps: exec.steps(),
    })
}
