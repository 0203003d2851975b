//! Shared test helpers: test tiers, paths, running the built binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// Whether CI demands every component (`STACK_TEST_REQUIRE=all`) or a listed one (`helm,docker`).
fn required(component: &str) -> bool {
    match std::env::var("STACK_TEST_REQUIRE") {
        Ok(v) => v
            .split(',')
            .any(|c| c.trim() == "all" || c.trim() == component),
        Err(_) => false,
    }
}

/// Call at the top of a test that needs `component`. `available` says whether it is here.
/// Returns false (after printing why) when the test should be skipped; panics when CI requires it.
pub fn require(component: &str, available: Result<(), String>) -> bool {
    match available {
        Ok(()) => true,
        Err(why) if required(component) => {
            panic!("needs {component}, required by STACK_TEST_REQUIRE, but: {why}")
        }
        Err(why) => {
            eprintln!(
                "SKIPPED: needs {component}: {why} (set STACK_TEST_REQUIRE=all to fail instead)"
            );
            false
        }
    }
}

/// Finds an executable: `$STACK_<NAME>` first, then PATH, then the xtask cache.
pub fn find_tool(name: &str) -> Result<PathBuf, String> {
    let var = format!("STACK_{}", name.to_uppercase());
    if let Some(p) = std::env::var_os(&var) {
        return Ok(PathBuf::from(p));
    }
    if let Ok(p) = which::which(name) {
        return Ok(p);
    }
    let home = std::env::var_os("HOME").unwrap_or_default();
    let cache = std::env::var_os("STACK_DEV_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(home).join(".cache/stack-dev"));
    let p = cache.join("bin").join(name);
    if p.exists() {
        return Ok(p);
    }
    Err(format!(
        "`{name}` not found on PATH, in ${var} or in {} (run `cargo xtask setup`)",
        cache.display()
    ))
}

pub fn project_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The built `stack` binary.
pub fn stack_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_stack"))
}

/// The running rig's environment (`cargo xtask rig env`), read from `$STACK_DEV_CACHE/rig/env`
/// (default `~/.cache/stack-dev/rig/env`): variables, and the pinned tools' directory from PATH.
pub struct RigEnv {
    pub vars: std::collections::BTreeMap<String, String>,
    pub bin_dir: PathBuf,
}

pub fn rig_env() -> Result<RigEnv, String> {
    let cache = std::env::var_os("STACK_DEV_CACHE")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default()).join(".cache/stack-dev")
        });
    let file = cache.join("rig/env");
    let text = std::fs::read_to_string(&file)
        .map_err(|e| format!("no rig env file {}: {e}", file.display()))?;
    let mut vars = std::collections::BTreeMap::new();
    let mut bin_dir = cache.join("bin");
    for line in text.lines() {
        let Some((key, value)) = line.strip_prefix("export ").and_then(|l| l.split_once('='))
        else {
            continue;
        };
        if key == "PATH" {
            bin_dir = PathBuf::from(value.trim_end_matches(":\"$PATH\""));
        } else {
            vars.insert(key.to_string(), value.to_string());
        }
    }
    Ok(RigEnv { vars, bin_dir })
}

/// The rig's Docker daemon, when it answers: its DOCKER_HOST.
pub fn rig_docker() -> Result<String, String> {
    let env = rig_env()?;
    let host = env
        .vars
        .get("DOCKER_HOST")
        .cloned()
        .ok_or("the rig env has no DOCKER_HOST")?;
    let out = std::process::Command::new("docker")
        .args(["-H", &host, "version", "--format", "{{.Server.Version}}"])
        .output()
        .map_err(|e| format!("docker CLI: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "the rig's dockerd at {host} does not answer (run `cargo xtask rig up`)"
        ));
    }
    Ok(host)
}

/// Copies a file or a directory tree.
pub fn copy(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for e in std::fs::read_dir(from).unwrap().flatten() {
            copy(&e.path(), &to.join(e.file_name()));
        }
    } else {
        std::fs::copy(from, to).unwrap();
    }
}

/// `value` with every occurrence of each `from` in its strings (and keys) replaced by `to`: the
/// machine-specific parts of a report (temp dirs, random namespaces, ports) before a snapshot.
pub fn redact(value: &serde_json::Value, pairs: &[(&str, &str)]) -> serde_json::Value {
    use serde_json::Value;
    let text = |s: &str| {
        pairs
            .iter()
            .fold(s.to_owned(), |acc, (from, to)| acc.replace(from, to))
    };
    match value {
        Value::String(s) => Value::String(text(s)),
        Value::Array(items) => Value::Array(items.iter().map(|v| redact(v, pairs)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| (text(k), redact(v, pairs)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// A temp directory for a test against the rig's dockerd, with an id unique to this process and
/// directory (`<prefix><pid><dir>`) to prefix image names, so parallel tests and earlier runs never
/// share images. `None` (the test skips, or fails under STACK_TEST_REQUIRE) without the rig's Docker.
pub struct DockerDir {
    pub dir: tempfile::TempDir,
    pub docker_host: String,
    pub id: String,
}

pub fn docker_dir(prefix: &str) -> Option<DockerDir> {
    let host = rig_docker();
    if !require("docker", host.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    let dir = tempfile::tempdir().unwrap();
    let id = format!(
        "{prefix}{}{}",
        std::process::id(),
        dir.path()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .to_lowercase()
            .replace(['.', '_'], "")
    );
    Some(DockerDir {
        dir,
        docker_host: host.unwrap(),
        id,
    })
}
