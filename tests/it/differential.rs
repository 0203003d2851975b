//! Differential tests of value composition against real Helm, on generated projects.
//!
//! A seeded generator (splitmix64, no crates) writes one temp project per case: an umbrella chart
//! `charts/app` whose subcharts live under `charts/app/charts/` (`sub` twice, as `a1` — sometimes
//! behind a condition — and as `a2` behind a condition, sometimes a comma list; `web` behind a
//! tag, sometimes a condition and `import-values` (string and map forms, two into one place);
//! sometimes a nested `leaf` subchart of web (aliased, conditioned or tagged) and an undeclared
//! subchart), chart defaults with globals at both levels, nulls, lists, nested and empty maps,
//! sometimes values.schema.json files; then random env layers `envs/<cloud>.yaml` (sometimes two
//! clouds and `--cloud`), `envs/<type>/default.yaml`, `envs/<type>/<name>.yaml` over a key
//! vocabulary that overlaps the defaults (so merges, null deletions and type clashes really
//! happen), written with YAML 1.1 scalars (booleans, octal/hex/binary, underscores, floats beyond
//! float64, big integers, timestamps), quoting, explicit tags, block scalars, flow and block
//! collections, anchors, aliases and merge keys, comments, explicit `?` keys, duplicate keys, odd
//! map keys, CRLF line ends, a byte order mark, multi-document files; scalars or lists where a
//! subchart's map goes; and sometimes `--set`/`--set-string`/`--set-json`/`--set-literal`.
//!
//! Each case runs the built `stack values <target> --format json [flags]` and real
//! `helm template rel charts/app -f … [flags]` whose only template prints `{{ .Values | toJson }}`.
//! Agreement is: both succeed with equal values (numbers compared as float64, nothing else
//! normalized), or Helm fails and stack refuses (`values` exits 1 with `refusals`; or exits 2 on
//! malformed YAML, an invalid schema or a malformed flag: input Helm refuses too). On a sample of
//! cases (every 5th) `stack validate envs --format json [flags]` must report a `helm-refuses` or
//! `schema` error for the target (or exit 2 on such input) exactly when Helm fails.
//!
//! `STACK_FUZZ_CASES` (default: the CI slice), `STACK_FUZZ_SEED` (default fixed; printed),
//! `STACK_FUZZ_ONLY=<case>` (one case), `STACK_FUZZ_JOBS` (parallel workers, default 2).
//! `cargo xtask fuzz-values [--cases N] [--seed S]` runs many cases with a time-based seed.
//! On a mismatch the case directory is kept and its path printed with the seed and case number.

use crate::support;
use serde_json::Value as J;
use std::fmt::Write as _;
use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Instant;

/// The CI slice: 500 cases take about 18 s on this 2-core machine (about 40 s when it is busy).
const DEFAULT_CASES: usize = 500;
const DEFAULT_SEED: u64 = 0x005e_ed0f_57ac_4e1d;
/// Every Nth case also checks `stack validate envs`.
const VALIDATE_EVERY: usize = 5;
/// Mismatches printed in full (all are counted).
const SHOWN: usize = 8;

// ---------------------------------------------------------------------------------------------
// The PRNG.

struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Rng(seed)
    }

    /// splitmix64.
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// True with probability `percent`/100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, xs: &'a [T]) -> &'a T {
        &xs[self.below(xs.len())]
    }

    fn word(&mut self, xs: &[&'static str]) -> &'static str {
        xs[self.below(xs.len())]
    }

    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }
}

/// The seed of case `i`: each case reproduces on its own (`STACK_FUZZ_ONLY`).
fn case_seed(seed: u64, i: usize) -> u64 {
    let mut r = Rng::new(seed ^ (i as u64).wrapping_mul(0xd134_2543_de82_ef95));
    r.next()
}

// ---------------------------------------------------------------------------------------------
// Vocabulary.

/// Keys of nested maps, shared by chart defaults and layers so that they overlap.
const KEYS: &[&str] = &[
    "replicas",
    "image",
    "repository",
    "tag",
    "enabled",
    "list",
    "map",
    "nested",
    "keep",
    "drop",
    "port",
    "name",
    "labels",
    "env",
    "x",
    "y",
    "a",
    "b",
    "args",
    "title",
    "region",
    "cfg",
    "data",
    "shared",
    "emptyMap",
    "nullDefault",
    "leaf",
    "lf",
    "global",
];

/// Keys at the top of the umbrella chart's values (subchart aliases, `global`, `tags`, imports).
const TOP_KEYS: &[&str] = &[
    "global",
    "a1",
    "a2",
    "web",
    "tags",
    "webcfg",
    "replicas",
    "image",
    "list",
    "map",
    "nested",
    "emptyMap",
    "nullDefault",
    "x",
    "data",
    "shared",
    "labels",
    "leaf",
    "lf",
    "und",
];

/// Keys at the top of a subchart's values.
const SUB_KEYS: &[&str] = &[
    "global", "port", "image", "args", "enabled", "labels", "x", "y", "list", "map", "data", "cfg",
    "nested", "replicas", "exports", "leaf", "lf", "title", "tags",
];

/// Plain map keys YAML 1.1 reads as something else, with the key Helm makes of them
/// (`None`: Helm refuses the file).
const ODD_KEYS: &[(&str, Option<&str>)] = &[
    ("on", Some("true")),
    ("n", Some("false")),
    ("Yes", Some("true")),
    ("1", Some("1")),
    ("010", Some("8")),
    ("0x1F", Some("31")),
    ("1.5", Some("1.5")),
    ("1e3", Some("1000")),
    ("1e7", Some("1e+07")),
    ("0.1", Some("0.1")),
    ("123456789.5", Some("1.2345679e+08")),
    // (Not `1_000` next to `1e3`: an int and a float key that both become "1000" — e.g. one
    // brought in by a merge key — land in one Go map in random order: Helm's output varies.)
    ("2_000", Some("2000")),
    ("+5", Some("5")),
    ("-0b11", Some("-3")),
    (".5", Some("0.5")),
    ("9007199254740993", Some("9007199254740993")),
    ("-9223372036854775808", Some("-9223372036854775808")),
    (".inf", Some(".inf")),
    ("-.Inf", Some("-.inf")),
    ("2024-01-02", Some("2024-01-02")),
    ("12345678901234567890", None),
    ("a.b", Some("a.b")),
    ("my-key", Some("my-key")),
    ("with space", Some("with space")),
    ("\"\"", Some("")),
    ("ключ", Some("ключ")),
    ("'<<'", Some("<<")),
    ("\"a: b\"", Some("a: b")),
    ("'#x'", Some("#x")),
    ("\"\\t\"", Some("\t")),
];

