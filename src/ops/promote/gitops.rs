//! Where GitOps files pin versions, read without running their tools: Kustomize `images:`
//! entries (`newTag`, `digest`, by `name`), Argo CD Applications' `targetRevision` (the chart
//! version), and Flux image-automation markers (`# {"$imagepolicy": "<ns>:<policy>[:field]"}` on
//! the line of the value they set).

use crate::error::StackError;
use crate::yaml::edit::{path_text, Kind, NodeId, Seg, Yaml};

fn top_scalar<'y>(yaml: &'y Yaml, doc: usize, key: &str) -> Option<&'y str> {
    yaml.find(doc, &[Seg::Key(key)])
        .ok()
        .flatten()
        .and_then(|id| yaml.scalar(id))
}

/// The `targetRevision` scalars of every Argo CD Application in the file: `spec.source`, and
/// each of `spec.sources` that names a `chart`.
pub fn argo_revisions(yaml: &Yaml) -> Result<Vec<(NodeId, String)>, StackError> {
    let mut out = Vec::new();
    for doc in 0..yaml.documents().len() {
        let is_app = top_scalar(yaml, doc, "kind") == Some("Application")
            && top_scalar(yaml, doc, "apiVersion").is_some_and(|a| a.starts_with("argoproj.io/"));
        if !is_app {
            continue;
        }
        let single = [
            Seg::Key("spec"),
            Seg::Key("source"),
            Seg::Key("targetRevision"),
        ];
        if let Some(id) = yaml.find(doc, &single)? {
            out.push((id, path_text(&single)));
        }
        if let Some(list) = yaml.find(doc, &[Seg::Key("spec"), Seg::Key("sources")])? {
            let count = match &yaml.node(list).kind {
                Kind::Seq { items, .. } => items.len(),
                _ => 0,
            };
            for i in 0..count {
                let base = [Seg::Key("spec"), Seg::Key("sources"), Seg::Index(i)];
                if yaml
                    .find(doc, &[&base[..], &[Seg::Key("chart")]].concat())?
                    .is_none()
                {
                    continue;
                }
                let rev = [&base[..], &[Seg::Key("targetRevision")]].concat();
                if let Some(id) = yaml.find(doc, &rev)? {
                    out.push((id, path_text(&rev)));
                }
            }
        }
    }
    Ok(out)
}

/// A Kustomization's `images:` entries: (document, the entry's `name`).
pub fn kustomize_images(yaml: &Yaml, file_name: &str) -> Vec<(usize, String)> {
    let mut out = Vec::new();
    let by_name = matches!(
        file_name,
        "kustomization.yaml" | "kustomization.yml" | "Kustomization"
    );
    for doc in 0..yaml.documents().len() {
        if !by_name && top_scalar(yaml, doc, "kind") != Some("Kustomization") {
            continue;
        }
        let Ok(Some(list)) = yaml.find(doc, &[Seg::Key("images")]) else {
            continue;
        };
        let Kind::Seq { items, .. } = &yaml.node(list).kind else {
            continue;
        };
        for i in 0..items.len() {
            let name = [Seg::Key("images"), Seg::Index(i), Seg::Key("name")];
            if let Some(n) = yaml
                .find(doc, &name)
                .ok()
                .flatten()
                .and_then(|id| yaml.scalar(id))
            {
                out.push((doc, n.to_owned()));
            }
        }
    }
    out
}

/// A Flux setter marker on a value's line.
#[derive(Debug, PartialEq, Eq)]
pub struct Marker {
    pub value: NodeId,
    pub namespace: String,
    pub policy: String,
    /// `tag`, `name`, `digest`, or empty (the whole image reference).
    pub field: String,
}

/// Every value with a Flux `$imagepolicy` marker after it.
pub fn flux_markers(yaml: &Yaml) -> Vec<Marker> {
    let mut out = Vec::new();
    for id in yaml.ids() {
        if !matches!(yaml.node(id).kind, Kind::Scalar { .. }) || yaml.key_of(id).is_none() {
            continue;
        }
        let Some(comment) = yaml.trailing_comment(id) else {
            continue;
        };
        if !comment.contains("$imagepolicy") {
            continue;
        }
        let Ok(serde_json::Value::Object(o)) = serde_json::from_str(comment) else {
            continue;
        };
        let Some(serde_json::Value::String(setter)) = o.get("$imagepolicy") else {
            continue;
        };
        let mut parts = setter.splitn(3, ':');
        let (Some(namespace), Some(policy)) = (parts.next(), parts.next()) else {
            continue;
        };
        out.push(Marker {
            value: id,
            namespace: namespace.to_owned(),
            policy: policy.to_owned(),
            field: parts.next().unwrap_or_default().to_owned(),
        });
    }
    out
}

/// `registry/repo:old@sha256:…` with the tag (and digest) replaced; the name part kept as written.
pub fn with_tag(reference: &str, tag: &str, digest: Option<&str>) -> String {
    let without_digest = reference.split('@').next().unwrap_or(reference);
    let last_slash = without_digest.rfind('/').map_or(0, |i| i + 1);
    let name = match without_digest[last_slash..].rfind(':') {
        Some(colon) => &without_digest[..last_slash + colon],
        None => without_digest,
    };
    match digest {
        Some(d) => format!("{name}:{tag}@{d}"),
        None => format!("{name}:{tag}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn image_references_keep_their_name() {
        assert_eq!(with_tag("ghcr.io/a/b:1.0", "2.0", None), "ghcr.io/a/b:2.0");
        assert_eq!(
            with_tag("localhost:5000/b@sha256:x", "2", Some("sha256:y")),
            "localhost:5000/b:2@sha256:y"
        );
        assert_eq!(with_tag("b", "2", None), "b:2");
    }

    #[test]
    fn markers_name_policy_and_field() {
        let y = Yaml::parse(
            "f.yaml",
            "image: ghcr.io/x/web:1.0 # {\"$imagepolicy\": \"flux-system:web\"}\nt: 1.0 # {\"$imagepolicy\": \"ns:web:tag\"}\nn: 1 # plain comment\n",
        )
        .unwrap();
        let m = flux_markers(&y);
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].policy.as_str(), m[0].field.as_str()), ("web", ""));
        assert_eq!(
            (m[1].namespace.as_str(), m[1].field.as_str()),
            ("ns", "tag")
        );
    }
}
