//! File watching for `stack up`: notify events → a fixed window opened by the first event and
//! closed 50 ms later (watchexec's figure; later events join it but never extend it, so a lone save
//! is seen within 50 ms and a save storm yields one batch per window instead of waiting for quiet)
//! → one batch of changed paths per window, filtered through each
//! root's ignore rules and editor/VCS noise.
//!
//! Invariant: a batch names each changed path once, relative to the root it belongs to, and says
//! whether it still exists (deletions are synced as deletions).

use crate::error::StackError;
use ignore::gitignore::Gitignore;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The window after the first event of a burst; events inside it join the same batch.
pub const DEBOUNCE: Duration = Duration::from_millis(50);

/// A watched directory and the paths under it that do not count.
pub struct Root {
    pub name: String,
    pub dir: PathBuf,
    pub ignore: Gitignore,
    /// Watch below `dir` too (image contexts), or only its direct entries (a single file's dir).
    pub recursive: bool,
}

/// One path that changed: relative to its root, and whether it exists now.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Change {
    pub rel: String,
    pub exists: bool,
}

/// Changes per root name, for one window.
pub type Batch = BTreeMap<String, Vec<Change>>;

/// Editor swap/backup files and VCS internals: never a change worth syncing.
fn is_noise(rel: &str) -> bool {
    let name = rel.rsplit('/').next().unwrap_or(rel);
    rel.split('/').any(|c| c == ".git" || c == ".hg" || c == ".svn")
        || name.ends_with('~')
        || name.ends_with(".swp")
        || name.ends_with(".swx")
        || name.ends_with(".tmp")
        || name.starts_with(".#")
        || name == "4913" // vim's write test file
        || name.starts_with(".goutputstream-")
}

/// A running watcher; dropping it stops watching.
pub struct Watcher {
    _inner: notify::RecommendedWatcher,
}

/// Starts watching `roots`; batches arrive on the returned channel (blocking `recv`).
pub fn start(roots: Vec<Root>) -> Result<(Watcher, mpsc::Receiver<Batch>), StackError> {
    let (raw_tx, raw_rx) = mpsc::channel::<notify::Result<notify::Event>>();
    let mut watcher = notify::recommended_watcher(move |ev| {
        let _ = raw_tx.send(ev);
    })
    .map_err(inotify_error)?;
    use notify::Watcher as _;
    for r in &roots {
        let mode = if r.recursive {
            notify::RecursiveMode::Recursive
        } else {
            notify::RecursiveMode::NonRecursive
        };
        watcher.watch(&r.dir, mode).map_err(inotify_error)?;
    }
    let (tx, rx) = mpsc::channel();
    std::thread::Builder::new()
        .name("stack-watch".into())
        .spawn(move || debounce(&roots, &raw_rx, &tx))
        .map_err(|e| {
            StackError::config(
                None,
                format!("cannot start the watcher thread: {e}"),
                "this is a bug; please report it",
            )
        })?;
    Ok((Watcher { _inner: watcher }, rx))
}

fn inotify_error(e: notify::Error) -> StackError {
    let text = e.to_string();
    let limit = matches!(e.kind, notify::ErrorKind::MaxFilesWatch)
        || text.contains("No space left on device")
        || text.contains("Too many open files");
    if limit {
        StackError::Unreachable {
            what: "file watching (inotify)".into(),
            hint: "the kernel's inotify limit is reached: `sudo sysctl fs.inotify.max_user_watches=524288 fs.inotify.max_user_instances=512` (persist it in /etc/sysctl.d/)".into(),
        }
    } else {
        StackError::config(
            None,
            format!("cannot watch files: {text}"),
            "check that the image contexts exist and are readable",
        )
    }
}

