//! `stack live verify TARGET`: the checks marked `live: true` (the same `stack test` checks, the
//! same engine) run against the deployed release — HTTP checks at `https://<host>` (the target's
//! host template, or `baseUrl`), never through a port-forward; `ready`/`assert`/`logs` checks
//! read the live cluster (read-only). The result is recorded for the release at
//! `.stack/verify/<target>.json` (passed, when, the revision, the chart version and image tags
//! it verified), which `stack promote` requires of its source env.

use super::target::LiveTarget;
use crate::check::{Outcome, Status};
use crate::config::Project;
use crate::error::StackError;
use crate::ops::events::{Event, Sink};
use crate::release::Release;
use crate::tool::Host;
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Default)]
pub struct VerifyOptions {
    pub target: String,
    /// The public host (else the target's `host` template).
    pub host: Option<String>,
    pub jobs: Option<usize>,
    pub timeout: Option<Duration>,
}

#[derive(Debug, Serialize)]
pub struct VerifyReport {
    pub target: String,
    pub context: String,
    pub namespace: String,
    pub release: String,
    pub revision: u64,
    /// Where the checks' requests went.
    pub base_url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chart_version: Option<String>,
    /// Image tags of the deployed release, by image name (from its values).
    pub images: BTreeMap<String, String>,
    pub checks: Vec<Outcome>,
    pub passed: bool,
    /// The verify record written (relative to the project root).
    pub record: String,
    pub seconds: f64,
}

/// What `stack promote` reads (see `ops::promote::verify`).
#[derive(Serialize)]
struct Record<'a> {
    passed: bool,
    at: String,
    revision: String,
    images: &'a BTreeMap<String, String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    chart: Option<&'a str>,
    context: &'a str,
    namespace: &'a str,
    release: &'a str,
    #[serde(rename = "baseUrl")]
    base_url: &'a str,
}

