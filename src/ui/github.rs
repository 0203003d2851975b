//! GitHub Actions output shared by every `--format github` report (`validate`, `test`): workflow
//! commands (`::error file=…,line=…::…`) within what GitHub shows per step, and the markdown step
//! summary within its size budget.
//!
//! GitHub shows at most 10 error and 10 warning annotations per step and drops the rest without a
//! word; a step summary above 1 MiB is discarded whole. So the annotations past the limit are
//! printed as plain log lines followed by one notice counting them, and the summary is cut at a
//! line with a note saying so.

use std::io::Write as _;

/// Annotations of one level GitHub shows per step.
pub const SHOWN_PER_LEVEL: usize = 10;
/// Bytes GitHub accepts in one step's summary file (above that it discards all of it).
pub const SUMMARY_LIMIT: usize = 1024 * 1024;
/// Kept free below the budget for the truncation note.
const NOTE_HEADROOM: usize = 1024;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Error,
    Warning,
    Notice,
}

impl Level {
    fn command(self) -> &'static str {
        match self {
            Level::Error => "error",
            Level::Warning => "warning",
            Level::Notice => "notice",
        }
    }
}

/// One workflow-command annotation. `line`/`col` count from 1; an empty title is left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Annotation {
    pub level: Level,
    pub file: Option<String>,
    pub line: Option<u32>,
    pub col: Option<u32>,
    pub title: String,
    pub message: String,
}

/// The annotations as workflow commands, in order, at most [`SHOWN_PER_LEVEL`] of each level;
/// the rest follow as plain log lines and one `::notice::` counts them. Notices are capped too
/// (one fewer when the count notice is needed) so that note is never the one GitHub drops.
pub fn annotations(list: &[Annotation]) -> String {
    let total = |l: Level| list.iter().filter(|a| a.level == l).count();
    let (errors, warnings, notices) = (
        total(Level::Error),
        total(Level::Warning),
        total(Level::Notice),
    );
    let overflow =
        errors > SHOWN_PER_LEVEL || warnings > SHOWN_PER_LEVEL || notices > SHOWN_PER_LEVEL;
    let cap = |l: Level| match l {
        Level::Notice if overflow => SHOWN_PER_LEVEL - 1,
        _ => SHOWN_PER_LEVEL,
    };
    let mut shown = [0usize; 3];
    let mut out = String::new();
    let mut rest = Vec::new();
    for a in list {
        let n = &mut shown[a.level as usize];
        if *n < cap(a.level) {
            *n += 1;
            out.push_str(&command(a));
        } else {
            rest.push(a);
        }
    }
    if rest.is_empty() {
        return out;
    }
    for a in &rest {
        out.push_str(&plain(a));
    }
    let more = |l: Level, word: &str| {
        let n = rest.iter().filter(|a| a.level == l).count();
        (n > 0).then(|| format!("{n} more {word}{}", if n == 1 { "" } else { "s" }))
    };
    let parts: Vec<String> = [
        more(Level::Error, "error"),
        more(Level::Warning, "warning"),
        more(Level::Notice, "notice"),
    ]
    .into_iter()
    .flatten()
    .collect();
    let counted = match parts.as_slice() {
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
        [] => unreachable!("rest is not empty"),
    };
    out.push_str(&command(&Annotation {
        level: Level::Notice,
        file: None,
        line: None,
        col: None,
        title: "More than GitHub annotates".into(),
        message: format!(
            "{counted} are listed in the log above and in the step summary \
             (GitHub shows {SHOWN_PER_LEVEL} annotations of each kind per step)"
        ),
    }));
    out
}

/// One workflow command: `::error file=…,line=…,col=…,title=…::message`.
fn command(a: &Annotation) -> String {
    let mut props = Vec::new();
    if let Some(f) = &a.file {
        props.push(format!("file={}", property(f)));
    }
    if let Some(l) = a.line {
        props.push(format!("line={l}"));
    }
    if let Some(c) = a.col {
        props.push(format!("col={c}"));
    }
    if !a.title.is_empty() {
        props.push(format!("title={}", property(&a.title)));
    }
    let props = if props.is_empty() {
        String::new()
    } else {
        format!(" {}", props.join(","))
    };
    format!("::{}{props}::{}\n", a.level.command(), data(&a.message))
}

