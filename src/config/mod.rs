//! `stack.yaml`: one versioned file for every stage, plus the defaults that make a repo following the
//! envs/ convention work with no file at all.
//!
//! Invariant: the JSON Schema printed by `stack schema` is the one used to check the file, so an
//! editor and `stack` never disagree; unknown keys are rejected at file:line:col with "did you mean".

pub mod cluster;
pub mod dev;
pub mod dotenv;
pub mod images;
pub mod live;
pub mod promote;
pub mod release;
pub mod test;

use crate::error::StackError;
use crate::yaml::{self, Node, Origin, Pos, Value};
use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

pub const API_VERSION: &str = "stack/v1";
pub const FILE_NAME: &str = "stack.yaml";

/// The whole file. Sections are added as stages land.
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
#[schemars(
    title = "stack.yaml",
    description = "Configuration of `stack` (apiVersion stack/v1)"
)]
pub struct Config {
    /// Always `stack/v1`.
    pub api_version: String,
    /// Project name used in release names; defaults to the repository directory's name.
    #[serde(default)]
    pub project: Option<String>,
    #[serde(default)]
    pub chart: ChartConfig,
    #[serde(default)]
    pub envs: EnvsConfig,
    #[serde(default)]
    pub validate: ValidateConfig,
    #[serde(default)]
    pub cluster: cluster::ClusterConfig,
    /// Images `stack build` builds, by name.
    #[serde(default)]
    pub images: BTreeMap<String, images::ImageConfig>,
    #[serde(default)]
    pub dev: dev::DevConfig,
    /// `stack promote FROM TO`: extra files per env, Flux/Kustomize names, the verify gate.
    #[serde(default)]
    pub promote: promote::PromoteConfig,
    /// `stack live …`: production targets (context, namespace, release, released chart).
    #[serde(default)]
    pub live: live::LiveConfig,
    /// `stack test local|ci`: checks, profiles, the published chart and images, pull credentials.
    #[serde(default)]
    pub test: test::TestConfig,
    /// `stack release`: the OCI registry the chart is pushed to, the tag template, credentials.
    #[serde(default)]
    pub release: release::ReleaseConfig,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            api_version: API_VERSION.into(),
            project: None,
            chart: ChartConfig::default(),
            envs: EnvsConfig::default(),
            validate: ValidateConfig::default(),
            cluster: cluster::ClusterConfig::default(),
            images: BTreeMap::new(),
            dev: dev::DevConfig::default(),
            promote: promote::PromoteConfig::default(),
            live: live::LiveConfig::default(),
            test: test::TestConfig::default(),
            release: release::ReleaseConfig::default(),
        }
    }
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChartConfig {
    /// Directory of the umbrella chart. Default: the only chart under `charts/` that no other chart
    /// depends on.
    pub path: Option<String>,
    /// Release name template (minijinja; variables: project, type, name). Default `{{ project }}-{{ name }}`.
    pub release: Option<String>,
    /// Every dependency must come from an OCI registry (`oci://…`): a `file://` or HTTP
    /// repository in Chart.yaml is an error at its line (charts that are published need this).
    #[serde(default)]
    pub require_oci: bool,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct EnvsConfig {
    /// Directory holding the env files. Default `envs`.
    #[serde(default = "default_envs_dir")]
    pub dir: String,
    /// Cloud layer name (`<dir>/<cloud>.yaml`). Default: the only YAML file directly in `dir`, if any.
    #[serde(default)]
    pub cloud: Option<String>,
    /// Value files per target, lowest precedence first, after the chart's values.yaml. Templates over
    /// `envs` (the dir), `cloud`, `type`, `name`, `file` (the target file) and `dir` (its directory).
    #[serde(default)]
    pub layers: Option<Vec<LayerConfig>>,
    /// Target files to skip (paths relative to the repo root, `*` and `**` globs).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// More targets beyond discovery, e.g. chart lifecycle files (values.test.yaml + values.test.ci.yaml).
    #[serde(default)]
    pub extra_targets: Vec<ExtraTarget>,
    #[serde(default)]
    pub policy: PolicyConfig,
}

impl Default for EnvsConfig {
    fn default() -> Self {
        EnvsConfig {
            dir: default_envs_dir(),
            cloud: None,
            layers: None,
            exclude: Vec::new(),
            extra_targets: Vec::new(),
            policy: PolicyConfig::default(),
        }
    }
}

fn default_envs_dir() -> String {
    "envs".into()
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LayerConfig {
    /// Path template of the values file.
    pub file: String,
    /// A missing optional layer is skipped; a missing required one is an error.
    #[serde(default)]
    pub optional: bool,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ExtraTarget {
    pub name: String,
    /// The env type this target is judged as (for policies). Default: `name`.
    #[serde(default)]
    pub r#type: Option<String>,
    /// Values files, lowest precedence first (after the chart's values.yaml).
    pub layers: Vec<String>,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PolicyConfig {
    #[serde(default)]
    pub image_tags: ImageTagPolicy,
    /// Values that must be equal across env types, e.g. preview and live agreeing on TLS.
    #[serde(default)]
    pub parity: Vec<ParityRule>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ParityRule {
    /// Env types whose targets must agree (e.g. `[preview, live]`).
    pub types: Vec<String>,
    /// Dotted value paths (e.g. `ingress.tls`) compared after composition (absent counts as a value).
    pub keys: Vec<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ImageTagPolicy {
    /// Tags that are refused (`""` means empty or missing). Default `["", "latest"]`.
    #[serde(default = "default_forbidden_tags")]
    pub forbid: Vec<String>,
    /// Env types the policy applies to. Default `[ci, preview, live]`.
    #[serde(default = "default_policy_types")]
    pub env_types: Vec<String>,
}

impl Default for ImageTagPolicy {
    fn default() -> Self {
        ImageTagPolicy {
            forbid: default_forbidden_tags(),
            env_types: default_policy_types(),
        }
    }
}

fn default_forbidden_tags() -> Vec<String> {
    vec![String::new(), "latest".into()]
}

fn default_policy_types() -> Vec<String> {
    vec!["ci".into(), "preview".into(), "live".into()]
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ValidateConfig {
    /// Severity per rule: error | warning | info | off.
    #[serde(default)]
    pub rules: RuleLevels,
}

/// One optional level per finding rule (names as in the output's `rule` field).
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "kebab-case")]
pub struct RuleLevels {
    pub schema: Option<RuleLevel>,
    pub unknown_key: Option<RuleLevel>,
    pub type_mismatch: Option<RuleLevel>,
    pub lock_digest: Option<RuleLevel>,
    pub vendored_chart: Option<RuleLevel>,
    pub duplicate_key: Option<RuleLevel>,
    pub yaml11_scalar: Option<RuleLevel>,
    pub image_tag: Option<RuleLevel>,
    pub subchart_not_checked: Option<RuleLevel>,
    pub helm_template: Option<RuleLevel>,
    pub helm_refuses: Option<RuleLevel>,
    pub template_scan: Option<RuleLevel>,
    pub file_dependency: Option<RuleLevel>,
    pub env_parity: Option<RuleLevel>,
}

impl RuleLevels {
    pub fn get(&self, rule: crate::diag::Rule) -> Option<RuleLevel> {
        use crate::diag::Rule as R;
        match rule {
            R::Schema => self.schema,
            R::UnknownKey => self.unknown_key,
            R::TypeMismatch => self.type_mismatch,
            R::LockDigest => self.lock_digest,
            R::VendoredChart => self.vendored_chart,
            R::DuplicateKey => self.duplicate_key,
            R::Yaml11Scalar => self.yaml11_scalar,
            R::ImageTag => self.image_tag,
            R::SubchartNotChecked => self.subchart_not_checked,
            R::HelmTemplate => self.helm_template,
            R::HelmRefuses => self.helm_refuses,
            R::TemplateScan => self.template_scan,
            R::FileDependency => self.file_dependency,
            R::EnvParity => self.env_parity,
        }
    }
}

/// `off` may be written bare: YAML 1.1 (which stack.yaml shares with values files) reads it as false.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleLevel {
    Error,
    Warning,
    Info,
    Off,
}

impl<'de> Deserialize<'de> for RuleLevel {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::Bool(false) => Ok(RuleLevel::Off),
            serde_json::Value::String(s) => match s.as_str() {
                "error" => Ok(RuleLevel::Error),
                "warning" => Ok(RuleLevel::Warning),
                "info" => Ok(RuleLevel::Info),
                "off" => Ok(RuleLevel::Off),
                other => Err(serde::de::Error::custom(format!(
                    "unknown level `{other}`: use error, warning, info or off"
                ))),
            },
            other => Err(serde::de::Error::custom(format!(
                "unknown level `{other}`: use error, warning, info or off"
            ))),
        }
    }
}

impl JsonSchema for RuleLevel {
    fn schema_name() -> std::borrow::Cow<'static, str> {
        "RuleLevel".into()
    }

    fn json_schema(_: &mut schemars::SchemaGenerator) -> schemars::Schema {
        schemars::json_schema!({
            "description": "error | warning | info | off (a bare `off` reads as false and means off)",
            "anyOf": [{ "enum": ["error", "warning", "info", "off"] }, { "const": false }]
        })
    }
}

/// The configuration in force and where the project lives.
#[derive(Debug)]
pub struct Project {
    pub root: PathBuf,
    pub config: Config,
    /// `stack.yaml` when one was read.
    pub file: Option<PathBuf>,
    /// Variables from `.env` (never printed).
    pub dotenv: BTreeMap<String, String>,
}

/// The JSON Schema of stack.yaml.
pub fn schema() -> serde_json::Value {
    serde_json::to_value(schemars::schema_for!(Config)).expect("schema serializes")
}

impl Project {
    /// Reads `<root>/stack.yaml` if present, else uses the defaults.
    pub fn load(root: &Path) -> Result<Project, StackError> {
        let path = root.join(FILE_NAME);
        let dotenv = dotenv::load(&root.join(".env"));
        if !path.exists() {
            let config = Config::default();
            return Ok(Project {
                root: root.to_path_buf(),
                config,
                file: None,
                dotenv,
            });
        }
        let text = std::fs::read_to_string(&path).map_err(|e| {
            StackError::config(
                None,
                format!("cannot read {}: {e}", path.display()),
                "check the file's permissions",
            )
        })?;
        let config = parse(&Arc::from(FILE_NAME), &text)?;
        Ok(Project {
            root: root.to_path_buf(),
            config,
            file: Some(path),
            dotenv,
        })
    }

    pub fn project_name(&self) -> String {
        self.config.project.clone().unwrap_or_else(|| {
            self.root
                .canonicalize()
                .ok()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "app".into())
        })
    }
}

