//! Declarative checks: what `stack test` runs against a test release (and `stack live verify`
//! against a live host). Below the stages: the stage resolves where the release runs and hands
//! a [`Ctx`]; this module loads the checks (`load`), runs them (`run_all`: independent checks in
//! parallel, bounded, `needs:` respected, one overall deadline) and returns one [`Outcome`] per
//! check in declaration order.
//!
//! Kinds, one module each, each `async fn run(spec, ctx, deadline) -> Finished`:
//! `ready` (kstatus), `assert` (subset match + field diff; `absent`), `http` (through an
//! in-process port-forward or to a URL; WebSocket upgrade), `logs` (a regex in containers' logs
//! since the deploy), `command` (a local process, its exit code), `job` (a Job/Pod in the cluster,
//! its exit code and logs).
//!
//! Invariants: a failure (the condition was observed not to hold), a timeout (no verdict in time)
//! and an error (the check could not observe: API unreachable, bad manifest, command not found)
//! are told apart; nothing a check reports contains a value of [`Ctx::secrets`] (masked).

mod assert;
mod command;
mod http;
mod job;
pub mod load;
mod logs;
mod ready;
pub mod spec;

use crate::kube::forward::{Forward, ForwardTarget};
use crate::ops::events::{Event, Sink};
use crate::yaml::Origin;
use futures::stream::{FuturesUnordered, StreamExt};
use serde::Serialize;
use std::collections::BTreeMap;
use std::future::Future;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

pub use load::load;
pub use spec::CheckSpec;

/// Grace a kind gets past its own deadline to report what it saw before it counts as timed out.
const GRACE: Duration = Duration::from_secs(2);
/// First pause between two attempts of a polled check; doubled up to `MAX_PAUSE`.
const FIRST_PAUSE: Duration = Duration::from_millis(200);
const MAX_PAUSE: Duration = Duration::from_secs(1);

/// A loaded, validated check.
#[derive(Clone, Debug)]
pub struct Check {
    pub spec: CheckSpec,
    /// `ready`, `assert`, `absent`, `http`, `logs`, `command` or `job`.
    pub kind: &'static str,
    /// Where it is defined (the list item).
    pub origin: Origin,
    pub timeout: Duration,
}

/// A check's verdict.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Status {
    Passed,
    /// The condition was observed not to hold (or the command/job exited non-zero).
    Failed,
    /// No verdict within the check's timeout (or the run's).
    TimedOut,
    /// The check could not observe (API unreachable, bad manifest, command not found).
    Error,
    /// A check it needs did not pass, or the run's deadline came first.
    Skipped,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Passed => "passed",
            Status::Failed => "failed",
            Status::TimedOut => "timed out",
            Status::Error => "error",
            Status::Skipped => "skipped",
        }
    }
}

/// What a kind's run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finished {
    pub status: Status,
    /// One line: what passed, or what was expected and what was seen.
    pub message: String,
    /// The evidence: a field diff, the last response, a log tail, the command's output.
    pub detail: String,
}

impl Finished {
    pub fn passed(message: impl Into<String>) -> Self {
        Self::with(Status::Passed, message, String::new())
    }
    pub fn failed(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::with(Status::Failed, message, detail)
    }
    pub fn error(message: impl Into<String>) -> Self {
        Self::with(Status::Error, message, String::new())
    }
    pub fn timed_out(message: impl Into<String>, detail: impl Into<String>) -> Self {
        Self::with(Status::TimedOut, message, detail)
    }
    pub fn with(status: Status, message: impl Into<String>, detail: impl Into<String>) -> Self {
        Finished {
            status,
            message: message.into(),
            detail: detail.into(),
        }
    }
}

/// One check's result, for every renderer (human, JSON, JUnit, GitHub).
#[derive(Clone, Debug, Serialize)]
pub struct Outcome {
    pub name: String,
    pub kind: &'static str,
    pub status: Status,
    pub seconds: f64,
    pub message: String,
    #[serde(skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// `file:line:col` of the definition.
    pub definition: String,
    #[serde(skip)]
    pub origin: Origin,
}

/// One observation of a polled check.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Attempt {
    Pass(String),
    /// Not (yet) as expected: what was seen, and the evidence.
    NotYet {
        message: String,
        detail: String,
    },
    /// Could not look (API error, connection refused by the forward itself).
    Error(String),
}

