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
    /// Other reasons Helm cannot render: (where, what). So far one: `import-values` that merge
    /// a table into itself, a cyclic map Helm's deep copy never finishes with.
    pub errors: Vec<(Origin, String)>,
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
    compose_cached(chart, user, &BakeCache::default())
}

/// Baked defaults per enabled structure, shared by the targets of one run: `bake` depends on which
/// subcharts are enabled and on the charts' own values, never on the user's values, so targets
/// that enable the same subcharts share the work (what keeps `validate` linear and fast). One
/// cache serves one chart: its keys are the enabled structure only.
#[derive(Default)]
pub struct BakeCache {
    baked: std::sync::Mutex<std::collections::HashMap<String, Baked>>,
}

#[derive(Clone)]
struct Baked {
    /// Every tree node's values after `bake`, in preorder.
    values: Vec<Map>,
    fatal: Vec<Clash>,
    errors: Vec<(Origin, String)>,
}

/// The enabled structure of a tree: keys, disabled keys and children, recursively.
fn signature(tree: &Tree<'_>, out: &mut String) {
    out.push_str(&tree.key);
    out.push('[');
    for (k, _) in &tree.disabled {
        out.push_str(k);
        out.push(',');
    }
    out.push_str("](");
    for c in &tree.children {
        signature(c, out);
        out.push(';');
    }
    out.push(')');
}

fn baked_values(tree: &Tree<'_>, out: &mut Vec<Map>) {
    out.push(tree.values.clone());
    for c in &tree.children {
        baked_values(c, out);
    }
}

fn restore_baked(tree: &mut Tree<'_>, values: &mut impl Iterator<Item = Map>) {
    if let Some(v) = values.next() {
        tree.values = v;
    }
    for c in &mut tree.children {
        restore_baked(c, values);
    }
}

/// [`compose`] reusing the baked defaults of earlier targets with the same enabled structure.
pub fn compose_cached<'c>(chart: &'c Chart, user: &Map, cache: &BakeCache) -> Composed<'c> {
    // Helm coalesces three times (enabling, importing, rendering) and fails on the first
    // "type mismatch" of any of them; the earlier two can hit ones the last never sees.
    let mut fatal = Vec::new();
    let mut errors = Vec::new();
    let mut tree = enabled_tree(chart, String::new(), user, "", &mut fatal);
    let mut key = String::new();
    signature(&tree, &mut key);
    let hit = cache
        .baked
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .get(&key)
        .cloned();
    match hit {
        Some(b) => {
            restore_baked(&mut tree, &mut b.values.into_iter());
            fatal.extend(b.fatal);
            errors.extend(b.errors);
        }
        None => {
            let (mut bake_fatal, mut bake_errors) = (Vec::new(), Vec::new());
            bake(&mut tree, &mut bake_fatal, &mut bake_errors);
            let mut values = Vec::new();
            baked_values(&tree, &mut values);
            cache
                .baked
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(
                    key,
                    Baked {
                        values,
                        fatal: bake_fatal.clone(),
                        errors: bake_errors.clone(),
                    },
                );
            fatal.extend(bake_fatal);
            errors.extend(bake_errors);
        }
    }
    let values = go::copy(user);
    let mut clashes = Vec::new();
    coalesce(&tree, &values, "", false, &mut clashes);
    for c in fatal {
        if !clashes.contains(&c) {
            clashes.push(c);
        }
    }
    Composed {
        values: go::to_map(&values),
        tree,
        clashes,
        errors,
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

/// A chart with its subcharts as loaded, before `processDependencyEnabled` reached it: Helm's
/// `chart.Dependencies()` then holds every chart found under its `charts/` once, under its own
/// name (no aliases yet), recursively.
fn raw_tree(chart: &Chart, key: String) -> Tree<'_> {
    let mut children: Vec<Tree<'_>> = chart
        .undeclared
        .iter()
        .map(|c| raw_tree(c, c.name.clone()))
        .collect();
    for c in chart.subcharts.iter().filter_map(|s| s.chart.as_deref()) {
        if !children.iter().any(|t| t.chart.name == c.name) {
            children.push(raw_tree(c, c.name.clone()));
        }
    }
    Tree {
        chart,
        key,
        values: chart_values(chart),
        children,
        disabled: Vec::new(),
        missing: Vec::new(),
    }
}

