//! The diagnostics of a failed test run, written BEFORE anything is torn down, into the
//! artifacts directory (default `.stack/artifacts/test-<profile>/`, emptied first):
//!
//! ```text
//! events.txt, pods.txt, pods.json, deployments.json, logs/…, helm-status.json   (kube::diagnostics)
//! helm-history.json   every revision of the release
//! values.json         the values the release was deployed with (`helm get values --all`), secrets redacted
//! checks.json         every check's verdict, message and evidence
//! ```

use super::profile::Plan;
use crate::check::Outcome;
use crate::config::Project;
use crate::error::StackError;
use crate::release::Release;
use crate::tool::Host;
use serde::Serialize;
use std::path::Path;

use crate::state::ARTIFACTS_MARKER as MARKER;

#[derive(Clone, Debug, Serialize)]
pub struct Written {
    pub dir: String,
    pub files: Vec<String>,
    /// What could not be collected, and why.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub gaps: Vec<String>,
}

/// Empties `dir` for this run — only a directory stack made (its marker file) or an empty one:
/// `--artifacts ~` must never delete a home directory.
pub fn empty(dir: &Path) -> Result<(), StackError> {
    let refuse = |why: String| StackError::Usage {
        message: format!("cannot use {} for diagnostics: {why}", dir.display()),
        hint: Some("name a new or empty directory with --artifacts".into()),
    };
    if dir.exists() {
        let has_marker = dir.join(MARKER).is_file();
        let is_empty = std::fs::read_dir(dir)
            .map_err(|e| refuse(e.to_string()))?
            .next()
            .is_none();
        if !has_marker && !is_empty {
            return Err(refuse("it holds files stack did not write".into()));
        }
        if has_marker {
            std::fs::remove_dir_all(dir).map_err(|e| refuse(e.to_string()))?;
        }
    }
    std::fs::create_dir_all(dir).map_err(|e| refuse(e.to_string()))?;
    crate::state::write_atomic(
        &dir.join(MARKER),
        b"written by `stack test`; emptied at the start of each run\n",
    )
    .map_err(|e| refuse(e.to_string()))
}

/// Collects the diagnostics (best effort: what cannot be read is a gap, not an error).
pub fn collect(
    client: &::kube::Client,
    rel: &Release,
    plan: &Plan,
    dir: &Path,
    checks: &[Outcome],
    project: &Project,
    host: &Host,
) -> Result<Written, StackError> {
    let selector = format!("app.kubernetes.io/instance={}", plan.release);
    let helm = crate::kube::diagnostics::HelmStatus {
        runner: host.runner,
        cmd: rel.status_cmd(),
    };
    let collected = crate::rt::until_cancelled(
        "collecting diagnostics",
        crate::kube::diagnostics::collect(client, &plan.namespace, &selector, dir, Some(&helm)),
    )??;
    let mut files: Vec<String> = collected
        .files
        .iter()
        .map(|f| f.display().to_string())
        .collect();
    let mut gaps = collected.gaps;
    let mut write = |name: &str, text: String| -> Result<(), StackError> {
        crate::state::write_file(&dir.join(name), &text)?;
        files.push(name.to_owned());
        Ok(())
    };
    match rel.history() {
        Ok(h) => write(
            "helm-history.json",
            serde_json::to_string_pretty(&h).expect("JSON"),
        )?,
        Err(e) => gaps.push(format!("helm history: {e}")),
    }
    let values_cmd = rel.target.helm(
        rel.helm_path(),
        &["get", "values", &rel.name, "--all", "-o", "json"],
    );
    match host.runner.run(&values_cmd) {
        Ok(out) => match serde_json::from_str::<serde_json::Value>(&out.stdout) {
            Ok(mut v) => {
                redact(&mut v);
                write(
                    "values.json",
                    serde_json::to_string_pretty(&v).expect("JSON"),
                )?;
            }
            Err(e) => gaps.push(format!("helm get values: not JSON: {e}")),
        },
        Err(e) => gaps.push(format!("helm get values: {e}")),
    }
    write(
        "checks.json",
        serde_json::to_string_pretty(checks).expect("JSON"),
    )?;
    let shown = dir
        .strip_prefix(&project.root)
        .unwrap_or(dir)
        .display()
        .to_string();
    Ok(Written {
        dir: shown,
        files,
        gaps,
    })
}

/// Values under keys that name secrets (password, secret, token, key, credential, auth) become
/// `<redacted>`, at any depth.
fn redact(v: &mut serde_json::Value) {
    const WORDS: [&str; 7] = [
        "password",
        "passwd",
        "secret",
        "token",
        "credential",
        "apikey",
        "auth",
    ];
    match v {
        serde_json::Value::Object(m) => {
            for (k, child) in m.iter_mut() {
                let lower = k.to_ascii_lowercase().replace(['-', '_'], "");
                let secretish = WORDS.iter().any(|w| lower.contains(w)) || lower.ends_with("key");
                if secretish && !child.is_object() && !child.is_array() && !child.is_null() {
                    *child = serde_json::Value::String("<redacted>".into());
                } else {
                    redact(child);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn secret_looking_keys_are_redacted_at_any_depth() {
        let mut v = serde_json::json!({"db": {"password": "hunter2", "host": "db", "apiKey": "k", "auth": {"token": "t"}}, "replicas": 2});
        super::redact(&mut v);
        assert_eq!(
            v,
            serde_json::json!({"db": {"password": "<redacted>", "host": "db", "apiKey": "<redacted>", "auth": {"token": "<redacted>"}}, "replicas": 2})
        );
    }

    #[test]
    fn a_directory_with_foreign_files_is_never_emptied() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("precious"), "x").unwrap();
        assert!(super::empty(dir.path()).is_err());
        assert!(dir.path().join("precious").exists());
        let ours = dir.path().join("ours");
        super::empty(&ours).unwrap();
        std::fs::write(ours.join("events.txt"), "old").unwrap();
        super::empty(&ours).unwrap();
        assert!(!ours.join("events.txt").exists() && ours.join(super::MARKER).exists());
    }
}