/// Collects raw events into batches: the window opens at the first event and closes `DEBOUNCE` later.
fn debounce(
    roots: &[Root],
    raw: &mpsc::Receiver<notify::Result<notify::Event>>,
    out: &mpsc::Sender<Batch>,
) {
    loop {
        let Ok(first) = raw.recv() else { return };
        let deadline = Instant::now() + DEBOUNCE;
        let mut paths: Vec<PathBuf> = Vec::new();
        collect(first, &mut paths);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match raw.recv_timeout(left) {
                Ok(ev) => collect(ev, &mut paths),
                Err(mpsc::RecvTimeoutError::Timeout) => break,
                Err(mpsc::RecvTimeoutError::Disconnected) => return,
            }
        }
        let batch = classify(roots, paths);
        if !batch.is_empty() && out.send(batch).is_err() {
            return;
        }
    }
}

fn collect(ev: notify::Result<notify::Event>, paths: &mut Vec<PathBuf>) {
    if let Ok(ev) = ev {
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        paths.extend(ev.paths);
    }
}

/// Which root each path belongs to, minus ignored paths and noise; directories are skipped
/// (their files arrive as their own events).
pub fn classify(roots: &[Root], paths: Vec<PathBuf>) -> Batch {
    let mut batch: Batch = BTreeMap::new();
    for p in paths {
        let Some(root) = roots.iter().find(|r| p.starts_with(&r.dir)) else {
            continue;
        };
        let rel = rel_path(&root.dir, &p);
        if rel.is_empty() || is_noise(&rel) {
            continue;
        }
        let exists = p.exists();
        if exists && p.is_dir() {
            continue;
        }
        if root
            .ignore
            .matched_path_or_any_parents(&rel, false)
            .is_ignore()
        {
            continue;
        }
        let changes = batch.entry(root.name.clone()).or_default();
        if let Some(c) = changes.iter_mut().find(|c| c.rel == rel) {
            c.exists = exists;
        } else {
            changes.push(Change { rel, exists });
        }
    }
    for changes in batch.values_mut() {
        changes.sort();
    }
    batch
}

fn rel_path(root: &Path, p: &Path) -> String {
    p.strip_prefix(root)
        .unwrap_or(p)
        .to_string_lossy()
        .replace('\\', "/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(dir: &Path, patterns: &[&str]) -> Root {
        let mut b = ignore::gitignore::GitignoreBuilder::new(dir);
        for p in patterns {
            b.add_line(None, p).unwrap();
        }
        Root {
            name: "app".into(),
            dir: dir.to_path_buf(),
            ignore: b.build().unwrap(),
            recursive: true,
        }
    }

    #[test]
    fn classify_filters_noise_and_ignores() {
        let d = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(d.path().join("src")).unwrap();
        std::fs::write(d.path().join("src/a.py"), "").unwrap();
        let r = root(d.path(), &["*.log"]);
        let paths = [
            "src/a.py",
            "src/a.py",
            "src/.a.py.swp",
            "x.log",
            ".git/index",
            "gone.txt",
            "src",
        ]
        .iter()
        .map(|p| d.path().join(p))
        .collect();
        let batch = classify(&[r], paths);
        assert_eq!(
            batch["app"],
            [
                Change {
                    rel: "gone.txt".into(),
                    exists: false
                },
                Change {
                    rel: "src/a.py".into(),
                    exists: true
                }
            ]
        );
    }

    #[test]
    fn a_burst_of_writes_is_one_batch() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().canonicalize().unwrap();
        let (_w, rx) = start(vec![root(&dir, &[])]).unwrap();
        for i in 0..5 {
            std::fs::write(dir.join(format!("f{i}")), "x").unwrap();
        }
        let batch = rx.recv_timeout(Duration::from_secs(5)).expect("a batch");
        let mut seen: Vec<String> = batch["app"].iter().map(|c| c.rel.clone()).collect();
        // Late events of the same burst may spill into a second window; all files are reported.
        while seen.len() < 5 {
            let more = rx
                .recv_timeout(Duration::from_secs(5))
                .expect("the rest of the burst");
            seen.extend(more["app"].iter().map(|c| c.rel.clone()));
            seen.sort();
            seen.dedup();
        }
        assert_eq!(seen, ["f0", "f1", "f2", "f3", "f4"]);
    }
}
