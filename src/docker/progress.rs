//! What a build's output stream becomes: progress lines for the UI, and for a failed build the
//! step that failed and its last lines of output. BuildKit reports a graph of steps (vertexes)
//! whose output arrives as interleaved byte chunks; the classic builder (and daemons that answer
//! BuildKit requests with it, e.g. Podman's Docker API) sends plain `stream` text with `Step n/m`
//! lines. Both fold into the same `Progress`.

use super::buildkit::Status;
use std::collections::{HashMap, VecDeque};

/// Lines of output kept for a failure report (per step, and overall).
const KEEP: usize = 12;

#[derive(Default)]
pub struct Progress {
    steps: HashMap<String, Step>,
    /// The first step that failed on its own (not cancelled because another one failed).
    failed: Option<String>,
    /// The classic builder's current `Step n/m : …` line.
    classic_step: Option<String>,
    /// The last lines of output overall (whichever builder).
    recent: VecDeque<String>,
}

#[derive(Default)]
struct Step {
    name: String,
    announced: bool,
    cached: bool,
    error: Option<String>,
    /// Output after the last newline, waiting for the rest of its line.
    partial: Vec<u8>,
    lines: VecDeque<String>,
}

impl Progress {
    /// Folds in one BuildKit status message; `line` receives the progress lines it produces:
    /// a step's name when it starts, `CACHED <step>`, each line of output, `WARN: …`,
    /// `ERROR <step>: …`.
    pub fn buildkit(&mut self, status: Status, line: &mut dyn FnMut(&str)) {
        for v in status.vertexes {
            let step = self.steps.entry(v.digest.clone()).or_default();
            if !v.name.is_empty() {
                step.name = v.name;
            }
            if v.cached && !step.cached {
                step.cached = true;
                step.announced = true;
                line(&format!("CACHED {}", step.name));
            } else if v.started && !step.announced {
                step.announced = true;
                line(&step.name);
            }
            if v.completed {
                if let Some(rest) = take_partial(step) {
                    line(&rest);
                    push(&mut self.recent, rest);
                }
            }
            let failed_now = !v.error.is_empty() && step.error.is_none();
            if failed_now {
                line(&format!("ERROR {}: {}", step.name, v.error));
                step.error = Some(v.error.clone());
            }
            if failed_now && self.replaces_failed(&v.error) {
                self.failed = Some(v.digest);
            }
        }
        for log in status.logs {
            let step = self.steps.entry(log.vertex).or_default();
            step.partial.extend_from_slice(&log.msg);
            let Some(end) = step.partial.iter().rposition(|&b| b == b'\n') else {
                continue;
            };
            let complete: Vec<u8> = step.partial.drain(..=end).collect();
            for l in String::from_utf8_lossy(&complete)
                .lines()
                .filter_map(visible)
            {
                line(&l);
                push(&mut step.lines, l.clone());
                push(&mut self.recent, l);
            }
        }
        for w in status.warnings {
            line(&format!("WARN: {}", w.short.trim_end()));
        }
    }

    /// Whether a step failing with `error` is the one to report: the first failure, unless that
    /// was a step cancelled because another one failed.
    fn replaces_failed(&self, error: &str) -> bool {
        match &self.failed {
            None => true,
            Some(d) => {
                !is_cancellation(error)
                    && self.steps[d].error.as_deref().is_some_and(is_cancellation)
            }
        }
    }

    /// Folds in the classic builder's `stream` text.
    pub fn classic(&mut self, text: &str, line: &mut dyn FnMut(&str)) {
        for l in text.lines().filter_map(visible) {
            if l.starts_with("Step ") {
                self.classic_step = Some(l.clone());
            }
            line(&l);
            push(&mut self.recent, l);
        }
    }

    /// The step that failed: BuildKit's step name (`[stage 2/3] RUN …`), else the classic
    /// builder's last `Step n/m : …` line.
    pub fn failed_step(&self) -> Option<String> {
        self.failed
            .as_ref()
            .map(|d| self.steps[d].name.clone())
            .or_else(|| self.classic_step.clone())
    }

    /// The failed step's last lines of output (a half-written last line included); with no
    /// failed BuildKit step, the last lines of output overall.
    pub fn last_lines(&self) -> Vec<String> {
        match &self.failed {
            Some(d) => {
                let step = &self.steps[d];
                let mut lines: Vec<String> = step.lines.iter().cloned().collect();
                if let Some(rest) = visible(&String::from_utf8_lossy(&step.partial)) {
                    lines.push(rest);
                }
                let skip = lines.len().saturating_sub(KEEP);
                lines.split_off(skip)
            }
            None => self.recent.iter().cloned().collect(),
        }
    }
}

/// BuildKit cancels the steps running beside one that fails.
fn is_cancellation(error: &str) -> bool {
    error.ends_with("context canceled") || error == "canceled"
}

fn take_partial(step: &mut Step) -> Option<String> {
    let rest = std::mem::take(&mut step.partial);
    let rest = visible(&String::from_utf8_lossy(&rest))?;
    push(&mut step.lines, rest.clone());
    Some(rest)
}

/// A line as a terminal would leave it (what follows the last `\r` of a progress bar), trailing
/// blanks trimmed; `None` when nothing visible remains.
fn visible(line: &str) -> Option<String> {
    let shown = line
        .rsplit('\r')
        .find(|s| !s.trim().is_empty())
        .unwrap_or("");
    let shown = shown.trim_end();
    (!shown.is_empty()).then(|| shown.to_owned())
}

