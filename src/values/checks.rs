//! Checks Helm itself does not make (it ignores or merely warns): keys that match nothing, type
//! clashes while coalescing, YAML 1.1 surprises and duplicate keys, image-tag policy.

use crate::diag::{Finding, Rule};
use crate::values::compose::{Clash, Tree};
use crate::yaml::{Map, Node, Note, Origin, Value};
use serde_json::Value as Json;
use std::sync::Arc;

/// What a user file may set: the chart's defaults (every subchart enabled) and its schemas.
pub struct KnownKeys<'c> {
    pub defaults: Map,
    pub tree: Tree<'c>,
    /// Dotted paths that dependency conditions read (`sub.enabled`): Helm uses them.
    pub conditions: std::collections::HashSet<String>,
}

impl<'c> KnownKeys<'c> {
    pub fn new(defaults: Map, tree: Tree<'c>) -> Self {
        let mut conditions = std::collections::HashSet::new();
        condition_paths(&tree, "", &mut conditions);
        KnownKeys {
            defaults,
            tree,
            conditions,
        }
    }
}

/// Condition paths resolve from the top-level values, below the subchart's own path when nested.
fn condition_paths(tree: &Tree<'_>, prefix: &str, out: &mut std::collections::HashSet<String>) {
    for sub in &tree.chart.subcharts {
        for c in sub
            .dep
            .condition
            .split(',')
            .map(str::trim)
            .filter(|c| !c.is_empty())
        {
            out.insert(format!("{prefix}{c}"));
        }
    }
    for child in &tree.children {
        condition_paths(child, &format!("{prefix}{}.", child.key), out);
    }
}

/// Reports every key of a user layer that matches nothing in the chart defaults, the schema or a
/// dependency alias (Helm silently ignores such keys — usually a typo).
pub fn unknown_keys(known: &KnownKeys<'_>, layer: &Map, out: &mut Vec<Finding>) {
    let schema = known.tree.chart.schema.as_ref().map(|s| (&s.json, &s.json));
    walk(
        layer,
        Some(&known.defaults),
        schema,
        Some(&known.tree),
        "",
        &known.conditions,
        out,
    );
}

type SchemaAt<'a> = Option<(&'a Json, &'a Json)>; // (node, document root for $ref)

fn walk(
    layer: &Map,
    defaults: Option<&Map>,
    schema: SchemaAt<'_>,
    tree: Option<&Tree<'_>>,
    path: &str,
    used: &std::collections::HashSet<String>,
    out: &mut Vec<Finding>,
) {
    let schema = schema.map(|(s, root)| (deref(s, root), root));
    for (key, node) in layer {
        let full = if path.is_empty() {
            key.clone()
        } else {
            format!("{path}.{key}")
        };
        if tree.is_some_and(|t| t.chart.subcharts.iter().any(|s| s.dep.key() == key)) {
            // A dependency alias: descend with the subchart's own schema.
            let child = tree.and_then(|t| t.children.iter().find(|c| c.key == *key));
            let sub_defaults = defaults
                .and_then(|d| d.get(key))
                .and_then(|n| n.value.as_map());
            if let (Value::Map(m), Some(child)) = (&node.value, child) {
                let sub_schema = child.chart.schema.as_ref().map(|s| (&s.json, &s.json));
                walk(m, sub_defaults, sub_schema, Some(child), &full, used, out);
            }
            continue;
        }
        if tree.is_some() && (key == "global" || (path.is_empty() && key == "tags")) {
            continue; // free-form by Helm's design
        }
        let default = defaults.and_then(|d| d.get(key));
        let prop = schema.and_then(|(s, root)| property_schema(s, key).map(|p| (p, root)));
        if default.is_none() && prop.is_none() && !used.contains(&full) {
            if is_open(defaults, schema) {
                continue;
            }
            let mut candidates: Vec<&str> = defaults
                .map(|d| d.keys().map(String::as_str).collect())
                .unwrap_or_default();
            if let Some((s, _)) = schema {
                if let Some(Json::Object(props)) = s.get("properties") {
                    candidates.extend(props.keys().map(String::as_str));
                }
            }
            if let Some(t) = tree {
                candidates.extend(t.chart.subcharts.iter().map(|s| s.dep.key()));
            }
            let mut f = Finding::new(
                Rule::UnknownKey,
                Some(node.origin.clone()),
                format!("`{full}` matches nothing in the chart: Helm ignores it"),
            );
            f = match did_you_mean(key, &candidates) {
                Some(best) => f.hint(format!("did you mean `{}`?", replace_last(&full, best))),
                None => {
                    f.hint("remove it, or add it to the chart's values.yaml or values.schema.json")
                }
            };
            out.push(f);
            continue;
        }
        if let Value::Map(m) = &node.value {
            let sub_defaults = default.and_then(|n| n.value.as_map());
            // A default that is not a map (null, scalar) or absent leaves only the schema to judge.
            if default.is_some() && sub_defaults.is_none() && prop.is_none() {
                continue;
            }
            walk(m, sub_defaults, prop, None, &full, used, out);
        }
    }
}

