//! `stack test local|ci`: deploy production-like (local) or published (ci) artifacts as a test
//! release, run the declared checks, collect diagnostics on failure, clean up after a pass.
//!
//! One pass, in order, each phase emitted as `Event::Phase` (GitHub groups):
//! 1. prepare — checks loaded and validated (exit 2 at file:line before anything runs), the env
//!    target validated as `up` validates its dev env, the cluster resolved and its context
//!    checked against the allowlist, release and namespace names rendered;
//! 2. artifacts — `local`: each image's production stage built (`build` with `production`) and
//!    delivered to the cluster's registry; `ci`: nothing is built: the published chart and every
//!    image the rendered manifests name are confirmed in their registries (`crate::oci`, manifest
//!    HEAD with credentials) — a missing one ends the run (exit 1), nothing deployed;
//! 3. deploy — namespace created and labelled when missing (its UID recorded: only a namespace
//!    stack created is ever removed), objects the release would own but another owner holds are
//!    reported as conflicts before any change, the pull Secret applied and the default
//!    ServiceAccount patched, `helm upgrade --install` through the release layer, the rollout
//!    waited for;
//! 4. checks — `crate::check::run_all` with the named forwards open;
//! 5. diagnostics — on any failure, before anything is torn down, into the artifacts directory;
//! 6. cleanup — a passing run's release is uninstalled (and its namespace removed when stack
//!    created it); a failing one is kept (`stack test clean <profile>` removes it); `--keep`
//!    always keeps.

mod artifacts;
mod conflicts;
mod namespace;
mod profile;
mod pull;

use crate::check::{Outcome, Status};
use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::{Event, Sink};
use crate::ops::plan::{Exec, StepReport};
use crate::release::{KubeTarget, Record, Release, Rollout, Uninstalled};
use crate::tool::Host;
use serde::Serialize;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

pub use profile::ProfileName;

#[derive(Debug, Default)]
pub struct Options {
    pub profile: ProfileName,
    /// `ci`: `oci://REG/PATH/NAME` (else `test.ci.chart.reference`).
    pub chart: Option<String>,
    /// `ci`: the chart version (else `test.ci.chart.version`).
    pub chart_version: Option<String>,
    /// `ci`: `NAME=REF` image references (override `test.ci.images`).
    pub images: Vec<(String, String)>,
    pub context: Option<String>,
    /// Keep the release even when every check passed.
    pub keep: bool,
    /// Checks at once (else `test.jobs`).
    pub jobs: Option<usize>,
    /// The check run's deadline (else `test.timeoutSeconds`).
    pub timeout: Option<Duration>,
    /// Diagnostics directory (else `.stack/artifacts/test-<profile>/`).
    pub artifacts: Option<PathBuf>,
    /// Run the checks against the test release as deployed (kept by an earlier run): nothing is
    /// built, confirmed or deployed, and the release is kept.
    pub no_deploy: bool,
}

/// How the run ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    /// Every check passed.
    Passed,
    /// A check did not pass.
    Failed,
    /// An image failed to build (`local`).
    BuildFailed,
    /// The published chart or an image is not in its registry (`ci`): nothing was deployed.
    Missing,
    /// Objects the release would own belong to someone else: nothing was deployed.
    Conflict,
    /// The release's workloads did not become ready.
    RolloutFailed,
}

/// An artifact confirmed (or not) in its registry.
#[derive(Clone, Debug, Serialize)]
pub struct Published {
    /// `chart`, or `image <name>` (from the manifests: `deployment/api container api`).
    pub what: String,
    pub reference: String,
    /// `found`, `missing`, or the error.
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// What happened to the release after the run.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum Cleanup {
    /// Passed: uninstalled (and the namespace removed when stack created it).
    Removed { namespace_removed: bool },
    /// Kept for inspection (a failure, or `--keep`): how to remove it.
    Kept { remove_with: String },
    /// Nothing was deployed.
    NothingDeployed,
}