/// Plain scalars: (text, usable inside flow collections).
const PLAIN: &[&str] = &[
    "yes",
    "No",
    "on",
    "OFF",
    "y",
    "n",
    "Y",
    "true",
    "False",
    "TRUE",
    "yEs",
    "nO",
    "0755",
    "0o17",
    "0x1F",
    "0X1f",
    "0b101",
    "-0b11",
    "+0b11",
    "1_000",
    "1__0",
    "_1",
    "1_0.5",
    "1e3",
    "1E3",
    "1e+3",
    "1.",
    "+.5",
    ".5",
    ".5e3",
    "08",
    "09.5",
    "007",
    "0",
    "-0",
    "-0.0",
    "+5",
    "-12",
    "3.0",
    "1.5",
    "-2.25",
    "1e21",
    "1e-7",
    "1e400",
    "-1e400",
    ".5e400",
    "1e-400",
    "12345678901234567890",
    "9223372036854775807",
    "9223372036854775808",
    "-9223372036854775808",
    "-9223372036854775809",
    "18446744073709551616",
    "123456789012345678901234",
    "9007199254740993",
    "0x7FFFFFFFFFFFFFFF",
    "0xFFFFFFFFFFFFFFFF",
    "0x10000000000000000",
    "0b",
    "0x",
    "0o",
    "0b2",
    "0o8",
    "0x_1F",
    "2024-01-02",
    "2024-1-2",
    "2001-12-14 21:59:43.10",
    "2001-12-14t21:59:43.10-05:00",
    "2024-02-30",
    "2024-01-02T10:00:00Z",
    "~",
    "null",
    "Null",
    "NULL",
    "abc",
    "hello world",
    "v1.2.3",
    "1.2.3",
    "10:20",
    "1:30:00",
    "--x",
    "a-b",
    ".",
    "..",
    ".e3",
    "+",
    "-x",
    "0.0.0.0",
    ".Nan",
    "1e",
    "0x1p3",
    "1_",
    "+-1",
    "Infinity",
    "inf",
    "NaN",
    "0777777777777777777777",
    "-0x10",
    "+0o7",
];

/// Numbers JSON cannot hold: Helm refuses the whole file.
const NON_JSON: &[&str] = &[".inf", "-.inf", ".nan", ".NaN", "+.INF", "-.Inf"];

/// Quoted scalars (always strings) and explicitly tagged ones.
const QUOTED: &[&str] = &[
    "\"yes\"",
    "\"0755\"",
    "\"\"",
    "\"tab\\tx\"",
    "\"line\\nnext\"",
    "\"caf\\u00e9\"",
    "\"a\\\"q\"",
    "'it''s'",
    "'1e3'",
    "''",
    "'~'",
    "\"null\"",
    "\"12345678901234567890\"",
    "\"true\"",
    "'.inf'",
    "\"a: b\"",
    "\"# not a comment\"",
    "\"\\x41\"",
    "\"\\U0001F600\"",
    "\"<b>&amp;</b>\"",
];

const TAGGED: &[&str] = &[
    "!!str 123",
    "!!str yes",
    "!!str 0755",
    "!!str ~",
    "!!int 42",
    "!!float 3",
    "!!float 1.5",
    "!!bool true",
    "!!null ~",
    "!!str \"quoted\"",
    "!!int \"7\"",
    "!!float '2'",
    "!!bool \"yes\"",
    "!!str",
    "!!binary aGVsbG8=",
    "!!int 0x10",
    "!!float 1e3",
];

/// `--set` values (typed), `--set-string` and `--set-literal` values.
const SET_VALUES: &[&str] = &[
    "1",
    "0",
    "007",
    "-3",
    "+4",
    "true",
    "FALSE",
    "null",
    "Null",
    "x",
    "1.5",
    "1e3",
    "12345678901234567890",
    "9223372036854775807",
    "a\\,b",
    "{p,q}",
    "{}",
    "",
    "yes",
    "0x1F",
    "hello world",
    "a=b",
    "[1]",
];

const SET_JSON: &[&str] = &[
    "1",
    "\"s\"",
    "[1,2]",
    "{\"a\":null}",
    "null",
    "true",
    "1.5",
    "{\"x\":{\"y\":[]}}",
    "12345678901234567890",
    "{\"global\":{\"region\":\"j\"}}",
    "[{\"a\":1},null]",
    "1e21",
    "\"0755\"",
    "{}",
    "[]",
];

const SET_PATHS: &[&str] = &[
    "replicas",
    "a1.port",
    "a1.image.tag",
    "a2.enabled",
    "a2.x",
    "web.enabled",
    "web.title",
    "tags.front",
    "global.region",
    "global.a2on",
    "global.labels.team",
    "list[0]",
    "list[2]",
    "map.x",
    "map.nested.a",
    "web.cfg.a",
    "x.y[1].z",
    "newkey",
    "a1",
    "global",
    "webcfg.b",
    "nullDefault",
    "emptyMap.k",
    "a1.args[1]",
    "leaf.enabled",
    "web.leaf.x",
    "web.lf.enabled",
    "tags.extra",
    "a\\.b",
    "web.cfg.a\\.b",
    "list[0].x",
    "a1.global.deep.k",
    "global.deep.inner.x",
];

// ---------------------------------------------------------------------------------------------
// YAML documents as generated: a tree rendered in the order it was generated, so that anchors are
// always defined before their aliases.

enum Y {
    /// A scalar as written (plain, quoted or tagged), fit for flow and block context alike.
    Scalar(String),
    /// `key:` with nothing after it (null), block context only.
    Empty,
    /// A block scalar: header (`|-`) and content lines (unindented).
    Block {
        header: String,
        lines: Vec<String>,
    },
    Map {
        entries: Vec<Entry>,
        flow: bool,
    },
    Seq {
        items: Vec<Y>,
        flow: bool,
    },
    Alias(String),
    Anchored(String, Box<Y>),
}

enum Entry {
    /// `style`: 0 plain, 1 a trailing comment, 2 an explicit key (`? key` / `: value`),
    /// 3 a comment right after the colon of a nested block.
    Kv {
        key: String,
        value: Y,
        style: u8,
    },
    Merge(Y),
}

impl Y {
    fn plain(text: &str) -> Y {
        Y::Scalar(text.to_owned())
    }
}

fn flow_text(y: &Y, out: &mut String) {
    match y {
        Y::Scalar(text) => out.push_str(text),
        // Inside a flow list; in a flow map it is the bare key (`{a, b: 1}`), below.
        Y::Empty => out.push('~'),
        Y::Block { .. } => unreachable!("not flow"),
        Y::Map { entries, .. } => {
            out.push('{');
            for (i, e) in entries.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                match e {
                    Entry::Kv {
                        key,
                        value: Y::Empty,
                        ..
                    } => out.push_str(key),
                    Entry::Kv { key, value, .. } => {
                        out.push_str(key);
                        out.push_str(": ");
                        flow_text(value, out);
                    }
                    Entry::Merge(v) => {
                        out.push_str("<<: ");
                        flow_text(v, out);
                    }
                }
            }
            out.push('}');
        }
        Y::Seq { items, .. } => {
            out.push('[');
            for (i, v) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                flow_text(v, out);
            }
            out.push(']');
        }
        Y::Alias(a) => {
            out.push('*');
            out.push_str(a);
        }
        Y::Anchored(a, v) => {
            out.push('&');
            out.push_str(a);
            out.push(' ');
            flow_text(v, out);
        }
    }
}

