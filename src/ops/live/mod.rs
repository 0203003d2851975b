//! `stack live …`: released charts to production targets, safely. Every command first resolves
//! the target completely (`target.rs`: env target of type `live`, its declared and allowlisted
//! context, namespace, release, chart and version) and validates its env, before any cluster
//! call. Then `diff.rs` (the upgrade's manifests against the deployed release's, Secrets
//! redacted), `deploy.rs` (confirmed, retried only on "another operation is in progress", waited
//! for, rolled back — never uninstalled — on failure), `history.rs` (history, rollback) and
//! `recover.rs` (a release stuck in `pending-*`), all through the release layer and one `Exec`.

pub mod deploy;
pub mod diff;
pub mod history;
pub mod recover;
pub mod target;
pub mod verify;

pub use deploy::{deploy, DeployOptions, DeployReport, DeployResult};
pub use diff::{diff, Change, DiffOptions, DiffReport, DiffSummary, ObjectDiff};
pub use history::{history, rollback, HistoryReport, RollbackOptions, RollbackReport};
pub use recover::{recover, RecoverOptions, RecoverReport};
pub use target::{resolve, LiveTarget};
pub use verify::{verify, VerifyOptions, VerifyReport};

use crate::error::StackError;

/// What a mutating live command is about to do, for the confirmation question.
#[derive(Debug, Clone)]
pub struct Confirm {
    /// `deploy chart oci://…/app 1.2.0`, `roll back to revision 3`.
    pub action: String,
    pub context: String,
    pub namespace: String,
    pub release: String,
}

/// Asks the user (ui's job); `Ok(false)` = declined, `Err` = cannot ask (no TTY: exit 2).
pub type Confirmer<'a> = &'a dyn Fn(&Confirm) -> Result<bool, StackError>;

/// Asks unless `yes` or `dry_run`; a declined question changes nothing (exit 2).
fn confirmed(
    yes: bool,
    dry_run: bool,
    question: &Confirm,
    confirm: Confirmer,
) -> Result<(), StackError> {
    if yes || dry_run || confirm(question)? {
        return Ok(());
    }
    Err(StackError::Usage {
        message: format!("not confirmed: {} was not done", question.action),
        hint: None,
    })
}

/// The refusal when no one can be asked: no TTY on stdin and no `--yes`.
pub fn no_tty_refusal(question: &Confirm) -> StackError {
    StackError::Usage {
        message: format!(
            "refusing to {} (release `{}` in namespace `{}` on context `{}`) without confirmation: stdin is not a terminal",
            question.action, question.release, question.namespace, question.context
        ),
        hint: Some("pass --yes to confirm non-interactively (CI), or run it in a terminal".into()),
    }
}

/// One revision of `helm history -o json`.
#[derive(Debug, Clone, serde::Serialize, PartialEq, Eq)]
pub struct Revision {
    pub revision: u64,
    pub updated: String,
    pub status: String,
    pub chart: String,
    #[serde(rename = "appVersion")]
    pub app_version: String,
    pub description: String,
    /// A later `helm rollback` backed out of this revision (helm still calls it `superseded`,
    /// but its rollout failed or someone undid it): never a default rollback target.
    #[serde(rename = "backedOut")]
    pub backed_out: bool,
    /// The container images this revision ran (from its manifest; `stack live history` only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<String>,
}

impl Revision {
    fn from_helm(v: &serde_json::Value) -> Option<Revision> {
        let s = |k: &str| v[k].as_str().unwrap_or_default().to_owned();
        Some(Revision {
            revision: v["revision"].as_u64()?,
            updated: s("updated"),
            status: s("status"),
            chart: s("chart"),
            app_version: s("app_version"),
            description: s("description"),
            backed_out: false,
            images: Vec::new(),
        })
    }

    /// A revision that ran and was not backed out: what a rollback may return to.
    pub fn good(&self) -> bool {
        matches!(self.status.as_str(), "deployed" | "superseded") && !self.backed_out
    }
}

/// Every revision, oldest first.
fn revisions(rel: &crate::release::Release) -> Result<Vec<Revision>, StackError> {
    let mut all: Vec<Revision> = rel
        .history()?
        .iter()
        .filter_map(Revision::from_helm)
        .collect();
    all.sort_by_key(|r| r.revision);
    mark_backed_out(&mut all);
    Ok(all)
}

/// Marks the revision right before each `Rollback to N` revision (sorted oldest first).
fn mark_backed_out(all: &mut [Revision]) {
    for i in 1..all.len() {
        if all[i].description.starts_with("Rollback to ") {
            all[i - 1].backed_out = true;
        }
    }
}

/// The newest good revision strictly below `below`.
pub fn previous_good(history: &[Revision], below: u64) -> Option<u64> {
    history
        .iter()
        .filter(|r| r.revision < below && r.good())
        .map(|r| r.revision)
        .max()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rev(revision: u64, status: &str) -> Revision {
        Revision {
            revision,
            updated: String::new(),
            status: status.into(),
            chart: String::new(),
            app_version: String::new(),
            description: String::new(),
            backed_out: false,
            images: Vec::new(),
        }
    }

    #[test]
    fn previous_good_skips_failed_and_pending() {
        let h = [
            rev(1, "superseded"),
            rev(2, "failed"),
            rev(3, "deployed"),
            rev(4, "pending-upgrade"),
        ];
        assert_eq!(previous_good(&h, u64::MAX), Some(3));
        assert_eq!(previous_good(&h, 3), Some(1));
        assert_eq!(previous_good(&h, 1), None);
    }

    #[test]
    fn a_revision_a_rollback_backed_out_of_is_not_good() {
        let mut h = [
            rev(1, "superseded"),
            rev(2, "superseded"),
            rev(3, "deployed"),
        ];
        h[2].description = "Rollback to 1".into();
        mark_backed_out(&mut h);
        assert!(h[1].backed_out && !h[0].backed_out);
        assert_eq!(previous_good(&h, 3), Some(1));
    }

    #[test]
    fn revision_from_helm_json() {
        let v = serde_json::json!({"revision": 2, "updated": "2026-01-01T00:00:00Z", "status": "deployed",
            "chart": "web-1.0.0", "app_version": "1.0", "description": "Upgrade complete"});
        let r = Revision::from_helm(&v).unwrap();
        assert_eq!(
            (r.revision, r.chart.as_str(), r.app_version.as_str()),
            (2, "web-1.0.0", "1.0")
        );
        assert!(r.good());
    }
}
