//! `stack validate envs`: every target's values composed exactly as Helm would, validated offline.
//!
//! Plan: load the chart once (schemas compiled once), parse every layer file once, then compose and
//! check targets in parallel. Every finding is collected (never fail-fast); findings shared by many
//! targets are merged. `--helm` additionally runs real `helm template` per target.

mod chart_checks;

use crate::config::{Project, RuleLevel};
use crate::diag::{self, Finding, Rule, Severity};
use crate::envs::{self, Layer, ParsedLayer, Target};
use crate::error::StackError;
use crate::tool::{self, Cmd, Runner, Tool};
use crate::values::{self, checks::KnownKeys, strvals::SetArg};
use crate::yaml::{self, Map};
use rayon::prelude::*;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

#[derive(Debug, Default)]
pub struct Options {
    pub cloud: Option<String>,
    /// Changed files (as pre-commit passes them): validate only the targets they affect.
    pub files: Vec<PathBuf>,
    /// Also run real `helm template` per target.
    pub helm: bool,
    /// `--set`-style flags applied to every target after its layers, as CI passes image tags.
    pub set: Vec<SetArg>,
    /// Only this target (by name), e.g. the dev env `stack up` deploys: other targets' files are
    /// not read, so their findings cannot block it.
    pub target: Option<String>,
}

#[derive(Debug, serde::Serialize)]
pub struct TargetResult {
    pub name: String,
    /// chart values.yaml first, then the layers: the order used.
    pub layers: Vec<String>,
    pub errors: usize,
}

#[derive(Debug, serde::Serialize)]
pub struct Report {
    pub chart: String,
    pub cloud: Option<String>,
    pub targets: Vec<TargetResult>,
    pub findings: Vec<Finding>,
    /// Set when FILES were given and affect no target.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nothing_affected: Option<String>,
}

impl Report {
    pub fn has_errors(&self) -> bool {
        self.findings.iter().any(|f| f.severity == Severity::Error)
    }
}

