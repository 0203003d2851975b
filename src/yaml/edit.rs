//! Format-preserving edits of YAML text (what `promote` writes; later `release` and `bump`).
//!
//! A scalar is changed by replacing exactly its bytes — its quoting style kept unless the new
//! value would read differently in it —, and a missing key is inserted as new lines right after
//! its map's last entry; every other byte (comments above, beside and below, blank lines,
//! indentation, block scalars, flow collections, CRLF line endings, key order) stays as it was.
//!
//! The text is read by the same parser as the rest of `yaml` (saphyr), into a syntax tree whose
//! nodes keep their byte spans, anchors and merge keys, so what cannot be edited safely is refused
//! at its line:col instead: a value that aliases share (under an anchor some alias uses), a path
//! that runs through an alias or a merge key, a block or multi-line plain scalar. Keys resolve as
//! Helm reads values files (a duplicate key: the last one counts). After the edits the result is
//! parsed again and compared with what was intended, node by node: anything else changed is
//! refused, never written. Pure: no I/O.

use super::{Origin, Pos};
use crate::error::StackError;
use saphyr_parser::{Event, Parser, ScalarStyle};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub type NodeId = usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
    Folded,
}

#[derive(Clone, Debug)]
pub enum Kind {
    Scalar {
        value: String,
        style: Style,
    },
    /// `*name`: the node the anchor named when the alias was read.
    Alias {
        target: Option<NodeId>,
    },
    Map {
        entries: Vec<(NodeId, NodeId)>,
        flow: bool,
    },
    Seq {
        items: Vec<NodeId>,
        flow: bool,
    },
}

#[derive(Clone, Debug)]
pub struct Node {
    pub kind: Kind,
    /// Where the node's content starts (after its anchor and tag), 1-based.
    pub pos: Pos,
    /// Byte span of the content; for a scalar whose extent is not `exact`, an approximation
    /// (used only to place insertions after it).
    start: usize,
    end: usize,
    /// A scalar whose bytes `start..end` are exactly its text (so they can be replaced).
    exact: bool,
    /// `&name` on this node, and where it is written.
    anchor: Option<(String, Pos)>,
    parent: Option<NodeId>,
}

/// A step of a path into a document.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Seg<'a> {
    Key(&'a str),
    Index(usize),
    /// The item of a list that is a map whose `.0` key has the value `.1` (Kustomize's
    /// `images: [{name: x, …}]`).
    Where(&'a str, &'a str),
}

impl std::fmt::Display for Seg<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Seg::Key(k) => write!(f, "{k}"),
            Seg::Index(i) => write!(f, "[{i}]"),
            Seg::Where(k, v) => write!(f, "[{k}={v}]"),
        }
    }
}

/// Spells a path as users read it: `images[name=web].newTag`.
pub fn path_text(path: &[Seg]) -> String {
    let mut out = String::new();
    for s in path {
        if !out.is_empty() && matches!(s, Seg::Key(_)) {
            out.push('.');
        }
        out.push_str(&s.to_string());
    }
    out
}

/// One YAML file as a syntax tree with byte spans (every document of it).
pub struct Yaml {
    file: Arc<str>,
    text: String,
    nodes: Vec<Node>,
    docs: Vec<NodeId>,
    /// Anchored nodes that at least one alias (or merge key) refers to.
    aliased: HashSet<NodeId>,
}

