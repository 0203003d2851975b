//! Rendering `stack promote`: what is promoted, the unified diff of every file, and what was done
//! (human), or the report as one JSON document.

use crate::ops::promote::Report;
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
    let mut out = format!("promote {} → {}\n", report.from, report.to);
    for i in &report.images {
        let digest = i
            .digest
            .as_deref()
            .map(|d| format!("@{d}"))
            .unwrap_or_default();
        out.push_str(&format!(
            "  {} {}{digest} (from {})\n",
            i.name, i.tag, i.from
        ));
    }
    if let Some(c) = &report.chart {
        out.push_str(&format!("  chart {} (from {})\n", c.version, c.from));
    }
    out.push_str(&format!("  verify: {}\n", report.verify));
    if let Some(r) = &report.source_revision {
        out.push_str(&format!("  source revision: {r}\n"));
    }
    for f in &report.files {
        out.push('\n');
        for line in f.diff.split_inclusive('\n') {
            let styled = match line.as_bytes().first() {
                _ if !color => line.to_owned(),
                Some(b'+') if !line.starts_with("+++") => console::style(line).green().to_string(),
                Some(b'-') if !line.starts_with("---") => console::style(line).red().to_string(),
                Some(b'@') => console::style(line).cyan().to_string(),
                _ => line.to_owned(),
            };
            out.push_str(&styled);
        }
        if !f.diff.ends_with('\n') {
            out.push('\n');
        }
    }
    out.push('\n');
    let n = report.files.len();
    let files = if n == 1 { "file" } else { "files" };
    out.push_str(&if report.up_to_date() {
        format!(
            "nothing to promote: {} already runs what {} runs\n",
            report.to, report.from
        )
    } else if report.dry_run {
        format!("dry run: {n} {files} would change, nothing was written\n")
    } else {
        let committed = match (&report.commit, &report.branch) {
            (Some(c), Some(b)) => format!("; committed {} on branch {b}", short(c)),
            (Some(c), None) => format!("; committed {}", short(c)),
            _ => String::new(),
        };
        format!("wrote {n} {files}{committed}\n")
    });
    super::stdout(&out);
}

fn short(sha: &str) -> &str {
    &sha[..sha.len().min(12)]
}
