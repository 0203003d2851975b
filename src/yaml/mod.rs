//! YAML documents as trees whose every node remembers where it was written.
//!
//! Invariants: scalars resolve exactly as Helm resolves them (go-yaml v2 / YAML 1.1, numbers as
//! float64; see `scalar`); map keys are stringified the way `sigs.k8s.io/yaml` does; duplicate keys
//! keep the last value (as go-yaml v2 does) and are reported; `<<` merge keys apply in order;
//! aliases are expanded, and a document go-yaml refuses as "excessive aliasing" is refused before
//! any alias is expanded (`aliasing`). This module does no I/O.

mod aliasing;
pub mod edit;
pub mod emit;
mod scalar;

use saphyr_parser::{Event, Parser, ScalarStyle, Span, Tag};
use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

/// A position in a source file: 1-based line and column.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Pos {
    pub line: u32,
    pub col: u32,
}

/// Where a value was written: the file (as the user should see it) and the position.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Origin {
    pub file: Arc<str>,
    pub pos: Pos,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}:{}", self.file, self.pos.line, self.pos.col)
    }
}

pub type Map = BTreeMap<String, Node>;

#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Bool(bool),
    /// Every number is a float64 after Helm's YAML → JSON round trip.
    Number(f64),
    Str(String),
    Seq(Vec<Node>),
    Map(Map),
}

/// A value and where it came from. Inside a map, the origin is the key's position (the line to edit).
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    pub value: Value,
    pub origin: Origin,
}

impl Value {
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::Str(_) => "string",
            Value::Seq(_) => "list",
            Value::Map(_) => "map",
        }
    }

    pub fn as_map(&self) -> Option<&Map> {
        match self {
            Value::Map(m) => Some(m),
            _ => None,
        }
    }

    /// JSON for schema validation and comparison with Helm's `toJson`.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => number_to_json(*n),
            Value::Str(s) => serde_json::Value::String(s.clone()),
            Value::Seq(items) => {
                serde_json::Value::Array(items.iter().map(|n| n.value.to_json()).collect())
            }
            Value::Map(m) => serde_json::Value::Object(
                m.iter()
                    .map(|(k, n)| (k.clone(), n.value.to_json()))
                    .collect(),
            ),
        }
    }

    /// A short rendering for messages: scalars as written, collections summarized.
    pub fn brief(&self) -> String {
        match self {
            Value::Null => "null".into(),
            Value::Bool(b) => b.to_string(),
            Value::Number(n) => number_to_json(*n).to_string(),
            Value::Str(s) => format!("{s:?}"),
            Value::Seq(items) => format!("a list of {}", items.len()),
            Value::Map(m) => format!("a map of {} keys", m.len()),
        }
    }
}

/// Integral values within ±2^53 become JSON integers (as Go prints them); others stay floats.
pub fn number_to_json(n: f64) -> serde_json::Value {
    if n.fract() == 0.0 && n.abs() < 9_007_199_254_740_992.0 {
        serde_json::Value::from(n as i64)
    } else {
        serde_json::Number::from_f64(n).map_or(serde_json::Value::Null, serde_json::Value::Number)
    }
}

/// Something in the text that Helm accepts but that is likely a mistake.
#[derive(Clone, Debug, PartialEq)]
pub enum Note {
    /// The same key twice in one map; Helm keeps the last.
    DuplicateKey {
        key: String,
        first: Pos,
        second: Pos,
    },
    /// A plain scalar that YAML 1.1 (Helm) and YAML 1.2 read differently.
    /// `is_key`: a map key (stringified by Helm, e.g. a key `n` becomes "false").
    Ambiguous {
        text: String,
        helm_reads: String,
        yaml12_reads: &'static str,
        pos: Pos,
        is_key: bool,
    },
}

/// A parsed document: its root (a map for values files) and the notes found while reading it.
#[derive(Debug)]
pub struct Document {
    pub root: Node,
    pub notes: Vec<Note>,
}

/// The text is not YAML, or not a shape Helm accepts.
#[derive(Debug, thiserror::Error)]
#[error("{file}:{}:{}: {message}", pos.line, pos.col)]
pub struct ParseError {
    pub file: Arc<str>,
    pub pos: Pos,
    pub message: String,
}