impl Yaml {
    /// Parses every document of `text`. `file` is how positions are shown.
    pub fn parse(file: &str, text: &str) -> Result<Yaml, StackError> {
        Builder::new(file, text).run()
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    pub fn file(&self) -> &str {
        &self.file
    }

    /// The root of each document, in order.
    pub fn documents(&self) -> &[NodeId] {
        &self.docs
    }

    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id]
    }

    pub fn origin(&self, id: NodeId) -> Origin {
        self.at(self.nodes[id].pos)
    }

    fn at(&self, pos: Pos) -> Origin {
        Origin {
            file: self.file.clone(),
            pos,
        }
    }

    /// The text of a scalar (None for anything else).
    pub fn scalar(&self, id: NodeId) -> Option<&str> {
        match &self.nodes[id].kind {
            Kind::Scalar { value, .. } => Some(value),
            _ => None,
        }
    }

    /// Every node, in document order.
    pub fn ids(&self) -> std::ops::Range<NodeId> {
        0..self.nodes.len()
    }

    /// A scalar that is the value of a map entry: its key's text.
    pub fn key_of(&self, id: NodeId) -> Option<&str> {
        let parent = self.nodes[id].parent?;
        let Kind::Map { entries, .. } = &self.nodes[parent].kind else {
            return None;
        };
        let (k, _) = entries.iter().find(|(_, v)| *v == id)?;
        self.scalar(*k)
    }

    /// The comment after a node on the line where it ends (`tag: v1 # {"$imagepolicy": …}` →
    /// `{"$imagepolicy": …}`), when nothing but blanks separates them.
    pub fn trailing_comment(&self, id: NodeId) -> Option<&str> {
        let n = &self.nodes[id];
        if !n.exact {
            return None;
        }
        let rest = &self.text[n.end..];
        let line = &rest[..rest.find(['\n', '\r']).unwrap_or(rest.len())];
        let trimmed = line.trim_start_matches([' ', '\t']);
        (trimmed.len() < line.len() || line.is_empty())
            .then_some(())
            .and(trimmed.strip_prefix('#'))
            .map(str::trim)
    }

    /// The value at `path` in document `doc`, as Helm would read it: `Ok(None)` when absent;
    /// refused when the path runs through an alias or a merge key.
    pub fn find(&self, doc: usize, path: &[Seg]) -> Result<Option<NodeId>, StackError> {
        let Some(&root) = self.docs.get(doc) else {
            return Ok(None);
        };
        let mut at = root;
        for (i, seg) in path.iter().enumerate() {
            let here = &path[..i];
            if let Kind::Alias { target } = &self.nodes[at].kind {
                return Err(self.through_alias(at, *target, path, here));
            }
            let next = match (seg, &self.nodes[at].kind) {
                (Seg::Key(k), Kind::Map { entries, .. }) => match self.entry(entries, k) {
                    Found::Direct(v) => Some(v),
                    Found::Absent => None,
                    Found::Merged(merge_key) => {
                        return Err(StackError::config(
                            Some(self.origin(merge_key)),
                            format!(
                                "`{}` comes through this merge key (`<<`): editing it would change the anchor every merge shares",
                                path_text(path)
                            ),
                            format!(
                                "set `{}` explicitly in this map (after the `<<` line), then run again",
                                path_text(&path[..=i])
                            ),
                        ));
                    }
                },
                (Seg::Index(n), Kind::Seq { items, .. }) => items.get(*n).copied(),
                (Seg::Where(k, want), Kind::Seq { items, .. }) => {
                    let mut hit = None;
                    for &item in items {
                        let Kind::Map { entries, .. } = &self.nodes[item].kind else {
                            continue;
                        };
                        if let Found::Direct(v) = self.entry(entries, k) {
                            if self.scalar(v) == Some(*want) {
                                hit = Some(item);
                            }
                        }
                    }
                    hit
                }
                _ => None,
            };
            match next {
                Some(n) => at = n,
                None => return Ok(None),
            }
        }
        if let Kind::Alias { target } = &self.nodes[at].kind {
            return Err(self.through_alias(at, *target, path, path));
        }
        Ok(Some(at))
    }

    fn through_alias(
        &self,
        alias: NodeId,
        target: Option<NodeId>,
        path: &[Seg],
        upto: &[Seg],
    ) -> StackError {
        let anchor = target
            .and_then(|t| self.nodes[t].anchor.as_ref())
            .map(|(name, pos)| format!(" (the anchor `&{name}` is at {})", self.at(*pos)))
            .unwrap_or_default();
        StackError::config(
            Some(self.origin(alias)),
            format!(
                "`{}` runs through the alias at `{}`{anchor}: editing it would change every node sharing that anchor",
                path_text(path),
                if upto.is_empty() { "the top".to_owned() } else { path_text(upto) }
            ),
            "write the value out in place of the alias, or edit the anchor yourself",
        )
    }

    /// Which entry of a map sets `key` as Helm reads it: the last explicit one, or a merge key
    /// (`<<`, which sets the keys of its maps at its place) after it.
    fn entry(&self, entries: &[(NodeId, NodeId)], key: &str) -> Found {
        let mut found = Found::Absent;
        for &(k, v) in entries {
            if self.is_merge_key(k) {
                if self.merged_has(v, key, 0) {
                    found = Found::Merged(k);
                }
            } else if self.scalar(k) == Some(key) {
                found = Found::Direct(v);
            }
        }
        found
    }

    fn is_merge_key(&self, k: NodeId) -> bool {
        matches!(&self.nodes[k].kind, Kind::Scalar { value, style: Style::Plain } if value == "<<")
    }

    fn merged_has(&self, v: NodeId, key: &str, depth: usize) -> bool {
        if depth > 16 {
            return false;
        }
        match &self.nodes[v].kind {
            Kind::Alias { target: Some(t) } => self.merged_has(*t, key, depth + 1),
            Kind::Map { entries, .. } => !matches!(self.entry(entries, key), Found::Absent),
            Kind::Seq { items, .. } => items.iter().any(|&i| self.merged_has(i, key, depth + 1)),
            _ => false,
        }
    }

    /// Refuses a node that aliases share: it, or a node above it, carries an anchor some alias
    /// (or merge key) uses.
    pub fn check_unshared(&self, id: NodeId, what: &str) -> Result<(), StackError> {
        let mut at = Some(id);
        while let Some(n) = at {
            if self.aliased.contains(&n) {
                let (name, pos) = self.nodes[n]
                    .anchor
                    .clone()
                    .expect("aliased nodes are anchored");
                return Err(StackError::config(
                    Some(self.origin(id)),
                    format!(
                        "{what} is under the anchor `&{name}` at {}, which aliases share: editing it would change them too",
                        self.at(pos)
                    ),
                    "write the value out where it is used (no anchor), or edit it yourself",
                ));
            }
            at = self.nodes[n].parent;
        }
        Ok(())
    }

    fn eol(&self) -> &'static str {
        if self.text.contains("\r\n") {
            "\r\n"
        } else {
            "\n"
        }
    }
}

