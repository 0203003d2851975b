//! `stack up`: converge the dev environment — cluster, images, Helm release — then wait for it.
//!
//! Reuses the other stages, never duplicates them: `cluster` for the cluster and context safety,
//! `build` for images (content-addressed, delivered to the cluster), `validate` for the env's
//! values (the same composition Helm does). A release fingerprint (chart files + composed values,
//! image references included) makes an up-to-date `stack up` do no build and no helm upgrade.

pub mod session;

use crate::config::cluster::Provider;
use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::Sink;
use crate::ops::plan::{Exec, StepReport};
use crate::ops::{build, cluster, validate};
pub use crate::release::Rollout;
use crate::release::{chart, Intent, KubeTarget, Record, Release, Uninstalled};
use crate::tool::Host;
use serde::Serialize;

#[derive(Debug, Default)]
pub struct Options {
    /// Print what would happen; change nothing.
    pub dry_run: bool,
    /// Kubeconfig context (must be the cluster's own or an allowed one).
    pub context: Option<String>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "kebab-case")]
pub enum HelmStep {
    /// Chart, values and images are what the deployed revision was made from: no upgrade.
    UpToDate {
        revision: u64,
    },
    Upgraded {
        revision: u64,
        command: String,
    },
    WouldUpgrade {
        command: String,
    },
}

/// How long a rollout may take before `stack up` names what is not ready.
const ROLLOUT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

#[derive(Debug, Serialize)]
pub struct Report {
    pub context: String,
    pub namespace: String,
    pub release: String,
    pub env: String,
    /// Values files in the order Helm receives them (generated overrides last).
    pub layers: Vec<String>,
    pub images: Vec<build::ImageResult>,
    pub helm: HelmStep,
    pub rollout: Rollout,
    pub fingerprint: String,
    /// What `stack cluster up` did (or would do) first, for kind and k3d clusters.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<cluster::ChangeReport>,
    /// The changes made (or, under `--dry-run`, that would be made), in order.
    pub steps: Vec<StepReport>,
}

impl Report {
    pub fn ready(&self) -> bool {
        !matches!(self.rollout, Rollout::Failed { .. })
    }
}

pub fn up(
    project: &Project,
    host: &Host,
    opts: &Options,
    sink: &dyn Sink,
) -> anyhow::Result<Report> {
    // The env's values must be valid before anything is created or deployed (same checks as
    // validate, judged on the dev env's own files): a values typo costs milliseconds, not a cluster.
    let env = crate::envs::dev(project)?;
    chart::override_paths_disjoint(project)?;
    if let Some(d) = &project.config.dev.dotenv {
        d.target(&project.project_name())?;
    }
    let checked = validate::run(
        project,
        &validate::Options {
            target: Some(env.name.clone()),
            ..Default::default()
        },
        host.runner,
    )?;
    if checked.has_errors() {
        let first: Vec<String> = checked
            .findings
            .iter()
            .filter(|f| f.severity == crate::diag::Severity::Error)
            .take(5)
            .map(|f| {
                format!(
                    "  {}: {}",
                    f.location
                        .as_ref()
                        .map(|l| l.to_string())
                        .unwrap_or_default(),
                    f.message
                )
            })
            .collect();
        return Err(StackError::config(
            None,
            format!(
                "the dev env `{}` has errors:\n{}",
                env.name,
                first.join("\n")
            ),
            "fix them (`stack validate envs` lists them all), then run `stack up` again",
        )
        .into());
    }

    let cluster_opts = crate::cluster_target::Options {
        dry_run: opts.dry_run,
        context: opts.context.clone(),
    };
    let target = crate::cluster_target::resolve(project, host, &cluster_opts)?;
    crate::release::allowlist::check(&target.context, &target.allowlist, "deploy")?;
    let cluster_change = if matches!(target.provider, Provider::Kind | Provider::K3d) {
        Some(cluster::up(project, host, &cluster_opts, sink)?)
    } else {
        None
    };
    let exec = Exec::new(host.runner, sink, opts.dry_run);

    let built = build::run(
        project,
        &build::Options {
            production: false,
            images: Vec::new(),
            deliver: true,
            dry_run: opts.dry_run,
            context: opts.context.clone(),
        },
        host,
        sink,
    )?;
    if built.failed() {
        return Err(StackError::config(
            None,
            "an image failed to build (see above)",
            "fix the build, then run `stack up` again",
        )
        .into());
    }

    let namespace = project
        .config
        .dev
        .namespace
        .clone()
        .unwrap_or_else(|| project.project_name());
    let release = chart::name(project, &env)?;
    let chart_rel = crate::envs::chart_dir(project)?;
    let overrides = image_overrides(project, &built.images)?;
    let overrides_rel = crate::state::State::rel_overrides(&release);
    let mut layers = env.layers.clone();
    layers.push(overrides_rel.clone());
    let fingerprint = chart::fingerprint(project, &chart_rel, &env.layers, &overrides)?;

    let kube = KubeTarget::new(
        &project.root,
        &target.kubeconfig,
        &target.context,
        &namespace,
        &target.allowlist,
        "deploy",
    )?;
    let rel = Release::new(&kube, &release, host)?;
    let record = Record::path(&project.root, &kube, &release);
    let intent_path = Intent::path(&project.root, &kube, &release);
    let helm_step = (|| -> anyhow::Result<HelmStep> {
        let deployed = rel.status();
        if let (Some(deployed), Some(rec)) = (&deployed, Record::load(&record)) {
            if rec.fingerprint == fingerprint
                && rec.matches(deployed)
                && deployed.status == "deployed"
            {
                return Ok(HelmStep::UpToDate {
                    revision: deployed.revision,
                });
            }
        }
        // An earlier run was stopped after helm began this very upgrade (helm finished it as an
        // orphan) or before it recorded it: adopt that revision instead of making another.
        if let (Some(deployed), Some(intent)) = (&deployed, Intent::load(&intent_path)) {
            if !opts.dry_run && intent.made(&fingerprint, deployed) {
                Record::new(&fingerprint, deployed).save(&record)?;
                let _ = std::fs::remove_file(&intent_path);
                return Ok(HelmStep::UpToDate {
                    revision: deployed.revision,
                });
            }
        }
        let intent = Intent::new(&fingerprint);
        let upgrade = rel
            .upgrade_cmd(&chart_rel, &layers)
            .args(["--description", &intent.description()]);
        let command = upgrade.short_line();
        exec.write(
            "image references for the release (passed last to helm)",
            &project.root.join(&overrides_rel),
            &serde_json::to_string_pretty(&overrides)?,
        )?;
        chart::vendor_dependencies(project, &exec, rel.helm_path(), &chart_rel)?;
        // Re-checked right before the mutating step: nothing deploys to a context outside the allowlist.
        crate::release::allowlist::check(&target.context, &target.allowlist, "deploy")?;
        if !opts.dry_run {
            intent.save(&intent_path)?;
        }
        let Some(deployed) = rel.upgrade(&upgrade, &exec)? else {
            return Ok(HelmStep::WouldUpgrade { command });
        };
        // Written only once helm reports the release: the record names what exists.
        Record::new(&fingerprint, &deployed).save(&record)?;
        let _ = std::fs::remove_file(&intent_path);
        Ok(HelmStep::Upgraded {
            revision: deployed.revision,
            command,
        })
    })()?;
    let rollout = if opts.dry_run {
        Rollout::NotWaited
    } else {
        rel.wait(
            &crate::state::State::new(&project.root).diagnostics(&release),
            ROLLOUT_TIMEOUT,
            sink,
        )?
    };
    Ok(Report {
        context: target.context,
        namespace,
        release,
        env: env.name,
        layers,
        images: built.images,
        helm: helm_step,
        rollout,
        fingerprint,
        cluster: cluster_change,
        steps: built.steps.into_iter().chain(exec.steps()).collect(),
    })
}

