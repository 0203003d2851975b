//! A build context: the files Docker will see (after `.dockerignore` and the image's own ignore
//! patterns), their content hash, and the tar stream sent to the daemon.
//!
//! Invariant: the hash covers exactly what the tar carries (paths, modes, contents) — the same
//! walk feeds both. Unchanged files are not re-read: a stat cache (size, mtime, inode) remembers
//! each file's hash, like git's index; a file modified within the cache's own timestamp second is
//! re-hashed ("racily clean"), so an edit is never missed.

use crate::error::StackError;
use ignore::gitignore::{Gitignore, GitignoreBuilder};
use rayon::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

/// One file of the context.
#[derive(Debug, Clone)]
pub struct Entry {
    /// Path relative to the context root, `/`-separated.
    pub rel: String,
    pub abs: PathBuf,
    pub mode: u32,
    pub size: u64,
    pub mtime_ns: i128,
    pub ino: u64,
    /// Symlink target, when the entry is a symlink (sent as a link, never followed).
    pub link: Option<PathBuf>,
}

/// The files of a context and the patterns that selected them.
#[derive(Debug, Clone)]
pub struct Context {
    pub root: PathBuf,
    pub entries: Vec<Entry>,
}

/// Finds `rel` under `base`; when a component does not exist with that exact name, a unique
/// case-insensitive match is used (sibling repos are `../Backend` on one laptop, `../backend` on another).
pub fn resolve_dir(base: &Path, rel: &str) -> Option<PathBuf> {
    let mut cur = base.to_path_buf();
    for comp in Path::new(rel).components() {
        match comp {
            Component::ParentDir => cur.push(".."),
            Component::CurDir => {}
            Component::RootDir => cur = PathBuf::from("/"),
            Component::Normal(name) => {
                let exact = cur.join(name);
                if exact.exists() {
                    cur = exact;
                    continue;
                }
                let wanted = name.to_string_lossy().to_lowercase();
                let matches: Vec<PathBuf> = std::fs::read_dir(&cur)
                    .ok()?
                    .flatten()
                    .filter(|e| e.file_name().to_string_lossy().to_lowercase() == wanted)
                    .map(|e| e.path())
                    .collect();
                match matches.as_slice() {
                    [one] => cur = one.clone(),
                    _ => return None,
                }
            }
            Component::Prefix(_) => return None,
        }
    }
    cur.is_dir().then_some(cur)
}

/// The matcher for a context: `.dockerignore` (patterns anchored at the context root, as Docker
/// reads them) plus the image's own patterns (gitignore syntax, at any depth).
pub fn ignore_matcher(root: &Path, extra: &[String]) -> Result<Gitignore, StackError> {
    let mut b = GitignoreBuilder::new(root);
    if let Ok(text) = std::fs::read_to_string(root.join(".dockerignore")) {
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (neg, pat) = match line.strip_prefix('!') {
                Some(p) => ("!", p.trim()),
                None => ("", line),
            };
            // Docker cleans the pattern (`./a`, `/a` → `a`) and matches it from the root only.
            let pat = pat.trim_start_matches("./").trim_start_matches('/');
            b.add_line(None, &format!("{neg}/{pat}")).map_err(|e| {
                StackError::config(
                    None,
                    format!("{}/.dockerignore: {e}", root.display()),
                    "fix the pattern",
                )
            })?;
        }
    }
    for p in extra {
        b.add_line(None, p).map_err(|e| {
            StackError::config(
                None,
                format!("images.*.ignore `{p}`: {e}"),
                "use gitignore syntax",
            )
        })?;
    }
    b.build()
        .map_err(|e| StackError::config(None, e.to_string(), "fix the ignore patterns"))
}

/// Walks the context in path order, skipping ignored files. The Dockerfile is always included
/// (Docker needs it even when `.dockerignore` names it).
pub fn walk(root: &Path, ignore: &Gitignore, dockerfile_rel: &str) -> Result<Context, StackError> {
    let walker = Walker {
        root,
        ignore,
        dockerfile_rel,
    };
    let mut entries = walker.dir(root)?;
    entries.sort_by(|a, b| a.rel.cmp(&b.rel));
    Ok(Context {
        root: root.to_path_buf(),
        entries,
    })
}

