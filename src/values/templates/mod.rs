//! Which `.Values` paths a chart's templates read, found by reading the templates themselves.
//!
//! A real lexer and parser for Go's text/template (`lex.rs`, `parse.rs`) and an abstract
//! interpreter over the parse tree (`scan.rs`): every expression evaluates to an abstract value
//! (`.Values.a` of a chart at prefix `[sub]` is the path `sub.a`, `dict` builds a map of abstract
//! values, `include` runs the named template with the abstract argument, …). Reading a field of a
//! values path records that path as *referenced*; handing a values path to a function that uses
//! the whole subtree (`toYaml`, `tpl`, `merge`, any function not modelled) records it as
//! *consumed whole*. `checks` uses the result to stop reporting keys that templates read but
//! values.yaml does not declare, and to know which image tags fall back to a pinned version.
//!
//! What is modelled and what deliberately is not is listed in `scan.rs`; how functions outside
//! that list count is in `funcs.rs`. Invariant: pure — no I/O,
//! never panics, and a file that does not parse never aborts the scan (it is recorded in
//! [`Refs::unreadable`]; see there for how its paths count).

mod funcs;
mod lex;
mod parse;
mod refs;
mod scan;

#[cfg(test)]
mod tests;

pub use refs::{Dynamic, Fallback, FallbackKind, Refs, Unreadable, ANY};

/// One template file of a chart.
#[derive(Clone, Debug)]
pub struct TemplateFile {
    /// As the user sees it, e.g. `charts/app/templates/deployment.yaml`. Files whose base name
    /// starts with `_` only contribute their `define`s, as in Helm.
    pub name: String,
    pub text: String,
}

/// The templates of one chart instance (the top chart or an enabled subchart).
#[derive(Clone, Debug)]
pub struct ChartTemplates {
    /// Values path of this chart instance in the TOP chart's values: `[]` for the top chart,
    /// `["backend-api"]` for a subchart under alias backend-api, `["a","b"]` for nested.
    pub prefix: Vec<String>,
    pub files: Vec<TemplateFile>,
}

/// Scans every chart's templates and the template-like strings of the values files.
///
/// `value_strings`: string values found in values files that contain `{{` (rendered by `tpl` in
/// many charts), with the values path where they sit. They are scanned as templates with the root
/// context of the top chart (prefix `[]`) and, when they sit inside a subchart's values, also with
/// that subchart's root (charts pass `$` of their own chart to `tpl`). A value string that does
/// not parse is recorded in [`Refs::unreadable`] with `value_string: true` (it need not be a
/// template at all).
///
/// Template names are global across the charts, as in Helm: `include "common.names.fullname"`
/// in the top chart finds the define of a subchart. When several files define one name, Helm's
/// parse order decides: the file with the fewest path segments wins, then the smallest name.
pub fn scan(charts: &[ChartTemplates], value_strings: &[(Vec<String>, String)]) -> Refs {
    scan::run(charts, value_strings)
}