/// Repeats `attempt` (pausing 200 ms, doubling to 1 s) until it passes or `deadline` passes;
/// the verdict is then the last observation: not as expected → Failed, could not look → Error.
pub async fn poll<F, Fut>(deadline: Instant, waited_for: Duration, mut attempt: F) -> Finished
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Attempt>,
{
    let mut pause = FIRST_PAUSE;
    loop {
        let seen = attempt().await;
        let now = Instant::now();
        match seen {
            Attempt::Pass(message) => return Finished::passed(message),
            _ if now + pause < deadline => {}
            Attempt::NotYet { message, detail } => {
                return Finished::failed(
                    format!("{message} (still so after {})", seconds(waited_for)),
                    detail,
                )
            }
            Attempt::Error(message) => {
                return Finished::error(format!(
                    "{message} (still so after {})",
                    seconds(waited_for)
                ))
            }
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_PAUSE);
    }
}

fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s.fract() == 0.0 {
        format!("{s:.0}s")
    } else {
        format!("{s:.1}s")
    }
}

/// What the checks run against: the release's namespace on a cluster, forwards, template values.
pub struct Ctx {
    pub client: ::kube::Client,
    pub namespace: String,
    pub release: String,
    pub root: PathBuf,
    /// When the release was deployed: `logs` checks look at lines from then on.
    pub since: k8s_openapi::jiff::Timestamp,
    /// Local ports of the named forwards (`test.forwards`), started by the stage.
    pub forwards: BTreeMap<String, u16>,
    /// Values masked in everything a check reports (tokens, passwords from the environment).
    pub secrets: Vec<String>,
    /// Ended when the run ends: every forward a check opened stops.
    pub shutdown: CancellationToken,
    pub sink: std::sync::Arc<dyn Sink>,
    /// `stack live verify`: where the checks' forwards point instead (`https://<host>`): an
    /// `http` check naming a forward, Service or Deployment requests `<base_url><path>`, and
    /// `forwards.<name>.url` / `.ws` render as it. No port-forward is opened.
    pub base_url: Option<String>,
    /// Ad-hoc forwards (`http: {service, port}`), shared by every check naming the same one.
    opened: Mutex<BTreeMap<String, u16>>,
}

impl Ctx {
    pub fn new(
        client: ::kube::Client,
        namespace: &str,
        release: &str,
        root: PathBuf,
        sink: std::sync::Arc<dyn Sink>,
    ) -> Ctx {
        Ctx {
            client,
            namespace: namespace.to_owned(),
            release: release.to_owned(),
            root,
            since: k8s_openapi::jiff::Timestamp::now(),
            forwards: BTreeMap::new(),
            secrets: Vec::new(),
            shutdown: CancellationToken::new(),
            sink,
            base_url: None,
            opened: Mutex::new(BTreeMap::new()),
        }
    }

    /// `text` with every secret replaced by `***`.
    pub fn mask(&self, text: &str) -> String {
        let mut out = text.to_owned();
        for s in self.secrets.iter().filter(|s| !s.is_empty()) {
            out = out.replace(s.as_str(), "***");
        }
        out
    }

    /// The values templates see: `release`, `namespace`, `forwards.<name>.url|ws|port`,
    /// `env.<VAR>` (the process environment).
    pub fn template_values(&self) -> serde_json::Value {
        let forwards: serde_json::Map<String, serde_json::Value> = self
            .forwards
            .iter()
            .map(|(name, port)| {
                let value = match &self.base_url {
                    Some(base) => serde_json::json!({
                        "url": base,
                        "ws": ws_of(base),
                        "port": port,
                    }),
                    None => serde_json::json!({
                        "url": format!("http://127.0.0.1:{port}"),
                        "ws": format!("ws://127.0.0.1:{port}"),
                        "port": port,
                    }),
                };
                (name.clone(), value)
            })
            .collect();
        let env: serde_json::Map<String, serde_json::Value> = std::env::vars()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        serde_json::json!({
            "release": self.release,
            "namespace": self.namespace,
            "forwards": forwards,
            "env": env,
        })
    }

    /// Renders a template (strict: an undefined value is an error naming it).
    pub fn render(&self, template: &str) -> Result<String, String> {
        let mut env = minijinja::Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.render_str(template, self.template_values())
            .map_err(|e| format!("template `{template}`: {e}"))
    }

