//! The chart corpus (`tests/corpus/`): small projects written the way public charts are (bitnami,
//! prometheus-community, grafana, ingress-nginx, `helm create`), each with ci/preview/live env
//! files. Real `helm template` renders every target first (the env files are valid for Helm);
//! then `stack validate envs` must report no error on any of them, must find typos planted in
//! copies of their env files at the exact line with a "did you mean", and must apply the
//! image-tag policy (a `latest` tag; an empty tag only where no template falls back). What each
//! project covers: tests/corpus/README.md. Needs `helm` (tier "helm") for the rendering.

use crate::support;
use serde_json::Value as Json;
use std::path::{Path, PathBuf};
use std::process::Command;

fn corpus_dir() -> PathBuf {
    support::project_root().join("tests/corpus")
}

/// Every corpus project (a directory with charts/ and envs/), sorted.
fn projects() -> Vec<String> {
    let mut out: Vec<String> = std::fs::read_dir(corpus_dir())
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("envs").is_dir() && e.path().join("charts").is_dir())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    out.sort();
    out
}

fn helm() -> Option<PathBuf> {
    let helm = support::find_tool("helm");
    if !support::require("helm", helm.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    helm.ok()
}

/// A copy of a corpus project (tests never write into tests/corpus).
fn copy(project: &str) -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    support::copy(&corpus_dir().join(project), tmp.path());
    tmp
}

/// The deployed chart: the only one under charts/ that no other chart uses as `file://../<name>`.
fn chart_dir(root: &Path) -> String {
    let mut names: Vec<String> = std::fs::read_dir(root.join("charts"))
        .unwrap()
        .flatten()
        .filter(|e| e.path().join("Chart.yaml").is_file())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let charts: Vec<String> = names
        .iter()
        .map(|n| std::fs::read_to_string(root.join("charts").join(n).join("Chart.yaml")).unwrap())
        .collect();
    let roots: Vec<&String> = names
        .iter()
        .filter(|n| {
            !charts.iter().any(|c| {
                c.lines()
                    .any(|l| l.trim().ends_with(&format!("repository: file://../{n}")))
            })
        })
        .collect();
    assert_eq!(roots.len(), 1, "one deployable chart in {}", root.display());
    format!("charts/{}", roots[0])
}

/// One env target as the envs/ convention defines it, worked out here independently of stack:
/// the one cloud file (`envs/<cloud>.yaml`), `envs/<type>/default.yaml` when present, the target.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    layers: Vec<String>,
}

fn targets(root: &Path) -> Vec<Target> {
    let envs = root.join("envs");
    let mut clouds = Vec::new();
    let mut out = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(&envs)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .collect();
    entries.sort();
    for p in &entries {
        if p.is_file() && p.extension().is_some_and(|e| e == "yaml") {
            clouds.push(format!("envs/{}", p.file_name().unwrap().to_string_lossy()));
        }
    }
    assert!(clouds.len() <= 1, "at most one cloud layer: {clouds:?}");
    for dir in entries.iter().filter(|p| p.is_dir()) {
        let ty = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|f| f.ends_with(".yaml") && f != "default.yaml")
            .collect();
        files.sort();
        for f in files {
            let mut layers = clouds.clone();
            if dir.join("default.yaml").is_file() {
                layers.push(format!("envs/{ty}/default.yaml"));
            }
            layers.push(format!("envs/{ty}/{f}"));
            out.push(Target {
                name: format!("{ty}/{}", f.trim_end_matches(".yaml")),
                layers,
            });
        }
    }
    out
}

/// `helm dependency build` where a dependency comes from a `file://` source (Helm renders only
/// what is under charts/; vendored directories need nothing).
fn vendor_file_dependencies(helm: &Path, root: &Path, chart: &str) {
    let chart_yaml = std::fs::read_to_string(root.join(chart).join("Chart.yaml")).unwrap();
    if !chart_yaml.contains("file://") {
        return;
    }
    let o = Command::new(helm)
        .current_dir(root)
        .args(["dependency", "build", chart])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "helm dependency build {chart}: {}",
        text(&o.stderr)
    );
}

