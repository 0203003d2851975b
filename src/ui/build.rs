//! Rendering `stack build`'s report: a summary line, or one JSON document with `--format json`
//! (progress is rendered from events by `ui::events`).

use crate::ops::build::{Outcome, Report};
use crate::ui::Format;

/// The final summary (human) or the whole report (JSON).
pub fn print(report: &Report, format: Format) {
    match format {
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        ),
        _ => {
            let built = report
                .images
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::Built { .. }))
                .count();
            let cached = report
                .images
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::UpToDate))
                .count();
            let failed = report
                .images
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::Failed(_)))
                .count();
            crate::outln!("{built} built, {cached} up to date, {failed} failed");
        }
    }
}