fn pos_of(span: &Span) -> Pos {
    Pos {
        line: span.start.line() as u32,
        col: span.start.col() as u32 + 1,
    }
}

enum Frame {
    Seq {
        items: Vec<Node>,
        origin: Origin,
        anchor: usize,
    },
    Map {
        map: Map,
        origin: Origin,
        anchor: usize,
        /// The pending key, its position, and whether it is a merge key (`<<`).
        key: Option<(String, Pos, bool)>,
        seen: HashMap<String, Pos>,
    },
}

/// go-yaml merges at a plain (or `!!merge`-tagged) `<<` key only, not a quoted one.
fn is_merge_key(text: &str, style: ScalarStyle, tag: Option<&Tag>) -> bool {
    text == "<<"
        && match tag {
            None => style == ScalarStyle::Plain,
            Some(t) => format!("{}{}", t.handle, t.suffix) == "tag:yaml.org,2002:merge",
        }
}

/// go-yaml's nesting limit: deeper documents are refused (and never reach the recursive passes).
pub const MAX_DEPTH: usize = 10_000;

/// The events of the first document of `text` with content (as go-yaml's Unmarshal reads it),
/// up to its end.
fn first_document<'t>(
    file: &Arc<str>,
    text: &'t str,
) -> Result<Vec<(Event<'t>, Span)>, ParseError> {
    let mut events = Vec::new();
    let mut depth = 0usize;
    let mut has_root = false;
    for next in Parser::new_from_str(text) {
        let (event, span) = next.map_err(|e| {
            let m = e.marker();
            ParseError {
                file: file.clone(),
                pos: Pos {
                    line: m.line() as u32,
                    col: m.col() as u32 + 1,
                },
                message: e.info().to_owned(),
            }
        })?;
        match event {
            Event::SequenceStart(..) | Event::MappingStart(..) => depth += 1,
            Event::SequenceEnd | Event::MappingEnd => depth = depth.saturating_sub(1),
            _ => {}
        }
        if depth > MAX_DEPTH {
            return Err(ParseError {
                file: file.clone(),
                pos: pos_of(&span),
                message: format!(
                    "exceeded max depth of {MAX_DEPTH} (go-yaml, Helm's YAML reader, refuses deeper nesting)"
                ),
            });
        }
        has_root |= depth == 0
            && matches!(
                event,
                Event::Scalar(..) | Event::Alias(_) | Event::SequenceEnd | Event::MappingEnd
            );
        let end =
            matches!(event, Event::StreamEnd) || (matches!(event, Event::DocumentEnd) && has_root);
        events.push((event, span));
        if end {
            break;
        }
    }
    Ok(events)
}

