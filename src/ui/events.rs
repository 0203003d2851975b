//! Rendering the event stream (`ops::events`) of every stage, as things happen.
//!
//! - human on a terminal: one line per event on stderr, a spinner per building image (indicatif);
//!   followed container logs on stdout (they are the session's output);
//! - human elsewhere: the same lines, no spinners;
//! - `--format json`: each event as one JSON line on stderr — stdout keeps exactly the report;
//! - `--format github`: plain lines on stdout, problems and failed builds as `::error::` workflow
//!   commands.
//!
//! `-q` keeps only problems and failures; `-v` adds every line a tool or a build prints.

use crate::kube::forward::ForwardEvent as F;
use crate::ops::build::{ImageResult, Outcome};
use crate::ops::events::{Event, Sink};
use crate::ui::Format;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

/// How much progress to show (`-q`, default, `-v`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord)]
pub enum Verbosity {
    Quiet,
    #[default]
    Normal,
    Verbose,
}

impl Verbosity {
    pub fn from_flags(quiet: bool, verbose: bool) -> Self {
        match (quiet, verbose) {
            (true, _) => Verbosity::Quiet,
            (false, true) => Verbosity::Verbose,
            (false, false) => Verbosity::Normal,
        }
    }
}

pub struct View {
    format: Format,
    verbosity: Verbosity,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    tty: bool,
    color: bool,
    /// `--format github`: a `::group::` is open (closed by the next phase, or an empty one).
    group_open: Mutex<bool>,
}

