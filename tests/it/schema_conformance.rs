//! Schema validation conformance against real Helm: for each case, `helm template` either accepts
//! the values or fails with "values don't meet the specifications of the schema(s)"; `stack
//! validate envs` must report a schema finding exactly when Helm fails (drafts by `$schema`, default
//! 2020-12, format as annotation, subchart schemas under their alias with `global`, disabled
//! subcharts skipped).

use crate::support;
use std::path::Path;

const DRAFT7: &str = "http://json-schema.org/draft-07/schema#";

/// (case, parent schema, subchart schema, env file, helm fails?)
const CASES: &[(&str, &str, &str, &str, bool)] = &[
    (
        "valid values pass",
        r#"{"type":"object","properties":{"replicas":{"type":"integer"}}}"#,
        "{}",
        "replicas: 2\n",
        false,
    ),
    (
        "type violation",
        r#"{"type":"object","properties":{"replicas":{"type":"integer"}}}"#,
        "{}",
        "replicas: two\n",
        true,
    ),
    (
        "1.0 is an integer",
        r#"{"type":"object","properties":{"replicas":{"type":"integer"}}}"#,
        "{}",
        "replicas: 1.0\n",
        false,
    ),
    (
        "YAML 1.1 yes is a boolean",
        r#"{"type":"object","properties":{"flag":{"type":"boolean"}}}"#,
        "{}",
        "flag: yes\n",
        false,
    ),
    (
        "0755 is a number",
        r#"{"type":"object","properties":{"mode":{"type":"string"}}}"#,
        "{}",
        "mode: 0755\n",
        true,
    ),
    (
        "required property missing",
        r#"{"type":"object","required":["name"]}"#,
        "{}",
        "other: 1\n",
        true,
    ),
    (
        "minimum",
        r#"{"type":"object","properties":{"replicas":{"minimum":1}}}"#,
        "{}",
        "replicas: 0\n",
        true,
    ),
    (
        "pattern",
        r#"{"type":"object","properties":{"name":{"pattern":"^[a-z]+$"}}}"#,
        "{}",
        "name: Abc\n",
        true,
    ),
    (
        "enum",
        r#"{"type":"object","properties":{"tier":{"enum":["a","b"]}}}"#,
        "{}",
        "tier: c\n",
        true,
    ),
    (
        "additionalProperties false",
        r#"{"type":"object","additionalProperties":false,"properties":{"replicas":{}}}"#,
        "{}",
        "replicas: 1\nextra: 2\n",
        true,
    ),
    (
        "2020-12 by default: prefixItems applies",
        r#"{"type":"object","properties":{"pair":{"prefixItems":[{"type":"string"}]}}}"#,
        "{}",
        "pair: [1]\n",
        true,
    ),
    (
        "draft-07 by $schema: prefixItems is unknown there",
        const_format_draft7(),
        "{}",
        "pair: [1]\n",
        false,
    ),
    (
        "format is an annotation",
        r#"{"type":"object","properties":{"mail":{"format":"email"}}}"#,
        "{}",
        "mail: not-an-email\n",
        false,
    ),
    (
        "subchart schema under its alias",
        "{}",
        r#"{"type":"object","properties":{"port":{"type":"integer"}}}"#,
        "sub-a:\n  port: http\n",
        true,
    ),
    (
        "subchart schema must allow global",
        "{}",
        r#"{"type":"object","additionalProperties":false,"properties":{"port":{}}}"#,
        "sub-a:\n  port: 1\n",
        true,
    ),
    (
        "disabled subchart is not validated",
        "{}",
        r#"{"type":"object","properties":{"port":{"type":"integer"}},"required":["port"]}"#,
        "sub-a:\n  enabled: false\n  port: http\nsub-b:\n  enabled: false\n  port: http\n",
        false,
    ),
    (
        "null deletes before validation",
        r#"{"type":"object","properties":{"keep":{"type":"string"}}}"#,
        "{}",
        "keep: null\n",
        false,
    ),
];

const fn const_format_draft7() -> &'static str {
    r#"{"$schema":"http://json-schema.org/draft-07/schema#","type":"object","properties":{"pair":{"prefixItems":[{"type":"string"}]}}}"#
}

fn write(root: &Path, parent_schema: &str, sub_schema: &str, env: &str) {
    let files: &[(&str, &str)] = &[
        (
            "charts/p/Chart.yaml",
            "apiVersion: v2\nname: p\nversion: 0.1.0\ndependencies:\n  - name: sub\n    alias: sub-a\n    version: 0.1.0\n    condition: sub-a.enabled\n  - name: sub\n    alias: sub-b\n    version: 0.1.0\n    condition: sub-b.enabled\n",
        ),
        ("charts/p/values.yaml", "keep: k\n"),
        ("charts/p/values.schema.json", parent_schema),
        ("charts/p/charts/sub/Chart.yaml", "apiVersion: v2\nname: sub\nversion: 0.1.0\n"),
        ("charts/p/charts/sub/values.yaml", "port: 80\n"),
        ("charts/p/charts/sub/values.schema.json", sub_schema),
        ("charts/p/templates/cm.yaml", "# {{ .Values | toJson }}\n"),
        ("envs/dev/a.yaml", env),
    ];
    for (p, t) in files {
        let p = root.join(p);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, t).unwrap();
    }
}

#[test]
fn schema_findings_match_helm_failures() {
    let helm = support::find_tool("helm");
    if !support::require("helm", helm.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let helm = helm.unwrap();
    assert!(DRAFT7.contains("draft-07"));
    let mut failures = Vec::new();
    for (name, parent, sub, env, helm_fails) in CASES {
        let tmp = tempfile::tempdir().unwrap();
        write(tmp.path(), parent, sub, env);
        let h = std::process::Command::new(&helm)
            .current_dir(tmp.path())
            .args(["template", "t", "charts/p", "-f", "envs/dev/a.yaml"])
            .output()
            .unwrap();
        let helm_failed = !h.status.success();
        let helm_err = String::from_utf8_lossy(&h.stderr);
        if helm_failed != *helm_fails {
            failures.push(format!(
                "{name}: expected helm to {}: {helm_err}",
                if *helm_fails { "fail" } else { "pass" }
            ));
            continue;
        }
        if helm_failed {
            assert!(
                helm_err.contains("values don't meet the specifications"),
                "{name}: helm failed otherwise: {helm_err}"
            );
        }
        let s = std::process::Command::new(support::stack_bin())
            .current_dir(tmp.path())
            .args(["validate", "envs", "--format", "json"])
            .output()
            .unwrap();
        let doc: serde_json::Value = serde_json::from_slice(&s.stdout).unwrap_or_else(|e| {
            panic!(
                "{name}: {e}: {}{}",
                String::from_utf8_lossy(&s.stdout),
                String::from_utf8_lossy(&s.stderr)
            )
        });
        // A key the schema forbids is reported once, as unknown-key (with its "did you mean").
        let schema_findings: Vec<&serde_json::Value> = doc["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| {
                f["severity"] == "error" && (f["rule"] == "schema" || f["rule"] == "unknown-key")
            })
            .collect();
        if schema_findings.is_empty() == helm_failed {
            failures.push(format!(
                "{name}: helm {}, stack schema findings: {schema_findings:?}",
                if helm_failed { "failed" } else { "passed" }
            ));
        }
        for f in &schema_findings {
            assert!(
                f["location"]["file"].is_string(),
                "{name}: every schema finding has a location: {f}"
            );
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases disagree with helm:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}
