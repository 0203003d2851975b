//! Live sync into running containers through the exec API (no kubectl subprocess): changed files
//! are streamed as a tar into `tar -x -f - -C <dest>`, deleted ones removed with `rm -f --`.
//! A sync never replaces the pod.

use crate::error::StackError;
use k8s_openapi::api::core::v1::Pod;
use kube::api::{Api, AttachParams};
use std::path::PathBuf;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// tar's default record size (blocking factor 20 × 512).
const TAR_RECORD: usize = 10240;

/// What to sync into one destination directory of a container.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SyncSet {
    /// The directory in the container, e.g. `/app/public`.
    pub dest: String,
    /// (local file, path relative to `dest`)
    pub files: Vec<(PathBuf, String)>,
    /// Paths relative to `dest` that were deleted locally.
    pub deletes: Vec<String>,
    /// Commands to run in the container afterwards (each an argv).
    pub run: Vec<Vec<String>>,
}

/// Runs one command in a container, feeding `stdin`; fails with its stderr when it fails.
async fn exec(
    pods: &Api<Pod>,
    pod: &str,
    container: &str,
    command: Vec<String>,
    stdin: Option<Vec<u8>>,
) -> Result<(), String> {
    let ap = AttachParams::default()
        .container(container)
        .stdin(stdin.is_some())
        .stdout(false)
        .stderr(true);
    let mut proc = pods
        .exec(pod, command.clone(), &ap)
        .await
        .map_err(|e| format!("exec {command:?} in {pod}/{container}: {e}"))?;
    let status = proc.take_status();
    let mut stderr = proc.stderr();
    if let (Some(data), Some(mut w)) = (stdin, proc.stdin()) {
        w.write_all(&data)
            .await
            .map_err(|e| format!("writing to {pod}/{container}: {e}"))?;
        w.shutdown()
            .await
            .map_err(|e| format!("closing stdin of {pod}/{container}: {e}"))?;
    }
    let mut err_text = String::new();
    if let Some(r) = stderr.as_mut() {
        let _ = r.read_to_string(&mut err_text).await;
    }
    let status = match status {
        Some(s) => s.await,
        None => None,
    };
    let _ = proc.join().await;
    match status {
        Some(s) if s.status.as_deref() == Some("Success") => Ok(()),
        Some(s) => Err(format!(
            "{} in {pod}/{container} failed: {}{}",
            command.join(" "),
            s.message.unwrap_or_default(),
            if err_text.is_empty() {
                String::new()
            } else {
                format!(" ({})", err_text.trim())
            }
        )),
        None => Err(format!(
            "{} in {pod}/{container}: no exit status",
            command.join(" ")
        )),
    }
}

/// Applies `set` to one container. The tar is built in memory: sync sets are edits, not trees.
pub async fn apply(
    client: &kube::Client,
    namespace: &str,
    pod: &str,
    container: &str,
    set: &SyncSet,
) -> Result<(), StackError> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let fail = |message: String| StackError::Unreachable {
        what: format!("container {container} of pod {pod}"),
        hint: format!(
            "live sync failed: {message}; the container needs `tar` (and `rm`) for live sync"
        ),
    };
    if !set.files.is_empty() {
        let mut tar = tar::Builder::new(Vec::new());
        tar.follow_symlinks(false);
        for (local, rel) in &set.files {
            tar.append_path_with_name(local, rel)
                .map_err(|e| fail(format!("reading {}: {e}", local.display())))?;
        }
        let mut bytes = tar.into_inner().map_err(|e| fail(e.to_string()))?;
        // Pad to tar's 10240-byte record, as `tar -c` does: `tar -x` then stops at the end-of-archive
        // blocks by itself, even where the exec transport never delivers stdin EOF (exec protocols
        // before v5, and simulated runtimes).
        bytes.resize(bytes.len().div_ceil(TAR_RECORD) * TAR_RECORD, 0);
        let cmd = ["tar", "-x", "-f", "-", "-C", &set.dest]
            .iter()
            .map(|s| s.to_string())
            .collect();
        exec(&pods, pod, container, cmd, Some(bytes))
            .await
            .map_err(fail)?;
    }
    if !set.deletes.is_empty() {
        let mut cmd: Vec<String> = ["rm", "-f", "--"].iter().map(|s| s.to_string()).collect();
        cmd.extend(
            set.deletes
                .iter()
                .map(|d| format!("{}/{d}", set.dest.trim_end_matches('/'))),
        );
        exec(&pods, pod, container, cmd, None).await.map_err(fail)?;
    }
    for step in &set.run {
        exec(&pods, pod, container, step.clone(), None)
            .await
            .map_err(fail)?;
    }
    Ok(())
}
