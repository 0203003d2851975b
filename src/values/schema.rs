//! JSON Schema validation of composed values, as Helm ≥ 3.19 does it: the chart's schema against
//! its coalesced values, then each enabled subchart's schema against `values[<alias>]` (with
//! `global`), draft chosen by `$schema` (default 2020-12). Each error points at the value's origin.

use crate::diag::{Finding, Rule};
use crate::error::StackError;
use crate::values::chart::Schema;
use crate::values::compose::Tree;
use crate::yaml::{Map, Node, Value};

fn compiled(schema: &Schema) -> Result<&jsonschema::Validator, StackError> {
    schema
        .compiled
        .get_or_init(|| {
            jsonschema::options()
                .build(&schema.json)
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| {
            StackError::config(
                None,
                format!("{}: invalid schema: {e}", schema.file),
                "fix the schema so that it compiles",
            )
        })
}

/// Compiles every schema of the enabled tree (so errors surface once, before targets run).
pub fn precompile(tree: &Tree<'_>) -> Result<(), StackError> {
    if let Some(s) = &tree.chart.schema {
        compiled(s)?;
    }
    tree.children.iter().try_for_each(precompile)
}

/// Validates `values` (the map at this chart's level) against the tree's schemas.
/// `path` is the dotted prefix of this level for messages ("" at the top).
pub fn validate(
    tree: &Tree<'_>,
    values: &Map,
    fallback: &Node,
    path: &str,
    out: &mut Vec<Finding>,
) -> Result<(), StackError> {
    if let Some(schema) = &tree.chart.schema {
        let validator = compiled(schema)?;
        let json = Value::Map(values.clone()).to_json();
        for err in validator.iter_errors(&json) {
            let pointer = err.instance_path().as_str().to_owned();
            let segments = pointer_segments(&pointer);
            let (node, _) = locate(values, fallback, &segments);
            let mut full: Vec<String> = if path.is_empty() {
                vec![]
            } else {
                vec![path.to_owned()]
            };
            full.extend(segments.iter().cloned());
            let at = if full.is_empty() {
                "(top level)".to_owned()
            } else {
                full.join(".")
            };
            let mut message = match err.kind() {
                // Helm's wording: "got string, want integer" (values are not echoed: they may be secrets).
                jsonschema::error::ValidationErrorKind::Type { kind } => {
                    let got = node_json_type(values, &segments).unwrap_or("another type");
                    format!("{at}: got {got}, want {}", type_kind_name(kind))
                }
                _ => format!("{at}: {}", err.masked()),
            };
            if let jsonschema::error::ValidationErrorKind::AdditionalProperties { unexpected } =
                err.kind()
            {
                // Point at the unexpected key itself when it can be found.
                if let Some(Value::Map(m)) = Some(&node.value) {
                    if let Some(k) = unexpected.iter().find_map(|u| m.get(u)) {
                        out.push(
                            Finding::new(
                                Rule::Schema,
                                Some(k.origin.clone()),
                                format!("{at}: unexpected key(s) {}", unexpected.join(", ")),
                            )
                            .hint(format!(
                                "{} does not allow {} here; remove it or fix its spelling",
                                schema.file,
                                unexpected.join(", ")
                            )),
                        );
                        continue;
                    }
                }
                message = format!("{at}: unexpected key(s) {}", unexpected.join(", "));
            }
            out.push(
                Finding::new(Rule::Schema, Some(node.origin.clone()), message)
                    .hint(format!("the rule is in {}", schema.file)),
            );
        }
    }
    for child in &tree.children {
        let sub_path = if path.is_empty() {
            child.key.clone()
        } else {
            format!("{path}.{}", child.key)
        };
        match values.get(&child.key) {
            None
            | Some(Node {
                value: Value::Null, ..
            }) => {}
            Some(
                node @ Node {
                    value: Value::Map(m),
                    ..
                },
            ) => validate(child, m, node, &sub_path, out)?,
            Some(node) => out.push(Finding::new(
                Rule::Schema,
                Some(node.origin.clone()),
                format!(
                    "{sub_path}: invalid type for values: expected a map for subchart `{}`, got {}",
                    child.key,
                    node.value.type_name()
                ),
            )),
        }
    }
    Ok(())
}

fn node_json_type(values: &Map, segments: &[String]) -> Option<&'static str> {
    let placeholder = Node {
        value: Value::Null,
        origin: crate::config::file_origin(""),
    };
    let (node, used) = locate(values, &placeholder, segments);
    (used == segments.len() && !segments.is_empty()).then(|| match &node.value {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.fract() == 0.0 => "integer",
        Value::Number(_) => "number",
        Value::Str(_) => "string",
        Value::Seq(_) => "array",
        Value::Map(_) => "object",
    })
}

fn type_kind_name(kind: &jsonschema::error::TypeKind) -> String {
    match kind {
        jsonschema::error::TypeKind::Single(t) => t.to_string(),
        jsonschema::error::TypeKind::Multiple(ts) => ts
            .iter()
            .map(|t| t.to_string())
            .collect::<Vec<_>>()
            .join(" or "),
    }
}

/// JSON pointer → unescaped segments.
fn pointer_segments(pointer: &str) -> Vec<String> {
    pointer
        .split('/')
        .skip(1)
        .map(|s| s.replace("~1", "/").replace("~0", "~"))
        .collect()
}

/// The deepest node along `segments` (and how many segments it consumed).
pub fn locate<'a>(values: &'a Map, fallback: &'a Node, segments: &[String]) -> (&'a Node, usize) {
    let mut node = fallback;
    let mut map = Some(values);
    let mut seq: Option<&Vec<Node>> = None;
    for (i, seg) in segments.iter().enumerate() {
        let next = if let Some(m) = map {
            m.get(seg)
        } else if let Some(s) = seq {
            seg.parse::<usize>().ok().and_then(|i| s.get(i))
        } else {
            None
        };
        let Some(n) = next else { return (node, i) };
        node = n;
        map = None;
        seq = None;
        match &n.value {
            Value::Map(m) => map = Some(m),
            Value::Seq(s) => seq = Some(s),
            _ => {}
        }
    }
    (node, segments.len())
}
