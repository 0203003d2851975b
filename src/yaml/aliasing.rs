//! go-yaml's guard against alias bombs ("billion laughs"), checked on the document's shape before
//! any alias is expanded.
//!
//! Helm reads values with `sigs.k8s.io/yaml`, that is go-yaml v2, whose decoder (`decoder.unmarshal`
//! in decode.go) counts one decode per node it visits: the document, each key and value, each
//! alias node itself, and again every node of an alias's target each time the alias is expanded
//! (those are the aliased decodes). A merge key `<<` is not decoded, nor a list of maps it merges
//! (only its maps are, last to first). After each decode it refuses the document — "document
//! contains excessive aliasing" — when more than 100 decodes were aliased, more than 1000 were made,
//! and the aliased share exceeds [`allowed_alias_ratio`]. This module replays that walk on a
//! skeleton of the document (one entry per node written, each alias pointing at its anchor's
//! entry), so a refused document costs a pass over its text, never its expansion.

use super::{pos_of, Pos};
use saphyr_parser::{Event, Span};
use std::collections::HashMap;

pub(super) const EXCESSIVE_ALIASING: &str = "document contains excessive aliasing";

/// go-yaml's `allowedAliasRatio`: 99% of decodes may come from aliases up to 400,000 decodes, 10%
/// from 4,000,000, linearly between (roughly 400,000 aliased decodes at most, ~100 MB worst case).
fn allowed_alias_ratio(decodes: u64) -> f64 {
    const LOW: u64 = 400_000;
    const HIGH: u64 = 4_000_000;
    match decodes {
        d if d <= LOW => 0.99,
        d if d >= HIGH => 0.10,
        d => 0.99 - 0.89 * ((d - LOW) as f64 / (HIGH - LOW) as f64),
    }
}

/// go-yaml's two counters.
#[derive(Default)]
struct Budget {
    decodes: u64,
    aliased: u64,
}

impl Budget {
    /// Counts `n` decodes (all aliased, or none) and tells whether go-yaml has refused the document
    /// by the last of them. Within one expansion both counters grow together, so the aliased share
    /// only rises while the allowed ratio only falls: if go-yaml refuses anywhere inside an
    /// expansion it still refuses at its end, and checking there is enough.
    fn spend(&mut self, n: u64, aliased: bool) -> bool {
        self.decodes = self.decodes.saturating_add(n);
        if aliased {
            self.aliased = self.aliased.saturating_add(n);
        }
        self.aliased > 100
            && self.decodes > 1000
            && self.aliased as f64 / self.decodes as f64 > allowed_alias_ratio(self.decodes)
    }
}

enum Shape {
    Scalar {
        merge_key: bool,
    },
    Alias {
        target: usize,
    },
    Seq(Vec<usize>),
    /// Keys and values, alternating.
    Map(Vec<usize>),
}

struct Entry {
    shape: Shape,
    pos: Pos,
    /// Decodes go-yaml makes for this node wherever it is an ordinary node (as an alias's target).
    weight: u64,
}

/// The document as go-yaml's parser leaves it before decoding: nodes, aliases not expanded.
struct Skeleton {
    entries: Vec<Entry>,
    root: Option<usize>,
}

impl Skeleton {
    fn is_merge_key(&self, i: usize) -> bool {
        matches!(self.entries[i].shape, Shape::Scalar { merge_key: true })
    }

    /// Decodes of `value` under a merge key: a list is not decoded itself, only its maps.
    fn merged_weight(&self, value: usize) -> u64 {
        match &self.entries[value].shape {
            Shape::Seq(items) => items
                .iter()
                .fold(0, |w, &i| w.saturating_add(self.entries[i].weight)),
            _ => self.entries[value].weight,
        }
    }

    fn weight(&self, shape: &Shape) -> u64 {
        let sum = |items: &[usize]| {
            items
                .iter()
                .fold(1u64, |w, &i| w.saturating_add(self.entries[i].weight))
        };
        match shape {
            Shape::Scalar { .. } => 1,
            Shape::Alias { target } => self.entries[*target].weight.saturating_add(1),
            Shape::Seq(items) => sum(items),
            Shape::Map(pairs) => pairs.chunks(2).fold(1u64, |w, pair| match pair {
                [k, v] if self.is_merge_key(*k) => w.saturating_add(self.merged_weight(*v)),
                pair => pair
                    .iter()
                    .fold(w, |w, &i| w.saturating_add(self.entries[i].weight)),
            }),
        }
    }
}

