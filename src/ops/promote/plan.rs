//! Which bytes of which files of the target env change: every edit planned first (and every
//! refusal collected), then each file's edits applied together and verified by the editor.

use super::gitops;
use super::source::{ChartVersion, Image};
use super::{files, Change, FileChange};
use crate::config::Project;
use crate::envs::Target;
use crate::error::StackError;
use crate::yaml::edit::{path_text, Editor, NodeId, Seg, Yaml};
use std::collections::BTreeMap;

/// One intended change in one file.
enum Intent {
    /// Map keys from the top of the first document (a values file, as Helm reads it).
    Path { keys: Vec<String>, value: String },
    /// A scalar found by a path or a marker; `what` names it for people.
    Node {
        id: NodeId,
        value: String,
        what: String,
    },
}

/// The planned change of every file, in path order (files that stay as they are left out).
pub fn plan(
    project: &Project,
    targets: &[Target],
    to: &Target,
    images: &[Image],
    chart: Option<&ChartVersion>,
    chart_dir: &str,
) -> Result<Vec<(FileChange, String)>, StackError> {
    let mut yamls: BTreeMap<String, Yaml> = BTreeMap::new();
    let mut intents: BTreeMap<String, Vec<Intent>> = BTreeMap::new();
    let mut refusals = Vec::new();
    for l in &to.layers {
        yamls.insert(l.clone(), files::read(project, l)?);
    }

    // Values files: each image's values paths, where TO sets them.
    for image in images {
        let config = &project.config.images[&image.name];
        for path in &config.values {
            let base: Vec<String> = path.split('.').map(str::to_owned).collect();
            let tag_keys = [&base[..], &["tag".to_owned()]].concat();
            let file = match layer_for(&yamls, targets, to, &tag_keys) {
                Ok(f) => f,
                Err(e) => {
                    refusals.push(e);
                    continue;
                }
            };
            intents.entry(file.clone()).or_default().push(Intent::Path {
                keys: tag_keys,
                value: image.tag.clone(),
            });
            let digest_keys = [&base[..], &["digest".to_owned()]].concat();
            let digest = match &image.digest {
                Some(d) => Some(d.clone()),
                // A digest left in TO would win over the promoted tag: cleared.
                None => effective(&yamls, to, &digest_keys)
                    .filter(|d| !d.is_empty())
                    .map(|_| String::new()),
            };
            if let Some(d) = digest {
                intents.entry(file).or_default().push(Intent::Path {
                    keys: digest_keys,
                    value: d,
                });
            }
        }
    }

    // GitOps files of TO (and markers in its own env file).
    let mut extra = files::for_target(project, to, chart_dir)?;
    if !extra.contains(&to.file) {
        extra.push(to.file.clone());
    }
    for file in &extra {
        if !yamls.contains_key(file) {
            yamls.insert(file.clone(), files::read(project, file)?);
        }
        let yaml = &yamls[file];
        let name = file.rsplit('/').next().unwrap_or(file);
        for (doc, entry) in gitops::kustomize_images(yaml, name) {
            let Some(image) = images.iter().find(|i| kustomize_match(project, i, &entry)) else {
                continue;
            };
            let mut want = vec![("newTag", Some(image.tag.clone()))];
            want.push(("digest", image.digest.clone()));
            for (field, value) in want {
                let path = [
                    Seg::Key("images"),
                    Seg::Where("name", &entry),
                    Seg::Key(field),
                ];
                match (yaml.find(doc, &path), value) {
                    (Err(e), _) => refusals.push(e),
                    (Ok(Some(id)), Some(v)) => push_node(&mut intents, file, id, v, &path),
                    (Ok(Some(id)), None) => {
                        if yaml.scalar(id).is_some_and(|d| !d.is_empty()) {
                            refusals.push(StackError::config(
                                Some(yaml.origin(id)),
                                format!(
                                    "`{}` pins a digest, which would win over the promoted tag {} (the source env has no digest)",
                                    path_text(&path),
                                    image.tag
                                ),
                                "remove the `digest:` line (stack only changes values), then promote",
                            ));
                        }
                    }
                    (Ok(None), Some(v)) => refusals.push(StackError::config(
                        Some(crate::config::file_origin(file)),
                        format!("the Kustomize image `{entry}` has no `{field}:` to set to {v}"),
                        format!("add `{field}:` to its `images:` entry, then promote"),
                    )),
                    (Ok(None), None) => {}
                }
            }
        }
        if let Some(chart) = chart {
            match gitops::argo_revisions(yaml) {
                Ok(ids) => {
                    for (id, what) in ids {
                        intents.entry(file.clone()).or_default().push(Intent::Node {
                            id,
                            value: chart.version.clone(),
                            what,
                        });
                    }
                }
                Err(e) => refusals.push(e),
            }
        }
        for m in gitops::flux_markers(yaml) {
            let Some(image) = images.iter().find(|i| flux_match(project, i, &m.policy)) else {
                continue;
            };
            let old = yaml.scalar(m.value).unwrap_or_default();
            let value = match m.field.as_str() {
                "tag" => image.tag.clone(),
                "digest" => match &image.digest {
                    Some(d) => d.clone(),
                    None => continue,
                },
                "" => gitops::with_tag(old, &image.tag, image.digest.as_deref()),
                _ => continue,
            };
            intents.entry(file.clone()).or_default().push(Intent::Node {
                id: m.value,
                value,
                what: format!(
                    "$imagepolicy {}:{}{}",
                    m.namespace,
                    m.policy,
                    if m.field.is_empty() {
                        String::new()
                    } else {
                        format!(":{}", m.field)
                    }
                ),
            });
        }
    }

    // Apply, file by file.
    let mut out = Vec::new();
    for (file, list) in &intents {
        let yaml = &yamls[file];
        let mut editor = Editor::new(yaml);
        let mut changes = Vec::new();
        for intent in list {
            let applied = match intent {
                Intent::Path { keys, value } => {
                    let segs: Vec<Seg> = keys.iter().map(|k| Seg::Key(k)).collect();
                    let keys: Vec<&str> = keys.iter().map(String::as_str).collect();
                    let before = yaml.find(0, &segs).ok().flatten();
                    editor.set_path(0, &keys, value).map(|changed| {
                        changed.then(|| Change {
                            what: path_text(&segs),
                            at: before.map_or_else(
                                || format!("{file} (added)"),
                                |id| yaml.origin(id).to_string(),
                            ),
                            old: before.and_then(|id| yaml.scalar(id)).map(str::to_owned),
                            new: value.clone(),
                        })
                    })
                }
                Intent::Node { id, value, what } => editor.set(*id, value, what).map(|changed| {
                    changed.then(|| Change {
                        what: what.trim_matches('`').to_owned(),
                        at: yaml.origin(*id).to_string(),
                        old: yaml.scalar(*id).map(str::to_owned),
                        new: value.clone(),
                    })
                }),
            };
            match applied {
                Ok(Some(c)) => changes.push(c),
                Ok(None) => {}
                Err(e) => refusals.push(e),
            }
        }
        if changes.is_empty() || !refusals.is_empty() {
            continue;
        }
        match editor.finish() {
            Ok(text) => out.push((
                FileChange {
                    path: file.clone(),
                    changes,
                    diff: super::diff::unified(file, yaml.text(), &text),
                },
                text,
            )),
            Err(e) => refusals.push(e),
        }
    }
    super::refuse_all(refusals)?;
    Ok(out)
}

