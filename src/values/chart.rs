//! Loading a chart the way Helm sees it: Chart.yaml, values.yaml, values.schema.json and its
//! subcharts (directories or `.tgz` archives under `charts/`, or `file://` sources when not vendored).
//!
//! Invariant: loading never fails because a subchart is absent; the absence is recorded so that
//! `validate` can say exactly what was not checked and how to vendor it.

use crate::error::StackError;
use crate::yaml::{self, Node, Origin, Value};
use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::Arc;

type Result<T> = std::result::Result<T, StackError>;

fn io_error(what: &str, e: impl std::fmt::Display) -> StackError {
    StackError::config(
        None,
        format!("{what}: {e}"),
        "check that the file is readable and not corrupt",
    )
}

/// One entry of Chart.yaml `dependencies:`.
#[derive(Clone, Debug)]
pub struct Dependency {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: Option<bool>,
    pub import_values: Vec<serde_json::Value>,
    pub alias: String,
    /// Where the entry starts in Chart.yaml.
    pub origin: Origin,
    /// The raw entry as Chart.yaml holds it (for the lock digest).
    pub raw: Node,
}

impl Dependency {
    /// The values key of this dependency: its alias, else its name.
    pub fn key(&self) -> &str {
        if self.alias.is_empty() {
            &self.name
        } else {
            &self.alias
        }
    }
}

/// A subchart slot of a chart: the dependency and, when it could be read, the chart itself.
#[derive(Debug)]
pub struct Subchart {
    pub dep: Dependency,
    pub chart: Option<Arc<Chart>>,
    /// Where the subchart came from (vendored archive, directory, `file://` source).
    pub source: String,
}

#[derive(Debug)]
pub struct Chart {
    pub name: String,
    pub version: String,
    /// What the user sees as the chart's location, e.g. `charts/app` or `charts/app/charts/x-1.0.0.tgz`.
    pub display: String,
    /// The directory on disk when the chart is unpacked (None inside archives).
    pub dir: Option<PathBuf>,
    pub chart_yaml: Node,
    pub chart_yaml_file: Arc<str>,
    pub values: Node,
    pub values_notes: Vec<yaml::Note>,
    pub schema: Option<Schema>,
    pub subcharts: Vec<Subchart>,
    /// Subcharts found in charts/ that no dependency names (Helm includes them unconditionally).
    pub undeclared: Vec<Arc<Chart>>,
    /// Archives under charts/ (file name, chart name, version) — for the vendored-vs-lock check.
    pub vendored: Vec<Vendored>,
    /// Every file under templates/ (Helm parses them all, partials and NOTES.txt included):
    /// (display path, text), in path order.
    pub templates: Vec<(String, String)>,
}

#[derive(Debug, Clone)]
pub struct Vendored {
    pub file: String,
    pub name: String,
    pub version: String,
}

pub struct Schema {
    pub file: Arc<str>,
    pub json: serde_json::Value,
    /// Compiled once per run, shared by every target (validators are Sync).
    pub compiled: std::sync::OnceLock<std::result::Result<jsonschema::Validator, String>>,
}

impl std::fmt::Debug for Schema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Schema").field("file", &self.file).finish()
    }
}

/// The files of one chart, from a directory or from an archive.
enum Files {
    Dir(PathBuf),
    /// Paths relative to the chart root, from an archive.
    Archive(BTreeMap<String, Vec<u8>>),
}

impl Files {
    /// Every file below `dir` (relative paths, sorted), recursively.
    fn list(&self, dir: &str) -> Vec<String> {
        match self {
            Files::Dir(d) => {
                let mut out = Vec::new();
                let mut stack = vec![d.join(dir)];
                while let Some(p) = stack.pop() {
                    let Ok(entries) = std::fs::read_dir(&p) else {
                        continue;
                    };
                    for e in entries.flatten() {
                        let path = e.path();
                        if path.is_dir() {
                            stack.push(path);
                        } else if let Ok(rel) = path.strip_prefix(d) {
                            out.push(rel.to_string_lossy().replace('\\', "/"));
                        }
                    }
                }
                out.sort();
                out
            }
            Files::Archive(m) => {
                let prefix = format!("{dir}/");
                m.keys()
                    .filter(|k| k.starts_with(&prefix))
                    .cloned()
                    .collect()
            }
        }
    }

