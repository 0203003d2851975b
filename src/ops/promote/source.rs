//! What the source env runs: each image's tag (and digest) as Helm composes FROM's values — the
//! same composition `validate` and `values` use —, and the chart version its Argo CD
//! Applications pin.

use super::files;
use crate::config::Project;
use crate::envs::{self, Target};
use crate::error::StackError;
use crate::values::{self, compose::BakeCache};
use crate::yaml::{Map, Node, Origin, Value};
use serde::Serialize;

/// One image as the source env runs it.
#[derive(Clone, Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Image {
    pub name: String,
    pub tag: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
    /// Where the source env's layers (or the chart) set the tag.
    pub from: String,
    /// The repositories the source env composes for it (to recognise its Kustomize entries).
    #[serde(skip)]
    pub repositories: Vec<String>,
}

/// The chart version the source env's Argo CD Applications pin.
#[derive(Clone, Debug, Serialize)]
pub struct ChartVersion {
    pub version: String,
    pub from: String,
}

/// The images named in `wanted` (all of stack.yaml's when empty) as `from` composes them.
pub fn images(
    project: &Project,
    from: &Target,
    wanted: &[String],
) -> Result<Vec<Image>, StackError> {
    let chart_rel = envs::chart_dir(project)?;
    let chart = values::chart::load(&project.root.join(&chart_rel), &chart_rel)?;
    let mut parsed = Vec::new();
    for l in &from.layers {
        parsed.push(envs::parse_layer(project, l)?.0.root);
    }
    let composition = envs::compose(&chart, from, &parsed, &[], &BakeCache::default())?;
    let composed = &composition.composed.values;
    let mut out = Vec::new();
    let mut refusals = Vec::new();
    for (name, image) in &project.config.images {
        if !wanted.is_empty() && !wanted.contains(name) {
            continue;
        }
        if image.values.is_empty() {
            continue;
        }
        let mut tags: Vec<(String, Origin, &str)> = Vec::new();
        let mut digests: Vec<(String, Origin, &str)> = Vec::new();
        let mut repositories = Vec::new();
        for path in &image.values {
            if let Some((t, o)) = leaf(composed, path, "tag") {
                tags.push((t, o, path));
            }
            if let Some((d, o)) = leaf(composed, path, "digest") {
                digests.push((d, o, path));
            }
            if let Some((r, _)) = leaf(composed, path, "repository") {
                repositories.push(r);
            }
        }
        match agree(name, "tag", &from.name, &tags) {
            Err(e) => refusals.push(e),
            Ok(None) => refusals.push(StackError::config(
                None,
                format!(
                    "{} pins no tag for image `{name}` ({} empty or unset)",
                    from.name,
                    image
                        .values
                        .iter()
                        .map(|p| format!("{p}.tag"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
                "promote from an env that pins the tag it runs (ci, preview, live), or pass --image for the others",
            )),
            Ok(Some((tag, origin))) => {
                let digest = match agree(name, "digest", &from.name, &digests) {
                    Ok(d) => d.map(|(d, _)| d),
                    Err(e) => {
                        refusals.push(e);
                        None
                    }
                };
                out.push(Image {
                    name: name.clone(),
                    tag,
                    digest,
                    from: origin.to_string(),
                    repositories,
                });
            }
        }
    }
    super::refuse_all(refusals)?;
    Ok(out)
}

/// The non-empty values of one field across an image's values paths: none, or one they all agree
/// on — else refused at each place (two aliases of one chart running different versions).
fn agree(
    image: &str,
    field: &str,
    env: &str,
    found: &[(String, Origin, &str)],
) -> Result<Option<(String, Origin)>, StackError> {
    let set: Vec<&(String, Origin, &str)> = found.iter().filter(|f| !f.0.is_empty()).collect();
    let Some(first) = set.first() else {
        return Ok(None);
    };
    if set.iter().all(|f| f.0 == first.0) {
        return Ok(Some((first.0.clone(), first.1.clone())));
    }
    let places: Vec<String> = set
        .iter()
        .map(|(v, o, p)| format!("  {o}: {p}.{field} = {v:?}"))
        .collect();
    Err(StackError::config(
        Some(first.1.clone()),
        format!(
            "image `{image}` runs different {field}s in {env}, so which one was tested is unclear:\n{}",
            places.join("\n")
        ),
        format!("make every values path of `{image}` agree in {env}, then promote"),
    ))
}

/// `path.field` in the composed values, as text (numbers as Helm prints them), and its origin.
fn leaf(values: &Map, path: &str, field: &str) -> Option<(String, Origin)> {
    let mut map = values;
    let mut node: Option<&Node> = None;
    for key in path.split('.').chain(std::iter::once(field)) {
        let n = map.get(key)?;
        node = Some(n);
        if let Value::Map(m) = &n.value {
            map = m;
        }
    }
    let n = node?;
    let text = match &n.value {
        Value::Str(s) => s.clone(),
        Value::Number(x) => crate::yaml::number_to_json(*x).to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Null => String::new(),
        Value::Seq(_) | Value::Map(_) => return None,
    };
    Some((text, n.origin.clone()))
}

/// The chart version the Argo CD Applications among `from`'s files pin: none, or one they agree on.
pub fn chart(
    project: &Project,
    from: &Target,
    chart_dir: &str,
) -> Result<Option<ChartVersion>, StackError> {
    let mut found: Vec<(String, Origin)> = Vec::new();
    for file in files::for_target(project, from, chart_dir)? {
        let yaml = files::read(project, &file)?;
        for (id, _) in super::gitops::argo_revisions(&yaml)? {
            if let Some(v) = yaml.scalar(id) {
                found.push((v.to_owned(), yaml.origin(id)));
            }
        }
    }
    let Some(first) = found.first().cloned() else {
        return Ok(None);
    };
    if found.iter().any(|f| f.0 != first.0) {
        let places: Vec<String> = found.iter().map(|(v, o)| format!("  {o}: {v}")).collect();
        return Err(StackError::config(
            Some(first.1),
            format!(
                "{}'s Argo CD Applications pin different chart versions:\n{}",
                from.name,
                places.join("\n")
            ),
            "make them agree, then promote",
        ));
    }
    Ok(Some(ChartVersion {
        version: first.0,
        from: first.1.to_string(),
    }))
}