pub fn verify(
    project: &Project,
    host: &Host,
    opts: &VerifyOptions,
    sink: Arc<dyn Sink>,
) -> anyhow::Result<VerifyReport> {
    let start = std::time::Instant::now();
    let mut checks = crate::check::load(
        &project.root,
        project.file.as_deref(),
        &project.config.test.files,
    )?;
    checks.retain(|c| c.spec.live);
    if checks.is_empty() {
        return Err(StackError::config(
            Some(crate::config::file_origin(crate::config::FILE_NAME)),
            "no check is marked `live: true`: `stack live verify` has nothing to run",
            "mark the checks that hold in production with `live: true` (test.checks or a check file)",
        )
        .into());
    }
    let t = super::resolve(project, host, &opts.target, None, "verify")?;
    let base_url = base_url(project, &t, opts.host.as_deref())?;
    let rel = Release::new(&t.kube, &t.release, host)?;
    let deployed = rel.status().ok_or_else(|| {
        t.not_installed(Some(format!(
            "deploy it first: `stack live deploy {}`",
            t.env.name
        )))
    })?;
    crate::check::render_names(
        &mut checks,
        &serde_json::json!({
            "release": t.release,
            "namespace": t.kube.namespace(),
            "project": project.project_name(),
            "host": base_url.split("://").nth(1).unwrap_or(&base_url),
            "base_url": base_url,
        }),
    );
    let client = crate::rt::until_cancelled("connecting to the cluster", t.kube.client())??;
    sink.emit(Event::Phase {
        name: "checks".into(),
    });
    let mut ctx = crate::check::Ctx::new(
        client,
        t.kube.namespace(),
        &t.release,
        project.root.clone(),
        sink.clone(),
    );
    ctx.base_url = Some(base_url.clone());
    ctx.since = deployed
        .last_deployed
        .parse()
        .unwrap_or_else(|_| k8s_openapi::jiff::Timestamp::now());
    // The named forwards exist as names only: their URLs are the public address.
    ctx.forwards = project
        .config
        .test
        .forwards
        .keys()
        .map(|k| (k.clone(), 443))
        .collect();
    ctx.secrets = project.dotenv.values().cloned().collect();
    let jobs = opts.jobs.unwrap_or(project.config.test.jobs);
    let overall = opts
        .timeout
        .unwrap_or(Duration::from_secs(project.config.test.timeout_seconds));
    let outcomes = crate::rt::until_cancelled("the checks", async {
        let outcomes = crate::check::run_all(&checks, &ctx, jobs, overall).await;
        ctx.shutdown.cancel();
        outcomes
    })?;
    sink.emit(Event::Phase {
        name: String::new(),
    });
    let passed = outcomes.iter().all(|o| o.status == Status::Passed);
    let (chart_version, images) = deployed_versions(project, &rel, host);
    let record_rel = crate::state::State::rel_verify_record(&t.env.name);
    let record = Record {
        passed,
        at: crate::image::git::utc_now(),
        revision: deployed.revision.to_string(),
        images: &images,
        chart: chart_version.as_deref(),
        context: t.kube.context(),
        namespace: t.kube.namespace(),
        release: &t.release,
        base_url: &base_url,
    };
    crate::state::write_file(
        &project.root.join(&record_rel),
        &serde_json::to_string_pretty(&record).expect("record serializes"),
    )?;
    Ok(VerifyReport {
        target: t.env.name.clone(),
        context: t.kube.context().to_owned(),
        namespace: t.kube.namespace().to_owned(),
        release: t.release.clone(),
        revision: deployed.revision,
        base_url,
        chart_version,
        images,
        checks: outcomes,
        passed,
        record: record_rel,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// `--host`, else the target's `baseUrl`, else `https://` + its `host` template.
fn base_url(project: &Project, t: &LiveTarget, flag: Option<&str>) -> Result<String, StackError> {
    let declared = project.config.live.targets.get(&t.env.name);
    if let Some(h) = flag {
        return Ok(if h.contains("://") {
            h.to_owned()
        } else {
            format!("https://{h}")
        });
    }
    if let Some(url) = declared.and_then(|d| d.base_url.clone()) {
        return Ok(url);
    }
    let template = declared
        .and_then(|d| d.host.clone())
        .or_else(|| project.config.live.host.clone())
        .ok_or_else(|| {
            StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                format!("live target `{}` has no host to verify", t.env.name),
                format!(
                    "set `live.host` (a template, e.g. `{{{{ name }}}}.shop.example`) or `live.targets.{}.host`, or pass --host",
                    t.env.name
                ),
            )
        })?;
    let host = minijinja::Environment::new()
        .render_str(
            &template,
            minijinja::context! {
                project => project.project_name(),
                r#type => t.env.env_type.clone(),
                name => t.env.name.rsplit('/').next().unwrap_or(&t.env.name).to_owned(),
            },
        )
        .map_err(|e| {
            StackError::config(
                Some(crate::config::file_origin(crate::config::FILE_NAME)),
                format!("live host template `{template}`: {e}"),
                "variables: project, type, name",
            )
        })?;
    Ok(format!("https://{host}"))
}

/// The deployed chart version (`helm get metadata`) and image tags (each image's first
/// `values:` path `.tag` in `helm get values --all`); what cannot be read is left out.
fn deployed_versions(
    project: &Project,
    rel: &Release,
    host: &Host,
) -> (Option<String>, BTreeMap<String, String>) {
    let json = |args: &[&str]| -> Option<serde_json::Value> {
        let cmd = rel.target.helm(rel.helm_path(), args);
        let out = host.runner.run(&cmd).ok()?;
        serde_json::from_str(&out.stdout).ok()
    };
    let chart = json(&["get", "metadata", &rel.name, "-o", "json"])
        .and_then(|m| m["version"].as_str().map(str::to_owned));
    let mut images = BTreeMap::new();
    if let Some(values) = json(&["get", "values", &rel.name, "--all", "-o", "json"]) {
        for (name, cfg) in &project.config.images {
            let Some(path) = cfg.values.first() else {
                continue;
            };
            let mut node = &values;
            for part in path.split('.') {
                node = &node[part];
            }
            if let Some(tag) = node["tag"].as_str().filter(|t| !t.is_empty()) {
                images.insert(name.clone(), tag.to_owned());
            }
        }
    }
    (chart, images)
}
