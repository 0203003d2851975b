//! `stack live diff TARGET`: what the upgrade would apply (`helm template` with the deploy's
//! chart, version, values files, namespace and release) against what the deployed revision applied
//! (`helm get manifest`), object by object (kind, namespace, name), as a unified diff per object.
//! Hooks are left out on both sides (the release manifest holds none). Every Secret's
//! `data`/`stringData` values are replaced by a marker on both sides before anything is compared
//! or printed: a changed secret shows only which keys changed, never a value.

use super::LiveTarget;
use crate::config::Project;
use crate::error::StackError;
use crate::release::Release;
use crate::tool::Host;
use crate::yaml::{Node, Value};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;

/// What a Secret's value is shown as.
pub const REDACTED: &str = "<redacted>";
/// What a Secret's value the upgrade changes is shown as (on the upgrade's side).
pub const REDACTED_CHANGED: &str = "<redacted: changed>";

#[derive(Debug, Default)]
pub struct DiffOptions {
    pub target: String,
    pub version: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Change {
    Added,
    Removed,
    Changed,
}

/// One object the upgrade would add, remove or change.
#[derive(Debug, Clone, Serialize)]
pub struct ObjectDiff {
    pub kind: String,
    pub namespace: String,
    pub name: String,
    pub change: Change,
    /// A unified diff (`--- deployed/…`, `+++ upgrade/…`), Secret values redacted.
    pub diff: String,
}

/// How many objects change, for `stack live deploy`'s report.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct DiffSummary {
    pub added: usize,
    pub removed: usize,
    pub changed: usize,
}

#[derive(Debug, Serialize)]
pub struct DiffReport {
    pub target: String,
    pub context: String,
    pub namespace: String,
    pub release: String,
    pub chart: String,
    pub version: Option<String>,
    /// False when the release is not installed (every object is added).
    pub installed: bool,
    #[serde(flatten)]
    pub summary: DiffSummary,
    pub objects: Vec<ObjectDiff>,
}

impl DiffReport {
    pub fn has_changes(&self) -> bool {
        !self.objects.is_empty()
    }
}

pub fn diff(project: &Project, host: &Host, opts: &DiffOptions) -> anyhow::Result<DiffReport> {
    let t = super::resolve(project, host, &opts.target, opts.version.as_deref(), "diff")?;
    super::target::validate_env(project, host, &t)?;
    let rel = Release::new(&t.kube, &t.release, host)?;
    Ok(compare(&rel, &t, host)?)
}

/// Renders the upgrade and compares it with the deployed manifest (read-only: no event, no step).
pub fn compare(rel: &Release, t: &LiveTarget, host: &Host) -> Result<DiffReport, StackError> {
    let cmd = super::deploy::template_cmd(rel, t);
    let rendered = host.runner.run(&cmd).map_err(|e| {
        StackError::tool(
            e,
            "`stack validate envs --helm` reproduces template errors offline",
        )
    })?;
    let deployed = rel.manifest()?;
    let ns = t.kube.namespace();
    let objects = changes(
        &deployed
            .as_deref()
            .map(|m| objects(m, "helm get manifest", ns))
            .transpose()?
            .unwrap_or_default(),
        &objects(&rendered.stdout, "helm template", ns)?,
    );
    let mut summary = DiffSummary::default();
    for o in &objects {
        match o.change {
            Change::Added => summary.added += 1,
            Change::Removed => summary.removed += 1,
            Change::Changed => summary.changed += 1,
        }
    }
    Ok(DiffReport {
        target: t.env.name.clone(),
        context: t.kube.context().to_owned(),
        namespace: ns.to_owned(),
        release: t.release.clone(),
        chart: t.chart.clone(),
        version: t.version.clone(),
        installed: deployed.is_some(),
        summary,
        objects,
    })
}

/// An object's identity: kind, namespace (the release's when the manifest names none), name.
type Key = (String, String, String);

/// The objects of a multi-document manifest, hooks left out.
fn objects(text: &str, source: &str, namespace: &str) -> Result<BTreeMap<Key, Node>, StackError> {
    let file: Arc<str> = Arc::from(source);
    let mut out = BTreeMap::new();
    for doc in crate::release::manifest::documents(text) {
        let node = crate::yaml::parse(&file, &doc).map_err(|e| StackError::Internal {
            message: format!("{source} printed a manifest that is not YAML: {e}"),
        })?;
        let Some(map) = node.root.value.as_map() else {
            continue;
        };
        let s = |m: &crate::yaml::Map, k: &str| match m.get(k).map(|n| &n.value) {
            Some(Value::Str(s)) => Some(s.clone()),
            _ => None,
        };
        let meta = map.get("metadata").and_then(|m| m.value.as_map());
        let hook = meta
            .and_then(|m| m.get("annotations"))
            .and_then(|a| a.value.as_map())
            .is_some_and(|a| a.contains_key("helm.sh/hook"));
        let (Some(kind), Some(name)) = (s(map, "kind"), meta.and_then(|m| s(m, "name"))) else {
            continue;
        };
        if hook {
            continue;
        }
        let ns = meta
            .and_then(|m| s(m, "namespace"))
            .unwrap_or_else(|| namespace.to_owned());
        out.insert((kind, ns, name), node.root);
    }
    Ok(out)
}