fn chart_values(chart: &Chart) -> Map {
    chart.values.value.as_map().cloned().unwrap_or_default()
}

/// `processDependencyImportValues` (bottom-up): each chart's defaults become
/// `MergeValues(chart, nil)` — its values coalesced with its enabled subcharts' with nulls kept —
/// merged over the values its dependencies export through `import-values`.
/// Fatal clashes (Helm's errors) go to `fatal`.
fn bake(tree: &mut Tree<'_>, fatal: &mut Vec<Clash>, errors: &mut Vec<(Origin, String)>) {
    for child in &mut tree.children {
        bake(child, fatal, errors);
    }
    // `processImportValues` returns early when `c.Metadata.Dependencies` is nil — also when
    // enabling left none of them (Helm rebuilds the list by appending to nil): the chart's
    // values then stay as written, undeclared subcharts' values not merged in.
    if !tree
        .chart
        .subcharts
        .iter()
        .any(|s| !tree.disabled.iter().any(|(k, _)| k == s.dep.key()))
    {
        return;
    }
    let cvals = go::new_map();
    let mut clashes = Vec::new();
    coalesce(tree, &cvals, "", true, &mut clashes);
    fatal.extend(clashes.into_iter().filter(|c| c.fatal));
    // The imported tables are cvals' own (Go maps, not copies): merging a second import into
    // one taken earlier writes through to cvals, as it does in Helm.
    let imported = go::new_map();
    for sub in &tree.chart.subcharts {
        // Only the dependencies left enabled (`c.Metadata.Dependencies` after enabling).
        if tree.disabled.iter().any(|(k, _)| k == sub.dep.key()) {
            continue;
        }
        for iv in &sub.dep.import_values {
            let (child, parent) = match iv {
                serde_json::Value::String(s) => (format!("exports.{s}"), ".".to_owned()),
                serde_json::Value::Object(m) => {
                    (go_sprint(m.get("child")), go_sprint(m.get("parent")))
                }
                _ => continue,
            };
            let Some((table, origin)) = go::table(&cvals, &format!("{}.{child}", sub.dep.key()))
            else {
                continue;
            };
            // `Values.AsMap`: an empty table comes back as a new map, a non-empty one as itself.
            let table = if table.borrow().is_empty() {
                go::new_map()
            } else {
                table
            };
            let table = if parent == "." {
                table
            } else {
                // pathToMap: nest the table under the parent path.
                parent.split('.').rev().fold(table, |inner, k| {
                    let m = go::new_map();
                    m.borrow_mut().insert(
                        k.to_owned(),
                        GNode {
                            g: G::Map(inner),
                            origin: origin.clone(),
                        },
                    );
                    m
                })
            };
            coalesce_tables(&imported, &table, "", true, &mut Vec::new());
            if go::cyclic(&imported) {
                // Two imports landing on one table: Helm merges the subchart's table into
                // a table that already holds it. The map now contains itself; Helm's deep
                // copy of it recurses until the Go stack overflows.
                errors.push((
                    sub.dep.origin.clone(),
                    format!(
                        "the import-values of `{}` merge a table into itself (`{child}` into `{parent}`): Helm never finishes rendering (a cyclic map)",
                        sub.dep.key()
                    ),
                ));
                return;
            }
        }
    }
    // deepCopyMap(cvals), then MergeTables(cvals, b).
    let cvals = go::copy(&go::to_map(&cvals));
    coalesce_tables(&cvals, &imported, "", true, &mut Vec::new());
    tree.values = go::to_map(&cvals);
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
/// Helm recurses with the *top-level* coalesced values: a subchart's own subcharts are
/// coalesced against the top-level keys of their names, so a top-level `leaf: 1` fails a render
/// whose `web` chart has a `leaf` subchart ("type mismatch on leaf"). Those errors go to `fatal`.
fn enabled_tree<'c>(
    chart: &'c Chart,
    key: String,
    v: &Map,
    path: &str,
    fatal: &mut Vec<Clash>,
) -> Tree<'c> {
    let (children, missing) = all_children(chart);
    // This chart's subcharts carry their aliases now; theirs are still as loaded.
    let children = children
        .into_iter()
        .map(|c| raw_tree(c.chart, c.key))
        .collect();
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
    let g = go::copy(v);
    let mut clashes = Vec::new();
    coalesce(&all, &g, "", false, &mut clashes);
    fatal.extend(clashes.into_iter().filter(|c| c.fatal));
    let cvals = go::to_map(&g);

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
        children.push(enabled_tree(
            child.chart,
            child.key,
            &cvals,
            &sub_path,
            fatal,
        ));
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