fn replace_last(full: &str, best: &str) -> String {
    match full.rsplit_once('.') {
        Some((head, _)) => format!("{head}.{best}"),
        None => best.to_owned(),
    }
}

/// The closest candidate, if close enough to be a likely typo.
pub fn did_you_mean<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    candidates
        .iter()
        .map(|c| {
            (
                strsim::jaro_winkler(&key.to_lowercase(), &c.to_lowercase()),
                *c,
            )
        })
        .filter(|(score, c)| *score > 0.85 && *c != key)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

/// A level where any key is acceptable: an empty default map (`podAnnotations: {}`) with no
/// schema properties, or a schema that explicitly allows additional properties.
fn is_open(defaults: Option<&Map>, schema: SchemaAt<'_>) -> bool {
    if let Some((s, _)) = schema {
        match s.get("additionalProperties") {
            Some(Json::Bool(false)) => return false,
            Some(Json::Bool(true)) | Some(Json::Object(_)) => return true,
            _ => {}
        }
        if s.get("properties").is_some() || s.get("patternProperties").is_some() {
            return false;
        }
    }
    defaults.is_none_or(Map::is_empty)
}

/// Follows a local `$ref` (`#/...`).
fn deref<'a>(s: &'a Json, root: &'a Json) -> &'a Json {
    let mut s = s;
    for _ in 0..16 {
        match s.get("$ref").and_then(Json::as_str) {
            Some(r) if r.starts_with('#') => match root.pointer(&r[1..]) {
                Some(t) => s = t,
                None => break,
            },
            _ => break,
        }
    }
    s
}

fn property_schema<'a>(s: &'a Json, key: &str) -> Option<&'a Json> {
    if let Some(p) = s.get("properties").and_then(|p| p.get(key)) {
        return Some(p);
    }
    if let Some(Json::Object(pp)) = s.get("patternProperties") {
        for (pattern, sub) in pp {
            if ecma_match(pattern, key) {
                return Some(sub);
            }
        }
    }
    None
}

/// Whether `key` matches an ECMA-262 `pattern`, as JSON Schema's `patternProperties` requires
/// (look-around, `\d`, …): decided by the schema validator's own regex engine, so this check and
/// schema validation never disagree. Compiled patterns are cached for the run.
fn ecma_match(pattern: &str, key: &str) -> bool {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static CACHE: OnceLock<Mutex<HashMap<String, Option<Arc<jsonschema::Validator>>>>> =
        OnceLock::new();
    let validator = {
        let mut cache = CACHE
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        cache
            .entry(pattern.to_owned())
            .or_insert_with(|| {
                jsonschema::validator_for(&serde_json::json!({ "pattern": pattern }))
                    .ok()
                    .map(Arc::new)
            })
            .clone()
    };
    // A pattern the engine cannot compile fails schema compilation itself (reported there).
    validator.is_some_and(|v| v.is_valid(&Json::String(key.to_owned())))
}

/// Helm's coalescing warnings (and its one hard error) as findings.
pub fn clashes(clashes: &[Clash], out: &mut Vec<Finding>) {
    for c in clashes {
        // Helm prefixes paths with the top chart's name; users write them without it.
        let path = c
            .path
            .split_once('.')
            .map_or(c.path.as_str(), |(_, rest)| rest);
        let message = if c.fatal {
            format!("`{}` is a subchart's values but is set to a {}: Helm fails with \"type mismatch on {}\"", c.path, c.user_type, c.path)
        } else {
            format!("`{path}` is a {} here but a {} in the chart defaults: Helm keeps this value and only warns", c.user_type, c.default_type)
        };
        let hint = match &c.default {
            Some(d) => format!("the default is at {d}; make both the same type"),
            None => "set it to a map of the subchart's values".to_owned(),
        };
        // A fatal clash is Helm refusing to render, whatever level type-mismatch is set to.
        let rule = if c.fatal {
            Rule::HelmRefuses
        } else {
            Rule::TypeMismatch
        };
        out.push(Finding::new(rule, Some(c.user.clone()), message).hint(hint));
    }
}