/// An annotation past the limit, as log text: `error: file:line:col: title: message`, further
/// lines of the message behind `  | ` (the runner trims leading blanks before looking for `::`,
/// so the bar keeps a message line from being read as a command).
fn plain(a: &Annotation) -> String {
    let mut head = format!("{}: ", a.level.command());
    if let Some(f) = &a.file {
        head.push_str(f);
        for n in [a.line, a.col].into_iter().flatten() {
            head.push_str(&format!(":{n}"));
        }
        head.push_str(": ");
    }
    if !a.title.is_empty() {
        head.push_str(&a.title);
        head.push_str(": ");
    }
    let mut out = head;
    let message = a.message.replace('\r', " ");
    for (i, l) in message.split('\n').enumerate() {
        if i > 0 {
            out.push_str("  | ");
        }
        out.push_str(l);
        out.push('\n');
    }
    out
}

/// Escapes workflow-command data (the message): `%`, CR and LF.
pub fn data(s: &str) -> String {
    s.replace('%', "%25")
        .replace('\r', "%0D")
        .replace('\n', "%0A")
}

/// Escapes a workflow-command property value: as [`data`], plus `:` and `,`.
pub fn property(s: &str) -> String {
    data(s).replace(':', "%3A").replace(',', "%2C")
}

/// `markdown` within [`SUMMARY_LIMIT`]: unchanged when it fits, else cut at the last line that
/// fits below the limit less a headroom, followed by a note saying it was cut.
pub fn step_summary(markdown: &str) -> String {
    fit_summary(markdown, SUMMARY_LIMIT)
}

/// `markdown` within `budget` bytes (see [`step_summary`]); empty when not even the note fits.
fn fit_summary(markdown: &str, budget: usize) -> String {
    if markdown.len() <= budget {
        return markdown.to_owned();
    }
    if budget < NOTE_HEADROOM {
        return String::new();
    }
    let room = floor_char_boundary(markdown, budget - NOTE_HEADROOM);
    let cut = markdown[..room].rfind('\n').map_or(room, |i| i + 1);
    let kept = &markdown[..cut];
    let newline = if kept.is_empty() || kept.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!(
        "{kept}{newline}\n> **Truncated:** this summary was cut after {cut} of its {} bytes: \
         GitHub discards a step summary above 1 MiB. The step's log has the full report.\n",
        markdown.len()
    )
}

/// The largest char boundary of `s` at or below `i` (`str::floor_char_boundary`, newer than the MSRV).
fn floor_char_boundary(s: &str, i: usize) -> usize {
    let mut i = i.min(s.len());
    while !s.is_char_boundary(i) {
        i -= 1;
    }
    i
}