#[derive(Debug, Serialize)]
pub struct Report {
    pub profile: ProfileName,
    pub status: RunStatus,
    pub context: String,
    pub namespace: String,
    pub release: String,
    /// The chart directory (local) or `oci://…` reference (ci).
    pub chart: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    pub env: String,
    /// Values files in the order helm receives them.
    pub layers: Vec<String>,
    /// `local`: the images built (or found up to date) and delivered.
    pub images: Vec<crate::ops::build::ImageResult>,
    /// `ci`: the chart and images confirmed in their registries.
    pub published: Vec<Published>,
    pub conflicts: Vec<conflicts::Conflict>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub revision: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rollout: Option<Rollout>,
    pub checks: Vec<Outcome>,
    /// The diagnostics directory and its files, when something failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<artifacts::Written>,
    pub cleanup: Cleanup,
    pub seconds: f64,
    /// The changes made, in order.
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.status == RunStatus::Passed
    }

    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|c| c.status == status).count()
    }
}

/// `stack test <profile>`.
pub fn run(
    project: &Project,
    host: &Host,
    opts: &Options,
    sink: Arc<dyn Sink>,
) -> anyhow::Result<Report> {
    let start = std::time::Instant::now();
    sink.emit(Event::Phase {
        name: "prepare".into(),
    });
    let mut checks = crate::check::load(
        &project.root,
        project.file.as_deref(),
        &project.config.test.files,
    )?;
    let plan = profile::resolve(project, host, opts, true)?;
    crate::check::render_names(
        &mut checks,
        &serde_json::json!({ "release": plan.release, "namespace": plan.namespace, "project": project.project_name(), "profile": opts.profile.as_str() }),
    );
    let exec = Exec::new(host.runner, &*sink, false);
    let (kube, client) = plan.connect(&project.root, "deploy the test release")?;
    let rel = Release::new(&kube, &plan.release, host)?;
    let mut report = Report {
        profile: opts.profile,
        status: RunStatus::Passed,
        context: plan.target.context.clone(),
        namespace: plan.namespace.clone(),
        release: plan.release.clone(),
        chart: plan.chart.clone(),
        chart_version: plan.chart_version.clone(),
        env: plan.env.name.clone(),
        layers: Vec::new(),
        images: Vec::new(),
        published: Vec::new(),
        conflicts: Vec::new(),
        revision: None,
        rollout: None,
        checks: Vec::new(),
        diagnostics: None,
        cleanup: Cleanup::NothingDeployed,
        seconds: 0.0,
        steps: Vec::new(),
    };
    let finish = |mut report: Report, exec: &Exec| {
        report.seconds = start.elapsed().as_secs_f64();
        report.steps.extend(exec.steps());
        sink.emit(Event::Phase {
            name: String::new(),
        });
        Ok(report)
    };

    if opts.no_deploy {
        let deployed = rel.status().ok_or_else(|| StackError::Usage {
            message: format!(
                "--no-deploy: release {} is not installed in namespace {} (context {})",
                plan.release, plan.namespace, plan.target.context
            ),
            hint: Some(format!(
                "deploy it once with `stack test {} --keep`",
                opts.profile.as_str()
            )),
        })?;
        report.revision = Some(deployed.revision);
        let since = deployed
            .last_deployed
            .parse::<k8s_openapi::jiff::Timestamp>()
            .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
        let artifacts_dir = artifacts_dir(project, opts);
        artifacts::empty(&artifacts_dir)?;
        report.status = RunStatus::Passed;
        let secrets = pull::RegistryLogin::new(project, &plan)?.secrets();
        run_checks(
            project,
            opts,
            &plan,
            &secrets,
            &client,
            since,
            &checks,
            &sink,
            &mut report,
        )?;
        if report.status != RunStatus::Passed {
            report.diagnostics = Some(artifacts::collect(
                &client,
                &rel,
                &plan,
                &artifacts_dir,
                &report.checks,
                project,
                host,
            )?);
        }
        report.cleanup = Cleanup::Kept {
            remove_with: format!("stack test clean {}", opts.profile.as_str()),
        };
        return finish(report, &exec);
    }

    sink.emit(Event::Phase {
        name: "artifacts".into(),
    });
    let images = match opts.profile {
        ProfileName::Local => {
            let built = crate::ops::build::run(
                project,
                &crate::ops::build::Options {
                    images: Vec::new(),
                    deliver: true,
                    dry_run: false,
                    context: opts.context.clone(),
                    production: true,
                },
                host,
                &*sink,
            )?;
            report.steps.extend(built.steps.iter().cloned());
            let failed = built.failed();
            report.images = built.images;
            if failed {
                report.status = RunStatus::BuildFailed;
                return finish(report, &exec);
            }
            profile::built_references(&report.images)
        }
        ProfileName::Ci => plan.ci_images.clone(),
    };
    let generated = profile::generated_values(project, &plan, &images, host)?;
    exec.write(
        "generated values for the test release (image references, build metadata; passed last)",
        &project.root.join(&plan.generated_rel),
        &serde_json::to_string_pretty(&generated)?,
    )?;
    report.layers = plan.layers.clone();
    let registry = pull::RegistryLogin::new(project, &plan)?;
    if opts.profile == ProfileName::Ci {
        // The chart first: `helm template` below pulls it.
        let chart_ref = crate::oci::chart(
            &plan.chart,
            plan.chart_version.as_deref().unwrap_or_default(),
        )
        .map_err(|m| StackError::Usage {
            message: format!("--chart {}: {m}", plan.chart),
            hint: Some("give `oci://REGISTRY/PATH/NAME`".into()),
        })?;
        let found = profile::confirm(vec![("chart".to_owned(), chart_ref)], &registry, &plan)?;
        let missing = found.iter().any(|p| p.status != "found");
        report.published.extend(found);
        if missing {
            report.status = RunStatus::Missing;
            return finish(report, &exec);
        }
    }
    registry.login(&exec, rel.helm_path())?;
    if !plan.is_oci() {
        crate::release::chart::vendor_dependencies(project, &exec, rel.helm_path(), &plan.chart)?;
    }
    let manifests = conflicts::render(&rel, &plan, &registry, host)?;
    if opts.profile == ProfileName::Ci {
        let refs = profile::manifest_images(&manifests)?;
        let found = profile::confirm(refs, &registry, &plan)?;
        let missing = found.iter().any(|p| p.status != "found");
        report.published.extend(found);
        if missing {
            report.status = RunStatus::Missing;
            return finish(report, &exec);
        }
    }

    sink.emit(Event::Phase {
        name: "deploy".into(),
    });
    report.conflicts = crate::rt::until_cancelled(
        "the ownership check",
        conflicts::find(&client, &manifests, &plan.release, &plan.namespace),
    )??;
    if !report.conflicts.is_empty() {
        report.status = RunStatus::Conflict;
        return finish(report, &exec);
    }
    namespace::ensure(&exec, &plan, &client)?;
    if let Some(secret) = &registry.pull_secret {
        pull::apply(&exec, &plan, secret)?;
    }
    crate::release::allowlist::check(&plan.target.context, &plan.target.allowlist, "deploy")?;
    let upgrade = registry.helm_env(plan.upgrade_cmd(&rel));
    let deployed_at = k8s_openapi::jiff::Timestamp::now();
    let deployed = rel
        .upgrade(&upgrade, &exec)?
        .ok_or_else(|| StackError::Internal {
            message: "the test release was not deployed outside a dry run".into(),
        })?;
    Record::new("stack-test", &deployed).save(&Record::path(
        &project.root,
        &kube,
        &plan.release,
    ))?;
    report.revision = Some(deployed.revision);
    let artifacts_dir = artifacts_dir(project, opts);
    artifacts::empty(&artifacts_dir)?;
    let rollout = rel.wait(
        &artifacts_dir,
        Duration::from_secs(project.config.test.rollout_timeout_seconds),
        &*sink,
    )?;
    let rolled_out = !matches!(rollout, Rollout::Failed { .. });
    report.rollout = Some(rollout);

    if rolled_out {
        run_checks(
            project,
            opts,
            &plan,
            &registry.secrets(),
            &client,
            deployed_at,
            &checks,
            &sink,
            &mut report,
        )?;
    } else {
        report.status = RunStatus::RolloutFailed;
    }

    if report.status != RunStatus::Passed {
        sink.emit(Event::Phase {
            name: "diagnostics".into(),
        });
        report.diagnostics = Some(artifacts::collect(
            &client,
            &rel,
            &plan,
            &artifacts_dir,
            &report.checks,
            project,
            host,
        )?);
    }

    sink.emit(Event::Phase {
        name: "cleanup".into(),
    });
    report.cleanup = if report.status == RunStatus::Passed && !opts.keep {
        remove(project, &kube, &rel, &plan, &exec, &client)?
    } else {
        Cleanup::Kept {
            remove_with: format!("stack test clean {}", opts.profile.as_str()),
        }
    };
    finish(report, &exec)
}