impl View {
    pub fn new(format: Format, verbosity: Verbosity) -> Self {
        let tty = format == Format::Human && console::Term::stderr().is_term();
        let multi = MultiProgress::with_draw_target(if tty && verbosity > Verbosity::Quiet {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        View {
            format,
            verbosity,
            multi,
            bars: Mutex::new(HashMap::new()),
            tty,
            color: crate::ui::use_color_stderr(),
            group_open: Mutex::new(false),
        }
    }

    fn say(&self, line: String) {
        if self.format == Format::Github {
            crate::outln!("{line}");
        } else if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }

    fn problem(&self, line: String) {
        if self.format == Format::Github {
            let escaped = line
                .replace('%', "%25")
                .replace('\r', "%0D")
                .replace('\n', "%0A");
            crate::outln!("::error title=stack::{escaped}");
        } else {
            self.say(line);
        }
    }

    fn dim(&self, s: &str) -> String {
        if self.color {
            console::style(s).dim().to_string()
        } else {
            s.to_owned()
        }
    }

    fn spinner(&self, image: &str) {
        if !self.tty || self.verbosity == Verbosity::Quiet {
            return;
        }
        let bar = self.multi.add(ProgressBar::new_spinner());
        bar.set_style(
            ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}")
                .expect("static template"),
        );
        bar.set_prefix(image.to_owned());
        bar.enable_steady_tick(std::time::Duration::from_millis(120));
        self.bars.lock().unwrap().insert(image.to_owned(), bar);
    }

    fn finished(&self, r: &ImageResult) {
        if let Some(bar) = self.bars.lock().unwrap().remove(&r.name) {
            bar.finish_and_clear();
        }
        let quiet = self.verbosity == Verbosity::Quiet;
        match &r.outcome {
            Outcome::Built { seconds } if !quiet => self.say(format!(
                "{}: built {} in {seconds:.1}s",
                r.name, r.reference
            )),
            Outcome::Failed(f) => {
                let mut s = format!("{}: build FAILED", r.name);
                if let Some(step) = &f.step {
                    s.push_str(&format!(" at {step}"));
                }
                s.push_str(&format!("\n  error: {}", f.message.trim()));
                if !f.last_lines.is_empty() {
                    s.push_str("\n  last output:");
                    for l in &f.last_lines {
                        s.push_str(&format!("\n    {l}"));
                    }
                }
                self.problem(s);
            }
            Outcome::WouldBuild if !quiet => {
                self.say(format!("{}: would build {} (dry run)", r.name, r.reference))
            }
            _ => {}
        }
        if let (Some(d), false) = (&r.delivered, quiet) {
            self.say(format!("{}: delivered → {d}", r.name));
        }
    }

    /// The human line for an event, if it has one at this verbosity.
    fn line(&self, event: &Event) -> Option<String> {
        let verbose = self.verbosity == Verbosity::Verbose;
        Some(match event {
            Event::Step { why, line, dry_run } => {
                let dollar = self.dim("$");
                if *dry_run {
                    format!("would {why}:\n  {dollar} {line}")
                } else {
                    format!("{why}:\n  {dollar} {line}")
                }
            }
            Event::Output { tool, line } if verbose => self.dim(&format!("  {tool} │ {line}")),
            Event::Output { .. } => return None,
            Event::ImagePlanned {
                image,
                reference,
                context,
                files,
                rehashed,
                cached,
            } => {
                let files = format!("{files} files, {rehashed} re-read");
                if *cached {
                    format!("{image}: up to date {reference} ({files})")
                } else {
                    self.spinner(image);
                    format!("{image}: building {reference} from {context} ({files})")
                }
            }
            Event::ImageOutput { image, line } => {
                if let Some(bar) = self.bars.lock().unwrap().get(image) {
                    bar.set_message(line.clone());
                }
                if !verbose {
                    return None;
                }
                self.dim(&format!("  {image} │ {line}"))
            }
            Event::ImageFinished(_) | Event::Log(_) | Event::Problem { .. } => return None,
            Event::Rollout(p) => format!(
                "{}: {}/{} available, {} updated — {}",
                p.resource,
                p.available,
                p.desired,
                p.updated,
                if p.done { "ready" } else { "rolling out" }
            ),
            Event::Watching { roots } => format!(
                "watching {} — save a file to sync it; Ctrl-C to stop",
                roots.join(", ")
            ),
            Event::Synced {
                image,
                files,
                deletes,
                pods,
                millis,
            } => format!(
                "{image}: synced {files} file(s), {deletes} deletion(s) into {} in {millis} ms",
                if pods.is_empty() {
                    "no running pod".to_owned()
                } else {
                    pods.join(", ")
                }
            ),
            Event::Rebuilding { image, because } => {
                format!("{image}: {because} changed — rebuilding and redeploying")
            }
            Event::Redeployed {
                release,
                revision,
                upgraded,
            } => match (revision, upgraded) {
                (Some(r), true) => {
                    format!("redeployed: release {release} upgraded to revision {r}")
                }
                (Some(r), false) => {
                    format!("redeployed: release {release} unchanged at revision {r}")
                }
                (None, _) => format!("redeployed: release {release}"),
            },
            Event::DotenvSynced { object, keys } => format!("{object}: {keys} key(s) synced"),
            Event::Forward { label, news } => match news {
                F::Listening { port } => format!("forward {label} → http://127.0.0.1:{port}"),
                F::PortTaken { wanted, got } => format!(
                    "forward {label}: local port {wanted} is taken, using 127.0.0.1:{got} instead"
                ),
                F::Connected { pod } => format!("forward {label}: via pod/{pod}"),
                F::Reconnecting {
                    pod,
                    error,
                    attempt,
                } => format!(
                    "forward {label}: reconnecting{} (attempt {attempt}): {error}",
                    pod.as_deref()
                        .map(|p| format!(" to pod/{p}"))
                        .unwrap_or_default()
                ),
                F::GaveUp { error, attempts } => {
                    format!("forward {label}: gave up after {attempts} attempts: {error}")
                }
                F::StreamError { pod, error } => format!("forward {label}: pod/{pod}: {error}"),
            },
            Event::Stopped => "stopped: port-forwards and watchers closed".to_owned(),
            Event::CheckStarted { name, kind } if verbose => {
                self.dim(&format!("check {name} ({kind}): started"))
            }
            Event::CheckStarted { .. } | Event::Phase { .. } => return None,
            Event::CheckFinished(o) => crate::ui::test::check_line(o, self.color),
        })
    }
}

impl Sink for View {
    fn emit(&self, event: Event) {
        if self.format == Format::Json {
            // One JSON line per event on stderr: stdout carries exactly the report.
            let line = serde_json::to_string(&event).expect("events serialize");
            eprintln!("{line}");
            return;
        }
        match &event {
            Event::ImageFinished(r) => return self.finished(r),
            Event::Problem { message } => return self.problem(format!("problem: {message}")),
            Event::Phase { name } => {
                if self.format == Format::Github {
                    let mut open = self.group_open.lock().unwrap();
                    if *open {
                        crate::outln!("::endgroup::");
                    }
                    *open = !name.is_empty();
                    if *open {
                        crate::outln!("::group::{name}");
                    }
                }
                return;
            }
            Event::Log(line) => {
                if self.verbosity > Verbosity::Quiet {
                    crate::outln!(
                        "{}",
                        crate::ui::logs::log_line(line, 24, crate::ui::use_color())
                    );
                }
                return;
            }
            _ => {}
        }
        if self.verbosity == Verbosity::Quiet {
            return;
        }
        if let Some(line) = self.line(&event) {
            self.say(line);
        }
    }
}