/// What follows `key:` or `-`: the rest of that line and the lines below it (indented already).
fn after(y: &Y, indent: usize) -> (String, Vec<String>) {
    let pad = " ".repeat(indent + 2);
    match y {
        Y::Empty => (String::new(), Vec::new()),
        Y::Block { header, lines } => (
            format!(" {header}"),
            lines
                .iter()
                .map(|l| {
                    if l.is_empty() {
                        String::new()
                    } else {
                        format!("{pad}{l}")
                    }
                })
                .collect(),
        ),
        Y::Map { entries, flow } if !*flow && !entries.is_empty() => {
            (String::new(), block_map(entries, indent + 2))
        }
        Y::Seq { items, flow } if !*flow && !items.is_empty() => {
            (String::new(), block_seq(items, indent + 2))
        }
        Y::Anchored(a, v) => {
            let (rest, lines) = after(v, indent);
            (format!(" &{a}{rest}"), lines)
        }
        other => {
            let mut s = String::from(" ");
            flow_text(other, &mut s);
            (s, Vec::new())
        }
    }
}

fn block_map(entries: &[Entry], indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut lines = Vec::new();
    for e in entries {
        let (key, value, style) = match e {
            Entry::Kv { key, value, style } => (key.as_str(), value, *style),
            Entry::Merge(v) => ("<<", v, 0),
        };
        let (rest, below) = after(value, indent);
        if style == 2 {
            lines.push(format!("{pad}? {key}"));
            lines.push(format!("{pad}:{rest}"));
            lines.extend(below);
            continue;
        }
        let mut line = format!("{pad}{key}:{rest}");
        if style == 1 && below.is_empty() && !rest.is_empty() {
            line.push_str("  # note");
        }
        if style == 3 && rest.is_empty() && !below.is_empty() {
            line.push_str("  # nested below");
        }
        lines.push(line);
        lines.extend(below);
    }
    lines
}

fn block_seq(items: &[Y], indent: usize) -> Vec<String> {
    let pad = " ".repeat(indent);
    let mut lines = Vec::new();
    for item in items {
        match item {
            // Compact form: the first entry on the dash's line.
            Y::Map {
                entries,
                flow: false,
            } if !entries.is_empty() => {
                let inner = block_map(entries, indent + 2);
                for (i, l) in inner.into_iter().enumerate() {
                    if i == 0 {
                        lines.push(format!("{pad}- {}", &l[indent + 2..]));
                    } else {
                        lines.push(l);
                    }
                }
            }
            _ => {
                let (rest, below) = after(item, indent);
                lines.push(format!("{pad}-{rest}"));
                lines.extend(below);
            }
        }
    }
    lines
}

fn render_doc(root: &[Entry]) -> String {
    let mut text = String::new();
    for l in block_map(root, 0) {
        text.push_str(&l);
        text.push('\n');
    }
    text
}

// ---------------------------------------------------------------------------------------------
// The generator.

struct Gen<'r> {
    rng: &'r mut Rng,
    /// Anchors defined so far in this document: (name, is a map).
    anchors: Vec<(String, bool)>,
    /// Also produce things Helm refuses (non-JSON numbers, bad merges, uint64 keys).
    refusals: bool,
    /// Odd YAML (odd keys, tags, duplicates) at all.
    odd: bool,
    /// The keys of the root map.
    root_keys: &'static [&'static str],
}

