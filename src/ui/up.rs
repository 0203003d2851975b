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
        HelmStep::Upgraded { revision, command } => {
            crate::outln!("$ {command}\nrelease upgraded to revision {revision}")
        }
        HelmStep::WouldUpgrade { command } => crate::outln!("would run: {command}"),
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
    crate::outln!("release: {}", done.outcome);
    if let Some(c) = &done.cluster {
        super::stdout(&super::cluster::change_human(c, super::use_color()));
    }
}

impl crate::ops::up::session::SessionReporter for crate::ui::build::BuildView {
    fn session(&self, event: crate::ops::up::session::Event<'_>) {
        use crate::ops::up::session::Event;
        let line = match event {
            Event::Watching { roots } => format!(
                "watching {} — save a file to sync it; Ctrl-C to stop",
                roots.join(", ")
            ),
            Event::Synced {
                image,
                files,
                deletes,
                pods,
                millis,
            } => {
                format!(
                    "{image}: synced {files} file(s), {deletes} deletion(s) into {} in {millis} ms",
                    if pods.is_empty() {
                        "no running pod".to_owned()
                    } else {
                        pods.join(", ")
                    }
                )
            }
            Event::Rebuilding { image, because } => {
                format!("{image}: {because} changed — rebuilding and redeploying")
            }
            Event::Redeployed(r) => format!(
                "redeployed: release {} {}",
                r.release,
                match &r.helm {
                    HelmStep::Upgraded { revision, .. } =>
                        format!("upgraded to revision {revision}"),
                    HelmStep::UpToDate { revision } => format!("unchanged at revision {revision}"),
                    HelmStep::WouldUpgrade { .. } => String::new(),
                }
            ),
            Event::DotenvSynced { object, keys } => {
                format!("{object}: {keys} key(s) synced")
            }
            Event::Problem(p) => format!("problem: {p}"),
            Event::Forward { label, event } => {
                use crate::kube::forward::ForwardEvent as F;
                match event {
                    F::Listening { port } => format!("forward {label} → http://127.0.0.1:{port}"),
                    F::PortTaken { wanted, got } => format!("forward {label}: local port {wanted} is taken, using 127.0.0.1:{got} instead"),
                    F::Connected { pod } => format!("forward {label}: via pod/{pod}"),
                    F::Reconnecting { pod, error, attempt } => format!(
                        "forward {label}: reconnecting{} (attempt {attempt}): {error}",
                        pod.as_deref().map(|p| format!(" to pod/{p}")).unwrap_or_default()
                    ),
                    F::GaveUp { error, attempts } => format!("forward {label}: gave up after {attempts} attempts: {error}"),
                    F::StreamError { pod, error } => format!("forward {label}: pod/{pod}: {error}"),
                }
            }
            Event::Log(line) => {
                crate::outln!(
                    "{}",
                    crate::ui::logs::log_line(line, 24, crate::ui::use_color())
                );
                return;
            }
            Event::Stopped => "stopped: port-forwards and watchers closed".to_owned(),
        };
        self.say(line);
    }
}
