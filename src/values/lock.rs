//! Chart.lock integrity, byte-exact with Helm (`internal/resolver.HashReq`, identical v3.0–v4.2):
//! digest = "sha256:" + hex(sha256(Go `json.Marshal([2][]*chart.Dependency{chartYamlDeps, lockDeps})`)).
//!
//! Go's encoding: struct fields in declaration order with `omitempty` rules, maps with sorted keys,
//! `<`, `>`, `&` escaped as `\u003c` `\u003e` `\u0026`, nil list as `null`. Chart.yaml strings are
//! sanitized first (whitespace → space, non-printable dropped) as `Dependency.Validate` does.

use crate::values::chart::Dependency;
use crate::yaml::{Node, Value};
use serde_json::Value as Json;
use sha2::{Digest, Sha256};

/// One dependency as Helm's `chart.Dependency` struct would encode it.
fn dependency_json(d: &DepFields, sanitize: bool) -> Json {
    let s = |v: &str| {
        if sanitize {
            sanitize_string(v)
        } else {
            v.to_owned()
        }
    };
    let mut m = serde_json::Map::new();
    m.insert("name".into(), Json::String(s(&d.name)));
    if !d.version.is_empty() {
        m.insert("version".into(), Json::String(s(&d.version)));
    }
    m.insert("repository".into(), Json::String(s(&d.repository)));
    if !d.condition.is_empty() {
        m.insert("condition".into(), Json::String(s(&d.condition)));
    }
    if !d.tags.is_empty() {
        m.insert(
            "tags".into(),
            Json::Array(d.tags.iter().map(|t| Json::String(s(t))).collect()),
        );
    }
    if d.enabled {
        m.insert("enabled".into(), Json::Bool(true));
    }
    if !d.import_values.is_empty() {
        m.insert("import-values".into(), Json::Array(d.import_values.clone()));
    }
    if !d.alias.is_empty() {
        m.insert("alias".into(), Json::String(d.alias.clone()));
    }
    Json::Object(m)
}

/// The fields of `chart.Dependency` that take part in the digest.
#[derive(Debug, Default, Clone)]
pub struct DepFields {
    pub name: String,
    pub version: String,
    pub repository: String,
    pub condition: String,
    pub tags: Vec<String>,
    pub enabled: bool,
    pub import_values: Vec<Json>,
    pub alias: String,
}

impl From<&Dependency> for DepFields {
    fn from(d: &Dependency) -> Self {
        DepFields {
            name: d.name.clone(),
            version: d.version.clone(),
            repository: d.repository.clone(),
            condition: d.condition.clone(),
            tags: d.tags.clone(),
            enabled: d.enabled.unwrap_or(false),
            import_values: d.import_values.clone(),
            alias: d.alias.clone(),
        }
    }
}

/// `Chart.lock` `dependencies:` entries (name, version, repository as written).
pub fn lock_dependencies(root: &Node) -> Option<Vec<DepFields>> {
    let Value::Map(m) = &root.value else {
        return None;
    };
    match m.get("dependencies").map(|n| &n.value) {
        Some(Value::Seq(items)) => Some(
            items
                .iter()
                .filter_map(|n| n.value.as_map())
                .map(|m| {
                    let s = |k: &str| match m.get(k).map(|n| &n.value) {
                        Some(Value::Str(s)) => s.clone(),
                        Some(Value::Number(n)) => crate::yaml::number_to_json(*n).to_string(),
                        _ => String::new(),
                    };
                    DepFields {
                        name: s("name"),
                        version: s("version"),
                        repository: s("repository"),
                        ..Default::default()
                    }
                })
                .collect(),
        ),
        _ => None,
    }
}

/// The digest Helm computes for these Chart.yaml dependencies and lock entries.
/// `chart_deps`/`lock_deps` of `None` encode as Go's nil slice (`null`).
pub fn digest(chart_deps: Option<&[DepFields]>, lock_deps: Option<&[DepFields]>) -> String {
    let list = |deps: Option<&[DepFields]>, sanitize: bool| match deps {
        None => Json::Null,
        Some(d) => Json::Array(d.iter().map(|d| dependency_json(d, sanitize)).collect()),
    };
    let doc = Json::Array(vec![list(chart_deps, true), list(lock_deps, false)]);
    let mut out = String::new();
    go_json(&doc, &mut out);
    format!("sha256:{}", hex::encode(Sha256::digest(out.as_bytes())))
}

/// `strings.Map` in `chart.sanitizeString`: whitespace → ' ', non-printable dropped.
fn sanitize_string(s: &str) -> String {
    s.chars()
        .filter_map(|c| {
            if c.is_whitespace() {
                Some(' ')
            } else if c.is_control() {
                None
            } else {
                Some(c)
            }
        })
        .collect()
}

/// Compact JSON exactly as Go's `encoding/json` writes it (HTML-safe escaping, sorted map keys).
fn go_json(v: &Json, out: &mut String) {
    match v {
        Json::Null => out.push_str("null"),
        Json::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Json::Number(n) => out.push_str(&n.to_string()),
        Json::String(s) => go_string(s, out),
        Json::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_json(item, out);
            }
            out.push(']');
        }
        Json::Object(m) => {
            // Struct fields keep declaration order (built in order above); Go maps sort their keys.
            // Both arrive here as objects; maps built from YAML come from BTreeMaps, already sorted.
            out.push('{');
            for (i, (k, val)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                go_string(k, out);
                out.push(':');
                go_json(val, out);
            }
            out.push('}');
        }
    }
}

fn go_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32))
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn go_escapes_html_characters() {
        let mut s = String::new();
        go_string(">= 0.0.1 & <x>", &mut s);
        assert_eq!(s, r#""\u003e= 0.0.1 \u0026 \u003cx\u003e""#);
    }

    #[test]
    fn nil_and_empty_lists_differ() {
        assert_ne!(digest(None, None), digest(Some(&[]), Some(&[])));
    }
}