struct Walker<'a> {
    root: &'a Path,
    ignore: &'a Gitignore,
    dockerfile_rel: &'a str,
}

impl Walker<'_> {
    fn ignored(&self, rel: &str, is_dir: bool) -> bool {
        if self.ignore.is_empty() || rel == self.dockerfile_rel {
            return false;
        }
        if self.ignore.num_whitelists() == 0 {
            // Ignored directories are never entered, so the parents of `rel` are known to be kept.
            self.ignore.matched(rel, is_dir).is_ignore()
        } else {
            self.ignore
                .matched_path_or_any_parents(rel, is_dir)
                .is_ignore()
        }
    }

    /// The files under `dir`; subdirectories are walked in parallel.
    fn dir(&self, dir: &Path) -> Result<Vec<Entry>, StackError> {
        let read = std::fs::read_dir(dir).map_err(|e| {
            StackError::config(
                None,
                format!("cannot read {}: {e}", dir.display()),
                "check permissions",
            )
        })?;
        let mut files = Vec::new();
        let mut subdirs = Vec::new();
        for entry in read.flatten() {
            let abs = entry.path();
            let rel = abs
                .strip_prefix(self.root)
                .unwrap_or(&abs)
                .to_string_lossy()
                .replace('\\', "/");
            let Ok(meta) = std::fs::symlink_metadata(&abs) else {
                continue;
            };
            let is_dir = meta.is_dir();
            if self.ignored(&rel, is_dir) {
                // An ignored directory can still hold re-included (`!`) files; descend only if the
                // matcher has negations at all.
                if !(is_dir && self.ignore.num_whitelists() > 0) {
                    continue;
                }
            }
            if is_dir {
                subdirs.push(abs);
                continue;
            }
            if self.ignore.num_whitelists() > 0 && self.ignored(&rel, false) {
                continue;
            }
            let link = meta
                .file_type()
                .is_symlink()
                .then(|| std::fs::read_link(&abs).ok())
                .flatten();
            files.push(Entry {
                rel,
                abs,
                mode: meta.mode() & 0o7777,
                size: meta.size(),
                mtime_ns: meta.mtime() as i128 * 1_000_000_000 + meta.mtime_nsec() as i128,
                ino: meta.ino(),
                link,
            });
        }
        let nested: Vec<Vec<Entry>> = subdirs
            .par_iter()
            .map(|d| self.dir(d))
            .collect::<Result<_, _>>()?;
        files.extend(nested.into_iter().flatten());
        Ok(files)
    }
}

/// The stat cache: rel → (size, mtime, inode, content hash), plus when it was written.
/// Stored as lines `size mtime inode hash rel` (fast to read and write at 100k files).
#[derive(Debug, Default)]
pub struct StatCache {
    written_ns: i128,
    files: HashMap<String, (u64, i128, u64, String)>,
}

impl StatCache {
    pub fn load(path: &Path) -> StatCache {
        let Ok(text) = std::fs::read_to_string(path) else {
            return StatCache::default();
        };
        let mut lines = text.lines();
        let Some(written_ns) = lines
            .next()
            .and_then(|l| l.strip_prefix("stack-stat-cache-v1 "))
            .and_then(|n| n.parse().ok())
        else {
            return StatCache::default();
        };
        let mut files = HashMap::new();
        for line in lines {
            let mut f = line.splitn(5, ' ');
            let (Some(size), Some(mtime), Some(ino), Some(hash), Some(rel)) =
                (f.next(), f.next(), f.next(), f.next(), f.next())
            else {
                return StatCache::default();
            };
            let (Ok(size), Ok(mtime), Ok(ino)) = (size.parse(), mtime.parse(), ino.parse()) else {
                return StatCache::default();
            };
            files.insert(rel.to_owned(), (size, mtime, ino, hash.to_owned()));
        }
        StatCache { written_ns, files }
    }