enum Found {
    Direct(NodeId),
    Absent,
    /// The merge key (`<<`) that sets it.
    Merged(NodeId),
}

/// Edits planned on one [`Yaml`], applied together by [`Editor::finish`].
pub struct Editor<'y> {
    yaml: &'y Yaml,
    /// Byte range replaced, and by what.
    splices: Vec<(usize, usize, String)>,
    /// What the re-parsed file must look like where it changed.
    expect: HashMap<NodeId, Shape>,
}

impl<'y> Editor<'y> {
    pub fn new(yaml: &'y Yaml) -> Self {
        Editor {
            yaml,
            splices: Vec::new(),
            expect: HashMap::new(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.splices.is_empty()
    }

    /// Sets the scalar `id` to `value` (a string), replacing only its bytes. `Ok(false)`: it
    /// already holds `value`. `what` names it in refusals (e.g. the path).
    pub fn set(&mut self, id: NodeId, value: &str, what: &str) -> Result<bool, StackError> {
        let y = self.yaml;
        let node = &y.nodes[id];
        let (old, style) = match &node.kind {
            Kind::Scalar { value, style } => (value, *style),
            Kind::Alias { target } => {
                return Err(y.through_alias(id, *target, &[Seg::Key(what)], &[Seg::Key(what)]))
            }
            _ => {
                return Err(StackError::config(
                    Some(y.origin(id)),
                    format!("{what} is a map or a list here, not a value"),
                    "point stack at the scalar that holds it",
                ))
            }
        };
        if let Some(Shape::Scalar { value: planned, .. }) = self.expect.get(&id) {
            if planned == value {
                return Ok(false);
            }
            return Err(StackError::config(
                Some(y.origin(id)),
                format!("{what} would be set both to {planned:?} and to {value:?}"),
                "two rules (e.g. a values path and a Flux marker) name this value: keep one",
            ));
        }
        if old == value {
            return Ok(false);
        }
        y.check_unshared(id, what)?;
        if matches!(style, Style::Literal | Style::Folded) || !node.exact {
            return Err(StackError::config(
                Some(y.origin(id)),
                format!(
                    "{what} is written as a {} scalar, which stack does not rewrite",
                    if node.exact {
                        "block (`|` / `>`)"
                    } else {
                        "multi-line plain"
                    }
                ),
                "write it on one line (plain or quoted), then run again",
            ));
        }
        let in_flow = y.in_flow(id);
        let (mut text, written) = render(value, style, in_flow);
        if node.start == node.end && y.text[..node.start].ends_with(':') {
            text.insert(0, ' ');
        }
        self.splices.push((node.start, node.end, text));
        self.expect.insert(
            id,
            Shape::Scalar {
                value: value.to_owned(),
                style: written,
            },
        );
        Ok(true)
    }

    /// Sets `path` (map keys) in document `doc` to `value`: the scalar in place when it exists,
    /// else new lines after the last entry of the deepest map of the path that exists (missing
    /// maps on the way are written too). `Ok(false)`: it already holds `value`.
    pub fn set_path(&mut self, doc: usize, path: &[&str], value: &str) -> Result<bool, StackError> {
        let y = self.yaml;
        let segs: Vec<Seg> = path.iter().map(|k| Seg::Key(k)).collect();
        let shown = path_text(&segs);
        if let Some(id) = y.find(doc, &segs)? {
            return self.set(id, value, &format!("`{shown}`"));
        }
        // The deepest map on the path that exists (`find` refused aliases and merges already).
        let mut depth = 0;
        let mut at = y.docs.get(doc).copied();
        while let Some(n) = at {
            if depth == path.len() {
                break;
            }
            let child = match &y.nodes[n].kind {
                Kind::Map { entries, .. } => match y.entry(entries, path[depth]) {
                    Found::Direct(v) => Some(v),
                    _ => None,
                },
                _ => None,
            };
            match child {
                Some(c) => {
                    at = Some(c);
                    depth += 1;
                }
                None => break,
            }
        }
        let rest = &path[depth..];
        let eol = y.eol();
        // A new value is quoted as the file quotes the same key elsewhere (`tag: "1.2"`).
        let last = *path.last().unwrap_or(&"");
        let style = y
            .ids()
            .filter(|&id| y.key_of(id) == Some(last))
            .find_map(|id| match &y.nodes[id].kind {
                Kind::Scalar { style, .. } => Some(*style),
                _ => None,
            })
            .filter(|s| matches!(s, Style::Plain | Style::SingleQuoted | Style::DoubleQuoted))
            .unwrap_or(Style::Plain);
        match at {
            // An empty file (or only comments): the keys go at its end, unindented.
            None => {
                let mut text = String::new();
                if !y.text.is_empty() && !y.text.ends_with('\n') {
                    text.push_str(eol);
                }
                let lines = new_lines(rest, value, style, 0, 2, eol);
                text.push_str(&lines);
                self.splices.push((y.text.len(), y.text.len(), text));
                // Verified by the re-parse: the new document must be exactly these keys.
                self.expect.insert(usize::MAX, nested(rest, value, style));
                Ok(true)
            }
            Some(n) => {
                y.check_unshared(n, &format!("`{shown}`"))?;
                let node = &y.nodes[n];
                match &node.kind {
                    Kind::Map {
                        entries,
                        flow: false,
                    } if !entries.is_empty() => {
                        let indent = node.pos.col as usize - 1;
                        let step = entries
                            .iter()
                            .find_map(|&(_, v)| match &y.nodes[v].kind {
                                Kind::Map {
                                    entries: inner,
                                    flow: false,
                                } if !inner.is_empty() => {
                                    (y.nodes[v].pos.col as usize).checked_sub(node.pos.col as usize)
                                }
                                _ => None,
                            })
                            .filter(|s| *s > 0)
                            .unwrap_or(2);
                        let last = entries.last().expect("not empty").1;
                        let at_byte = y.line_after(y.subtree_end(last));
                        let lines = new_lines(rest, value, style, indent, step, eol);
                        let prefix = if at_byte == y.text.len() && !y.text.ends_with('\n') {
                            eol
                        } else {
                            ""
                        };
                        self.splices
                            .push((at_byte, at_byte, format!("{prefix}{lines}")));
                        let mut shape = y.shape(n, &HashMap::new());
                        if let Shape::Map(items) = &mut shape {
                            let Shape::Map(added) = nested(rest, value, style) else {
                                unreachable!()
                            };
                            items.extend(added);
                        }
                        self.expect.insert(n, shape);
                        Ok(true)
                    }
                    // `key:` with nothing after it (null): the map goes below the key.
                    Kind::Scalar { value: v, style: Style::Plain }
                        if v.is_empty() && node.exact && depth > 0 =>
                    {
                        let key = y.key_node(n);
                        let key_col = key.map_or(0, |k| y.nodes[k].pos.col as usize - 1);
                        let at_byte = y.line_after(node.start);
                        let lines = new_lines(rest, value, style, key_col + 2, 2, eol);
                        let prefix = if at_byte == y.text.len() && !y.text.ends_with('\n') {
                            eol
                        } else {
                            ""
                        };
                        self.splices
                            .push((at_byte, at_byte, format!("{prefix}{lines}")));
                        self.expect.insert(n, nested(rest, value, style));
                        Ok(true)
                    }
                    _ => Err(StackError::config(
                        Some(y.origin(n)),
                        format!(
                            "cannot add `{}` here: `{}` is {}",
                            path_text(&segs[depth..]),
                            if depth == 0 {
                                "the document".to_owned()
                            } else {
                                path_text(&segs[..depth])
                            },
                            describe(&node.kind)
                        ),
                        format!("add `{shown}` to the file yourself (stack only adds keys to block maps)"),
                    )),
                }
            }
        }
    }

    /// The edited text, verified: parsed again, it must equal the original except where this
    /// editor meant to change it.
    pub fn finish(mut self) -> Result<String, StackError> {
        let y = self.yaml;
        self.splices.sort_by_key(|s| (s.0, s.1));
        for pair in self.splices.windows(2) {
            if pair[0].1 > pair[1].0 {
                return Err(StackError::Internal {
                    message: format!("{}: overlapping edits", y.file),
                });
            }
        }
        let mut out = y.text.clone();
        for (start, end, text) in self.splices.iter().rev() {
            out.replace_range(*start..*end, text);
        }
        let broken = |why: String| StackError::Internal {
            message: format!(
                "{}: the edit would change more than intended ({why}); nothing was written",
                y.file
            ),
        };
        let again = Yaml::parse(&y.file, &out).map_err(|e| broken(e.to_string()))?;
        let mut want: Vec<Shape> = y.docs.iter().map(|&d| y.shape(d, &self.expect)).collect();
        if let Some(new_doc) = self.expect.remove(&usize::MAX) {
            match want.first_mut() {
                Some(first @ Shape::Scalar { .. }) => *first = new_doc,
                Some(_) => return Err(broken("a new document over an existing one".into())),
                None => want.push(new_doc),
            }
        }
        let got: Vec<Shape> = again
            .docs
            .iter()
            .map(|&d| again.shape(d, &HashMap::new()))
            .collect();
        if got != want {
            return Err(broken("the re-read document differs".into()));
        }
        Ok(out)
    }
}

/// What a node means, for comparing a file before and after an edit.
#[derive(Clone, Debug, PartialEq)]
enum Shape {
    Scalar { value: String, style: Style },
    Alias,
    Map(Vec<(Shape, Shape)>),
    Seq(Vec<Shape>),
}

/// `a: {b: value}` for `rest = [a, b]`, as the new lines read back.
fn nested(rest: &[&str], value: &str, style: Style) -> Shape {
    let (_, written) = render(value, style, false);
    let mut shape = Shape::Scalar {
        value: value.to_owned(),
        style: written,
    };
    for k in rest.iter().rev() {
        let (_, key_style) = render(k, Style::Plain, false);
        shape = Shape::Map(vec![(
            Shape::Scalar {
                value: (*k).to_owned(),
                style: key_style,
            },
            shape,
        )]);
    }
    shape
}

/// `k1:\n  k2: value\n` indented by `indent`, each level by `step` more.
fn new_lines(
    rest: &[&str],
    value: &str,
    style: Style,
    indent: usize,
    step: usize,
    eol: &str,
) -> String {
    let mut out = String::new();
    for (i, k) in rest.iter().enumerate() {
        let pad = " ".repeat(indent + i * step);
        let (key, _) = render(k, Style::Plain, false);
        if i + 1 == rest.len() {
            let (v, _) = render(value, style, false);
            out.push_str(&format!("{pad}{key}: {v}{eol}"));
        } else {
            out.push_str(&format!("{pad}{key}:{eol}"));
        }
    }
    out
}

fn describe(kind: &Kind) -> &'static str {
    match kind {
        Kind::Scalar { .. } => "a value, not a map",
        Kind::Alias { .. } => "an alias",
        Kind::Map { flow: true, .. } => "a flow map (`{…}`)",
        Kind::Map { .. } => "an empty map",
        Kind::Seq { .. } => "a list",
    }
}

impl Yaml {
    fn shape(&self, id: NodeId, overrides: &HashMap<NodeId, Shape>) -> Shape {
        if let Some(s) = overrides.get(&id) {
            return s.clone();
        }
        match &self.nodes[id].kind {
            Kind::Scalar { value, style } => Shape::Scalar {
                value: value.clone(),
                style: *style,
            },
            Kind::Alias { .. } => Shape::Alias,
            Kind::Map { entries, .. } => Shape::Map(
                entries
                    .iter()
                    .map(|&(k, v)| (self.shape(k, overrides), self.shape(v, overrides)))
                    .collect(),
            ),
            Kind::Seq { items, .. } => {
                Shape::Seq(items.iter().map(|&i| self.shape(i, overrides)).collect())
            }
        }
    }