/// What makes Helm refuse a values file although it parses as YAML: numbers JSON cannot hold
/// (`.nan`, `.inf`), which fail Helm's YAML → JSON conversion for the whole file.
pub fn helm_refusals(root: &Node, out: &mut Vec<Finding>) {
    for (origin, x) in crate::yaml::non_json_numbers(root) {
        let (shown, go) = if x.is_nan() {
            (".nan", "NaN")
        } else if x > 0.0 {
            (".inf", "+Inf")
        } else {
            ("-.inf", "-Inf")
        };
        out.push(
            Finding::new(
                Rule::HelmRefuses,
                Some(origin),
                format!("`{shown}` cannot be converted to JSON: Helm refuses the whole file (\"json: unsupported value: {go}\")"),
            )
            .hint(format!("quote it (\"{shown}\") if you mean a string, or write a finite number")),
        );
    }
}

/// Duplicate keys and YAML 1.1-vs-1.2 scalars found while parsing one file.
pub fn yaml_notes(file: &Arc<str>, notes: &[Note], out: &mut Vec<Finding>) {
    for n in notes {
        match n {
            Note::DuplicateKey { key, first, second } => out.push(
                Finding::new(
                    Rule::DuplicateKey,
                    Some(Origin { file: file.clone(), pos: *second }),
                    format!("duplicate key `{key}` (first at line {}): Helm keeps only this last one", first.line),
                )
                .hint("remove one of the two"),
            ),
            Note::Ambiguous { text, helm_reads, yaml12_reads, pos, .. } => out.push(
                Finding::new(
                    Rule::Yaml11Scalar,
                    Some(Origin { file: file.clone(), pos: *pos }),
                    format!("`{text}` is read by Helm (YAML 1.1) as {helm_reads}, but is {yaml12_reads}"),
                )
                .hint(format!("quote it (\"{text}\") if you mean a string, or write the value unambiguously")),
            ),
        }
    }
}

/// Image-tag policy: every `{repository, tag}` map must have a tag not in `forbidden`. The finding
/// points at the tag when an env layer set it, else at the target file (the place to pin one).
pub fn image_tags(
    values: &Map,
    forbidden: &[String],
    target_type: &str,
    layers: &[String],
    target: &str,
    out: &mut Vec<Finding>,
) {
    let in_layers = |o: &Origin| layers.iter().any(|l| **l == *o.file);
    let mut stack: Vec<(String, &Map)> = vec![(String::new(), values)];
    while let Some((path, map)) = stack.pop() {
        for (key, node) in map {
            let full = if path.is_empty() {
                key.clone()
            } else {
                format!("{path}.{key}")
            };
            let Value::Map(m) = &node.value else { continue };
            stack.push((full.clone(), m));
            if !matches!(m.get("repository").map(|n| &n.value), Some(Value::Str(_))) {
                continue;
            }
            let (tag, set_at) = match m.get("tag") {
                Some(Node {
                    value: Value::Str(s),
                    origin,
                }) => (s.clone(), Some(origin)),
                Some(Node {
                    value: Value::Number(n),
                    origin,
                }) => (crate::yaml::number_to_json(*n).to_string(), Some(origin)),
                Some(Node {
                    value: Value::Null,
                    origin,
                }) => (String::new(), Some(origin)),
                Some(_) => continue,
                None => (String::new(), None),
            };
            if !forbidden.contains(&tag) {
                continue;
            }
            let shown = if tag.is_empty() {
                "empty".to_owned()
            } else {
                format!("`{tag}`")
            };
            let (location, from) = match set_at {
                Some(o) if in_layers(o) => (o.clone(), String::new()),
                Some(o) => (
                    crate::config::file_origin(target),
                    format!(" (chart default at {o})"),
                ),
                None => (crate::config::file_origin(target), String::new()),
            };
            out.push(
                Finding::new(Rule::ImageTag, Some(location), format!("`{full}.tag` is {shown}{from}, which the policy forbids for `{target_type}` envs"))
                    .hint(format!("pin a released version in {target}, e.g. `{full}.tag: \"1.4.2\"`")),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pattern_properties_use_ecma_regex() {
        // Look-ahead: the `regex` crate cannot compile it; JSON Schema's ECMA-262 dialect can.
        assert!(ecma_match("^(?!internal-)[a-z-]+$", "public-api"));
        assert!(!ecma_match("^(?!internal-)[a-z-]+$", "internal-api"));
        assert!(ecma_match("\\d", "a1"));
        assert!(!ecma_match("[", "a"));
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            did_you_mean("replicaCont", &["replicaCount", "image"]),
            Some("replicaCount")
        );
        assert_eq!(did_you_mean("zzz", &["replicaCount", "image"]), None);
    }
}