    fn read(&self, rel: &str) -> Option<Vec<u8>> {
        match self {
            Files::Dir(d) => std::fs::read(d.join(rel)).ok(),
            Files::Archive(m) => m.get(rel).cloned(),
        }
    }

    /// Subchart candidates in charts/: (display name, files).
    fn subcharts(&self, display: &str) -> Result<Vec<(String, Files)>> {
        let mut out = Vec::new();
        match self {
            Files::Dir(d) => {
                let Ok(entries) = std::fs::read_dir(d.join("charts")) else {
                    return Ok(out);
                };
                let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
                entries.sort();
                for p in entries {
                    let name = p
                        .file_name()
                        .unwrap_or_default()
                        .to_string_lossy()
                        .to_string();
                    let shown = format!("{display}/charts/{name}");
                    if p.is_dir() && p.join("Chart.yaml").exists() {
                        out.push((shown, Files::Dir(p)));
                    } else if name.ends_with(".tgz") || name.ends_with(".tar.gz") {
                        let bytes = std::fs::read(&p)
                            .map_err(|e| io_error(&format!("reading {shown}"), e))?;
                        out.push((shown.clone(), Files::Archive(unpack(&bytes, &shown)?)));
                    }
                }
            }
            Files::Archive(m) => {
                // Nested subcharts inside an archive: charts/<sub>/... or charts/<x>.tgz
                let mut dirs: BTreeMap<String, BTreeMap<String, Vec<u8>>> = BTreeMap::new();
                for (path, data) in m {
                    let Some(rest) = path.strip_prefix("charts/") else {
                        continue;
                    };
                    if let Some((sub, inner)) = rest.split_once('/') {
                        dirs.entry(sub.to_owned())
                            .or_default()
                            .insert(inner.to_owned(), data.clone());
                    } else if rest.ends_with(".tgz") {
                        let shown = format!("{display}/charts/{rest}");
                        out.push((shown.clone(), Files::Archive(unpack(data, &shown)?)));
                    }
                }
                for (sub, files) in dirs {
                    if files.contains_key("Chart.yaml") {
                        out.push((format!("{display}/charts/{sub}"), Files::Archive(files)));
                    }
                }
            }
        }
        Ok(out)
    }
}

/// A chart archive's files keyed by path below its top directory.
fn unpack(bytes: &[u8], shown: &str) -> Result<BTreeMap<String, Vec<u8>>> {
    let mut archive = tar::Archive::new(flate2::read::GzDecoder::new(bytes));
    let mut files = BTreeMap::new();
    for entry in archive
        .entries()
        .map_err(|e| io_error(&format!("{shown} is not a gzipped tar archive"), e))?
    {
        let mut entry = entry.map_err(|e| io_error(&format!("reading {shown}"), e))?;
        if !entry.header().entry_type().is_file() {
            continue;
        }
        let path = entry
            .path()
            .map_err(|e| io_error(shown, e))?
            .to_string_lossy()
            .to_string();
        let Some((_top, rel)) = path.split_once('/') else {
            continue;
        };
        let mut data = Vec::new();
        entry
            .read_to_end(&mut data)
            .map_err(|e| io_error(shown, e))?;
        files.insert(rel.to_owned(), data);
    }
    Ok(files)
}

fn config_error(origin: Option<Origin>, message: String, hint: &str) -> StackError {
    StackError::Config {
        origin,
        message,
        hint: Some(hint.to_owned()),
    }
}

/// Loads the chart in `dir` (relative display path `display`) with every subchart that can be read.
pub fn load(dir: &Path, display: &str) -> Result<Chart> {
    if !dir.join("Chart.yaml").exists() {
        return Err(StackError::Config {
            origin: None,
            message: format!("chart not found: {display}/Chart.yaml does not exist"),
            hint: Some("set `chart.path` in stack.yaml to the directory holding Chart.yaml".into()),
        });
    }
    load_files(Files::Dir(dir.to_path_buf()), display.to_owned())
}

