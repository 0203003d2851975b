//! The only place that prints. Ops return reports; this module renders them as human text (colour
//! only on a terminal and without NO_COLOR), one JSON document, or GitHub annotations + step summary.

pub mod build;
pub mod cluster;
pub mod events;
pub mod github;
pub mod init;
pub mod junit;
pub mod live;
pub mod logs;
pub mod promote;
pub mod release;
pub mod test;
pub mod up;
pub mod values;

use crate::diag::{Finding, Severity};
use crate::error::StackError;
use crate::ops::validate::Report;
use console::Style;

/// Writes to stdout. A closed pipe (`stack validate envs | head -1`) ends the process quietly
/// with status 0, as ripgrep does, instead of an error or a panic.
pub fn stdout(text: &str) {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("error: cannot write to stdout: {e}");
    }
}

/// `println!` through [`stdout`].
#[macro_export]
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::ui::stdout(&format!("{}\n", format_args!($($arg)*)))
    };
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    Human,
    Json,
    Github,
    /// YAML (`stack values` only; its human form).
    Yaml,
}

/// `--color`: auto follows the terminal and NO_COLOR; always and never override both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

static COLOR: std::sync::OnceLock<ColorChoice> = std::sync::OnceLock::new();

/// Sets `--color` for the process (once, from `main`), for this module and for indicatif/console.
pub fn set_color(choice: ColorChoice) {
    let _ = COLOR.set(choice);
    match choice {
        ColorChoice::Auto => {}
        ColorChoice::Always | ColorChoice::Never => {
            let on = choice == ColorChoice::Always;
            console::set_colors_enabled(on);
            console::set_colors_enabled_stderr(on);
        }
    }
}

fn color_for(term: console::Term) -> bool {
    match COLOR.get().copied().unwrap_or_default() {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && term.is_term()
                && console::colors_enabled()
        }
    }
}

/// Whether to colour stdout output.
pub fn use_color() -> bool {
    color_for(console::Term::stdout())
}

/// Whether to colour stderr output.
pub fn use_color_stderr() -> bool {
    color_for(console::Term::stderr())
}

struct Styles {
    error: Style,
    warning: Style,
    info: Style,
    dim: Style,
    bold: Style,
}

impl Styles {
    fn new(color: bool) -> Self {
        let s = |st: Style| st.force_styling(color);
        Styles {
            error: s(Style::new().red().bold()),
            warning: s(Style::new().yellow().bold()),
            info: s(Style::new().cyan()),
            dim: s(Style::new().dim()),
            bold: s(Style::new().bold()),
        }
    }
}

fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let c = |s| findings.iter().filter(|f| f.severity == s).count();
    (c(Severity::Error), c(Severity::Warning), c(Severity::Info))
}

fn plural(n: usize, word: &str) -> String {
    format!("{n} {word}{}", if n == 1 { "" } else { "s" })
}

/// Human-readable report.
pub fn validate_human(report: &Report, color: bool) -> String {
    let st = Styles::new(color);
    let mut out = String::new();
    if let Some(why) = &report.nothing_affected {
        out.push_str(&format!("nothing to validate: {why}\n"));
        return out;
    }
    for t in &report.targets {
        out.push_str(&format!(
            "{} {}\n",
            st.bold.apply_to(&t.name),
            st.dim.apply_to(t.layers.join(" → "))
        ));
    }
    for f in &report.findings {
        let (word, style) = match f.severity {
            Severity::Error => ("error", &st.error),
            Severity::Warning => ("warning", &st.warning),
            Severity::Info => ("info", &st.info),
        };
        out.push('\n');
        out.push_str(&format!(
            "{}: {}\n",
            style.apply_to(format!("{word}[{}]", f.rule.name())),
            f.message
        ));
        if let Some(loc) = &f.location {
            out.push_str(&format!("  {} {loc}\n", st.dim.apply_to("-->")));
        }
        if !f.targets.is_empty() {
            out.push_str(&format!(
                "  {} {}\n",
                st.dim.apply_to("= in:"),
                f.targets.join(", ")
            ));
        }
        if let Some(h) = &f.hint {
            out.push_str(&format!("  {} {h}\n", st.dim.apply_to("= hint:")));
        }
    }
    let (e, w, i) = counts(&report.findings);
    let n = report.targets.len();
    let summary = if e == 0 && w == 0 {
        format!("ok: {} of {} valid", plural(n, "target"), report.chart)
    } else {
        format!(
            "{}, {} in {} of {}",
            plural(e, "error"),
            plural(w, "warning"),
            plural(n, "target"),
            report.chart
        )
    };
    let summary = if i > 0 {
        format!("{summary} ({} — see above)", plural(i, "note"))
    } else {
        summary
    };
    out.push('\n');
    out.push_str(&format!(
        "{}\n",
        if e > 0 {
            st.error.apply_to(summary)
        } else {
            st.bold.apply_to(summary)
        }
    ));
    out
}

