//! Benchmarks: each prints stack's figure next to an anchor measured in the same run.

use anyhow::{bail, Result};

pub fn run(args: &[String]) -> Result<()> {
    match args.first().map(String::as_str) {
        _ => bail!("usage: cargo xtask bench validate [--sizes 10,100,1000]"),
    }
}
