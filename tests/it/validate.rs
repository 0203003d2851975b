//! `stack validate envs` end to end: the built binary on the reference stack and on broken trees.
//! Human, JSON and GitHub outputs are pinned by snapshots (tests/it/snapshots/).

use crate::support;
use std::path::{Path, PathBuf};
use std::process::Output;

/// A copy of the reference stack (stack.yaml, charts/, envs/) without vendored archives.
fn reference_copy() -> tempfile::TempDir {
    let tmp = tempfile::tempdir().unwrap();
    let root = support::project_root();
    for item in ["stack.yaml", "charts", "envs"] {
        support::copy(&root.join(item), &tmp.path().join(item));
    }
    let _ = std::fs::remove_dir_all(tmp.path().join("charts/app/charts"));
    tmp
}

fn append(root: &Path, file: &str, text: &str) {
    let p = root.join(file);
    let mut old = std::fs::read_to_string(&p).unwrap_or_default();
    old.push_str(text);
    std::fs::write(p, old).unwrap();
}

fn stack(root: &Path, args: &[&str]) -> Output {
    stack_env(root, args, &[])
}

fn stack_env(root: &Path, args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut cmd = std::process::Command::new(support::stack_bin());
    cmd.current_dir(root)
        .args(args)
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// The broken fixture: one of each finding kind, across several files.
fn broken_tree() -> tempfile::TempDir {
    let tmp = reference_copy();
    let root = tmp.path();
    // A new ci target with typos, a wrong type, a YAML 1.1 boolean, a pattern violation, and no
    // image tags (forbidden for ci).
    append(
        root,
        "envs/ci/broken.yaml",
        "ingres:\n  enabled: true\nbackend-api:\n  replicaCont: 2\n  port: \"8001\"\ndotenv:\n  enabled: yes\n  name: App_Env\n",
    );
    // Duplicate key, a tag that policy forbids, a map where the chart has a string.
    append(
        root,
        "envs/preview/pr.yaml",
        "frontend:\n  image:\n    tag: latest\nfrontend:\n  image: latest\n",
    );
    // Chart.yaml edited without `helm dependency update`.
    let chart = root.join("charts/app/Chart.yaml");
    let edited = std::fs::read_to_string(&chart).unwrap().replacen(
        "version: 0.1.0\n    repository: file://../frontend",
        "version: 0.1.1\n    repository: file://../frontend",
        1,
    );
    std::fs::write(&chart, edited).unwrap();
    // The frontend's template uses its tag with no fallback: an empty tag deploys `repo:`.
    let deployment = root.join("charts/frontend/templates/deployment.yaml");
    let edited = std::fs::read_to_string(&deployment).unwrap().replace(
        "{{ .Values.image.tag | default .Chart.AppVersion }}",
        "{{ .Values.image.tag }}",
    );
    std::fs::write(&deployment, edited).unwrap();
    tmp
}

#[test]
fn reference_stack_is_clean() {
    let o = stack(support::project_root(), &["validate", "envs"]);
    assert_eq!(
        o.status.code(),
        Some(0),
        "stdout:\n{}\nstderr:\n{}",
        text(&o.stdout),
        text(&o.stderr)
    );
    let out = text(&o.stdout);
    assert!(out.contains("ci/kind charts/app/values.yaml → envs/aws.yaml → envs/ci/default.yaml → envs/ci/kind.yaml"), "{out}");
    assert!(out.contains("ok: 4 targets"), "{out}");
}

#[test]
fn broken_tree_human_output() {
    let tmp = broken_tree();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    insta::assert_snapshot!("broken_human", text(&o.stdout));
}

#[test]
fn broken_tree_json_output() {
    let tmp = broken_tree();
    let o = stack(tmp.path(), &["validate", "envs", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).expect("one JSON document");
    insta::assert_json_snapshot!("broken_json", doc);
}

#[test]
fn broken_tree_github_output_and_summary() {
    let tmp = broken_tree();
    let summary = tmp.path().join("summary.md");
    let o = stack_env(
        tmp.path(),
        &["validate", "envs", "--format", "github"],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    assert!(
        out.lines()
            .any(|l| l.starts_with("::error file=envs/ci/broken.yaml,line=")),
        "{out}"
    );
    insta::assert_snapshot!("broken_github", out);
    insta::assert_snapshot!(
        "broken_github_summary",
        std::fs::read_to_string(summary).unwrap()
    );
}

/// GitHub shows 10 errors per step and drops the rest silently: past 10, the findings are plain
/// log lines and one notice counts them; the step summary stays within the step's 1 MiB even when
/// the step already wrote most of it.
#[test]
fn github_output_keeps_within_what_github_shows() {
    let tmp = broken_tree();
    append(
        tmp.path(),
        "envs/ci/broken.yaml",
        "zzextra1: 1\nzzextra2: 2\nzzextra3: 3\nzzextra4: 4\nzzextra5: 5\n",
    );
    let summary = tmp.path().join("summary.md");
    let earlier = "earlier output of this step\n".repeat(1024 * 1024 / 28 - 40);
    std::fs::write(&summary, &earlier).unwrap();
    let o = stack_env(
        tmp.path(),
        &["validate", "envs", "--format", "github"],
        &[("GITHUB_STEP_SUMMARY", summary.to_str().unwrap())],
    );
    assert_eq!(o.status.code(), Some(1));
    let out = text(&o.stdout);
    let count = |p: &str| out.lines().filter(|l| l.starts_with(p)).count();
    assert_eq!(count("::error "), 10, "{out}");
    assert_eq!(count("::warning "), 1, "{out}");
    assert_eq!(count("error: envs/"), 5, "{out}");
    assert!(
        out.contains("::notice title=More than GitHub annotates::5 more errors are listed in the log above and in the step summary"),
        "{out}"
    );
    assert!(
        out.ends_with("stack validate envs: 15 errors, 1 warning in 5 targets\n"),
        "{out}"
    );
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.len() <= 1024 * 1024, "{}", written.len());
    assert!(written.starts_with(&earlier));
    assert!(
        written.contains("## stack validate envs — ❌ 15 errors, 1 warning"),
        "{}",
        &written[earlier.len()..]
    );
    assert!(
        written.contains("> **Truncated:**"),
        "{}",
        &written[earlier.len()..]
    );
}

#[test]
fn each_finding_kind_points_at_the_line_to_edit() {
    let tmp = broken_tree();
    let o = stack(tmp.path(), &["validate", "envs", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let findings = doc["findings"].as_array().unwrap();
    let at = |rule: &str, file: &str, line: u64| {
        findings.iter().any(|f| {
            f["rule"] == rule && f["location"]["file"] == file && f["location"]["line"] == line
        })
    };
    assert!(at("unknown-key", "envs/ci/broken.yaml", 1), "typo `ingres`");
    assert!(
        at("unknown-key", "envs/ci/broken.yaml", 4),
        "typo `replicaCont`"
    );
    assert!(
        !at("schema", "envs/ci/broken.yaml", 1),
        "one finding per typo, not a schema twin"
    );
    assert!(at("schema", "envs/ci/broken.yaml", 5), "port as string");
    assert!(at("schema", "envs/ci/broken.yaml", 8), "name pattern");
    assert!(
        at("yaml11-scalar", "envs/ci/broken.yaml", 7),
        "enabled: yes"
    );
    let tag_findings: Vec<&str> = findings
        .iter()
        .filter(|f| f["rule"] == "image-tag" && f["location"]["file"] == "envs/ci/broken.yaml")
        .map(|f| f["message"].as_str().unwrap())
        .collect();
    // An empty tag whose template falls back to .Chart.AppVersion is pinned (backend); one whose
    // template has no fallback blames the env file (frontend).
    assert_eq!(tag_findings.len(), 1, "{tag_findings:?}");
    assert!(
        tag_findings[0].starts_with("`frontend.image.tag` is empty and no template falls back"),
        "{tag_findings:?}"
    );
    assert!(at("duplicate-key", "envs/preview/pr.yaml", 13));
    assert!(at("type-mismatch", "envs/preview/pr.yaml", 14));
    assert!(at("lock-digest", "charts/app/Chart.lock", 11));
    let hint = findings
        .iter()
        .find(|f| f["rule"] == "unknown-key" && f["location"]["line"] == 1)
        .unwrap()["hint"]
        .as_str()
        .unwrap();
    assert!(hint.contains("did you mean `ingress`"), "{hint}");
}

#[test]
fn image_tag_policy_blames_the_env_not_the_chart() {
    let tmp = reference_copy();
    append(
        tmp.path(),
        "envs/live/acme-shop.yaml",
        "backend-ws:\n  image:\n    tag: latest\n",
    );
    let o = stack(tmp.path(), &["validate", "envs", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "image-tag")
        .expect("an image-tag finding");
    assert_eq!(f["location"]["file"], "envs/live/acme-shop.yaml");
    assert_eq!(f["targets"], serde_json::json!(["live/acme-shop"]));
    // local envs are not under the policy: `stack up` sets tags itself.
    let tmp = reference_copy();
    append(
        tmp.path(),
        "envs/local/dev.yaml",
        "frontend:\n  image:\n    tag: latest\n",
    );
    assert_eq!(
        stack(tmp.path(), &["validate", "envs"]).status.code(),
        Some(0)
    );
}

#[test]
fn only_targets_affected_by_changed_files() {
    let tmp = reference_copy();
    let o = stack(
        tmp.path(),
        &["validate", "envs", "--format", "json", "envs/ci/kind.yaml"],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["ci/kind"]);
    let o = stack(
        tmp.path(),
        &[
            "validate",
            "envs",
            "--format",
            "json",
            "envs/live/default.yaml",
            "envs/aws.yaml",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc["targets"].as_array().unwrap().len(),
        4,
        "the cloud file affects every target"
    );
    let o = stack(tmp.path(), &["validate", "envs", "README.md"]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).contains("nothing to validate"));
    let o = stack(
        tmp.path(),
        &[
            "validate",
            "envs",
            "--format",
            "json",
            "charts/backend/values.yaml",
        ],
    );
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(
        doc["targets"].as_array().unwrap().len(),
        4,
        "a chart change affects every target"
    );
}

#[test]
fn works_without_stack_yaml_and_with_absent_oci_subcharts() {
    // One chart under charts/, the envs/ convention, an OCI dependency that is not vendored.
    let tmp = tempfile::tempdir().unwrap();
    let r = tmp.path();
    std::fs::create_dir_all(r.join("charts/web")).unwrap();
    std::fs::create_dir_all(r.join("envs/dev")).unwrap();
    std::fs::write(
        r.join("charts/web/Chart.yaml"),
        "apiVersion: v2\nname: web\nversion: 1.0.0\ndependencies:\n  - name: redis\n    version: 19.0.0\n    repository: oci://registry.example.com/charts\n    condition: redis.enabled\n",
    )
    .unwrap();
    std::fs::write(
        r.join("charts/web/values.yaml"),
        "replicas: 1\nredis:\n  enabled: true\n",
    )
    .unwrap();
    std::fs::write(
        r.join("charts/web/values.schema.json"),
        r#"{"type":"object","properties":{"replicas":{"type":"integer"}}}"#,
    )
    .unwrap();
    std::fs::write(
        r.join("envs/dev/alice.yaml"),
        "replicas: two\nredis:\n  auth: {enabled: false}\n",
    )
    .unwrap();
    let o = stack(r, &["validate", "envs", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let rules: Vec<&str> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["rule"].as_str().unwrap())
        .collect();
    assert!(
        rules.contains(&"schema"),
        "top-level schema still checked: {rules:?}"
    );
    assert!(
        rules.contains(&"subchart-not-checked"),
        "says which subchart was not checked: {rules:?}"
    );
    assert!(
        rules.contains(&"lock-digest"),
        "no Chart.lock for declared dependencies: {rules:?}"
    );
    assert!(
        !rules.contains(&"unknown-key"),
        "keys under a dependency alias are not unknown: {rules:?}"
    );
    let human = text(&stack(r, &["validate", "envs"]).stdout);
    assert!(
        human.contains("helm dependency build charts/web"),
        "{human}"
    );
}

#[test]
fn bad_input_exit_codes() {
    // Malformed YAML: exit 2 with file:line:col.
    let tmp = reference_copy();
    std::fs::write(
        tmp.path().join("envs/ci/kind.yaml"),
        "backend-api:\n  image: [unclosed\n",
    )
    .unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("envs/ci/kind.yaml:"),
        "{}",
        text(&o.stderr)
    );

    // Missing cloud file: exit 2 naming the expected path.
    let tmp = reference_copy();
    let o = stack(tmp.path(), &["validate", "envs", "--cloud", "gcp"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("cloud values file not found: envs/gcp.yaml"),
        "{}",
        text(&o.stderr)
    );

    // Chart not found.
    let tmp = reference_copy();
    std::fs::write(
        tmp.path().join("stack.yaml"),
        "apiVersion: stack/v1\nchart:\n  path: charts/nope\n",
    )
    .unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("chart not found"),
        "{}",
        text(&o.stderr)
    );

    // Invalid schema JSON.
    let tmp = reference_copy();
    std::fs::write(
        tmp.path().join("charts/backend/values.schema.json"),
        "{ \"type\": \"object\",\n  oops }\n",
    )
    .unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("charts/backend/values.schema.json:2:"),
        "{}",
        text(&o.stderr)
    );

    // Unknown key in stack.yaml: exit 2 with line:col and a suggestion.
    let tmp = reference_copy();
    std::fs::write(
        tmp.path().join("stack.yaml"),
        "apiVersion: stack/v1\nenvs:\n  clod: aws\n",
    )
    .unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(2));
    let err = text(&o.stderr);
    assert!(
        err.contains("stack.yaml:3:3") && err.contains("did you mean `cloud`"),
        "{err}"
    );

    // Missing tool with --helm: exit 3.
    let tmp = reference_copy();
    let o = stack_env(
        tmp.path(),
        &["validate", "envs", "--helm"],
        &[("STACK_HELM", "/nonexistent/helm")],
    );
    assert_eq!(o.status.code(), Some(3));
    assert!(
        text(&o.stderr).contains("helm not found"),
        "{}",
        text(&o.stderr)
    );

    // Usage error from clap: exit 2.
    assert_eq!(
        stack(tmp.path(), &["validate", "envs", "--bogus"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn lock_digest_matches_helm_vectors() {
    use stack::values::{chart, lock};
    // Helm's own test vector (conditions, tags, import-values, an escaped `>=`), and the reference
    // chart's lock written by real `helm dependency update`.
    for dir in [
        support::project_root().join("tests/fixtures/chart-lock-1"),
        support::project_root().join("charts/app"),
    ] {
        let c = chart::load(&dir, "x").unwrap();
        let (_, doc) = chart::read_lock(&c).unwrap().unwrap();
        let deps: Vec<lock::DepFields> = c
            .subcharts
            .iter()
            .map(|s| lock::DepFields::from(&s.dep))
            .collect();
        let recorded = doc.root.value.as_map().unwrap()["digest"].value.clone();
        let computed = lock::digest(Some(&deps), lock::lock_dependencies(&doc.root).as_deref());
        assert_eq!(
            stack::yaml::Value::Str(computed),
            recorded,
            "{}",
            dir.display()
        );
    }
    let c = chart::load(
        &support::project_root().join("tests/fixtures/chart-lock-1"),
        "x",
    )
    .unwrap();
    let deps: Vec<lock::DepFields> = c
        .subcharts
        .iter()
        .map(|s| lock::DepFields::from(&s.dep))
        .collect();
    assert_eq!(
        lock::digest(
            Some(&deps),
            lock::lock_dependencies(&chart::read_lock(&c).unwrap().unwrap().1.root).as_deref()
        ),
        "sha256:131b1b5c969786f9da1a5cecf025ee4db2b3bb847bfc601750652ec1f7ee858f"
    );
}

#[test]
fn helm_deep_mode_reports_template_errors() {
    let helm = support::find_tool("helm");
    if !support::require("helm", helm.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let helm: PathBuf = helm.unwrap();
    let tmp = reference_copy();
    let run = |root: &Path| {
        stack_env(
            root,
            &["validate", "envs", "--helm", "--format", "json"],
            &[("STACK_HELM", helm.to_str().unwrap())],
        )
    };
    // Subcharts not vendored: helm cannot render; stack says how to vendor them.
    let o = run(tmp.path());
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "helm-template")
        .expect("helm-template finding");
    assert!(
        f["hint"]
            .as_str()
            .unwrap()
            .contains("helm dependency build charts/app"),
        "{f}"
    );
    // Vendored: every target renders.
    let b = std::process::Command::new(&helm)
        .current_dir(tmp.path())
        .args(["dependency", "build", "charts/app"])
        .output()
        .unwrap();
    assert!(b.status.success(), "{}", text(&b.stderr));
    let o = run(tmp.path());
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    // A template error surfaces as a finding for every target.
    std::fs::write(
        tmp.path().join("charts/app/templates/broken.yaml"),
        "{{ include \"missing.tpl\" . }}\n",
    )
    .unwrap();
    let o = run(tmp.path());
    assert_eq!(o.status.code(), Some(1));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let failed: Vec<&serde_json::Value> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "helm-template")
        .collect();
    assert_eq!(failed.len(), 4, "one per target: {failed:?}");
    for f in failed {
        assert!(
            f["message"].as_str().unwrap().contains("missing.tpl"),
            "{f}"
        );
        assert_eq!(f["targets"].as_array().unwrap().len(), 1);
    }
}

/// A chart archive `<name>-<version>.tgz` as `helm package` lays it out (`<name>/Chart.yaml`, ...).
fn write_chart_tgz(path: &Path, name: &str, version: &str) {
    let file = std::fs::File::create(path).unwrap();
    let mut tar = tar::Builder::new(flate2::write::GzEncoder::new(
        file,
        flate2::Compression::default(),
    ));
    for (rel, text) in [
        (
            "Chart.yaml",
            format!("apiVersion: v2\nname: {name}\nversion: {version}\n"),
        ),
        (
            "values.yaml",
            "image:\n  repository: x\n  tag: \"\"\n".to_owned(),
        ),
    ] {
        let mut header = tar::Header::new_gnu();
        header.set_size(text.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        tar.append_data(&mut header, format!("{name}/{rel}"), text.as_bytes())
            .unwrap();
    }
    tar.into_inner().unwrap().finish().unwrap();
}

#[test]
fn vendored_archives_must_match_the_lock() {
    let tmp = reference_copy();
    let charts = tmp.path().join("charts/app/charts");
    std::fs::create_dir_all(&charts).unwrap();
    write_chart_tgz(&charts.join("frontend-0.0.9.tgz"), "frontend", "0.0.9");
    write_chart_tgz(&charts.join("redis-1.0.0.tgz"), "redis", "1.0.0");
    let o = stack(tmp.path(), &["validate", "envs", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let vendored: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "vendored-chart")
        .map(|f| {
            format!(
                "{} {}",
                f["location"]["file"].as_str().unwrap(),
                f["message"].as_str().unwrap()
            )
        })
        .collect();
    assert!(
        vendored
            .iter()
            .any(|m| m.starts_with("charts/app/charts/frontend-0.0.9.tgz")
                && m.contains("Chart.lock pins 0.1.0")),
        "{vendored:?}"
    );
    assert!(
        vendored
            .iter()
            .any(|m| m.starts_with("charts/app/charts/redis-1.0.0.tgz")
                && m.contains("not in Chart.lock")),
        "{vendored:?}"
    );
}

#[test]
fn extra_targets_and_rule_levels_from_stack_yaml() {
    let tmp = reference_copy();
    let r = tmp.path();
    std::fs::write(
        r.join("charts/app/values.test.yaml"),
        "ingress:\n  enabled: true\n  host: test.local\n",
    )
    .unwrap();
    std::fs::write(
        r.join("charts/app/values.test.ci.yaml"),
        "dotenv:\n  enabled: on\n",
    )
    .unwrap();
    std::fs::write(
        r.join("stack.yaml"),
        "apiVersion: stack/v1\nproject: shop\nenvs:\n  cloud: aws\n  extraTargets:\n    - name: test-ci\n      type: test\n      layers: [charts/app/values.test.yaml, charts/app/values.test.ci.yaml]\nvalidate:\n  rules:\n    yaml11-scalar: error\n",
    )
    .unwrap();
    let o = stack(r, &["validate", "envs", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"test-ci"), "{names:?}");
    let f = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["rule"] == "yaml11-scalar")
        .expect("`on` flagged");
    assert_eq!(f["severity"], "error", "raised by validate.rules");
    assert_eq!(f["location"]["file"], "charts/app/values.test.ci.yaml");
    assert_eq!(o.status.code(), Some(1));

    std::fs::write(
        r.join("stack.yaml"),
        "apiVersion: stack/v1\nenvs:\n  cloud: aws\nvalidate:\n  rules:\n    yaml11-scalr: off\n",
    )
    .unwrap();
    let o = stack(r, &["validate", "envs"]);
    assert_eq!(
        o.status.code(),
        Some(2),
        "an unknown rule name is a configuration error"
    );
    let err = text(&o.stderr);
    assert!(
        err.contains("stack.yaml:6:5") && err.contains("did you mean `yaml11-scalar`"),
        "{err}"
    );

    // A bare `off` (YAML 1.1 false) turns a rule off.
    std::fs::write(
        r.join("stack.yaml"),
        "apiVersion: stack/v1\nenvs:\n  cloud: aws\nvalidate:\n  rules:\n    yaml11-scalar: off\n",
    )
    .unwrap();
    let o = stack(r, &["validate", "envs", "--format", "json"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .all(|f| f["rule"] != "yaml11-scalar"));
}

#[test]
fn schema_command_prints_the_checked_schema() {
    let o = stack(support::project_root(), &["schema"]);
    assert_eq!(o.status.code(), Some(0));
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(schema["title"], "stack.yaml");
    assert!(schema.to_string().contains("extraTargets"));
}

#[test]
fn helm_refuses_nan_and_inf_and_so_does_validate() {
    let tmp = reference_copy();
    let root = tmp.path();
    append(
        root,
        "envs/ci/kind.yaml",
        "limits:\n  ratio: .nan\n  list: [1, -.Inf]\n",
    );
    let out = stack(root, &["validate", "envs", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let refusals: Vec<String> = doc["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["rule"] == "helm-refuses")
        .map(|f| format!("{}:{}", f["location"]["line"], f["location"]["col"]))
        .collect();
    let base = std::fs::read_to_string(support::project_root().join("envs/ci/kind.yaml"))
        .unwrap()
        .lines()
        .count();
    assert_eq!(
        refusals,
        [format!("{}:3", base + 2), format!("{}:13", base + 3)]
    );
    // `stack values` shows nothing for a target Helm refuses: exit 1, the reason on stderr.
    let out = stack(root, &["values", "ci/kind"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert!(
        text(&out.stderr).contains("json: unsupported value: NaN"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn values_command_shows_what_the_templates_receive() {
    let tmp = reference_copy();
    let root = tmp.path();
    let out = stack(
        root,
        &[
            "values",
            "kind",
            "--format",
            "json",
            "--set",
            "backend-api.image.tag=9.9.9,global.n=010",
        ],
    );
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["backend-api"]["image"]["tag"], "9.9.9");
    // Globals are copied down into every subchart; `010` stays a string under --set.
    assert_eq!(v["frontend"]["global"]["n"], "010");
    assert_eq!(v["backend-api"]["global"]["cloud"], v["global"]["cloud"]);
    // --origin: each leaf with the file:line:col that set it.
    let out = stack(
        root,
        &[
            "values",
            "ci/kind",
            "--origin",
            "--set-string",
            "ingress.host=3",
        ],
    );
    let yaml = text(&out.stdout);
    assert!(
        yaml.starts_with("# charts/app/values.yaml → envs/aws.yaml → "),
        "{yaml}"
    );
    assert!(
        yaml.contains("  host: \"3\"  # (--set-string):1:9\n"),
        "{yaml}"
    );
    // A key the chart's schema forbids: Helm refuses to render, and so does `values`.
    let out = stack(root, &["values", "ci/kind", "--set-string", "replicas=3"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains("unexpected key(s) replicas"),
        "{}",
        text(&out.stderr)
    );
    assert!(yaml.contains("    cloud: aws  # envs/aws.yaml:"), "{yaml}");
    let out = stack(root, &["values", "ci/kind", "--origin", "--format", "json"]);
    let leaves: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    let tag = leaves
        .iter()
        .find(|l| l["path"] == serde_json::json!(["backend-api", "image", "tag"]))
        .unwrap();
    assert_eq!(tag["origin"]["file"], "envs/ci/kind.yaml");
    // Unknown target: did-you-mean, exit 2; a malformed --set: Helm's message, exit 2.
    let out = stack(root, &["values", "ci/knd"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("did you mean `ci/kind`?"),
        "{}",
        text(&out.stderr)
    );
    let out = stack(root, &["values", "ci/kind", "--set", "a"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("key \"a\" has no value"),
        "{}",
        text(&out.stderr)
    );
    let out = stack(root, &["validate", "envs", "--format", "yaml"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn parity_oci_requirement_and_exclude_globs_from_stack_yaml() {
    let tmp = reference_copy();
    let root = tmp.path();
    let cfg = std::fs::read_to_string(root.join("stack.yaml"))
        .unwrap()
        .replace(
            "  release: \"{{ project }}-{{ name }}\"\n",
            "  release: \"{{ project }}-{{ name }}\"\n  requireOci: true\n",
        )
        .replace(
            "envs:\n  cloud: aws\n",
            "envs:\n  cloud: aws\n  exclude: [\"envs/**/draft-*\"]\n  policy:\n    parity:\n      - types: [preview, live]\n        keys: [ingress.tls, backend-api.replicaCount]\n",
        );
    std::fs::write(root.join("stack.yaml"), cfg).unwrap();
    append(root, "envs/preview/pr.yaml", "ingress:\n  tls: false\n");
    let pr_lines = std::fs::read_to_string(root.join("envs/preview/pr.yaml"))
        .unwrap()
        .lines()
        .count();
    append(root, "envs/preview/draft-x.yaml", "whatever: [\n");
    append(
        root,
        "envs/preview/xdraft-y.yaml",
        "backend-api: {image: {tag: \"1.0.0\"}}\nfrontend: {image: {tag: \"1.0.0\"}}\n",
    );
    let out = stack(root, &["validate", "envs", "--format", "json"]);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}{}", text(&out.stdout), text(&out.stderr)));
    let targets: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    // The broken draft is excluded; `xdraft-y` only ends like the pattern and stays a target.
    assert!(!targets.contains(&"preview/draft-x"), "{targets:?}");
    assert!(targets.contains(&"preview/xdraft-y"), "{targets:?}");
    let by_rule = |rule: &str| -> Vec<String> {
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["rule"] == rule)
            .map(|f| {
                format!(
                    "{}:{} {}",
                    f["location"]["file"].as_str().unwrap(),
                    f["location"]["line"],
                    f["message"].as_str().unwrap()
                )
            })
            .collect()
    };
    // preview/pr turns TLS off where live and the other preview keep it on: pr is the odd one out,
    // reported at the line that set it; live's replicaCount 2 (its default.yaml) against 1.
    let parity = by_rule("env-parity");
    assert_eq!(parity.len(), 2, "{parity:?}");
    assert!(parity.contains(&format!("envs/preview/pr.yaml:{pr_lines} `ingress.tls` must agree across preview/live envs: preview/pr has false, live/acme-shop has true")), "{parity:?}");
    assert!(parity.iter().any(|p| p.starts_with("envs/live/default.yaml:7 `backend-api.replicaCount` must agree across preview/live envs: live/acme-shop has 2")), "{parity:?}");
    // Every file:// dependency, at its `repository:` line in Chart.yaml.
    let oci = by_rule("file-dependency");
    assert_eq!(oci.len(), 3, "{oci:?}");
    assert!(
        oci[0].starts_with(
            "charts/app/Chart.yaml:11 dependency `backend-api` comes from `file://../backend`"
        ),
        "{oci:?}"
    );
    assert_eq!(out.status.code(), Some(1));
}

#[test]
fn a_closed_stdout_pipe_ends_quietly() {
    // `stack validate envs | head -1` on a large repo: the reader goes away; stack must neither
    // print "Broken pipe" nor exit 2 (nor panic in println!).
    let tmp = reference_copy();
    for i in 0..3000 {
        append(
            tmp.path(),
            &format!("envs/ci/t{i:04}.yaml"),
            "backend-api: {image: {tag: \"1.0.0\"}}\n",
        );
    }
    let mut child = std::process::Command::new(support::stack_bin())
        .current_dir(tmp.path())
        .args(["validate", "envs"])
        .env("NO_COLOR", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // the reader is gone before stack writes its ~300 KB
    let out = child.wait_with_output().unwrap();
    assert_eq!(text(&out.stderr), "");
    assert_eq!(out.status.code(), Some(0));
}

#[test]
fn a_symlink_loop_under_envs_is_read_once() {
    let tmp = reference_copy();
    let root = tmp.path();
    // envs/ci/loop → envs/ : following it would find every target again, without end.
    std::os::unix::fs::symlink("..", root.join("envs/ci/loop")).unwrap();
    let out = stack(root, &["validate", "envs", "--format", "json"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let names: Vec<&str> = doc["targets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["ci/kind", "live/acme-shop", "local/dev", "preview/pr"]
    );
}

#[test]
fn a_nan_in_an_undeclared_subchart_is_refused_by_validate_as_by_values() {
    let tmp = reference_copy();
    let root = tmp.path();
    std::fs::create_dir_all(root.join("charts/app/charts/extra")).unwrap();
    append(
        root,
        "charts/app/charts/extra/Chart.yaml",
        "apiVersion: v2\nname: extra\nversion: 0.1.0\n",
    );
    append(root, "charts/app/charts/extra/values.yaml", "ratio: .nan\n");
    let out = stack(root, &["validate", "envs", "--format", "json"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(
        doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f["rule"] == "helm-refuses"
                && f["location"]["file"] == "charts/app/charts/extra/values.yaml"),
        "{doc}"
    );
    assert_eq!(stack(root, &["values", "ci/kind"]).status.code(), Some(1));
}

#[test]
fn an_alias_bomb_is_refused_like_malformed_yaml() {
    // "Billion laughs": go-yaml (Helm) refuses it as excessive aliasing; so does stack, at once.
    let tmp = reference_copy();
    let mut bomb = format!("a: &a [{}]\n", ["lol"; 9].join(", "));
    for (prev, name) in ('a'..='h').zip('b'..='i') {
        bomb += &format!(
            "{name}: &{name} [{}]\n",
            vec![format!("*{prev}"); 9].join(", ")
        );
    }
    std::fs::write(tmp.path().join("envs/ci/kind.yaml"), bomb).unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("envs/ci/kind.yaml:4:20") && err.contains("excessive aliasing"),
        "{err}"
    );
}

#[test]
fn values_nested_as_deep_as_helm_allows_are_validated_and_deeper_is_refused() {
    // go-yaml (Helm) reads up to 10 000 levels; stack's passes over values recurse, so this used
    // to overflow a worker thread's stack (abort, exit 134).
    let tmp = reference_copy();
    let deep = |n: usize| format!("backend-api:\n  deep:\n    {}x\n", "- ".repeat(n));
    std::fs::write(tmp.path().join("envs/ci/kind.yaml"), deep(9_000)).unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(text(&o.stdout).contains("deep"), "{}", text(&o.stdout));
    // The chart's schema refuses the key (as Helm would): a refusal, not a crash.
    let o = stack(tmp.path(), &["values", "ci/kind", "--format", "json"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    assert!(
        text(&o.stdout).contains("unexpected key(s) deep"),
        "{}",
        text(&o.stdout)
    );

    std::fs::write(tmp.path().join("envs/ci/kind.yaml"), deep(10_001)).unwrap();
    let o = stack(tmp.path(), &["validate", "envs"]);
    assert_eq!(o.status.code(), Some(2), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("envs/ci/kind.yaml:3:") && err.contains("exceeded max depth of 10000"),
        "{err}"
    );
}
