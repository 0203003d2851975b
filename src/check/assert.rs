//! `assert` and `absent` checks: an object of any kind (resolved through the API server's
//! discovery) contains the fields written in the check, or does not exist; polled until the
//! check's deadline.
//!
//! Matching is kuttl's and Chainsaw's subset match: every field of the expected object must be in
//! the live one with an equal value; maps match recursively (extra live fields are ignored); lists
//! must have the same length and match element by element. Numbers compare by value (`3` equals
//! `3.0`), never across types (`3` is not `"3"`). An expected `null` means the field is unset
//! (missing or null). A mismatch is reported as one line per differing path against the last
//! object seen.

use super::{Attempt, Ctx, Finished};
use crate::kube::wait::api_message;
use ::kube::api::{Api, DynamicObject};
use ::kube::core::GroupVersionKind;
use ::kube::discovery::{pinned_kind, Scope};
use serde_json::Value;
use std::time::Duration;
use tokio::sync::OnceCell;
use tokio::time::Instant;

pub async fn run(object: &Value, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let target = Target::of(object);
    let api = OnceCell::new();
    super::poll(deadline, timeout, || async {
        let api = match api.get_or_try_init(|| target.api(ctx)).await {
            Ok(api) => api,
            Err(message) => return Attempt::Error(message),
        };
        match api.get_opt(&target.name).await {
            Ok(None) => Attempt::NotYet {
                message: format!("{} not found", target.label),
                detail: String::new(),
            },
            Ok(Some(live)) => {
                let live = serde_json::to_value(live).unwrap_or_default();
                let lines = diff(object, &live);
                match lines.len() {
                    0 => Attempt::Pass(format!("{} matches", target.label)),
                    1 => Attempt::NotYet {
                        message: format!("{}: 1 field differs", target.label),
                        detail: lines.join("\n"),
                    },
                    n => Attempt::NotYet {
                        message: format!("{}: {n} fields differ", target.label),
                        detail: lines.join("\n"),
                    },
                }
            }
            Err(e) => Attempt::Error(format!("cannot read {}: {}", target.label, api_message(&e))),
        }
    })
    .await
}

pub async fn absent(object: &Value, ctx: &Ctx, deadline: Instant, timeout: Duration) -> Finished {
    let target = Target::of(object);
    let api = OnceCell::new();
    super::poll(deadline, timeout, || async {
        let api = match api.get_or_try_init(|| target.api(ctx)).await {
            Ok(api) => api,
            Err(message) => return Attempt::Error(message),
        };
        match api.get_opt(&target.name).await {
            Ok(None) => Attempt::Pass(format!("{} is absent", target.label)),
            Ok(Some(live)) => Attempt::NotYet {
                message: format!("{} still exists", target.label),
                detail: match &live.metadata.deletion_timestamp {
                    Some(t) => format!(
                        "being deleted since {}; finalizers: {}",
                        t.0,
                        live.metadata.finalizers.unwrap_or_default().join(", ")
                    ),
                    None => String::new(),
                },
            },
            Err(e) => Attempt::Error(format!("cannot read {}: {}", target.label, api_message(&e))),
        }
    })
    .await
}

/// The object a check names: apiVersion, kind, metadata.name and (optional) metadata.namespace.
struct Target {
    api_version: String,
    kind: String,
    namespace: Option<String>,
    name: String,
    /// `configmap/settings`.
    label: String,
}

impl Target {
    fn of(object: &Value) -> Target {
        let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
        let kind = text(&object["kind"]);
        let name = text(&object["metadata"]["name"]);
        Target {
            api_version: text(&object["apiVersion"]),
            label: format!("{}/{name}", kind.to_ascii_lowercase()),
            namespace: object["metadata"]["namespace"].as_str().map(str::to_owned),
            kind,
            name,
        }
    }

    /// The kind's API through discovery; a namespaced kind in the object's namespace, else the
    /// check's.
    async fn api(&self, ctx: &Ctx) -> Result<Api<DynamicObject>, String> {
        let (group, version) = self
            .api_version
            .split_once('/')
            .unwrap_or(("", &self.api_version));
        let gvk = GroupVersionKind::gvk(group, version, &self.kind);
        let (resource, caps) = pinned_kind(&ctx.client, &gvk).await.map_err(|e| {
            format!(
                "no kind {} in {} on the API server: {}",
                self.kind,
                self.api_version,
                api_message(&e)
            )
        })?;
        Ok(match caps.scope {
            Scope::Namespaced => Api::namespaced_with(
                ctx.client.clone(),
                self.namespace.as_deref().unwrap_or(&ctx.namespace),
                &resource,
            ),
            Scope::Cluster => Api::all_with(ctx.client.clone(), &resource),
        })
    }
}

