//! Checks of the chart itself, made once per run: Chart.lock digest, vendored archives vs the lock,
//! subcharts that could not be read, and the chart's own values files.

use crate::diag::{Finding, Rule};
use crate::error::StackError;
use crate::values::chart::{self, Chart};
use crate::values::lock::{self, DepFields};
use crate::yaml::{Origin, Value};
use std::collections::BTreeMap;
use std::sync::Arc;

pub fn check(chart: &Chart, require_oci: bool, out: &mut Vec<Finding>) -> Result<(), StackError> {
    values_notes(chart, out);
    if require_oci {
        oci_dependencies(chart, out);
    }
    lock_digest(chart, out)?;
    subcharts_not_checked(chart, out);
    Ok(())
}

fn values_notes(chart: &Chart, out: &mut Vec<Finding>) {
    let file = Arc::clone(&chart.values.origin.file);
    crate::values::checks::yaml_notes(&file, &chart.values_notes, out);
    crate::values::checks::helm_refusals(&chart.values, out);
    // Undeclared subcharts under charts/ are loaded by Helm too: their values.yaml counts.
    let declared = chart.subcharts.iter().filter_map(|s| s.chart.as_deref());
    for sub in declared.chain(chart.undeclared.iter().map(|c| &**c)) {
        values_notes(sub, out);
    }
}

/// `chart.requireOci`: a dependency from `file://` (or an HTTP repository) where only published
/// OCI charts are allowed, at its `repository:` line.
fn oci_dependencies(chart: &Chart, out: &mut Vec<Finding>) {
    for sub in &chart.subcharts {
        let repo = &sub.dep.repository;
        if repo.starts_with("oci://") {
            continue;
        }
        let at = match &sub.dep.raw.value {
            Value::Map(m) => m.get("repository").map_or(&sub.dep.origin, |n| &n.origin),
            _ => &sub.dep.origin,
        };
        let shown = if repo.is_empty() {
            "no repository (charts/ only)".to_owned()
        } else {
            format!("`{repo}`")
        };
        out.push(
            Finding::new(
                Rule::FileDependency,
                Some(at.clone()),
                format!(
                    "dependency `{}` comes from {shown}, but `chart.requireOci` allows only OCI registries",
                    sub.dep.key()
                ),
            )
            .hint(format!(
                "publish it (`helm push`) and set `repository: oci://<registry>/<path>`, then `helm dependency update {}`",
                chart.display
            )),
        );
    }
}

fn rebuild_hint(chart: &Chart) -> String {
    format!(
        "run `helm dependency update {}` and commit Chart.lock",
        chart.display
    )
}