    fn in_flow(&self, id: NodeId) -> bool {
        let mut at = self.nodes[id].parent;
        while let Some(p) = at {
            if matches!(
                self.nodes[p].kind,
                Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
            ) {
                return true;
            }
            at = self.nodes[p].parent;
        }
        false
    }

    fn key_node(&self, value: NodeId) -> Option<NodeId> {
        let parent = self.nodes[value].parent?;
        let Kind::Map { entries, .. } = &self.nodes[parent].kind else {
            return None;
        };
        entries.iter().find(|(_, v)| *v == value).map(|(k, _)| *k)
    }

    /// Where the text of a node and everything below it ends.
    fn subtree_end(&self, id: NodeId) -> usize {
        match &self.nodes[id].kind {
            Kind::Map {
                entries,
                flow: false,
            } => entries
                .last()
                .map_or(self.nodes[id].end, |&(_, v)| self.subtree_end(v)),
            Kind::Seq { items, flow: false } => items
                .last()
                .map_or(self.nodes[id].end, |&i| self.subtree_end(i)),
            _ => self.nodes[id].end,
        }
    }

    /// The start of the line after the one holding byte `at` (the end of the text if none).
    fn line_after(&self, at: usize) -> usize {
        self.text[at..]
            .find('\n')
            .map_or(self.text.len(), |i| at + i + 1)
    }
}

/// The new text of a scalar written as `style` was, and the style it ends up in: the same one
/// unless the value would read differently in it (then double quotes).
fn render(value: &str, style: Style, in_flow: bool) -> (String, Style) {
    let printable = !value.chars().any(|c| c.is_control());
    match style {
        Style::Plain if plain_ok(value, in_flow) => (value.to_owned(), Style::Plain),
        Style::SingleQuoted if printable => (
            format!("'{}'", value.replace('\'', "''")),
            Style::SingleQuoted,
        ),
        _ => (double_quoted(value), Style::DoubleQuoted),
    }
}

fn double_quoted(value: &str) -> String {
    let mut out = String::from("\"");
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Whether `value` written plain reads back as this very string — in YAML 1.1 (Helm) and 1.2
/// (Argo CD, Kustomize) alike — and ends where it should.
fn plain_ok(value: &str, in_flow: bool) -> bool {
    let Some(first) = value.chars().next() else {
        return false;
    };
    if value.trim() != value
        || value.chars().any(|c| c.is_control())
        || "-?:,[]{}#&*!|>'\"%@`".contains(first)
        || value.contains(": ")
        || value.contains(" #")
        || value.ends_with(':')
        || (in_flow && value.contains([',', '[', ']', '{', '}']))
    {
        return false;
    }
    matches!(super::scalar::plain(value), (super::scalar::Go::Str(s), None) if s == value)
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "null" | "~" | "true" | "false" | "yes" | "no" | "on" | "off" | "y" | "n"
        )
}

/// Builds the syntax tree from the parser's events.
struct Builder<'t> {
    file: Arc<str>,
    text: &'t str,
    /// Byte offset of each char index (empty when the text is ASCII).
    bytes: Vec<usize>,
    nodes: Vec<Node>,
    docs: Vec<NodeId>,
    anchors: HashMap<usize, NodeId>,
    aliased: HashSet<NodeId>,
    /// Open collections.
    stack: Vec<NodeId>,
    /// For an open map: the key read, waiting for its value.
    pending_key: HashMap<NodeId, NodeId>,
}

