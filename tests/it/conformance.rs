//! Conformance of value composition against real Helm: for each case, a test chart renders
//! `{{ .Values | toJson }}` through `helm template`, and stack's composed values must be identical.
//! Needs `helm` (tier "helm": `cargo xtask setup` installs the pinned version).

use crate::support;
use stack::values::{chart, compose};
use stack::yaml::{self, Value};
use std::path::Path;
use std::sync::Arc;

/// The chart every case renders: a parent with one subchart used twice under aliases (one behind a
/// condition), one behind a tag and a condition, globals at both levels, nulls, lists and maps.
const FILES: &[(&str, &str)] = &[
    (
        "parent/Chart.yaml",
        r#"apiVersion: v2
name: parent
version: 0.1.0
dependencies:
  - name: sub
    alias: sub-a
    version: 0.1.0
  - name: sub
    alias: sub-b
    version: 0.1.0
    condition: sub-b.enabled,global.subB
  - name: web
    version: 0.2.0
    condition: web.enabled
    tags: [web]
    import-values:
      - data
      - child: cfg
        parent: webcfg
"#,
    ),
    (
        "parent/values.yaml",
        r#"global:
  region: eu
  labels: {team: core}
  nothing: null
replicas: 1
list: [1, 2, 3]
map:
  keep: k
  drop: d
  nested: {a: 1, b: 2}
scalarDefault: 5
mapDefault: {x: 1}
nullDefault: null
emptyMap: {}
sub-a:
  fromParent: p
  port: 8000
sub-b:
  enabled: true
web:
  title: hello
"#,
    ),
    ("parent/templates/values.yaml", "# VALUES {{ .Values | toJson }}\n"),
    ("parent/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
    (
        "parent/charts/sub/values.yaml",
        r#"global:
  region: us
  subOnly: s
  labels: {tier: backend}
  deep: {inner: {fromSub: 1}, subOnly: 2}
port: 80
image: {repository: r, tag: ""}
fromParent: default
args: [a, b]
"#,
    ),
    (
        "parent/charts/web/Chart.yaml",
        "apiVersion: v2\nname: web\nversion: 0.2.0\ndependencies:\n  - name: leaf\n    alias: lf\n    version: 0.1.0\n    condition: lf.enabled\n",
    ),
    ("parent/charts/web/charts/leaf/Chart.yaml", "apiVersion: v2\nname: leaf\nversion: 0.1.0\n"),
    ("parent/charts/web/charts/leaf/values.yaml", "enabled: false\nglobal: {deep: {inner: {fromLeaf: 1}}}\n"),
    ("parent/charts/web/values.yaml", "enabled: true\ntitle: default\nglobal: {}\nexports: {data: {shared: w, replicas: 9}}\ncfg: {a: 1}\n"),
];

/// (case name, user value files in -f order, whether helm itself must fail).
const CASES: &[(&str, &[&str], bool)] = &[
    ("chart defaults only", &[], false),
    ("top-level null deletes a default", &["replicas: null\nscalarDefault: ~\n"], false),
    ("nested null deletes a default", &["map:\n  drop: null\n  nested: {a: null}\n"], false),
    ("null for a key without default stays null", &["brandNew: null\nmap: {alsoNew: null}\n"], false),
    ("lists replace, never merge", &["list: [9]\nsub-a: {args: [z]}\n"], false),
    ("later files win, maps deep-merge", &["map: {keep: one, extra: 1}\n", "map: {keep: two}\nreplicas: 3\n"], false),
    ("user map over a default scalar", &["scalarDefault: {x: 1}\n"], false),
    ("user scalar over a default map", &["mapDefault: 7\n"], false),
    ("nested scalar over map and map over scalar", &["map: {nested: 3, keep: {y: 1}}\n"], false),
    ("user map where the default is null", &["nullDefault: {a: 1}\n"], false),
    ("values into the empty-map default", &["emptyMap: {anything: [1, {b: c}]}\n"], false),
    ("alias scoping: same chart, two keys", &["sub-a: {port: 1}\nsub-b: {port: 2, image: {tag: v2}}\n"], false),
    ("parent values for an alias beat subchart defaults, user beats both", &["sub-a: {fromParent: user}\n"], false),
    ("null inside a subchart's values", &["sub-a: {image: {tag: null}, port: null}\n"], false),
    ("global propagation: scalars, maps, user globals", &["global: {region: ap, labels: {owner: me}, extra: 1}\n"], false),
    ("global null", &["global: {region: null}\n"], false),
    ("condition disables an alias", &["sub-b: {enabled: false}\n"], false),
    ("second condition path is used when the first is absent", &["sub-b: {enabled: null}\nglobal: {subB: false}\n"], false),
    ("non-bool condition falls through", &["sub-b: {enabled: maybe}\nglobal: {subB: false}\n"], false),
    ("tag disables a subchart", &["tags: {web: false}\n"], false),
    ("condition overrides a tag", &["tags: {web: false}\nweb: {enabled: true}\n"], false),
    ("condition false with tag true", &["tags: {web: true}\nweb: {enabled: false, title: kept}\n"], false),
    (
        "YAML 1.1 scalars",
        &["s:\n  b1: yes\n  b2: No\n  b3: on\n  b4: OFF\n  b5: y\n  b6: n\n  o1: 0755\n  o2: 0o17\n  h: 0x1F\n  u: 1_000\n  e: 1e3\n  f: .5\n  g: 08\n  t: 2024-01-02\n  t2: 2001-12-14 21:59:43.10\n  q: \"yes\"\n  big: 12345678901234567890\n  neg: -0b11\n  plus: +5\n  tilde: ~\n  str: yEs\n"],
        false,
    ),
    ("keys that YAML 1.1 reads as booleans or numbers", &["k:\n  n: 1\n  on: 2\n  010: 3\n  1.5: 4\n"], false),
    ("duplicate keys keep the last", &["map: {keep: first}\nmap: {keep: second}\n"], false),
    ("anchors and merge keys", &["base: &b {x: 1, y: 2}\nderived:\n  <<: *b\n  y: 3\nmulti:\n  z: 0\n  <<: [{x: 10}, {x: 20, w: 5}]\n"], false),
    ("block scalars and quoting", &["text: |\n  line one\n  line two\nfolded: >-\n  a\n  b\nsq: 'it''s'\ndq: \"tab\\tnew\\nline\"\n"], false),
    ("empty file", &["", "# only a comment\n"], false),
    ("import-values rank below the parent's own values", &["webcfg: {b: 2}\n"], false),
    ("import-values from a disabled subchart are not imported", &["web: {enabled: false}\n"], false),
    ("subchart key holding a scalar is a type mismatch", &["sub-a: 3\n"], true),
    (
        "global tables nested two deep are shared with the parent (copyMap is shallow)",
        &["global: {deep: {inner: {fromUser: 1}}}\nsub-b: {global: {deep: {inner: {fromAlias: 2}}}}\n"],
        false,
    ),
    (
        "nested alias: enabling sees the raw subchart name (the lf condition is not found)",
        &["web: {leaf: {enabled: false}}\n"],
        false,
    ),
    ("nested alias condition set by the user", &["web: {lf: {enabled: true, x: 1}}\n"], false),
    (
        "a top-level key named like a subchart's subchart is a type mismatch",
        &["lf: 3\n"],
        true,
    ),
    (
        "import-values of a subchart disabled by its condition are not imported",
        &["web: {enabled: false, exports: {data: {fromParent: 1}}}\n"],
        false,
    ),
    (
        "YAML 1.1 keys, explicit tags and floats beyond float64",
        &["k:\n  1e7: a\n  9007199254740993: b\n  0.1: c\n  .inf: d\n  -0.0: e\nt: {i: !!int \"7\", f: !!float 2, b: !!binary aGk=, s: !!str 0755}\nbig: [1e400, .5e400, .5_0]\n\"<<\": {q: 1}\nm: {w: 3, <<: {w: 1}}\n"],
        false,
    ),
];

fn write_chart(dir: &Path) {
    for (path, text) in FILES {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn helm_values(helm: &Path, dir: &Path, files: &[String]) -> Result<serde_json::Value, String> {
    let mut cmd = std::process::Command::new(helm);
    cmd.current_dir(dir).args(["template", "t", "parent"]);
    for f in files {
        cmd.args(["-f", f]);
    }
    let out = cmd.output().map_err(|e| e.to_string())?;
    if !out.status.success() {
        return Err(String::from_utf8_lossy(&out.stderr).into_owned());
    }
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("# VALUES "))
        .ok_or_else(|| format!("no values line in:\n{stdout}"))?;
    serde_json::from_str(line).map_err(|e| format!("{e}: {line}"))
}

/// Composes through `cache` (shared by every case, as validate shares it across targets) and checks
/// the result equals an uncached composition.
fn stack_values(
    dir: &Path,
    files: &[String],
    cache: &compose::BakeCache,
) -> (serde_json::Value, Vec<compose::Clash>) {
    let chart = chart::load(&dir.join("parent"), "parent").expect("chart loads");
    let mut user = yaml::Map::new();
    for f in files {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let doc = yaml::parse_values(&Arc::from(f.as_str()), &text).expect("values parse");
        let Value::Map(m) = doc.root.value else {
            unreachable!()
        };
        compose::merge_maps(&mut user, &m);
    }
    let composed = compose::compose_cached(&chart, &user, cache);
    let fresh = compose::compose(&chart, &user);
    assert_eq!(
        composed.values, fresh.values,
        "a cached bake changed the values"
    );
    assert_eq!(
        composed.clashes, fresh.clashes,
        "a cached bake changed the clashes"
    );
    (Value::Map(composed.values).to_json(), composed.clashes)
}

/// Numbers compare as float64 (what Helm holds); everything else structurally.
fn same(a: &serde_json::Value, b: &serde_json::Value) -> bool {
    use serde_json::Value as J;
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

#[test]
fn composition_matches_real_helm() {
    let helm = support::find_tool("helm");
    if !support::require("helm", helm.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let helm = helm.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_chart(tmp.path());
    let mut failures = Vec::new();
    let cache = compose::BakeCache::default();
    for (i, (name, layers, helm_fails)) in CASES.iter().enumerate() {
        let files: Vec<String> = layers
            .iter()
            .enumerate()
            .map(|(j, text)| {
                let f = format!("case{i}-{j}.yaml");
                std::fs::write(tmp.path().join(&f), text).unwrap();
                f
            })
            .collect();
        let theirs = helm_values(&helm, tmp.path(), &files);
        let (ours, clashes) = stack_values(tmp.path(), &files, &cache);
        match (theirs, helm_fails) {
            (Err(e), true) => {
                assert!(
                    e.contains("type mismatch"),
                    "{name}: helm failed differently: {e}"
                );
                assert!(
                    clashes.iter().any(|c| c.fatal),
                    "{name}: helm fails but stack saw no fatal clash"
                );
            }
            (Err(e), false) => failures.push(format!("{name}: helm failed: {e}")),
            (Ok(v), true) => failures.push(format!("{name}: expected helm to fail, got {v}")),
            (Ok(theirs), false) => {
                if !same(&theirs, &ours) {
                    failures.push(format!(
                        "{name}:\n  helm:  {}\n  stack: {}",
                        serde_json::to_string(&theirs).unwrap(),
                        serde_json::to_string(&ours).unwrap()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from helm:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn corpus_covers_the_documented_semantics() {
    // The corpus itself must keep covering each behaviour named in reference/tool-semantics.md §1.
    let names: Vec<&str> = CASES.iter().map(|c| c.0).collect();
    for needle in [
        "null",
        "alias",
        "global",
        "condition",
        "tag",
        "lists",
        "YAML 1.1",
        "map over",
        "scalar over",
        "type mismatch",
    ] {
        assert!(
            names.iter().any(|n| n.contains(needle)),
            "no conformance case about {needle}"
        );
    }
}