/// Values while coalescing, held as Helm holds them: maps are shared Go maps. Helm copies maps
/// shallowly in places (`coalesceGlobals` copies each table of the parent's `global` with
/// `copyMap`), so what it then merges into the nested tables of that copy — a subchart's
/// `global` defaults, the user's `<alias>.global` — also lands in the parent's `global` and in
/// every sibling's: the reference semantics are part of the result.
mod go {
    use super::{GNode, G};
    use crate::yaml::{Map, Node, Value};
    use std::cell::RefCell;
    use std::collections::BTreeMap;
    use std::rc::Rc;

    pub type GMap = Rc<RefCell<BTreeMap<String, GNode>>>;

    pub fn new_map() -> GMap {
        Rc::new(RefCell::new(BTreeMap::new()))
    }

    /// A deep copy (copystructure.Copy): nothing shared with anything.
    pub fn copy(m: &Map) -> GMap {
        Rc::new(RefCell::new(
            m.iter().map(|(k, n)| (k.clone(), node(n))).collect(),
        ))
    }

    fn node(n: &Node) -> GNode {
        GNode {
            g: match &n.value {
                Value::Map(m) => G::Map(copy(m)),
                other => G::Other(other.clone()),
            },
            origin: n.origin.clone(),
        }
    }

    /// Back to plain values (a deep copy of what the maps hold now).
    pub fn to_map(m: &GMap) -> Map {
        m.borrow()
            .iter()
            .map(|(k, n)| {
                let value = match &n.g {
                    G::Map(inner) => Value::Map(to_map(inner)),
                    G::Other(v) => v.clone(),
                };
                (
                    k.clone(),
                    Node {
                        value,
                        origin: n.origin.clone(),
                    },
                )
            })
            .collect()
    }

    /// Whether a map contains itself (through shared maps).
    pub fn cyclic(m: &GMap) -> bool {
        fn walk(m: &GMap, path: &mut Vec<*const RefCell<BTreeMap<String, GNode>>>) -> bool {
            if path.contains(&Rc::as_ptr(m)) {
                return true;
            }
            path.push(Rc::as_ptr(m));
            let inner: Vec<GMap> = m
                .borrow()
                .values()
                .filter_map(|n| match &n.g {
                    G::Map(i) => Some(i.clone()),
                    G::Other(_) => None,
                })
                .collect();
            let found = inner.iter().any(|i| walk(i, path));
            path.pop();
            found
        }
        walk(m, &mut Vec::new())
    }

    /// `Values.Table`: the map at a dotted path (the map itself, not a copy).
    pub fn table(m: &GMap, path: &str) -> Option<(GMap, crate::yaml::Origin)> {
        let mut cur = m.clone();
        let mut origin = None;
        for part in path.split('.') {
            let next = match cur.borrow().get(part) {
                Some(GNode {
                    g: G::Map(inner),
                    origin: o,
                }) => {
                    origin = Some(o.clone());
                    inner.clone()
                }
                _ => return None,
            };
            cur = next;
        }
        Some((cur, origin?))
    }
}

