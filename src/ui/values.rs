//! `stack values`: the composed values as YAML (the human form) or JSON; with `--origin`, where
//! each value was set. Refusals (what makes Helm refuse the target) go to stderr instead.

use super::Format;
use crate::ops::values::Report;
use crate::yaml::{emit, Node, Value};

pub fn print(report: &Report, format: Format, origin: bool) {
    if !report.refusals.is_empty() {
        match format {
            Format::Json => crate::outln!(
                "{}",
                serde_json::to_string_pretty(&serde_json::json!({
                    "target": report.target,
                    "layers": report.layers,
                    "refusals": report.refusals,
                }))
                .expect("serializes")
            ),
            _ => {
                eprintln!("error: Helm would refuse to render {}:", report.target);
                for f in &report.refusals {
                    let at = f
                        .location
                        .as_ref()
                        .map(|o| format!("{o}: "))
                        .unwrap_or_default();
                    eprintln!("  {at}{}", f.message);
                    if let Some(h) = &f.hint {
                        eprintln!("  hint: {h}");
                    }
                }
            }
        }
        return;
    }
    let root = Node {
        value: Value::Map(report.values.clone()),
        origin: crate::config::file_origin(&report.target),
    };
    match (format, origin) {
        (Format::Json, false) => crate::outln!(
            "{}",
            serde_json::to_string_pretty(&root.value.to_json()).expect("serializes")
        ),
        (Format::Json, true) => {
            let mut leaves = Vec::new();
            collect_leaves(&root, &mut Vec::new(), &mut leaves);
            crate::outln!(
                "{}",
                serde_json::to_string_pretty(&leaves).expect("serializes")
            );
        }
        (_, with_origin) => {
            crate::outln!("# {}", report.layers.join(" → "));
            let annotate = |_: &[String], n: &Node| {
                let leaf = match &n.value {
                    Value::Map(m) => m.is_empty(),
                    Value::Seq(s) => s.is_empty(),
                    _ => true,
                };
                (with_origin && leaf).then(|| n.origin.to_string())
            };
            super::stdout(&emit::to_yaml(&root, &annotate));
        }
    }
}

/// Every leaf (scalar, or empty collection) with its path and origin.
fn collect_leaves(node: &Node, path: &mut Vec<String>, out: &mut Vec<serde_json::Value>) {
    match &node.value {
        Value::Map(m) if !m.is_empty() => {
            for (k, child) in m {
                path.push(k.clone());
                collect_leaves(child, path, out);
                path.pop();
            }
        }
        Value::Seq(items) if !items.is_empty() => {
            for (i, child) in items.iter().enumerate() {
                path.push(i.to_string());
                collect_leaves(child, path, out);
                path.pop();
            }
        }
        v => out.push(serde_json::json!({
            "path": path,
            "value": v.to_json(),
            "origin": { "file": &*node.origin.file, "line": node.origin.pos.line, "col": node.origin.pos.col },
        })),
    }
}