/// Where `expected` is not a subset of `live`: one line per differing path
/// (`.data.mode: expected "prod", got "dev"`, `.metadata.labels.tier: missing`), in key order;
/// none when it is.
pub fn diff(expected: &Value, live: &Value) -> Vec<String> {
    let mut out = Vec::new();
    walk(&mut String::new(), expected, Some(live), &mut out);
    out
}

fn walk(path: &mut String, expected: &Value, live: Option<&Value>, out: &mut Vec<String>) {
    let at = |path: &str| {
        if path.is_empty() {
            ".".to_owned()
        } else {
            path.to_owned()
        }
    };
    let Some(live) = live else {
        if !expected.is_null() {
            out.push(format!("{}: missing", at(path)));
        }
        return;
    };
    match (expected, live) {
        (Value::Object(want), Value::Object(have)) => {
            // By key, whatever order the map keeps: the same diff for the same objects.
            let mut keys: Vec<&String> = want.keys().collect();
            keys.sort();
            for key in keys {
                let value = &want[key];
                let len = path.len();
                push_key(path, key);
                walk(path, value, have.get(key), out);
                path.truncate(len);
            }
        }
        (Value::Array(want), Value::Array(have)) if want.len() == have.len() => {
            for (i, (w, h)) in want.iter().zip(have).enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                walk(path, w, Some(h), out);
                path.truncate(len);
            }
        }
        (Value::Array(want), Value::Array(have)) => out.push(format!(
            "{}: expected {} item{}, got {}",
            at(path),
            want.len(),
            if want.len() == 1 { "" } else { "s" },
            have.len()
        )),
        (Value::Number(a), Value::Number(b)) if a.as_f64() == b.as_f64() => {}
        (a, b) if a == b => {}
        (a, b) => out.push(format!(
            "{}: expected {}, got {}",
            at(path),
            shown(a),
            shown(b)
        )),
    }
}

/// `.name`, or `["app.kubernetes.io/name"]` for a key that is not a plain identifier.
fn push_key(path: &mut String, key: &str) {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        path.push('.');
        path.push_str(key);
    } else {
        path.push_str(&format!("[{}]", Value::String(key.to_owned())));
    }
}