impl<'t> Builder<'t> {
    fn new(file: &str, text: &'t str) -> Self {
        let bytes = if text.is_ascii() {
            Vec::new()
        } else {
            text.char_indices().map(|(b, _)| b).collect()
        };
        Builder {
            file: Arc::from(file),
            text,
            bytes,
            nodes: Vec::new(),
            docs: Vec::new(),
            anchors: HashMap::new(),
            aliased: HashSet::new(),
            stack: Vec::new(),
            pending_key: HashMap::new(),
        }
    }

    fn byte(&self, char_index: usize) -> usize {
        if self.bytes.is_empty() {
            char_index.min(self.text.len())
        } else {
            self.bytes
                .get(char_index)
                .copied()
                .unwrap_or(self.text.len())
        }
    }

    fn run(mut self) -> Result<Yaml, StackError> {
        for next in Parser::new_from_str(self.text) {
            let (event, span) = next.map_err(|e| {
                let m = e.marker();
                StackError::config(
                    Some(Origin {
                        file: self.file.clone(),
                        pos: Pos {
                            line: m.line() as u32,
                            col: m.col() as u32 + 1,
                        },
                    }),
                    format!("malformed YAML: {}", e.info()),
                    "fix the YAML syntax at that position",
                )
            })?;
            let start = self.byte(span.start.index());
            let end = self.byte(span.end.index()).max(start);
            let pos = Pos {
                line: span.start.line() as u32,
                col: span.start.col() as u32 + 1,
            };
            match event {
                Event::Scalar(value, style, anchor, _tag) => {
                    let (content, cpos, anchor_at) = self.props(start, pos);
                    let style = match style {
                        ScalarStyle::Plain => Style::Plain,
                        ScalarStyle::SingleQuoted => Style::SingleQuoted,
                        ScalarStyle::DoubleQuoted => Style::DoubleQuoted,
                        ScalarStyle::Literal => Style::Literal,
                        ScalarStyle::Folded => Style::Folded,
                    };
                    let in_flow = self.in_flow();
                    let (content, c_end, exact) =
                        self.scalar_extent(content, end, &value, style, in_flow);
                    let id = self.push(
                        Kind::Scalar {
                            value: value.into_owned(),
                            style,
                        },
                        (content, c_end, cpos),
                        exact,
                        anchor,
                        anchor_at,
                    );
                    self.complete(id);
                }
                Event::Alias(anchor) => {
                    let target = self.anchors.get(&anchor).copied();
                    if let Some(t) = target {
                        self.aliased.insert(t);
                    }
                    let id = self.push(Kind::Alias { target }, (start, end, pos), true, 0, None);
                    self.complete(id);
                }
                Event::MappingStart(anchor, _) | Event::SequenceStart(anchor, _) => {
                    let is_map = matches!(event, Event::MappingStart(..));
                    let (content, cpos, anchor_at) = self.props(start, pos);
                    let flow = self.text[content..].starts_with(if is_map { '{' } else { '[' })
                        && end > start;
                    let kind = if is_map {
                        Kind::Map {
                            entries: Vec::new(),
                            flow,
                        }
                    } else {
                        Kind::Seq {
                            items: Vec::new(),
                            flow,
                        }
                    };
                    let id = self.push(kind, (content, content, cpos), false, anchor, anchor_at);
                    self.stack.push(id);
                }
                Event::MappingEnd | Event::SequenceEnd => {
                    let Some(id) = self.stack.pop() else {
                        continue;
                    };
                    let flow = matches!(
                        self.nodes[id].kind,
                        Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
                    );
                    if flow {
                        self.nodes[id].end = end;
                    }
                    self.complete(id);
                }
                Event::StreamStart
                | Event::StreamEnd
                | Event::DocumentStart(_)
                | Event::DocumentEnd
                | Event::Nothing => {}
            }
        }
        Ok(Yaml {
            file: self.file,
            text: self.text.to_owned(),
            nodes: self.nodes,
            docs: self.docs,
            aliased: self.aliased,
        })
    }