pub fn run(project: &Project, opts: &Options, runner: &dyn Runner) -> Result<Report, StackError> {
    let chart_rel = envs::chart_dir(project)?;
    let (mut targets, cloud) = envs::targets(project, opts.cloud.as_deref())?;
    if let Some(name) = &opts.target {
        targets.retain(|t| t.name == *name);
    }
    if !opts.files.is_empty() {
        targets = affected(project, &chart_rel, targets, &opts.files);
        if targets.is_empty() {
            return Ok(Report {
                chart: chart_rel,
                cloud,
                targets: Vec::new(),
                findings: Vec::new(),
                nothing_affected: Some(format!(
                    "none of the {} given file(s) affect a target",
                    opts.files.len()
                )),
            });
        }
    }
    let helm = if opts.helm {
        Some(tool::find(Tool::Helm)?)
    } else {
        None
    };

    // A malformed flag is a usage error for the whole run, found before any work.
    envs::apply_set(&mut Map::new(), &opts.set)?;
    let chart = values::chart::load(&project.root.join(&chart_rel), &chart_rel)?;
    let (defaults, tree) = values::compose::defaults_all(&chart);
    values::schema::precompile(&tree)?;

    let mut findings = Vec::new();
    chart_checks::check(&chart, project.config.chart.require_oci, &mut findings)?;

    // Parse every layer file once; report every malformed file, not only the first.
    let mut files: Vec<&String> = targets.iter().flat_map(|t| t.layers.iter()).collect();
    files.sort();
    files.dedup();
    let parsed: Vec<(String, Result<ParsedLayer, StackError>)> = files
        .par_iter()
        .map(|f| ((*f).clone(), envs::parse_layer(project, f)))
        .collect();
    let mut layers: BTreeMap<String, Layer> = BTreeMap::new();
    let mut broken = Vec::new();
    for (f, r) in parsed {
        match r {
            Ok((layer, notes)) => {
                values::checks::yaml_notes(&Arc::from(f.as_str()), &notes, &mut findings);
                findings.extend(layer.refusals.iter().cloned());
                layers.insert(f, layer);
            }
            Err(e) => broken.push(e),
        }
    }
    if let Some(first) = broken.into_iter().reduce(|a, b| match (a, b) {
        (
            StackError::Config {
                origin,
                message,
                hint,
            },
            StackError::Config {
                origin: o2,
                message: m2,
                ..
            },
        ) => {
            let o2 = o2.map(|o| format!("{o}: ")).unwrap_or_default();
            StackError::Config {
                origin,
                message: format!("{message}\n{o2}{m2}"),
                hint,
            }
        }
        (a, _) => a,
    }) {
        return Err(first);
    }

    // The templates are read once, with the template-like strings of every layer in play.
    let roots: Vec<&Map> = layers.values().map(|l| &l.root).collect();
    let known = KnownKeys::new(defaults, tree, &roots);
    known.scan_notes(&mut findings);
    for layer in layers.values() {
        values::checks::unknown_keys(&known, &layer.root, &mut findings);
    }

    let policy = &project.config.envs.policy.image_tags;
    let parity = &project.config.envs.policy.parity;
    let bake_cache = values::compose::BakeCache::default();
    let per_target: Vec<(Vec<Finding>, Vec<Option<yaml::Node>>)> = targets
        .par_iter()
        .map(|t| {
            // `Err` only for a schema that does not compile (they were compiled above).
            let c = envs::compose(
                &chart,
                t,
                t.layers.iter().map(|l| &layers[l].root),
                &opts.set,
                &bake_cache,
            )?;
            // A flag Helm fails on over this target's layers is a finding for the target.
            let mut out: Vec<Finding> = c
                .set_error
                .map(|e| Finding::new(Rule::HelmRefuses, None, e.to_string()))
                .into_iter()
                .collect();
            out.extend(c.findings);
            if policy.env_types.contains(&t.env_type) {
                let check = values::checks::ImageTagCheck {
                    forbidden: &policy.forbid,
                    target_type: &t.env_type,
                    layers: &t.layers,
                    target: &t.file,
                    refs: &known.refs,
                };
                check.run(&c.composed.values, &mut out);
            }
            for f in &mut out {
                f.targets.push(t.name.clone());
            }
            let compared = parity
                .iter()
                .flat_map(|rule| rule.keys.iter().map(move |k| (rule, k)))
                .map(|(rule, key)| {
                    rule.types
                        .contains(&t.env_type)
                        .then(|| values::compose::path_value(&c.composed.values, key).cloned())
                        .flatten()
                })
                .collect();
            Ok((out, compared))
        })
        .collect::<Result<_, StackError>>()?;
    let (per_target, compared): (Vec<_>, Vec<_>) = per_target.into_iter().unzip();
    findings.extend(per_target.into_iter().flatten());
    parity_findings(parity, &targets, &compared, &mut findings);

    if let Some(helm) = &helm {
        let results: Vec<Option<Finding>> = targets
            .par_iter()
            .map(|t| helm_template(project, runner, helm, &chart_rel, t))
            .collect::<Result<_, _>>()?;
        findings.extend(results.into_iter().flatten());
    }

    drop_schema_twins(&mut findings);
    apply_rule_levels(project, &mut findings);
    let findings = diag::merge_across_targets(findings);
    let targets = targets
        .iter()
        .map(|t| TargetResult {
            name: t.name.clone(),
            layers: std::iter::once(format!("{chart_rel}/values.yaml"))
                .chain(t.layers.iter().cloned())
                .collect(),
            errors: findings
                .iter()
                .filter(|f| f.severity == Severity::Error && concerns(f, t))
                .count(),
        })
        .collect();
    Ok(Report {
        chart: chart_rel,
        cloud,
        targets,
        findings,
        nothing_affected: None,
    })
}

/// `envs.policy.parity`: for each key, every target of the listed types must hold the same composed
/// value. The odd ones out (all but the most common value) are reported where their value was set.
fn parity_findings(
    rules: &[crate::config::ParityRule],
    targets: &[Target],
    compared: &[Vec<Option<yaml::Node>>],
    out: &mut Vec<Finding>,
) {
    let keys = rules
        .iter()
        .flat_map(|r| r.keys.iter().map(move |k| (r, k)));
    for (i, (rule, key)) in keys.enumerate() {
        let members: Vec<(&Target, Option<&yaml::Node>)> = targets
            .iter()
            .zip(compared)
            .filter(|(t, _)| rule.types.contains(&t.env_type))
            .map(|(t, c)| (t, c[i].as_ref()))
            .collect();
        let shown = |n: Option<&yaml::Node>| match n {
            Some(n) => serde_json::to_string(&n.value.to_json()).expect("serializes"),
            None => "(not set)".to_owned(),
        };
        // (the value as JSON text, the targets holding it)
        type Group<'a> = (String, Vec<(&'a Target, Option<&'a yaml::Node>)>);
        let mut groups: Vec<Group<'_>> = Vec::new();
        for (t, n) in members {
            let v = shown(n);
            match groups.iter_mut().find(|(g, _)| *g == v) {
                Some((_, ts)) => ts.push((t, n)),
                None => groups.push((v, vec![(t, n)])),
            }
        }
        if groups.len() < 2 {
            continue;
        }
        groups.sort_by_key(|(_, ts)| std::cmp::Reverse(ts.len()));
        let (common, holders) = &groups[0];
        let holder = holders[0].0;
        for (value, ts) in &groups[1..] {
            for (t, n) in ts {
                let at = match n {
                    Some(n) if t.layers.iter().any(|l| **l == *n.origin.file) => n.origin.clone(),
                    _ => crate::config::file_origin(&t.file),
                };
                let mut f = Finding::new(
                    Rule::EnvParity,
                    Some(at),
                    format!(
                        "`{key}` must agree across {} envs: {} has {value}, {} has {common}",
                        rule.types.join("/"),
                        t.name,
                        holder.name
                    ),
                )
                .hint(format!(
                    "set the same value in both (or in a layer they share, such as the cloud file); compare with `stack values {}` and `stack values {}`",
                    t.name, holder.name
                ));
                f.targets.push(t.name.clone());
                out.push(f);
            }
        }
    }
}