impl Gen<'_> {
    fn scalar(&mut self, in_flow: bool) -> Y {
        let r = self.rng.below(100);
        if r < 45 {
            let t = self.rng.word(PLAIN);
            return Y::plain(t);
        }
        if r < 60 {
            return Y::plain(&self.rng.below(10).to_string());
        }
        if r < 72 {
            let t = self.rng.word(KEYS);
            return Y::plain(t);
        }
        if r < 84 {
            return Y::plain(self.rng.word(QUOTED));
        }
        if r < 88 && self.odd {
            let t = self.rng.word(TAGGED);
            // `!!str` alone is an empty tagged scalar: not inside flow collections.
            return Y::plain(if in_flow && t == "!!str" {
                "!!str x"
            } else {
                t
            });
        }
        if r < 90 && self.refusals && self.rng.chance(15) {
            return Y::plain(self.rng.word(NON_JSON));
        }
        if r < 95 && !in_flow {
            return self.block_scalar();
        }
        if r < 97 {
            return Y::Empty;
        }
        Y::plain(self.rng.word(&["true", "false", "null", "1", "x"]))
    }

    fn style(&mut self) -> u8 {
        match self.rng.below(100) {
            0..=7 => 1,
            8..=9 if self.odd => 2,
            10..=14 => 3,
            _ => 0,
        }
    }

    fn block_scalar(&mut self) -> Y {
        let header = self.rng.word(&["|", "|-", "|+", ">", ">-", ">+"]);
        let words = [
            "line one",
            "two",
            "  more indented",
            "",
            "last line",
            "a: b",
            "# hash",
            "x",
        ];
        let n = self.rng.range(1, 4);
        let mut lines: Vec<String> = (0..n).map(|_| (self.rng.word(&words)).to_owned()).collect();
        // The first line sets the indentation: never empty or more indented; nor the last empty
        // (the next key would then decide what a keep chomp keeps, which is fine but noisy).
        lines[0] = "first".into();
        if lines.last().is_some_and(String::is_empty) {
            lines.pop();
        }
        Y::Block {
            header: header.into(),
            lines,
        }
    }

    fn key(&mut self, top: bool, used: &mut Vec<String>) -> Option<String> {
        for _ in 0..6 {
            let (text, canon) = if self.odd && self.rng.chance(6) {
                let (k, helm) = *self.rng.pick(ODD_KEYS);
                match helm {
                    None if !self.refusals => continue,
                    None => (k.to_owned(), k.to_owned()),
                    Some(h) => (k.to_owned(), h.to_owned()),
                }
            } else {
                let k = if top {
                    self.rng.word(self.root_keys)
                } else {
                    self.rng.word(KEYS)
                };
                match self.rng.below(12) {
                    0 => (format!("\"{k}\""), k.to_owned()),
                    1 => (format!("'{k}'"), k.to_owned()),
                    _ => (k.to_owned(), k.to_owned()),
                }
            };
            // Keys that Helm stringifies alike but that are different YAML keys (`1` and "1")
            // collide in Go's map in random order: never two in one map. (Merge keys can still
            // bring such pairs together, hence no two odd keys share a spelling in ODD_KEYS.)
            if used.contains(&canon) {
                continue;
            }
            used.push(canon);
            return Some(text);
        }
        None
    }

    fn value(&mut self, depth: usize, in_flow: bool) -> Y {
        let r = self.rng.below(100);
        let v = if depth >= 4 || r < 50 {
            self.scalar(in_flow)
        } else if r < 72 {
            self.map(depth + 1, in_flow, false)
        } else if r < 87 {
            self.seq(depth + 1, in_flow)
        } else if r < 93 && !self.anchors.is_empty() {
            let (a, _) = self.rng.pick(&self.anchors).clone();
            Y::Alias(a)
        } else {
            self.map(depth + 1, in_flow, false)
        };
        self.maybe_anchor(v)
    }

    fn maybe_anchor(&mut self, v: Y) -> Y {
        if !self.odd || !self.rng.chance(8) || matches!(v, Y::Alias(_) | Y::Empty | Y::Anchored(..))
        {
            return v;
        }
        let name = format!("a{}", self.anchors.len() + 1);
        let is_map = matches!(v, Y::Map { .. });
        // Registered after the node: an alias inside it would be recursive.
        self.anchors.push((name.clone(), is_map));
        Y::Anchored(name, Box::new(v))
    }

    fn seq(&mut self, depth: usize, in_flow: bool) -> Y {
        let flow = in_flow || self.rng.chance(50);
        let n = self.rng.range(0, 4);
        let items = (0..n).map(|_| self.value(depth, flow)).collect();
        Y::Seq { items, flow }
    }

    fn map(&mut self, depth: usize, in_flow: bool, top: bool) -> Y {
        let flow = in_flow || (!top && self.rng.chance(35));
        let n = if self.rng.chance(10) {
            0
        } else {
            self.rng.range(1, 5)
        };
        let entries = self.entries(depth, flow, top, n);
        Y::Map { entries, flow }
    }

    fn entries(&mut self, depth: usize, flow: bool, top: bool, n: usize) -> Vec<Entry> {
        let mut used = Vec::new();
        let mut entries = Vec::new();
        for _ in 0..n {
            if self.odd && self.rng.chance(7) {
                entries.push(Entry::Merge(self.merge_value()));
                continue;
            }
            let Some(key) = self.key(top, &mut used) else {
                continue;
            };
            let value = self.value(depth, flow);
            entries.push(Entry::Kv {
                key,
                value,
                style: self.style(),
            });
        }
        // A duplicate key: the last one wins. Not inside flow maps (go-yaml and YAML 1.2
        // parsers agree there too, but one place is enough).
        if self.odd && !flow && !entries.is_empty() && self.rng.chance(8) {
            if let Some(Entry::Kv { key, .. }) = entries.first() {
                let key = key.clone();
                let value = self.value(depth, flow);
                entries.push(Entry::Kv {
                    key,
                    value,
                    style: 0,
                });
            }
        }
        entries
    }

    /// The value of a `<<` key: an alias of a map, a list of them, or an inline map; rarely (when
    /// refusals are on) a scalar, which go-yaml refuses.
    fn merge_value(&mut self) -> Y {
        let maps: Vec<String> = self
            .anchors
            .iter()
            .filter(|(_, m)| *m)
            .map(|(a, _)| a.clone())
            .collect();
        if self.refusals && self.rng.chance(5) {
            return Y::plain(self.rng.word(&["5", "x", "[1]"]));
        }
        if !maps.is_empty() && self.rng.chance(70) {
            if self.rng.chance(30) && maps.len() > 1 {
                let a = self.rng.pick(&maps).clone();
                let b = self.rng.pick(&maps).clone();
                return Y::Seq {
                    items: vec![Y::Alias(a), Y::Alias(b)],
                    flow: true,
                };
            }
            return Y::Alias(self.rng.pick(&maps).clone());
        }
        let n = self.rng.range(1, 3);
        let entries = self.entries(3, true, false, n);
        Y::Map {
            entries,
            flow: true,
        }
    }

    /// A top-level entry for a well-known key, shaped the way the chart uses it (usually).
    fn special(&mut self, key: &str, depth: usize) -> Y {
        match key {
            // A subchart's values: a map (a scalar is Helm's "type mismatch", see `generate`).
            "a1" | "a2" | "web" | "leaf" | "lf" | "und" if self.refusals && self.rng.chance(10) => {
                Y::plain("~")
            }
            "a1" | "a2" | "web" | "leaf" | "lf" | "und" => {
                let flow = self.rng.chance(20);
                let mut m = match self.map(depth + 1, flow, false) {
                    Y::Map { entries, .. } => entries,
                    _ => unreachable!(),
                };
                // (Not replacing an `enabled` already there: it may hold an anchor in use.)
                let has = m
                    .iter()
                    .any(|e| matches!(e, Entry::Kv { key, .. } if key.trim_matches(['"', '\'']) == "enabled"));
                if !has && self.rng.chance(60) {
                    let cond = self.condition_value();
                    m.push(Entry::Kv {
                        key: "enabled".into(),
                        value: cond,
                        style: 0,
                    });
                }
                Y::Map { entries: m, flow }
            }
            "tags" => {
                let mut entries = Vec::new();
                for t in ["front", "extra"] {
                    if self.rng.chance(60) {
                        let value = self.condition_value();
                        entries.push(Entry::Kv {
                            key: t.into(),
                            value,
                            style: 0,
                        });
                    }
                }
                if self.rng.chance(10) {
                    return self.scalar(false);
                }
                Y::Map {
                    entries,
                    flow: self.rng.chance(30),
                }
            }
            "global" if self.refusals && self.rng.chance(10) => self.scalar(false),
            "global" => {
                let mut m = match self.map(depth + 1, false, false) {
                    Y::Map { entries, .. } => entries,
                    _ => unreachable!(),
                };
                if self.rng.chance(40) {
                    let value = self.condition_value();
                    m.push(Entry::Kv {
                        key: "a2on".into(),
                        value,
                        style: 0,
                    });
                }
                Y::Map {
                    entries: m,
                    flow: false,
                }
            }
            _ => self.value(depth, false),
        }
    }

    /// What conditions and tags read: booleans in their YAML spellings, and things that are not.
    fn condition_value(&mut self) -> Y {
        Y::plain(self.rng.word(&[
            "true", "false", "yes", "no", "on", "Off", "\"true\"", "1", "0", "~", "maybe", "{}",
        ]))
    }

    /// A values document: the root map.
    fn doc(&mut self, n: usize) -> Vec<Entry> {
        let mut used = Vec::new();
        let mut entries = Vec::new();
        for _ in 0..n {
            if self.odd && self.rng.chance(4) {
                entries.push(Entry::Merge(self.merge_value()));
                continue;
            }
            let Some(key) = self.key(true, &mut used) else {
                continue;
            };
            let bare = key.trim_matches(['"', '\'']).to_owned();
            let value = self.special(&bare, 0);
            let value = self.maybe_anchor(value);
            entries.push(Entry::Kv {
                key,
                value,
                style: self.style(),
            });
        }
        entries
    }
}

