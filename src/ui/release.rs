//! Rendering `stack release`: the version and where it came from, the Chart.yaml diff, what
//! happened (pushed and tagged, already released, refused, nothing to release), or the report as
//! one JSON document.

use crate::ops::publish::{Report, Status};
use crate::ui::Format;

pub fn print(report: &Report, format: Format) {
    if format == Format::Json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        );
        return;
    }
    let color = super::use_color();
    let from = match (&report.previous_tag, report.version_from.as_str()) {
        (Some(tag), "commits") => format!("{} commits since {tag}", report.commits),
        (_, other) => other.to_owned(),
    };
    let mut out = format!(
        "release {} {} (from {from})\n  {}\n",
        report.chart, report.version, report.reference
    );
    if let Some(d) = &report.content_digest {
        out.push_str(&format!("  contents {d}\n"));
    }
    if let Some(d) = &report.registry_layer_digest {
        out.push_str(&format!("  in the registry: chart layer {d}\n"));
    }
    if let Some(diff) = &report.diff {
        out.push('\n');
        for line in diff.split_inclusive('\n') {
            let styled = match line.as_bytes().first() {
                _ if !color => line.to_owned(),
                Some(b'+') if !line.starts_with("+++") => console::style(line).green().to_string(),
                Some(b'-') if !line.starts_with("---") => console::style(line).red().to_string(),
                Some(b'@') => console::style(line).cyan().to_string(),
                _ => line.to_owned(),
            };
            out.push_str(&styled);
        }
        if !diff.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push('\n');
    let tag = |done: bool| match (&report.tag, done) {
        (Some(t), true) => format!(", tagged {t}"),
        (Some(t), false) if report.dry_run => format!(", would tag {t}"),
        _ => String::new(),
    };
    let line = match report.status {
        Status::Released if report.dry_run => format!(
            "dry run: would push {}{}; nothing was written or pushed",
            report.reference,
            tag(false)
        ),
        Status::Released => {
            let digest = report
                .pushed_digest
                .as_deref()
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            format!("pushed {}{digest}{}", report.reference, tag(report.tagged))
        }
        Status::AlreadyReleased => format!(
            "already released: {}{}",
            report.message.as_deref().unwrap_or_default(),
            tag(report.tagged)
        ),
        Status::Refused | Status::NothingToRelease => report.message.clone().unwrap_or_default(),
    };
    let line = if report.status == Status::Refused && color {
        console::style(format!("refused: {line}")).red().to_string()
    } else if report.status == Status::Refused {
        format!("refused: {line}")
    } else {
        line
    };
    out.push_str(&line);
    out.push('\n');
    super::stdout(&out);
}
