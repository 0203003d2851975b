//! Rendering `stack init github`: per file what happened (created, up to date, overwritten, or
//! refused with the diff and the `--force` hint), the diffs of a dry run, notes; or the report as
//! one JSON document.

use crate::ops::init::{FileStatus, Report};
use crate::ui::Format;

pub fn print(report: &Report, format: Format) {
    if format == Format::Json {
        crate::outln!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        );
        return;
    }
    super::stdout(&human(report, super::use_color()));
}

/// The human text: the diffs a reviewer needs first, then one line per file and the verdict.
pub fn human(report: &Report, color: bool) -> String {
    let mut out = String::new();
    for f in &report.files {
        // A refused file always shows why; a dry run shows everything it would write.
        let shown = f.status == FileStatus::Refused || (report.dry_run && f.diff.is_some());
        if let (true, Some(diff)) = (shown, &f.diff) {
            push_diff(&mut out, diff, color);
            out.push('\n');
        }
    }
    let refused = report.refused();
    for f in &report.files {
        let what = match (f.status, report.dry_run, refused) {
            (FileStatus::UpToDate, ..) => "up to date",
            (FileStatus::Refused, ..) => {
                "differs from what stack would write (diff above: - your file, + stack's): not overwritten"
            }
            // Another file was refused: nothing is written, so a set stays consistent.
            (FileStatus::Create, _, true) => "missing, not created (another file was refused)",
            (FileStatus::Overwrite, _, true) => "differs, not overwritten (another file was refused)",
            (FileStatus::Create, true, false) => "would be created",
            (FileStatus::Create, false, false) => "created",
            (FileStatus::Overwrite, true, false) => "would be overwritten (--force)",
            (FileStatus::Overwrite, false, false) => "overwritten (--force)",
        };
        out.push_str(&format!("{}: {what}\n", f.path));
    }
    for note in &report.notes {
        out.push_str(&format!("note: {note}\n"));
    }
    if refused {
        let hint = "hint: keep your changes, or run `stack init github --force` to replace the file with what stack writes";
        out.push_str(&format!("{}\n", style(hint, color, |s| s.cyan())));
    } else if report.dry_run && !report.up_to_date() {
        out.push_str("dry run: nothing was written\n");
    }
    out
}

fn style(
    text: &str,
    color: bool,
    f: impl FnOnce(console::StyledObject<&str>) -> console::StyledObject<&str>,
) -> String {
    if color {
        f(console::style(text)).force_styling(true).to_string()
    } else {
        text.to_owned()
    }
}

/// A unified diff, `+` lines green and `-` lines red on a terminal.
fn push_diff(out: &mut String, diff: &str, color: bool) {
    for line in diff.split_inclusive('\n') {
        let styled = match line.as_bytes().first() {
            _ if !color => line.to_owned(),
            Some(b'+') if !line.starts_with("+++") => style(line, true, |s| s.green()),
            Some(b'-') if !line.starts_with("---") => style(line, true, |s| s.red()),
            Some(b'@') => style(line, true, |s| s.cyan()),
            _ => line.to_owned(),
        };
        out.push_str(&styled);
    }
    if !diff.ends_with('\n') {
        out.push('\n');
    }
}
