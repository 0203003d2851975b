//! What a scan found: the values paths templates read, as a trie queried by user keys.
//!
//! Paths are segments from the top chart's values root. A `*` segment stands for any key or list
//! index (`range .Values.ports` + `.name` reads `ports.*.name`).

use std::collections::BTreeMap;

/// The wildcard segment: any map key or list index.
pub const ANY: &str = "*";

/// The result of [`super::scan`].
#[derive(Debug, Default)]
pub struct Refs {
    root: Node,
    pub(super) dynamic: Vec<Dynamic>,
    pub(super) fallbacks: Vec<(Vec<String>, Fallback)>,
    pub(super) unreadable: Vec<Unreadable>,
}

#[derive(Debug, Default)]
struct Node {
    children: BTreeMap<String, Node>,
    /// Consumed whole: every path below is known.
    whole: bool,
}

/// A values path read with a computed key (`index .Values.a $k`, `get .Values.a $x`,
/// `pluck $k .Values.a`): every path below `prefix` counts as known (consumed whole).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dynamic {
    /// Template file (or `values: a.b` for a value string).
    pub file: String,
    pub line: u32,
    /// Values path from the top chart's root; may contain `*`.
    pub prefix: Vec<String>,
    /// The command as written, e.g. `index .Values.a $k`.
    pub expr: String,
}

/// A pinned value a template uses when an image tag is empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fallback {
    pub kind: FallbackKind,
    pub file: String,
    pub line: u32,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FallbackKind {
    /// `.Chart.AppVersion` (of the chart whose template reads it).
    AppVersion,
    /// `.Chart.Version` (`default .Chart.Version`: charts whose version is the app's).
    ChartVersion,
    /// A literal, never `latest` or empty.
    Literal(String),
}

/// A template that does not parse (Helm would refuse to render the chart).
///
/// Conservative treatment: its `define`s are unknown to the other files, and every
/// `.Values.a.b…` chain its tokens show before the error (also `$.Values…`, `.ctx.Values…`) is
/// consumed whole at the file's chart prefix. A bare `.Values` with no field after it marks
/// nothing (it would make every key known).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Unreadable {
    pub file: String,
    pub line: u32,
    pub message: String,
    /// A string from a values file rather than a template file: it need not be a template.
    pub value_string: bool,
}

fn seg_matches(pattern: &str, seg: &str) -> bool {
    pattern == ANY || pattern == seg
}

impl Refs {
    /// Is `path` (segments of a key in a user values file, from the top chart's values root; list
    /// items appear as their index `"0"`, `"1"`, …) read by some template: equal to or a prefix of
    /// a referenced path, or at or below a path consumed whole (which includes every path below a
    /// [`Dynamic`] prefix)?
    ///
    /// This also answers "is there any reference at or below this path" (whether to descend): a
    /// key that templates never reach below is not known either. Use [`Refs::is_whole`] to learn
    /// that everything below is known and descending is pointless.
    pub fn is_known(&self, path: &[&str]) -> bool {
        fn walk(n: &Node, path: &[&str]) -> bool {
            if n.whole {
                return true;
            }
            let Some((head, rest)) = path.split_first() else {
                return true;
            };
            n.children.get(*head).is_some_and(|c| walk(c, rest))
                || (*head != ANY && n.children.get(ANY).is_some_and(|c| walk(c, rest)))
        }
        walk(&self.root, path)
    }

    /// Is `path` at or below a path consumed whole (every key below it is known)?
    pub fn is_whole(&self, path: &[&str]) -> bool {
        fn walk(n: &Node, path: &[&str]) -> bool {
            if n.whole {
                return true;
            }
            let Some((head, rest)) = path.split_first() else {
                return false;
            };
            n.children.get(*head).is_some_and(|c| walk(c, rest))
                || (*head != ANY && n.children.get(ANY).is_some_and(|c| walk(c, rest)))
        }
        walk(&self.root, path)
    }

    /// Paths read with a computed key: one note per path prefix, the first place it was seen.
    pub fn dynamic(&self) -> &[Dynamic] {
        &self.dynamic
    }

    /// Templates (and value strings) that do not parse; see [`Unreadable`] for how they count.
    pub fn unreadable(&self) -> &[Unreadable] {
        &self.unreadable
    }

    /// For an image tag path like `["backend-api","image","tag"]`: does some template fall back
    /// to a pinned value (`.Chart.AppVersion`, `.Chart.Version` or a literal other than
    /// `latest`/empty) when it is empty? The first such place found.
    pub fn tag_fallback(&self, path: &[&str]) -> Option<Fallback> {
        self.fallbacks
            .iter()
            .find(|(p, _)| {
                p.len() == path.len() && p.iter().zip(path).all(|(a, b)| seg_matches(a, b))
            })
            .map(|(_, f)| f.clone())
    }

    /// Every recorded path with whether it is consumed whole (sorted; for diagnostics and tests).
    pub fn paths(&self) -> Vec<(Vec<String>, bool)> {
        fn walk(n: &Node, at: &mut Vec<String>, out: &mut Vec<(Vec<String>, bool)>) {
            if !at.is_empty() || n.whole {
                out.push((at.clone(), n.whole));
            }
            for (k, c) in &n.children {
                at.push(k.clone());
                walk(c, at, out);
                at.pop();
            }
        }
        let mut out = Vec::new();
        walk(&self.root, &mut Vec::new(), &mut out);
        out
    }

    pub(super) fn refer<S: AsRef<str>>(&mut self, path: &[S]) {
        self.node(path);
    }

    pub(super) fn mark_whole<S: AsRef<str>>(&mut self, path: &[S]) {
        self.node(path).whole = true;
    }

    fn node<S: AsRef<str>>(&mut self, path: &[S]) -> &mut Node {
        let mut n = &mut self.root;
        for seg in path {
            // Most reads repeat known paths: look up before allocating a key.
            let seg = seg.as_ref();
            if !n.children.contains_key(seg) {
                n.children.insert(seg.to_owned(), Node::default());
            }
            n = n.children.get_mut(seg).expect("inserted above");
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<String> {
        s.split('.').map(str::to_owned).collect()
    }

    #[test]
    fn prefixes_wildcards_and_whole() {
        let mut r = Refs::default();
        r.refer(&p("ingress.enabled"));
        r.refer(&p("ports.*.name"));
        r.mark_whole(&p("probe"));
        assert!(r.is_known(&["ingress"]));
        assert!(r.is_known(&["ingress", "enabled"]));
        assert!(!r.is_known(&["ingress", "enabled", "x"]));
        assert!(!r.is_known(&["ingrss"]));
        assert!(r.is_known(&["ports", "0", "name"]));
        assert!(!r.is_known(&["ports", "0", "nmae"]));
        assert!(r.is_known(&["probe", "httpGet", "path"]));
        assert!(r.is_whole(&["probe", "httpGet"]));
        assert!(!r.is_whole(&["ingress"]));
        assert_eq!(r.paths().len(), 6);
    }
}
