//! What stack keeps in the project's `.stack/` directory. Every path under it is named here and
//! nowhere else (a tidy test enforces it), and every file is written whole or not at all.
//!
//! Layout:
//! - `kubeconfig` — credentials of the clusters stack creates (never the user's kubeconfig);
//! - `clusters/<context>.json` — ownership record of a cluster stack created;
//! - `<provider>-<name>.yaml` — a provider config with stack's additions;
//! - `up/<context>/<namespace>/<release>.json` — the release record (fingerprint, revision);
//! - `up/<context>/<namespace>/<release>.intent.json` — an upgrade started, not yet recorded;
//! - `up/<release>.values.json` — generated image overrides passed to helm last;
//! - `diagnostics/<release>/` — what a failed rollout looked like;
//! - `cache/build/<image>.json` — the stat cache of a build context;
//! - `test/<profile>.values.json` — generated values of a test release (images, build metadata);
//! - `test/helm-registry.json` — helm's registry login for test runs (never the user's);
//! - `namespaces/<context>/<namespace>.json` — a namespace stack created (its UID);
//! - `artifacts/test-<profile>/` — diagnostics of a failed test run;
//! - `verify/<target>.json` — the result of `stack live verify` for an env target (`passed`, `at`,
//!   `revision`, the `images` tags and `chart` version it verified), which `stack promote` requires
//!   of its source env.

use std::io::Write;
use std::path::{Path, PathBuf};

/// The file that marks a diagnostics directory `stack test` writes (and may empty): a directory
/// without it is emptied only when it is empty.
pub const ARTIFACTS_MARKER: &str = ".stack-artifacts";

/// The state directory, relative to the project root.
pub const DIR: &str = ".stack";

/// Paths under one project's `.stack/`: `rel_*` are relative to the project root (as tools see
/// them with the root as working directory), the others absolute.
#[derive(Clone, Debug)]
pub struct State {
    root: PathBuf,
}

impl State {
    pub fn new(project_root: &Path) -> State {
        State {
            root: project_root.to_path_buf(),
        }
    }

    pub fn dir(&self) -> PathBuf {
        self.root.join(DIR)
    }

    /// The kubeconfig stack writes clusters' credentials into.
    pub fn rel_kubeconfig() -> String {
        format!("{DIR}/kubeconfig")
    }

    /// Ownership record of a cluster stack created.
    pub fn cluster_record(&self, context: &str) -> PathBuf {
        self.dir().join("clusters").join(format!("{context}.json"))
    }

    /// A provider config with stack's additions (e.g. `kind-stack.yaml`).
    pub fn rel_provider_config(provider: &str, name: &str) -> String {
        format!("{DIR}/{provider}-{name}.yaml")
    }

    /// The record of a release `stack up` deployed.
    pub fn release_record(&self, context: &str, namespace: &str, release: &str) -> PathBuf {
        self.dir()
            .join("up")
            .join(context)
            .join(namespace)
            .join(format!("{release}.json"))
    }

    /// An upgrade stack started and has not yet recorded (see `release::Intent`).
    pub fn release_intent(&self, context: &str, namespace: &str, release: &str) -> PathBuf {
        self.dir()
            .join("up")
            .join(context)
            .join(namespace)
            .join(format!("{release}.intent.json"))
    }

    /// Generated values (image references) passed to helm last.
    pub fn rel_overrides(release: &str) -> String {
        format!("{DIR}/up/{release}.values.json")
    }

    /// Diagnostics of a failed rollout.
    pub fn diagnostics(&self, release: &str) -> PathBuf {
        self.dir().join("diagnostics").join(release)
    }

    /// Generated values of a test release, passed to helm last.
    pub fn rel_test_values(profile: &str) -> String {
        format!("{DIR}/test/{profile}.values.json")
    }

    /// helm's registry config for test runs (`HELM_REGISTRY_CONFIG`).
    pub fn helm_registry_config(&self) -> PathBuf {
        self.dir().join("test").join("helm-registry.json")
    }

    /// The record of a namespace stack created.
    pub fn namespace_record(&self, context: &str, namespace: &str) -> PathBuf {
        self.dir()
            .join("namespaces")
            .join(context)
            .join(format!("{namespace}.json"))
    }

    /// Default diagnostics directory of a test run.
    pub fn test_artifacts(&self, profile: &str) -> PathBuf {
        self.dir().join("artifacts").join(format!("test-{profile}"))
    }

    /// The verify record of an env target (`ci/kind` → `.stack/verify/ci/kind.json`).
    pub fn rel_verify_record(target: &str) -> String {
        format!("{DIR}/verify/{target}.json")
    }

    /// The stat cache of an image's build context.
    pub fn build_cache(&self, image: &str) -> PathBuf {
        self.dir()
            .join("cache")
            .join("build")
            .join(format!("{image}.json"))
    }
}

/// Writes `contents` to `path` whole or not at all: a temp file in the same directory, flushed to
/// disk, renamed over the target, and the directory flushed so the rename survives a crash.
/// Parent directories are created. On failure the temp file is removed and the target untouched.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let name = path
        .file_name()
        .map_or("file".into(), |n| n.to_string_lossy());
    let tmp = dir.join(format!(".{name}.tmp{}", std::process::id()));
    let written = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(contents)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if written.is_err() {
        let _ = std::fs::remove_file(&tmp);
        return written;
    }
    // The rename is durable only once the directory entry is on disk.
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// [`write_atomic`] for a file stack owns, failing as a configuration error that names it.
pub fn write_file(path: &Path, text: &str) -> Result<(), crate::error::StackError> {
    write_atomic(path, text.as_bytes()).map_err(|e| {
        crate::error::StackError::config(
            None,
            format!("cannot write {}: {e}", path.display()),
            "check permissions",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn writes_whole_files_and_leaves_nothing_behind_on_failure() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("a/b/c.json");
        write_atomic(&p, b"one").unwrap();
        write_atomic(&p, b"two").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "two");
        // A target that is a directory cannot be replaced: the error comes back, no temp remains.
        std::fs::create_dir_all(d.path().join("a/b/dir")).unwrap();
        assert!(write_atomic(&d.path().join("a/b/dir"), b"x").is_err());
        let names: Vec<String> = std::fs::read_dir(d.path().join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        let mut names = names;
        names.sort();
        assert_eq!(names, ["c.json", "dir"]);
    }
}
