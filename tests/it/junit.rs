//! JUnit output (`ui::junit`) checked by a real XML parser against a published schema: xmllint and
//! the Jenkins xunit `junit-10.xsd` (tests/fixtures/junit/README.md says where it comes from).
//! Every verdict and the characters that break naive XML writers go through it, and the counts and
//! texts are read back with XPath.

use crate::support;
use stack::check::{Outcome, Status};
use stack::ui::junit::{junit, Suite};
use stack::yaml::{Origin, Pos};
use std::path::{Path, PathBuf};

/// Control bytes, ANSI colours, markup, a CDATA end, non-ASCII: what a check's evidence may hold.
const NASTY_NAME: &str = "api <\"ready\"> & 'ok' — ünï 🦀";
const NASTY_MESSAGE: &str =
    "\u{1b}[31mexpected 200\u{1b}[0m, got 503 <html> & \"q\" 'a' ]]>\nsecond line";
const NASTY_DETAIL: &str =
    "body: ]]> <![CDATA[ x ]]>\u{0}nul\u{1b}(Besc\u{7}bell\u{b}\r\n日本語 \u{1b}]8;;http://x\u{7}link\u{1b}]8;;\u{1b}\\ \u{fffe}end";

fn outcome(name: &str, status: Status, seconds: f64, message: &str, detail: &str) -> Outcome {
    Outcome {
        name: name.into(),
        kind: "http",
        status,
        seconds,
        message: message.into(),
        detail: detail.into(),
        definition: "stack.yaml:40:7".into(),
        origin: Origin {
            file: "stack.yaml".into(),
            pos: Pos { line: 40, col: 7 },
        },
    }
}

fn outcomes() -> Vec<Outcome> {
    vec![
        outcome("api-ready", Status::Passed, 1.2344, "3/3 ready", ""),
        outcome(NASTY_NAME, Status::Failed, 2.0, NASTY_MESSAGE, NASTY_DETAIL),
        outcome(
            "ws-echo",
            Status::TimedOut,
            30.0004,
            "no verdict within 30s",
            "last: connection reset",
        ),
        outcome(
            "db-migrated",
            Status::Error,
            0.1,
            "\n  API unreachable: connection refused\nretried 5 times",
            "",
        ),
        outcome(
            "smoke",
            Status::Skipped,
            0.0,
            "needs `ws-echo`, which timed out",
            "",
        ),
    ]
}

pub(crate) fn xmllint() -> Option<PathBuf> {
    let found = support::find_tool("xmllint");
    if !support::require("xmllint", found.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return None;
    }
    found.ok()
}