fn push_node(
    intents: &mut BTreeMap<String, Vec<Intent>>,
    file: &str,
    id: NodeId,
    value: String,
    path: &[Seg],
) {
    intents
        .entry(file.to_owned())
        .or_default()
        .push(Intent::Node {
            id,
            value,
            what: path_text(path),
        });
}

/// The value of `keys` in the most specific layer of `to` that sets it.
fn effective(yamls: &BTreeMap<String, Yaml>, to: &Target, keys: &[String]) -> Option<String> {
    let segs: Vec<Seg> = keys.iter().map(|k| Seg::Key(k)).collect();
    to.layers.iter().rev().find_map(|l| {
        let id = yamls[l].find(0, &segs).ok().flatten()?;
        Some(yamls[l].scalar(id).unwrap_or_default().to_owned())
    })
}

/// The layer of `to` to write `keys` into: the most specific layer that sets it when no other
/// target uses that layer (else editing it would change them too), otherwise `to`'s own env file
/// (its most specific layer), which overrides the shared ones.
fn layer_for(
    yamls: &BTreeMap<String, Yaml>,
    targets: &[Target],
    to: &Target,
    keys: &[String],
) -> Result<String, StackError> {
    let segs: Vec<Seg> = keys.iter().map(|k| Seg::Key(k)).collect();
    for layer in to.layers.iter().rev() {
        if yamls[layer].find(0, &segs)?.is_some() {
            let shared = targets
                .iter()
                .any(|t| t.name != to.name && t.layers.contains(layer));
            if !shared {
                return Ok(layer.clone());
            }
            break;
        }
    }
    Ok(to.layers.last().cloned().unwrap_or_else(|| to.file.clone()))
}

fn kustomize_match(project: &Project, image: &Image, entry: &str) -> bool {
    if let Some(n) = project.config.promote.kustomize_names.get(&image.name) {
        return n == entry;
    }
    let configured = project.config.images[&image.name]
        .repository
        .clone()
        .unwrap_or_else(|| format!("stack/{}", image.name));
    std::iter::once(&image.name)
        .chain(std::iter::once(&configured))
        .chain(&image.repositories)
        .any(|r| !r.is_empty() && (entry == r || entry.ends_with(&format!("/{r}"))))
}

fn flux_match(project: &Project, image: &Image, policy: &str) -> bool {
    project
        .config
        .promote
        .flux_policies
        .get(&image.name)
        .map_or(policy == image.name, |p| p == policy)
}