fn lock_digest(chart: &Chart, out: &mut Vec<Finding>) -> Result<(), StackError> {
    let declared = chart
        .chart_yaml
        .value
        .as_map()
        .and_then(|m| m.get("dependencies"));
    let Some((lock_file, lock_doc)) = chart::read_lock(chart)? else {
        if declared.is_some() && !chart.subcharts.is_empty() {
            out.push(
                Finding::new(
                    Rule::LockDigest,
                    Some(chart.subcharts[0].dep.origin.clone()),
                    format!(
                        "{} declares dependencies but has no Chart.lock",
                        chart.chart_yaml_file
                    ),
                )
                .hint(rebuild_hint(chart)),
            );
        }
        return Ok(());
    };
    let Value::Map(lock_map) = &lock_doc.root.value else {
        return Err(StackError::config(
            Some(lock_doc.root.origin.clone()),
            format!("{lock_file} is not a map"),
            rebuild_hint(chart),
        ));
    };
    let (recorded, digest_origin) = match lock_map.get("digest") {
        Some(n) => match &n.value {
            Value::Str(s) => (s.clone(), n.origin.clone()),
            _ => (String::new(), n.origin.clone()),
        },
        None => (String::new(), lock_doc.root.origin.clone()),
    };
    let lock_deps = lock::lock_dependencies(&lock_doc.root);

    // Repositories named `@repo` / `alias:repo` are rewritten to URLs (repositories.yaml) before hashing.
    let repos = repositories();
    let mut unresolved = Vec::new();
    let chart_deps: Option<Vec<DepFields>> = declared.map(|_| {
        chart
            .subcharts
            .iter()
            .map(|s| {
                let mut d = DepFields::from(&s.dep);
                if let Some(name) = d
                    .repository
                    .strip_prefix('@')
                    .or_else(|| d.repository.strip_prefix("alias:"))
                {
                    match repos.get(name) {
                        Some(url) => d.repository = url.clone(),
                        None => unresolved.push(d.repository.clone()),
                    }
                }
                d
            })
            .collect()
    });
    if !unresolved.is_empty() {
        out.push(
            Finding::new(
                Rule::LockDigest,
                Some(digest_origin),
                format!("cannot verify the Chart.lock digest: repositories {} are not in your Helm repositories.yaml", unresolved.join(", ")),
            )
            .hint("`helm repo add` them, or use full URLs / oci:// in Chart.yaml"),
        );
        return Ok(());
    }
    let computed = lock::digest(chart_deps.as_deref(), lock_deps.as_deref());
    if computed != recorded {
        let mut detail = Vec::new();
        let locked: Vec<&DepFields> = lock_deps.iter().flatten().collect();
        for s in &chart.subcharts {
            if !locked.iter().any(|l| l.name == s.dep.name) {
                detail.push(format!(
                    "`{}` is in Chart.yaml but not in the lock",
                    s.dep.name
                ));
            }
        }
        for s in &chart.subcharts {
            let exact = !s
                .dep
                .version
                .contains(['<', '>', '^', '~', '*', 'x', ' ', '|']);
            let same_name: Vec<&&DepFields> =
                locked.iter().filter(|l| l.name == s.dep.name).collect();
            if exact
                && !same_name.is_empty()
                && !same_name.iter().any(|l| l.version == s.dep.version)
            {
                detail.push(format!(
                    "`{}` asks for {} but the lock has {}",
                    s.dep.key(),
                    s.dep.version,
                    same_name[0].version
                ));
            }
        }
        for l in &locked {
            if !chart.subcharts.iter().any(|s| s.dep.name == l.name) {
                detail.push(format!("`{}` is in the lock but not in Chart.yaml", l.name));
            }
        }
        let detail = if detail.is_empty() {
            String::new()
        } else {
            format!(" ({})", detail.join("; "))
        };
        out.push(
            Finding::new(
                Rule::LockDigest,
                Some(digest_origin),
                format!("Chart.lock is out of sync with Chart.yaml{detail}: recorded {recorded}, Chart.yaml hashes to {computed}; `helm dependency build` refuses this"),
            )
            .hint(rebuild_hint(chart)),
        );
    }
    // Vendored archives must be the locked versions.
    for v in &chart.vendored {
        let locked: Vec<&DepFields> = lock_deps
            .iter()
            .flatten()
            .filter(|l| l.name == v.name)
            .collect();
        if locked.is_empty() {
            out.push(
                Finding::new(
                    Rule::VendoredChart,
                    Some(file_origin(chart, &v.file)),
                    format!(
                        "charts/{} is not in Chart.lock: a stale archive Helm will still load",
                        v.file
                    ),
                )
                .hint(format!(
                    "delete it, then `helm dependency build {}`",
                    chart.display
                )),
            );
        } else if !locked.iter().any(|l| l.version == v.version) {
            out.push(
                Finding::new(
                    Rule::VendoredChart,
                    Some(file_origin(chart, &v.file)),
                    format!(
                        "charts/{} is {} {}, but Chart.lock pins {}",
                        v.file, v.name, v.version, locked[0].version
                    ),
                )
                .hint(format!(
                    "`helm dependency build {}` to vendor the locked version",
                    chart.display
                )),
            );
        }
    }
    Ok(())
}

fn file_origin(chart: &Chart, file: &str) -> Origin {
    crate::config::file_origin(&format!("{}/charts/{file}", chart.display))
}

fn subcharts_not_checked(chart: &Chart, out: &mut Vec<Finding>) {
    for s in chart.subcharts.iter().filter(|s| s.chart.is_none()) {
        out.push(
            Finding::new(
                Rule::SubchartNotChecked,
                Some(s.dep.origin.clone()),
                format!(
                    "subchart `{}` ({} {}) is not vendored: its values.schema.json and defaults were not checked",
                    s.dep.key(),
                    if s.dep.repository.is_empty() { "no repository" } else { &s.dep.repository },
                    s.dep.version
                ),
            )
            .hint(format!("vendor it with `helm dependency build {}` (charts/*/charts/ may stay gitignored)", chart.display)),
        );
    }
    for s in chart.subcharts.iter().filter_map(|s| s.chart.as_deref()) {
        subcharts_not_checked(s, out);
    }
}

/// `$HELM_REPOSITORY_CONFIG` or `~/.config/helm/repositories.yaml`: repository name → URL.
fn repositories() -> BTreeMap<String, String> {
    let path = std::env::var_os("HELM_REPOSITORY_CONFIG")
        .map(std::path::PathBuf::from)
        .or_else(|| {
            let base = std::env::var_os("XDG_CONFIG_HOME")
                .map(std::path::PathBuf::from)
                .or_else(|| {
                    std::env::var_os("HOME").map(|h| std::path::PathBuf::from(h).join(".config"))
                })?;
            Some(base.join("helm/repositories.yaml"))
        });
    let Some(text) = path.and_then(|p| std::fs::read_to_string(p).ok()) else {
        return BTreeMap::new();
    };
    let Ok(doc) = crate::yaml::parse(&Arc::from("repositories.yaml"), &text) else {
        return BTreeMap::new();
    };
    let mut out = BTreeMap::new();
    if let Some(Value::Seq(items)) = doc
        .root
        .value
        .as_map()
        .and_then(|m| m.get("repositories"))
        .map(|n| &n.value)
    {
        for m in items.iter().filter_map(|n| n.value.as_map()) {
            if let (Some(Value::Str(n)), Some(Value::Str(u))) = (
                m.get("name").map(|x| &x.value),
                m.get("url").map(|x| &x.value),
            ) {
                out.insert(n.clone(), u.clone());
            }
        }
    }
    out
}