/// `xmllint --noout --schema xsd doc`: Ok, or the validator's complaint.
pub(crate) fn validate(xmllint: &Path, xsd: &Path, doc: &Path) -> Result<(), String> {
    let out = std::process::Command::new(xmllint)
        .args(["--noout", "--nonet", "--schema"])
        .arg(xsd)
        .arg(doc)
        .output()
        .unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The value of an XPath expression over `doc`, as xmllint's parser reads it.
fn xpath(xmllint: &Path, doc: &Path, expr: &str) -> String {
    let out = std::process::Command::new(xmllint)
        .args(["--nonet", "--xpath", expr])
        .arg(doc)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{expr}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut s = String::from_utf8(out.stdout).unwrap();
    assert_eq!(s.pop(), Some('\n'), "xmllint ends a result with a newline");
    s
}

/// The published schema plus the two optional `testcase` attributes GitHub's reporters read.
pub(crate) fn with_file_and_line(xsd: &str) -> String {
    let case = xsd
        .find("<xs:element name=\"testcase\">")
        .expect("junit-10.xsd declares testcase");
    let end = case
        + xsd[case..]
            .find("</xs:complexType>")
            .expect("testcase has a complexType");
    format!(
        "{}<xs:attribute name=\"file\" type=\"xs:string\"/>\n            \
         <xs:attribute name=\"line\" type=\"xs:string\"/>\n        {}",
        &xsd[..end],
        &xsd[end..]
    )
}

#[test]
fn junit_validates_against_the_published_schema_and_reads_back() {
    let Some(xmllint) = xmllint() else { return };
    let checks = outcomes();
    let passed = [outcome("only", Status::Passed, 0.5, "ok", "")];
    let xml = junit(&[
        Suite {
            name: "stack test ci".into(),
            outcomes: &checks,
            diagnostics: Some(".stack/test/ci-20261201T050000Z <&>".into()),
            timestamp: "2026-12-01T05:00:00Z".into(),
            hostname: Some("runner-1".into()),
            seconds: Some(31.5),
        },
        Suite {
            name: "stack live verify".into(),
            outcomes: &passed,
            diagnostics: None,
            timestamp: "2026-12-01T05:01:00+01:00".into(),
            hostname: None,
            seconds: None,
        },
    ]);
    // Nothing XML 1.0 forbids reaches the file, and no escape sequence survives.
    assert!(
        !xml.chars()
            .any(|c| (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r')),
        "{xml}"
    );
    assert!(!xml.contains("]]>"), "`]]>` may not appear in XML text");
    assert!(!xml.contains("[31m"), "ANSI colours are stripped: {xml}");

    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("junit.xml");
    std::fs::write(&doc, &xml).unwrap();

    // 1. The published schema, unchanged, accepts everything but the two reader extensions.
    let published = support::project_root().join("tests/fixtures/junit/junit-10.xsd");
    let bare = regex::Regex::new(r#" file="[^"]*" line="[^"]*""#)
        .unwrap()
        .replace_all(&xml, "");
    assert_ne!(bare, xml, "testcases carry file and line");
    let bare_doc = dir.path().join("junit-bare.xml");
    std::fs::write(&bare_doc, bare.as_bytes()).unwrap();
    validate(&xmllint, &published, &bare_doc).unwrap_or_else(|e| panic!("{e}\n{bare}"));
    // ... and refuses `file` where it does not declare it: the validation is real.
    assert!(validate(&xmllint, &published, &doc).is_err());

    // 2. The whole document against the schema plus `file` and `line`.
    let extended = dir.path().join("junit-10-file-line.xsd");
    std::fs::write(
        &extended,
        with_file_and_line(&std::fs::read_to_string(&published).unwrap()),
    )
    .unwrap();
    validate(&xmllint, &extended, &doc).unwrap_or_else(|e| panic!("{e}\n{xml}"));

    // 3. Read back through the parser: counts, verdict shapes, texts.
    let q = |expr: &str| xpath(&xmllint, &doc, expr);
    assert_eq!(q("string(/testsuites/@tests)"), "6");
    assert_eq!(q("string(/testsuites/@failures)"), "2");
    assert_eq!(q("string(/testsuites/@errors)"), "1");
    assert_eq!(q("string(/testsuites/@time)"), "32.000");
    assert_eq!(q("count(/testsuites/testsuite)"), "2");
    let ci = "/testsuites/testsuite[1]";
    for (attr, want) in [
        ("name", "stack test ci"),
        ("tests", "5"),
        ("failures", "2"),
        ("errors", "1"),
        ("skipped", "1"),
        ("time", "31.500"),
        ("timestamp", "2026-12-01T05:00:00Z"),
        ("hostname", "runner-1"),
    ] {
        assert_eq!(q(&format!("string({ci}/@{attr})")), want, "{attr}");
    }
    assert_eq!(
        q(&format!(
            "string({ci}/properties/property[@name='diagnostics']/@value)"
        )),
        ".stack/test/ci-20261201T050000Z <&>"
    );
    assert_eq!(q("string(/testsuites/testsuite[2]/@time)"), "0.500");
    assert_eq!(q("string(/testsuites/testsuite[2]/@skipped)"), "0");
    assert_eq!(
        q("string(/testsuites/testsuite[2]/testcase/@classname)"),
        "stack.live.verify"
    );

    let case = |i: usize, rest: &str| q(&format!("string({ci}/testcase[{i}]{rest})"));
    assert_eq!(q(&format!("count({ci}/testcase)")), "5");
    assert_eq!(
        q(&format!("count({ci}/testcase[@classname='stack.test.ci'])")),
        "5"
    );
    // Passed: no verdict element, the definition in system-out.
    assert_eq!(case(1, "/@name"), "api-ready");
    assert_eq!(case(1, "/@time"), "1.234");
    assert_eq!(case(1, "/@file"), "stack.yaml");
    assert_eq!(case(1, "/@line"), "40");
    assert_eq!(
        q(&format!(
            "count({ci}/testcase[1]/failure | {ci}/testcase[1]/error | {ci}/testcase[1]/skipped)"
        )),
        "0"
    );
    assert_eq!(
        case(1, "/system-out"),
        "http check defined at stack.yaml:40:7\ndiagnostics: .stack/test/ci-20261201T050000Z <&>\n"
    );
    // Failed, with every nasty character: names and texts come back exactly, cleaned.
    assert_eq!(case(2, "/@name"), NASTY_NAME);
    assert_eq!(case(2, "/failure/@type"), "failed");
    assert_eq!(
        case(2, "/failure/@message"),
        "expected 200, got 503 <html> & \"q\" 'a' ]]>"
    );
    assert_eq!(
        case(2, "/failure"),
        "expected 200, got 503 <html> & \"q\" 'a' ]]>\nsecond line\n\n\
         body: ]]> <![CDATA[ x ]]>\u{fffd}nulesc\u{fffd}bell\u{fffd}\r\n日本語 link \u{fffd}end"
    );
    // Timed out: a failure of the check, told apart by its type.
    assert_eq!(case(3, "/failure/@type"), "timeout");
    assert_eq!(case(3, "/failure/@message"), "no verdict within 30s");
    assert_eq!(case(3, "/@time"), "30.000");
    // Error: the check could not observe; the message attribute is the first non-empty line.
    assert_eq!(q(&format!("count({ci}/testcase[4]/failure)")), "0");
    assert_eq!(case(4, "/error/@type"), "error");
    assert_eq!(
        case(4, "/error/@message"),
        "API unreachable: connection refused"
    );
    // Skipped.
    assert_eq!(
        case(5, "/skipped/@message"),
        "needs `ws-echo`, which timed out"
    );
}

#[test]
fn an_empty_run_is_a_valid_document() {
    let Some(xmllint) = xmllint() else { return };
    let xml = junit(&[Suite {
        name: "stack test ci".into(),
        outcomes: &[],
        diagnostics: None,
        timestamp: "2026-12-01T05:00:00Z".into(),
        hostname: None,
        seconds: None,
    }]);
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("junit.xml");
    std::fs::write(&doc, &xml).unwrap();
    let published = support::project_root().join("tests/fixtures/junit/junit-10.xsd");
    validate(&xmllint, &published, &doc).unwrap_or_else(|e| panic!("{e}\n{xml}"));
    assert_eq!(xpath(&xmllint, &doc, "string(/testsuites/@tests)"), "0");
    assert_eq!(
        xpath(&xmllint, &doc, "string(/testsuites/testsuite/@time)"),
        "0.000"
    );
}