/// Parses the first document of `text` (as go-yaml's Unmarshal does). An empty document is `null`.
pub fn parse(file: &Arc<str>, text: &str) -> Result<Document, ParseError> {
    let events = first_document(file, text)?;
    aliasing::check(&events, |event| {
        matches!(event, Event::Scalar(text, style, _, tag) if is_merge_key(text, *style, tag.as_deref()))
    })
    .map_err(|(pos, message)| ParseError {
        file: file.clone(),
        pos,
        message,
    })?;
    let mut stack: Vec<Frame> = Vec::new();
    let mut anchors: HashMap<usize, Node> = HashMap::new();
    let mut notes = Vec::new();
    let mut root: Option<Node> = None;
    // The key just read, when it was a scalar: (its text as Helm spells it, whether it merges).
    let mut scalar_key: Option<(String, bool)> = None;
    let origin = |pos| Origin {
        file: file.clone(),
        pos,
    };
    let err = |pos, message: String| ParseError {
        file: file.clone(),
        pos,
        message,
    };

    for (event, span) in events {
        let pos = pos_of(&span);
        // go-yaml v2 checks the node a `<<` names before expanding it: an alias of a list fails.
        let aliased = matches!(event, Event::Alias(_));
        let complete: Option<(Node, usize)> = match event {
            Event::StreamStart | Event::DocumentStart(_) | Event::Nothing => None,
            Event::DocumentEnd | Event::StreamEnd => {
                if root.is_some() || matches!(event, Event::StreamEnd) {
                    break;
                }
                None
            }
            // Expanding is safe: `aliasing::check` has bounded what all expansions cost.
            Event::Alias(id) => {
                let node = anchors
                    .get(&id)
                    .cloned()
                    .ok_or_else(|| err(pos, "unknown anchor".into()))?;
                Some((
                    Node {
                        value: node.value,
                        origin: origin(pos),
                    },
                    0,
                ))
            }
            Event::Scalar(text, style, anchor, tag) => {
                let is_key = matches!(stack.last(), Some(Frame::Map { key: None, .. }));
                // go-yaml v2 `decoder.scalar`: a tag decides (`!!int "7"` is 7, `!foo x` is
                // "x"); untagged, only plain scalars resolve; quoted and block ones are strings.
                let core = tag.as_deref().map(|t| {
                    let full = format!("{}{}", t.handle, t.suffix);
                    full.strip_prefix("tag:yaml.org,2002:").map(str::to_owned)
                });
                let go = match (&style, core) {
                    (_, Some(Some(suffix))) => {
                        scalar::resolve_tagged(&suffix, &text).map_err(|m| err(pos, m))?
                    }
                    (_, Some(None)) => scalar::Go::Str(text.to_string()),
                    (ScalarStyle::Plain, None) => {
                        let (go, ambiguity) = scalar::plain(&text);
                        if let Some(yaml12_reads) = ambiguity {
                            let helm_reads = if is_key {
                                format!("the key {:?}", go.key().unwrap_or_default())
                            } else {
                                go.clone().value().brief()
                            };
                            notes.push(Note::Ambiguous {
                                text: text.to_string(),
                                helm_reads,
                                yaml12_reads,
                                pos,
                                is_key,
                            });
                        }
                        go
                    }
                    _ => scalar::Go::Str(text.to_string()),
                };
                if is_key {
                    // sigs.k8s.io/yaml stringifies keys from the exact decoded value.
                    let merge = is_merge_key(&text, style, tag.as_deref());
                    let key = go.key().map_err(|what| {
                        err(pos, format!("unsupported map key: {} (quote the key)", match what {
                            "uint64" => "an integer beyond int64 (Helm: \"unsupported map key of type: uint64\")",
                            other => other,
                        }))
                    })?;
                    scalar_key = Some((key, merge));
                }
                Some((
                    Node {
                        value: go.value(),
                        origin: origin(pos),
                    },
                    anchor,
                ))
            }
            Event::SequenceStart(anchor, _) => {
                stack.push(Frame::Seq {
                    items: Vec::new(),
                    origin: origin(pos),
                    anchor,
                });
                None
            }
            Event::MappingStart(anchor, _) => {
                stack.push(Frame::Map {
                    map: Map::new(),
                    origin: origin(pos),
                    anchor,
                    key: None,
                    seen: HashMap::new(),
                });
                None
            }
            Event::SequenceEnd => match stack.pop() {
                Some(Frame::Seq {
                    items,
                    origin,
                    anchor,
                }) => Some((
                    Node {
                        value: Value::Seq(items),
                        origin,
                    },
                    anchor,
                )),
                _ => return Err(err(pos, "unbalanced sequence".into())),
            },
            Event::MappingEnd => match stack.pop() {
                Some(Frame::Map {
                    map,
                    origin,
                    anchor,
                    ..
                }) => Some((
                    Node {
                        value: Value::Map(map),
                        origin,
                    },
                    anchor,
                )),
                _ => return Err(err(pos, "unbalanced mapping".into())),
            },
        };
        let Some((node, anchor)) = complete else {
            continue;
        };
        if anchor != 0 {
            anchors.insert(anchor, node.clone());
        }
        match stack.last_mut() {
            None => root = Some(node),
            Some(Frame::Seq { items, .. }) => items.push(node),
            Some(Frame::Map { map, key, seen, .. }) => match key.take() {
                None => {
                    *key = Some(match scalar_key.take() {
                        Some((k, merge)) => (k, node.origin.pos, merge),
                        None => (key_string(file, &node)?, node.origin.pos, false),
                    })
                }
                Some((_, kpos, true)) => {
                    if aliased && !matches!(node.value, Value::Map(_)) {
                        return Err(err(
                            kpos,
                            "map merge requires map or sequence of maps as the value (an alias of a list is neither, for go-yaml)".into(),
                        ));
                    }
                    merge_into(map, node, kpos, file)?
                }
                Some((k, kpos, false)) => {
                    if let Some(first) = seen.insert(k.clone(), kpos) {
                        notes.push(Note::DuplicateKey {
                            key: k.clone(),
                            first,
                            second: kpos,
                        });
                    }
                    map.insert(
                        k,
                        Node {
                            value: node.value,
                            origin: origin(kpos),
                        },
                    );
                }
            },
        }
    }
    let root = root.unwrap_or(Node {
        value: Value::Null,
        origin: origin(Pos { line: 1, col: 1 }),
    });
    Ok(Document { root, notes })
}