    /// A local port forwarding to `target`'s `port`, opened on first use and shared.
    pub async fn forward(&self, target: ForwardTarget, port: u16) -> Result<u16, String> {
        let key = format!("{target} {port}");
        if let Some(p) = self.opened.lock().expect("forwards lock").get(&key) {
            return Ok(*p);
        }
        let local = open_forward(
            &self.client,
            target,
            port,
            self.sink.clone(),
            self.shutdown.child_token(),
        )
        .await?;
        self.opened
            .lock()
            .expect("forwards lock")
            .insert(key, local);
        Ok(local)
    }
}

/// `https://h` → `wss://h`, `http://h` → `ws://h`.
pub fn ws_of(base: &str) -> String {
    if let Some(rest) = base.strip_prefix("https://") {
        format!("wss://{rest}")
    } else if let Some(rest) = base.strip_prefix("http://") {
        format!("ws://{rest}")
    } else {
        base.to_owned()
    }
}

/// Starts an in-process port-forward (spawned on the process runtime, ended by `shutdown`) and
/// returns its local port once it listens.
pub async fn open_forward(
    client: &::kube::Client,
    target: ForwardTarget,
    port: u16,
    sink: std::sync::Arc<dyn Sink>,
    shutdown: CancellationToken,
) -> Result<u16, String> {
    let label = format!("{target} {port}");
    let (tx, rx) = tokio::sync::oneshot::channel();
    let tx = Mutex::new(Some(tx));
    let forward = Forward {
        target,
        remote_port: port,
        local_port: 0,
    };
    let news_label = label.clone();
    let events = move |news: crate::kube::forward::ForwardEvent| {
        if let crate::kube::forward::ForwardEvent::Listening { port } = news {
            if let Some(tx) = tx.lock().expect("forward lock").take() {
                let _ = tx.send(port);
            }
        }
        sink.emit(Event::Forward {
            label: news_label.clone(),
            news,
        });
    };
    let serve = crate::kube::forward::serve(client.clone(), forward, events, shutdown);
    let task = tokio::spawn(serve);
    match tokio::time::timeout(Duration::from_secs(10), rx).await {
        Ok(Ok(port)) => Ok(port),
        _ => {
            task.abort();
            Err(format!(
                "the port-forward to {label} did not start listening"
            ))
        }
    }
}

/// Runs every check: a check starts once every check it needs has passed (at most `jobs` at
/// once); one whose need did not pass is skipped. When `overall` runs out, running checks time
/// out and the rest are skipped. Outcomes come back in declaration order; each is also emitted
/// as it finishes.
pub async fn run_all(checks: &[Check], ctx: &Ctx, jobs: usize, overall: Duration) -> Vec<Outcome> {
    let jobs = jobs.max(1);
    let end = Instant::now() + overall;
    let mut done: Vec<Option<Outcome>> = vec![None; checks.len()];
    let mut started = vec![false; checks.len()];
    let mut running = FuturesUnordered::new();
    loop {
        // Skip what can no longer run, start what can.
        let mut progressed = true;
        while progressed {
            progressed = false;
            for (i, check) in checks.iter().enumerate() {
                if started[i] {
                    continue;
                }
                let needs: Vec<Option<Status>> = check
                    .spec
                    .needs
                    .iter()
                    .map(|n| {
                        let j = checks.iter().position(|c| &c.spec.name == n)?;
                        done[j].as_ref().map(|o| o.status)
                    })
                    .collect();
                if let Some(failed) = check
                    .spec
                    .needs
                    .iter()
                    .zip(&needs)
                    .find_map(|(n, s)| s.filter(|s| *s != Status::Passed).map(|s| (n, s)))
                {
                    started[i] = true;
                    let outcome = outcome(
                        check,
                        Finished::with(
                            Status::Skipped,
                            format!("needs `{}`, which {}", failed.0, failed.1.as_str()),
                            "",
                        ),
                        0.0,
                    );
                    ctx.sink.emit(Event::CheckFinished(outcome.clone()));
                    done[i] = Some(outcome);
                    progressed = true;
                } else if needs.iter().all(Option::is_some) && running.len() < jobs {
                    started[i] = true;
                    ctx.sink.emit(Event::CheckStarted {
                        name: check.spec.name.clone(),
                        kind: check.kind,
                    });
                    running.push(run_one(i, check, ctx));
                    progressed = true;
                }
            }
        }
        if running.is_empty() {
            break;
        }
        match tokio::time::timeout_at(end, running.next()).await {
            Ok(Some((i, outcome))) => {
                ctx.sink.emit(Event::CheckFinished(outcome.clone()));
                done[i] = Some(outcome);
            }
            Ok(None) => break,
            Err(_) => break,
        }
    }
    // The run's deadline: whatever still runs timed out, whatever never started is skipped.
    let message = format!("the run's timeout ({}) ran out", seconds(overall));
    checks
        .iter()
        .zip(done)
        .zip(started)
        .map(|((check, outcome), was_started)| {
            outcome.unwrap_or_else(|| {
                let finished = if was_started {
                    Finished::timed_out(message.clone(), "")
                } else {
                    Finished::with(Status::Skipped, message.clone(), "")
                };
                let o = self::outcome(check, finished, 0.0);
                ctx.sink.emit(Event::CheckFinished(o.clone()));
                o
            })
        })
        .collect()
}