/// Real `helm template` with exactly the target's layers (chart values.yaml < cloud < type
/// default < target): Err(stderr) when Helm refuses.
fn helm_template(helm: &Path, root: &Path, chart: &str, t: &Target) -> Result<(), String> {
    let mut cmd = Command::new(helm);
    cmd.current_dir(root)
        .args(["template", "corpus", chart, "--namespace", "corpus"]);
    for l in &t.layers {
        cmd.args(["-f", l]);
    }
    let o = cmd.output().unwrap();
    if o.status.success() {
        Ok(())
    } else {
        Err(text(&o.stderr))
    }
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

/// `stack validate envs --format json` in `root`: (exit code, the JSON document).
fn validate(root: &Path) -> (Option<i32>, Json) {
    let o = Command::new(support::stack_bin())
        .current_dir(root)
        .args(["validate", "envs", "--format", "json"])
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap();
    let doc = serde_json::from_slice(&o.stdout).unwrap_or_else(|e| {
        panic!(
            "{}: no JSON document ({e}):\n{}\n{}",
            root.display(),
            text(&o.stdout),
            text(&o.stderr)
        )
    });
    (o.status.code(), doc)
}

fn findings(doc: &Json) -> Vec<Json> {
    doc["findings"].as_array().cloned().unwrap_or_default()
}

fn shown(fs: &[Json]) -> String {
    fs.iter()
        .map(|f| {
            format!(
                "  {} {} {}:{}:{} {} ({})",
                f["severity"].as_str().unwrap_or(""),
                f["rule"].as_str().unwrap_or(""),
                f["location"]["file"].as_str().unwrap_or(""),
                f["location"]["line"],
                f["location"]["col"],
                f["message"].as_str().unwrap_or(""),
                f["hint"].as_str().unwrap_or("")
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn corpus_has_ten_projects_with_every_env_type() {
    let all = projects();
    assert!(all.len() >= 10, "{all:?}");
    for p in &all {
        let root = corpus_dir().join(p);
        let ts = targets(&root);
        for ty in ["ci", "preview", "live"] {
            assert!(
                ts.iter().any(|t| t.name.starts_with(&format!("{ty}/"))),
                "{p} has no {ty} target: {ts:?}"
            );
        }
        let chart = root.join(chart_dir(&root));
        assert!(chart.join("templates/_helpers.tpl").is_file(), "{p}");
        // A chart that declares dependencies carries the Chart.lock `helm dependency update` wrote.
        let chart_yaml = std::fs::read_to_string(chart.join("Chart.yaml")).unwrap();
        if chart_yaml.contains("dependencies:") {
            assert!(chart.join("Chart.lock").is_file(), "{p}: no Chart.lock");
        }
    }
}

/// The precondition of everything else: Helm renders every target of every project.
#[test]
fn corpus_targets_render_with_real_helm() {
    let Some(helm) = helm() else { return };
    let mut failures = Vec::new();
    let mut count = 0;
    for p in projects() {
        let tmp = copy(&p);
        let chart = chart_dir(tmp.path());
        vendor_file_dependencies(&helm, tmp.path(), &chart);
        for t in targets(tmp.path()) {
            count += 1;
            if let Err(e) = helm_template(&helm, tmp.path(), &chart, &t) {
                failures.push(format!("{p} {}: {e}", t.name));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "helm template fails:\n{}",
        failures.join("\n")
    );
    assert!(count >= 30, "only {count} targets");
}

/// Zero false errors: every project validates clean, with the layers the convention defines. The
/// only finding allowed is the computed-key note of the `computed` project (an info).
#[test]
fn corpus_validates_without_false_errors() {
    let mut failures = Vec::new();
    for p in projects() {
        let tmp = copy(&p);
        let (code, doc) = validate(tmp.path());
        let fs = findings(&doc);
        let unexpected: Vec<Json> = fs
            .iter()
            .filter(|f| !(p == "computed" && f["rule"] == "template-scan"))
            .cloned()
            .collect();
        if code != Some(0) || !unexpected.is_empty() {
            failures.push(format!("{p}: exit {code:?}\n{}", shown(&fs)));
            continue;
        }
        // stack composes exactly the layers the convention defines.
        let chart = chart_dir(tmp.path());
        let expected = targets(tmp.path());
        let got = doc["targets"].as_array().unwrap();
        assert_eq!(got.len(), expected.len(), "{p}: {doc}");
        for t in &expected {
            let g = got
                .iter()
                .find(|g| g["name"] == t.name.as_str())
                .unwrap_or_else(|| panic!("{p}: no target {} in {doc}", t.name));
            let mut layers = vec![format!("{chart}/values.yaml")];
            layers.extend(t.layers.iter().cloned());
            assert_eq!(g["layers"], serde_json::json!(layers), "{p} {}", t.name);
            assert_eq!(g["errors"], 0, "{p} {}", t.name);
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// A chart that reads values with computed keys says so once, as an info about the chart.
#[test]
fn computed_keys_give_one_template_scan_note() {
    let tmp = copy("computed");
    let (code, doc) = validate(tmp.path());
    assert_eq!(code, Some(0), "{doc}");
    let fs = findings(&doc);
    assert_eq!(fs.len(), 1, "{}", shown(&fs));
    let f = &fs[0];
    assert_eq!(f["rule"], "template-scan");
    assert_eq!(f["severity"], "info");
    assert_eq!(f["location"]["file"], "charts/settings/Chart.yaml");
    let msg = f["message"].as_str().unwrap();
    assert!(msg.contains("index $.Values.configs $name"), "{msg}");
    assert!(msg.contains("`configs`"), "{msg}");
    assert!(msg.contains("`resourcePresets`"), "{msg}");
}

/// One planted mistake: in `file` (a copy of `from`, or `from` itself), `old` becomes `new`.
struct Plant {
    project: &'static str,
    from: &'static str,
    file: &'static str,
    old: &'static str,
    new: &'static str,
    /// The expected error is on the line holding this text, at its column.
    at: &'static str,
    expect: Expect,
}

enum Expect {
    /// `unknown-key` for this dotted key, hinting at this one.
    Typo(&'static str, &'static str),
    /// `image-tag` for this tag path; `true` when the tag is empty (no fallback), else `latest`.
    Tag(&'static str, bool),
}

#[allow(clippy::too_many_arguments)] // one row of the table below
const fn typo(
    project: &'static str,
    from: &'static str,
    file: &'static str,
    old: &'static str,
    new: &'static str,
    at: &'static str,
    key: &'static str,
    hint: &'static str,
) -> Plant {
    Plant {
        project,
        from,
        file,
        old,
        new,
        at,
        expect: Expect::Typo(key, hint),
    }
}

#[allow(clippy::too_many_arguments)] // one row of the table below
const fn tag(
    project: &'static str,
    from: &'static str,
    file: &'static str,
    old: &'static str,
    new: &'static str,
    at: &'static str,
    path: &'static str,
    empty: bool,
) -> Plant {
    Plant {
        project,
        from,
        file,
        old,
        new,
        at,
        expect: Expect::Tag(path, empty),
    }
}

#[rustfmt::skip]
const PLANTS: &[Plant] = &[
    // helm create
    typo("create", "envs/live/us.yaml", "envs/live/typo.yaml", "replicaCount: 4", "replicaCont: 4", "replicaCont:", "replicaCont", "replicaCount"),
    typo("create", "envs/live/eu.yaml", "envs/live/typo.yaml", "ingress:", "ingrss:", "ingrss:", "ingrss", "ingress"),
    typo("create", "envs/live/default.yaml", "envs/live/default.yaml", "  tag: \"1.27.3\"", "  tga: \"1.27.3\"", "tga:", "image.tga", "image.tag"),
    typo("create", "envs/preview/pr-42.yaml", "envs/preview/typo.yaml", "pathType: Prefix", "pathTyp: Prefix", "pathTyp:", "ingress.hosts.0.paths.0.pathTyp", "ingress.hosts.0.paths.0.pathType"),
    typo("create", "envs/live/eu.yaml", "envs/live/typo.yaml", "  sslRedirect: true", "  sslRedirct: true", "sslRedirct:", "ingress.sslRedirct", "ingress.sslRedirect"),
    tag("create", "envs/ci/smoke.yaml", "envs/ci/typo.yaml", "podLabels:", "image:\n  tag: latest\npodLabels:", "tag: latest", "image", false),
    // bitnami: common library subchart
    typo("bitnami", "envs/live/prod.yaml", "envs/live/typo.yaml", "image:\n  tag", "image:\n  regsitry: docker.io\n  tag", "regsitry:", "image.regsitry", "image.registry"),
    typo("bitnami", "envs/live/prod.yaml", "envs/live/typo.yaml", "extraVolumeMounts:", "extraVolumeMount:", "extraVolumeMount:", "extraVolumeMount", "extraVolumeMounts"),
    typo("bitnami", "envs/preview/feature-x.yaml", "envs/preview/typo.yaml", "  tag: 1.27.3", "  tga: 1.27.3", "tga:", "image.tga", "image.tag"),
    typo("bitnami", "envs/live/prod.yaml", "envs/live/typo.yaml", "replicaCount: 3", "replicaCont: 3", "replicaCont:", "replicaCont", "replicaCount"),
    tag("bitnami", "envs/ci/e2e.yaml", "envs/ci/typo.yaml", "metrics:", "image:\n  tag: latest\nmetrics:", "tag: latest", "image", false),
    // several components through `(list $ name values)` helpers; tags default to .Chart.Version
    typo("components", "envs/live/west.yaml", "envs/live/typo.yaml", "    replicas: 3", "    replica: 3", "replica:", "components.api.replica", "components.api.replicas"),
    typo("components", "envs/preview/pr-64.yaml", "envs/preview/typo.yaml", "extraObjects:", "extraObject:", "extraObject:", "extraObject", "extraObjects"),
    typo("components", "envs/live/default.yaml", "envs/live/default.yaml", "scheduler:\n  image:\n    tag", "scheduler:\n  image:\n    tga", "tga:", "scheduler.image.tga", "scheduler.image.tag"),
    tag("components", "envs/ci/build.yaml", "envs/ci/typo.yaml", "components:", "image:\n  tag: latest\ncomponents:", "tag: latest", "image", false),
    // prometheus-community
    typo("exporter", "envs/preview/default.yaml", "envs/preview/default.yaml", "    enabled: true", "    enabeld: true", "enabeld:", "prometheus.monitor.enabeld", "prometheus.monitor.enabled"),
    typo("exporter", "envs/live/fleet.yaml", "envs/live/typo.yaml", "  tag: v1.8.2", "  tga: v1.8.2", "tga:", "image.tga", "image.tag"),
    typo("exporter", "envs/ci/kind.yaml", "envs/ci/typo.yaml", "verboseCollectors", "verboseCollector", "verboseCollector:", "verboseCollector", "verboseCollectors"),
    tag("exporter", "envs/live/fleet.yaml", "envs/live/typo.yaml", "kubeRBACProxy:\n  enabled: true", "kubeRBACProxy:\n  enabled: true\n  image:\n    tag: \"\"", "tag: \"\"", "kubeRBACProxy.image", true),
    // grafana
    typo("grafana", "envs/live/default.yaml", "envs/live/default.yaml", "persistence:", "persistance:", "persistance:", "persistance", "persistence"),
    typo("grafana", "envs/live/ops.yaml", "envs/live/typo.yaml", "    enabled: true\n    searchNamespace", "    enabeld: true\n    searchNamespace", "enabeld:", "sidecar.dashboards.enabeld", "sidecar.dashboards.enabled"),
    typo("grafana", "envs/ci/default.yaml", "envs/ci/default.yaml", "adminPassword:", "adminPasword:", "adminPasword:", "adminPasword", "adminPassword"),
    typo("grafana", "envs/preview/pr-101.yaml", "envs/preview/typo.yaml", "podLabels:", "podLabel:", "podLabel:", "podLabel", "podLabels"),
    tag("grafana", "envs/live/ops.yaml", "envs/live/typo.yaml", "sidecar:\n  dashboards:", "sidecar:\n  image:\n    tag: \"\"\n  dashboards:", "tag: \"\"", "sidecar.image", true),
    // ingress-nginx
    typo("ingress-nginx", "envs/preview/shared.yaml", "envs/preview/typo.yaml", "  replicaCount: 2", "  replicaCont: 2", "replicaCont:", "controller.replicaCont", "controller.replicaCount"),
    typo("ingress-nginx", "envs/preview/shared.yaml", "envs/preview/typo.yaml", "controller:", "controler:", "controler:", "controler", "controller"),
    typo("ingress-nginx", "envs/live/edge.yaml", "envs/live/typo.yaml", "    digest: \"\"", "    digest: \"\"\n    tga: v1.11.3", "tga:", "controller.image.tga", "controller.image.tag"),
    tag("ingress-nginx", "envs/ci/kind.yaml", "envs/ci/typo.yaml", "  admissionWebhooks:", "  image:\n    tag: latest\n  admissionWebhooks:", "tag: latest", "controller.image", false),
    // computed keys
    typo("computed", "envs/live/main.yaml", "envs/live/typo.yaml", "replicaCount: 3", "replicaCont: 3", "replicaCont:", "replicaCont", "replicaCount"),
    typo("computed", "envs/preview/pr-3.yaml", "envs/preview/typo.yaml", "enabledConfigs:", "enabledConfig:", "enabledConfig:", "enabledConfig", "enabledConfigs"),
    typo("computed", "envs/live/default.yaml", "envs/live/default.yaml", "  tag: \"2.4.1\"", "  tga: \"2.4.1\"", "tga:", "image.tga", "image.tag"),
    // umbrella: one subchart under two aliases, a cache behind a condition
    typo("umbrella", "envs/live/eu-west.yaml", "envs/live/typo.yaml", "  replicaCount: 4", "  replicaCont: 4", "replicaCont:", "api.replicaCont", "api.replicaCount"),
    typo("umbrella", "envs/live/eu-west.yaml", "envs/live/typo.yaml", "    - name: metrics\n      containerPort", "    - name: metrics\n      containrPort", "containrPort:", "api.ports.1.containrPort", "api.ports.1.containerPort"),
    typo("umbrella", "envs/preview/pr-88.yaml", "envs/preview/typo.yaml", "      containerPort: 8080", "      containrPort: 8080", "containrPort:", "api.ports.0.containrPort", "api.ports.0.containerPort"),
    typo("umbrella", "envs/live/eu-west.yaml", "envs/live/typo.yaml", "  replicaCount: 2\n  image:\n    tag", "  replicaCount: 2\n  image:\n    tga", "tga:", "worker.image.tga", "worker.image.tag"),
    typo("umbrella", "envs/live/eu-west.yaml", "envs/live/typo.yaml", "cache:\n  persistence", "cache:\n  persistance", "persistance:", "cache.persistance", "cache.persistence"),
    tag("umbrella", "envs/ci/integration.yaml", "envs/ci/typo.yaml", "cache:\n  enabled: true", "cache:\n  enabled: true\n  image:\n    tag: \"\"", "tag: \"\"", "cache.image", true),
    // a library chart from file://
    typo("filedep", "envs/live/blue.yaml", "envs/live/typo.yaml", "  replicas: 2", "  replicsa: 2", "replicsa:", "worker.replicsa", "worker.replicas"),
    typo("filedep", "envs/live/default.yaml", "envs/live/default.yaml", "worker:\n  image:\n    tag", "worker:\n  image:\n    tga", "tga:", "worker.image.tga", "worker.image.tag"),
    typo("filedep", "envs/preview/mr-12.yaml", "envs/preview/typo.yaml", "web:", "wbe:", "wbe:", "wbe", "web"),
    tag("filedep", "envs/ci/pipeline.yaml", "envs/ci/typo.yaml", "web:\n", "web:\n  image:\n    tag: latest\n", "tag: latest", "web.image", false),
    // values.schema.json with $ref'd list items
    typo("schema", "envs/live/default.yaml", "envs/live/default.yaml", "  - name: https\n    containerPort", "  - name: https\n    containrPort", "containrPort:", "ports.1.containrPort", "ports.1.containerPort"),
    typo("schema", "envs/ci/default.yaml", "envs/ci/default.yaml", "ports:", "prots:", "prots:", "prots", "ports"),
    typo("schema", "envs/live/default.yaml", "envs/live/typo.yaml", "replicaCount: 3", "replicaCont: 3", "replicaCont:", "replicaCont", "replicaCount"),
    // cron jobs: a map of jobs read through `range $name, $job`
    typo("cron", "envs/live/ops.yaml", "envs/live/typo.yaml", "    timeZone", "    timeZnoe", "timeZnoe:", "jobs.cleanup.timeZnoe", "jobs.cleanup.timeZone"),
    typo("cron", "envs/ci/nightly.yaml", "envs/ci/typo.yaml", "    schedule:", "    schedul:", "schedul:", "jobs.cleanup.schedul", "jobs.cleanup.schedule"),
    tag("cron", "envs/ci/nightly.yaml", "envs/ci/typo.yaml", "jobs:", "image:\n  tag: latest\njobs:", "tag: latest", "image", false),
    // redis-like: hasKey, dig
    typo("kvstore", "envs/live/sessions.yaml", "envs/live/typo.yaml", "  persistence:", "  persistance:", "persistance:", "master.persistance", "master.persistence"),
    typo("kvstore", "envs/ci/functional.yaml", "envs/ci/typo.yaml", "auth:", "auht:", "auht:", "auht", "auth"),
    typo("kvstore", "envs/ci/functional.yaml", "envs/ci/typo.yaml", "  password", "  pasword", "pasword:", "auth.pasword", "auth.password"),
    tag("kvstore", "envs/live/sessions.yaml", "envs/live/typo.yaml", "metrics:\n  enabled: true", "metrics:\n  enabled: true\n  image:\n    tag: \"\"", "tag: \"\"", "metrics.image", true),
];

/// Writes the plant into a copy of its project; the expected (line, col) of the finding.
fn plant(root: &Path, p: &Plant) -> (u64, u64) {
    let src = std::fs::read_to_string(root.join(p.from)).unwrap();
    assert!(
        src.matches(p.old).count() == 1,
        "{} {}: `{}` must occur once",
        p.project,
        p.from,
        p.old
    );
    let planted = src.replacen(p.old, p.new, 1);
    std::fs::write(root.join(p.file), &planted).unwrap();
    let (line, text) = planted
        .lines()
        .enumerate()
        .find(|(_, l)| l.contains(p.at))
        .unwrap_or_else(|| panic!("{}: `{}` not in the planted file", p.project, p.at));
    (line as u64 + 1, text.find(p.at).unwrap() as u64 + 1)
}

#[test]
fn planted_mistakes_are_found_at_their_line() {
    let helm = helm();
    let mut failures = Vec::new();
    for p in PLANTS {
        let tmp = copy(p.project);
        let root = tmp.path();
        let (line, col) = plant(root, p);
        // Helm itself renders the planted file: it ignores unknown keys and takes any tag.
        if let Some(helm) = &helm {
            let chart = chart_dir(root);
            vendor_file_dependencies(helm, root, &chart);
            for t in targets(root)
                .iter()
                .filter(|t| t.layers.iter().any(|l| l == p.file))
            {
                if let Err(e) = helm_template(helm, root, &chart, t) {
                    failures.push(format!(
                        "{} {}: helm refuses the plant: {e}",
                        p.project, t.name
                    ));
                }
            }
        }
        let (code, doc) = validate(root);
        let fs = findings(&doc);
        let errors: Vec<Json> = fs
            .iter()
            .filter(|f| f["severity"] == "error")
            .cloned()
            .collect();
        let what = match p.expect {
            Expect::Typo(key, _) => format!("{} {}: `{key}`", p.project, p.file),
            Expect::Tag(path, _) => format!("{} {}: `{path}.tag`", p.project, p.file),
        };
        let [f] = errors.as_slice() else {
            failures.push(format!("{what}: expected one error, got:\n{}", shown(&fs)));
            continue;
        };
        let mut wrong = Vec::new();
        if code != Some(1) {
            wrong.push(format!("exit {code:?}"));
        }
        if f["location"]["file"] != p.file
            || f["location"]["line"] != line
            || f["location"]["col"] != col
        {
            wrong.push(format!("expected at {}:{line}:{col}", p.file));
        }
        let message = f["message"].as_str().unwrap_or("");
        let hint = f["hint"].as_str().unwrap_or("");
        match p.expect {
            Expect::Typo(key, right) => {
                if f["rule"] != "unknown-key" || !message.starts_with(&format!("`{key}` ")) {
                    wrong.push("expected unknown-key".into());
                }
                if hint != format!("did you mean `{right}`?") {
                    wrong.push(format!("expected the hint `did you mean `{right}`?`"));
                }
            }
            Expect::Tag(path, empty) => {
                let shown_tag = if empty {
                    "is empty and no template falls back".to_owned()
                } else {
                    "is `latest`".to_owned()
                };
                if f["rule"] != "image-tag"
                    || !message.starts_with(&format!("`{path}.tag` {shown_tag}"))
                {
                    wrong.push(format!("expected image-tag `{path}.tag` {shown_tag}"));
                }
            }
        }
        if !wrong.is_empty() {
            failures.push(format!(
                "{what}: {}; got:\n{}",
                wrong.join(", "),
                shown(&fs)
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} plants:\n{}",
        failures.len(),
        PLANTS.len(),
        failures.join("\n")
    );
}

/// The control for the clean runs above: with the template's fallback taken out, the same empty
/// tags are errors (so the corpus is clean because the fallbacks are recognised, not because the
/// tags go unchecked). (project, template, fallback text, replacement, tag paths then reported)
#[rustfmt::skip]
const WITHOUT_FALLBACK: &[(&str, &str, &str, &str, &[&str])] = &[
    ("create", "charts/webapp/templates/deployment.yaml", " | default .Chart.AppVersion", "", &["image"]),
    ("bitnami", "charts/nginx-lite/charts/common/templates/_images.tpl", "$termination = .chart.AppVersion | toString", "$termination = .imageRoot.tag | toString", &["image"]),
    ("components", "charts/toolbox/templates/_helpers.tpl", " | default $root.Chart.Version", "", &["image", "scheduler.image"]),
    ("exporter", "charts/prometheus-node-exporter/templates/_helpers.tpl", "(printf \"v%s\" .Chart.AppVersion)", "\"\"", &["image"]),
    ("grafana", "charts/grafana/templates/deployment.yaml", " | default .Chart.AppVersion", "", &["image"]),
    ("umbrella", "charts/platform/charts/service/templates/_helpers.tpl", "(.Values.image.tag | default .Chart.AppVersion)", ".Values.image.tag", &["api.image", "worker.image"]),
    ("filedep", "charts/shop-lib/templates/_deployment.tpl", " | default $top.Chart.AppVersion", "", &["web.image", "worker.image"]),
    ("schema", "charts/gateway/templates/deployment.yaml", " | default .Chart.AppVersion", "", &["image"]),
    ("cron", "charts/batch-jobs/templates/_helpers.tpl", "default .root.Chart.AppVersion (coalesce $image.tag .root.Values.image.tag)", "coalesce $image.tag .root.Values.image.tag", &["image"]),
    ("kvstore", "charts/kv-store/templates/_helpers.tpl", " | default .root.Chart.AppVersion", "", &["image"]),
];

#[test]
fn empty_tags_without_the_fallback_are_errors() {
    let mut failures = Vec::new();
    for (project, file, old, new, paths) in WITHOUT_FALLBACK {
        let tmp = copy(project);
        let path = tmp.path().join(file);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains(old), "{project} {file}: no `{old}`");
        std::fs::write(&path, text.replace(old, new)).unwrap();
        let (code, doc) = validate(tmp.path());
        let fs = findings(&doc);
        let errors: Vec<&Json> = fs.iter().filter(|f| f["severity"] == "error").collect();
        let tag_error = |p: &str| {
            let start = format!("`{p}.tag` is empty and no template falls back");
            move |f: &&Json| {
                f["rule"] == "image-tag" && f["message"].as_str().unwrap_or("").starts_with(&start)
            }
        };
        let ok = code == Some(1)
            && paths.iter().all(|p| errors.iter().any(tag_error(p)))
            && errors.iter().all(|f| paths.iter().any(|p| tag_error(p)(f)));
        if !ok {
            failures.push(format!(
                "{project} without its fallback ({paths:?}): exit {code:?}\n{}",
                shown(&fs)
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