    /// Writes atomically (temp file + rename): a crash never leaves half a cache.
    pub fn save(&self, path: &Path) -> std::io::Result<()> {
        use std::fmt::Write as _;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let mut text = format!("stack-stat-cache-v1 {}\n", self.written_ns);
        for (rel, (size, mtime, ino, hash)) in &self.files {
            // Paths with newlines cannot be cached; they are simply re-hashed next time.
            if !rel.contains('\n') {
                let _ = writeln!(text, "{size} {mtime} {ino} {hash} {rel}");
            }
        }
        crate::state::write_atomic(path, text.as_bytes())
    }
}

fn now_ns() -> i128 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as i128)
}

/// The context digest, reusing cached hashes for unchanged files. Returns the digest, the cache to
/// save (`None` when the old one still describes every file exactly), and how many files were read.
pub fn digest(
    ctx: &Context,
    cache: &StatCache,
) -> Result<(String, Option<StatCache>, usize), StackError> {
    let racy_before = cache.written_ns - 2_000_000_000;
    let hashed: Vec<Result<(String, bool), StackError>> = ctx
        .entries
        .par_iter()
        .map(|e| {
            if let Some((size, mtime, ino, h)) = cache.files.get(&e.rel) {
                if *size == e.size
                    && *mtime == e.mtime_ns
                    && *ino == e.ino
                    && e.mtime_ns < racy_before
                {
                    return Ok((h.clone(), false));
                }
            }
            Ok((hash_file(e)?, true))
        })
        .collect();
    let mut overall = Sha256::new();
    let mut hashes = Vec::with_capacity(ctx.entries.len());
    let mut rehashed = 0;
    for (e, h) in ctx.entries.iter().zip(hashed) {
        let (h, fresh) = h?;
        rehashed += usize::from(fresh);
        overall.update(e.rel.as_bytes());
        overall.update(format!("\0{:o}\0{h}\n", e.mode).as_bytes());
        hashes.push(h);
    }
    let unchanged = rehashed == 0 && cache.files.len() == ctx.entries.len();
    let new_cache = (!unchanged).then(|| StatCache {
        written_ns: now_ns(),
        files: ctx
            .entries
            .iter()
            .zip(hashes)
            .map(|(e, h)| (e.rel.clone(), (e.size, e.mtime_ns, e.ino, h)))
            .collect(),
    });
    Ok((hex::encode(overall.finalize()), new_cache, rehashed))
}

