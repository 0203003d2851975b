//! Values trees back to YAML text that Helm reads as the same values: keys in sorted order (as
//! Helm's `toYaml` prints them), block style, two-space indent, list items at the parent's indent
//! (go-yaml's style), strings quoted whenever YAML 1.1 would read them as anything but that string.
//! `comment` may annotate each line that holds a value (e.g. its origin).

use super::{number_to_json, scalar, Node, Value};

/// A comment for a node's line, or none.
pub type Annotate<'a> = &'a dyn Fn(&[String], &Node) -> Option<String>;

pub fn to_yaml(root: &Node, annotate: Annotate<'_>) -> String {
    let mut out = String::new();
    let mut path = Vec::new();
    match &root.value {
        Value::Map(m) if m.is_empty() => out.push_str("{}\n"),
        Value::Map(_) | Value::Seq(_) => {
            block(&root.value, 0, false, &mut path, annotate, &mut out)
        }
        _ => {
            out.push_str(&scalar_text(&root.value));
            out.push('\n');
        }
    }
    out
}

/// A non-empty collection at `indent`. `inline`: the first line's indentation is already written
/// (after a list's `- `), as go-yaml writes `- key: v` and `- - v`.
fn block(
    value: &Value,
    indent: usize,
    inline: bool,
    path: &mut Vec<String>,
    annotate: Annotate<'_>,
    out: &mut String,
) {
    let pad = " ".repeat(indent);
    let mut first = inline;
    let mut start = |out: &mut String| {
        if !std::mem::take(&mut first) {
            out.push_str(&pad);
        }
    };
    match value {
        Value::Map(m) => {
            for (k, node) in m {
                path.push(k.clone());
                start(out);
                out.push_str(&key_text(k));
                out.push(':');
                entry(node, indent + 2, indent, path, annotate, out);
                path.pop();
            }
        }
        Value::Seq(items) => {
            for (i, node) in items.iter().enumerate() {
                path.push(i.to_string());
                start(out);
                out.push('-');
                item(node, indent + 2, path, annotate, out);
                path.pop();
            }
        }
        _ => unreachable!("block holds collections"),
    }
}

/// The rest of a `key:` line and what nests below it.
fn entry(
    node: &Node,
    child_indent: usize,
    own_indent: usize,
    path: &mut Vec<String>,
    annotate: Annotate<'_>,
    out: &mut String,
) {
    let comment = annotate(path, node)
        .map(|c| format!("  # {c}"))
        .unwrap_or_default();
    match &node.value {
        Value::Map(m) if !m.is_empty() => {
            out.push_str(&comment);
            out.push('\n');
            block(&node.value, child_indent, false, path, annotate, out);
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push_str(&comment);
            out.push('\n');
            // go-yaml puts a map's list items at the key's own indent.
            block(&node.value, own_indent, false, path, annotate, out);
        }
        v => scalar_line(v, &comment, out),
    }
}

/// The rest of a `-` line: a collection starts on the same line.
fn item(
    node: &Node,
    indent: usize,
    path: &mut Vec<String>,
    annotate: Annotate<'_>,
    out: &mut String,
) {
    match &node.value {
        Value::Map(m) if !m.is_empty() => {
            out.push(' ');
            block(&node.value, indent, true, path, annotate, out);
        }
        Value::Seq(items) if !items.is_empty() => {
            out.push(' ');
            block(&node.value, indent, true, path, annotate, out);
        }
        v => {
            let comment = annotate(path, node)
                .map(|c| format!("  # {c}"))
                .unwrap_or_default();
            scalar_line(v, &comment, out);
        }
    }
}

fn scalar_line(v: &Value, comment: &str, out: &mut String) {
    out.push(' ');
    out.push_str(&scalar_text(v));
    out.push_str(comment);
    out.push('\n');
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => number_to_json(*n).to_string(),
        Value::Str(s) => string_text(s),
        Value::Map(_) => "{}".into(),
        Value::Seq(_) => "[]".into(),
    }
}

fn key_text(k: &str) -> String {
    string_text(k)
}

/// A string plain when YAML 1.1 reads it back as the same string, else double-quoted (JSON escapes
/// are valid YAML double-quoted escapes).
fn string_text(s: &str) -> String {
    if plain_ok(s) {
        s.to_owned()
    } else {
        serde_json::to_string(s).expect("strings serialize")
    }
}

fn plain_ok(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if s.trim() != s || s.contains(['\n', '\r', '\t']) || s.chars().any(char::is_control) {
        return false;
    }
    // `-`, `?`, `:` start a plain scalar only when a non-space follows; the rest never do.
    let second = s.chars().nth(1);
    if ",[]{}#&*!|>'\"%@`".contains(first)
        || ("-?:".contains(first) && second.is_none_or(|c| c == ' '))
    {
        return false;
    }
    if s.contains(": ") || s.contains(" #") || s.ends_with(':') {
        return false;
    }
    // Anything YAML 1.1 (Helm) or YAML 1.2 would resolve to a non-string must be quoted.
    let r = scalar::resolve_plain(s);
    matches!(r.value, Value::Str(ref t) if t == s) && r.ambiguity.is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn round_trips_through_the_values_reader() {
        let text = "a:\n  b: [1, \"2\", yes, \"yes\", null, \"null\", \"\", \" x\", \"a: b\", \"#c\", 0755, \"0755\", 1.5, \"-\", \"line\\nbreak\"]\n  c: {}\n  d: []\n  \"k: y\": {\"on\": 1}\nlist:\n  - {x: 1, w: [a, {z: 2}]}\n  - - nested\n    - {q: 1}\n";
        let file: Arc<str> = Arc::from("t.yaml");
        let doc = crate::yaml::parse_values(&file, text).unwrap();
        let emitted = to_yaml(&doc.root, &|_, _| None);
        let again = crate::yaml::parse_values(&file, &emitted).unwrap();
        assert_eq!(
            doc.root.value.to_json(),
            again.root.value.to_json(),
            "{emitted}"
        );
        assert!(emitted.contains("  - \"yes\"\n"), "{emitted}");
        assert!(
            emitted.contains("list:\n- w:\n  - a\n  - z: 2\n  x: 1\n- - nested\n  - q: 1\n"),
            "{emitted}"
        );
    }

    #[test]
    fn annotates_value_lines() {
        let file: Arc<str> = Arc::from("t.yaml");
        let doc = crate::yaml::parse_values(&file, "a:\n  b: 1\n").unwrap();
        let emitted = to_yaml(&doc.root, &|p, n| {
            Some(format!("{} {}", p.join("."), n.origin))
        });
        assert_eq!(emitted, "a:  # a t.yaml:1:1\n  b: 1  # a.b t.yaml:2:3\n");
    }
}
