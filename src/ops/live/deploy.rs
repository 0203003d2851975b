//! `stack live deploy TARGET`: resolve and validate, confirm, refuse a release stuck in
//! `pending-*`, `helm upgrade --install` (non-atomic; retried only while helm says another
//! operation is in progress), wait with named reasons, and on a failed upgrade or rollout roll back
//! to the previous good revision — never uninstall — with diagnostics, exit 1.

use super::{confirmed, previous_good, revisions, Confirm, Confirmer, LiveTarget};
use crate::config::Project;
use crate::error::StackError;
use crate::kube::Failure;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, StepReport};
use crate::release::{Release, Rollout};
use crate::tool::{Cmd, Host};
use serde::Serialize;

/// The one helm error a deploy retries on.
const IN_PROGRESS: &str = "another operation (install/upgrade/rollback) is in progress";

#[derive(Debug, Default)]
pub struct DeployOptions {
    pub target: String,
    pub version: Option<String>,
    pub yes: bool,
    pub dry_run: bool,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum DeployResult {
    Deployed {
        revision: u64,
        seconds: f64,
    },
    /// `--dry-run`: the command that would run.
    WouldDeploy,
    /// The release is in `pending-*` (an interrupted operation): nothing was run.
    Stuck {
        revision: u64,
        #[serde(rename = "releaseStatus")]
        release_status: String,
        hint: String,
    },
    /// The upgrade or its rollout failed and the release went back to `to`.
    RolledBack {
        to: u64,
        error: Option<String>,
        failures: Vec<Failure>,
        diagnostics: Option<String>,
    },
    /// It failed and there was no good revision to return to (a first install): the release is
    /// left as it is — never uninstalled.
    Failed {
        error: Option<String>,
        failures: Vec<Failure>,
        diagnostics: Option<String>,
    },
}

#[derive(Debug, Serialize)]
pub struct DeployReport {
    pub target: String,
    pub context: String,
    pub namespace: String,
    pub release: String,
    pub chart: String,
    pub version: Option<String>,
    /// Values files in the order helm receives them.
    pub layers: Vec<String>,
    /// The `helm upgrade --install` command line (secrets redacted).
    pub command: String,
    /// The revision that was deployed before (what a failure rolls back to).
    pub previous: Option<u64>,
    /// What the upgrade changes (objects added, changed, removed against the deployed release),
    /// read before it ran; None in a dry run, for a stuck release, or when it could not be read
    /// (`stack live diff` shows why and the diff itself).
    pub changes: Option<super::DiffSummary>,
    /// How many times helm said another operation was in progress.
    pub retries: u32,
    pub result: DeployResult,
    pub steps: Vec<StepReport>,
}

impl DeployReport {
    pub fn ok(&self) -> bool {
        matches!(
            self.result,
            DeployResult::Deployed { .. } | DeployResult::WouldDeploy
        )
    }
}

/// The exact `helm upgrade --install` for a live target (not run).
pub fn upgrade_cmd(rel: &Release, t: &LiveTarget) -> Cmd {
    chart_flags(rel.upgrade_cmd(&t.chart, &t.env.layers), t)
}

/// The exact `helm template` the upgrade of a live target would apply (not run).
pub fn template_cmd(rel: &Release, t: &LiveTarget) -> Cmd {
    chart_flags(rel.template_cmd(&t.chart, &t.env.layers), t)
}

/// `--version` and `--plain-http`, as the target's chart needs them.
fn chart_flags(mut cmd: Cmd, t: &LiveTarget) -> Cmd {
    if let Some(v) = &t.version {
        cmd = cmd.args(["--version", v.as_str()]);
    }
    if t.plain_http {
        cmd = cmd.arg("--plain-http");
    }
    cmd
}

pub fn deploy(
    project: &Project,
    host: &Host,
    opts: &DeployOptions,
    confirm: Confirmer,
    sink: &dyn Sink,
) -> anyhow::Result<DeployReport> {
    let t = super::resolve(
        project,
        host,
        &opts.target,
        opts.version.as_deref(),
        "deploy",
    )?;
    super::target::validate_env(project, host, &t)?;
    let rel = Release::new(&t.kube, &t.release, host)?;
    let cmd = upgrade_cmd(&rel, &t);
    let what = match &t.version {
        Some(v) => format!("deploy {} version {v}", t.chart),
        None => format!("deploy {}", t.chart),
    };
    confirmed(
        opts.yes,
        opts.dry_run,
        &Confirm {
            action: what,
            context: t.kube.context().to_owned(),
            namespace: t.kube.namespace().to_owned(),
            release: t.release.clone(),
        },
        confirm,
    )?;
    let exec = Exec::new(host.runner, sink, opts.dry_run);
    let mut report = DeployReport {
        target: t.env.name.clone(),
        context: t.kube.context().to_owned(),
        namespace: t.kube.namespace().to_owned(),
        release: t.release.clone(),
        chart: t.chart.clone(),
        version: t.version.clone(),
        layers: t.env.layers.clone(),
        command: cmd.to_string(),
        previous: None,
        changes: None,
        retries: 0,
        result: DeployResult::WouldDeploy,
        steps: Vec::new(),
    };
    // Read-only: what is deployed now, and what a failure would roll back to.
    if let Some(status) = rel.status() {
        if status.status.starts_with("pending-") {
            report.result = DeployResult::Stuck {
                revision: status.revision,
                release_status: status.status.clone(),
                hint: format!(
                    "an earlier helm operation was interrupted; `stack live recover {}` (or `helm rollback {} {}` to the last good revision) clears it",
                    t.env.name,
                    t.release,
                    status.revision.saturating_sub(1)
                ),
            };
            return Ok(report);
        }
        report.previous = previous_good(&revisions(&rel)?, u64::MAX);
    }
    // Read-only, best effort: the deploy never fails for want of a diff.
    if !opts.dry_run {
        report.changes = super::diff::compare(&rel, &t, host).ok().map(|d| d.summary);
    }
    // Re-checked right before the mutating step.
    crate::release::allowlist::check(
        t.kube.context(),
        &allowed(project),
        &format!("deploy live target `{}`", t.env.name),
    )?;
    let upgraded = loop {
        match rel.upgrade(&cmd, &exec) {
            Err(e) if e.to_string().contains(IN_PROGRESS) && report.retries < t.retries => {
                report.retries += 1;
                std::thread::sleep(std::time::Duration::from_secs(1u64 << report.retries));
            }
            other => break other,
        }
    };
    let result = match upgraded {
        Ok(None) => DeployResult::WouldDeploy,
        Ok(Some(_)) => match rel.wait(
            &crate::state::State::new(&project.root).diagnostics(&rel.name),
            t.timeout,
            sink,
        )? {
            Rollout::Ready { seconds } => DeployResult::Deployed {
                revision: rel.status().map(|s| s.revision).unwrap_or_default(),
                seconds,
            },
            Rollout::NotWaited => DeployResult::WouldDeploy,
            Rollout::Failed {
                failures,
                diagnostics,
            } => back_out(
                &rel,
                &exec,
                report.previous,
                None,
                failures,
                Some(diagnostics),
            )?,
        },
        Err(e) => {
            let error = e.to_string();
            let dir = crate::state::State::new(&project.root).diagnostics(&t.release);
            exec.write(
                "what helm said (diagnostics)",
                &dir.join("helm-upgrade.txt"),
                &format!("{error}\n"),
            )?;
            let shown = dir
                .strip_prefix(&project.root)
                .unwrap_or(&dir)
                .display()
                .to_string();
            back_out(
                &rel,
                &exec,
                report.previous,
                Some(error),
                Vec::new(),
                Some(shown),
            )?
        }
    };
    report.result = result;
    report.steps = exec.steps();
    Ok(report)
}

/// After a failure: back to `previous` when there is one (never an uninstall).
fn back_out(
    rel: &Release,
    exec: &Exec,
    previous: Option<u64>,
    error: Option<String>,
    failures: Vec<Failure>,
    diagnostics: Option<String>,
) -> Result<DeployResult, StackError> {
    match previous {
        Some(to) => {
            rel.rollback(to, exec)?;
            Ok(DeployResult::RolledBack {
                to,
                error,
                failures,
                diagnostics,
            })
        }
        None => Ok(DeployResult::Failed {
            error,
            failures,
            diagnostics,
        }),
    }
}

/// The live allowlist: the project's explicit lists only.
pub(super) fn allowed(project: &Project) -> Vec<String> {
    let mut list = project.config.cluster.allowed_contexts.clone();
    list.extend(project.config.live.allowed_contexts.iter().cloned());
    list
}
