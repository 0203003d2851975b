//! Helm's value composition, reproduced step by step with provenance.
//!
//! Order (helm v3.21 `pkg/cli/values` + `pkg/chartutil`): user files deep-merged in order
//! (`mergeMaps`), then subcharts enabled/disabled by tags and conditions (`processDependencyEnabled`),
//! then the user values coalesced with the chart defaults, subcharts under their alias, `global`
//! copied down (`CoalesceValues`). The comments name the Go function each piece mirrors; the
//! conformance corpus (tests/it/conformance.rs) proves the result equals real `helm template`.

use crate::values::chart::{Chart, Dependency};
use crate::yaml::{Map, Node, Origin, Value};

/// One subchart as composed: enabled subcharts keep their chart; the values key is the alias.
#[derive(Debug)]
pub struct Tree<'c> {
    pub chart: &'c Chart,
    /// The key this chart's values live under in its parent (alias, else name); the top is "".
    pub key: String,
    /// The chart's defaults: its values.yaml until `bake` replaces them, as Helm's
    /// `processImportValues` does, with its values merged with its enabled subcharts' (and imports).
    pub values: Map,
    pub children: Vec<Tree<'c>>,
    /// Dependencies turned off by a condition or tag: (values key, why).
    pub disabled: Vec<(String, String)>,
    /// Dependencies whose chart could not be read: (dependency, where it was expected).
    pub missing: Vec<(&'c Dependency, String)>,
}

/// Something Helm prints as a warning (or fails on) while coalescing.
#[derive(Debug, Clone, PartialEq)]
pub struct Clash {
    /// Dotted path, as Helm prints it.
    pub path: String,
    /// The user's value, which wins (or the subchart key whose value is not a map).
    pub user: Origin,
    pub user_type: &'static str,
    /// The chart default it clashes with.
    pub default: Option<Origin>,
    pub default_type: &'static str,
    /// Helm refuses to render (`type mismatch on <subchart>`), rather than warning.
    pub fatal: bool,
}

pub struct Composed<'c> {
    pub values: Map,
    pub tree: Tree<'c>,
    pub clashes: Vec<Clash>,
}

/// `mergeMaps`: maps merge recursively; anything else from `src` replaces `dst`.
pub fn merge_maps(dst: &mut Map, src: &Map) {
    for (k, v) in src {
        match (dst.get_mut(k), &v.value) {
            (
                Some(Node {
                    value: Value::Map(d),
                    origin,
                }),
                Value::Map(s),
            ) => {
                merge_maps(d, s);
                *origin = v.origin.clone();
            }
            _ => {
                dst.insert(k.clone(), v.clone());
            }
        }
    }
}

/// The full composition for one target: `user` is the merged user layers.
pub fn compose<'c>(chart: &'c Chart, user: &Map) -> Composed<'c> {
    let mut tree = enabled_tree(chart, String::new(), user, "");
    bake(&mut tree);
    let mut values = user.clone();
    let mut clashes = Vec::new();
    coalesce(&tree, &mut values, "", false, &mut clashes);
    Composed {
        values,
        tree,
        clashes,
    }
}

fn concat(a: &str, b: &str) -> String {
    if a.is_empty() {
        b.to_owned()
    } else {
        format!("{a}.{b}")
    }
}

/// Every subchart of `chart` as Helm lists them before tags and conditions apply
/// (`processDependencyEnabled`, first half): undeclared ones, then one copy per dependency.
fn all_children<'c>(chart: &'c Chart) -> (Vec<Tree<'c>>, Vec<(&'c Dependency, String)>) {
    let mut children: Vec<Tree<'c>> = chart
        .undeclared
        .iter()
        .map(|c| full_tree(c, c.name.clone()))
        .collect();
    let mut missing = Vec::new();
    for sub in &chart.subcharts {
        match &sub.chart {
            Some(c) => children.push(full_tree(c, sub.dep.key().to_owned())),
            None => missing.push((&sub.dep, sub.source.clone())),
        }
    }
    (children, missing)
}

fn full_tree(chart: &Chart, key: String) -> Tree<'_> {
    let (children, missing) = all_children(chart);
    Tree {
        chart,
        key,
        values: chart_values(chart),
        children,
        disabled: Vec::new(),
        missing,
    }
}