fn load_files(files: Files, display: String) -> Result<Chart> {
    let chart_yaml_file: Arc<str> = Arc::from(format!("{display}/Chart.yaml"));
    let text = files.read("Chart.yaml").ok_or_else(|| {
        config_error(
            None,
            format!("{chart_yaml_file} is missing"),
            "a chart needs a Chart.yaml",
        )
    })?;
    let text = String::from_utf8_lossy(&text);
    let doc = yaml::parse(&chart_yaml_file, &text).map_err(StackError::from_parse)?;
    let chart_yaml = doc.root;
    let meta = chart_yaml.value.as_map().cloned().unwrap_or_default();
    let str_field = |m: &yaml::Map, k: &str| match m.get(k).map(|n| &n.value) {
        Some(Value::Str(s)) => s.clone(),
        Some(Value::Number(n)) => yaml::number_to_json(*n).to_string(),
        Some(Value::Bool(b)) => b.to_string(),
        _ => String::new(),
    };
    let name = str_field(&meta, "name");
    if name.is_empty() {
        return Err(config_error(
            Some(chart_yaml.origin.clone()),
            format!("{chart_yaml_file} has no `name`"),
            "add `name: <chart name>` to Chart.yaml",
        ));
    }
    let version = str_field(&meta, "version");

    let values_file: Arc<str> = Arc::from(format!("{display}/values.yaml"));
    let (values, values_notes) = match files.read("values.yaml") {
        Some(bytes) => {
            let doc = yaml::parse_values(&values_file, &String::from_utf8_lossy(&bytes))
                .map_err(StackError::from_parse)?;
            (doc.root, doc.notes)
        }
        None => (
            Node {
                value: Value::Map(Default::default()),
                origin: Origin {
                    file: values_file,
                    pos: yaml::Pos { line: 1, col: 1 },
                },
            },
            Vec::new(),
        ),
    };

    let schema = match files.read("values.schema.json") {
        Some(bytes) => {
            let file: Arc<str> = Arc::from(format!("{display}/values.schema.json"));
            let json = serde_json::from_slice(&bytes).map_err(|e| {
                config_error(
                    Some(Origin {
                        file: file.clone(),
                        pos: yaml::Pos {
                            line: e.line() as u32,
                            col: e.column() as u32,
                        },
                    }),
                    format!("invalid schema JSON: {e}"),
                    "fix the JSON syntax of values.schema.json",
                )
            })?;
            Some(Schema {
                file,
                json,
                compiled: Default::default(),
            })
        }
        None => None,
    };

    let deps = parse_dependencies(&meta);
    let dir = match &files {
        Files::Dir(d) => Some(d.clone()),
        Files::Archive(_) => None,
    };

    // Every readable subchart under charts/.
    let mut found: Vec<(String, Arc<Chart>)> = Vec::new();
    let mut vendored = Vec::new();
    for (shown, sub_files) in files.subcharts(&display)? {
        let is_archive = matches!(sub_files, Files::Archive(_)) && shown.ends_with("gz");
        let chart = Arc::new(load_files(sub_files, shown.clone())?);
        if is_archive {
            vendored.push(Vendored {
                file: shown.rsplit('/').next().unwrap_or(&shown).to_owned(),
                name: chart.name.clone(),
                version: chart.version.clone(),
            });
        }
        found.push((shown, chart));
    }

    let mut subcharts = Vec::new();
    for dep in &deps {
        let vendored_match = found
            .iter()
            .find(|(_, c)| c.name == dep.name && version_matches(&dep.version, &c.version));
        let (chart, source) = match vendored_match {
            Some((shown, c)) => (Some(c.clone()), shown.clone()),
            None => match (&dir, dep.repository.strip_prefix("file://")) {
                (Some(d), Some(rel)) if d.join(rel).join("Chart.yaml").exists() => {
                    let shown = normalize(&format!("{display}/{rel}"));
                    let c = load_files(Files::Dir(d.join(rel)), shown.clone())?;
                    (
                        Some(Arc::new(c)),
                        format!("{shown} (file:// source, not vendored)"),
                    )
                }
                _ => (None, dep.repository.clone()),
            },
        };
        subcharts.push(Subchart {
            dep: dep.clone(),
            chart,
            source,
        });
    }
    let undeclared = found
        .into_iter()
        .filter(|(_, c)| !deps.iter().any(|d| d.name == c.name))
        .map(|(_, c)| c)
        .collect();

    let templates = files
        .list("templates")
        .into_iter()
        .filter_map(|rel| {
            let text = String::from_utf8_lossy(&files.read(&rel)?).into_owned();
            Some((format!("{display}/{rel}"), text))
        })
        .collect();

    Ok(Chart {
        templates,
        name,
        version,
        display,
        dir,
        chart_yaml,
        chart_yaml_file,
        values,
        values_notes,
        schema,
        subcharts,
        undeclared,
        vendored,
    })
}

