//! `stack values <target>`: the values one env target's templates receive — `.Values` after
//! coalescing, subcharts under their alias, globals copied down — composed by the same code as
//! `validate` (one truth), with each leaf's origin on request.

use crate::config::Project;
use crate::diag::{Finding, Rule, Severity};
use crate::error::StackError;
use crate::ops::validate::{self, discover, Target};
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
    let chart_rel = discover::chart_dir(project)?;
    let (targets, _cloud) = discover::targets(project, opts.cloud.as_deref())?;
    let target = pick(&targets, &opts.target)?;
    let chart = values::chart::load(&project.root.join(&chart_rel), &chart_rel)?;

    let mut refusals = Vec::new();
    let mut user = Map::new();
    for l in &target.layers {
        let (layer, _notes) = validate::parse_layer(project, l)?;
        refusals.extend(layer.refusals.iter().cloned());
        values::compose::merge_maps(&mut user, &layer.root);
    }
    validate::apply_set(&mut user, &opts.set)?;
    chart_refusals(&chart, &mut Vec::new(), &mut refusals);
    let composed = values::compose::compose(&chart, &user);
    let mut clashes = Vec::new();
    values::checks::clashes(&composed.clashes, &mut clashes);
    refusals.extend(clashes.into_iter().filter(|f| f.rule == Rule::HelmRefuses));
    for (origin, message) in &composed.errors {
        refusals.push(Finding::new(
            Rule::HelmRefuses,
            Some(origin.clone()),
            message.clone(),
        ));
    }
    // Helm validates the coalesced values against the chart's and each enabled subchart's
    // values.schema.json before rendering, and refuses on any violation.
    let root = crate::yaml::Node {
        value: crate::yaml::Value::Map(composed.values.clone()),
        origin: crate::config::file_origin(&target.file),
    };
    values::schema::validate(&composed.tree, &composed.values, &root, "", &mut refusals)?;
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
        values: composed.values,
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

/// The target named `wanted`: its full name, else the only target whose last part it is.
fn pick<'t>(targets: &'t [Target], wanted: &str) -> Result<&'t Target, StackError> {
    if let Some(t) = targets.iter().find(|t| t.name == wanted) {
        return Ok(t);
    }
    let by_last: Vec<&Target> = targets
        .iter()
        .filter(|t| t.name.rsplit('/').next() == Some(wanted))
        .collect();
    match by_last.as_slice() {
        [one] => Ok(one),
        [] => {
            let names: Vec<&str> = targets.iter().map(|t| t.name.as_str()).collect();
            let hint = match values::checks::did_you_mean(wanted, &names) {
                Some(best) => format!("did you mean `{best}`?"),
                None => format!("targets: {}", names.join(", ")),
            };
            Err(StackError::Usage {
                message: format!("no env target `{wanted}`"),
                hint: Some(hint),
            })
        }
        many => Err(StackError::Usage {
            message: format!("`{wanted}` names several targets"),
            hint: Some(format!(
                "say which: {}",
                many.iter()
                    .map(|t| t.name.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }),
    }
}
