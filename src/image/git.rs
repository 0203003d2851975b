//! Git metadata of a build context's repository, for build-arg templates (lifecycle-spec §1):
//! `describe --tags --always --dirty` (else `unknown-dev`), branch, short sha, and the build time.

use crate::tool::{Cmd, Runner};
use serde::Serialize;
use std::path::Path;

#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct GitInfo {
    pub describe: String,
    pub branch: String,
    pub sha: String,
}

impl GitInfo {
    /// What templates see outside a git repository.
    pub fn unknown() -> Self {
        GitInfo {
            describe: "unknown-dev".into(),
            branch: "unknown".into(),
            sha: "unknown".into(),
        }
    }
}

/// Reads the metadata with `git -C <dir> ...`; any failure falls back to [`GitInfo::unknown`] values.
pub fn read(runner: &dyn Runner, git: &Path, dir: &Path) -> GitInfo {
    let ask = |args: &[&str]| -> Option<String> {
        let out = runner
            .output(
                &Cmd::new(git)
                    .arg("-C")
                    .arg(dir.to_string_lossy())
                    .args(args.iter().copied()),
            )
            .ok()?;
        let s = out.stdout.trim().to_owned();
        (out.success() && !s.is_empty()).then_some(s)
    };
    let unknown = GitInfo::unknown();
    GitInfo {
        describe: ask(&["describe", "--tags", "--always", "--dirty"]).unwrap_or(unknown.describe),
        branch: ask(&["rev-parse", "--abbrev-ref", "HEAD"]).unwrap_or(unknown.branch),
        sha: ask(&["rev-parse", "--short", "HEAD"]).unwrap_or(unknown.sha),
    }
}

/// UTC RFC 3339 to the second (`2026-11-22T19:13:37Z`), without a date library.
pub fn utc_now() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    rfc3339(secs)
}

fn rfc3339(secs: u64) -> String {
    let (days, rem) = (secs / 86_400, secs % 86_400);
    // Civil-from-days (Howard Hinnant's algorithm), days since 1970-01-01.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tool::{Output, RecordingRunner};

    #[test]
    fn rfc3339_dates() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_374_817), "2026-11-22T19:13:37Z");
    }

    #[test]
    fn falls_back_outside_git() {
        let r = RecordingRunner::new();
        r.on(
            &["git"],
            Output {
                status: 128,
                stdout: String::new(),
                stderr: "fatal: not a git repository".into(),
            },
        );
        assert_eq!(
            read(&r, Path::new("git"), Path::new("/tmp/x")),
            GitInfo::unknown()
        );
        assert_eq!(
            r.lines()[0],
            "git -C /tmp/x describe --tags --always --dirty"
        );
    }
}