/// `a/b/../c` → `a/c` for display.
fn normalize(path: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    for p in path.split('/') {
        match p {
            ".." if parts.last().is_some_and(|l| *l != "..") => {
                parts.pop();
            }
            "." | "" => {}
            _ => parts.push(p),
        }
    }
    parts.join("/")
}

/// Whether a vendored chart version satisfies the dependency's version (exact, or a simple
/// constraint). Helm uses semver ranges; exact and wildcard forms cover vendored archives.
fn version_matches(constraint: &str, version: &str) -> bool {
    let c = constraint.trim();
    c.is_empty()
        || c == "*"
        || c == version
        || c.trim_start_matches(['=', 'v']) == version.trim_start_matches('v')
        || c.contains(['>', '<', '^', '~', 'x', '|', ' '])
}

fn parse_dependencies(meta: &yaml::Map) -> Vec<Dependency> {
    let Some(Value::Seq(items)) = meta.get("dependencies").map(|n| &n.value) else {
        return Vec::new();
    };
    items
        .iter()
        .filter_map(|item| {
            let m = item.value.as_map()?;
            let s = |k: &str| match m.get(k).map(|n| &n.value) {
                Some(Value::Str(s)) => s.clone(),
                Some(Value::Number(n)) => yaml::number_to_json(*n).to_string(),
                Some(Value::Bool(b)) => b.to_string(),
                _ => String::new(),
            };
            let tags = match m.get("tags").map(|n| &n.value) {
                Some(Value::Seq(t)) => t
                    .iter()
                    .filter_map(|n| match &n.value {
                        Value::Str(s) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
                _ => Vec::new(),
            };
            let import_values = match m.get("import-values").map(|n| &n.value) {
                Some(Value::Seq(v)) => v.iter().map(|n| n.value.to_json()).collect(),
                _ => Vec::new(),
            };
            let enabled = match m.get("enabled").map(|n| &n.value) {
                Some(Value::Bool(b)) => Some(*b),
                _ => None,
            };
            Some(Dependency {
                name: s("name"),
                version: s("version"),
                repository: s("repository"),
                condition: s("condition"),
                tags,
                enabled,
                import_values,
                alias: s("alias"),
                origin: item.origin.clone(),
                raw: item.clone(),
            })
        })
        .collect()
}

/// Reads Chart.lock next to the chart, if present.
pub fn read_lock(chart: &Chart) -> Result<Option<(Arc<str>, yaml::Document)>> {
    let Some(dir) = &chart.dir else {
        return Ok(None);
    };
    let path = dir.join("Chart.lock");
    let Ok(text) = std::fs::read_to_string(&path) else {
        return Ok(None);
    };
    let file: Arc<str> = Arc::from(format!("{}/Chart.lock", chart.display));
    let doc = yaml::parse(&file, &text).map_err(StackError::from_parse)?;
    Ok(Some((file, doc)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalize_resolves_parent_dirs() {
        assert_eq!(normalize("charts/app/../backend"), "charts/backend");
        assert_eq!(normalize("./a//b"), "a/b");
    }
}
