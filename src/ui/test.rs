//! Rendering `stack test`: a line per check as it finishes, then the report (human, JSON,
//! GitHub); JUnit files are written by `ui::junit`.

use crate::check::{Outcome, Status};

/// `✓ name (kind) 1.2s` / `✗ name (kind) 3.0s — message`.
pub fn check_line(o: &Outcome, color: bool) -> String {
    let (mark, style) = match o.status {
        Status::Passed => ("✓", console::Style::new().green()),
        Status::Skipped => ("-", console::Style::new().dim()),
        Status::Failed | Status::TimedOut | Status::Error => ("✗", console::Style::new().red().bold()),
    };
    let mark = style.force_styling(color).apply_to(mark);
    let mut line = format!("{mark} {} ({}) {:.1}s", o.name, o.kind, o.seconds);
    if o.status != Status::Passed {
        line.push_str(&format!(" — {}: {}", o.status.as_str(), o.message));
    }
    line
}