/// go-yaml v2 `<<`: a map (or a list of maps, earlier ones winning) sets its keys in order.
fn merge_into(map: &mut Map, value: Node, pos: Pos, file: &Arc<str>) -> Result<(), ParseError> {
    let want_map = || ParseError {
        file: file.clone(),
        pos,
        message: "map merge requires map or sequence of maps as the value".into(),
    };
    match value.value {
        Value::Map(m) => map.extend(m),
        Value::Seq(items) => {
            for item in items.into_iter().rev() {
                match item.value {
                    Value::Map(m) => map.extend(m),
                    _ => return Err(want_map()),
                }
            }
        }
        _ => return Err(want_map()),
    }
    Ok(())
}

/// How `sigs.k8s.io/yaml` spells a scalar key.
fn key_text(v: &Value) -> String {
    match v {
        Value::Str(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) if n.fract() == 0.0 && n.is_finite() => format!("{}", *n as i128),
        Value::Number(n) => format!("{}", *n as f32),
        other => other.brief(),
    }
}

/// `sigs.k8s.io/yaml` turns non-string keys into strings; null and collection keys are errors.
fn key_string(file: &Arc<str>, key: &Node) -> Result<String, ParseError> {
    let unsupported = |what: &str| ParseError {
        file: file.clone(),
        pos: key.origin.pos,
        message: format!("unsupported map key: {what} (quote the key)"),
    };
    match &key.value {
        Value::Null => Err(unsupported("null")),
        Value::Seq(_) | Value::Map(_) => Err(unsupported("a collection")),
        v => Ok(key_text(v)),
    }
}

/// Parses a values file: the root must be a map (or empty, meaning `{}`), as Helm requires.
pub fn parse_values(file: &Arc<str>, text: &str) -> Result<Document, ParseError> {
    let mut doc = parse(file, text)?;
    match doc.root.value {
        Value::Map(_) => {}
        Value::Null => doc.root.value = Value::Map(Map::new()),
        ref other => {
            return Err(ParseError {
                file: file.clone(),
                pos: doc.root.origin.pos,
                message: format!(
                    "a values file must be a map of keys, but this is {}",
                    other.type_name()
                ),
            })
        }
    }
    Ok(doc)
}

