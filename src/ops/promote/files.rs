//! Which files besides its values files carry an env target's versions: the ones stack.yaml's
//! `promote.files` lists for it, else the YAML files of directories named after it
//! (`…/overlays/<name>/`, `…/<type>/<name>/`) outside the env and chart directories.

use crate::config::Project;
use crate::envs::Target;
use crate::error::StackError;
use crate::yaml::edit::Yaml;

/// The target's extra files, relative to the project root, sorted.
pub fn for_target(
    project: &Project,
    target: &Target,
    chart_dir: &str,
) -> Result<Vec<String>, StackError> {
    if let Some(list) = project.config.promote.files.get(&target.name) {
        for f in list {
            if !project.root.join(f).is_file() {
                return Err(StackError::config(
                    Some(crate::config::file_origin(crate::config::FILE_NAME)),
                    format!("promote.files.{}: {f} does not exist", target.name),
                    "fix the path (relative to the project root) or remove it",
                ));
            }
        }
        return Ok(list.clone());
    }
    let name: Vec<&str> = target.name.split('/').collect();
    let last = *name.last().unwrap_or(&"");
    let envs_dir = project.config.envs.dir.trim_end_matches('/').to_owned();
    let charts_dir = std::path::Path::new(chart_dir)
        .parent()
        .map(|p| p.to_string_lossy().into_owned())
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| chart_dir.to_owned());
    let mut out = Vec::new();
    let walk = ignore::WalkBuilder::new(&project.root)
        .max_depth(Some(8))
        .filter_entry(move |e| {
            let n = e.file_name().to_string_lossy();
            !(e.depth() == 1 && (n == "target" || n == "node_modules"))
        })
        .build();
    for entry in walk.flatten() {
        let path = entry.path();
        if !entry.file_type().is_some_and(|t| t.is_file()) {
            continue;
        }
        if !matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml")
        ) {
            continue;
        }
        let rel = path
            .strip_prefix(&project.root)
            .unwrap_or(path)
            .to_string_lossy()
            .replace('\\', "/");
        if rel.starts_with(&format!("{envs_dir}/"))
            || rel.starts_with(&format!("{charts_dir}/"))
            || rel.starts_with(&format!("{}/", crate::state::DIR))
        {
            continue;
        }
        let dirs: Vec<&str> = rel.split('/').collect();
        let dirs = &dirs[..dirs.len() - 1];
        let overlay = dirs.len() >= 2 && dirs[dirs.len() - 2..] == ["overlays", last];
        let named = name.len() >= 2 && dirs.ends_with(&name);
        if overlay || named {
            out.push(rel);
        }
    }
    out.sort();
    Ok(out)
}

/// Reads a project file for editing.
pub fn read(project: &Project, rel: &str) -> Result<Yaml, StackError> {
    let text = std::fs::read_to_string(project.root.join(rel)).map_err(|e| {
        StackError::config(
            None,
            format!("cannot read {rel}: {e}"),
            "check that the file exists and is readable",
        )
    })?;
    Yaml::parse(rel, &text)
}
