//! One target's values as Helm composes them for `helm template -f <layer>… <--set flags>`, and
//! what Helm would say about them: the one composition `validate`, `values` (and later the other
//! stages) share.

use super::Target;
use crate::diag::{Finding, Rule};
use crate::error::StackError;
use crate::values::{self, chart::Chart, compose::BakeCache, compose::Composed, strvals::SetArg};
use crate::yaml::{Map, Node, Value};

pub struct Composition<'c> {
    /// `.Values` after coalescing, and the tree of enabled (sub)charts.
    pub composed: Composed<'c>,
    /// The `--set` flag Helm fails on over these layers (the flags before it are applied).
    pub set_error: Option<StackError>,
    /// In this order: type clashes (`type-mismatch` warnings; `helm-refuses` when Helm fails on
    /// them), other reasons Helm cannot render (`helm-refuses`), and violations of the chart's and
    /// each enabled subchart's schema (`schema`), which Helm checks before rendering.
    pub findings: Vec<Finding>,
}

/// Merges `layers` (the target's, in order, as parsed maps) and applies `set` over them, then runs
/// Helm's pipeline. `Err` only when a schema cannot be compiled (the chart's problem, not the
/// target's).
pub fn compose<'c, 'm>(
    chart: &'c Chart,
    target: &Target,
    layers: impl IntoIterator<Item = &'m Map>,
    set: &[SetArg],
    cache: &BakeCache,
) -> Result<Composition<'c>, StackError> {
    let mut user = Map::new();
    for layer in layers {
        values::compose::merge_maps(&mut user, layer);
    }
    let set_error = apply_set(&mut user, set).err();
    let composed = values::compose::compose_cached(chart, &user, cache);
    let mut findings = Vec::new();
    values::checks::clashes(&composed.clashes, &mut findings);
    for (origin, message) in &composed.errors {
        findings.push(Finding::new(
            Rule::HelmRefuses,
            Some(origin.clone()),
            message.clone(),
        ));
    }
    // Where a violation of a key no layer sets is reported.
    let root = Node {
        value: Value::Map(composed.values.clone()),
        origin: crate::config::file_origin(&target.file),
    };
    values::schema::validate(&composed.tree, &composed.values, &root, "", &mut findings)?;
    Ok(Composition {
        composed,
        set_error,
        findings,
    })
}

/// Applies `--set`-style flags over the merged layer files in Helm's fixed order (strvals).
/// `--set-file` paths are read as Helm reads them: relative to the current directory.
pub fn apply_set(user: &mut Map, set: &[SetArg]) -> Result<(), StackError> {
    if set.is_empty() {
        return Ok(());
    }
    values::strvals::apply(user, set, &|path: &str| std::fs::read_to_string(path)).map_err(|e| {
        StackError::Usage {
            message: format!(
                "{} {}: {} (at character {})",
                e.flag, e.arg, e.message, e.col
            ),
            hint: Some(
                "Helm's --set grammar: a.b=v, list={x,y}, a[0]=v, escape . , = with \\".into(),
            ),
        }
    })
}