fn push(lines: &mut VecDeque<String>, line: String) {
    lines.push_back(line);
    if lines.len() > KEEP {
        lines.pop_front();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::docker::buildkit::{decode_aux, Log, Vertex, Warning};

    fn vertex(digest: &str, name: &str) -> Vertex {
        Vertex {
            digest: digest.into(),
            name: name.into(),
            ..Vertex::default()
        }
    }

    fn log(digest: &str, msg: &str) -> Log {
        Log {
            vertex: digest.into(),
            msg: msg.as_bytes().to_vec(),
        }
    }

    fn fold(messages: Vec<Status>) -> (Progress, Vec<String>) {
        let mut p = Progress::default();
        let mut lines = Vec::new();
        for m in messages {
            p.buildkit(m, &mut |l| lines.push(l.to_owned()));
        }
        (p, lines)
    }

    #[test]
    fn a_failing_run_from_a_real_daemon() {
        // The rig's dockerd (Engine 20.10.24) building `RUN echo preparing && echo "disk on fire"
        // >&2 && exit 7`.
        let messages: Vec<Status> = include_str!("testdata/failing-run.jsonl")
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
            .filter(|l| l["id"] == "moby.buildkit.trace")
            .map(|l| decode_aux(l["aux"].as_str().unwrap()).unwrap())
            .collect();
        let (p, lines) = fold(messages);
        let run = r#"[2/2] RUN echo preparing && echo "disk on fire" >&2 && exit 7"#;
        assert_eq!(p.failed_step().as_deref(), Some(run));
        assert_eq!(p.last_lines(), ["disk on fire", "preparing"]);
        assert_eq!(
            lines,
            [
                "[internal] load remote build context".to_owned(),
                "copy /context /".to_owned(),
                "[internal] load metadata for docker.io/library/busybox:latest".to_owned(),
                "CACHED [1/2] FROM docker.io/library/busybox".to_owned(),
                run.to_owned(),
                "disk on fire".to_owned(),
                "preparing".to_owned(),
                format!(
                    "ERROR {run}: executor failed running [/bin/sh -c echo preparing && echo \"disk on fire\" >&2 && exit 7]: exit code: 7"
                ),
            ]
        );
    }

    #[test]
    fn output_chunks_become_lines_per_step_and_progress_bars_keep_their_last_state() {
        let mut a = vertex("a", "[a 2/2] RUN make");
        a.started = true;
        let mut b = vertex("b", "[b 2/2] RUN fetch");
        b.started = true;
        let (p, lines) = fold(vec![
            Status {
                vertexes: vec![a, b],
                ..Status::default()
            },
            Status {
                logs: vec![log("a", "compiling o"), log("b", " 10%\r 50%\r100%\n")],
                ..Status::default()
            },
            Status {
                logs: vec![log("a", "ne\n\ncompiling two\nlinking")],
                warnings: vec![Warning {
                    vertex: "a".into(),
                    short: "FromAsCasing: 'as' and 'FROM' keywords' casing do not match\n".into(),
                }],
                ..Status::default()
            },
        ]);
        assert_eq!(
            lines,
            [
                "[a 2/2] RUN make",
                "[b 2/2] RUN fetch",
                "100%",
                "compiling one",
                "compiling two",
                "WARN: FromAsCasing: 'as' and 'FROM' keywords' casing do not match",
            ]
        );
        // No step failed: the last lines overall.
        assert_eq!(p.failed_step(), None);
        assert_eq!(p.last_lines(), ["100%", "compiling one", "compiling two"]);
    }

    #[test]
    fn the_step_that_failed_is_not_one_cancelled_because_of_it() {
        let mut cancelled = vertex("b", "[b 2/2] RUN sleep 100");
        cancelled.error = "context canceled".into();
        let mut failed = vertex("a", "[a 3/3] RUN make");
        failed.error =
            "process \"/bin/sh -c make\" did not complete successfully: exit code: 2".into();
        let mut unfinished = log("a", "error: missing separator");
        unfinished.vertex = "a".into();
        let (p, _) = fold(vec![
            Status {
                logs: vec![log("a", "make: entering\n"), log("b", "sleeping\n")],
                ..Status::default()
            },
            Status {
                vertexes: vec![cancelled],
                ..Status::default()
            },
            Status {
                vertexes: vec![failed],
                logs: vec![unfinished],
                ..Status::default()
            },
        ]);
        assert_eq!(p.failed_step().as_deref(), Some("[a 3/3] RUN make"));
        assert_eq!(
            p.last_lines(),
            ["make: entering", "error: missing separator"]
        );
    }

    #[test]
    fn only_the_last_lines_are_kept() {
        let output: String = (1..=40).map(|i| format!("line {i}\n")).collect();
        let mut failed = vertex("a", "[2/2] RUN noisy");
        failed.error = "exit code: 1".into();
        let (p, _) = fold(vec![Status {
            logs: vec![log("a", &output)],
            vertexes: vec![failed],
            ..Status::default()
        }]);
        let last = p.last_lines();
        assert_eq!(last.len(), KEEP);
        assert_eq!(last.first().map(String::as_str), Some("line 29"));
        assert_eq!(last.last().map(String::as_str), Some("line 40"));
    }

    #[test]
    fn classic_output_names_the_step_and_keeps_the_last_lines() {
        let mut p = Progress::default();
        let mut lines = Vec::new();
        p.classic(
            "Step 1/2 : FROM busybox\n ---> 2fa5b1d2246f\nStep 2/2 : RUN exit 3\n",
            &mut |l| lines.push(l.to_owned()),
        );
        p.classic(" ---> Running in 4ad1\n\n", &mut |l| {
            lines.push(l.to_owned())
        });
        assert_eq!(p.failed_step().as_deref(), Some("Step 2/2 : RUN exit 3"));
        assert_eq!(lines.len(), 4);
        assert_eq!(p.last_lines(), lines);
    }
}