/// Appends `markdown` to `$GITHUB_STEP_SUMMARY` when that is set, within what is left of the
/// step's 1 MiB (the file may already hold earlier summaries of the same step).
pub fn append_step_summary(markdown: &str) -> std::io::Result<()> {
    let Some(path) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|p| !p.is_empty()) else {
        return Ok(());
    };
    let used = std::fs::metadata(&path).map_or(0, |m| m.len());
    let left = SUMMARY_LIMIT.saturating_sub(usize::try_from(used).unwrap_or(usize::MAX));
    let text = fit_summary(markdown, left);
    if text.is_empty() {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?
        .write_all(text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finding(level: Level, i: usize) -> Annotation {
        Annotation {
            level,
            file: Some("envs/ci/a.yaml".into()),
            line: Some(i as u32 + 1),
            col: Some(3),
            title: "stack test: check".into(),
            message: format!("finding {i}"),
        }
    }

    fn count(out: &str, prefix: &str) -> usize {
        out.lines().filter(|l| l.starts_with(prefix)).count()
    }

    #[test]
    fn at_most_ten_errors_and_ten_warnings_then_one_note() {
        let list: Vec<Annotation> = (0..25)
            .map(|i| finding(Level::Error, i))
            .chain((0..3).map(|i| finding(Level::Warning, i)))
            .collect();
        let out = annotations(&list);
        assert_eq!(count(&out, "::error "), 10, "{out}");
        assert_eq!(count(&out, "::warning "), 3, "{out}");
        assert_eq!(count(&out, "::notice "), 1, "{out}");
        assert_eq!(count(&out, "::"), 14, "{out}");
        // The first ten are annotated, in order; the other fifteen are plain lines.
        assert!(out.contains("::error file=envs/ci/a.yaml,line=10,col=3,"));
        assert!(!out.contains("::error file=envs/ci/a.yaml,line=11,"));
        assert_eq!(count(&out, "error: envs/ci/a.yaml:"), 15, "{out}");
        assert!(out.contains("error: envs/ci/a.yaml:25:3: stack test: check: finding 24\n"));
        let last = out.lines().last().unwrap();
        assert!(last.starts_with("::notice title=More than GitHub annotates::"));
        assert!(last.contains("15 more errors are listed"), "{last}");
    }

    #[test]
    fn no_note_within_the_limits() {
        let list: Vec<Annotation> = (0..10)
            .map(|i| finding(Level::Error, i))
            .chain((0..10).map(|i| finding(Level::Warning, i)))
            .chain((0..10).map(|i| finding(Level::Notice, i)))
            .collect();
        let out = annotations(&list);
        assert_eq!(out.lines().count(), 30);
        assert!(out.lines().all(|l| l.starts_with("::")));
        assert_eq!(annotations(&[]), "");
    }

    #[test]
    fn the_note_counts_every_kind_and_leaves_room_for_itself() {
        let list: Vec<Annotation> = (0..11)
            .map(|i| finding(Level::Warning, i))
            .chain((0..12).map(|i| finding(Level::Notice, i)))
            .chain((0..1).map(|i| finding(Level::Error, i)))
            .collect();
        let out = annotations(&list);
        assert_eq!(count(&out, "::error "), 1);
        assert_eq!(count(&out, "::warning "), 10);
        // Nine notices and the note: never more than ten.
        assert_eq!(count(&out, "::notice "), 10, "{out}");
        assert!(
            out.ends_with("1 more warning and 3 more notices are listed in the log above and in the step summary (GitHub shows 10 annotations of each kind per step)\n"),
            "{out}"
        );
    }

    #[test]
    fn escapes_data_and_properties() {
        let a = Annotation {
            level: Level::Error,
            file: Some("envs/a:b,c%.yaml".into()),
            line: Some(4),
            col: None,
            title: "stack: 100%, really".into(),
            message: "50% done\r\nnext: a,b\n::error::injected".into(),
        };
        assert_eq!(
            annotations(&[a]),
            "::error file=envs/a%3Ab%2Cc%25.yaml,line=4,title=stack%3A 100%25%2C really::\
             50%25 done%0D%0Anext: a,b%0A::error::injected\n"
        );
        let bare = Annotation {
            level: Level::Notice,
            file: None,
            line: None,
            col: None,
            title: String::new(),
            message: "hi".into(),
        };
        assert_eq!(annotations(&[bare]), "::notice::hi\n");
    }

    #[test]
    fn overflow_lines_cannot_start_a_command() {
        let mut list: Vec<Annotation> = (0..10).map(|i| finding(Level::Error, i)).collect();
        let mut evil = finding(Level::Error, 99);
        evil.message = "first\n::error::injected\r::warning::too".into();
        list.push(evil);
        let out = annotations(&list);
        assert_eq!(count(&out, "::error"), 10, "{out}");
        assert_eq!(count(&out, "::warning"), 0, "{out}");
        assert!(
            out.contains("first\n  | ::error::injected ::warning::too\n"),
            "{out}"
        );
    }

    #[test]
    fn a_summary_that_fits_is_unchanged() {
        let md = "## ok\n\n| a | b |\n|---|---|\n| é | ✓ |\n";
        assert_eq!(step_summary(md), md);
        let exact = "x".repeat(SUMMARY_LIMIT);
        assert_eq!(step_summary(&exact), exact);
    }

    #[test]
    fn a_large_summary_is_cut_at_a_line_under_one_mib() {
        // Rows of multi-byte characters (2, 3 and 4 bytes) that cross the limit.
        let row = "| ❌ | `envs/ci/ü.yaml:1:1` | schema | 🦀 ünïcödé |\n";
        let md = format!(
            "## header\n\n{}",
            row.repeat(SUMMARY_LIMIT / row.len() + 100)
        );
        assert!(md.len() > SUMMARY_LIMIT);
        let out = step_summary(&md);
        assert!(out.len() <= SUMMARY_LIMIT, "{}", out.len());
        assert!(
            out.len() > SUMMARY_LIMIT - 2 * NOTE_HEADROOM,
            "{}",
            out.len()
        );
        let (kept, note) = out.split_once("\n> **Truncated:**").expect("a note");
        assert!(md.starts_with(kept));
        assert!(kept.ends_with(row), "cut at a line boundary");
        assert!(
            note.contains(&format!("of its {} bytes", md.len())),
            "{note}"
        );
        assert!(note.len() < NOTE_HEADROOM);
    }

    #[test]
    fn one_huge_line_is_cut_at_a_char_boundary() {
        let md = "é".repeat(SUMMARY_LIMIT); // 2 MiB, no newline
        let out = step_summary(&md);
        assert!(out.len() <= SUMMARY_LIMIT);
        assert!(out.starts_with("éé"));
        assert!(out.contains("> **Truncated:**"));
        // What is left of a budget: nothing when even the note would not fit.
        assert_eq!(fit_summary(&md, NOTE_HEADROOM - 1), "");
        let small = fit_summary("a\nb\nc\n", 5);
        assert_eq!(small, "", "5 bytes cannot hold the note");
    }
}