/// `--artifacts`, else `.stack/artifacts/test-<profile>/`.
fn artifacts_dir(project: &Project, opts: &Options) -> PathBuf {
    opts.artifacts.clone().unwrap_or_else(|| {
        crate::state::State::new(&project.root).test_artifacts(opts.profile.as_str())
    })
}

/// The checks phase: the named forwards opened, every check run, the run's status set.
#[allow(clippy::too_many_arguments)]
fn run_checks(
    project: &Project,
    opts: &Options,
    plan: &profile::Plan,
    secrets: &[String],
    client: &::kube::Client,
    since: k8s_openapi::jiff::Timestamp,
    checks: &[crate::check::Check],
    sink: &Arc<dyn Sink>,
    report: &mut Report,
) -> Result<(), StackError> {
    sink.emit(Event::Phase {
        name: "checks".into(),
    });
    let mut ctx = crate::check::Ctx::new(
        client.clone(),
        &plan.namespace,
        &plan.release,
        project.root.clone(),
        sink.clone(),
    );
    ctx.since = since;
    ctx.secrets = secrets.to_vec();
    ctx.secrets.extend(project.dotenv.values().cloned());
    let jobs = opts.jobs.unwrap_or(project.config.test.jobs);
    let overall = opts
        .timeout
        .unwrap_or(Duration::from_secs(project.config.test.timeout_seconds));
    let outcomes = crate::rt::until_cancelled("the checks", async {
        let outcomes = match profile::open_forwards(project, &mut ctx).await {
            Ok(()) => crate::check::run_all(checks, &ctx, jobs, overall).await,
            Err(message) => checks
                .iter()
                .map(|c| crate::check::Outcome {
                    name: c.spec.name.clone(),
                    kind: c.kind,
                    status: Status::Error,
                    seconds: 0.0,
                    message: message.clone(),
                    detail: String::new(),
                    definition: c.origin.to_string(),
                    origin: c.origin.clone(),
                })
                .collect(),
        };
        ctx.shutdown.cancel();
        outcomes
    })?;
    report.checks = outcomes;
    if report.checks.iter().any(|c| c.status != Status::Passed) {
        report.status = RunStatus::Failed;
    }
    Ok(())
}

