//! What helm prints as manifests (`helm template`, `helm get manifest`): `---`-separated YAML
//! documents. One reader for every stage: the documents, the objects as JSON, and the container
//! images the objects' pod templates name.

use crate::error::StackError;
use std::sync::Arc;

/// The `---`-separated documents that hold more than comments and blank lines.
pub fn documents(text: &str) -> Vec<String> {
    let mut docs = vec![String::new()];
    for line in text.lines() {
        if line == "---" || line.starts_with("--- ") {
            docs.push(String::new());
            continue;
        }
        let cur = docs.last_mut().expect("one document at least");
        cur.push_str(line);
        cur.push('\n');
    }
    docs.retain(|d| {
        d.lines()
            .any(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
    });
    docs
}

/// Every document that is an object (a map with a `kind`), as JSON. `source` names the output in
/// errors (`helm template`).
pub fn objects(text: &str, source: &str) -> Result<Vec<serde_json::Value>, StackError> {
    let mut out = Vec::new();
    for (i, doc) in documents(text).iter().enumerate() {
        let name: Arc<str> = Arc::from(format!("{source} (document {})", i + 1).as_str());
        let parsed = crate::yaml::parse(&name, doc).map_err(|e| StackError::Internal {
            message: format!(
                "{source} printed a manifest that is not YAML: {}",
                e.message
            ),
        })?;
        let value = parsed.root.value.to_json();
        if value.is_object() && value["kind"].is_string() {
            out.push(value);
        }
    }
    Ok(out)
}

/// `(owner, image)` for every container and init container of Deployments, StatefulSets,
/// DaemonSets, ReplicaSets, Jobs, CronJobs and Pods, each image once (first owner), in order.
pub fn images(objects: &[serde_json::Value]) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for m in objects {
        let kind = m["kind"].as_str().unwrap_or_default();
        let pod = match kind {
            "Deployment" | "StatefulSet" | "DaemonSet" | "ReplicaSet" | "Job" => {
                &m["spec"]["template"]["spec"]
            }
            "CronJob" => &m["spec"]["jobTemplate"]["spec"]["template"]["spec"],
            "Pod" => &m["spec"],
            _ => continue,
        };
        let owner = format!(
            "{}/{}",
            kind.to_ascii_lowercase(),
            m["metadata"]["name"].as_str().unwrap_or_default()
        );
        for list in ["initContainers", "containers"] {
            for c in pod[list].as_array().into_iter().flatten() {
                let Some(image) = c["image"].as_str() else {
                    continue;
                };
                if !out.iter().any(|(_, i)| i == image) {
                    out.push((owner.clone(), image.to_owned()));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn documents_skip_empty_and_comment_only_ones() {
        let docs = super::documents(
            "---\n# Source: a\n---\n# Source: b\napiVersion: v1\nkind: ConfigMap\n---\n\n",
        );
        assert_eq!(docs.len(), 1);
        assert!(docs[0].contains("kind: ConfigMap"));
    }

    #[test]
    fn images_of_every_pod_template_once() {
        let text = "---\nkind: Deployment\nmetadata: {name: api}\nspec:\n  template:\n    spec:\n      initContainers: [{name: m, image: 'r/migrate:1'}]\n      containers: [{name: a, image: 'r/api:2'}]\n---\nkind: CronJob\nmetadata: {name: c}\nspec: {jobTemplate: {spec: {template: {spec: {containers: [{name: x, image: 'r/api:2'}, {name: y, image: 'r/cron:3'}]}}}}}\n---\nkind: Service\nmetadata: {name: s}\n";
        let objects = super::objects(text, "helm template").unwrap();
        assert_eq!(
            super::images(&objects),
            [
                ("deployment/api".to_owned(), "r/migrate:1".to_owned()),
                ("deployment/api".to_owned(), "r/api:2".to_owned()),
                ("cronjob/c".to_owned(), "r/cron:3".to_owned()),
            ]
        );
    }
}