    fn in_flow(&self) -> bool {
        self.stack.iter().any(|&id| {
            matches!(
                self.nodes[id].kind,
                Kind::Map { flow: true, .. } | Kind::Seq { flow: true, .. }
            )
        })
    }

    /// Skips a node's properties (`&anchor`, `!tag`) at `start`: where its content begins, and
    /// the anchor's position.
    fn props(&self, start: usize, pos: Pos) -> (usize, Pos, Option<(String, Pos)>) {
        let mut at = start;
        let mut anchor = None;
        let bytes = self.text.as_bytes();
        while at < bytes.len() && (bytes[at] == b'&' || bytes[at] == b'!') {
            let token = at;
            while at < bytes.len() && !matches!(bytes[at], b' ' | b'\t' | b'\r' | b'\n') {
                at += 1;
            }
            if bytes[token] == b'&' {
                let name = self.text[token + 1..at]
                    .trim_end_matches([',', ']', '}'])
                    .to_owned();
                anchor = Some((name, self.pos_of(token, start, pos)));
            }
            while at < bytes.len() && matches!(bytes[at], b' ' | b'\t' | b'\r' | b'\n') {
                at += 1;
            }
        }
        (at, self.pos_of(at, start, pos), anchor)
    }

    /// The line:col of byte `at`, knowing that byte `from` is at `pos`.
    fn pos_of(&self, at: usize, from: usize, pos: Pos) -> Pos {
        let between = &self.text[from..at];
        match between.rfind('\n') {
            None => Pos {
                line: pos.line,
                col: pos.col + between.chars().count() as u32,
            },
            Some(nl) => Pos {
                line: pos.line + between.matches('\n').count() as u32,
                col: between[nl + 1..].chars().count() as u32 + 1,
            },
        }
    }