/// Uninstalls the test release (only the one stack installed: its record) and removes the
/// namespace when stack created it (label and recorded UID both match).
fn remove(
    project: &Project,
    kube: &KubeTarget,
    rel: &Release,
    plan: &profile::Plan,
    exec: &Exec,
    client: &::kube::Client,
) -> anyhow::Result<Cleanup> {
    let record_path = Record::path(&project.root, kube, &plan.release);
    if let Uninstalled::Removed = rel.uninstall(Record::load(&record_path).as_ref(), exec)? {
        exec.remove("forget the test release's ownership record", &record_path)?;
    }
    let namespace_removed = namespace::remove_if_ours(exec, plan, client)?;
    Ok(Cleanup::Removed { namespace_removed })
}

/// What `stack test clean` did.
#[derive(Debug, Serialize)]
pub struct CleanReport {
    pub profile: ProfileName,
    pub context: String,
    pub namespace: String,
    pub release: String,
    pub release_removed: bool,
    pub namespace_removed: bool,
    pub steps: Vec<StepReport>,
}

/// `stack test clean <profile>`: removes a kept test release (and the namespace stack created).
pub fn clean(
    project: &Project,
    host: &Host,
    opts: &Options,
    sink: &dyn Sink,
) -> anyhow::Result<CleanReport> {
    let plan = profile::resolve(project, host, opts, false)?;
    let (kube, client) = plan.connect(&project.root, "remove the test release")?;
    let rel = Release::new(&kube, &plan.release, host)?;
    let exec = Exec::new(host.runner, sink, false);
    let record_path = Record::path(&project.root, &kube, &plan.release);
    let release_removed = match rel.uninstall(Record::load(&record_path).as_ref(), &exec)? {
        Uninstalled::Removed => {
            exec.remove("forget the test release's ownership record", &record_path)?;
            true
        }
        _ => false,
    };
    let namespace_removed = namespace::remove_if_ours(&exec, &plan, &client)?;
    Ok(CleanReport {
        profile: opts.profile,
        context: plan.target.context.clone(),
        namespace: plan.namespace.clone(),
        release: plan.release.clone(),
        release_removed,
        namespace_removed,
        steps: exec.steps(),
    })
}
