//! Helm values: charts, composition with provenance, schema validation and the checks Helm lacks.
//! Invariant: does no I/O beyond reading the chart files it is pointed at; one composition serves
//! every stage (validate, up, test, preview, live).

pub mod chart;
pub mod checks;
pub mod compose;
pub mod lock;
pub mod schema;
pub mod strvals;
pub mod templates;
