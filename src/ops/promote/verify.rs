//! The verify gate: promote only what passed `stack live verify` in the source env. The record
//! lives at `state::State::rel_verify_record(<env>)`, written by `stack live verify`; without
//! one, `--force` or `promote.requireVerify: false` promote anyway, and the commit says
//! `Verify: not recorded`).

use super::source::{ChartVersion, Image};
use crate::config::Project;
use crate::error::StackError;
use crate::state::State;
use serde::Deserialize;
use std::collections::BTreeMap;

/// What `stack live verify` records for an env target.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Record {
    passed: bool,
    #[serde(default)]
    at: Option<String>,
    #[serde(default)]
    revision: Option<String>,
    /// The image tags it verified, by image name.
    #[serde(default)]
    images: BTreeMap<String, String>,
    /// The chart version it verified.
    #[serde(default)]
    chart: Option<String>,
}

/// The `Verify:` trailer for promoting `images`/`chart` out of `from`, or the refusal.
pub fn gate(
    project: &Project,
    from: &str,
    images: &[Image],
    chart: Option<&ChartVersion>,
    force: bool,
) -> Result<String, StackError> {
    let rel = State::rel_verify_record(from);
    let required = project.config.promote.require_verify && !force;
    let unverified = |why: String| -> Result<String, StackError> {
        if required {
            Err(StackError::Usage {
                message: format!(
                    "{why}: `stack promote` promotes only what passed `stack live verify` in the source env, recorded in {rel}"
                ),
                hint: Some(format!(
                    "run `stack live verify {from}` (it records the result), or pass --force to promote without a record (the commit then says `Verify: not recorded`), or set `promote.requireVerify: false` in {}",
                    crate::config::FILE_NAME
                )),
            })
        } else {
            Ok(format!("{why} (promoted with --force)"))
        }
    };
    let text = match std::fs::read_to_string(project.root.join(&rel)) {
        Ok(t) => t,
        Err(_) if required => return unverified(format!("{from} has no verify record")),
        Err(_) => return Ok("not recorded".into()),
    };
    let record: Record = serde_json::from_str(&text).map_err(|e| {
        StackError::config(
            Some(crate::config::file_origin(&rel)),
            format!("unreadable verify record: {e}"),
            format!("run `stack live verify {from}` again, or delete the file"),
        )
    })?;
    let when = record
        .at
        .as_deref()
        .map(|a| format!(" at {a}"))
        .unwrap_or_default();
    let rev = record
        .revision
        .as_deref()
        .map(|r| format!(" (revision {r})"))
        .unwrap_or_default();
    if !record.passed {
        return unverified(format!("verify of {from} failed{when}{rev}"));
    }
    let mut stale = Vec::new();
    for image in images {
        if let Some(t) = record.images.get(&image.name) {
            if *t != image.tag {
                stale.push(format!("{} {t} (now {})", image.name, image.tag));
            }
        }
    }
    if let (Some(c), Some(v)) = (chart, &record.chart) {
        if *v != c.version {
            stale.push(format!("chart {v} (now {})", c.version));
        }
    }
    if !stale.is_empty() {
        return unverified(format!(
            "the verify record of {from} is for {}",
            stale.join(", ")
        ));
    }
    Ok(format!("passed{when}{rev}"))
}