use go::GMap;

/// A value in a [`go::GMap`]: a shared map, or anything else (held by value, as Go never
/// changes those in place while coalescing).
#[derive(Clone)]
struct GNode {
    g: G,
    origin: Origin,
}

#[derive(Clone)]
enum G {
    Map(GMap),
    Other(Value),
}

impl G {
    fn is_null(&self) -> bool {
        matches!(self, G::Other(Value::Null))
    }

    fn type_name(&self) -> &'static str {
        match self {
            G::Map(_) => "map",
            G::Other(v) => v.type_name(),
        }
    }
}

fn get(m: &GMap, key: &str) -> Option<GNode> {
    m.borrow().get(key).cloned()
}

/// `coalesce` = `coalesceValues` then `coalesceDeps`.
fn coalesce(tree: &Tree<'_>, dest: &GMap, prefix: &str, merge: bool, clashes: &mut Vec<Clash>) {
    coalesce_values(tree, dest, prefix, merge, clashes);
    coalesce_deps(tree, dest, prefix, merge, clashes);
}

/// `coalesceValues`: the chart's defaults (a fresh deep copy each time) under the values `v`.
fn coalesce_values(tree: &Tree<'_>, v: &GMap, prefix: &str, merge: bool, clashes: &mut Vec<Clash>) {
    let sub_prefix = concat(prefix, &tree.chart.name);
    let vc = go::copy(&tree.values);
    let defaults: Vec<(String, GNode)> = vc
        .borrow()
        .iter()
        .map(|(k, n)| (k.clone(), n.clone()))
        .collect();
    for (key, default) in defaults {
        let Some(user) = get(v, &key) else {
            v.borrow_mut().insert(key, default);
            continue;
        };
        match (&user.g, &default.g) {
            (G::Other(Value::Null), _) if !merge => {
                v.borrow_mut().remove(&key);
            }
            (G::Map(dest), G::Map(src)) => {
                let merge = merge || tree.children.iter().any(|c| c.key == key);
                coalesce_tables(dest, src, &concat(&sub_prefix, &key), merge, clashes);
            }
            (G::Map(_), G::Other(Value::Null)) => {}
            (G::Map(_), d) => clashes.push(Clash {
                // "warning: skipped value for <chart>.<key>: Not a table."
                path: concat(&sub_prefix, &key),
                user: user.origin.clone(),
                user_type: "map",
                default: Some(default.origin.clone()),
                default_type: d.type_name(),
                fatal: false,
            }),
            (u, G::Map(_)) if !u.is_null() => clashes.push(Clash {
                // Helm is silent here: the user's scalar replaces the whole default map.
                path: concat(&sub_prefix, &key),
                user: user.origin.clone(),
                user_type: u.type_name(),
                default: Some(default.origin.clone()),
                default_type: "map",
                fatal: false,
            }),
            _ => {}
        }
    }
}

