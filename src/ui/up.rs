//! Rendering `stack up` / `stack down`.

use crate::ops::up::{HelmStep, Report};
use crate::ui::Format;
use std::collections::BTreeMap;

pub fn print(report: &Report, format: Format) {
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        );
        return;
    }
    println!(
        "env {} → release {} in {} (context {})",
        report.env, report.release, report.namespace, report.context
    );
    println!("values: {}", report.layers.join(" → "));
    match &report.helm {
        HelmStep::UpToDate { revision } => {
            println!("release up to date (revision {revision}): no helm upgrade")
        }
        HelmStep::Upgraded { revision, command } => {
            println!("$ {command}\nrelease upgraded to revision {revision}")
        }
        HelmStep::WouldUpgrade { command } => println!("would run: {command}"),
    }
}

pub fn print_down(done: &BTreeMap<String, String>, format: Format) {
    if format == Format::Json {
        println!(
            "{}",
            serde_json::to_string_pretty(done).expect("serializes")
        );
        return;
    }
    for (what, how) in done {
        println!("{what}: {how}");
    }
}
