//! Puts the git revision into `stack --version` (`0.1.0 (3f2a9c1 2026-12-01)`), or
//! `(unknown revision)` when built outside a git checkout (from a crate archive).

#![allow(clippy::disallowed_methods)] // a build script has no Runner to go through

use std::process::Command;

fn main() {
    let git = |args: &[&str]| {
        Command::new("git")
            .args(args)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
            .filter(|s| !s.is_empty())
    };
    let revision = match (
        git(&["rev-parse", "--short=9", "HEAD"]),
        git(&["log", "-1", "--format=%cs"]),
    ) {
        (Some(rev), Some(date)) => format!("{rev} {date}"),
        _ => "unknown revision".to_owned(),
    };
    println!(
        "cargo:rustc-env=STACK_VERSION={} ({revision})",
        env!("CARGO_PKG_VERSION")
    );
    if let Some(dir) = git(&["rev-parse", "--git-dir"]) {
        println!("cargo:rerun-if-changed={dir}/HEAD");
        println!("cargo:rerun-if-changed={dir}/refs/heads");
    }
}
