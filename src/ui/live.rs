//! Rendering `stack live …`, and the one question a live command asks (on a terminal only).

use crate::error::StackError;
use crate::ops::live::{
    Change, Confirm, DeployReport, DeployResult, DiffReport, HistoryReport, RecoverReport,
    RollbackReport,
};
use crate::ui::Format;

/// Asks on stderr, reads stdin; without a terminal on stdin nobody can answer: refused (exit 2).
pub fn confirm(q: &Confirm) -> Result<bool, StackError> {
    use std::io::{BufRead, IsTerminal, Write};
    if !std::io::stdin().is_terminal() {
        return Err(crate::ops::live::no_tty_refusal(q));
    }
    let mut err = std::io::stderr().lock();
    let _ = write!(
        err,
        "{}\n  context:   {}\n  namespace: {}\n  release:   {}\nProceed? [y/N] ",
        q.action, q.context, q.namespace, q.release
    );
    let _ = err.flush();
    let mut answer = String::new();
    std::io::stdin()
        .lock()
        .read_line(&mut answer)
        .map_err(|e| StackError::Usage {
            message: format!("cannot read the answer: {e}"),
            hint: Some("pass --yes to confirm non-interactively".into()),
        })?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes" | "YES" | "Yes"))
}

fn json(value: &impl serde::Serialize) {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("report serializes")
    );
}

pub fn print_deploy(r: &DeployReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    let version = r.version.as_deref().unwrap_or("(unversioned)");
    crate::outln!(
        "live {} → release {} in {} (context {}): {} {version}",
        r.target,
        r.release,
        r.namespace,
        r.context,
        r.chart
    );
    if let Some(c) = &r.changes {
        crate::outln!(
            "changes: {} added, {} changed, {} removed (`stack live diff {}` shows them)",
            c.added,
            c.changed,
            c.removed,
            r.target
        );
    }
    if r.retries > 0 {
        crate::outln!(
            "helm said another operation was in progress: retried {} time(s)",
            r.retries
        );
    }
    let failures = |failures: &[crate::kube::Failure]| {
        for f in failures {
            crate::outln!("  {}: {} — {}", f.resource, f.reason.as_str(), f.message);
        }
    };
    match &r.result {
        DeployResult::Deployed { revision, seconds } => {
            crate::outln!("deployed revision {revision}, ready in {seconds:.1}s")
        }
        DeployResult::WouldDeploy => {
            crate::outln!("dry run: would run\n  {}\nnothing was changed", r.command)
        }
        DeployResult::Stuck {
            revision,
            release_status,
            hint,
        } => {
            crate::outln!("NOT DEPLOYED: revision {revision} is {release_status}; nothing was run");
            crate::outln!("hint: {hint}");
        }
        DeployResult::RolledBack {
            to,
            error,
            failures: f,
            diagnostics,
        } => {
            crate::outln!("FAILED, rolled back to revision {to} (the release stays installed):");
            if let Some(e) = error {
                crate::outln!("  {e}");
            }
            failures(f);
            if let Some(d) = diagnostics {
                crate::outln!("diagnostics: {d}/");
            }
        }
        DeployResult::Failed {
            error,
            failures: f,
            diagnostics,
        } => {
            crate::outln!("FAILED, and there is no earlier good revision to roll back to (nothing was uninstalled):");
            if let Some(e) = error {
                crate::outln!("  {e}");
            }
            failures(f);
            if let Some(d) = diagnostics {
                crate::outln!("diagnostics: {d}/");
            }
        }
    }
}

pub fn print_diff(r: &DiffReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    let version = r.version.as_deref().unwrap_or("(unversioned)");
    crate::outln!(
        "live {} → release {} in {} (context {}): {} {version}{}",
        r.target,
        r.release,
        r.namespace,
        r.context,
        r.chart,
        if r.installed { "" } else { " (not installed)" }
    );
    for o in &r.objects {
        let what = match o.change {
            Change::Added => "added",
            Change::Removed => "removed",
            Change::Changed => "changed",
        };
        crate::outln!("{what}: {} {}/{}", o.kind, o.namespace, o.name);
        crate::outln!("{}", o.diff.trim_end());
    }
    let s = &r.summary;
    if r.has_changes() {
        crate::outln!(
            "{} added, {} changed, {} removed",
            s.added,
            s.changed,
            s.removed
        );
    } else {
        crate::outln!("no changes");
    }
}

pub fn print_history(r: &HistoryReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    crate::outln!(
        "release {} in {} (context {})",
        r.release,
        r.namespace,
        r.context
    );
    if r.revisions.is_empty() {
        crate::outln!("not installed");
        return;
    }
    crate::outln!(
        "{:<9} {:<26} {:<24} {:<24} {:<12} IMAGES",
        "REVISION",
        "UPDATED",
        "STATUS",
        "CHART",
        "APP VERSION"
    );
    for v in &r.revisions {
        // `registry/team/api:1.4.2` → `api:1.4.2`: the tag is what differs between revisions.
        let images: Vec<&str> = v
            .images
            .iter()
            .map(|i| i.rsplit('/').next().unwrap_or(i))
            .collect();
        crate::outln!(
            "{:<9} {:<26} {:<24} {:<24} {:<12} {}",
            v.revision,
            v.updated.get(..25).unwrap_or(&v.updated),
            if v.backed_out {
                format!("{} (backed out)", v.status)
            } else {
                v.status.clone()
            },
            v.chart,
            v.app_version,
            images.join(", ")
        );
    }
}

pub fn print_rollback(r: &RollbackReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    match r.revision {
        Some(new) => crate::outln!(
            "release {} rolled back from revision {} to {} (now revision {new})",
            r.release,
            r.from,
            r.to
        ),
        None => crate::outln!(
            "dry run: release {} would roll back from revision {} to {}; nothing was changed",
            r.release,
            r.from,
            r.to
        ),
    }
}

pub fn print_recover(r: &RecoverReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    match r {
        RecoverReport::Healthy {
            release,
            revision,
            release_status,
        } => crate::outln!(
            "release {release} is {release_status} at revision {revision}: nothing to recover"
        ),
        RecoverReport::Recovered(back) => print_rollback(back, format),
    }
}

/// `stack live verify`: a line per failing check with its evidence, the verdict, the record.
pub fn print_verify(r: &crate::ops::live::VerifyReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    let color = format == Format::Human && crate::ui::use_color();
    let passed = r
        .checks
        .iter()
        .filter(|c| c.status == crate::check::Status::Passed)
        .count();
    let verdict = format!(
        "stack live verify {}: {} — {passed}/{} checks passed against {} (release {} revision {}, context {})",
        r.target,
        if r.passed { "PASSED" } else { "FAILED" },
        r.checks.len(),
        r.base_url,
        r.release,
        r.revision,
        r.context
    );
    crate::ui::stdout(&crate::ui::test::failures(&r.checks, color));
    crate::outln!("recorded in {} (what `stack promote` requires)", r.record);
    crate::outln!("{verdict}");
    if format == Format::Github {
        crate::ui::stdout(&crate::ui::github::annotations(
            &crate::ui::test::check_annotations(&r.checks),
        ));
        let _ = crate::ui::github::append_step_summary(&crate::ui::test::checks_summary(
            &verdict, &r.checks,
        ));
    }
}