/// A small random JSON schema over the vocabulary: property types (some unions), nested
/// objects, a required key, a minimum, an enum; sometimes a `$schema` draft.
fn schema(rng: &mut Rng, keys: &[&str]) -> String {
    fn prop(rng: &mut Rng, depth: usize) -> J {
        let types = [
            "integer", "number", "string", "boolean", "object", "array", "null",
        ];
        match rng.below(10) {
            0 if depth < 2 => {
                let mut props = serde_json::Map::new();
                for _ in 0..rng.range(1, 3) {
                    props.insert(rng.word(KEYS).to_owned(), prop(rng, depth + 1));
                }
                serde_json::json!({"type": "object", "properties": props})
            }
            1 => serde_json::json!({"type": [rng.pick(&types[..6]), "null"]}),
            2 => serde_json::json!({"minimum": rng.below(3)}),
            3 => serde_json::json!({"enum": ["a", 1, true, null]}),
            _ => serde_json::json!({"type": rng.pick(&types)}),
        }
    }
    let mut props = serde_json::Map::new();
    for _ in 0..rng.range(1, 4) {
        props.insert((*rng.pick(keys)).to_owned(), prop(rng, 0));
    }
    let mut root = serde_json::json!({"type": "object", "properties": props});
    if rng.chance(20) {
        root["required"] = serde_json::json!([rng.pick(keys)]);
    }
    match rng.below(3) {
        0 => root["$schema"] = "http://json-schema.org/draft-07/schema#".into(),
        1 => root["$schema"] = "https://json-schema.org/draft/2020-12/schema".into(),
        _ => {}
    }
    serde_json::to_string_pretty(&root).unwrap()
}

// ---------------------------------------------------------------------------------------------
// A case: the project's files, the target and the flags.