/// Builds the skeleton of the document `events` hold (events of one document, as `parse` reads
/// them). `merge_key(event)`: whether a scalar in key position is a merge key, as `parse` decides.
fn skeleton(
    events: &[(Event<'_>, Span)],
    merge_key: impl Fn(&Event<'_>) -> bool,
) -> Result<Skeleton, (Pos, String)> {
    let mut sk = Skeleton {
        entries: Vec::new(),
        root: None,
    };
    let mut anchors: HashMap<usize, usize> = HashMap::new();
    // Open collections: (their shape so far, position, anchor).
    let mut open: Vec<(Shape, Pos, usize)> = Vec::new();
    for (event, span) in events {
        let pos = pos_of(span);
        let (shape, pos, anchor) = match event {
            Event::SequenceStart(anchor, _) => {
                open.push((Shape::Seq(Vec::new()), pos, *anchor));
                continue;
            }
            Event::MappingStart(anchor, _) => {
                open.push((Shape::Map(Vec::new()), pos, *anchor));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => match open.pop() {
                Some(node) => node,
                None => return Err((pos, "unbalanced collection".into())),
            },
            Event::Scalar(_, _, anchor, _) => {
                let is_key = matches!(open.last(), Some((Shape::Map(kv), ..)) if kv.len() % 2 == 0);
                let merge_key = is_key && merge_key(event);
                (Shape::Scalar { merge_key }, pos, *anchor)
            }
            Event::Alias(id) => match anchors.get(id) {
                Some(&target) => (Shape::Alias { target }, pos, 0),
                None => return Err((pos, "unknown anchor".into())),
            },
            _ => continue,
        };
        let weight = sk.weight(&shape);
        let index = sk.entries.len();
        sk.entries.push(Entry { shape, pos, weight });
        if anchor != 0 {
            anchors.insert(anchor, index);
        }
        match open.last_mut() {
            Some((Shape::Seq(items) | Shape::Map(items), ..)) => items.push(index),
            Some(_) => unreachable!("only collections are open"),
            None => sk.root = Some(index),
        }
    }
    Ok(sk)
}

/// Refuses the document `events` hold where go-yaml would: the position of the node (an alias, in
/// practice) whose decode tipped the balance, and why. `merge_key`: as in [`skeleton`].
pub(super) fn check(
    events: &[(Event<'_>, Span)],
    merge_key: impl Fn(&Event<'_>) -> bool,
) -> Result<(), (Pos, String)> {
    let sk = skeleton(events, merge_key)?;
    let Some(root) = sk.root else {
        return Ok(());
    };
    // The document node itself is go-yaml's first decode.
    let mut budget = Budget {
        decodes: 1,
        aliased: 0,
    };
    let refused = |budget: &Budget| {
        format!(
            "{EXCESSIVE_ALIASING}: {} of the {} nodes read so far come from alias expansions; \
             go-yaml (Helm's YAML reader) refuses a document made mostly of alias expansions",
            budget.aliased, budget.decodes
        )
    };
    enum Visit {
        Decode(usize),
        /// The value of a merge key.
        Merge(usize),
    }
    // go-yaml's recursive walk, with an explicit stack (deep documents must not overflow ours).
    let mut todo = vec![Visit::Decode(root)];
    while let Some(visit) = todo.pop() {
        let i = match visit {
            Visit::Merge(i) => match &sk.entries[i].shape {
                // go-yaml v2 merges a list's maps last to first (earlier ones win).
                Shape::Seq(items) => {
                    todo.extend(items.iter().map(|&i| Visit::Decode(i)));
                    continue;
                }
                _ => i,
            },
            Visit::Decode(i) => i,
        };
        let entry = &sk.entries[i];
        if budget.spend(1, false) {
            return Err((entry.pos, refused(&budget)));
        }
        match &entry.shape {
            Shape::Scalar { .. } => {}
            Shape::Alias { target } => {
                let weight = sk.entries[*target].weight;
                if budget.spend(weight, true) {
                    return Err((
                        entry.pos,
                        format!(
                            "{EXCESSIVE_ALIASING}: this alias expands to {weight} nodes, after {} \
                             nodes read; go-yaml (Helm's YAML reader) refuses a document made \
                             mostly of alias expansions",
                            budget.decodes.saturating_sub(weight)
                        ),
                    ));
                }
            }
            Shape::Seq(items) => todo.extend(items.iter().rev().map(|&i| Visit::Decode(i))),
            Shape::Map(pairs) => {
                for pair in pairs.chunks(2).rev() {
                    match pair {
                        [k, v] if sk.is_merge_key(*k) => todo.push(Visit::Merge(*v)),
                        pair => todo.extend(pair.iter().rev().map(|&i| Visit::Decode(i))),
                    }
                }
            }
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::super::{parse, parse_values, Document, Pos, Value};
    use std::sync::Arc;

    fn doc(text: &str) -> Document {
        parse(&Arc::from("t.yaml"), text).unwrap()
    }

    /// The classic "billion laughs": nine levels of nine aliases, 9^9 scalars once expanded.
    fn billion_laughs() -> String {
        let mut text = format!("a: &a [{}]\n", ["\"lol\""; 9].join(", "));
        for (prev, name) in ('a'..='h').zip('b'..='i') {
            let items = vec![format!("*{prev}"); 9].join(", ");
            text.push_str(&format!("{name}: &{name} [{items}]\n"));
        }
        text
    }

    #[test]
    fn an_alias_bomb_is_refused_at_the_alias_before_it_expands() {
        let started = std::time::Instant::now();
        let e = parse_values(&Arc::from("bomb.yaml"), &billion_laughs()).unwrap_err();
        assert!(
            started.elapsed() < std::time::Duration::from_secs(1),
            "took {:?}",
            started.elapsed()
        );
        assert!(
            e.message
                .starts_with("document contains excessive aliasing"),
            "{e}"
        );
        // go-yaml's count tips on the fourth alias of the fourth level (`d: &d [*c, *c, *c, *c`):
        // sigs.k8s.io/yaml v1.4.0 loads the document cut before it and refuses it with it.
        assert_eq!(
            (&*e.file, e.pos),
            ("bomb.yaml", Pos { line: 4, col: 20 }),
            "{e}"
        );
        let three: String = billion_laughs().split_inclusive('\n').take(3).collect();
        let file = Arc::from("t.yaml");
        assert!(parse_values(&file, &format!("{three}d: [*c, *c, *c]\n")).is_ok());
        assert!(parse_values(&file, &format!("{three}d: [*c, *c, *c, *c]\n")).is_err());
    }

    /// Documents of four shapes, each with `n` uses of an anchor: plain aliases, merges of an
    /// alias, merges of a list of maps (the list is not decoded by go-yaml, its maps are), and
    /// anchors holding aliases expanded again.
    fn aliased(shape: &str, n: usize) -> String {
        let big_map = || {
            let keys: Vec<String> = (0..500).map(|i| format!("k{i}: 1")).collect();
            format!("m: &m {{{}}}\nl:\n", keys.join(", "))
        };
        match shape {
            "plain" => format!(
                "a: &a [{}]\nb: [{}]\n",
                vec!["x"; 1000].join(", "),
                vec!["*a"; n].join(", ")
            ),
            "merge" => big_map() + &"- {<<: *m}\n".repeat(n),
            "merge-list" => big_map() + &"- {<<: [*m, {z: 1}], y: 2}\n".repeat(n),
            "nested" => {
                "a: &a [x, y, z]\nb: &b {p: *a, q: *a, r: [*a, *a]}\nc: &c [*b, *b, *b]\nl:\n"
                    .to_owned()
                    + &"- [*c, s]\n".repeat(n)
            }
            _ => unreachable!(),
        }
    }

    #[test]
    fn aliases_are_counted_exactly_as_go_yaml_counts_them() {
        // The largest `n` that sigs.k8s.io/yaml v1.4.0 (go-yaml v2) still loads, found by running
        // it on these same documents: one more alias and it refuses.
        for (shape, loads) in [
            ("plain", 110),
            ("merge", 124),
            ("merge-list", 322),
            ("nested", 6189),
        ] {
            let file = Arc::from("t.yaml");
            let ok = parse_values(&file, &aliased(shape, loads));
            assert!(ok.is_ok(), "{shape} with {loads}: {:?}", ok.err());
            let e = parse_values(&file, &aliased(shape, loads + 1)).unwrap_err();
            assert!(e.message.contains("excessive aliasing"), "{shape}: {e}");
        }
    }

    #[test]
    fn many_legitimate_aliases_load_as_if_written_out() {
        // 110 expansions of a 1000-item list: just below go-yaml's limit, loaded whole.
        let d = doc(&aliased("plain", 110));
        let Value::Map(m) = &d.root.value else {
            panic!()
        };
        let Value::Seq(b) = &m["b"].value else {
            panic!()
        };
        assert_eq!(b.len(), 110);
        assert!(b.iter().all(|item| item.value == m["a"].value));
        assert_eq!(b[3].origin.pos, Pos { line: 2, col: 17 });
        // Merges and nested anchors: the same values as the document written without aliases.
        let d = doc(
            "a: &a [x, y]\nb: &b {p: *a, <<: {q: 1}}\nc: [*b, *b]\nd: {<<: [*b, {r: 2}], s: 3}\n",
        );
        let written_out = doc(concat!(
            "a: [x, y]\nb: {p: [x, y], q: 1}\n",
            "c: [{p: [x, y], q: 1}, {p: [x, y], q: 1}]\nd: {p: [x, y], q: 1, r: 2, s: 3}\n"
        ));
        assert_eq!(d.root.value.to_json(), written_out.root.value.to_json());
    }
}
