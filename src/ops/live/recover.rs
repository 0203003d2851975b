//! `stack live recover TARGET`: a release left in `pending-*` (helm killed mid-operation) blocks
//! every later upgrade with "another operation is in progress". Recovery is a rollback to the
//! newest good revision below the pending one (helm accepts a rollback of a pending release),
//! confirmed like any rollback; a release that is not pending is left alone.

use super::history::{rollback, RollbackOptions, RollbackReport};
use super::{previous_good, revisions, Confirmer};
use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::Sink;
use crate::release::Release;
use crate::tool::Host;
use serde::Serialize;

#[derive(Debug, Default)]
pub struct RecoverOptions {
    pub target: String,
    pub yes: bool,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum RecoverReport {
    /// Not pending: nothing to do.
    Healthy {
        release: String,
        revision: u64,
        #[serde(rename = "releaseStatus")]
        release_status: String,
    },
    /// Rolled back (or, under `--dry-run`, would roll back) from the pending revision.
    Recovered(RollbackReport),
}

pub fn recover(
    project: &Project,
    host: &Host,
    opts: &RecoverOptions,
    confirm: Confirmer,
    sink: &dyn Sink,
) -> anyhow::Result<RecoverReport> {
    let t = super::resolve(project, host, &opts.target, None, "recover")?;
    let rel = Release::new(&t.kube, &t.release, host)?;
    let Some(status) = rel.status() else {
        return Err(t.not_installed(None).into());
    };
    if !status.status.starts_with("pending-") {
        return Ok(RecoverReport::Healthy {
            release: t.release,
            revision: status.revision,
            release_status: status.status,
        });
    }
    let to =
        previous_good(&revisions(&rel)?, status.revision).ok_or_else(|| StackError::Usage {
            message: format!(
                "release `{}` is {} at revision {} and has no good revision before it",
                t.release, status.status, status.revision
            ),
            hint: Some(
                "inspect it with `helm history`; stack never uninstalls a live release".into(),
            ),
        })?;
    let report = rollback(
        project,
        host,
        &RollbackOptions {
            target: opts.target.clone(),
            revision: Some(to),
            yes: opts.yes,
            dry_run: opts.dry_run,
        },
        confirm,
        sink,
    )?;
    Ok(RecoverReport::Recovered(report))
}
