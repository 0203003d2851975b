//! JUnit XML of check outcomes, in the "java-junit" shape GitHub's test reporters read
//! (dorny/test-reporter, mikepenz/action-junit-report, EnricoMi/publish-unit-test-result-action):
//! `testsuites` → one `testsuite` per run → one `testcase` per check.
//!
//! Invariants: the document is well-formed XML 1.0 whatever the checks reported (ANSI colour
//! sequences are removed, characters XML 1.0 forbids become U+FFFD); it validates against the
//! Jenkins xunit `junit-10.xsd` (tests/fixtures/junit/) apart from the `file` and `line`
//! attributes of `testcase`, which the GitHub reporters read to annotate the definition; names
//! and classnames depend only on the suite and check names, so a report's history stays joined.
//!
//! Verdicts: Failed and TimedOut are `<failure>` (the check ran and did not see its condition
//! hold in time: `type="failed"` or `type="timeout"`); Error is `<error>` (the check could not
//! observe: infrastructure, not the app); Skipped is `<skipped>`.

use crate::check::{Outcome, Status};
use std::fmt::Write as _;

/// One run of checks: one `<testsuite>`.
#[derive(Clone, Debug)]
pub struct Suite<'a> {
    /// E.g. `stack test ci`; the testcases' classname is derived from it (`stack.test.ci`).
    pub name: String,
    pub outcomes: &'a [Outcome],
    /// Where the run's diagnostics (events, logs, describe output) were saved.
    pub diagnostics: Option<String>,
    /// When the run started (RFC 3339).
    pub timestamp: String,
    pub hostname: Option<String>,
    /// Wall time of the run; without it, the sum of the checks' times (which overstates a
    /// parallel run).
    pub seconds: Option<f64>,
}

/// Longest `message` attribute kept (the first line of the check's message); the element's text
/// has all of it.
const MESSAGE_CHARS: usize = 500;

#[derive(Default)]
struct Counts {
    tests: usize,
    failures: usize,
    errors: usize,
    skipped: usize,
    seconds: f64,
}

fn counts(suite: &Suite) -> Counts {
    let o = suite.outcomes;
    let n = |f: fn(Status) -> bool| o.iter().filter(|x| f(x.status)).count();
    Counts {
        tests: o.len(),
        failures: n(|s| matches!(s, Status::Failed | Status::TimedOut)),
        errors: n(|s| s == Status::Error),
        skipped: n(|s| s == Status::Skipped),
        seconds: suite
            .seconds
            .unwrap_or_else(|| o.iter().map(|x| secs(x.seconds)).sum()),
    }
}

/// The whole JUnit document for `suites`.
pub fn junit(suites: &[Suite]) -> String {
    let per: Vec<Counts> = suites.iter().map(counts).collect();
    let total = per.iter().fold(Counts::default(), |t, c| Counts {
        tests: t.tests + c.tests,
        failures: t.failures + c.failures,
        errors: t.errors + c.errors,
        skipped: t.skipped + c.skipped,
        seconds: t.seconds + secs(c.seconds),
    });
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
    // `skipped` is counted per testsuite only: junit-10.xsd has no such attribute on testsuites.
    let _ = writeln!(
        out,
        "<testsuites name=\"stack\" tests=\"{}\" failures=\"{}\" errors=\"{}\" time=\"{}\">",
        total.tests,
        total.failures,
        total.errors,
        time(total.seconds)
    );
    for (suite, c) in suites.iter().zip(&per) {
        suite_xml(&mut out, suite, c);
    }
    out.push_str("</testsuites>\n");
    out
}

fn suite_xml(out: &mut String, suite: &Suite, c: &Counts) {
    let _ = write!(
        out,
        "  <testsuite name=\"{}\" tests=\"{}\" failures=\"{}\" errors=\"{}\" skipped=\"{}\" time=\"{}\" timestamp=\"{}\"",
        attr(&suite.name),
        c.tests,
        c.failures,
        c.errors,
        c.skipped,
        time(c.seconds),
        attr(&suite.timestamp)
    );
    if let Some(h) = &suite.hostname {
        let _ = write!(out, " hostname=\"{}\"", attr(h));
    }
    out.push_str(">\n");
    if let Some(d) = &suite.diagnostics {
        let _ = writeln!(
            out,
            "    <properties>\n      <property name=\"diagnostics\" value=\"{}\"/>\n    </properties>",
            attr(d)
        );
    }
    let classname = classname(&suite.name);
    for o in suite.outcomes {
        case_xml(out, o, &classname, suite.diagnostics.as_deref());
    }
    out.push_str("  </testsuite>\n");
}