fn chart_values(chart: &Chart) -> Map {
    chart.values.value.as_map().cloned().unwrap_or_default()
}

/// `processDependencyImportValues` (bottom-up): each chart's defaults become
/// `MergeValues(chart, nil)` — its values coalesced with its enabled subcharts' with nulls kept —
/// merged over the values its dependencies export through `import-values`.
fn bake(tree: &mut Tree<'_>) {
    for child in &mut tree.children {
        bake(child);
    }
    if tree.chart.subcharts.is_empty() {
        return;
    }
    let mut cvals = Map::new();
    coalesce(tree, &mut cvals, "", true, &mut Vec::new());
    let mut imported = Map::new();
    for sub in &tree.chart.subcharts {
        for iv in &sub.dep.import_values {
            let (child, parent) = match iv {
                serde_json::Value::String(s) => (format!("exports.{s}"), ".".to_owned()),
                serde_json::Value::Object(m) => {
                    (go_sprint(m.get("child")), go_sprint(m.get("parent")))
                }
                _ => continue,
            };
            let Some(Node {
                value: Value::Map(table),
                origin,
            }) = path_value(&cvals, &format!("{}.{child}", sub.dep.key()))
            else {
                continue;
            };
            let table = if parent == "." {
                table.clone()
            } else {
                // pathToMap: nest the table under the parent path.
                parent.split('.').rev().fold(table.clone(), |inner, k| {
                    Map::from([(
                        k.to_owned(),
                        Node {
                            value: Value::Map(inner),
                            origin: origin.clone(),
                        },
                    )])
                })
            };
            coalesce_tables(&mut imported, table, "", true, &mut Vec::new());
        }
    }
    coalesce_tables(&mut cvals, imported, "", true, &mut Vec::new());
    tree.values = cvals;
}

/// `fmt.Sprintf("%v", x)` for the string-ish values import-values hold.
fn go_sprint(v: Option<&serde_json::Value>) -> String {
    match v {
        None | Some(serde_json::Value::Null) => "<nil>".into(),
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
    }
}

/// `processDependencyEnabled`: coalesce with everything enabled, apply tags then conditions,
/// drop what is disabled, recurse with the coalesced values and the subchart's path.
fn enabled_tree<'c>(chart: &'c Chart, key: String, v: &Map, path: &str) -> Tree<'c> {
    let (children, missing) = all_children(chart);
    let all = Tree {
        chart,
        key,
        values: chart_values(chart),
        children,
        disabled: Vec::new(),
        missing,
    };
    if chart.subcharts.is_empty() {
        return all;
    }
    let mut cvals = v.clone();
    coalesce(&all, &mut cvals, "", false, &mut Vec::new());

    let mut disabled = Vec::new();
    for sub in &chart.subcharts {
        let dep = &sub.dep;
        let mut enabled = true;
        let mut why = String::new();
        // processDependencyTags
        if let Some(Value::Map(tags)) = cvals.get("tags").map(|n| &n.value) {
            let (mut has_true, mut has_false) = (false, false);
            for t in &dep.tags {
                match tags.get(t).map(|n| &n.value) {
                    Some(Value::Bool(true)) => has_true = true,
                    Some(Value::Bool(false)) => {
                        has_false = true;
                        why = format!("tag `{t}` is false at {}", tags[t].origin);
                    }
                    _ => {}
                }
            }
            enabled = has_true || !has_false;
        }
        // processDependencyConditions: the first path holding a bool wins.
        for cond in dep.condition.trim().split(',').filter(|c| !c.is_empty()) {
            if let Some(node) = path_value(&cvals, &format!("{path}{cond}")) {
                if let Value::Bool(b) = node.value {
                    enabled = b;
                    why = format!("condition `{cond}` is false at {}", node.origin);
                    break;
                }
            }
        }
        if !enabled {
            disabled.push((dep.key().to_owned(), why));
        }
    }
    let mut children = Vec::new();
    for child in all.children {
        if disabled.iter().any(|(k, _)| *k == child.key) {
            continue;
        }
        let sub_path = format!("{path}{}.", child.key);
        children.push(enabled_tree(child.chart, child.key, &cvals, &sub_path));
    }
    let missing = all
        .missing
        .into_iter()
        .filter(|(d, _)| !disabled.iter().any(|(k, _)| k == d.key()))
        .collect();
    Tree {
        chart,
        key: all.key,
        values: all.values,
        children,
        disabled,
        missing,
    }
}