/// Parses and checks stack.yaml text: YAML errors, schema errors and unknown keys all at line:col.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Config, StackError> {
    let doc = yaml::parse(file, text).map_err(StackError::from_parse)?;
    let root = doc.root;
    let json = root.value.to_json();
    // The schema is derived from these very types (deny_unknown_fields, same names and types), so
    // a file serde accepts is one the schema accepts: compiling the schema (the larger part of a
    // small `validate` run) is needed only to explain a file that does not deserialize.
    if let Ok(config) = serde_json::from_value::<Config>(json.clone()) {
        return check_api_version(config, &root);
    }
    let schema = schema();
    let validator = jsonschema::validator_for(&schema).expect("stack.yaml schema compiles");
    let mut problems: Vec<(Origin, String, Option<String>)> = Vec::new();
    for err in validator.iter_errors(&json) {
        let segments: Vec<String> = err
            .instance_path()
            .as_str()
            .split('/')
            .skip(1)
            .map(|s| s.replace("~1", "/").replace("~0", "~"))
            .collect();
        let node = locate(&root, &segments);
        let at = if segments.is_empty() {
            "top level".to_owned()
        } else {
            segments.join(".")
        };
        match err.kind() {
            jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } => {
                let allowed = allowed_keys(&schema, &segments);
                for key in unexpected {
                    let origin = node
                        .value
                        .as_map()
                        .and_then(|m| m.get(key))
                        .map_or(node.origin.clone(), |n| n.origin.clone());
                    let candidates: Vec<&str> = allowed.iter().map(String::as_str).collect();
                    let hint = match crate::values::checks::did_you_mean(key, &candidates) {
                        Some(best) => format!("did you mean `{best}`?"),
                        None => format!("allowed here: {}", allowed.join(", ")),
                    };
                    problems.push((origin, format!("unknown key `{key}` in {at}"), Some(hint)));
                }
            }
            _ => problems.push((node.origin.clone(), format!("{at}: {}", err.masked()), None)),
        }
    }
    if let Some((origin, message, hint)) = problems.first().cloned() {
        let more = problems.len() - 1;
        let message = if more > 0 {
            let rest: Vec<String> = problems[1..]
                .iter()
                .map(|(o, m, _)| format!("  {o}: {m}"))
                .collect();
            format!("{message}\n{}", rest.join("\n"))
        } else {
            message
        };
        return Err(StackError::Config {
            origin: Some(origin),
            message,
            hint: hint.or(Some("see `stack schema` for every key".into())),
        });
    }
    let config: Config = serde_json::from_value(json).map_err(|e| {
        StackError::config(
            Some(root.origin.clone()),
            format!("invalid {FILE_NAME}: {e}"),
            "see `stack schema`",
        )
    })?;
    check_api_version(config, &root)
}

