//! `stack values <target>`: the values one env target's templates receive — `.Values` after
//! coalescing, subcharts under their alias, globals copied down — composed by the same code as
//! `validate` (one truth), with each leaf's origin on request.

use crate::config::Project;
use crate::diag::{Finding, Rule, Severity};
use crate::envs;
use crate::error::StackError;
use crate::values::{self, strvals::SetArg};
use crate::yaml::Map;

#[derive(Debug, Default)]
pub struct Options {
    /// A target name (`ci/app`), or its last part when that is unique (`app`).
    pub target: String,
    pub cloud: Option<String>,
    /// `--set`, `--set-string`, `--set-file`, `--set-json`, `--set-literal`, as given.
    pub set: Vec<SetArg>,
}

#[derive(Debug)]
pub struct Report {
    pub target: String,
    /// chart values.yaml first, then the layers, then the `--set` flags: the order used.
    pub layers: Vec<String>,
    pub values: Map,
    /// Why Helm would refuse to render this target (nothing is shown as values then).
    pub refusals: Vec<Finding>,
}

pub fn run(project: &Project, opts: &Options) -> Result<Report, StackError> {
    let chart_rel = envs::chart_dir(project)?;
    let (targets, _cloud) = envs::targets(project, opts.cloud.as_deref())?;
    let target = envs::named(&targets, &opts.target)?;
    let chart = values::chart::load(&project.root.join(&chart_rel), &chart_rel)?;

    let mut refusals = Vec::new();
    let mut parsed = Vec::new();
    for l in &target.layers {
        let (layer, _notes) = envs::parse_layer(project, l)?;
        refusals.extend(layer.refusals);
        parsed.push(layer.root);
    }
    let composition = envs::compose(
        &chart,
        target,
        &parsed,
        &opts.set,
        &values::compose::BakeCache::default(),
    )?;
    // A flag Helm fails on is the command line's problem: a usage error, as a malformed one.
    if let Some(e) = composition.set_error {
        return Err(e);
    }
    chart_refusals(&chart, &mut Vec::new(), &mut refusals);
    // Helm only warns about a type clash that is not fatal, and renders.
    refusals.extend(
        composition
            .findings
            .into_iter()
            .filter(|f| f.rule != Rule::TypeMismatch),
    );
    for f in &mut refusals {
        f.severity = Severity::Error;
    }
    let mut layers = vec![format!("{chart_rel}/values.yaml")];
    layers.extend(target.layers.iter().cloned());
    layers.extend(
        opts.set
            .iter()
            .map(|s| format!("{} {}", s.kind.flag(), s.text)),
    );
    Ok(Report {
        target: target.name.clone(),
        layers,
        values: composition.composed.values,
        refusals,
    })
}

/// Helm refuses a chart when any values.yaml in it — the chart's, a subchart's, declared or not —
/// holds a number JSON cannot ("cannot load values.yaml"). Each file once (one subchart may be
/// used under several aliases).
fn chart_refusals(
    chart: &values::chart::Chart,
    seen: &mut Vec<std::sync::Arc<str>>,
    out: &mut Vec<Finding>,
) {
    if !seen.contains(&chart.values.origin.file) {
        seen.push(chart.values.origin.file.clone());
        values::checks::helm_refusals(&chart.values, out);
    }
    let subs = chart.subcharts.iter().filter_map(|s| s.chart.as_deref());
    for sub in subs.chain(chart.undeclared.iter().map(|c| &**c)) {
        chart_refusals(sub, seen, out);
    }
}
