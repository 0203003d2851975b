//! Chart.lock must match Chart.yaml's dependencies before a chart is published (the digest Helm
//! writes, `values::lock`): a stale lock is refused with the fix.

use crate::error::StackError;
use crate::values::chart::{self, Chart};
use crate::values::lock::{self, DepFields};
use crate::yaml::Value;

pub fn verify(chart: &Chart) -> Result<(), StackError> {
    let declared = chart
        .chart_yaml
        .value
        .as_map()
        .and_then(|m| m.get("dependencies"))
        .is_some();
    if !declared || chart.subcharts.is_empty() {
        return Ok(());
    }
    let fix = format!(
        "run `stack release --update-deps` (or `helm dependency update {}`) and commit Chart.lock",
        chart.display
    );
    let Some((lock_file, doc)) = chart::read_lock(chart)? else {
        return Err(StackError::config(
            Some(chart.subcharts[0].dep.origin.clone()),
            format!(
                "{} declares dependencies but has no Chart.lock",
                chart.chart_yaml_file
            ),
            fix,
        ));
    };
    let recorded = match doc.root.value.as_map().and_then(|m| m.get("digest")) {
        Some(n) => match &n.value {
            Value::Str(s) => s.clone(),
            _ => String::new(),
        },
        None => String::new(),
    };
    let deps: Vec<DepFields> = chart
        .subcharts
        .iter()
        .map(|s| DepFields::from(&s.dep))
        .collect();
    if let Some(d) = deps
        .iter()
        .find(|d| d.repository.starts_with('@') || d.repository.starts_with("alias:"))
    {
        return Err(StackError::config(
            Some(crate::config::file_origin(&chart.chart_yaml_file)),
            format!(
                "cannot verify {lock_file}: dependency `{}` names repository `{}` (resolved through helm's repositories.yaml)",
                d.name, d.repository
            ),
            "use the repository's URL (or oci://…) in Chart.yaml, or pass --update-deps",
        ));
    }
    let computed = lock::digest(Some(&deps), lock::lock_dependencies(&doc.root).as_deref());
    if computed != recorded {
        return Err(StackError::config(
            Some(doc.root.origin.clone()),
            format!(
                "{lock_file} is out of date: it records {recorded}, Chart.yaml's dependencies hash to {computed}"
            ),
            fix,
        ));
    }
    Ok(())
}