struct Case {
    files: Vec<(String, String)>,
    target: String,
    cloud: Option<String>,
    /// `-f` files in order (paths relative to the project root).
    layers: Vec<String>,
    /// (flag, argument) in command-line order.
    flags: Vec<(&'static str, String)>,
}

fn chart_yaml(name: &str, deps: &str) -> String {
    let mut s = format!("apiVersion: v2\nname: {name}\nversion: 0.1.0\n");
    if !deps.is_empty() {
        s.push_str("dependencies:\n");
        s.push_str(deps);
    }
    s
}

fn generate(seed: u64) -> Case {
    let mut rng = Rng::new(seed);
    let rng = &mut rng;
    let odd = rng.chance(60);
    let refusals = rng.chance(15);
    let mut files = Vec::new();

    // The charts.
    let leaf = rng.chance(25);
    let undeclared = rng.chance(10);
    let a2_condition = rng.word(&[
        "a2.enabled",
        "a2.enabled,global.a2on",
        "global.a2on,a2.enabled",
        " a2.enabled , global.a2on ",
    ]);
    let a1_condition = if rng.chance(20) {
        "    condition: a1.enabled\n"
    } else {
        ""
    };
    let mut deps = format!(
        "  - name: sub\n    alias: a1\n    version: 0.1.0\n{a1_condition}  - name: sub\n    alias: a2\n    version: 0.1.0\n    condition: {a2_condition}\n"
    );
    deps.push_str("  - name: web\n    version: 0.1.0\n");
    deps.push_str(rng.word(&["    tags: [front]\n", "    tags: [front, extra]\n"]));
    if rng.chance(50) {
        deps.push_str("    condition: web.enabled\n");
    }
    if rng.chance(40) {
        deps.push_str(rng.word(&[
            "    import-values:\n      - data\n",
            "    import-values:\n      - child: cfg\n        parent: webcfg\n",
            "    import-values:\n      - data\n      - child: cfg\n        parent: webcfg\n",
            "    import-values:\n      - child: exports.data\n        parent: shared\n",
            // Two imports into one place: the second merges into the first's table, which is
            // the subchart's own (Helm shares it).
            "    import-values:\n      - data\n      - child: exports.data\n        parent: shared\n",
            "    import-values:\n      - child: cfg\n        parent: webcfg\n      - child: exports.data\n        parent: webcfg\n",
        ]));
    }
    files.push(("charts/app/Chart.yaml".to_owned(), chart_yaml("app", &deps)));
    files.push((
        "charts/app/templates/values.yaml".to_owned(),
        "# VALUES {{ .Values | toJson }}\n".to_owned(),
    ));
    files.push((
        "charts/app/charts/sub/Chart.yaml".to_owned(),
        chart_yaml("sub", ""),
    ));
    // web's own subchart: Helm enables it against the *top-level* values (see compose.rs).
    let web_deps = if leaf {
        rng.word(&[
            "  - name: leaf\n    version: 0.1.0\n    condition: leaf.enabled\n",
            "  - name: leaf\n    alias: lf\n    version: 0.1.0\n    condition: lf.enabled\n",
            "  - name: leaf\n    version: 0.1.0\n    tags: [front]\n",
        ])
    } else {
        ""
    };
    files.push((
        "charts/app/charts/web/Chart.yaml".to_owned(),
        chart_yaml("web", web_deps),
    ));
    if leaf {
        files.push((
            "charts/app/charts/web/charts/leaf/Chart.yaml".to_owned(),
            chart_yaml("leaf", ""),
        ));
    }

    // A subchart in charts/ that Chart.yaml does not declare: always enabled.
    if undeclared {
        files.push((
            "charts/app/charts/und/Chart.yaml".to_owned(),
            chart_yaml("und", ""),
        ));
    }

    // Chart defaults: refusals only rarely (they make every case of the chart fail).
    let chart_refusals = refusals && rng.chance(15);
    let mut chart_values = |rng: &mut Rng, path: &str, n: usize, fixed: &str| {
        let mut g = Gen {
            rng,
            anchors: Vec::new(),
            refusals: chart_refusals,
            odd,
            root_keys: if path == "charts/app/values.yaml" {
                TOP_KEYS
            } else {
                SUB_KEYS
            },
        };
        let entries = g.doc(n);
        let mut text = fixed.to_owned();
        text.push_str(&render_doc(&entries));
        files.push((path.to_owned(), text));
    };
    let n = rng.range(2, 8);
    // A subchart's key holding a scalar in the chart's own defaults: Helm's "type mismatch".
    let app_fixed = if chart_refusals && rng.chance(30) {
        "web: 3\n"
    } else {
        ""
    };
    chart_values(rng, "charts/app/values.yaml", n, app_fixed);
    let n = rng.range(1, 6);
    let sub_fixed = rng.word(&[
        "",
        "global:\n  region: us\n  labels: {tier: backend}\n",
        "port: 80\nimage: {repository: r, tag: \"\"}\n",
    ]);
    chart_values(rng, "charts/app/charts/sub/values.yaml", n, sub_fixed);
    let n = rng.range(1, 5);
    let web_fixed = rng.word(&[
        "",
        "enabled: true\n",
        "exports:\n  data:\n    shared: w\n    replicas: 9\ncfg: {a: 1}\n",
        "enabled: false\nexports: {data: {x: 1, list: [1]}}\ncfg: {a: 1, b: {c: 2}}\nglobal: {}\n",
        // Not `shared: {…}` in exports.data: with the imports `data` and `exports.data` →
        // `shared`, Helm merges that table into itself and hangs (a cyclic map).
        "exports:\n  data:\n    a1: {fromWeb: 1, image: {tag: w}}\n    global: {fromWeb: 2}\n    webcfg: {deep: {w: 1}}\ncfg: {deep: {c: 1}}\n",
    ]);
    chart_values(rng, "charts/app/charts/web/values.yaml", n, web_fixed);
    if leaf {
        let n = rng.range(0, 3);
        let fixed = rng.word(&[
            "",
            "enabled: false\n",
            "enabled: true\nglobal: {leafy: 1}\n",
        ]);
        chart_values(
            rng,
            "charts/app/charts/web/charts/leaf/values.yaml",
            n,
            fixed,
        );
    }
    if undeclared {
        let n = rng.range(0, 3);
        let fixed = rng.word(&["", "x: null\nglobal: {u: null}\n", "m: {n: null, k: 1}\n"]);
        chart_values(rng, "charts/app/charts/und/values.yaml", n, fixed);
    }

    // Schemas (Helm validates the coalesced values against each enabled chart's).
    for (chart, keys) in [
        ("app", TOP_KEYS),
        ("app/charts/sub", SUB_KEYS),
        ("app/charts/web", SUB_KEYS),
    ] {
        if rng.chance(if chart == "app" { 8 } else { 4 }) {
            files.push((
                format!("charts/{chart}/values.schema.json"),
                schema(rng, keys),
            ));
        }
    }

    // The env layers.
    let clouds: Vec<&str> = if rng.chance(20) {
        vec!["aws", "gcp"]
    } else if rng.chance(10) {
        vec![]
    } else {
        vec!["aws"]
    };
    let cloud = clouds.first().map(|c| c.to_string());
    let env_type = rng.word(&["ci", "local", "live"]);
    let name = rng.word(&["app", "dev", "eu"]);
    let mut layer_files = Vec::new();
    for c in &clouds {
        layer_files.push(format!("envs/{c}.yaml"));
    }
    let with_default = rng.chance(75);
    if with_default {
        layer_files.push(format!("envs/{env_type}/default.yaml"));
    }
    layer_files.push(format!("envs/{env_type}/{name}.yaml"));
    // A sibling target: validate composes it too.
    if rng.chance(30) {
        files.push((
            format!("envs/{env_type}/zz-other.yaml"),
            "replicas: 2\n".to_owned(),
        ));
    }
    let mut layers = Vec::new();
    for f in &layer_files {
        let mut g = Gen {
            rng,
            anchors: Vec::new(),
            refusals: refusals && !chart_refusals,
            odd,
            root_keys: TOP_KEYS,
        };
        let r = g.rng.below(100);
        let text = if r < 3 {
            String::new()
        } else if r < 5 {
            g.rng
                .word(&["# only a comment\n", "---\n", "--- ~\n", "~\n", "{}\n"])
                .to_owned()
        } else if r < 6 && refusals {
            // Not a map: Helm cannot read it as values.
            g.rng
                .word(&["[]\n", "- a\n", "just text\n", "5\n"])
                .to_owned()
        } else {
            let n = g.rng.range(1, 7);
            let mut entries = g.doc(n);
            // A subchart's key holding a scalar: Helm's "type mismatch".
            if g.rng.chance(if refusals { 20 } else { 2 }) {
                let key = g.rng.word(&["a1", "a2", "web", "leaf", "lf", "und"]);
                let value = Y::plain(g.rng.word(&["3", "x", "[1, 2]", "true", "~"]));
                entries.push(Entry::Kv {
                    key: key.into(),
                    value,
                    style: 0,
                });
            }
            let mut text = render_doc(&entries);
            match g.rng.below(20) {
                0 => text.insert_str(0, "---\n"),
                1 => text.push_str("---\nignored: second document\n"),
                2 => text.insert_str(0, "# leading comment\n\n"),
                3 => text = text.replace('\n', "\r\n"), // Windows line ends
                4 => text.insert(0, '\u{feff}'),        // a UTF-8 byte order mark
                5 if refusals => {
                    // An implicit key longer than YAML's 1024-character limit.
                    text.push_str(&format!("{}: long\n", "k".repeat(1100)));
                }
                _ => {}
            }
            text
        };
        files.push((f.clone(), text));
        // The cloud file not chosen is written but not used.
        if clouds.len() == 2 && f == "envs/gcp.yaml" {
            continue;
        }
        layers.push(f.clone());
    }

    // Flags.
    let mut flags = Vec::new();
    if rng.chance(30) {
        for _ in 0..rng.range(1, 3) {
            let path = rng.word(SET_PATHS);
            let r = rng.below(100);
            if r < 45 {
                let v = rng.word(SET_VALUES);
                let extra = if rng.chance(20) {
                    format!(",{}={}", rng.pick(SET_PATHS), rng.pick(SET_VALUES))
                } else {
                    String::new()
                };
                flags.push(("--set", format!("{path}={v}{extra}")));
            } else if r < 65 {
                flags.push(("--set-string", format!("{path}={}", rng.pick(SET_VALUES))));
            } else if r < 92 {
                flags.push(("--set-json", format!("{path}={}", rng.pick(SET_JSON))));
            } else {
                flags.push(("--set-literal", format!("{path}={}", rng.pick(SET_VALUES))));
            }
        }
    }

    Case {
        files,
        target: format!("{env_type}/{name}"),
        cloud: if clouds.len() > 1 { cloud } else { None },
        layers,
        flags,
    }
}

// ---------------------------------------------------------------------------------------------
// Running one case.

enum Helm {
    Values(J),
    Fails(String),
    /// Killed after `HELM_TIMEOUT`: nothing to compare (reported, the generator must avoid it).
    Hangs,
}

enum Stack {
    Values(J),
    /// Exit 1 with `refusals`.
    Refuses(J),
    /// Exit 2: a configuration or usage error (malformed YAML, malformed flag).
    Error(String),
    Other(String),
}

fn write_case(dir: &Path, case: &Case) {
    for (path, text) in &case.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
}

/// Helm gets this long per case; more is a hang (Helm loops forever on some cyclic values).
const HELM_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

fn run_helm(helm: &Path, dir: &Path, case: &Case) -> Helm {
    let mut cmd = Command::new(helm);
    cmd.current_dir(dir)
        .args(["template", "rel", "charts/app"])
        .env("HELM_CACHE_HOME", dir.join(".helm/cache"))
        .env("HELM_CONFIG_HOME", dir.join(".helm/config"))
        .env("HELM_DATA_HOME", dir.join(".helm/data"));
    for f in &case.layers {
        cmd.args(["-f", f]);
    }
    for (flag, arg) in &case.flags {
        cmd.args([flag, arg.as_str()]);
    }
    // Output to files, so that waiting with a deadline needs no reader threads.
    let (out_path, err_path) = (dir.join(".helm.out"), dir.join(".helm.err"));
    cmd.stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    let mut child = cmd.spawn().expect("helm runs");
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("helm waits") {
            break status;
        }
        if started.elapsed() > HELM_TIMEOUT {
            let _ = child.kill();
            let _ = child.wait();
            return Helm::Hangs;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    };
    let stdout = std::fs::read_to_string(&out_path).unwrap_or_default();
    if !status.success() {
        let stderr = std::fs::read_to_string(&err_path).unwrap_or_default();
        return Helm::Fails(stderr.trim().to_owned());
    }
    match stdout.lines().find_map(|l| l.strip_prefix("# VALUES ")) {
        Some(line) => match serde_json::from_str(line) {
            Ok(v) => Helm::Values(v),
            Err(e) => Helm::Fails(format!("unparsable toJson ({e}): {line}")),
        },
        None => Helm::Fails(format!("no values line in:\n{stdout}")),
    }
}

/// The programs compared: real helm and the built `stack` (a private copy: the target dir is
/// shared, and a concurrent `cargo build` replacing the binary mid-run must not fail cases).
struct Tools {
    helm: std::path::PathBuf,
    stack: std::path::PathBuf,
}

fn stack_cmd(tools: &Tools, dir: &Path, case: &Case, args: &[&str]) -> Command {
    let mut cmd = Command::new(&tools.stack);
    cmd.current_dir(dir)
        .args(args)
        .args(["--format", "json"])
        .env("NO_COLOR", "1")
        .env_remove("GITHUB_STEP_SUMMARY");
    if let Some(c) = &case.cloud {
        cmd.args(["--cloud", c]);
    }
    cmd
}

fn run_stack(tools: &Tools, dir: &Path, case: &Case) -> Stack {
    let mut cmd = stack_cmd(tools, dir, case, &["values", &case.target]);
    for (flag, arg) in &case.flags {
        // `--flag=value`: a value starting with `-` must not read as an option.
        cmd.arg(format!("{flag}={arg}"));
    }
    let out = cmd.output().expect("stack runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    match out.status.code() {
        Some(0) => match serde_json::from_str(&stdout) {
            Ok(v) => Stack::Values(v),
            Err(e) => Stack::Other(format!("exit 0 but no JSON ({e}):\n{stdout}\n{stderr}")),
        },
        Some(1) => match serde_json::from_str::<J>(&stdout) {
            Ok(v)
                if v.get("refusals")
                    .is_some_and(|r| !r.as_array().unwrap().is_empty()) =>
            {
                Stack::Refuses(v)
            }
            _ => Stack::Other(format!("exit 1 without refusals:\n{stdout}\n{stderr}")),
        },
        Some(2) => Stack::Error(format!("{stdout}{stderr}").trim().to_owned()),
        code => Stack::Other(format!("exit {code:?}:\n{stdout}\n{stderr}")),
    }
}

/// `stack validate envs`: whether it reports an error saying Helm would fail for the target
/// (`Ok(Some(findings))`), reports none (`Ok(None)`), or exits 2 (`Err`).
fn run_validate(tools: &Tools, dir: &Path, case: &Case) -> Result<Option<Vec<J>>, String> {
    let mut cmd = stack_cmd(tools, dir, case, &["validate", "envs"]);
    for (flag, arg) in &case.flags {
        cmd.arg(format!("{flag}={arg}"));
    }
    let out = cmd.output().expect("stack runs");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    if out.status.code() == Some(2) {
        return Err(format!("{stdout}{}", String::from_utf8_lossy(&out.stderr)));
    }
    let report: J = serde_json::from_str(&stdout)
        .map_err(|e| format!("validate printed no JSON ({e}):\n{stdout}"))?;
    let refusing: Vec<J> = report["findings"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .filter(|f| {
            f["severity"] == "error"
                && (f["rule"] == "helm-refuses" || f["rule"] == "schema")
                && f.get("targets").and_then(J::as_array).is_none_or(|ts| {
                    ts.is_empty() || ts.iter().any(|t| t.as_str() == Some(case.target.as_str()))
                })
        })
        .collect();
    Ok((!refusing.is_empty()).then_some(refusing))
}

/// Numbers compare as float64 (what Helm holds and prints); everything else structurally.
fn same(a: &J, b: &J) -> bool {
    match (a, b) {
        (J::Number(x), J::Number(y)) => x.as_f64() == y.as_f64(),
        (J::Array(x), J::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same(a, b))
        }
        (J::Object(x), J::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
        }
        _ => a == b,
    }
}

/// The first differing path, for the report.
fn first_difference(a: &J, b: &J, path: &str) -> Option<String> {
    match (a, b) {
        (J::Object(x), J::Object(y)) => {
            for (k, v) in x {
                match y.get(k) {
                    None => return Some(format!("{path}.{k}: only helm has it")),
                    Some(w) => {
                        if let Some(d) = first_difference(v, w, &format!("{path}.{k}")) {
                            return Some(d);
                        }
                    }
                }
            }
            y.keys()
                .find(|k| !x.contains_key(*k))
                .map(|k| format!("{path}.{k}: only stack has it"))
        }
        (J::Array(x), J::Array(y)) if x.len() == y.len() => x
            .iter()
            .zip(y)
            .enumerate()
            .find_map(|(i, (v, w))| first_difference(v, w, &format!("{path}[{i}]"))),
        _ if same(a, b) => None,
        _ => Some(format!("{path}: helm {a} / stack {b}")),
    }
}

/// Whether a stack exit-2 error stands for a Helm failure: stack could not read a values file
/// (malformed YAML, unsupported key, bad merge, bad tag) or a `--set` flag. Helm stops at its
/// first error and stack at its own, so when several things are wrong they may name different
/// ones; what must agree is that both refuse.
fn refuses_input(stack: &str) -> bool {
    stack.contains("malformed YAML")
        || stack.contains("\"error\": \"--set")
        || stack.contains("invalid schema")
}

/// Cases whose `stack validate envs` was checked too.
static VALIDATED: AtomicUsize = AtomicUsize::new(0);

/// Runs one case; `Err(report)` on a mismatch.
fn check_case(tools: &Tools, seed: u64, i: usize, validate: bool) -> Result<CaseOutcome, String> {
    let case = generate(case_seed(seed, i));
    if std::env::var_os("STACK_FUZZ_DUMP").is_some() {
        for (path, text) in &case.files {
            eprintln!("--- {path}\n{text}");
        }
        eprintln!(
            "target {} layers {:?} flags {:?}",
            case.target, case.layers, case.flags
        );
    }
    let tmp = tempfile::Builder::new()
        .prefix(&format!("stack-fuzz-{i}-"))
        .tempdir()
        .unwrap();
    let dir = tmp.path();
    write_case(dir, &case);
    let theirs = run_helm(&tools.helm, dir, &case);
    let ours = run_stack(tools, dir, &case);
    let mut problem = match (&theirs, &ours) {
        (Helm::Values(h), Stack::Values(s)) => {
            first_difference(h, s, "").map(|d| format!("values differ; first difference at {d}"))
        }
        (Helm::Fails(_), Stack::Refuses(_)) => None,
        (Helm::Fails(_), Stack::Error(s)) if refuses_input(s) => None,
        (Helm::Fails(_), _) => Some("helm fails but stack does not refuse".to_owned()),
        (Helm::Values(_), _) => Some("helm renders but stack does not give values".to_owned()),
        (Helm::Hangs, _) => Some(format!(
            "helm did not finish within {}s (a Helm hang: the generator must not produce this)",
            HELM_TIMEOUT.as_secs()
        )),
    };
    let mut validated = None;
    if problem.is_none() && validate {
        let v = run_validate(tools, dir, &case);
        problem = match (&theirs, &ours, &v) {
            (Helm::Values(_), _, Ok(None)) => None,
            (Helm::Fails(_), _, Ok(Some(_))) => None,
            (Helm::Fails(_), _, Err(e)) if refuses_input(e) => None,
            (Helm::Values(_), _, _) => Some(
                "helm renders but `stack validate envs` says it would fail (or errs)".to_owned(),
            ),
            _ => Some(
                "helm fails but `stack validate envs` reports no helm-refuses/schema error for the target"
                    .to_owned(),
            ),
        };
        validated = Some(v);
        VALIDATED.fetch_add(1, Ordering::Relaxed);
    }
    let Some(problem) = problem else {
        return Ok(match theirs {
            Helm::Values(_) => CaseOutcome::Rendered,
            Helm::Fails(e) => {
                if std::env::var_os("STACK_FUZZ_SHOW_REFUSALS").is_some() {
                    eprintln!("case {i}: helm: {}", e.lines().last().unwrap_or_default());
                }
                CaseOutcome::Refused(failure_kind(&e))
            }
            Helm::Hangs => CaseOutcome::Refused("hang"),
        });
    };
    let kept = tmp.keep();
    let mut r = String::new();
    let _ = writeln!(r, "=== MISMATCH: seed {seed:#x} case {i}: {problem}");
    let _ = writeln!(
        r,
        "reproduce: STACK_FUZZ_SEED={seed:#x} STACK_FUZZ_ONLY={i} cargo test --test it differential -- --nocapture"
    );
    let _ = writeln!(r, "case directory (kept): {}", kept.display());
    let _ = writeln!(
        r,
        "target {} layers {:?} cloud {:?} flags {:?}",
        case.target, case.layers, case.cloud, case.flags
    );
    for (path, text) in &case.files {
        if path.ends_with("Chart.yaml") && !path.starts_with("charts/app/Chart") {
            continue;
        }
        let _ = writeln!(r, "--- {path}\n{text}");
    }
    match &theirs {
        Helm::Values(v) => {
            let _ = writeln!(r, "helm values: {v}");
        }
        Helm::Fails(e) => {
            let _ = writeln!(r, "helm fails: {e}");
        }
        Helm::Hangs => {
            let _ = writeln!(r, "helm hangs");
        }
    }
    match &ours {
        Stack::Values(v) => {
            let _ = writeln!(r, "stack values: {v}");
        }
        Stack::Refuses(v) => {
            let _ = writeln!(r, "stack refuses: {}", v["refusals"]);
        }
        Stack::Error(e) => {
            let _ = writeln!(r, "stack error (exit 2): {e}");
        }
        Stack::Other(e) => {
            let _ = writeln!(r, "stack: {e}");
        }
    }
    if let Some(v) = validated {
        let _ = writeln!(r, "validate: {v:?}");
    }
    Err(r)
}

enum CaseOutcome {
    Rendered,
    /// Why Helm failed, in a word (for the tally).
    Refused(&'static str),
}

/// What kind of failure a Helm error is.
fn failure_kind(stderr: &str) -> &'static str {
    [
        ("type mismatch", "type mismatch"),
        ("json: unsupported value", "NaN/Inf"),
        ("unsupported map key", "map key"),
        ("failed parsing --set", "--set"),
        ("map merge requires", "merge key"),
        ("cannot decode", "tag"),
        ("cannot unmarshal", "not a map"),
        ("values don't meet the specifications", "schema"),
        ("yaml:", "YAML"),
    ]
    .iter()
    .find(|(needle, _)| stderr.contains(needle))
    .map_or("other", |(_, kind)| kind)
}

fn env_number(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    let v = v.trim();
    Some(match v.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).expect("hex number"),
        None => v.parse().expect("a number"),
    })
}