/// The objects that differ, Secrets redacted on both sides first.
fn changes(old: &BTreeMap<Key, Node>, new: &BTreeMap<Key, Node>) -> Vec<ObjectDiff> {
    let mut keys: Vec<&Key> = old.keys().chain(new.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = Vec::new();
    for key in keys {
        let (mut before, mut after) = (old.get(key).cloned(), new.get(key).cloned());
        if key.0 == "Secret" {
            redact(before.as_mut(), after.as_mut());
        }
        let yaml = |n: &Option<Node>| {
            n.as_ref()
                .map(|n| crate::yaml::emit::to_yaml(n, &|_, _| None))
                .unwrap_or_default()
        };
        let (a, b) = (yaml(&before), yaml(&after));
        let change = match (&before, &after) {
            (None, _) => Change::Added,
            (_, None) => Change::Removed,
            _ if a == b => continue,
            _ => Change::Changed,
        };
        let path = format!("{}/{}/{}", key.0, key.1, key.2);
        out.push(ObjectDiff {
            kind: key.0.clone(),
            namespace: key.1.clone(),
            name: key.2.clone(),
            change,
            diff: similar::TextDiff::from_lines(&a, &b)
                .unified_diff()
                .context_radius(3)
                .header(&format!("deployed/{path}"), &format!("upgrade/{path}"))
                .to_string(),
        });
    }
    out
}

/// Replaces every `data`/`stringData` value of a Secret by [`REDACTED`]; on the upgrade's side a
/// value that differs from the deployed one by [`REDACTED_CHANGED`] (only the key shows).
fn redact(before: Option<&mut Node>, after: Option<&mut Node>) {
    const FIELDS: [&str; 2] = ["data", "stringData"];
    let field = |n: &Node, f: &str| -> Option<crate::yaml::Map> {
        n.value.as_map()?.get(f)?.value.as_map().cloned()
    };
    let old: Vec<Option<crate::yaml::Map>> = FIELDS
        .iter()
        .map(|f| before.as_deref().and_then(|n| field(n, f)))
        .collect();
    let mark = |node: &mut Node, changed: &dyn Fn(usize, &str, &Node) -> bool| {
        let Value::Map(map) = &mut node.value else {
            return;
        };
        for (i, f) in FIELDS.iter().enumerate() {
            let Some(Node {
                value: Value::Map(entries),
                ..
            }) = map.get_mut(*f)
            else {
                continue;
            };
            for (k, v) in entries.iter_mut() {
                let marker = if changed(i, k, v) {
                    REDACTED_CHANGED
                } else {
                    REDACTED
                };
                v.value = Value::Str(marker.to_owned());
            }
        }
    };
    if let Some(n) = after {
        mark(n, &|i, k, v| {
            old[i]
                .as_ref()
                .and_then(|m| m.get(k))
                .is_some_and(|o| o.value != v.value)
        });
    }
    if let Some(n) = before {
        mark(n, &|_, _, _| false);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEPLOYED: &str = "---\n# Source: web/templates/secret.yaml\napiVersion: v1\nkind: Secret\nmetadata:\n  name: web\nstringData:\n  password: hunter2\n  user: admin\n---\n# Source: web/templates/cm.yaml\napiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: web\ndata:\n  a: \"1\"\n";

    fn objs(text: &str) -> BTreeMap<Key, Node> {
        objects(text, "test", "ns").unwrap()
    }

    #[test]
    fn a_changed_secret_shows_its_changed_keys_never_a_value() {
        let new = DEPLOYED.replace("hunter2", "s3cr3t-new");
        let d = changes(&objs(DEPLOYED), &objs(&new));
        assert_eq!(d.len(), 1, "{d:?}");
        assert_eq!(
            (d[0].kind.as_str(), d[0].change),
            ("Secret", Change::Changed)
        );
        assert!(
            d[0].diff.contains("+  password: '<redacted: changed>'")
                || d[0].diff.contains("+  password: \"<redacted: changed>\"")
                || d[0].diff.contains("+  password: <redacted: changed>"),
            "{}",
            d[0].diff
        );
        assert!(!d[0].diff.contains("hunter2") && !d[0].diff.contains("s3cr3t"));
    }

    #[test]
    fn equal_manifests_have_no_changes_and_new_objects_are_added() {
        assert!(changes(&objs(DEPLOYED), &objs(DEPLOYED)).is_empty());
        let d = changes(&BTreeMap::new(), &objs(DEPLOYED));
        assert_eq!(d.len(), 2);
        assert!(d
            .iter()
            .all(|o| o.change == Change::Added && o.namespace == "ns"));
        assert!(!d.iter().any(|o| o.diff.contains("hunter2")));
    }
}