fn check_api_version(config: Config, root: &yaml::Node) -> Result<Config, StackError> {
    if config.api_version != API_VERSION {
        let origin = root
            .value
            .as_map()
            .and_then(|m| m.get("apiVersion"))
            .map(|n| n.origin.clone());
        return Err(StackError::config(
            origin,
            format!("unsupported apiVersion `{}`", config.api_version),
            format!("use `apiVersion: {API_VERSION}`"),
        ));
    }
    Ok(config)
}

fn locate<'a>(root: &'a Node, segments: &[String]) -> &'a Node {
    let mut node = root;
    for s in segments {
        let next = match &node.value {
            Value::Map(m) => m.get(s),
            Value::Seq(items) => s.parse::<usize>().ok().and_then(|i| items.get(i)),
            _ => None,
        };
        match next {
            Some(n) => node = n,
            None => break,
        }
    }
    node
}

/// The property names the schema allows at an instance path (following `$ref`s and arrays).
fn allowed_keys(schema: &serde_json::Value, segments: &[String]) -> Vec<String> {
    let mut s = resolve_ref(schema, schema);
    for seg in segments {
        let next = if seg.parse::<usize>().is_ok() {
            s.get("items")
        } else {
            s.get("properties").and_then(|p| p.get(seg))
        };
        match next {
            Some(n) => s = resolve_ref(schema, n),
            None => return Vec::new(),
        }
    }
    s.get("properties")
        .and_then(|p| p.as_object())
        .map(|p| p.keys().cloned().collect())
        .unwrap_or_default()
}

/// Follows `$ref`s, and into the object branch of an `anyOf` (how schemars writes `Option<T>`).
fn resolve_ref<'a>(
    root: &'a serde_json::Value,
    mut s: &'a serde_json::Value,
) -> &'a serde_json::Value {
    for _ in 0..8 {
        if let Some(p) = s
            .get("$ref")
            .and_then(|r| r.as_str())
            .and_then(|r| r.strip_prefix('#'))
        {
            s = root.pointer(p).unwrap_or(s);
            continue;
        }
        match s.get("anyOf").and_then(|a| a.as_array()).and_then(|any| {
            any.iter()
                .find(|x| x.get("$ref").is_some() || x.get("properties").is_some())
        }) {
            Some(obj) => s = obj,
            None => break,
        }
    }
    s
}

/// Used by errors that have no better place to point at.
pub fn file_origin(file: &str) -> Origin {
    Origin {
        file: Arc::from(file),
        pos: Pos { line: 1, col: 1 },
    }
}