/// Renders `{{ release }}`, `{{ namespace }}` (and whatever `values` holds) in every string of
/// every check, before the run: `ready: deployment/{{ release }}-api` names the object of this
/// run's release. A string whose template needs more (`{{ forwards.api.url }}`, `{{ env.X }}`)
/// is left for its kind to render when it runs.
pub fn render_names(checks: &mut [Check], values: &serde_json::Value) {
    fn walk(v: &mut serde_json::Value, env: &minijinja::Environment, values: &serde_json::Value) {
        match v {
            serde_json::Value::String(s) if s.contains("{{") => {
                if let Ok(r) = env.render_str(s, values) {
                    *s = r;
                }
            }
            serde_json::Value::Array(items) => items.iter_mut().for_each(|i| walk(i, env, values)),
            serde_json::Value::Object(m) => m.values_mut().for_each(|i| walk(i, env, values)),
            _ => {}
        }
    }
    let mut env = minijinja::Environment::new();
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for check in checks {
        let mut json = serde_json::to_value(&check.spec).expect("check specs serialize");
        walk(&mut json, &env, values);
        if let Ok(spec) = serde_json::from_value(json) {
            check.spec = spec;
        }
    }
}

async fn run_one(i: usize, check: &Check, ctx: &Ctx) -> (usize, Outcome) {
    let start = Instant::now();
    let deadline = start + check.timeout;
    let work = async {
        let s = &check.spec;
        if let Some(spec) = &s.ready {
            ready::run(spec, ctx, deadline, check.timeout).await
        } else if let Some(object) = &s.assert {
            assert::run(object, ctx, deadline, check.timeout).await
        } else if let Some(object) = &s.absent {
            assert::absent(object, ctx, deadline, check.timeout).await
        } else if let Some(spec) = &s.http {
            http::run(spec, ctx, deadline, check.timeout).await
        } else if let Some(spec) = &s.logs {
            logs::run(spec, ctx, deadline, check.timeout).await
        } else if let Some(spec) = &s.command {
            command::run(spec, ctx, deadline, check.timeout).await
        } else if let Some(spec) = &s.job {
            job::run(spec, ctx, deadline, check.timeout).await
        } else {
            unreachable!("check::load admits only checks with exactly one kind")
        }
    };
    let finished = match tokio::time::timeout_at(deadline + GRACE, work).await {
        Ok(f) => f,
        Err(_) => Finished::timed_out(format!("no verdict within {}", seconds(check.timeout)), ""),
    };
    let finished = Finished {
        status: finished.status,
        message: ctx.mask(&finished.message),
        detail: ctx.mask(&finished.detail),
    };
    (i, outcome(check, finished, start.elapsed().as_secs_f64()))
}