    /// Where a scalar's text starts and ends, and whether `start..end` is exactly its text (the parser's
    /// own end is not reliable for quoted scalars, so the text is scanned here and checked).
    fn scalar_extent(
        &self,
        start: usize,
        parser_end: usize,
        value: &str,
        style: Style,
        in_flow: bool,
    ) -> (usize, usize, bool) {
        let t = self.text.as_bytes();
        let rest = &self.text[start..];
        match style {
            Style::SingleQuoted | Style::DoubleQuoted => {
                let quote = if style == Style::SingleQuoted {
                    b'\''
                } else {
                    b'"'
                };
                let mut i = start + 1;
                while i < t.len() {
                    match t[i] {
                        b'\\' if quote == b'"' => i += 2,
                        b'\'' if quote == b'\'' && t.get(i + 1) == Some(&b'\'') => i += 2,
                        c if c == quote => {
                            let end = i + 1;
                            return (start, end, reads_as(&self.text[start..end], value));
                        }
                        _ => i += 1,
                    }
                }
                (start, parser_end, false)
            }
            // `key:` with no value: the parser points at the colon.
            Style::Plain if value.is_empty() => {
                let after = start + usize::from(t.get(start) == Some(&b':'));
                (after, after, true)
            }
            Style::Plain => {
                let line_end = rest.find(['\n', '\r']).unwrap_or(rest.len());
                let line = &rest[..line_end];
                let mut end = line.len();
                let b = line.as_bytes();
                for (i, &c) in b.iter().enumerate() {
                    let after_blank = i > 0 && matches!(b[i - 1], b' ' | b'\t');
                    if (c == b'#' && after_blank)
                        || (in_flow && matches!(c, b',' | b']' | b'}'))
                        || (c == b':'
                            && (i + 1 == b.len() || matches!(b[i + 1], b' ' | b'\t'))
                            && i > 0)
                    {
                        end = i;
                        break;
                    }
                }
                let text = line[..end].trim_end_matches([' ', '\t']);
                let exact = text == value;
                let end = if exact {
                    start + text.len()
                } else {
                    trim_back(self.text, parser_end.max(start))
                };
                (start, end, exact)
            }
            Style::Literal | Style::Folded => {
                (start, trim_back(self.text, parser_end.max(start)), true)
            }
        }
    }

    /// Adds a node: its content's byte span and position, and its anchor (saphyr's id).
    fn push(
        &mut self,
        kind: Kind,
        (start, end, pos): (usize, usize, Pos),
        exact: bool,
        anchor: usize,
        named: Option<(String, Pos)>,
    ) -> NodeId {
        let id = self.nodes.len();
        if anchor != 0 {
            self.anchors.insert(anchor, id);
        }
        self.nodes.push(Node {
            kind,
            pos,
            start,
            end,
            exact,
            anchor: if anchor != 0 {
                Some(named.unwrap_or((String::new(), pos)))
            } else {
                None
            },
            parent: self.stack.last().copied(),
        });
        id
    }

    /// A node is complete: it becomes a key, a value or an item of the open collection, or a
    /// document's root.
    fn complete(&mut self, id: NodeId) {
        let Some(&parent) = self.stack.last() else {
            self.docs.push(id);
            return;
        };
        let end = self.nodes[id].end;
        match &mut self.nodes[parent].kind {
            Kind::Seq { items, flow } => {
                items.push(id);
                if !*flow {
                    self.nodes[parent].end = end;
                }
            }
            Kind::Map { entries, flow } => {
                let flow = *flow;
                match self.pending_key.remove(&parent) {
                    None => {
                        self.pending_key.insert(parent, id);
                    }
                    Some(k) => {
                        entries.push((k, id));
                        if !flow {
                            self.nodes[parent].end = end;
                        }
                    }
                }
            }
            _ => {}
        }
    }
}

