//! Rendering `stack build`: a spinner per image on a terminal (indicatif), plain lines otherwise,
//! one JSON document with `--format json`.

use crate::ops::build::{ImageResult, Outcome, Planned, Report, Reporter};
use crate::ui::Format;
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::collections::HashMap;
use std::sync::Mutex;

pub struct BuildView {
    format: Format,
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
    tty: bool,
}

impl BuildView {
    pub fn new(format: Format) -> Self {
        let tty = format == Format::Human && console::Term::stderr().is_term();
        let multi = MultiProgress::with_draw_target(if tty {
            ProgressDrawTarget::stderr()
        } else {
            ProgressDrawTarget::hidden()
        });
        BuildView {
            format,
            multi,
            bars: Mutex::new(HashMap::new()),
            tty,
        }
    }

    pub(crate) fn say(&self, line: String) {
        if self.format == Format::Json {
            return;
        }
        if self.tty {
            let _ = self.multi.println(line);
        } else {
            eprintln!("{line}");
        }
    }
}

impl Reporter for BuildView {
    fn planned(&self, image: &Planned, cached: bool) {
        let files = format!(
            "{} files, {} re-read",
            image.context.entries.len(),
            image.files_rehashed
        );
        if cached {
            self.say(format!(
                "{}: up to date {} ({files})",
                image.name, image.reference
            ));
            return;
        }
        self.say(format!(
            "{}: building {} from {} ({files})",
            image.name, image.reference, image.context_display
        ));
        if self.tty {
            let bar = self.multi.add(ProgressBar::new_spinner());
            bar.set_style(
                ProgressStyle::with_template("{spinner} {prefix}: {wide_msg}")
                    .expect("static template"),
            );
            bar.set_prefix(image.name.clone());
            bar.enable_steady_tick(std::time::Duration::from_millis(120));
            self.bars.lock().unwrap().insert(image.name.clone(), bar);
        }
    }

    fn line(&self, image: &str, line: &str) {
        if let Some(bar) = self.bars.lock().unwrap().get(image) {
            bar.set_message(line.to_owned());
        }
    }

    fn finished(&self, r: &ImageResult) {
        if let Some(bar) = self.bars.lock().unwrap().remove(&r.name) {
            bar.finish_and_clear();
        }
        match &r.outcome {
            Outcome::Built { seconds } => self.say(format!(
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
                self.say(s);
            }
            Outcome::WouldBuild => {
                self.say(format!("{}: would build {} (dry run)", r.name, r.reference))
            }
            Outcome::UpToDate => {}
        }
        if let Some(d) = &r.delivered {
            self.say(format!("{}: delivered → {d}", r.name));
        }
    }
}

/// The final summary (human) or the whole report (JSON).
pub fn print(report: &Report, format: Format) {
    match format {
        Format::Json => crate::outln!(
            "{}",
            serde_json::to_string_pretty(report).expect("report serializes")
        ),
        _ => {
            let built = report
                .images
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::Built { .. }))
                .count();
            let cached = report
                .images
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::UpToDate))
                .count();
            let failed = report
                .images
                .iter()
                .filter(|i| matches!(i.outcome, Outcome::Failed(_)))
                .count();
            crate::outln!("{built} built, {cached} up to date, {failed} failed");
        }
    }
}

impl crate::ops::up::Reporter for BuildView {
    fn rollout(&self, p: &crate::kube::ResourceProgress) {
        let state = if p.done { "ready" } else { "rolling out" };
        self.say(format!(
            "{}: {}/{} available, {} updated — {state}",
            p.resource, p.available, p.desired, p.updated
        ));
    }
}