/// A finding concerns a target when it names it, or names no target and sits in one of its
/// layer files (per-file findings are made once per file, not once per target).
fn concerns(f: &Finding, t: &Target) -> bool {
    if f.targets.is_empty() {
        f.location
            .as_ref()
            .is_some_and(|o| t.layers.iter().any(|l| **l == *o.file))
    } else {
        f.targets.contains(&t.name)
    }
}

/// Targets affected by changed files: a file in a target's layers, anything in the chart, or
/// stack.yaml (everything).
fn affected(
    project: &Project,
    chart_rel: &str,
    targets: Vec<Target>,
    files: &[PathBuf],
) -> Vec<Target> {
    let root = project
        .root
        .canonicalize()
        .unwrap_or_else(|_| project.root.clone());
    let rels: Vec<String> = files
        .iter()
        .map(|f| {
            let abs = if f.is_absolute() {
                f.clone()
            } else {
                std::env::current_dir().unwrap_or_default().join(f)
            };
            let abs = abs.canonicalize().unwrap_or(abs);
            abs.strip_prefix(&root)
                .map(|p| p.to_string_lossy().replace('\\', "/"))
                .unwrap_or_else(|_| f.to_string_lossy().into_owned())
        })
        .collect();
    let everything = rels.iter().any(|f| {
        f == crate::config::FILE_NAME
            || f.starts_with("charts/")
            || f.starts_with(&format!("{chart_rel}/"))
    });
    if everything {
        return targets;
    }
    targets
        .into_iter()
        .filter(|t| t.layers.iter().any(|l| rels.contains(l)))
        .collect()
}

fn helm_template(
    project: &Project,
    runner: &dyn Runner,
    helm: &std::path::Path,
    chart_rel: &str,
    t: &Target,
) -> Result<Option<Finding>, StackError> {
    let release = crate::release::chart::name(project, t)?;
    let mut cmd = Cmd::new(helm)
        .cwd(&project.root)
        .args(["template", &release, chart_rel]);
    for l in &t.layers {
        cmd = cmd.args(["-f", l]);
    }
    for (k, v) in &project.dotenv {
        cmd = cmd.secret_env(k, v);
    }
    let out = runner
        .output(&cmd)
        .map_err(|e| StackError::config(None, e.to_string(), "check the helm installation"))?;
    if out.success() {
        return Ok(None);
    }
    let msg = out
        .stderr
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with("Use --debug flag"))
        .map(|l| l.strip_prefix("Error: ").unwrap_or(l))
        .collect::<Vec<_>>()
        .join("\n");
    let hint = if msg.contains("missing in charts/ directory") {
        format!("vendor the subcharts first: `helm dependency build {chart_rel}`")
    } else {
        format!("reproduce with: {}", cmd.short_line())
    };
    let mut f = Finding::new(
        Rule::HelmTemplate,
        Some(crate::config::file_origin(&t.file)),
        format!("helm template failed: {msg}"),
    )
    .hint(hint);
    f.targets.push(t.name.clone());
    Ok(Some(f))
}

/// A typo is reported once: the unknown-key finding (with its suggestion) replaces the schema's
/// "unexpected key" at the same place.
fn drop_schema_twins(findings: &mut Vec<Finding>) {
    let unknown: std::collections::HashSet<_> = findings
        .iter()
        .filter(|f| f.rule == Rule::UnknownKey)
        .filter_map(|f| f.location.clone())
        .collect();
    findings.retain(|f| {
        !(f.rule == Rule::Schema
            && f.message.contains("unexpected key")
            && f.location.as_ref().is_some_and(|l| unknown.contains(l)))
    });
}

fn apply_rule_levels(project: &Project, findings: &mut Vec<Finding>) {
    let levels = &project.config.validate.rules;
    findings.retain_mut(|f| {
        f.severity = match levels.get(f.rule) {
            None => return true,
            Some(RuleLevel::Off) => return false,
            Some(RuleLevel::Error) => Severity::Error,
            Some(RuleLevel::Warning) => Severity::Warning,
            Some(RuleLevel::Info) => Severity::Info,
        };
        true
    });
}