#[test]
fn values_match_real_helm_on_generated_projects() {
    let helm = support::find_tool("helm");
    if !support::require("helm", helm.as_ref().map(|_| ()).map_err(Clone::clone)) {
        return;
    }
    let bin = tempfile::tempdir().unwrap();
    let tools = Tools {
        helm: helm.unwrap(),
        stack: bin.path().join("stack"),
    };
    std::fs::copy(support::stack_bin(), &tools.stack).expect("copy the stack binary");
    let seed = env_number("STACK_FUZZ_SEED").unwrap_or(DEFAULT_SEED);
    let cases = env_number("STACK_FUZZ_CASES").map_or(DEFAULT_CASES, |n| n as usize);
    let only = env_number("STACK_FUZZ_ONLY").map(|n| n as usize);
    let jobs = env_number("STACK_FUZZ_JOBS").map_or(2, |n| n.max(1) as usize);
    let list: Vec<usize> = match only {
        Some(i) => vec![i],
        None => (0..cases).collect(),
    };
    eprintln!(
        "differential: seed {seed:#x}, {} case(s), {jobs} job(s) (STACK_FUZZ_SEED / STACK_FUZZ_CASES / STACK_FUZZ_ONLY)",
        list.len()
    );
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let rendered = AtomicUsize::new(0);
    let refused = AtomicUsize::new(0);
    let kinds: Mutex<std::collections::BTreeMap<&str, usize>> = Mutex::default();
    let mismatches: Mutex<Vec<(usize, String)>> = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..jobs {
            s.spawn(|| loop {
                let k = next.fetch_add(1, Ordering::Relaxed);
                let Some(&i) = list.get(k) else { break };
                let validate = i % VALIDATE_EVERY == 0 || only.is_some();
                let outcome = std::panic::catch_unwind(|| check_case(&tools, seed, i, validate))
                    .unwrap_or_else(|e| {
                        let msg = e
                            .downcast_ref::<String>()
                            .cloned()
                            .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                            .unwrap_or_default();
                        Err(format!("=== HARNESS PANIC: seed {seed:#x} case {i}: {msg}"))
                    });
                match outcome {
                    Ok(CaseOutcome::Rendered) => {
                        rendered.fetch_add(1, Ordering::Relaxed);
                    }
                    Ok(CaseOutcome::Refused(kind)) => {
                        refused.fetch_add(1, Ordering::Relaxed);
                        *kinds.lock().unwrap().entry(kind).or_insert(0) += 1;
                    }
                    Err(report) => {
                        let mut m = mismatches.lock().unwrap();
                        if m.len() < SHOWN {
                            eprintln!("{report}");
                        } else {
                            eprintln!("{}", report.lines().next().unwrap_or_default());
                        }
                        m.push((i, report));
                    }
                }
            });
        }
    });
    let mismatches = mismatches.into_inner().unwrap();
    let mut failed: Vec<usize> = mismatches.iter().map(|(i, _)| *i).collect();
    failed.sort();
    eprintln!(
        "differential: seed {seed:#x}: {} case(s) in {:.1}s: {} rendered alike, {} refused alike {:?}, {} also checked with validate, {} mismatch(es){}",
        list.len(),
        started.elapsed().as_secs_f64(),
        rendered.into_inner(),
        refused.into_inner(),
        kinds.into_inner().unwrap(),
        VALIDATED.load(Ordering::Relaxed),
        failed.len(),
        if failed.is_empty() {
            String::new()
        } else {
            format!(" (cases {failed:?})")
        }
    );
    assert!(
        failed.is_empty(),
        "{} of {} generated cases differ from real helm (seed {seed:#x}, cases {failed:?}); see above",
        failed.len(),
        list.len()
    );
}
