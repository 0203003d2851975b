//! Rendering `stack up` / `stack down`.

use crate::ops::up::{HelmStep, Report, Rollout};
use crate::ui::Format;

pub fn print(report: &Report, format: Format) {
    if format == Format::Json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        );
        return;
    }
    crate::outln!(
        "env {} → release {} in {} (context {})",
        report.env,
        report.release,
        report.namespace,
        report.context
    );
    crate::outln!("values: {}", report.layers.join(" → "));
    match &report.helm {
        HelmStep::UpToDate { revision } => {
            crate::outln!("release up to date (revision {revision}): no helm upgrade")
        }
        // The command line itself was shown as a step when it ran.
        HelmStep::Upgraded { revision, .. } => {
            crate::outln!("release upgraded to revision {revision}")
        }
        HelmStep::WouldUpgrade { .. } => {
            crate::outln!(
                "dry run: {} step(s) would run, nothing was changed",
                report.steps.len()
            )
        }
    }
    match &report.rollout {
        Rollout::Ready { seconds } => crate::outln!("ready in {seconds:.1}s"),
        Rollout::NotWaited => {}
        Rollout::Failed {
            failures,
            diagnostics,
        } => {
            crate::outln!("NOT READY:");
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
                crate::outln!(
                    "  {}{container}{owner}: {} — {}",
                    f.resource,
                    f.reason.as_str(),
                    f.message
                );
                for l in &f.last_logs {
                    crate::outln!("    │ {l}");
                }
            }
            crate::outln!("diagnostics (events, pods, logs, helm status): {diagnostics}/");
        }
    }
}

pub fn print_down(done: &crate::ops::up::DownReport, format: Format) {
    if format == Format::Json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(done).expect("serializes")
        );
        return;
    }
    use crate::ops::up::DownStatus;
    match done.status {
        DownStatus::Uninstalled => crate::outln!("release {} uninstalled", done.release),
        DownStatus::NotInstalled => crate::outln!("release {} was not installed", done.release),
        DownStatus::WouldUninstall => crate::outln!(
            "dry run: release {} would be uninstalled ({} step(s)), nothing was changed",
            done.release,
            done.steps.len()
        ),
    }
    if let Some(c) = &done.cluster {
        super::stdout(&super::cluster::change_human(c, super::use_color()));
    }
}
