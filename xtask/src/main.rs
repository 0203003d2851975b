//! Project chores: `cargo xtask <task>`.
//!
//! - `setup`  installs the pinned external tools (see `xtask/pins.txt`) into the cache directory.
//! - `ci`     exactly what CI runs: setup, fmt check, clippy, and every test tier with
//!   `STACK_TEST_REQUIRE=all`.
//! - `bench`  benchmarks that print ratios against an anchor measured in the same run.
//! - `env`    prints the `export` lines that put the cached tools on PATH.
//! - `fuzz-values` runs the differential test of value composition against real helm with many
//!   generated cases (default 5000) and a time-based seed (`--cases N --seed S`).
//! - `reliability converge` kills `stack up --once` / `build --deliver` at random points on the rig
//!   and checks that the next run converges (`--runs N --seed S --commands up,build`).

// Chores drive tools directly; the one-spawner rule (clippy.toml) is for the product crate.
#![allow(clippy::disallowed_methods)]

mod bench;
mod fuzz;
mod reliability;
mod rig;
mod tools;

use anyhow::{bail, Result};

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = &args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("setup") => tools::setup().map(|_| ()),
        Some("env") => {
            let tools = tools::setup()?;
            print!("{}", tools.export_lines());
            Ok(())
        }
        Some("ci") => ci(),
        Some("bench") => bench::run(rest),
        Some("rig") => rig::run(rest),
        Some("fuzz-values") => fuzz::run(rest),
        Some("fuzz-parsers") => fuzz::parsers(rest),
        Some("reliability") => reliability::run(rest),
        _ => bail!(
            "usage: cargo xtask <setup|env|ci|bench validate|build|up|test|fuzz-values [--cases N] [--seed S]|fuzz-parsers [--cases N] [--seed S]|reliability converge [--runs N] [--seed S] [--commands up,build]>\n\
             see xtask/src/main.rs for what each task does"
        ),
    }
}

/// What `.ci/run` runs, and what a developer runs to reproduce CI.
fn ci() -> Result<()> {
    let tools = tools::setup()?;
    let root = tools::project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let run = |args: &[&str]| -> Result<()> {
        eprintln!("$ cargo {}", args.join(" "));
        let status = tools
            .command(&cargo)
            .args(args)
            .current_dir(&root)
            .env("STACK_TEST_REQUIRE", "all")
            .status()?;
        if !status.success() {
            bail!("`cargo {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    run(&["fmt", "--all", "--", "--check"])?;
    run(&[
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ])?;
    // Every tier runs against real components: bring the rig up (cold builds are cached in
    // ~/.cache/stack-dev), run the tests, and always tear the rig down again.
    // `down` runs whatever happened: a half-started rig must not leave processes behind.
    // One test at a time: the rig's one simulated node (kwok) and the 2-core machine are shared, and
    // rollout timings under a parallel load are the machine's, not the code's.
    let tested = rig::run(&["up".to_owned()])
        .and_then(|()| run(&["test", "--workspace", "--", "--test-threads=1"]));
    let down = rig::run(&["down".to_owned()]);
    tested.and(down)
}
