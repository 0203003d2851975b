//! Env targets, below the stages: which values files compose each target and in which order
//! (discovery under `envs/`, stack.yaml's layer templates, `envs.exclude`, extra targets), which
//! target a command means (by name, or the dev env), each layer file read once, and a target's
//! values composed as Helm composes them. `validate`, `values` and `up` (later test, preview,
//! live) all resolve targets here, so they agree on the files and their order.
//!
//! Invariant: reads only the project's files (and `--set-file` paths); never prints.

mod composition;
mod discover;
mod layer;
mod select;

pub use composition::{apply_set, compose, Composition};
pub use discover::{chart_dir, targets, Target};
pub use layer::{parse_layer, Layer, ParsedLayer};
pub use select::{dev, named};
