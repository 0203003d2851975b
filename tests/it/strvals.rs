//! `--set`, `--set-string`, `--set-file`, `--set-json` and `--set-literal` against real Helm: for
//! each case, `helm template` renders `{{ .Values | toJson }}` of a tiny chart with the case's `-f`
//! file and flags; `stack::values::strvals::apply` over the parsed `-f` file, coalesced with the
//! chart defaults by `compose`, must give the same JSON, and must fail exactly when Helm fails
//! (with Helm's own message). Needs `helm` (tier "helm": `cargo xtask setup`).

use crate::support;
use stack::values::strvals::{self, SetArg, SetKind};
use stack::values::{chart, compose};
use stack::yaml::{self, Value};
use std::path::Path;
use std::sync::Arc;

use SetKind::{File, Json, Literal, Set, String as Str};

const CHART: &[(&str, &str)] = &[
    (
        "chart/Chart.yaml",
        "apiVersion: v2\nname: x\nversion: 0.1.0\n",
    ),
    (
        "chart/values.yaml",
        "replicas: 1\nimage: {repository: r, tag: t}\nlist: [1, 2]\nkeep: k\nnested: {a: {b: 1}}\n",
    ),
    (
        "chart/templates/values.yaml",
        "# VALUES {{ .Values | toJson }}\n",
    ),
    ("f1.txt", "one\n"),
    ("f2.txt", "true"),
    ("empty.txt", ""),
    ("json.txt", "{\"k\": [1, 2]}\n"),
];

/// (case name, `-f` file or "", flags in command-line order). Whether Helm fails is Helm's answer.
type Case = (
    &'static str,
    &'static str,
    &'static [(SetKind, &'static str)],
);

