//! Followed log lines as `resource │ line`, each resource in its own colour (stable across runs,
//! so `web/app` is always the same colour), prefixes padded to a common width.

use crate::kube::logs::LogLine;
use console::{Color, Style};

/// Colours for resources; red is left for errors.
const PALETTE: [Color; 6] = [
    Color::Cyan,
    Color::Green,
    Color::Yellow,
    Color::Blue,
    Color::Magenta,
    Color::Color256(208),
];

/// The style of `resource`'s prefix: a colour chosen by a hash of its name (FNV-1a, so the same on
/// every run and platform).
pub fn resource_style(resource: &str) -> Style {
    let hash = resource.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    });
    Style::new().fg(PALETTE[(hash % PALETTE.len() as u64) as usize])
}

/// `resource │ line` with the resource padded to `width` columns and coloured when `color`
/// (pass `crate::ui::use_color()`).
pub fn log_line(line: &LogLine, width: usize, color: bool) -> String {
    let prefix = format!("{:<width$}", line.resource);
    let style = resource_style(&line.resource).force_styling(color);
    let bar = Style::new().dim().force_styling(color);
    format!(
        "{} {} {}",
        style.apply_to(prefix),
        bar.apply_to("│"),
        line.line
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(resource: &str, text: &str) -> LogLine {
        LogLine {
            resource: resource.into(),
            pod: "p".into(),
            container: "c".into(),
            line: text.into(),
        }
    }

    #[test]
    fn plain_lines_are_padded_prefixes() {
        assert_eq!(
            log_line(&line("web/app", "GET /"), 12, false),
            "web/app      │ GET /"
        );
        assert_eq!(
            log_line(&line("worker/app", "tick"), 0, false),
            "worker/app │ tick"
        );
    }

    #[test]
    fn a_resource_keeps_its_colour_and_others_differ() {
        let coloured = |r: &str| log_line(&line(r, "x"), 0, true);
        assert_eq!(coloured("web/app"), coloured("web/app"));
        assert!(
            coloured("web/app").contains("\u{1b}["),
            "{:?}",
            coloured("web/app")
        );
        let colours: std::collections::BTreeSet<String> =
            ["web/app", "worker/app", "api/app", "db/postgres"]
                .iter()
                .map(|r| format!("{:?}", resource_style(r)))
                .collect();
        assert!(colours.len() > 1, "not every resource gets the same colour");
    }
}
