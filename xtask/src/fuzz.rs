//! `cargo xtask fuzz-values [--cases N] [--seed S] [--jobs J]`: the differential test of value
//! composition against real helm (tests/it/differential.rs) over many generated cases, with a
//! fresh time-based seed unless one is given. The seed is printed first and last, so a failure
//! reproduces with `--seed` (or `STACK_FUZZ_SEED=<seed> STACK_FUZZ_ONLY=<case>` on the test).

use crate::tools;
use anyhow::{bail, Context, Result};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

pub fn run(args: &[String]) -> Result<()> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    if let Some(unknown) = args
        .iter()
        .enumerate()
        .find(|(i, a)| i % 2 == 0 && !matches!(a.as_str(), "--cases" | "--seed" | "--jobs"))
    {
        bail!(
            "unknown argument `{}`; usage: cargo xtask fuzz-values [--cases N] [--seed S] [--jobs J]",
            unknown.1
        );
    }
    let cases: u64 = flag("--cases")
        .unwrap_or("5000")
        .parse()
        .context("--cases takes a number")?;
    let seed = match flag("--seed") {
        Some(s) => parse_seed(s)?,
        None => {
            let nanos = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(0);
            nanos ^ u64::from(std::process::id()).rotate_left(32)
        }
    };
    let jobs = flag("--jobs").unwrap_or("2");
    let tools = tools::setup()?;
    let root = tools::project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!(
        "fuzz-values: seed {seed:#x}, {cases} cases, {jobs} jobs (reproduce: cargo xtask fuzz-values --cases {cases} --seed {seed:#x})"
    );
    let started = Instant::now();
    let status = tools
        .command(&cargo)
        .args(["test", "--test", "it", "differential", "--", "--nocapture"])
        .env("STACK_FUZZ_CASES", cases.to_string())
        .env("STACK_FUZZ_SEED", format!("{seed:#x}"))
        .env("STACK_FUZZ_JOBS", jobs)
        // Without helm the test would skip; here that is a failure.
        .env("STACK_TEST_REQUIRE", "helm")
        .current_dir(&root)
        .status()?;
    let took = started.elapsed().as_secs_f64();
    if !status.success() {
        bail!(
            "fuzz-values: seed {seed:#x}: stack and helm disagree (or the test failed) after {took:.0}s; see the MISMATCH reports above"
        );
    }
    println!("fuzz-values: seed {seed:#x}: {cases} cases agree with helm ({took:.0}s)");
    Ok(())
}

fn parse_seed(s: &str) -> Result<u64> {
    match s.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16),
        None => s.parse(),
    }
    .with_context(|| format!("--seed takes a number (decimal or 0x hex), not `{s}`"))
}

/// `cargo xtask fuzz-parsers [--cases N] [--seed S]`: the mutation fuzzing of every parser of user
/// input (tests/it/parsers.rs) for as long as asked, in a release build.
pub fn parsers(args: &[String]) -> Result<()> {
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .map(String::as_str)
    };
    let cases: u64 = flag("--cases")
        .unwrap_or("200000")
        .parse()
        .context("--cases takes a number")?;
    let seed = match flag("--seed") {
        Some(s) => parse_seed(s)?,
        None => SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(1),
    };
    let root = tools::project_root();
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    println!("fuzz-parsers: seed {seed:#x}, {cases} cases (reproduce: cargo xtask fuzz-parsers --cases {cases} --seed {seed:#x})");
    let status = std::process::Command::new(&cargo)
        .args([
            "test",
            "--release",
            "--test",
            "it",
            "parsers",
            "--",
            "--nocapture",
        ])
        .env("STACK_FUZZ_PARSER_CASES", cases.to_string())
        .env("STACK_FUZZ_PARSER_SEED", format!("{seed:x}"))
        .current_dir(&root)
        .status()?;
    if !status.success() {
        bail!("fuzz-parsers: seed {seed:#x}: a parser panicked or hung (see above; the input is kept)");
    }
    Ok(())
}
