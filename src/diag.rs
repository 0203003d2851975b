//! Findings: what `validate` (and later stages) report to the user, each pointing at the place to edit.

use crate::yaml::Origin;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
    Info,
}

/// A kind of finding; its name is stable (used in JSON output and in stack.yaml `validate.rules`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    Schema,
    UnknownKey,
    TypeMismatch,
    LockDigest,
    VendoredChart,
    DuplicateKey,
    Yaml11Scalar,
    ImageTag,
    SubchartNotChecked,
    HelmTemplate,
    HelmRefuses,
    TemplateScan,
    FileDependency,
    EnvParity,
}

impl Rule {
    pub const ALL: [Rule; 14] = [
        Rule::Schema,
        Rule::UnknownKey,
        Rule::TypeMismatch,
        Rule::LockDigest,
        Rule::VendoredChart,
        Rule::DuplicateKey,
        Rule::Yaml11Scalar,
        Rule::ImageTag,
        Rule::SubchartNotChecked,
        Rule::HelmTemplate,
        Rule::HelmRefuses,
        Rule::TemplateScan,
        Rule::FileDependency,
        Rule::EnvParity,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Rule::Schema => "schema",
            Rule::UnknownKey => "unknown-key",
            Rule::TypeMismatch => "type-mismatch",
            Rule::LockDigest => "lock-digest",
            Rule::VendoredChart => "vendored-chart",
            Rule::DuplicateKey => "duplicate-key",
            Rule::Yaml11Scalar => "yaml11-scalar",
            Rule::ImageTag => "image-tag",
            Rule::SubchartNotChecked => "subchart-not-checked",
            Rule::HelmTemplate => "helm-template",
            Rule::HelmRefuses => "helm-refuses",
            Rule::TemplateScan => "template-scan",
            Rule::FileDependency => "file-dependency",
            Rule::EnvParity => "env-parity",
        }
    }

    /// Default severity; stack.yaml `validate.rules` may change it.
    pub fn default_severity(self) -> Severity {
        match self {
            Rule::Yaml11Scalar => Severity::Warning,
            Rule::SubchartNotChecked | Rule::TemplateScan => Severity::Info,
            _ => Severity::Error,
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct Finding {
    pub severity: Severity,
    pub rule: Rule,
    /// Where to edit: file:line:col. None only when no file is to blame.
    #[serde(serialize_with = "ser_origin")]
    pub location: Option<Origin>,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub hint: Option<String>,
    /// The targets (envs) this finding applies to; empty when it is about the chart itself.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub targets: Vec<String>,
}

fn ser_origin<S: serde::Serializer>(o: &Option<Origin>, s: S) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    match o {
        None => s.serialize_none(),
        Some(o) => {
            let mut m = s.serialize_map(Some(3))?;
            m.serialize_entry("file", &*o.file)?;
            m.serialize_entry("line", &o.pos.line)?;
            m.serialize_entry("col", &o.pos.col)?;
            m.end()
        }
    }
}

impl Finding {
    pub fn new(rule: Rule, location: Option<Origin>, message: impl Into<String>) -> Self {
        Finding {
            severity: rule.default_severity(),
            rule,
            location,
            message: message.into(),
            hint: None,
            targets: Vec::new(),
        }
    }

    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }
}

/// Merges findings that are the same (rule, place, message) across targets into one, listing the
/// targets, and sorts them by file, line, column.
pub fn merge_across_targets(findings: Vec<Finding>) -> Vec<Finding> {
    let mut merged: std::collections::BTreeMap<(Option<Origin>, Rule, String), Finding> =
        Default::default();
    for f in findings {
        let key = (f.location.clone(), f.rule, f.message.clone());
        match merged.get_mut(&key) {
            Some(existing) => {
                for t in f.targets {
                    if !existing.targets.contains(&t) {
                        existing.targets.push(t);
                    }
                }
            }
            None => {
                merged.insert(key, f);
            }
        }
    }
    let mut out: Vec<Finding> = merged.into_values().collect();
    for f in &mut out {
        f.targets.sort();
    }
    out
}