fn outcome(check: &Check, f: Finished, seconds: f64) -> Outcome {
    Outcome {
        name: check.spec.name.clone(),
        kind: check.kind,
        status: f.status,
        seconds,
        message: f.message,
        detail: f.detail,
        definition: check.origin.to_string(),
        origin: check.origin.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::events::Collect;
    use std::sync::Arc;

    /// A `command` check (no cluster needed) named `name` running `sh -c script`.
    fn check(name: &str, script: &str, needs: &[&str], timeout: Duration) -> Check {
        let spec: CheckSpec = serde_json::from_value(serde_json::json!({
            "name": name,
            "needs": needs,
            "command": { "run": ["sh", "-c", script] },
        }))
        .unwrap();
        Check {
            spec,
            kind: "command",
            origin: crate::config::file_origin("checks.yaml"),
            timeout,
        }
    }

    fn run(checks: &[Check], jobs: usize, overall: Duration) -> (Vec<Outcome>, Vec<Event>) {
        let events = Arc::new(Collect::default());
        let outcomes = crate::rt::block_on(async {
            // Never contacted: command checks need no cluster.
            let config = ::kube::Config::new("http://127.0.0.1:9".parse().unwrap());
            let client = ::kube::Client::try_from(config).unwrap();
            let ctx = Ctx::new(client, "ns", "rel", std::env::temp_dir(), events.clone());
            run_all(checks, &ctx, jobs, overall).await
        });
        (outcomes, events.events())
    }

    fn started(events: &[Event]) -> Vec<String> {
        events
            .iter()
            .filter_map(|e| match e {
                Event::CheckStarted { name, .. } => Some(format!("start {name}")),
                Event::CheckFinished(o) => Some(format!("end {}", o.name)),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn needs_are_respected_and_a_failed_need_skips_its_dependents_in_declaration_order() {
        let t = Duration::from_secs(10);
        let checks = [
            check("fails", "exit 1", &[], t),
            check("after-fail", "true", &["fails"], t),
            check("passes", "true", &[], t),
            check("after-pass", "true", &["passes"], t),
            check("after-skip", "true", &["after-fail"], t),
        ];
        let (outcomes, events) = run(&checks, 4, Duration::from_secs(30));
        let got: Vec<(&str, Status)> = outcomes
            .iter()
            .map(|o| (o.name.as_str(), o.status))
            .collect();
        assert_eq!(
            got,
            [
                ("fails", Status::Failed),
                ("after-fail", Status::Skipped),
                ("passes", Status::Passed),
                ("after-pass", Status::Passed),
                ("after-skip", Status::Skipped),
            ]
        );
        assert_eq!(outcomes[1].message, "needs `fails`, which failed");
        assert_eq!(outcomes[4].message, "needs `after-fail`, which skipped");
        let order = started(&events);
        let pos = |s: &str| order.iter().position(|e| e == s).unwrap();
        assert!(pos("end passes") < pos("start after-pass"), "{order:?}");
    }

    #[test]
    fn at_most_jobs_checks_run_at_once() {
        let t = Duration::from_secs(10);
        let checks: Vec<Check> = (0..5)
            .map(|i| check(&format!("c{i}"), "sleep 0.2", &[], t))
            .collect();
        let (outcomes, events) = run(&checks, 2, Duration::from_secs(30));
        assert!(outcomes.iter().all(|o| o.status == Status::Passed));
        let mut running = 0usize;
        let mut most = 0usize;
        for e in started(&events) {
            running = if e.starts_with("start") {
                running + 1
            } else {
                running - 1
            };
            most = most.max(running);
        }
        assert_eq!(most, 2, "{:?}", started(&events));
    }

    #[test]
    fn the_runs_deadline_times_out_what_runs_and_skips_what_never_started() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("pid");
        let script = format!("echo $$ > {}; exec sleep 30", pid_file.display());
        let checks = [
            check("slow", &script, &[], Duration::from_secs(60)),
            check("waits", "true", &["slow"], Duration::from_secs(60)),
        ];
        let (outcomes, _) = run(&checks, 4, Duration::from_millis(500));
        assert_eq!(outcomes[0].status, Status::TimedOut);
        assert_eq!(outcomes[1].status, Status::Skipped);
        assert!(
            outcomes[0].message.contains("the run's timeout"),
            "{}",
            outcomes[0].message
        );
        // The process the run gave up on is killed, not left running until its own timeout.
        let pid = std::fs::read_to_string(&pid_file).unwrap();
        let proc_dir = std::path::PathBuf::from(format!("/proc/{}", pid.trim()));
        let gone = (0..40).any(|_| {
            std::thread::sleep(Duration::from_millis(50));
            !proc_dir.exists()
                || std::fs::read_to_string(proc_dir.join("stat")).is_ok_and(|s| s.contains(") Z "))
        });
        assert!(gone, "the command outlived the run");
    }

    #[test]
    fn a_check_past_its_own_timeout_times_out_and_a_missing_program_is_an_error() {
        let checks = [
            check("slow", "sleep 5", &[], Duration::from_millis(300)),
            Check {
                spec: serde_json::from_value(serde_json::json!({
                    "name": "missing",
                    "command": { "run": ["stack-no-such-program"] },
                }))
                .unwrap(),
                kind: "command",
                origin: crate::config::file_origin("checks.yaml"),
                timeout: Duration::from_secs(5),
            },
        ];
        let (outcomes, _) = run(&checks, 4, Duration::from_secs(30));
        assert_eq!(outcomes[0].status, Status::TimedOut, "{:?}", outcomes[0]);
        assert_eq!(outcomes[1].status, Status::Error, "{:?}", outcomes[1]);
    }
}
