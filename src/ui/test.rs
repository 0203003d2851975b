//! Rendering `stack test`: a line per check as it finishes, then the report (human, JSON,
//! GitHub); JUnit files are written by `ui::junit`.

use crate::check::{Outcome, Status};

/// `✓ name (kind) 1.2s` / `✗ name (kind) 3.0s — message`.
pub fn check_line(o: &Outcome, color: bool) -> String {
    let (mark, style) = match o.status {
        Status::Passed => ("✓", console::Style::new().green()),
        Status::Skipped => ("-", console::Style::new().dim()),
        Status::Failed | Status::TimedOut | Status::Error => {
            ("✗", console::Style::new().red().bold())
        }
    };
    let mark = style.force_styling(color).apply_to(mark);
    let mut line = format!("{mark} {} ({}) {:.1}s", o.name, o.kind, o.seconds);
    if o.status != Status::Passed {
        line.push_str(&format!(" — {}: {}", o.status.as_str(), o.message));
    }
    line
}

use crate::ops::test::{CleanReport, Cleanup, Report, RunStatus};
use crate::ui::Format;

/// Lines of a check's evidence an annotation carries.
const ANNOTATION_LINES: usize = 20;

/// Lines of a check's evidence shown under it (the whole of it is in JSON and the artifacts).
const DETAIL_LINES: usize = 40;

fn json(value: &impl serde::Serialize) {
    crate::outln!(
        "{}",
        serde_json::to_string_pretty(value).expect("report serializes")
    );
}

/// The report in the chosen format; GitHub adds annotations at each failing check's definition
/// and the step summary.
pub fn print(r: &Report, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    let color = format == Format::Human && crate::ui::use_color();
    crate::ui::stdout(&human(r, color));
    if format == Format::Github {
        crate::ui::stdout(&crate::ui::github::annotations(&annotations(r)));
        let _ = crate::ui::github::append_step_summary(&summary(r));
    }
}

fn status_line(r: &Report) -> String {
    let counts = [
        (crate::check::Status::Passed, "passed"),
        (crate::check::Status::Failed, "failed"),
        (crate::check::Status::TimedOut, "timed out"),
        (crate::check::Status::Error, "errors"),
        (crate::check::Status::Skipped, "skipped"),
    ]
    .iter()
    .filter_map(|(s, word)| {
        let n = r.count(*s);
        (n > 0 || *s == crate::check::Status::Passed).then(|| format!("{n} {word}"))
    })
    .collect::<Vec<_>>()
    .join(", ");
    let verdict = match r.status {
        RunStatus::Passed => "PASSED",
        RunStatus::Failed => "FAILED",
        RunStatus::BuildFailed => "FAILED: an image did not build",
        RunStatus::Missing => "FAILED: a published artifact is missing (nothing was deployed)",
        RunStatus::Conflict => {
            "FAILED: objects the release would own belong to someone else (nothing was deployed)"
        }
        RunStatus::RolloutFailed => "FAILED: the release did not become ready",
    };
    format!(
        "stack test {}: {verdict} — checks: {counts} ({:.1}s)",
        r.profile.as_str(),
        r.seconds
    )
}

/// The human report: what was deployed, each failure with its evidence, where the diagnostics
/// are, and what happened to the release.
pub fn human(r: &Report, color: bool) -> String {
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    let version = r
        .chart_version
        .as_deref()
        .map(|v| format!(" {v}"))
        .unwrap_or_default();
    line(format!(
        "test release {} in namespace {} (context {}): chart {}{version}, env {}",
        r.release, r.namespace, r.context, r.chart, r.env
    ));
    for p in &r.published {
        if p.status != "found" {
            line(format!(
                "  {}: {} is MISSING from its registry",
                p.what, p.reference
            ));
        }
    }
    for c in &r.conflicts {
        line(format!(
            "  conflict: {} is owned by {}\n    fix: {}",
            c.object, c.owner, c.fix
        ));
    }
    if let Some(crate::release::Rollout::Failed { failures, .. }) = &r.rollout {
        for f in failures {
            line(format!(
                "  {}: {} — {}",
                f.resource,
                f.reason.as_str(),
                f.message
            ));
        }
    }
    out.push_str(&failures(&r.checks, color));
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    if let Some(d) = &r.diagnostics {
        line(format!("diagnostics: {}/ ({})", d.dir, d.files.join(", ")));
    }
    match &r.cleanup {
        Cleanup::Removed { namespace_removed } => line(format!(
            "test release removed{}",
            if *namespace_removed {
                ", and the namespace stack created"
            } else {
                ""
            }
        )),
        Cleanup::Kept { remove_with } => line(format!(
            "test release kept for inspection — remove it with `{remove_with}`"
        )),
        Cleanup::NothingDeployed => {}
    }
    line(status_line(r));
    out
}