fn case_xml(out: &mut String, o: &Outcome, classname: &str, diagnostics: Option<&str>) {
    let _ = write!(
        out,
        "    <testcase name=\"{}\" classname=\"{}\" time=\"{}\"",
        attr(&o.name),
        attr(classname),
        time(o.seconds)
    );
    if !o.origin.file.is_empty() {
        let _ = write!(
            out,
            " file=\"{}\" line=\"{}\"",
            attr(&o.origin.file),
            o.origin.pos.line
        );
    }
    out.push_str(">\n");
    let verdict = match o.status {
        Status::Passed => None,
        Status::Failed => Some(("failure", "failed")),
        Status::TimedOut => Some(("failure", "timeout")),
        Status::Error => Some(("error", "error")),
        Status::Skipped => Some(("skipped", "skipped")),
    };
    if let Some((element, kind)) = verdict {
        let message = first_line(&o.message, o.status.as_str());
        let _ = write!(
            out,
            "      <{element} message=\"{}\" type=\"{kind}\"",
            attr(&message)
        );
        let mut body = o.message.clone();
        if !o.detail.is_empty() {
            body.push_str("\n\n");
            body.push_str(&o.detail);
        }
        if o.status == Status::Skipped || body.trim().is_empty() {
            out.push_str("/>\n");
        } else {
            let _ = writeln!(out, ">{}</{element}>", text(&body));
        }
    }
    let mut system_out = format!("{} check defined at {}\n", o.kind, o.definition);
    if let Some(d) = diagnostics {
        let _ = writeln!(system_out, "diagnostics: {d}");
    }
    let _ = writeln!(out, "      <system-out>{}</system-out>", text(&system_out));
    out.push_str("    </testcase>\n");
}

/// `stack.` + the suite name with blanks as dots: `stack test ci` → `stack.test.ci`.
pub fn classname(suite: &str) -> String {
    let dotted = suite.split_whitespace().collect::<Vec<_>>().join(".");
    if dotted == "stack" || dotted.starts_with("stack.") {
        dotted
    } else if dotted.is_empty() {
        "stack".into()
    } else {
        format!("stack.{dotted}")
    }
}

/// Seconds with three decimals; never negative, NaN or infinite.
fn time(seconds: f64) -> String {
    format!("{:.3}", secs(seconds))
}

fn secs(s: f64) -> f64 {
    if s.is_finite() && s > 0.0 {
        s
    } else {
        0.0
    }
}

/// The message's first non-empty line (clean, at most [`MESSAGE_CHARS`]), or `fallback`.
fn first_line(message: &str, fallback: &str) -> String {
    let clean = clean(message);
    let line = clean
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or(fallback);
    match line.char_indices().nth(MESSAGE_CHARS) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_owned(),
    }
}

/// `s` without ANSI escape sequences and with every character XML 1.0 forbids (C0 controls but
/// tab, LF and CR; U+FFFE, U+FFFF) replaced by U+FFFD.
pub fn clean(s: &str) -> String {
    let s = strip_ansi(s);
    s.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

/// Removes ANSI/VT escape sequences: CSI (`ESC [ … final`, also the 8-bit `0x9B`), OSC/DCS/APC
/// strings (ended by BEL or `ESC \`) and the other escapes (`ESC ( B`, `ESC 7`). A lone ESC at the end goes too.
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        let csi = match c {
            '\u{1b}' => match chars.peek() {
                Some('[') => {
                    chars.next();
                    true
                }
                Some(']' | 'P' | '_' | '^' | 'X') => {
                    chars.next();
                    // A string command: up to BEL or ST (ESC \).
                    while let Some(c) = chars.next() {
                        if c == '\u{7}' || c == '\u{9c}' {
                            break;
                        }
                        if c == '\u{1b}' && chars.peek() == Some(&'\\') {
                            chars.next();
                            break;
                        }
                    }
                    continue;
                }
                Some(_) => {
                    // Intermediate bytes (` `..`/`), then one final byte: `ESC ( B`, `ESC 7`.
                    while chars.next_if(|c| (' '..='/').contains(c)).is_some() {}
                    chars.next();
                    continue;
                }
                None => continue,
            },
            '\u{9b}' => true,
            c => {
                out.push(c);
                continue;
            }
        };
        if csi {
            // Parameter and intermediate bytes, then one final byte in @..~.
            for c in chars.by_ref() {
                if ('@'..='~').contains(&c) {
                    break;
                }
            }
        }
    }
    out
}

