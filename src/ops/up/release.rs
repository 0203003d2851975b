//! The dev release: its name, its fingerprint, and the record of what the deployed revision was
//! made from (`.stack/up/<context>/<namespace>/<release>.json`).

use crate::config::Project;
use crate::error::StackError;
use crate::ops::validate::Target;
use crate::tool::{Cmd, Host};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `chart.release` rendered for the env (default `{{ project }}-{{ name }}`).
pub fn name(project: &Project, env: &Target) -> Result<String, StackError> {
    let tpl = project
        .config
        .chart
        .release
        .clone()
        .unwrap_or_else(|| "{{ project }}-{{ name }}".into());
    let short = env.name.rsplit('/').next().unwrap_or(&env.name).to_owned();
    minijinja::Environment::new()
        .render_str(&tpl, minijinja::context! { project => project.project_name(), r#type => env.env_type.clone(), name => short })
        .map_err(|e| StackError::config(None, format!("chart.release template: {e}"), "variables: project, type, name"))
}

/// sha256 over every file of the chart (and its `file://` subcharts) and the composed values.
pub fn fingerprint(
    project: &Project,
    chart_rel: &str,
    layers: &[String],
    overrides: &serde_json::Value,
) -> Result<String, StackError> {
    let chart = crate::values::chart::load(&project.root.join(chart_rel), chart_rel)?;
    let mut user = crate::yaml::Map::new();
    for l in layers {
        let text = std::fs::read_to_string(project.root.join(l)).map_err(|e| {
            StackError::config(None, format!("cannot read {l}: {e}"), "check the file")
        })?;
        let doc = crate::yaml::parse_values(&Arc::from(l.as_str()), &text)
            .map_err(StackError::from_parse)?;
        if let crate::yaml::Value::Map(m) = doc.root.value {
            crate::values::compose::merge_maps(&mut user, &m);
        }
    }
    let generated = crate::yaml::parse_values(&Arc::from("<generated>"), &overrides.to_string())
        .map_err(StackError::from_parse)?;
    if let crate::yaml::Value::Map(m) = generated.root.value {
        crate::values::compose::merge_maps(&mut user, &m);
    }
    let composed = crate::values::compose::compose(&chart, &user);
    let mut h = Sha256::new();
    h.update(
        crate::yaml::Value::Map(composed.values)
            .to_json()
            .to_string()
            .as_bytes(),
    );
    let mut dirs = vec![project.root.join(chart_rel)];
    for sub in &chart.subcharts {
        if let (Some(_), Some(rel)) = (&sub.chart, sub.dep.repository.strip_prefix("file://")) {
            dirs.push(project.root.join(chart_rel).join(rel));
        }
    }
    for dir in dirs {
        let mut files = Vec::new();
        collect(&dir, &mut files);
        files.sort();
        for f in files {
            // Vendored archives are rebuilt from their sources; their bytes (timestamps) would churn.
            if f.extension().is_some_and(|e| e == "tgz") {
                continue;
            }
            h.update(
                f.strip_prefix(&dir)
                    .unwrap_or(&f)
                    .to_string_lossy()
                    .as_bytes(),
            );
            h.update(std::fs::read(&f).unwrap_or_default());
        }
    }
    Ok(hex::encode(h.finalize()))
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        if p.is_dir() {
            collect(&p, out);
        } else {
            out.push(p);
        }
    }
}

/// The deployed revision, from `helm status -o json` (None when not installed or not deployed).
pub fn deployed_revision(host: &Host, status: Cmd) -> Option<u64> {
    let out = host.runner.output(&status).ok()?;
    if !out.success() {
        return None;
    }
    let doc: serde_json::Value = serde_json::from_str(&out.stdout).ok()?;
    (doc["info"]["status"] == "deployed")
        .then(|| doc["version"].as_u64())
        .flatten()
}

/// What the deployed revision was made from.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Record {
    pub fingerprint: String,
    pub revision: u64,
}

impl Record {
    pub fn path(project: &Project, context: &str, namespace: &str, release: &str) -> PathBuf {
        crate::state::State::new(&project.root).release_record(context, namespace, release)
    }

    pub fn load(path: &Path) -> Option<Record> {
        serde_json::from_slice(&std::fs::read(path).ok()?).ok()
    }

    pub fn save(&self, path: &Path) -> Result<(), StackError> {
        write_atomic(
            path,
            &serde_json::to_string_pretty(self).expect("serializes"),
        )
    }
}

/// [`crate::state::write_atomic`] with stack's error for an unwritable file.
pub fn write_atomic(path: &Path, text: &str) -> Result<(), StackError> {
    crate::state::write_atomic(path, text.as_bytes()).map_err(|e| {
        StackError::config(
            None,
            format!("cannot write {}: {e}", path.display()),
            "check permissions",
        )
    })
}

/// `helm dependency build` when a subchart is only available from its `file://` source (Helm
/// renders only what is vendored under charts/). Offline for `file://` dependencies.
pub fn vendor_dependencies(
    project: &Project,
    host: &Host,
    helm: &Path,
    chart_rel: &str,
) -> Result<(), StackError> {
    let chart = crate::values::chart::load(&project.root.join(chart_rel), chart_rel)?;
    if chart
        .subcharts
        .iter()
        .all(|s| s.chart.is_some() && !s.source.contains("not vendored"))
    {
        return Ok(());
    }
    let cmd = Cmd::new(helm)
        .cwd(&project.root)
        .args(["dependency", "build", chart_rel]);
    host.runner.run(&cmd).map(|_| ()).map_err(|e| {
        StackError::tool(
            e,
            format!("vendor the subcharts: `helm dependency build {chart_rel}`"),
        )
    })
}