/// The kubeconfig file (relative to the root for clusters stack created) the dev cluster uses.
fn kubeconfig_of(project: &Project, host: &Host, opts: &Options) -> Result<String, StackError> {
    let t = crate::cluster_target::resolve(
        project,
        host,
        &crate::cluster_target::Options {
            dry_run: opts.dry_run,
            context: opts.context.clone(),
        },
    )?;
    Ok(t.kubeconfig)
}

/// `<path>.repository` / `<path>.tag` for every image with `values:` paths, from where it was delivered.
fn image_overrides(
    project: &Project,
    images: &[build::ImageResult],
) -> Result<serde_json::Value, StackError> {
    chart::image_values(project, &build::delivered_references(images))
}

/// What `stack down` did: the release, and the cluster when asked to remove it too.
#[derive(Debug, Serialize)]
pub struct DownReport {
    pub release: String,
    pub namespace: String,
    pub context: String,
    pub status: DownStatus,
    /// The changes made (or, under `--dry-run`, that would be made), in order.
    pub steps: Vec<StepReport>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cluster: Option<cluster::ChangeReport>,
}

/// What happened to the dev release.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum DownStatus {
    Uninstalled,
    NotInstalled,
    /// `--dry-run`: it would be uninstalled.
    WouldUninstall,
}

/// `stack down`: uninstall the dev release (the cluster stays unless `cluster` is set).
pub fn down(
    project: &Project,
    host: &Host,
    opts: &Options,
    with_cluster: bool,
    sink: &dyn Sink,
) -> anyhow::Result<DownReport> {
    let cluster_opts = crate::cluster_target::Options {
        dry_run: opts.dry_run,
        context: opts.context.clone(),
    };
    let target = crate::cluster_target::resolve(project, host, &cluster_opts)?;
    crate::release::allowlist::check(&target.context, &target.allowlist, "uninstall")?;
    let env = crate::envs::dev(project)?;
    let namespace = project
        .config
        .dev
        .namespace
        .clone()
        .unwrap_or_else(|| project.project_name());
    let release = chart::name(project, &env)?;
    let kube = KubeTarget::new(
        &project.root,
        &target.kubeconfig,
        &target.context,
        &namespace,
        &target.allowlist,
        "uninstall",
    )?;
    let rel = Release::new(&kube, &release, host)?;
    let record_path = Record::path(&project.root, &kube, &release);
    let record = Record::load(&record_path);
    let exec = Exec::new(host.runner, sink, opts.dry_run);
    let status = match rel.uninstall(record.as_ref(), &exec)? {
        Uninstalled::Would(_) => DownStatus::WouldUninstall,
        Uninstalled::NotInstalled => DownStatus::NotInstalled,
        Uninstalled::Removed => {
            exec.remove("forget the release's ownership record", &record_path)?;
            DownStatus::Uninstalled
        }
    };
    let cluster = if with_cluster {
        Some(cluster::down(project, host, &cluster_opts, sink)?)
    } else {
        None
    };
    Ok(DownReport {
        release,
        namespace,
        context: target.context,
        status,
        steps: exec.steps(),
        cluster,
    })
}
