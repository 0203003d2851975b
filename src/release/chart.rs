//! What a release is made from: its name (the one place the `chart.release` template is
//! rendered), the fingerprint of chart + composed values, and `helm dependency build` when a
//! subchart exists only as a `file://` source.

use crate::config::Project;
use crate::envs::Target;
use crate::error::StackError;
use crate::tool::Cmd;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// `chart.release` rendered for an env target (default `{{ project }}-{{ name }}`).
pub fn name(project: &Project, env: &Target) -> Result<String, StackError> {
    name_from(project, env, None)
}

/// The release name from `template` (e.g. a live target's own), else `chart.release`.
pub fn name_from(
    project: &Project,
    env: &Target,
    template: Option<&str>,
) -> Result<String, StackError> {
    let tpl = template
        .map(str::to_owned)
        .or_else(|| project.config.chart.release.clone())
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

/// Every file below `dir`; a directory reached twice (a symlink loop) is read once.
fn collect(dir: &Path, out: &mut Vec<PathBuf>) {
    fn walk(dir: &Path, seen: &mut std::collections::HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
        let Ok(c) = dir.canonicalize() else { return };
        if !seen.insert(c) {
            return;
        }
        let Ok(rd) = std::fs::read_dir(dir) else {
            return;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.is_dir() {
                walk(&p, seen, out);
            } else {
                out.push(p);
            }
        }
    }
    walk(dir, &mut Default::default(), out);
}

/// `helm dependency build` when a subchart is only available from its `file://` source (Helm
/// renders only what is vendored under charts/). Offline for `file://` dependencies.
pub fn vendor_dependencies(
    project: &Project,
    exec: &crate::ops::plan::Exec,
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
    exec.run("vendor the chart's file:// subcharts", &cmd)
        .map(|_| ())
        .map_err(|e| {
            StackError::tool(
                e,
                format!("vendor the subcharts: `helm dependency build {chart_rel}`"),
            )
        })
}

/// `<path>.repository` / `<path>.tag` at each `images.<name>.values` path, for every
/// `(image name, reference)` given: the generated values `up` and `test` pass to helm last.
pub fn image_values(
    project: &Project,
    references: &[(String, String)],
) -> Result<serde_json::Value, StackError> {
    override_paths_disjoint(project)?;
    let mut root = serde_json::Map::new();
    for (name, reference) in references {
        let Some(cfg) = project.config.images.get(name) else {
            continue;
        };
        let Some((repository, tag)) = split_reference(reference) else {
            continue;
        };
        for path in &cfg.values {
            let mut node = &mut root;
            for part in path.split('.') {
                let entry = node
                    .entry(part.to_owned())
                    .or_insert_with(|| serde_json::Value::Object(Default::default()));
                node = match entry {
                    serde_json::Value::Object(m) => m,
                    _ => unreachable!("override_paths_disjoint: no path runs through another"),
                };
            }
            node.insert("repository".into(), repository.into());
            node.insert("tag".into(), tag.into());
        }
    }
    Ok(serde_json::Value::Object(root))
}

/// `repo:tag` → (`repo`, `tag`); a registry port (`host:5000/repo`) is not a tag.
fn split_reference(reference: &str) -> Option<(&str, &str)> {
    let (repository, tag) = reference.rsplit_once(':')?;
    (!tag.contains('/')).then_some((repository, tag))
}

/// Each `images.<name>.values` path receives `{repository, tag}`: two paths where one is the
/// other or lies below it (`image` and `image.tag`) would overwrite each other.
pub fn override_paths_disjoint(project: &Project) -> Result<(), StackError> {
    let all: Vec<(&String, Vec<&str>)> = project
        .config
        .images
        .iter()
        .flat_map(|(name, cfg)| {
            cfg.values
                .iter()
                .map(move |p| (name, p.split('.').collect()))
        })
        .collect();
    for (i, (a_img, a)) in all.iter().enumerate() {
        for (b_img, b) in &all[i + 1..] {
            let (short, long) = if a.len() <= b.len() { (a, b) } else { (b, a) };
            if long.starts_with(short) {
                return Err(StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!(
                        "images.{a_img}.values `{}` and images.{b_img}.values `{}` overlap: each path receives {{repository, tag}}, so one would overwrite the other",
                        a.join("."),
                        b.join(".")
                    ),
                    "name the map that holds repository and tag (e.g. `backend-api.image`), once",
                ));
            }
        }
    }
    Ok(())
}