/// Whether `text` (a quoted scalar as written) reads as `value`.
fn reads_as(text: &str, value: &str) -> bool {
    Parser::new_from_str(text).any(|e| matches!(e, Ok((Event::Scalar(v, ..), _)) if v == value))
}

/// Backs off trailing blanks and line breaks before `end`.
fn trim_back(text: &str, end: usize) -> usize {
    let end = end.min(text.len());
    text[..end].trim_end_matches([' ', '\t', '\r', '\n']).len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(text: &str, path: &[&str], value: &str) -> Result<String, StackError> {
        let y = Yaml::parse("f.yaml", text)?;
        let mut e = Editor::new(&y);
        e.set_path(0, path, value)?;
        e.finish()
    }

    #[test]
    fn replaces_only_the_scalar_bytes_in_every_style() {
        let text = "a:\n  p: v1 # beside\n  s: 'v1'\n  d: \"v1\"\n  f: {tag: v1, x: 'y'}\n";
        assert_eq!(
            set(text, &["a", "p"], "v2").unwrap(),
            text.replace("p: v1", "p: v2")
        );
        assert_eq!(
            set(text, &["a", "s"], "it's").unwrap(),
            text.replace("'v1'", "'it''s'")
        );
        assert_eq!(
            set(text, &["a", "d"], "v\"2").unwrap(),
            text.replace("\"v1\"", "\"v\\\"2\"")
        );
        assert_eq!(
            set(text, &["a", "f", "tag"], "v2").unwrap(),
            text.replace("{tag: v1", "{tag: v2")
        );
        // A plain value that would read as a number is quoted.
        assert_eq!(
            set(text, &["a", "p"], "1.10").unwrap(),
            text.replace("p: v1", "p: \"1.10\"")
        );
    }

    #[test]
    fn inserts_missing_keys_after_the_last_entry() {
        let text = "# top\na:\n  x: 1 # c\n\n# about b\nb: 2\n";
        assert_eq!(
            set(text, &["a", "img", "tag"], "v2").unwrap(),
            "# top\na:\n  x: 1 # c\n  img:\n    tag: v2\n\n# about b\nb: 2\n"
        );
        assert_eq!(
            set("", &["a", "tag"], "1.0").unwrap(),
            "a:\n  tag: \"1.0\"\n"
        );
        assert_eq!(
            set("a:\r\n  tag: v1\r\n", &["a", "tag"], "v2").unwrap(),
            "a:\r\n  tag: v2\r\n"
        );
        assert_eq!(
            set("a:\r\n  b:\r\n", &["a", "b", "tag"], "v").unwrap(),
            "a:\r\n  b:\r\n    tag: v\r\n"
        );
    }

    #[test]
    fn refuses_anchors_aliases_and_merges() {
        let text = "base: &b\n  tag: v1\napp: *b\nweb:\n  <<: *b\n  x: 1\n";
        let e = set(text, &["base", "tag"], "v2").unwrap_err().to_string();
        assert!(
            e.starts_with("f.yaml:2:8: ") && e.contains("`&b` at f.yaml:1:7"),
            "{e}"
        );
        let e = set(text, &["app", "tag"], "v2").unwrap_err().to_string();
        assert!(e.starts_with("f.yaml:3:6: ") && e.contains("alias"), "{e}");
        let e = set(text, &["web", "tag"], "v2").unwrap_err().to_string();
        assert!(
            e.starts_with("f.yaml:5:3: ") && e.contains("merge key"),
            "{e}"
        );
        let e = set("a: one\n  two\n", &["a"], "x").unwrap_err().to_string();
        assert!(
            e.starts_with("f.yaml:1:4: ") && e.contains("multi-line"),
            "{e}"
        );
        // An anchor no alias uses shares nothing.
        assert!(set("a: &x\n  tag: v1\n", &["a", "tag"], "v2").is_ok());
    }

    #[test]
    fn non_ascii_text_and_empty_values() {
        let text = "# café ☕\nimage:\n  tag: v1 # ünï\n";
        assert_eq!(
            set(text, &["image", "tag"], "v2").unwrap(),
            text.replace("v1", "v2")
        );
        assert_eq!(set("a:\nb: 1\n", &["a"], "v").unwrap(), "a: v\nb: 1\n");
        assert_eq!(
            set("a: # set later\n", &["a"], "v").unwrap(),
            "a: v # set later\n"
        );
    }

    #[test]
    fn duplicate_keys_edit_the_one_helm_reads() {
        assert_eq!(
            set("tag: a\ntag: b\n", &["tag"], "c").unwrap(),
            "tag: a\ntag: c\n"
        );
    }
}