pub fn validate_json(report: &Report) -> String {
    let mut s = serde_json::to_string_pretty(report).expect("report serializes");
    s.push('\n');
    s
}

/// GitHub workflow commands (`::error file=…,line=…,col=…,title=…::message`, within GitHub's
/// per-step limits: `github::annotations`), then the counts.
pub fn validate_github(report: &Report) -> String {
    let list: Vec<github::Annotation> = report
        .findings
        .iter()
        .map(|f| {
            let mut message = f.message.clone();
            if !f.targets.is_empty() {
                message.push_str(&format!("\nin: {}", f.targets.join(", ")));
            }
            if let Some(h) = &f.hint {
                message.push_str(&format!("\nhint: {h}"));
            }
            github::Annotation {
                level: match f.severity {
                    Severity::Error => github::Level::Error,
                    Severity::Warning => github::Level::Warning,
                    Severity::Info => github::Level::Notice,
                },
                file: f.location.as_ref().map(|l| l.file.to_string()),
                line: f.location.as_ref().map(|l| l.pos.line),
                col: f.location.as_ref().map(|l| l.pos.col),
                title: format!("stack validate: {}", f.rule.name()),
                message,
            }
        })
        .collect();
    let mut out = github::annotations(&list);
    let (e, w, _) = counts(&report.findings);
    out.push_str(&format!(
        "stack validate envs: {}, {} in {}\n",
        plural(e, "error"),
        plural(w, "warning"),
        plural(report.targets.len(), "target")
    ));
    out
}

/// The markdown step summary (templates/validate-summary.md.j2).
pub fn validate_summary(report: &Report) -> String {
    let mut env = minijinja::Environment::new();
    env.add_template(
        "summary",
        include_str!("../../templates/validate-summary.md.j2"),
    )
    .expect("summary template parses");
    let (errors, warnings, _) = counts(&report.findings);
    let ctx = minijinja::context! {
        chart => report.chart, cloud => report.cloud, targets => minijinja::Value::from_serialize(&report.targets),
        findings => minijinja::Value::from_serialize(&report.findings), errors, warnings,
    };
    env.get_template("summary")
        .and_then(|t| t.render(ctx))
        .expect("summary renders")
}

/// Prints a report in the chosen format; for `github`, appends the summary to `$GITHUB_STEP_SUMMARY`
/// (within the step's 1 MiB: `github::append_step_summary`).
pub fn print_validate(report: &Report, format: Format) -> std::io::Result<()> {
    let text = match format {
        Format::Human | Format::Yaml => validate_human(report, use_color()),
        Format::Json => validate_json(report),
        Format::Github => {
            github::append_step_summary(&validate_summary(report))?;
            validate_github(report)
        }
    };
    crate::ui::stdout(&text);
    Ok(())
}

/// An error for the user: `error: …`, the place, `hint: …`.
pub fn print_error(err: &anyhow::Error, format: Format) {
    let stack = err.chain().find_map(|c| c.downcast_ref::<StackError>());
    let hint = stack.and_then(StackError::hint);
    match format {
        Format::Json => {
            let doc = serde_json::json!({ "error": err.to_string(), "hint": hint, "exitCode": exit_code(err) });
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&doc).expect("serializes")
            );
        }
        Format::Github => {
            let (origin, msg) = match stack {
                Some(StackError::Config {
                    origin: Some(o),
                    message,
                    ..
                }) => (Some(o), message.clone()),
                _ => (None, err.to_string()),
            };
            let message = match hint {
                Some(h) => format!("{msg}\nhint: {h}"),
                None => msg,
            };
            stdout(&github::annotations(&[github::Annotation {
                level: github::Level::Error,
                file: origin.map(|o| o.file.to_string()),
                line: origin.map(|o| o.pos.line),
                col: origin.map(|o| o.pos.col),
                title: String::new(),
                message,
            }]));
        }
        Format::Human | Format::Yaml => {
            let st = Styles::new(use_color_stderr());
            eprintln!("{} {err}", st.error.apply_to("error:"));
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            if let Some(h) = hint {
                eprintln!("{} {h}", st.info.apply_to("hint:"));
            }
        }
    }
}

/// The exit code for an error that reached `main`.
pub fn exit_code(err: &anyhow::Error) -> u8 {
    if let Some(e) = err.chain().find_map(|c| c.downcast_ref::<StackError>()) {
        return e.exit_code();
    }
    match err
        .chain()
        .find_map(|c| c.downcast_ref::<crate::tool::RunError>())
    {
        Some(crate::tool::RunError::Failed { .. } | crate::tool::RunError::TimedOut { .. }) => 4,
        Some(crate::tool::RunError::Cancelled { .. }) => 130,
        Some(crate::tool::RunError::Spawn { .. }) => 3,
        None => 2,
    }
}
