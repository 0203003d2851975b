//! The one progress event stream every stage emits and `ui` renders.
//!
//! Ops never print: while they work they send [`Event`]s to a [`Sink`], in the order things happen
//! (a step's command line before its effects, a build's output lines before its result), and at
//! the end they return a report. `ui::events` renders the same events as a terminal view (spinners),
//! plain lines, JSON lines or GitHub workflow commands; tests collect them with [`Collect`].
//!
//! Invariant: an event never carries a secret — command lines are `Cmd`'s redacted `Display`,
//! stdin contents are never part of an event, `.env` values never leave `ops::up::session`.

use crate::kube::forward::ForwardEvent;
use crate::kube::logs::LogLine;
use crate::kube::ResourceProgress;
use crate::ops::build::ImageResult;
use serde::Serialize;
use std::sync::Mutex;

/// Something a stage did or saw, as it happens.
#[derive(Clone, Debug, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A step is about to run (or, in a dry run, would run): the exact command line or file
    /// change, secrets redacted.
    Step {
        why: String,
        line: String,
        #[serde(rename = "dryRun")]
        dry_run: bool,
    },
    /// One line of a long-running tool's output (`helm upgrade`, `tofu apply`), as it is printed.
    Output { tool: String, line: String },
    /// An image's cache decision, before any build starts.
    ImagePlanned {
        image: String,
        reference: String,
        context: String,
        files: usize,
        rehashed: usize,
        cached: bool,
    },
    /// One line of an image build's output.
    ImageOutput { image: String, line: String },
    /// An image is done: built, up to date, failed, or delivered.
    ImageFinished(ImageResult),
    /// How far one workload's rollout is.
    Rollout(ResourceProgress),
    /// `stack up`'s inner loop started watching these roots.
    Watching { roots: Vec<String> },
    /// Changed files were copied into the running containers of an image.
    Synced {
        image: String,
        files: usize,
        deletes: usize,
        pods: Vec<String>,
        millis: u128,
    },
    /// A change no sync rule covers: the image is rebuilt and the release redeployed.
    Rebuilding { image: String, because: String },
    /// The redeploy after a rebuild finished.
    Redeployed {
        release: String,
        revision: Option<u64>,
        upgraded: bool,
    },
    /// `.env` was applied to the cluster (`secret/<name>` or `configmap/<name>`); values never shown.
    DotenvSynced { object: String, keys: usize },
    /// A port-forward's news, with its label (`deployment/x 8000`).
    Forward { label: String, news: ForwardEvent },
    /// A followed container's log line.
    Log(LogLine),
    /// Something went wrong that the loop survives (shown, not fatal).
    Problem { message: String },
    /// The inner loop ended: forwards, followers and watchers are closed.
    Stopped,
    /// A check started (`stack test`, `stack live verify`).
    CheckStarted { name: String, kind: &'static str },
    /// A check has its verdict (messages already masked).
    CheckFinished(crate::check::Outcome),
    /// A phase of a longer run begins (`deploy`, `checks`, `diagnostics`, `cleanup`): GitHub
    /// output opens a group per phase.
    Phase { name: String },
}

/// Where events go. Implementations must be cheap and never block on the terminal for long.
pub trait Sink: Send + Sync {
    fn emit(&self, event: Event);
}

/// A shared sink is a sink (the checks of `stack test` hold it across tasks).
impl<T: Sink + ?Sized> Sink for std::sync::Arc<T> {
    fn emit(&self, event: Event) {
        (**self).emit(event)
    }
}

/// Drops every event (library callers that only want the report).
pub struct Discard;

impl Sink for Discard {
    fn emit(&self, _: Event) {}
}

/// Keeps every event, in order (tests assert on what a stage emitted and in which order).
#[derive(Default)]
pub struct Collect(Mutex<Vec<Event>>);

impl Collect {
    pub fn events(&self) -> Vec<Event> {
        self.0.lock().expect("collector lock").clone()
    }
}

impl Sink for Collect {
    fn emit(&self, event: Event) {
        self.0.lock().expect("collector lock").push(event);
    }
}