/// `Values.PathValue`: a dotted path through maps to an existing key.
pub fn path_value<'a>(values: &'a Map, path: &str) -> Option<&'a Node> {
    let mut parts = path.split('.');
    let mut node = values.get(parts.next()?)?;
    for p in parts {
        node = node.value.as_map()?.get(p)?;
    }
    Some(node)
}

/// `coalesce` = `coalesceValues` then `coalesceDeps`.
fn coalesce(tree: &Tree<'_>, dest: &mut Map, prefix: &str, merge: bool, clashes: &mut Vec<Clash>) {
    coalesce_values(tree, dest, prefix, merge, clashes);
    coalesce_deps(tree, dest, prefix, merge, clashes);
}

/// `coalesceValues`: the chart's defaults under the user's values.
fn coalesce_values(
    tree: &Tree<'_>,
    v: &mut Map,
    prefix: &str,
    merge: bool,
    clashes: &mut Vec<Clash>,
) {
    let sub_prefix = concat(prefix, &tree.chart.name);
    for (key, default) in &tree.values {
        match v.get_mut(key) {
            None => {
                v.insert(key.clone(), default.clone());
            }
            Some(user) => match (&mut user.value, &default.value) {
                (Value::Null, _) if !merge => {
                    v.remove(key);
                }
                (Value::Map(dest), Value::Map(src)) => {
                    let merge = merge || tree.children.iter().any(|c| c.key == *key);
                    coalesce_tables(dest, src.clone(), &concat(&sub_prefix, key), merge, clashes);
                }
                (Value::Map(_), Value::Null) => {}
                (Value::Map(_), d) => clashes.push(Clash {
                    // "warning: skipped value for <chart>.<key>: Not a table."
                    path: concat(&sub_prefix, key),
                    user: user.origin.clone(),
                    user_type: "map",
                    default: Some(default.origin.clone()),
                    default_type: d.type_name(),
                    fatal: false,
                }),
                (u, Value::Map(_)) if !matches!(u, Value::Null) => clashes.push(Clash {
                    // Helm is silent here: the user's scalar replaces the whole default map.
                    path: concat(&sub_prefix, key),
                    user: user.origin.clone(),
                    user_type: u.type_name(),
                    default: Some(default.origin.clone()),
                    default_type: "map",
                    fatal: false,
                }),
                _ => {}
            },
        }
    }
}

/// `coalesceTablesFullKey`: `dst` (higher precedence) over `src`.
fn coalesce_tables(
    dst: &mut Map,
    mut src: Map,
    prefix: &str,
    merge: bool,
    clashes: &mut Vec<Clash>,
) {
    let src_non_nil: std::collections::HashSet<String> = src
        .iter()
        .filter(|(_, n)| n.value != Value::Null)
        .map(|(k, _)| k.clone())
        .collect();
    for (k, n) in dst.iter() {
        if n.value == Value::Null {
            src.insert(k.clone(), n.clone());
        }
    }
    for (key, val) in src {
        let full = concat(prefix, &key);
        let Some(dv) = dst.get_mut(&key) else {
            dst.insert(key, val);
            continue;
        };
        if !merge && dv.value == Value::Null && src_non_nil.contains(&key) {
            dst.remove(&key);
            continue;
        }
        match (&mut dv.value, val.value) {
            (Value::Map(d), Value::Map(s)) => coalesce_tables(d, s, &full, merge, clashes),
            (d, Value::Map(_)) => clashes.push(Clash {
                // "warning: cannot overwrite table with non table for <key>"
                path: full,
                user: dv.origin.clone(),
                user_type: d.type_name(),
                default: Some(val.origin),
                default_type: "map",
                fatal: false,
            }),
            (Value::Map(_), s) if s != Value::Null => clashes.push(Clash {
                // "warning: destination for <key> is a table. Ignoring non-table value"
                path: full,
                user: dv.origin.clone(),
                user_type: "map",
                default: Some(val.origin),
                default_type: s.type_name(),
                fatal: false,
            }),
            _ => {}
        }
    }
}