fn hash_file(e: &Entry) -> Result<String, StackError> {
    let mut h = Sha256::new();
    if let Some(target) = &e.link {
        h.update(b"symlink\0");
        h.update(target.to_string_lossy().as_bytes());
        return Ok(hex::encode(h.finalize()));
    }
    let mut f = std::fs::File::open(&e.abs).map_err(|err| {
        StackError::config(
            None,
            format!("cannot read {}: {err}", e.abs.display()),
            "check permissions",
        )
    })?;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = f.read(&mut buf).map_err(|err| {
            StackError::config(
                None,
                format!("cannot read {}: {err}", e.abs.display()),
                "check permissions",
            )
        })?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Writes the context as a tar stream (what `docker build` sends) into `out`.
pub fn write_tar<W: std::io::Write>(ctx: &Context, out: W) -> std::io::Result<W> {
    let mut tar = tar::Builder::new(out);
    tar.mode(tar::HeaderMode::Deterministic);
    tar.follow_symlinks(false);
    for e in &ctx.entries {
        if let Some(target) = &e.link {
            let mut header = tar::Header::new_gnu();
            header.set_entry_type(tar::EntryType::Symlink);
            header.set_size(0);
            header.set_mode(e.mode);
            tar.append_link(&mut header, &e.rel, target)?;
        } else {
            let mut header = tar::Header::new_gnu();
            header.set_size(e.size);
            header.set_mode(e.mode);
            header.set_mtime(0);
            let f = std::fs::File::open(&e.abs)?;
            tar.append_data(&mut header, &e.rel, f)?;
        }
    }
    tar.into_inner()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (p, t) in files {
            let p = d.path().join(p);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, t).unwrap();
        }
        d
    }

    fn rels(d: &Path, extra: &[&str]) -> Vec<String> {
        let extra: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let ig = ignore_matcher(d, &extra).unwrap();
        walk(d, &ig, "Dockerfile")
            .unwrap()
            .entries
            .into_iter()
            .map(|e| e.rel)
            .collect()
    }

    #[test]
    fn dockerignore_is_anchored_at_the_root_and_image_ignores_are_not() {
        let d = tree(&[
            ("Dockerfile", "FROM busybox"),
            (
                ".dockerignore",
                "*.md\n!KEEP.md\nnode_modules\nDockerfile\n",
            ),
            ("README.md", ""),
            ("KEEP.md", ""),
            ("docs/guide.md", ""),
            ("node_modules/x/index.js", ""),
            ("src/app.py", ""),
            ("src/app.pyc", ""),
        ]);
        assert_eq!(
            rels(d.path(), &["*.pyc"]),
            [
                ".dockerignore",
                "Dockerfile",
                "KEEP.md",
                "docs/guide.md",
                "src/app.py"
            ],
            "root-only *.md, re-included KEEP.md, Dockerfile always sent, *.pyc at any depth"
        );
    }

    #[test]
    fn cache_reuses_hashes_and_sees_one_byte_changes() {
        let d = tree(&[("Dockerfile", "FROM busybox"), ("a.txt", "hello")]);
        let ig = ignore_matcher(d.path(), &[]).unwrap();
        let ctx = walk(d.path(), &ig, "Dockerfile").unwrap();
        let (h1, cache, n1) = digest(&ctx, &StatCache::default()).unwrap();
        let cache = cache.expect("a new cache");
        assert_eq!(n1, 2);
        // A fresh cache is "racy": files written within its second are re-hashed.
        let (_, _, racy) = digest(&ctx, &cache).unwrap();
        assert_eq!(racy, 2);
        let old = StatCache {
            written_ns: cache.written_ns + 10_000_000_000,
            files: cache.files.clone(),
        };
        let (h2, unchanged, n2) = digest(&ctx, &old).unwrap();
        assert_eq!(
            (h1.clone(), n2),
            (h2, 0),
            "unchanged files are not read again"
        );
        assert!(unchanged.is_none(), "nothing to save when nothing changed");
        // The cache survives a save/load round trip.
        let file = d.path().join("cache");
        old.save(&file).unwrap();
        let loaded = StatCache::load(&file);
        assert_eq!((loaded.written_ns, loaded.files.len()), (old.written_ns, 2));
        assert_eq!(loaded.files, old.files);
        std::fs::write(d.path().join("a.txt"), "hellO").unwrap();
        let ctx = walk(d.path(), &ig, "Dockerfile").unwrap();
        let (h3, _, _) = digest(&ctx, &cache).unwrap();
        assert_ne!(h1, h3);
    }

    #[test]
    fn case_insensitive_sibling_dirs() {
        let d = tree(&[("Backend/Dockerfile", "")]);
        let base = d.path().join("platform");
        std::fs::create_dir_all(&base).unwrap();
        assert_eq!(
            resolve_dir(&base, "../backend")
                .unwrap()
                .canonicalize()
                .unwrap(),
            d.path().join("Backend").canonicalize().unwrap()
        );
        assert!(resolve_dir(&base, "../frontend").is_none());
    }

    #[test]
    fn tar_carries_exactly_the_walked_files() {
        let d = tree(&[
            ("Dockerfile", "FROM busybox"),
            ("app/x", "1"),
            ("skip.log", ""),
        ]);
        let ig = ignore_matcher(d.path(), &["*.log".into()]).unwrap();
        let ctx = walk(d.path(), &ig, "Dockerfile").unwrap();
        let bytes = write_tar(&ctx, Vec::new()).unwrap();
        let mut ar = tar::Archive::new(bytes.as_slice());
        let names: Vec<String> = ar
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["Dockerfile", "app/x"]);
    }
}
