//! Checks Helm itself does not make (it ignores or merely warns): keys that match nothing, type
//! clashes while coalescing, YAML 1.1 surprises and duplicate keys, image-tag policy.

use crate::diag::{Finding, Rule};
use crate::values::compose::{Clash, Tree};
use crate::values::templates::{self, ChartTemplates, Refs, TemplateFile};
use crate::yaml::{Map, Node, Note, Origin, Value};
use serde_json::Value as Json;
use std::collections::HashSet;
use std::sync::Arc;

/// What a user file may set: the chart's defaults (every subchart enabled), its schemas, the
/// paths dependency conditions read, and the paths the chart's templates read.
pub struct KnownKeys<'c> {
    pub defaults: Map,
    pub tree: Tree<'c>,
    /// Dotted paths that dependency conditions read (`sub.enabled`): Helm uses them.
    pub conditions: HashSet<String>,
    /// What the templates of the chart and every subchart read (`values::templates`).
    pub refs: Refs,
}

impl<'c> KnownKeys<'c> {
    /// `layers`: the user files in play; their template-like strings (`tpl`) are scanned too.
    pub fn new(defaults: Map, tree: Tree<'c>, layers: &[&Map]) -> Self {
        let mut conditions = HashSet::new();
        condition_paths(&tree, "", &mut conditions);
        let mut charts = Vec::new();
        chart_templates(&tree, Vec::new(), &mut charts);
        let mut strings = Vec::new();
        template_strings(&defaults, &mut Vec::new(), &mut strings);
        for layer in layers {
            template_strings(layer, &mut Vec::new(), &mut strings);
        }
        let refs = templates::scan(&charts, &strings);
        KnownKeys {
            defaults,
            tree,
            conditions,
            refs,
        }
    }

    /// What the scan could not read, once per chart: computed keys (`index .Values.a $k`) and
    /// templates that do not parse. Keys below those paths are not checked; this says so.
    pub fn scan_notes(&self, out: &mut Vec<Finding>) {
        let chart_of = |file: &str| {
            file.split_once("/templates/")
                .map_or(file, |(chart, _)| chart)
                .to_owned()
        };
        let mut by_chart: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for d in self.refs.dynamic() {
            by_chart.entry(chart_of(&d.file)).or_default().push(format!(
                "`{}` ({}:{}) leaves `{}` unchecked",
                d.expr,
                d.file,
                d.line,
                dotted(&d.prefix)
            ));
        }
        for (chart, what) in by_chart {
            out.push(
                Finding::new(
                    Rule::TemplateScan,
                    Some(crate::config::file_origin(&format!("{chart}/Chart.yaml"))),
                    format!(
                        "{chart}'s templates read values with computed keys, so keys below these paths are not checked: {}",
                        what.join("; ")
                    ),
                )
                .hint("nothing to fix; declare such keys in values.yaml or values.schema.json to have them checked"),
            );
        }
        for u in self.refs.unreadable() {
            let what = if u.value_string {
                "value string"
            } else {
                "template"
            };
            out.push(
                Finding::new(
                    Rule::TemplateScan,
                    Some(crate::config::file_origin(&u.file)),
                    format!("{what} {}:{} could not be read ({}): the values it reads count as known", u.file, u.line, u.message),
                )
                .hint("run `helm template` (or `stack validate envs --helm`) to see whether Helm reads it"),
            );
        }
    }
}

fn dotted(path: &[String]) -> String {
    path.join(".")
}

/// Every chart instance's templates with its values path (a subchart used twice is read twice,
/// once under each alias).
fn chart_templates(tree: &Tree<'_>, prefix: Vec<String>, out: &mut Vec<ChartTemplates>) {
    out.push(ChartTemplates {
        prefix: prefix.clone(),
        files: tree
            .chart
            .templates
            .iter()
            .map(|(name, text)| TemplateFile {
                name: name.clone(),
                text: text.clone(),
            })
            .collect(),
    });
    for child in &tree.children {
        let mut p = prefix.clone();
        p.push(child.key.clone());
        chart_templates(child, p, out);
    }
}

/// String values holding `{{`: charts render them with `tpl`.
fn template_strings(map: &Map, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
    fn node(n: &Node, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, String)>) {
        match &n.value {
            Value::Str(s) if s.contains("{{") => out.push((at.clone(), s.clone())),
            Value::Map(m) => template_strings(m, at, out),
            Value::Seq(items) => {
                for (i, item) in items.iter().enumerate() {
                    at.push(i.to_string());
                    node(item, at, out);
                    at.pop();
                }
            }
            _ => {}
        }
    }
    for (k, n) in map {
        at.push(k.clone());
        node(n, at, out);
        at.pop();
    }
}