/// Escaped for an attribute value in double quotes; tab, LF and CR as character references so
/// that attribute-value normalisation keeps them.
fn attr(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' => out.push_str("&#9;"),
            '\n' => out.push_str("&#10;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

/// Escaped for element text: `>` too (so `]]>` cannot appear), CR as a reference (a parser turns a
/// literal CR into LF).
fn text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in clean(s).chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\r' => out.push_str("&#13;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::yaml::{Origin, Pos};

    fn outcome(name: &str, status: Status, message: &str, detail: &str) -> Outcome {
        Outcome {
            name: name.into(),
            kind: "http",
            status,
            seconds: 1.23456,
            message: message.into(),
            detail: detail.into(),
            definition: "stack.yaml:12:7".into(),
            origin: Origin {
                file: "stack.yaml".into(),
                pos: Pos { line: 12, col: 7 },
            },
        }
    }

    #[test]
    fn escapes_and_cleans() {
        assert_eq!(
            attr("a<b>&\"c'\n\t"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#10;&#9;"
        );
        assert_eq!(text("x]]>y\r\n"), "x]]&gt;y&#13;\n");
        assert_eq!(clean("\u{1b}[1;31mred\u{1b}[0m"), "red");
        assert_eq!(clean("a\u{0}b\u{1b}"), "a\u{FFFD}b");
        assert_eq!(
            clean("\u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\"),
            "link"
        );
        assert_eq!(clean("\u{9b}32mgreen\u{1b}(B"), "green");
        assert_eq!(clean("\u{FFFE}ü🦀\u{7}"), "\u{FFFD}ü🦀\u{FFFD}");
    }

    #[test]
    fn classnames_are_stable() {
        assert_eq!(classname("stack test ci"), "stack.test.ci");
        assert_eq!(classname("live  verify"), "stack.live.verify");
        assert_eq!(classname(""), "stack");
    }

    #[test]
    fn timed_out_is_a_failure_error_is_an_error() {
        let o = [
            outcome("a", Status::TimedOut, "no verdict within 5s", ""),
            outcome("b", Status::Error, "API unreachable", ""),
            outcome("c", Status::Skipped, "needs `a`, which timed out", ""),
            outcome("d", Status::Passed, "200", ""),
        ];
        let xml = junit(&[Suite {
            name: "stack test ci".into(),
            outcomes: &o,
            diagnostics: None,
            timestamp: "2026-12-01T05:00:00Z".into(),
            hostname: None,
            seconds: Some(9.0),
        }]);
        assert!(xml.contains("<testsuites name=\"stack\" tests=\"4\" failures=\"1\" errors=\"1\" time=\"9.000\">"), "{xml}");
        assert!(xml.contains("skipped=\"1\" time=\"9.000\""), "{xml}");
        assert!(xml.contains("<failure message=\"no verdict within 5s\" type=\"timeout\">"));
        assert!(xml.contains("<error message=\"API unreachable\" type=\"error\">"));
        assert!(xml.contains("<skipped message=\"needs `a`, which timed out\" type=\"skipped\"/>"));
        assert!(xml.contains("<testcase name=\"d\" classname=\"stack.test.ci\" time=\"1.235\" file=\"stack.yaml\" line=\"12\">"), "{xml}");
        assert!(xml.contains("<system-out>http check defined at stack.yaml:12:7\n</system-out>"));
    }
}