/// Scalars as JSON (`"prod"`, `3`, `null`); collections by shape.
fn shown(v: &Value) -> String {
    match v {
        Value::Object(m) => format!(
            "a map of {} key{}",
            m.len(),
            if m.len() == 1 { "" } else { "s" }
        ),
        Value::Array(a) => format!(
            "a list of {} item{}",
            a.len(),
            if a.len() == 1 { "" } else { "s" }
        ),
        scalar => scalar.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::diff;
    use serde_json::json;

    #[test]
    fn a_subset_matches_and_extra_live_fields_are_ignored() {
        let live = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "s", "namespace": "n", "uid": "u", "labels": {"a": "1", "b": "2"}},
            "data": {"mode": "prod", "extra": "x"}});
        let want = json!({"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": "s", "labels": {"a": "1"}}, "data": {"mode": "prod"}});
        assert_eq!(diff(&want, &live), Vec::<String>::new());
        assert_eq!(diff(&json!({}), &live), Vec::<String>::new());
    }

    #[test]
    fn nested_maps_report_one_line_per_differing_path() {
        let live = json!({"metadata": {"labels": {"app": "api"}}, "data": {"mode": "dev", "level": "info"}});
        let want = json!({"metadata": {"labels": {"app": "api", "tier": "web"}},
            "data": {"mode": "prod", "level": "info"}});
        assert_eq!(
            diff(&want, &live),
            vec![
                r#".data.mode: expected "prod", got "dev""#,
                ".metadata.labels.tier: missing",
            ]
        );
    }

    #[test]
    fn numbers_compare_by_value_never_across_types() {
        let live = json!({"spec": {"replicas": 2, "ratio": 0.5, "port": "80"}});
        assert_eq!(
            diff(&json!({"spec": {"replicas": 2.0}}), &live),
            Vec::<String>::new()
        );
        assert_eq!(
            diff(&json!({"spec": {"replicas": 3}}), &live),
            vec![".spec.replicas: expected 3, got 2"]
        );
        assert_eq!(
            diff(&json!({"spec": {"port": 80}}), &live),
            vec![r#".spec.port: expected 80, got "80""#]
        );
        assert_eq!(
            diff(&json!({"spec": {"replicas": "2"}}), &live),
            vec![r#".spec.replicas: expected "2", got 2"#]
        );
        assert_eq!(
            diff(&json!({"spec": {"ratio": 0.25}}), &live),
            vec![".spec.ratio: expected 0.25, got 0.5"]
        );
    }

    #[test]
    fn booleans_and_strings_do_not_mix() {
        let live = json!({"spec": {"suspend": false, "flag": "true"}});
        assert_eq!(
            diff(&json!({"spec": {"suspend": true, "flag": true}}), &live),
            vec![
                r#".spec.flag: expected true, got "true""#,
                ".spec.suspend: expected true, got false",
            ]
        );
    }

    #[test]
    fn null_means_unset() {
        let live = json!({"metadata": {"labels": {"app": "api"}, "annotations": null}});
        let unset = json!({"metadata": {"labels": {"tier": null}, "annotations": null}});
        assert_eq!(diff(&unset, &live), Vec::<String>::new());
        assert_eq!(
            diff(&json!({"metadata": {"labels": {"app": null}}}), &live),
            vec![r#".metadata.labels.app: expected null, got "api""#]
        );
        assert_eq!(
            diff(&json!({"metadata": {"annotations": {"a": "b"}}}), &live),
            vec![".metadata.annotations: expected a map of 1 key, got null"]
        );
    }

    #[test]
    fn lists_need_the_same_length_and_match_element_wise() {
        let live = json!({"spec": {"ports": [{"name": "http", "port": 80, "protocol": "TCP"},
            {"name": "grpc", "port": 9090, "protocol": "TCP"}]}});
        let same = json!({"spec": {"ports": [{"port": 80}, {"name": "grpc"}]}});
        assert_eq!(diff(&same, &live), Vec::<String>::new());
        let wrong =
            json!({"spec": {"ports": [{"port": 81}, {"name": "grpc", "appProtocol": "h2"}]}});
        assert_eq!(
            diff(&wrong, &live),
            vec![
                ".spec.ports[0].port: expected 81, got 80",
                ".spec.ports[1].appProtocol: missing",
            ]
        );
        let shorter = json!({"spec": {"ports": [{"port": 80}]}});
        assert_eq!(
            diff(&shorter, &live),
            vec![".spec.ports: expected 1 item, got 2"]
        );
        assert_eq!(
            diff(&json!({"args": ["a", "b"]}), &json!({"args": ["b", "a"]})),
            vec![
                r#".args[0]: expected "a", got "b""#,
                r#".args[1]: expected "b", got "a""#,
            ]
        );
    }

    #[test]
    fn shape_mismatches_name_both_shapes() {
        let live = json!({"data": "x", "spec": {"a": 1}, "items": [1, 2]});
        assert_eq!(
            diff(
                &json!({"data": {"k": "v"}, "spec": [1], "items": {"a": 1}}),
                &live
            ),
            vec![
                r#".data: expected a map of 1 key, got "x""#,
                ".items: expected a map of 1 key, got a list of 2 items",
                ".spec: expected a list of 1 item, got a map of 1 key",
            ]
        );
    }

    #[test]
    fn keys_that_are_not_identifiers_are_quoted() {
        let live = json!({"metadata": {"labels": {"app.kubernetes.io/name": "api"}}});
        assert_eq!(
            diff(
                &json!({"metadata": {"labels": {"app.kubernetes.io/name": "web"}}}),
                &live
            ),
            vec![r#".metadata.labels["app.kubernetes.io/name"]: expected "web", got "api""#]
        );
        assert_eq!(
            diff(&json!({"a": 1}), &json!("x")),
            vec![r#".: expected a map of 1 key, got "x""#]
        );
    }
}
