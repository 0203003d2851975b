//! Rendering `stack up` / `stack down`.

use crate::ops::up::{HelmStep, Report, Rollout};
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
    match &report.rollout {
        Rollout::Ready { seconds } => println!("ready in {seconds:.1}s"),
        Rollout::NotWaited => {}
        Rollout::Failed {
            failures,
            diagnostics,
        } => {
            println!("NOT READY:");
            for f in failures {
                let container = f
                    .container
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                let owner = f
                    .owner
                    .as_deref()
                    .map(|o| format!(" of {o}"))
                    .unwrap_or_default();
                println!(
                    "  {}{container}{owner}: {} — {}",
                    f.resource,
                    f.reason.as_str(),
                    f.message
                );
                for l in &f.last_logs {
                    println!("    │ {l}");
                }
            }
            println!("diagnostics (events, pods, logs, helm status): {diagnostics}/");
        }
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