/// One annotation per failing check, at its definition; the run's own failure without a check.
fn annotations(r: &Report) -> Vec<crate::ui::github::Annotation> {
    use crate::ui::github::{Annotation, Level};
    let mut out = check_annotations(&r.checks);
    if r.checks.is_empty() && r.status != RunStatus::Passed {
        out.push(Annotation {
            level: Level::Error,
            file: None,
            line: None,
            col: None,
            title: "stack test".into(),
            message: status_line(r),
        });
    }
    out
}

/// The step summary: the verdict, a table of checks, each failure's evidence.
fn summary(r: &Report) -> String {
    checks_summary(&status_line(r), &r.checks)
}

/// `--junit FILE`: one testsuite for this profile, one testcase per check.
pub fn write_junit(path: &std::path::Path, r: &Report) -> Result<(), crate::error::StackError> {
    write_checks_junit(
        path,
        &format!("stack test {}", r.profile.as_str()),
        &r.checks,
        r.diagnostics.as_ref().map(|d| d.dir.clone()),
        r.seconds,
    )
}

/// One testsuite named `name`, one testcase per check (`stack test`, `stack live verify`).
pub fn write_checks_junit(
    path: &std::path::Path,
    name: &str,
    checks: &[Outcome],
    diagnostics: Option<String>,
    seconds: f64,
) -> Result<(), crate::error::StackError> {
    let suite = crate::ui::junit::Suite {
        name: name.to_owned(),
        outcomes: checks,
        diagnostics,
        timestamp: crate::image::git::utc_now(),
        hostname: None,
        seconds: Some(seconds),
    };
    crate::state::write_file(path, &crate::ui::junit::junit(&[suite]))
}

/// Each check that did not pass, with its definition and the first lines of its evidence.
pub fn failures(checks: &[Outcome], color: bool) -> String {
    let mut out = String::new();
    for o in checks
        .iter()
        .filter(|o| o.status != crate::check::Status::Passed)
    {
        out.push_str(&format!(
            "{}  (defined at {})\n",
            check_line(o, color),
            o.definition
        ));
        let detail: Vec<&str> = o.detail.lines().collect();
        for l in detail.iter().take(DETAIL_LINES) {
            out.push_str(&format!("    {l}\n"));
        }
        if detail.len() > DETAIL_LINES {
            out.push_str(&format!(
                "    … {} more lines (--format json, or checks.json in the diagnostics)\n",
                detail.len() - DETAIL_LINES
            ));
        }
    }
    out
}

/// One annotation per failed, timed-out or errored check, at its definition, with the first
/// lines of its evidence (GitHub shows an annotation's start; the rest is in the log and the
/// step summary).
pub fn check_annotations(checks: &[Outcome]) -> Vec<crate::ui::github::Annotation> {
    use crate::ui::github::{Annotation, Level};
    checks
        .iter()
        .filter(|o| {
            !matches!(
                o.status,
                crate::check::Status::Passed | crate::check::Status::Skipped
            )
        })
        .map(|o| Annotation {
            level: Level::Error,
            file: Some(o.origin.file.to_string()),
            line: Some(o.origin.pos.line),
            col: Some(o.origin.pos.col),
            title: format!("check {} {}", o.name, o.status.as_str()),
            message: if o.detail.is_empty() {
                o.message.clone()
            } else {
                let lines: Vec<&str> = o.detail.lines().collect();
                let more = lines.len().saturating_sub(ANNOTATION_LINES);
                let mut m = format!("{}\n{}", o.message, lines[..lines.len() - more].join("\n"));
                if more > 0 {
                    m.push_str(&format!(
                        "\n… {more} more lines in the log and the step summary"
                    ));
                }
                m
            },
        })
        .collect()
}

/// A markdown step summary: `title`, a table of checks, each failure's evidence.
pub fn checks_summary(title: &str, checks: &[Outcome]) -> String {
    let mut md = format!(
        "### {title}\n\n| check | kind | verdict | time | defined at |\n| --- | --- | --- | --- | --- |\n"
    );
    let cell = |s: &str| s.replace('|', "\\|").replace('\n', " ");
    for o in checks {
        md.push_str(&format!(
            "| {} | {} | {} | {:.1}s | `{}` |\n",
            cell(&o.name),
            o.kind,
            o.status.as_str(),
            o.seconds,
            o.definition
        ));
    }
    for o in checks
        .iter()
        .filter(|o| o.status != crate::check::Status::Passed && !o.detail.is_empty())
    {
        md.push_str(&format!(
            "\n<details><summary>{} — {}</summary>\n\n```\n{}\n```\n</details>\n",
            cell(&o.name),
            cell(&o.message),
            o.detail.replace("```", "` ` `")
        ));
    }
    md
}

pub fn print_clean(r: &CleanReport, format: Format) {
    if format == Format::Json {
        return json(r);
    }
    crate::outln!(
        "test release {} in {} (context {}): {}; namespace {}",
        r.release,
        r.namespace,
        r.context,
        if r.release_removed {
            "removed"
        } else {
            "not installed by stack (left alone)"
        },
        if r.namespace_removed {
            "removed (stack created it)"
        } else {
            "kept (stack did not create it)"
        }
    );
}
