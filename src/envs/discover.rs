//! Which targets exist and which files compose each (lifecycle-spec §0): walk `envs/` in lexical
//! order; files directly in `envs/` are cloud layers; `default.yaml` files are per-type defaults;
//! everything else `*.yaml`/`*.yml` is a target. Layer order comes from stack.yaml templates.

use crate::config::{LayerConfig, Project};
use crate::error::StackError;
use std::path::{Path, PathBuf};

/// One env target: an env file with its layers (lowest precedence first, chart values excluded),
/// as paths relative to the project root.
#[derive(Debug, Clone)]
pub struct Target {
    /// e.g. `local/dev`
    pub name: String,
    /// e.g. `local`: the directory under envs/ (first component), used by policies.
    pub env_type: String,
    pub file: String,
    pub layers: Vec<String>,
}

/// The chart directory: configured, else the only chart under charts/ that no other chart uses
/// as a `file://` dependency.
pub fn chart_dir(project: &Project) -> Result<String, StackError> {
    if let Some(p) = &project.config.chart.path {
        return Ok(p.trim_end_matches('/').to_owned());
    }
    let charts = project.root.join("charts");
    let mut all: Vec<String> = std::fs::read_dir(&charts)
        .map_err(|_| {
            StackError::config(
                None,
                "chart not found: there is no charts/ directory",
                "set `chart.path` in stack.yaml to your chart's directory",
            )
        })?
        .flatten()
        .filter(|e| e.path().join("Chart.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    all.sort();
    let used: Vec<String> = all
        .iter()
        .flat_map(|name| {
            let text =
                std::fs::read_to_string(charts.join(name).join("Chart.yaml")).unwrap_or_default();
            text.lines()
                .filter_map(|l| {
                    l.trim()
                        .trim_start_matches("- ")
                        .trim()
                        .strip_prefix("repository:")
                })
                .filter_map(|r| {
                    r.trim()
                        .trim_matches(['"', '\''])
                        .strip_prefix("file://../")
                        .map(|s| s.trim_end_matches('/').to_owned())
                })
                .collect::<Vec<_>>()
        })
        .collect();
    let roots: Vec<&String> = all.iter().filter(|c| !used.contains(c)).collect();
    match roots.as_slice() {
        [one] => Ok(format!("charts/{one}")),
        [] => Err(StackError::config(
            None,
            "chart not found: no directory under charts/ holds a Chart.yaml",
            "set `chart.path` in stack.yaml",
        )),
        many => Err(StackError::config(
            None,
            format!(
                "several charts under charts/ ({}): which one is deployed?",
                many.iter()
                    .map(|s| s.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            "set `chart.path` in stack.yaml",
        )),
    }
}

fn is_yaml(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("yaml" | "yml"))
}

fn rel(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

/// All targets and the cloud in force. `cloud` is the `--cloud` flag.
pub fn targets(
    project: &Project,
    cloud: Option<&str>,
) -> Result<(Vec<Target>, Option<String>), StackError> {
    let cfg = &project.config.envs;
    let envs_dir = project.root.join(&cfg.dir);
    if !envs_dir.is_dir() && cfg.extra_targets.is_empty() {
        return Err(StackError::config(
            None,
            format!("no targets: the env directory `{}` does not exist", cfg.dir),
            "create envs/<type>/<name>.yaml files, or set `envs.dir` in stack.yaml",
        ));
    }
    let mut files = Vec::new();
    if envs_dir.is_dir() {
        walk(&envs_dir, &mut files);
    }
    files.sort();
    let clouds: Vec<String> = files
        .iter()
        .filter(|p| p.parent() == Some(envs_dir.as_path()) && is_yaml(p))
        .filter_map(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
        .collect();
    let cloud = match cloud.map(str::to_owned).or_else(|| cfg.cloud.clone()) {
        Some(c) => {
            if !clouds.contains(&c) {
                return Err(StackError::config(
                    None,
                    format!("cloud values file not found: {}/{c}.yaml", cfg.dir),
                    if clouds.is_empty() {
                        "create it, or drop --cloud".to_owned()
                    } else {
                        format!("available clouds: {}", clouds.join(", "))
                    },
                ));
            }
            Some(c)
        }
        None if clouds.len() == 1 => Some(clouds[0].clone()),
        None if clouds.is_empty() => None,
        None => {
            return Err(StackError::Usage {
                message: format!(
                    "several cloud layers in {}/ ({}): which one?",
                    cfg.dir,
                    clouds.join(", ")
                ),
                hint: Some("pass --cloud NAME or set `envs.cloud` in stack.yaml".into()),
            })
        }
    };
    let cloud_file = cloud.as_ref().and_then(|c| {
        files
            .iter()
            .find(|p| {
                p.parent() == Some(envs_dir.as_path())
                    && p.file_stem().is_some_and(|s| s == c.as_str())
            })
            .cloned()
    });

    let excludes = exclude_set(&cfg.exclude)?;
    let layers = cfg
        .layers
        .clone()
        .unwrap_or_else(|| default_layers(cloud.is_some()));
    let env = minijinja::Environment::new();
    let mut out = Vec::new();
    for p in &files {
        if p.parent() == Some(envs_dir.as_path()) || !is_yaml(p) {
            continue;
        }
        let stem = p
            .file_stem()
            .unwrap_or_default()
            .to_string_lossy()
            .into_owned();
        if stem == "default" {
            continue;
        }
        let file = rel(&project.root, p);
        if excludes.is_match(&file) {
            continue;
        }
        let dir = rel(&project.root, p.parent().unwrap_or(&envs_dir));
        let sub = p.strip_prefix(&envs_dir).unwrap_or(p).with_extension("");
        let name = sub.to_string_lossy().replace('\\', "/");
        let env_type = name.split('/').next().unwrap_or_default().to_owned();
        let ctx = minijinja::context! {
            envs => cfg.dir.clone(), cloud => cloud.clone(), cloud_file => cloud_file.as_ref().map(|c| rel(&project.root, c)),
            r#type => env_type.clone(), name => stem.clone(), file => file.clone(), dir => dir.clone(),
        };
        let mut resolved = Vec::new();
        for layer in &layers {
            let path = env.render_str(&layer.file, &ctx).map_err(|e| {
                StackError::config(
                    None,
                    format!("envs.layers template `{}`: {e}", layer.file),
                    "variables: envs, cloud, type, name, file, dir",
                )
            })?;
            match existing(&project.root, &path) {
                Some(found) => resolved.push(found),
                None if layer.optional => {}
                None => {
                    return Err(StackError::config(
                        None,
                        format!("layer file not found: {path} (needed by target {name})"),
                        "create it, or mark the layer `optional: true` in stack.yaml",
                    ))
                }
            }
        }
        out.push(Target {
            name,
            env_type,
            file,
            layers: resolved,
        });
    }
    for extra in &cfg.extra_targets {
        for l in &extra.layers {
            if existing(&project.root, l).is_none() {
                return Err(StackError::config(
                    None,
                    format!(
                        "layer file not found: {l} (needed by extra target {})",
                        extra.name
                    ),
                    "fix envs.extraTargets in stack.yaml",
                ));
            }
        }
        out.push(Target {
            name: extra.name.clone(),
            env_type: extra.r#type.clone().unwrap_or_else(|| extra.name.clone()),
            file: extra.layers.last().cloned().unwrap_or_default(),
            layers: extra.layers.clone(),
        });
    }
    if out.is_empty() {
        return Err(StackError::config(
            None,
            format!("no targets found in {}/ (looked for <type>/<name>.yaml, skipping default.yaml and cloud files)", cfg.dir),
            "add an env file such as envs/local/dev.yaml",
        ));
    }
    Ok((out, cloud))
}

/// `x.yaml` also matches `x.yml`.
fn existing(root: &Path, path: &str) -> Option<String> {
    if root.join(path).is_file() {
        return Some(path.to_owned());
    }
    let alt = path.strip_suffix(".yaml").map(|s| format!("{s}.yml"))?;
    root.join(&alt).is_file().then_some(alt)
}

fn default_layers(with_cloud: bool) -> Vec<LayerConfig> {
    let mut v = Vec::new();
    if with_cloud {
        v.push(LayerConfig {
            file: "{{ cloud_file }}".into(),
            optional: false,
        });
    }
    v.push(LayerConfig {
        file: "{{ dir }}/default.yaml".into(),
        optional: true,
    });
    v.push(LayerConfig {
        file: "{{ file }}".into(),
        optional: false,
    });
    v
}

/// Every file below `dir`. A directory reached twice (a symlink loop, or two links to one
/// directory) is read once: its canonical path is remembered.
fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let mut seen = std::collections::HashSet::new();
    walk_dir(dir, &mut seen, out);
}

fn walk_dir(dir: &Path, seen: &mut std::collections::HashSet<PathBuf>, out: &mut Vec<PathBuf>) {
    let Ok(canonical) = dir.canonicalize() else {
        return;
    };
    if !seen.insert(canonical) {
        return;
    }
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk_dir(&p, seen, out);
        } else {
            out.push(p);
        }
    }
}

/// `envs.exclude` as one glob set: gitignore-like `*` (one path segment), `**` (any depth),
/// `?`, `[...]`, `{a,b}` — matched against paths relative to the project root.
fn exclude_set(globs: &[String]) -> Result<globset::GlobSet, StackError> {
    let mut set = globset::GlobSetBuilder::new();
    for g in globs {
        let glob = globset::GlobBuilder::new(g)
            .literal_separator(true)
            .build()
            .map_err(|e| {
                StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!("envs.exclude: `{g}` is not a valid glob: {e}"),
                    "use `*` within a directory, `**` across directories, e.g. `envs/**/draft-*.yaml`",
                )
            })?;
        set.add(glob);
    }
    set.build().map_err(|e| {
        StackError::config(
            None,
            format!("envs.exclude: {e}"),
            "check the patterns in envs.exclude",
        )
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn globs() {
        let set =
            super::exclude_set(&["envs/**/draft-*".into(), "envs/ci/{a,b}.yaml".into()]).unwrap();
        assert!(set.is_match("envs/local/draft-x.yaml"));
        assert!(set.is_match("envs/draft-x.yaml"));
        assert!(set.is_match("envs/a/b/draft-x.yaml"));
        assert!(set.is_match("envs/ci/b.yaml"));
        assert!(!set.is_match("envs/local/x.yaml"));
        // `**/` stands for whole directories: a name merely ending in the pattern is not excluded.
        assert!(!set.is_match("envs/xdraft-a.yaml"));
        assert!(!set.is_match("envs/local/xdraft-a.yaml"));
        // `*` stays within one directory.
        let one = super::exclude_set(&["envs/*.yaml".into()]).unwrap();
        assert!(!one.is_match("envs/ci/a.yaml"));
        assert!(super::exclude_set(&["envs/[".into()]).is_err());
    }
}