/// `coalesceTablesFullKey`: `dst` (higher precedence) over `src`. Like Helm it writes nulls of
/// `dst` into `src` and puts `src`'s own maps into `dst` (shared, not copied).
fn coalesce_tables(dst: &GMap, src: &GMap, prefix: &str, merge: bool, clashes: &mut Vec<Clash>) {
    if std::rc::Rc::ptr_eq(dst, src) {
        return; // Go would walk it and change nothing
    }
    let src_non_nil: std::collections::HashSet<String> = src
        .borrow()
        .iter()
        .filter(|(_, n)| !n.g.is_null())
        .map(|(k, _)| k.clone())
        .collect();
    let dst_nulls: Vec<(String, GNode)> = dst
        .borrow()
        .iter()
        .filter(|(_, n)| n.g.is_null())
        .map(|(k, n)| (k.clone(), n.clone()))
        .collect();
    src.borrow_mut().extend(dst_nulls);
    let entries: Vec<(String, GNode)> = src
        .borrow()
        .iter()
        .map(|(k, n)| (k.clone(), n.clone()))
        .collect();
    for (key, val) in entries {
        let full = concat(prefix, &key);
        let Some(dv) = get(dst, &key) else {
            dst.borrow_mut().insert(key, val);
            continue;
        };
        if !merge && dv.g.is_null() && src_non_nil.contains(&key) {
            dst.borrow_mut().remove(&key);
            continue;
        }
        match (&dv.g, &val.g) {
            (G::Map(d), G::Map(s)) => coalesce_tables(d, s, &full, merge, clashes),
            (d, G::Map(_)) => clashes.push(Clash {
                // "warning: cannot overwrite table with non table for <key>"
                path: full,
                user: dv.origin.clone(),
                user_type: d.type_name(),
                default: Some(val.origin.clone()),
                default_type: "map",
                fatal: false,
            }),
            (G::Map(_), s) if !s.is_null() => clashes.push(Clash {
                // "warning: destination for <key> is a table. Ignoring non-table value"
                path: full,
                user: dv.origin.clone(),
                user_type: "map",
                default: Some(val.origin.clone()),
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
    dest: &GMap,
    prefix: &str,
    merge: bool,
    clashes: &mut Vec<Clash>,
) {
    for child in &tree.children {
        let sub = match get(dest, &child.key) {
            None => {
                let m = go::new_map();
                dest.borrow_mut().insert(
                    child.key.clone(),
                    GNode {
                        g: G::Map(m.clone()),
                        origin: tree.chart.values.origin.clone(),
                    },
                );
                m
            }
            Some(GNode { g: G::Map(m), .. }) => m,
            Some(other) => {
                // Helm: "type mismatch on <name>" — rendering fails.
                clashes.push(Clash {
                    path: child.key.clone(),
                    user: other.origin.clone(),
                    user_type: other.g.type_name(),
                    default: None,
                    default_type: "map",
                    fatal: true,
                });
                continue;
            }
        };
        let sub_prefix = concat(prefix, &tree.chart.name);
        coalesce_globals(&sub, dest, &sub_prefix);
        coalesce(child, &sub, &sub_prefix, merge, clashes);
    }
}

/// `coalesceGlobals`: the parent's `global` over the subchart's (maps merged, parent wins).
/// Each table of the parent's `global` is copied one level deep only (`copyMap`): the tables
/// inside it stay the parent's.
fn coalesce_globals(dest: &GMap, src: &GMap, prefix: &str) {
    let dg = match get(dest, "global") {
        None => go::new_map(),
        Some(GNode { g: G::Map(m), .. }) => m,
        Some(_) => return, // "skipping globals because destination global is not a table"
    };
    let src_global = get(src, "global");
    let sg = match &src_global {
        None => go::new_map(),
        Some(GNode { g: G::Map(m), .. }) => m.clone(),
        Some(_) => return, // "skipping globals because source global is not a table"
    };
    let entries: Vec<(String, GNode)> = sg
        .borrow()
        .iter()
        .map(|(k, n)| (k.clone(), n.clone()))
        .collect();
    for (key, val) in entries {
        match (&val.g, get(&dg, &key)) {
            (G::Map(vm), existing) => {
                let vv: GMap = std::rc::Rc::new(std::cell::RefCell::new(vm.borrow().clone()));
                match existing {
                    None => {}
                    Some(GNode {
                        g: G::Map(destvmap),
                        ..
                    }) => coalesce_tables(
                        &vv,
                        &destvmap,
                        &concat(prefix, &key),
                        true,
                        &mut Vec::new(),
                    ),
                    // "Conflict: cannot merge map onto non-map"
                    Some(_) => continue,
                }
                dg.borrow_mut().insert(
                    key,
                    GNode {
                        g: G::Map(vv),
                        origin: val.origin,
                    },
                );
            }
            // "key is table. Skipping"
            (_, Some(GNode { g: G::Map(_), .. })) => {}
            _ => {
                dg.borrow_mut().insert(key, val);
            }
        }
    }
    // `dest[GlobalKey] = dg` (the same map when the subchart had one), attributed to the
    // parent's `global`.
    let origin = src_global
        .map(|n| n.origin)
        .unwrap_or_else(|| placeholder(dest));
    dest.borrow_mut().insert(
        "global".into(),
        GNode {
            g: G::Map(dg),
            origin,
        },
    );
}

/// Where an implicit value (an inserted empty `global`) is attributed: any sibling's file, line 1.
fn placeholder(m: &GMap) -> Origin {
    m.borrow()
        .iter()
        .find(|(k, _)| *k != "global")
        .map(|(_, n)| n)
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
    let values = go::new_map();
    coalesce(&tree, &values, "", false, &mut Vec::new());
    (go::to_map(&values), tree)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::values::chart;
    use std::sync::Arc;

    /// Writes `files` under a temp dir, loads `app` and composes `user` over it; the results
    /// asserted below are what real `helm template` (v3.21.4) renders for the same chart.
    fn composed(files: &[(&str, &str)], user: &str) -> (serde_json::Value, Vec<Clash>) {
        let tmp = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = tmp.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let chart = chart::load(&tmp.path().join("app"), "app").unwrap();
        let doc = crate::yaml::parse_values(&Arc::from("u.yaml"), user).unwrap();
        let Value::Map(user) = doc.root.value else {
            unreachable!()
        };
        let c = compose(&chart, &user);
        (Value::Map(c.values).to_json(), c.clashes)
    }

    const APP: (&str, &str) = (
        "app/Chart.yaml",
        "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: sub\n    version: 0.1.0\n    condition: sub.enabled\n  - name: web\n    version: 0.1.0\n",
    );
    const SUB: (&str, &str) = (
        "app/charts/sub/Chart.yaml",
        "apiVersion: v2\nname: sub\nversion: 0.1.0\n",
    );
    const WEB: (&str, &str) = (
        "app/charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.1.0\ndependencies:\n  - name: leaf\n    alias: lf\n    version: 0.1.0\n    condition: lf.enabled\n",
    );
    const LEAF: (&str, &str) = (
        "app/charts/web/charts/leaf/Chart.yaml",
        "apiVersion: v2\nname: leaf\nversion: 0.1.0\n",
    );

    #[test]
    fn nested_global_tables_are_shared_with_the_parent() {
        // coalesceGlobals copies `global.deep` one level deep: `global.deep.inner` is the
        // parent's own map, so the subchart's defaults for it show up in the parent's global.
        let files = [
            APP,
            SUB,
            (
                "app/charts/sub/values.yaml",
                "global:\n  deep: {inner: {fromSub: 1}, subOnly: 2}\n",
            ),
            WEB,
            LEAF,
        ];
        let (v, _) = composed(&files, "global: {deep: {inner: {fromUser: 1}}}\n");
        assert_eq!(
            v["global"],
            serde_json::json!({"deep": {"inner": {"fromSub": 1, "fromUser": 1}}})
        );
        assert_eq!(v["sub"]["global"]["deep"]["subOnly"], 2);
        assert_eq!(v["web"]["global"]["deep"]["inner"]["fromSub"], 1);
    }

    #[test]
    fn nested_subcharts_are_enabled_against_top_level_values_and_raw_names() {
        let files = [
            APP,
            SUB,
            WEB,
            LEAF,
            ("app/charts/web/charts/leaf/values.yaml", "enabled: false\n"),
        ];
        // The condition `lf.enabled` is read at web.lf, which enabling fills under the raw
        // name (web.leaf): not found, so the alias stays enabled.
        let (v, clashes) = composed(&files, "");
        assert_eq!(v["web"]["lf"]["enabled"], false);
        assert!(clashes.is_empty(), "{clashes:?}");
        // web's subcharts are coalesced against the top-level values: a top-level `lf` that is
        // not a map fails ("type mismatch on lf").
        let (_, clashes) = composed(&files, "lf: 3\n");
        assert!(
            clashes.iter().any(|c| c.fatal && c.path == "lf"),
            "{clashes:?}"
        );
    }

    #[test]
    fn imports_that_merge_a_table_into_itself_are_an_error() {
        // `data` puts exports.data.shared (the subchart's own table) at `shared`; the second
        // import merges exports.data into it, so the table gains itself as `shared`. Real helm
        // never finishes (it is killed after minutes of deep-copying the cyclic map).
        let files = [
            (
                "app/Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: 0.1.0\n    import-values:\n      - data\n      - child: exports.data\n        parent: shared\n",
            ),
            ("app/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n"),
            ("app/charts/web/values.yaml", "exports:\n  data:\n    shared: {deep: {w: 1}}\n"),
        ];
        let tmp = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let p = tmp.path().join(path);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        let chart = chart::load(&tmp.path().join("app"), "app").unwrap();
        let c = compose(&chart, &Map::new());
        assert_eq!(c.errors.len(), 1, "{:?}", c.errors);
        assert!(c.errors[0].1.contains("merge a table into itself"));
    }

    #[test]
    fn a_second_import_into_one_place_writes_through_to_the_first_table() {
        // Imports take the subchart's own table (not a copy, unless it is empty: AsMap); the
        // second merges into it, so web.cfg itself gains `x`.
        let chart = |cfg: &str| {
            [
                (
                    "app/Chart.yaml",
                    "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: web\n    version: 0.1.0\n    import-values:\n      - child: cfg\n        parent: webcfg\n      - child: exports.data\n        parent: webcfg\n".to_owned(),
                ),
                ("app/charts/web/Chart.yaml", "apiVersion: v2\nname: web\nversion: 0.1.0\n".to_owned()),
                ("app/charts/web/values.yaml", format!("cfg: {cfg}\nexports: {{data: {{x: 1}}}}\n")),
            ]
        };
        let files = chart("{a: 1}");
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let (v, _) = composed(&files, "");
        assert_eq!(v["web"]["cfg"], serde_json::json!({"a": 1, "x": 1}));
        assert_eq!(v["webcfg"], serde_json::json!({"a": 1, "x": 1}));
        let files = chart("{}");
        let files: Vec<(&str, &str)> = files.iter().map(|(p, t)| (*p, t.as_str())).collect();
        let (v, _) = composed(&files, "");
        assert_eq!(v["web"]["cfg"], serde_json::json!({}));
        assert_eq!(v["webcfg"], serde_json::json!({"x": 1}));
    }

    #[test]
    fn imports_are_skipped_when_every_dependency_is_disabled() {
        // With all declared dependencies disabled, processImportValues returns early: the
        // undeclared subchart's nulls are not baked into the parent's defaults, so they survive.
        let files = [
            (
                "app/Chart.yaml",
                "apiVersion: v2\nname: app\nversion: 0.1.0\ndependencies:\n  - name: sub\n    version: 0.1.0\n    condition: sub.enabled\n",
            ),
            SUB,
            ("app/charts/und/Chart.yaml", "apiVersion: v2\nname: und\nversion: 0.1.0\n"),
            ("app/charts/und/values.yaml", "x: null\nm: {k: 1}\n"),
        ];
        let (v, _) = composed(&files, "sub: {enabled: false}\n");
        assert_eq!(
            v["und"],
            serde_json::json!({"global": {}, "m": {"k": 1}, "x": null})
        );
        let (v, _) = composed(&files, "sub: {enabled: true}\n");
        assert_eq!(v["und"], serde_json::json!({"global": {}, "m": {"k": 1}}));
    }
}