/// `coalesceDeps`: each subchart's values under its key, with globals copied down.
fn coalesce_deps(
    tree: &Tree<'_>,
    dest: &mut Map,
    prefix: &str,
    merge: bool,
    clashes: &mut Vec<Clash>,
) {
    for child in &tree.children {
        let mut sub = match dest.remove(&child.key) {
            None => Node {
                value: Value::Map(Map::new()),
                origin: tree.chart.values.origin.clone(),
            },
            Some(
                n @ Node {
                    value: Value::Map(_),
                    ..
                },
            ) => n,
            Some(other) => {
                // Helm: "type mismatch on <name>" — rendering fails.
                clashes.push(Clash {
                    path: child.key.clone(),
                    user: other.origin.clone(),
                    user_type: other.value.type_name(),
                    default: None,
                    default_type: "map",
                    fatal: true,
                });
                dest.insert(child.key.clone(), other);
                continue;
            }
        };
        let sub_prefix = concat(prefix, &tree.chart.name);
        if let Value::Map(m) = &mut sub.value {
            coalesce_globals(m, dest, &sub_prefix);
            coalesce(child, m, &sub_prefix, merge, clashes);
        }
        dest.insert(child.key.clone(), sub);
    }
}

/// `coalesceGlobals`: the parent's `global` over the subchart's (maps merged, parent wins).
fn coalesce_globals(dest: &mut Map, src: &Map, prefix: &str) {
    let origin = src.get("global").map(|n| n.origin.clone());
    let mut dg = match dest.remove("global") {
        None => Map::new(),
        Some(Node {
            value: Value::Map(m),
            ..
        }) => m,
        Some(other) => {
            dest.insert("global".into(), other);
            return;
        }
    };
    let dg_origin = origin.clone();
    let sg = match src.get("global").map(|n| &n.value) {
        None => Map::new(),
        Some(Value::Map(m)) => m.clone(),
        Some(_) => {
            dest.insert(
                "global".into(),
                Node {
                    value: Value::Map(dg),
                    origin: dg_origin.unwrap_or_else(|| placeholder(dest)),
                },
            );
            return;
        }
    };
    for (key, val) in sg {
        match (&val.value, dg.get(&key)) {
            (
                Value::Map(vm),
                Some(Node {
                    value: Value::Map(dm),
                    ..
                }),
            ) => {
                let mut vv = vm.clone();
                coalesce_tables(
                    &mut vv,
                    dm.clone(),
                    &concat(prefix, &key),
                    true,
                    &mut Vec::new(),
                );
                dg.insert(
                    key,
                    Node {
                        value: Value::Map(vv),
                        origin: val.origin,
                    },
                );
            }
            (Value::Map(_), Some(_)) => {} // "Conflict: cannot merge map onto non-map"
            (Value::Map(_), None) => {
                dg.insert(key, val);
            }
            (
                _,
                Some(Node {
                    value: Value::Map(_),
                    ..
                }),
            ) => {} // "key is table. Skipping"
            _ => {
                dg.insert(key, val);
            }
        }
    }
    let origin = origin.unwrap_or_else(|| placeholder(dest));
    dest.insert(
        "global".into(),
        Node {
            value: Value::Map(dg),
            origin,
        },
    );
}

/// Where an implicit value (an inserted empty `global`) is attributed: any sibling's file, line 1.
fn placeholder(m: &Map) -> Origin {
    m.values()
        .next()
        .map(|n| Origin {
            file: n.origin.file.clone(),
            pos: crate::yaml::Pos { line: 1, col: 1 },
        })
        .unwrap_or(Origin {
            file: std::sync::Arc::from("<generated>"),
            pos: crate::yaml::Pos { line: 1, col: 1 },
        })
}

/// The defaults of the chart with every subchart enabled: what a user file may override.
pub fn defaults_all(chart: &Chart) -> (Map, Tree<'_>) {
    let tree = full_tree(chart, String::new());
    let mut values = Map::new();
    coalesce(&tree, &mut values, "", false, &mut Vec::new());
    (values, tree)
}