const CASES: &[Case] = &[
    // --set typing
    ("int", "", &[(Set, "a=1")]),
    (
        "typing",
        "",
        &[(Set, "a=1,b=true,c=FALSE,d=null,e=0,f=1.5,g=00009,h=1e3,i=-5,j=+7,k=abc,l=NuLL,m=-0")],
    ),
    ("int64 bounds", "", &[(Set, "a=9223372036854775807,b=9223372036854775808,c=-9223372036854775808")]),
    ("hex, underscores, lone sign stay strings", "", &[(Set, "a=0x1F,b=1_000,c=-,d=+,e=.5")]),
    ("EqualFold: long s", "", &[(Set, "a=fal\u{17f}e,b=TrUe")]),
    ("YAML 1.1 words stay strings, spaces kept", "", &[(Set, "a=yes,b=on,c= 1,d=~")]),
    // separators and empty values
    ("empty value", "", &[(Set, "a=")]),
    ("empty value then more", "", &[(Set, "a=,b=1")]),
    ("trailing comma after a value", "", &[(Set, "a=1,")]),
    ("empty argument", "", &[(Set, "")]),
    ("key without value", "", &[(Set, "a")]),
    ("second key without value", "", &[(Set, "a=1,b")]),
    ("key then comma", "", &[(Set, "a,")]),
    ("double comma", "", &[(Set, "a=1,,")]),
    // escapes
    ("escaped dot in key", "", &[(Set, r"a\.b=1")]),
    ("escaped comma and braces in value", "", &[(Set, r"a=x\,y,b=\{1\}")]),
    ("escaped brackets and equals in key", "", &[(Set, r"a\[0\]=1,c\=d=e")]),
    ("trailing backslash dropped", "", &[(Set, r"a=1\")]),
    ("key ending in backslash", "", &[(Set, r"a\")]),
    // {lists}
    ("list", "", &[(Set, "a={x,1,true,null},b=2")]),
    ("empty braces are one empty string", "", &[(Set, "a={},b={,}")]),
    ("brace inside a value", "", &[(Set, "a=x{1}")]),
    ("unterminated list", "", &[(Set, "a={x")]),
    ("data after list", "", &[(Set, "a={x,y}z")]),
    ("key right after list", "", &[(Set, "a={x}b=1")]),
    // indexes
    ("index pads with nulls", "", &[(Set, "a[1]=x")]),
    ("two indexes", "", &[(Set, "a[0]=x,a[2]=y")]),
    ("maps in list out of order", "", &[(Set, "a[1].b=y,a[0].c=z")]),
    ("nested lists", "", &[(Set, "a[0][1]=1,b[1][0][1]=2")]),
    ("index with plus sign", "", &[(Set, "a[+1]=x")]),
    ("list at index", "", &[(Set, "a[0]={1,2}")]),
    ("empty value at index", "", &[(Set, "a[0]=")]),
    ("index without value leaves an empty list", "", &[(Set, "a[0],b=1")]),
    ("nested index without value", "", &[(Set, "a[0][1]")]),
    ("index then empty map value at the end", "", &[(Set, "a[0].b=")]),
    ("index then dot at the end", "", &[(Set, "a[0].")]),
    ("index then empty key", "", &[(Set, "a[0].=1")]),
    ("negative index", "", &[(Set, "a[-1]=x")]),
    ("index over the limit", "", &[(Set, "a[65537]=x")]),
    ("index at the limit", "", &[(Set, "a[65536]=x")]),
    ("index over the limit never stored", "", &[(Set, "a[70000].")]),
    ("index not a number", "", &[(Set, "a[x]=1")]),
    ("index with a space", "", &[(Set, "a[ 1]=1")]),
    ("index out of int range", "", &[(Set, "a[99999999999999999999]=1")]),
    ("unterminated index", "", &[(Set, "a[0")]),
    ("data after index", "", &[(Set, "a[0]x=1")]),
    ("comma after index", "", &[(Set, "a[0],b=1")]),
    ("empty key with index", "", &[(Set, "[0]=1,b=2")]),
    // dots
    ("nested keys merge", "", &[(Set, "a.b.c=1,a.d=2")]),
    ("30 levels", "", &[(Set, "k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18.k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30=1")]),
    ("31 levels", "", &[(Set, "k.k0.k1.k2.k3.k4.k5.k6.k7.k8.k9.k10.k11.k12.k13.k14.k15.k16.k17.k18.k19.k20.k21.k22.k23.k24.k25.k26.k27.k28.k29.k30=1")]),
    ("dangling dot is a no-op", "", &[(Set, "a.")]),
    ("leading dot is a no-op", "", &[(Set, ".a=1,b=2")]),
    ("empty key after dot", "", &[(Set, "a.=1")]),
    ("nested key without value", "", &[(Set, "a.b")]),
    ("nested empty value", "", &[(Set, "a.b=")]),
    // over the -f file and the chart defaults
    (
        "merges into the file's maps and lists",
        "nested: {a: {c: 2}}\nlist: [1, {m: 2}]\n",
        &[(Set, "nested.a.d=3,list[1].k=3,list[3]=4")],
    ),
    ("map element replaces a scalar element", "list: [1, 2]\n", &[(Set, "list[0].k=3")]),
    ("nested list filled in place", "l: [[1]]\n", &[(Set, "l[0][2]=3")]),
    ("early end keeps in-place changes", "l: [{x: 1}]\n", &[(Set, "l[0].b=")]),
    ("dot through a number in the file", "a: 1\n", &[(Set, "a.b=2")]),
    ("dot through a list in the file", "a: [1]\n", &[(Set, "a.b=2")]),
    ("index into a map in the file", "a: {b: 1}\n", &[(Set, "a[0]=2")]),
    ("dot through a null in the file", "a: ~\n", &[(Set, "a.b=1")]),
    ("index into a list element that is a number", "a: [1]\n", &[(Set, "a[0][0]=2")]),
    ("index into a null list element", "a: [~]\n", &[(Set, "a[0][0]=1")]),
    ("dot through a value set just before", "", &[(Set, "a=1,a.b=2")]),
    ("dot through a null set by an earlier flag", "", &[(Set, "a=null"), (Set, "a.b=1")]),
    ("map over a chart default scalar", "", &[(Set, "keep.x=1")]),
    ("null deletes a default", "", &[(Set, "replicas=null,image.tag=null")]),
    ("null over the file deletes the default", "replicas: 3\n", &[(Set, "replicas=null")]),
    ("scalar over a default map", "", &[(Set, "image=plain")]),
    ("list replaces a default list", "", &[(Set, "list[2]=3")]),
    // --set-string
    ("set-string keeps strings", "", &[(Str, "a=1,b=true,c=null,d={1,x},e=,f=0")]),
    ("set-string index", "", &[(Str, "a[1]=2")]),
    ("set-string quoting in the message", "", &[(Str, "a\"b")]),
    ("set-string control char in the message", "", &[(Str, "a\tb")]),
    // --set-file
    (
        "set-file contents",
        "",
        &[(File, "a=f1.txt,b=f2.txt,c=empty.txt,e={f1.txt,f2.txt},g[1]=json.txt,d=")],
    ),
    ("set-file missing file", "", &[(File, "a=nofile.txt")]),
    ("set-file empty path mid-argument", "", &[(File, "a=,b=f1.txt")]),
    // --set-json
    ("json object", "", &[(Json, r#"a={"b":[1,2.5,{"c":null}],"d":"x"},e=1"#)]),
    ("json empty is null", "", &[(Json, "a=,b= ,c=true")]),
    ("json null", "", &[(Json, "a=null")]),
    ("json string escapes", "", &[(Json, r#"a="x\u00e9\ud83d\ude00\n",b="\ud800x""#)]),
    ("json value then a blank then a key", "", &[(Json, "a=1 b=2")]),
    ("json literal runs into the next key", "", &[(Json, "a=truex=1")]),
    ("json string then key", "", &[(Json, r#"a="s"b=[]"#)]),
    ("json blanks around the comma", "", &[(Json, "a=[1] , b=2")]),
    ("json at an index", "", &[(Json, r#"a[1]={"x":1},b[0]="#)]),
    ("json numbers", "", &[(Json, "a.b=1e2,c=-0.5e-1,d=12345678901234567890")]),
    ("json leading zero", "", &[(Json, "a=01")]),
    ("json trailing comma in array", "", &[(Json, "a=[1,]")]),
    ("json truncated literal", "", &[(Json, "a=tru")]),
    ("json number out of range", "", &[(Json, "a=1e400")]),
    ("json bare word", "", &[(Json, "a=x")]),
    ("json single quotes", "", &[(Json, "a='x'")]),
    ("json whole object form", "", &[(Json, r#"{"a":1}"#)]),
    ("json null inside an object deletes a default", "", &[(Json, r#"image={"tag":null}"#)]),
    // --set-literal
    ("literal takes the rest", "", &[(Literal, "a=x,b=y")]),
    ("literal has no escapes", "", &[(Literal, r"a\.b=1")]),
    ("literal nested and indexed", "", &[(Literal, "a.b[1]=x=y")]),
    ("literal comma in key", "", &[(Literal, "a,b=c")]),
    ("literal null and braces", "", &[(Literal, "a=null"), (Literal, "b={1,2}")]),
    ("literal key without value", "", &[(Literal, "a.b")]),
    ("literal data after index", "", &[(Literal, "a[0]x=1")]),
    // order and mixes
    (
        "fixed order: json, set, string, file, literal",
        "a: file\n",
        &[(Literal, "e=lit"), (File, "a=f1.txt,d=f2.txt"), (Str, "a=str,c=s"), (Set, "a=1,b=2"), (Json, "a=[1],b=[2]")],
    ),
    ("set indexes into a list from json", "", &[(Set, "a[1]=2"), (Json, "a=[1]")]),
    ("string after set on the same key", "", &[(Str, "a=1"), (Set, "a=2")]),
    ("several set flags in order", "base: {x: 1}\n", &[(Set, "a=1,base.y=2"), (Set, "a=3")]),
    ("error in a later flag fails the whole", "", &[(Set, "a=1"), (Str, "b")]),
    ("set then json over the file", "keep: {x: 1}\n", &[(Set, "keep.y=2"), (Json, r#"keep={"z":3}"#)]),
];

fn write_files(dir: &Path) {
    for (path, text) in CHART {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

fn flag(kind: SetKind) -> &'static str {
    kind.flag()
}

fn helm_values(
    helm: &Path,
    dir: &Path,
    file: Option<&str>,
    args: &[(SetKind, &str)],
) -> Result<serde_json::Value, String> {
    let mut cmd = std::process::Command::new(helm);
    cmd.current_dir(dir).args(["template", "x", "chart"]);
    if let Some(f) = file {
        cmd.args(["-f", f]);
    }
    for (kind, text) in args {
        cmd.arg(format!("{}={text}", flag(*kind)));
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

fn stack_values(
    dir: &Path,
    file: Option<&str>,
    args: &[(SetKind, &str)],
) -> Result<serde_json::Value, strvals::SetError> {
    let chart = chart::load(&dir.join("chart"), "chart").expect("chart loads");
    let mut user = yaml::Map::new();
    if let Some(f) = file {
        let text = std::fs::read_to_string(dir.join(f)).unwrap();
        let doc = yaml::parse_values(&Arc::from(f), &text).expect("values parse");
        let Value::Map(m) = doc.root.value else {
            unreachable!()
        };
        compose::merge_maps(&mut user, &m);
    }
    let args: Vec<SetArg> = args
        .iter()
        .map(|(kind, text)| SetArg {
            kind: *kind,
            text: text.to_string(),
        })
        .collect();
    // Paths as Helm sees them: relative to its working directory.
    let read = |path: &str| -> std::io::Result<String> {
        if path.is_empty() {
            return Err(std::io::Error::from_raw_os_error(2));
        }
        std::fs::read_to_string(dir.join(path))
    };
    strvals::apply(&mut user, &args, &read)?;
    let composed = compose::compose(&chart, &user);
    Ok(Value::Map(composed.values).to_json())
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
fn set_flags_match_real_helm() {
    let helm = support::find_tool("helm");
    if !support::require("helm", helm.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let helm = helm.unwrap();
    let tmp = tempfile::tempdir().unwrap();
    write_files(tmp.path());
    let mut failures = Vec::new();
    let (mut helm_ok, mut helm_err) = (0, 0);
    for (i, (name, file, args)) in CASES.iter().enumerate() {
        let file = (!file.is_empty()).then(|| {
            let f = format!("case{i}.yaml");
            std::fs::write(tmp.path().join(&f), file).unwrap();
            f
        });
        let theirs = helm_values(&helm, tmp.path(), file.as_deref(), args);
        let ours = stack_values(tmp.path(), file.as_deref(), args);
        match (theirs, ours) {
            (Ok(theirs), Ok(ours)) => {
                helm_ok += 1;
                if !same(&theirs, &ours) {
                    failures.push(format!(
                        "{name}:\n  helm:  {}\n  stack: {}",
                        serde_json::to_string(&theirs).unwrap(),
                        serde_json::to_string(&ours).unwrap()
                    ));
                }
            }
            (Err(stderr), Err(e)) => {
                helm_err += 1;
                if !stderr.contains(&format!("Error: {}", e.helm_message())) {
                    failures.push(format!(
                        "{name}: both fail, differently:\n  helm:  {}\n  stack: {}",
                        stderr.trim(),
                        e.helm_message()
                    ));
                }
            }
            (Ok(theirs), Err(e)) => failures.push(format!(
                "{name}: helm accepts ({}), stack refuses: {e}",
                serde_json::to_string(&theirs).unwrap()
            )),
            (Err(stderr), Ok(ours)) => failures.push(format!(
                "{name}: helm refuses ({}), stack accepts: {}",
                stderr.trim(),
                serde_json::to_string(&ours).unwrap()
            )),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from helm:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
    eprintln!(
        "{} cases: helm accepted {helm_ok}, refused {helm_err}",
        CASES.len()
    );
    // The table keeps exercising both sides.
    assert!(
        helm_ok >= 40 && helm_err >= 20,
        "{helm_ok} accepted, {helm_err} refused"
    );
}

#[test]
fn corpus_covers_every_flag_and_the_error_rules() {
    assert!(CASES.len() >= 60);
    for kind in SetKind::HELM_ORDER {
        assert!(
            CASES.iter().any(|c| c.2.iter().any(|a| a.0 == kind)),
            "no case for {}",
            kind.flag()
        );
    }
    let texts: Vec<&str> = CASES.iter().flat_map(|c| c.2.iter().map(|a| a.1)).collect();
    for needle in ["[-1]", "[65537]", "k.k0", "={x", "a,", "a.b=2"] {
        assert!(
            texts.iter().any(|t| t.contains(needle)),
            "no case with {needle}"
        );
    }
}