/// Condition paths resolve from the top-level values, below the subchart's own path when nested.
fn condition_paths(tree: &Tree<'_>, prefix: &str, out: &mut HashSet<String>) {
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

/// Reports every key of a user layer that nothing reads: not declared in the chart's defaults or
/// schema, not a dependency alias or condition, and read by no template (Helm ignores such keys —
/// usually a typo).
pub fn unknown_keys(known: &KnownKeys<'_>, layer: &Map, out: &mut Vec<Finding>) {
    let schema = known.tree.chart.schema.as_ref().map(|s| (&s.json, &s.json));
    let level = Level {
        defaults: Some(&known.defaults),
        schema,
        tree: Some(&known.tree),
    };
    walk(known, layer, level, &mut Vec::new(), out);
}

type SchemaAt<'a> = Option<(&'a Json, &'a Json)>; // (node, document root for $ref)

/// What describes one level of the user's values.
#[derive(Clone, Copy)]
struct Level<'a, 'c> {
    defaults: Option<&'a Map>,
    schema: SchemaAt<'a>,
    /// The chart at this level, when the level is a chart's values root.
    tree: Option<&'a Tree<'c>>,
}

fn walk(
    known: &KnownKeys<'_>,
    layer: &Map,
    level: Level<'_, '_>,
    at: &mut Vec<String>,
    out: &mut Vec<Finding>,
) {
    let schema = level.schema.map(|(s, root)| (deref(s, root), root));
    let tree = level.tree;
    for (key, node) in layer {
        at.push(key.clone());
        check_key(known, key, node, Level { schema, ..level }, tree, at, out);
        at.pop();
    }
}

fn check_key(
    known: &KnownKeys<'_>,
    key: &str,
    node: &Node,
    level: Level<'_, '_>,
    tree: Option<&Tree<'_>>,
    at: &mut Vec<String>,
    out: &mut Vec<Finding>,
) {
    let (defaults, schema) = (level.defaults, level.schema);
    let segs: Vec<&str> = at.iter().map(String::as_str).collect();
    let full = dotted(at);
    if tree.is_some_and(|t| t.chart.subcharts.iter().any(|s| s.dep.key() == key)) {
        // A dependency alias: descend with the subchart's own defaults and schema.
        let child = tree.and_then(|t| t.children.iter().find(|c| c.key == *key));
        let sub_defaults = defaults
            .and_then(|d| d.get(key))
            .and_then(|n| n.value.as_map());
        if let (Value::Map(m), Some(child)) = (&node.value, child) {
            let sub_schema = child.chart.schema.as_ref().map(|s| (&s.json, &s.json));
            let sub = Level {
                defaults: sub_defaults,
                schema: sub_schema,
                tree: Some(child),
            };
            walk(known, m, sub, at, out);
        }
        return;
    }
    if tree.is_some() && (key == "global" || (at.len() == 1 && key == "tags")) {
        return; // free-form by Helm's design
    }
    let default = defaults.and_then(|d| d.get(key));
    let prop = schema.and_then(|(s, root)| property_schema(s, key).map(|p| (p, root)));
    let read = known.refs.is_known(&segs);
    if default.is_none() && prop.is_none() && !read && !known.conditions.contains(&full) {
        if is_open(defaults, schema) {
            return;
        }
        let mut candidates: Vec<String> = defaults
            .map(|d| d.keys().cloned().collect())
            .unwrap_or_default();
        if let Some((s, _)) = schema {
            if let Some(Json::Object(props)) = s.get("properties") {
                candidates.extend(props.keys().cloned());
            }
        }
        if let Some(t) = tree {
            candidates.extend(t.chart.subcharts.iter().map(|s| s.dep.key().to_owned()));
        }
        // Keys the templates read at this level (`jobs.*.timeZone` counts for `jobs.nightly`).
        let parent = &segs[..segs.len() - 1];
        candidates.extend(
            known
                .refs
                .paths()
                .into_iter()
                .filter(|(p, _)| {
                    p.len() == segs.len()
                        && p.iter()
                            .zip(parent)
                            .all(|(a, b)| a == templates::ANY || a == b)
                })
                .map(|(p, _)| p[parent.len()].clone())
                .filter(|k| k != "*"),
        );
        let candidates: Vec<&str> = candidates.iter().map(String::as_str).collect();
        let mut f = Finding::new(
            Rule::UnknownKey,
            Some(node.origin.clone()),
            format!(
                "`{full}` is not declared by the chart and no template reads it: Helm ignores it"
            ),
        );
        f = match did_you_mean(key, &candidates) {
            Some(best) => f.hint(format!("did you mean `{}`?", replace_last(&full, best))),
            None => f.hint("remove it, or add it to the chart's values.yaml or values.schema.json"),
        };
        out.push(f);
        return;
    }
    if known.refs.is_whole(&segs) {
        return; // a template consumes the whole subtree (toYaml, tpl, a computed key, …)
    }
    match &node.value {
        Value::Map(m) => {
            let sub_defaults = default.and_then(|n| n.value.as_map());
            // A default that is not a map (null, scalar) or absent leaves only the schema to judge.
            if default.is_some() && sub_defaults.is_none() && prop.is_none() {
                return;
            }
            let sub = Level {
                defaults: sub_defaults,
                schema: prop,
                tree: None,
            };
            walk(known, m, sub, at, out);
        }
        Value::Seq(items) => {
            // Lists of maps: descend when the defaults or the schema say what an item holds.
            let item_defaults = default.and_then(|n| list_item_defaults(&n.value));
            let item_schema = prop.and_then(|(p, root)| {
                let p = deref(p, root);
                p.get("items").filter(|i| i.is_object()).map(|i| (i, root))
            });
            if item_defaults.is_none() && item_schema.is_none() {
                return;
            }
            for (i, item) in items.iter().enumerate() {
                if let Value::Map(m) = &item.value {
                    at.push(i.to_string());
                    let sub = Level {
                        defaults: item_defaults.as_ref(),
                        schema: item_schema,
                        tree: None,
                    };
                    walk(known, m, sub, at, out);
                    at.pop();
                }
            }
        }
        _ => {}
    }
}

/// What the default items of a list of maps declare: the union of their keys (values from the
/// first item holding each key). None unless every item is a non-empty map.
fn list_item_defaults(v: &Value) -> Option<Map> {
    let Value::Seq(items) = v else { return None };
    if items.is_empty() {
        return None;
    }
    let mut union = Map::new();
    for item in items {
        let Value::Map(m) = &item.value else {
            return None;
        };
        for (k, n) in m {
            union.entry(k.clone()).or_insert_with(|| n.clone());
        }
    }
    (!union.is_empty()).then_some(union)
}

fn replace_last(full: &str, best: &str) -> String {
    match full.rsplit_once('.') {
        Some((head, _)) => format!("{head}.{best}"),
        None => best.to_owned(),
    }
}

/// The closest candidate, if close enough to be a likely typo.
/// Jaro's match window is empty for 3-letter words, so one swap (`tga`/`tag`) scores low:
/// a key of 3+ letters one edit or swap away counts as close too.
pub fn did_you_mean<'a>(key: &str, candidates: &[&'a str]) -> Option<&'a str> {
    let lower = key.to_lowercase();
    candidates
        .iter()
        .map(|c| {
            let c_lower = c.to_lowercase();
            let mut score = strsim::jaro_winkler(&lower, &c_lower);
            if lower.chars().count() >= 3 && strsim::osa_distance(&lower, &c_lower) == 1 {
                score = score.max(0.9);
            }
            (score, *c)
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

/// Image-tag policy: every `{repository, tag}` (or `{registry, image, tag}`) map must have a tag
/// not in `forbidden`. An empty (or absent) tag passes when a template falls back to a pinned
/// version for it (`.Chart.AppVersion`, or a literal other than `latest`): that is what Helm
/// deploys. The finding points at the tag when an env layer set it, else at the target file (the
/// place to pin one).
pub struct ImageTagCheck<'a> {
    pub forbidden: &'a [String],
    pub target_type: &'a str,
    pub layers: &'a [String],
    pub target: &'a str,
    pub refs: &'a Refs,
}

impl ImageTagCheck<'_> {
    pub fn run(&self, values: &Map, out: &mut Vec<Finding>) {
        let in_layers = |o: &Origin| self.layers.iter().any(|l| **l == *o.file);
        let mut stack: Vec<(Vec<String>, &Map)> = vec![(Vec::new(), values)];
        while let Some((path, map)) = stack.pop() {
            for (key, node) in map {
                let mut at = path.clone();
                at.push(key.clone());
                let Value::Map(m) = &node.value else { continue };
                stack.push((at.clone(), m));
                // `{repository, tag}`, or ingress-nginx's `{registry, image, tag}`.
                let is_str = |k: &str| matches!(m.get(k).map(|n| &n.value), Some(Value::Str(_)));
                let image_map = is_str("repository") || (is_str("registry") && is_str("image"));
                if !image_map {
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
                if !self.forbidden.contains(&tag) {
                    continue;
                }
                let full = dotted(&at);
                let mut tag_path: Vec<&str> = at.iter().map(String::as_str).collect();
                tag_path.push("tag");
                if tag.is_empty() && self.refs.tag_fallback(&tag_path).is_some() {
                    continue; // the template pins it (`default .Chart.AppVersion`, …)
                }
                let shown = if tag.is_empty() {
                    "empty and no template falls back to a pinned version".to_owned()
                } else {
                    format!("`{tag}`")
                };
                let (location, from) = match set_at {
                    Some(o) if in_layers(o) => (o.clone(), String::new()),
                    Some(o) => (
                        crate::config::file_origin(self.target),
                        format!(" (chart default at {o})"),
                    ),
                    None => (crate::config::file_origin(self.target), String::new()),
                };
                out.push(
                    Finding::new(
                        Rule::ImageTag,
                        Some(location),
                        format!(
                            "`{full}.tag` is {shown}{from}, which the policy forbids for `{}` envs",
                            self.target_type
                        ),
                    )
                    .hint(format!(
                        "pin a released version in {}, e.g. `{full}.tag: \"1.4.2\"`",
                        self.target
                    )),
                );
            }
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

    /// Hints name keys templates read below a `range` (`jobs.*.timeZone`) for any item key.
    #[test]
    fn hints_keys_read_through_wildcards() {
        let dir = tempfile::tempdir().unwrap();
        let chart = dir.path().join("c");
        std::fs::create_dir_all(chart.join("templates")).unwrap();
        std::fs::write(
            chart.join("Chart.yaml"),
            "apiVersion: v2\nname: c\nversion: 0.1.0\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("values.yaml"),
            "jobs:\n  cleanup:\n    schedule: x\n",
        )
        .unwrap();
        std::fs::write(
            chart.join("templates/cron.yaml"),
            "{{ range $n, $j := .Values.jobs }}{{ $j.schedule }}{{ $j.timeZone }}{{ end }}",
        )
        .unwrap();
        let loaded = crate::values::chart::load(&chart, "c").unwrap();
        let (defaults, tree) = crate::values::compose::defaults_all(&loaded);
        let layer = crate::yaml::parse_values(
            &Arc::from("l.yaml"),
            "jobs:\n  cleanup:\n    timeZnoe: UTC\n",
        )
        .unwrap();
        let layer = layer.root.value.as_map().unwrap().clone();
        let known = KnownKeys::new(defaults, tree, &[&layer]);
        let mut out = Vec::new();
        unknown_keys(&known, &layer, &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert_eq!(
            out[0].hint.as_deref(),
            Some("did you mean `jobs.cleanup.timeZone`?")
        );
    }

    #[test]
    fn image_tags_of_registry_image_maps_are_checked() {
        let doc = crate::yaml::parse_values(
            &Arc::from("envs/ci/a.yaml"),
            "controller:\n  image:\n    registry: registry.k8s.io\n    image: ingress-nginx/controller\n    tag: latest\nother:\n  image: x\n  tag: latest\n",
        )
        .unwrap();
        let refs = Refs::default();
        let (forbidden, layers) = (
            vec![String::new(), "latest".to_owned()],
            vec!["envs/ci/a.yaml".to_owned()],
        );
        let check = ImageTagCheck {
            forbidden: &forbidden,
            target_type: "ci",
            layers: &layers,
            target: "envs/ci/a.yaml",
            refs: &refs,
        };
        let mut out = Vec::new();
        check.run(doc.root.value.as_map().unwrap(), &mut out);
        assert_eq!(out.len(), 1, "{out:?}");
        assert!(
            out[0]
                .message
                .starts_with("`controller.image.tag` is `latest`"),
            "{}",
            out[0].message
        );
        assert_eq!(out[0].location.as_ref().unwrap().pos.line, 5);
    }

    #[test]
    fn suggests_close_keys_only() {
        assert_eq!(
            did_you_mean("replicaCont", &["replicaCount", "image"]),
            Some("replicaCount")
        );
        assert_eq!(did_you_mean("zzz", &["replicaCount", "image"]), None);
        // Short keys with one swap or edit (Jaro alone misses these).
        assert_eq!(
            did_you_mean("tga", &["repository", "tag", "pullPolicy"]),
            Some("tag")
        );
        assert_eq!(did_you_mean("wbe", &["web", "worker"]), Some("web"));
        assert_eq!(did_you_mean("ab", &["ac"]), None);
    }
}