/// Numbers JSON cannot hold (`.nan`, `.inf`, `-.inf`): Helm converts values files to JSON and
/// refuses the whole file on one of them ("json: unsupported value: NaN"). Found depth-first, in
/// file order; each origin is the key (or list item) holding the number.
pub fn non_json_numbers(node: &Node) -> Vec<(Origin, f64)> {
    let mut out = Vec::new();
    let mut stack = vec![node];
    while let Some(n) = stack.pop() {
        match &n.value {
            Value::Number(x) if !x.is_finite() => out.push((n.origin.clone(), *x)),
            Value::Map(m) => stack.extend(m.values()),
            Value::Seq(items) => stack.extend(items.iter()),
            _ => {}
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_numbers_json_cannot_hold() {
        let d = doc("a: .nan\nb: [1, -.inf]\nc: {d: .Inf}\nkey: '.nan'\n");
        let found: Vec<String> = non_json_numbers(&d.root)
            .iter()
            .map(|(o, x)| format!("{}:{} {x}", o.pos.line, o.pos.col))
            .collect();
        assert_eq!(found, ["1:1 NaN", "2:8 -inf", "3:5 inf"]);
    }

    fn doc(text: &str) -> Document {
        parse(&Arc::from("t.yaml"), text).unwrap()
    }

    #[test]
    fn positions_point_at_keys() {
        let d = doc("a:\n  b: 1\n  c: [x, y]\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        let Value::Map(a) = &m["a"].value else {
            panic!()
        };
        assert_eq!(a["b"].origin.pos, Pos { line: 2, col: 3 });
        assert_eq!(a["c"].origin.pos, Pos { line: 3, col: 3 });
        assert_eq!(a["b"].value, Value::Number(1.0));
    }

    #[test]
    fn duplicate_keys_keep_last_and_are_noted() {
        let d = doc("a: 1\nb: 2\na: 3\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        assert_eq!(m["a"].value, Value::Number(3.0));
        assert!(
            matches!(&d.notes[0], Note::DuplicateKey { key, first, second }
            if key == "a" && first.line == 1 && second.line == 3)
        );
    }

    #[test]
    fn merge_keys_and_anchors() {
        let d = doc("base: &b\n  a: 1\n  b: 2\nuse:\n  <<: *b\n  b: 3\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        let Value::Map(u) = &m["use"].value else {
            panic!()
        };
        assert_eq!(u["a"].value, Value::Number(1.0));
        assert_eq!(u["b"].value, Value::Number(3.0));
    }

    #[test]
    fn quoted_scalars_stay_strings_and_keys_stringify() {
        let d = doc("a: \"yes\"\nb: yes\n1: one\ntrue: t\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        assert_eq!(m["a"].value, Value::Str("yes".into()));
        assert_eq!(m["b"].value, Value::Bool(true));
        assert!(m.contains_key("1") && m.contains_key("true"));
        assert_eq!(
            d.notes.len(),
            1,
            "only the plain `yes` value is ambiguous: {:?}",
            d.notes
        );
        let d = doc("n: 1\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        assert!(
            m.contains_key("false"),
            "a key `n` is the boolean false to Helm"
        );
        assert!(matches!(&d.notes[0], Note::Ambiguous { is_key: true, .. }));
    }

    #[test]
    fn a_merge_of_an_alias_of_a_list_is_refused_as_go_yaml_refuses_it() {
        let file: Arc<str> = Arc::from("v.yaml");
        let text = "base: &b\n  - a: 1\n  - b: 2\nx:\n  <<: *b\n";
        let e = parse(&file, text).unwrap_err();
        assert!(
            e.message
                .starts_with("map merge requires map or sequence of maps"),
            "{}",
            e.message
        );
        assert_eq!((e.pos.line, e.pos.col), (5, 3));
        // A list of aliases of maps stays fine.
        let ok = "a: &a {x: 1}\nb: &b {y: 2}\nc:\n  <<: [*a, *b]\n";
        assert!(parse(&file, ok).is_ok());
    }

    #[test]
    fn keys_and_merges_as_go_yaml_reads_them() {
        let d = doc("k:\n  9007199254740993: a\n  1e7: b\n  !!str 5: c\n\"<<\": {q: 1}\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        let Value::Map(k) = &m["k"].value else {
            panic!()
        };
        let keys: Vec<&str> = k.keys().map(String::as_str).collect();
        assert_eq!(keys, ["1e+07", "5", "9007199254740993"]);
        // A quoted `<<` is an ordinary key.
        assert!(matches!(&m["<<"].value, Value::Map(q) if q.contains_key("q")));
        // A plain `<<` must hold a map or a list of maps; a uint64 key has no JSON spelling.
        for bad in [
            "<<: 5\n",
            "a: {<<: [1]}\n",
            "12345678901234567890: x\n",
            "a: !!int 1.5\n",
        ] {
            assert!(parse(&Arc::from("t.yaml"), bad).is_err(), "{bad}");
        }
        // go-yaml v2 applies a merge in place: it overrides keys written before it.
        let d = doc("a: {w: 3, <<: {w: 1, z: 2}}\n");
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        assert_eq!(m["a"].value.to_json(), serde_json::json!({"w": 1, "z": 2}));
    }

    #[test]
    fn syntax_errors_have_positions() {
        let e = parse(&Arc::from("bad.yaml"), "a: [1, 2\nb: 3\n").unwrap_err();
        assert_eq!(&*e.file, "bad.yaml");
        assert!(e.pos.line >= 1);
    }
}
