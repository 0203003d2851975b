//! Helm's `--set`, `--set-string`, `--set-file`, `--set-json` and `--set-literal`, parsed exactly as
//! helm v3.21.4 does (pkg/strvals/parser.go, pkg/strvals/literal_parser.go) and applied in the order
//! of pkg/cli/values/options.go `MergeValues`.
//!
//! Invariant: pure (file contents come through the caller's `read_file`). The parse mirrors Helm's
//! recursive-descent parser step by step, including its quirks: what Helm leaves behind when a
//! parse ends early without an error (`a[0]` → `a: []`), Go type-assertion panics turned into
//! errors (`--set a.b=1` over `a: 1`), Go's `%q` quoting in messages, and `encoding/json`'s
//! reading of one value at a time for `--set-json`. Values are held as Go holds them while parsing
//! (int64 vs float64 matters for messages) and come back as `Value`s (every number an f64).

use crate::yaml::{Map, Node, Origin, Pos, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::io;
use std::sync::Arc;

/// Which flag an argument came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum SetKind {
    Set,
    String,
    File,
    Json,
    Literal,
}

impl SetKind {
    /// Helm's fixed order (options.go MergeValues), whatever the order on the command line.
    pub const HELM_ORDER: [SetKind; 5] = [
        SetKind::Json,
        SetKind::Set,
        SetKind::String,
        SetKind::File,
        SetKind::Literal,
    ];

    pub fn flag(self) -> &'static str {
        match self {
            SetKind::Set => "--set",
            SetKind::String => "--set-string",
            SetKind::File => "--set-file",
            SetKind::Json => "--set-json",
            SetKind::Literal => "--set-literal",
        }
    }

    /// The `file` of the origins of values set by this flag, e.g. `(--set)`.
    pub fn origin_file(self) -> &'static str {
        match self {
            SetKind::Set => "(--set)",
            SetKind::String => "(--set-string)",
            SetKind::File => "(--set-file)",
            SetKind::Json => "(--set-json)",
            SetKind::Literal => "(--set-literal)",
        }
    }
}

/// One occurrence of a flag: `--set <text>`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetArg {
    pub kind: SetKind,
    pub text: String,
}

/// An argument Helm refuses. `message` is strvals' own text (e.g. `key "a" has no value`);
/// `col` is the 1-based char position in `arg` of the key (or index) being parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetError {
    pub flag: &'static str,
    pub arg: String,
    pub col: usize,
    pub message: String,
}

impl SetError {
    /// What Helm prints after `Error: `. For `--set-json` Helm drops the parser's message.
    pub fn helm_message(&self) -> String {
        if self.flag == "--set-json" {
            format!("failed parsing --set-json data {}", self.arg)
        } else {
            format!("failed parsing {} data: {}", self.flag, self.message)
        }
    }
}

impl fmt::Display for SetError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {:?}, column {}: {}",
            self.flag, self.arg, self.col, self.message
        )
    }
}

impl std::error::Error for SetError {}

/// Applies `args` into `base` (the merged `-f` files) as Helm does: all `--set-json`, then `--set`,
/// `--set-string`, `--set-file`, `--set-literal`, each in the order given. `read_file` gets the
/// `--set-file` path exactly as written (Helm reads `-` from stdin and URLs through its getters;
/// that is the caller's business). On error `base` is left unchanged.
pub fn apply(
    base: &mut Map,
    args: &[SetArg],
    read_file: &dyn Fn(&str) -> io::Result<String>,
) -> Result<(), SetError> {
    if args.is_empty() {
        return Ok(());
    }
    // Every level of recursion (here as in Helm) consumes one `.`, `[` or `{`.
    let nesting = args
        .iter()
        .map(|a| {
            a.text
                .chars()
                .filter(|c| matches!(c, '.' | '[' | '{'))
                .count()
        })
        .max()
        .unwrap_or(0);
    *base = if nesting <= INLINE_NESTING {
        run_inline(base, args, read_file)?
    } else {
        run_on_big_stack(base, args, read_file)?
    };
    Ok(())
}

/// Helm's parser recurses once per `.`/`[` (and `encoding/json` once per nesting level, up to
/// 10000) on Go's growable stack; a debug build here spends a few KiB of stack per level. Deeper
/// arguments than this are parsed (and converted) on a thread with a stack big enough for any
/// nesting an argument can hold.
const INLINE_NESTING: usize = 128;
const BIG_STACK: usize = 1 << 30;

fn run_inline(
    base: &Map,
    args: &[SetArg],
    read_file: &dyn Fn(&str) -> io::Result<String>,
) -> Result<Map, SetError> {
    let mut data = to_go_map(base);
    run_all(&mut data, args, read_file)?;
    Ok(from_go_map(data))
}

fn run_on_big_stack(
    base: &Map,
    args: &[SetArg],
    read_file: &dyn Fn(&str) -> io::Result<String>,
) -> Result<Map, SetError> {
    use std::sync::mpsc;
    let outcome = std::thread::scope(|scope| {
        let (req_tx, req_rx) = mpsc::channel::<String>();
        let (resp_tx, resp_rx) = mpsc::channel::<io::Result<String>>();
        let worker = std::thread::Builder::new()
            .name("strvals".into())
            .stack_size(BIG_STACK)
            .spawn_scoped(scope, move || {
                // `read_file` need not be Send: the calling thread reads on the worker's behalf.
                let reader = move |path: &str| -> io::Result<String> {
                    req_tx
                        .send(path.to_owned())
                        .map_err(|_| io::Error::other("file reader gone"))?;
                    resp_rx
                        .recv()
                        .map_err(|_| io::Error::other("file reader gone"))?
                };
                run_inline(base, args, &reader)
            });
        let Ok(worker) = worker else {
            return None;
        };
        for path in req_rx {
            let _ = resp_tx.send(read_file(&path));
        }
        Some(match worker.join() {
            Ok(r) => r,
            Err(panic) => std::panic::resume_unwind(panic),
        })
    });
    match outcome {
        Some(r) => r,
        // No thread to be had: parse here (only absurdly deep nesting can then overflow).
        None => run_inline(base, args, read_file),
    }
}

fn run_all(
    data: &mut GMap,
    args: &[SetArg],
    read_file: &dyn Fn(&str) -> io::Result<String>,
) -> Result<(), SetError> {
    for kind in SetKind::HELM_ORDER {
        let file: Arc<str> = Arc::from(kind.origin_file());
        for arg in args.iter().filter(|a| a.kind == kind) {
            let mut p = Parser {
                s: arg.text.chars().collect(),
                p: 0,
                mode: match kind {
                    SetKind::Set => Mode::Typed,
                    SetKind::String => Mode::Strings,
                    SetKind::File => Mode::File,
                    SetKind::Json => Mode::Json,
                    SetKind::Literal => Mode::Literal,
                },
                file: file.clone(),
                read_file,
            };
            match p.parse(data) {
                Ok(()) => {}
                Err(PErr::Fail { msg, col, .. }) => {
                    return Err(SetError {
                        flag: kind.flag(),
                        arg: arg.text.clone(),
                        col,
                        message: msg,
                    })
                }
                Err(PErr::Eof | PErr::NotList) => unreachable!("parse() absorbs EOF"),
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Values as Go holds them during the parse.

#[derive(Clone, Debug, PartialEq)]
enum G {
    Nil,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    List(Vec<GN>),
    Map(GMap),
}

type GMap = BTreeMap<String, GN>;

#[derive(Clone, Debug, PartialEq)]
struct GN {
    v: G,
    origin: Origin,
}

/// `runtime.TypeAssertionError` text for `x.(want)` on the value `v`.
fn conversion(v: &G, want: &str) -> String {
    let have = match v {
        G::Nil => "nil",
        G::Bool(_) => "bool",
        G::Int(_) => "int64",
        G::Float(_) => "float64",
        G::Str(_) => "string",
        G::List(_) => "[]interface {}",
        G::Map(_) => "map[string]interface {}",
    };
    if matches!(v, G::Nil) {
        format!("interface conversion: interface {{}} is nil, not {want}")
    } else {
        format!("interface conversion: interface {{}} is {have}, not {want}")
    }
}

const LIST_T: &str = "[]interface {}";
const MAP_T: &str = "map[string]interface {}";

fn to_go(n: &Node) -> GN {
    let v = match &n.value {
        Value::Null => G::Nil,
        Value::Bool(b) => G::Bool(*b),
        Value::Number(f) => G::Float(*f),
        Value::Str(s) => G::Str(s.clone()),
        Value::Seq(items) => G::List(items.iter().map(to_go).collect()),
        Value::Map(m) => G::Map(to_go_map(m)),
    };
    GN {
        v,
        origin: n.origin.clone(),
    }
}

fn to_go_map(m: &Map) -> GMap {
    m.iter().map(|(k, n)| (k.clone(), to_go(n))).collect()
}

fn from_go(n: GN) -> Node {
    let value = match n.v {
        G::Nil => Value::Null,
        G::Bool(b) => Value::Bool(b),
        G::Int(i) => Value::Number(i as f64),
        G::Float(f) => Value::Number(f),
        G::Str(s) => Value::Str(s),
        G::List(items) => Value::Seq(items.into_iter().map(from_go).collect()),
        G::Map(m) => Value::Map(from_go_map(m)),
    };
    Node {
        value,
        origin: n.origin,
    }
}

fn from_go_map(m: GMap) -> Map {
    m.into_iter().map(|(k, n)| (k, from_go(n))).collect()
}

// ---------------------------------------------------------------------------------------------
// The parser (parser.go `parser` and literal_parser.go `literalParser` in one).

/// parser.go `MaxIndex`.
const MAX_INDEX: i64 = 65536;
/// parser.go `MaxNestedNameLevel`.
const MAX_NESTED_NAME_LEVEL: usize = 30;
/// encoding/json's scanner `maxNestingDepth`.
const MAX_JSON_DEPTH: usize = 10000;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// `--set`: typedVal.
    Typed,
    /// `--set-string`: typedVal with stringBool.
    Strings,
    /// `--set-file`: the value names a file whose content is the string value.
    File,
    /// `--set-json`: isjsonval.
    Json,
    /// `--set-literal`: the literalParser (no `,` separator, no `\` escapes).
    Literal,
}

enum PErr {
    /// `io.EOF`: ends the parse without an error, wherever it comes from.
    Eof,
    /// `ErrNotList` (valList only).
    NotList,
    /// A real error; `panic` marks a Go panic not yet recovered by a `key()` frame.
    Fail {
        msg: String,
        col: usize,
        panic: bool,
    },
}

fn fail(msg: impl Into<String>, col: usize) -> PErr {
    PErr::Fail {
        msg: msg.into(),
        col,
        panic: false,
    }
}

fn panic_err(msg: String, col: usize) -> PErr {
    PErr::Fail {
        msg,
        col,
        panic: true,
    }
}

struct Parser<'r> {
    s: Vec<char>,
    /// Next char to read; the 1-based column of a char at index `i` is `i + 1`.
    p: usize,
    mode: Mode,
    file: Arc<str>,
    read_file: &'r dyn Fn(&str) -> io::Result<String>,
}

impl Parser<'_> {
    fn read(&mut self) -> Option<char> {
        let c = self.s.get(self.p).copied();
        if c.is_some() {
            self.p += 1;
        }
        c
    }

    fn unread(&mut self) {
        self.p -= 1;
    }

    fn peek(&self) -> Option<char> {
        self.s.get(self.p).copied()
    }

    fn origin(&self, col: usize) -> Origin {
        Origin {
            file: self.file.clone(),
            pos: Pos {
                line: 1,
                col: col as u32,
            },
        }
    }

    fn node(&self, v: G, col: usize) -> GN {
        GN {
            v,
            origin: self.origin(col),
        }
    }

    fn escapes(&self) -> bool {
        self.mode != Mode::Literal
    }

    /// `runesUntil` (with `\` escaping any rune) / `runesUntilLiteral`. `None` = EOF.
    fn runes_until(&mut self, stop: &[char]) -> (String, Option<char>) {
        let mut v = String::new();
        loop {
            match self.read() {
                None => return (v, None),
                Some(c) if stop.contains(&c) => return (v, Some(c)),
                Some('\\') if self.escapes() => match self.read() {
                    None => return (v, None),
                    Some(n) => v.push(n),
                },
                Some(c) => v.push(c),
            }
        }
    }

    /// `parse`: keys until EOF.
    fn parse(&mut self, data: &mut GMap) -> Result<(), PErr> {
        loop {
            match self.key(data, 0) {
                Ok(()) => continue,
                Err(PErr::Eof) => return Ok(()),
                Err(e) => return Err(e),
            }
        }
    }

    /// `key`, including its deferred `recover` of type-assertion panics.
    fn key(&mut self, data: &mut GMap, level: usize) -> Result<(), PErr> {
        match self.key_inner(data, level) {
            Err(PErr::Fail {
                msg,
                col,
                panic: true,
            }) => Err(fail(format!("unable to parse key: {msg}"), col)),
            r => r,
        }
    }

    fn key_inner(&mut self, data: &mut GMap, level: usize) -> Result<(), PErr> {
        let col = self.p + 1;
        let stop: &[char] = if self.mode == Mode::Literal {
            &['=', '[', '.']
        } else {
            &['=', '[', ',', '.']
        };
        let (k, last) = self.runes_until(stop);
        match last {
            None if k.is_empty() => Err(PErr::Eof),
            None => Err(fail(format!("key {} has no value", go_quote(&k)), col)),
            Some('[') => {
                let bracket = self.p;
                let i = self.key_index(bracket)?;
                match data.get_mut(&k) {
                    Some(node) => {
                        let G::List(list) = &mut node.v else {
                            return Err(panic_err(conversion(&node.v, LIST_T), col));
                        };
                        if k.is_empty() {
                            // `set` skips the empty key: only writes into the existing backing
                            // array (no growth) are seen.
                            let mut copy = list.clone();
                            let r = self.list_item(&mut copy, i, level, bracket);
                            if copy.len() == list.len() {
                                *list = copy;
                            }
                            r
                        } else {
                            self.list_item(list, i, level, bracket)
                        }
                    }
                    None => {
                        let mut list = Vec::new();
                        let r = self.list_item(&mut list, i, level, bracket);
                        if !k.is_empty() {
                            data.insert(k, self.node(G::List(list), col));
                        }
                        r
                    }
                }
            }
            Some('=') => match self.mode {
                Mode::Json => {
                    if self.empty_val() {
                        set(data, k, self.node(G::Nil, col));
                        return Ok(());
                    }
                    let v = self.json_decode().map_err(|m| fail(m, col))?;
                    set(data, k, self.node(v.v, col));
                    self.empty_val();
                    Ok(())
                }
                Mode::Literal => {
                    let value: String = self.s[self.p..].iter().collect();
                    self.p = self.s.len();
                    set(data, k, self.node(G::Str(value), col));
                    Ok(())
                }
                _ => match self.val_list() {
                    Ok(list) => {
                        set(data, k, self.node(G::List(list), col));
                        Ok(())
                    }
                    Err(PErr::Eof) => {
                        set(data, k, self.node(G::Str(String::new()), col));
                        Err(PErr::Eof)
                    }
                    Err(PErr::NotList) => {
                        let (rs, _) = self.runes_until(&[',']);
                        let v = self.reader(rs, col)?;
                        set(data, k, self.node(v, col));
                        Ok(())
                    }
                    Err(e) => Err(e),
                },
            },
            Some(',') => Err(fail(
                format!("key {} has no value (cannot end with ,)", go_quote(&k)),
                col,
            )),
            Some(_) => {
                // '.'
                let level = level + 1;
                if level > MAX_NESTED_NAME_LEVEL {
                    return Err(fail(
                        format!(
                            "value name nested level is greater than maximum supported nested level of {MAX_NESTED_NAME_LEVEL}"
                        ),
                        col,
                    ));
                }
                let no_value = || fail(format!("key map {} has no value", go_quote(&k)), col);
                match data.get_mut(&k) {
                    Some(node) => {
                        // The existing map is filled in place (Go maps are references).
                        let G::Map(inner) = &mut node.v else {
                            return Err(panic_err(conversion(&node.v, MAP_T), col));
                        };
                        let e = self.key(inner, level);
                        if e.is_ok() && inner.is_empty() {
                            return Err(no_value());
                        }
                        e
                    }
                    None => {
                        let mut inner = GMap::new();
                        let e = self.key(&mut inner, level);
                        if e.is_ok() && inner.is_empty() {
                            return Err(no_value());
                        }
                        if !inner.is_empty() {
                            let n = self.node(G::Map(inner), col);
                            set(data, k.clone(), n);
                        }
                        e
                    }
                }
            }
        }
    }

    /// `keyIndex`: the text up to `]`, through `strconv.Atoi`; errors wrapped as Helm wraps them.
    fn key_index(&mut self, col: usize) -> Result<i64, PErr> {
        let (v, last) = self.runes_until(&[']']);
        if last.is_none() {
            return Err(fail("error parsing index: EOF", col));
        }
        go_atoi(&v).map_err(|e| fail(format!("error parsing index: {e}"), col))
    }

    /// `listItem`: what follows `[i]`. Works on `list` in place; growth happens only in
    /// `set_index`, at the end of a successful step, as with Go's slices.
    fn list_item(
        &mut self,
        list: &mut Vec<GN>,
        i: i64,
        level: usize,
        col: usize,
    ) -> Result<(), PErr> {
        if i < 0 {
            return Err(fail(format!("negative {i} index not allowed"), col));
        }
        let (k, last) = self.runes_until(&['[', '.', '=']);
        if !k.is_empty() {
            return Err(fail(
                format!(
                    "unexpected data at end of array index: {}",
                    go_quote_runes(&k)
                ),
                col,
            ));
        }
        let idx = i as usize;
        match last {
            None => Err(PErr::Eof),
            Some('=') => match self.mode {
                Mode::Json => {
                    if self.empty_val() {
                        let n = self.node(G::Nil, col);
                        return set_index(list, i, n, col);
                    }
                    let v = self.json_decode().map_err(|m| fail(m, col))?;
                    let n = self.node(v.v, col);
                    set_index(list, i, n, col)?;
                    self.empty_val();
                    Ok(())
                }
                Mode::Literal => {
                    let value: String = self.s[self.p..].iter().collect();
                    self.p = self.s.len();
                    let n = self.node(G::Str(value), col);
                    set_index(list, i, n, col)
                }
                _ => match self.val_list() {
                    Ok(vl) => {
                        let n = self.node(G::List(vl), col);
                        set_index(list, i, n, col)
                    }
                    Err(PErr::Eof) => {
                        let n = self.node(G::Str(String::new()), col);
                        set_index(list, i, n, col)
                    }
                    Err(PErr::NotList) => {
                        let (rs, _) = self.runes_until(&[',']);
                        let v = self.reader(rs, col)?;
                        let n = self.node(v, col);
                        set_index(list, i, n, col)
                    }
                    Err(e) => Err(e),
                },
            },
            Some('[') => {
                let next_col = self.p;
                let next_i = self.key_index(next_col)?;
                // An existing nested list is worked on in place; a nil one starts afresh.
                let mut taken = None;
                if idx < list.len() && list[idx].v != G::Nil {
                    match &mut list[idx].v {
                        G::List(l) => taken = Some(std::mem::take(l)),
                        other => return Err(panic_err(conversion(other, LIST_T), col)),
                    }
                }
                let from_list = taken.is_some();
                let mut crt = taken.unwrap_or_default();
                let r = self.list_item(&mut crt, next_i, level, next_col);
                if let Err(e) = r {
                    if from_list {
                        list[idx].v = G::List(crt);
                    }
                    return Err(e);
                }
                if from_list {
                    list[idx].v = G::List(crt);
                    Ok(())
                } else {
                    let n = self.node(G::List(crt), col);
                    set_index(list, i, n, col)
                }
            }
            Some(_) => {
                // '.': a map element; a non-map already there is replaced by an empty map.
                if idx < list.len() {
                    if !matches!(list[idx].v, G::Map(_)) {
                        list[idx] = self.node(G::Map(GMap::new()), col);
                    }
                    let G::Map(inner) = &mut list[idx].v else {
                        unreachable!()
                    };
                    self.key(inner, level)
                } else {
                    let mut inner = GMap::new();
                    self.key(&mut inner, level)?;
                    let n = self.node(G::Map(inner), col);
                    set_index(list, i, n, col)
                }
            }
        }
    }

    /// `emptyVal`: skips Unicode spaces; true at EOF or after a consumed `,`.
    fn empty_val(&mut self) -> bool {
        loop {
            match self.read() {
                None | Some(',') => return true,
                Some(c) if !c.is_whitespace() => {
                    self.unread();
                    return false;
                }
                Some(_) => {}
            }
        }
    }

    /// `valList`: `{a,b}`; `NotList` when the value does not start with `{`.
    fn val_list(&mut self) -> Result<Vec<GN>, PErr> {
        let col = self.p + 1;
        match self.read() {
            None => return Err(PErr::Eof),
            Some('{') => {}
            Some(_) => {
                self.unread();
                return Err(PErr::NotList);
            }
        }
        let mut list = Vec::new();
        loop {
            let item_col = self.p + 1;
            let (rs, last) = self.runes_until(&[',', '}']);
            match last {
                None => return Err(fail("list must terminate with '}'", col)),
                Some('}') => {
                    if let Some(c) = self.read() {
                        if c != ',' {
                            self.unread();
                        }
                    }
                    let v = self.reader(rs, item_col)?;
                    list.push(self.node(v, item_col));
                    return Ok(list);
                }
                Some(_) => {
                    let v = self.reader(rs, item_col)?;
                    list.push(self.node(v, item_col));
                }
            }
        }
    }

    /// The parser's `reader`: typedVal, or the content of the named file.
    fn reader(&mut self, rs: String, col: usize) -> Result<G, PErr> {
        match self.mode {
            Mode::Typed => Ok(typed_val(rs)),
            Mode::File => match (self.read_file)(&rs) {
                Ok(text) => Ok(G::Str(text)),
                Err(e) => Err(fail(go_file_error(&rs, &e), col)),
            },
            Mode::Strings | Mode::Json | Mode::Literal => Ok(G::Str(rs)),
        }
    }

    // -----------------------------------------------------------------------------------------
    // One JSON value, as `json.NewDecoder(rest).Decode(&v)` reads it: the value ends where the
    // grammar ends (a top-level `1x` is 1, then `x` is left for the next key), objects and arrays
    // end at their bracket; numbers become float64, `\u` surrogates that do not pair become
    // U+FFFD, nesting deeper than 10000 fails.

    fn json_decode(&mut self) -> Result<GN, String> {
        self.json_value(0)
    }

    fn json_ws(&mut self) {
        while matches!(self.peek(), Some(' ' | '\t' | '\n' | '\r')) {
            self.p += 1;
        }
    }

    fn json_value(&mut self, depth: usize) -> Result<GN, String> {
        let col = self.p + 1;
        let v = match self.peek() {
            None => return Err(UNEXPECTED_EOF.into()),
            Some('{') => {
                if depth + 1 > MAX_JSON_DEPTH {
                    return Err("exceeded max depth".into());
                }
                self.p += 1;
                let mut m = GMap::new();
                self.json_ws();
                if self.peek() == Some('}') {
                    self.p += 1;
                } else {
                    loop {
                        match self.peek() {
                            Some('"') => {}
                            Some(c) => {
                                return Err(format!(
                                "invalid character {} looking for beginning of object key string",
                                quote_char(c)
                            ))
                            }
                            None => return Err(UNEXPECTED_EOF.into()),
                        }
                        let key_col = self.p + 1;
                        let key = self.json_string()?;
                        self.json_ws();
                        match self.read() {
                            Some(':') => {}
                            Some(c) => {
                                return Err(format!(
                                    "invalid character {} after object key",
                                    quote_char(c)
                                ))
                            }
                            None => return Err(UNEXPECTED_EOF.into()),
                        }
                        self.json_ws();
                        let mut v = self.json_value(depth + 1)?;
                        v.origin.pos.col = key_col as u32;
                        m.insert(key, v);
                        self.json_ws();
                        match self.read() {
                            Some(',') => self.json_ws(),
                            Some('}') => break,
                            Some(c) => {
                                return Err(format!(
                                    "invalid character {} after object key:value pair",
                                    quote_char(c)
                                ))
                            }
                            None => return Err(UNEXPECTED_EOF.into()),
                        }
                    }
                }
                G::Map(m)
            }
            Some('[') => {
                if depth + 1 > MAX_JSON_DEPTH {
                    return Err("exceeded max depth".into());
                }
                self.p += 1;
                let mut items = Vec::new();
                self.json_ws();
                if self.peek() == Some(']') {
                    self.p += 1;
                } else {
                    loop {
                        items.push(self.json_value(depth + 1)?);
                        self.json_ws();
                        match self.read() {
                            Some(',') => self.json_ws(),
                            Some(']') => break,
                            Some(c) => {
                                return Err(format!(
                                    "invalid character {} after array element",
                                    quote_char(c)
                                ))
                            }
                            None => return Err(UNEXPECTED_EOF.into()),
                        }
                    }
                }
                G::List(items)
            }
            Some('"') => G::Str(self.json_string()?),
            Some('-' | '0'..='9') => G::Float(self.json_number()?),
            Some('t') => {
                self.json_literal("true")?;
                G::Bool(true)
            }
            Some('f') => {
                self.json_literal("false")?;
                G::Bool(false)
            }
            Some('n') => {
                self.json_literal("null")?;
                G::Nil
            }
            Some(c) => {
                return Err(format!(
                    "invalid character {} looking for beginning of value",
                    quote_char(c)
                ))
            }
        };
        Ok(self.node(v, col))
    }

    fn json_literal(&mut self, word: &str) -> Result<(), String> {
        for expected in word.chars() {
            match self.read() {
                Some(c) if c == expected => {}
                Some(c) => {
                    return Err(format!(
                        "invalid character {} in literal {word} (expecting {})",
                        quote_char(c),
                        quote_char(expected)
                    ))
                }
                None => return Err(UNEXPECTED_EOF.into()),
            }
        }
        Ok(())
    }

    fn json_digits(&mut self, after: &str) -> Result<(), String> {
        match self.read() {
            Some('0'..='9') => {}
            Some(c) => return Err(format!("invalid character {} {after}", quote_char(c))),
            None => return Err(UNEXPECTED_EOF.into()),
        }
        while matches!(self.peek(), Some('0'..='9')) {
            self.p += 1;
        }
        Ok(())
    }

    fn json_number(&mut self) -> Result<f64, String> {
        let start = self.p;
        if self.peek() == Some('-') {
            self.p += 1;
        }
        match self.read() {
            Some('0') => {}
            Some('1'..='9') => {
                while matches!(self.peek(), Some('0'..='9')) {
                    self.p += 1;
                }
            }
            Some(c) => {
                return Err(format!(
                    "invalid character {} in numeric literal",
                    quote_char(c)
                ))
            }
            None => return Err(UNEXPECTED_EOF.into()),
        }
        if self.peek() == Some('.') {
            self.p += 1;
            self.json_digits("after decimal point in numeric literal")?;
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            self.p += 1;
            if matches!(self.peek(), Some('+' | '-')) {
                self.p += 1;
            }
            self.json_digits("in exponent of numeric literal")?;
        }
        let text: String = self.s[start..self.p].iter().collect();
        match text.parse::<f64>() {
            Ok(f) if f.is_finite() => Ok(f),
            _ => Err(format!(
                "json: cannot unmarshal number {text} into Go value of type float64"
            )),
        }
    }

    fn json_hex4(&mut self) -> Result<u32, String> {
        let mut r = 0;
        for _ in 0..4 {
            match self.read() {
                Some(c) if c.is_ascii_hexdigit() => r = r * 16 + c.to_digit(16).unwrap(),
                Some(c) => {
                    return Err(format!(
                        "invalid character {} in \\u hexadecimal character escape",
                        quote_char(c)
                    ))
                }
                None => return Err(UNEXPECTED_EOF.into()),
            }
        }
        Ok(r)
    }

    /// A following `\uXXXX` low surrogate, consumed only when it pairs with `high`.
    fn json_low_surrogate(&mut self, high: u32) -> Option<char> {
        let s = self.s.get(self.p..self.p + 6)?;
        if s[0] != '\\' || s[1] != 'u' || !s[2..].iter().all(|c| c.is_ascii_hexdigit()) {
            return None;
        }
        let low = s[2..]
            .iter()
            .fold(0, |r, c| r * 16 + c.to_digit(16).unwrap());
        if !(0xD800..0xDC00).contains(&high) || !(0xDC00..0xE000).contains(&low) {
            return None;
        }
        self.p += 6;
        char::from_u32(0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00))
    }

    fn json_string(&mut self) -> Result<String, String> {
        self.p += 1; // the opening quote
        let mut out = String::new();
        loop {
            match self.read() {
                None => return Err(UNEXPECTED_EOF.into()),
                Some('"') => return Ok(out),
                Some('\\') => match self.read() {
                    Some(c @ ('"' | '\\' | '/')) => out.push(c),
                    Some('b') => out.push('\u{8}'),
                    Some('f') => out.push('\u{c}'),
                    Some('n') => out.push('\n'),
                    Some('r') => out.push('\r'),
                    Some('t') => out.push('\t'),
                    Some('u') => {
                        let r = self.json_hex4()?;
                        if (0xD800..0xE000).contains(&r) {
                            out.push(self.json_low_surrogate(r).unwrap_or('\u{FFFD}'));
                        } else {
                            out.push(char::from_u32(r).unwrap_or('\u{FFFD}'));
                        }
                    }
                    Some(c) => {
                        return Err(format!(
                            "invalid character {} in string escape code",
                            quote_char(c)
                        ))
                    }
                    None => return Err(UNEXPECTED_EOF.into()),
                },
                Some(c) if (c as u32) < 0x20 => {
                    return Err(format!(
                        "invalid character {} in string literal",
                        quote_char(c)
                    ))
                }
                Some(c) => out.push(c),
            }
        }
    }
}

const UNEXPECTED_EOF: &str = "unexpected EOF";

/// `set`: the empty key is never set.
fn set(data: &mut GMap, key: String, val: GN) {
    if !key.is_empty() {
        data.insert(key, val);
    }
}

/// `setIndex`: grows the list with nils up to `index`.
fn set_index(list: &mut Vec<GN>, index: i64, val: GN, col: usize) -> Result<(), PErr> {
    if index < 0 {
        return Err(fail(format!("negative {index} index not allowed"), col));
    }
    if index > MAX_INDEX {
        return Err(fail(
            format!("index of {index} is greater than maximum supported index of {MAX_INDEX}"),
            col,
        ));
    }
    let index = index as usize;
    if list.len() <= index {
        let pad = GN {
            v: G::Nil,
            origin: val.origin.clone(),
        };
        list.resize(index + 1, pad);
    }
    list[index] = val;
    Ok(())
}

/// `typedVal` without stringBool: true/false/null (any case), "0", base-10 int64 not starting
/// with `0`; everything else stays a string.
fn typed_val(val: String) -> G {
    if eq_fold(&val, "true") {
        return G::Bool(true);
    }
    if eq_fold(&val, "false") {
        return G::Bool(false);
    }
    if eq_fold(&val, "null") {
        return G::Nil;
    }
    if val == "0" {
        return G::Int(0);
    }
    if !val.is_empty() && !val.starts_with('0') {
        // strconv.ParseInt(val, 10, 64): optional sign, ASCII digits, int64 range.
        if let Ok(i) = val.parse::<i64>() {
            return G::Int(i);
        }
    }
    G::Str(val)
}

/// `strings.EqualFold` against an ASCII word: case-insensitive, and `ſ` (U+017F) folds to `s`.
fn eq_fold(s: &str, word: &str) -> bool {
    let mut a = s.chars();
    for w in word.chars() {
        match a.next() {
            Some(c) if c.to_ascii_lowercase() == w => {}
            Some('\u{17f}') if w == 's' => {}
            _ => return false,
        }
    }
    a.next().is_none()
}

/// `strconv.Atoi` with its error text.
fn go_atoi(s0: &str) -> Result<i64, String> {
    let syntax = || format!("strconv.Atoi: parsing {}: invalid syntax", go_quote(s0));
    let range = || format!("strconv.Atoi: parsing {}: value out of range", go_quote(s0));
    let (neg, digits) = match s0.as_bytes().first() {
        Some(b'-') => (true, &s0[1..]),
        Some(b'+') => (false, &s0[1..]),
        _ => (false, s0),
    };
    if digits.is_empty() {
        return Err(syntax());
    }
    let mut n: u64 = 0;
    for b in digits.bytes() {
        if !b.is_ascii_digit() {
            return Err(syntax());
        }
        // ParseUint reports the first problem in reading order.
        n = match n
            .checked_mul(10)
            .and_then(|n| n.checked_add(u64::from(b - b'0')))
        {
            Some(n) => n,
            None => return Err(range()),
        };
    }
    const CUTOFF: u64 = 1 << 63;
    if (!neg && n >= CUTOFF) || (neg && n > CUTOFF) {
        return Err(range());
    }
    Ok(if neg {
        (n as i64).wrapping_neg()
    } else {
        n as i64
    })
}

/// Go's `os.ReadFile` error text: `open <path>: no such file or directory`.
fn go_file_error(path: &str, e: &io::Error) -> String {
    let text = e.to_string();
    let text = match text.rfind(" (os error ") {
        Some(i) if text.ends_with(')') => &text[..i],
        _ => &text[..],
    };
    let mut chars = text.chars();
    let text = match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    };
    let op = if e.kind() == io::ErrorKind::IsADirectory {
        "read"
    } else {
        "open"
    };
    format!("{op} {path}: {text}")
}

/// `unicode.IsPrint`, approximated without Unicode tables: Go also escapes unassigned code
/// points, which are printed as-is here.
fn go_is_print(c: char) -> bool {
    if c == ' ' {
        return true;
    }
    if c.is_control() || c.is_whitespace() {
        return false;
    }
    !matches!(c as u32,
        0xAD | 0x600..=0x605 | 0x61C | 0x6DD | 0x70F | 0x180E | 0x200B..=0x200F
        | 0x202A..=0x202E | 0x2060..=0x206F | 0xFEFF | 0xFFF9..=0xFFFB | 0xFFFE | 0xFFFF
        | 0xE000..=0xF8FF | 0xF0000..=0x10FFFF)
}

fn go_escape(out: &mut String, c: char, quote: char) {
    if c == quote || c == '\\' {
        out.push('\\');
        out.push(c);
        return;
    }
    if go_is_print(c) {
        out.push(c);
        return;
    }
    match c {
        '\u{7}' => out.push_str("\\a"),
        '\u{8}' => out.push_str("\\b"),
        '\u{c}' => out.push_str("\\f"),
        '\n' => out.push_str("\\n"),
        '\r' => out.push_str("\\r"),
        '\t' => out.push_str("\\t"),
        '\u{b}' => out.push_str("\\v"),
        c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\x{:02x}", c as u32)),
        c if (c as u32) < 0x10000 => out.push_str(&format!("\\u{:04x}", c as u32)),
        c => out.push_str(&format!("\\U{:08x}", c as u32)),
    }
}

/// `%q` of a string (`strconv.Quote`).
fn go_quote(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        go_escape(&mut out, c, '"');
    }
    out.push('"');
    out
}

/// `%q` of a `[]rune`: each rune `strconv.QuoteRune`d, space-separated, in brackets.
fn go_quote_runes(s: &str) -> String {
    let items: Vec<String> = s
        .chars()
        .map(|c| {
            let mut q = String::from("'");
            go_escape(&mut q, c, '\'');
            q.push('\'');
            q
        })
        .collect();
    format!("[{}]", items.join(" "))
}

/// encoding/json's `quoteChar`.
fn quote_char(c: char) -> String {
    match c {
        '\'' => "'\\''".into(),
        '"' => "'\"'".into(),
        c => {
            let q = go_quote(&c.to_string());
            format!("'{}'", &q[1..q.len() - 1])
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base(yaml: &str) -> Map {
        let doc = crate::yaml::parse_values(&Arc::from("base.yaml"), yaml).unwrap();
        match doc.root.value {
            Value::Map(m) => m,
            _ => unreachable!(),
        }
    }

    fn files(path: &str) -> io::Result<String> {
        match path {
            "f1.txt" => Ok("one\n".into()),
            "f2.txt" => Ok("true".into()),
            "empty.txt" => Ok(String::new()),
            _ => Err(io::Error::from_raw_os_error(2)),
        }
    }

    fn run_on(b: &str, args: &[(SetKind, &str)]) -> Result<serde_json::Value, SetError> {
        let mut m = base(b);
        let args: Vec<SetArg> = args
            .iter()
            .map(|(kind, text)| SetArg {
                kind: *kind,
                text: text.to_string(),
            })
            .collect();
        apply(&mut m, &args, &files)?;
        Ok(Value::Map(m).to_json())
    }

    fn ok(kind: SetKind, text: &str) -> serde_json::Value {
        run_on("", &[(kind, text)]).unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn set(text: &str) -> serde_json::Value {
        ok(SetKind::Set, text)
    }

    fn err(kind: SetKind, b: &str, text: &str) -> SetError {
        match run_on(b, &[(kind, text)]) {
            Ok(v) => panic!("{text}: expected an error, got {v}"),
            Err(e) => e,
        }
    }

    fn set_err(text: &str) -> String {
        err(SetKind::Set, "", text).message
    }

    #[test]
    fn typing_of_set_values() {
        assert_eq!(
            set("a=1,b=true,c=FALSE,d=null,e=0,f=1.5,g=00009,h=1e3,i=-5,j=+7,k=abc,l=NuLL,m=-0"),
            json!({"a": 1, "b": true, "c": false, "d": null, "e": 0, "f": "1.5", "g": "00009",
                   "h": "1e3", "i": -5, "j": 7, "k": "abc", "l": null, "m": 0})
        );
        assert_eq!(
            set("a=9223372036854775807,b=9223372036854775808,c=0x1F,d=1_000,e=-"),
            json!({"a": 9223372036854775807.0f64, "b": "9223372036854775808", "c": "0x1F",
                   "d": "1_000", "e": "-"})
        );
        // strings.EqualFold: the long s folds to s.
        assert_eq!(set("a=fal\u{17f}e"), json!({"a": false}));
        assert_eq!(
            set("a=yes,b=on,c= 1"),
            json!({"a": "yes", "b": "on", "c": " 1"})
        );
    }

    #[test]
    fn int_and_float_kept_apart_while_parsing() {
        assert_eq!(typed_val("12".into()), G::Int(12));
        assert_eq!(typed_val("0".into()), G::Int(0));
        assert_eq!(typed_val("".into()), G::Str(String::new()));
    }

    #[test]
    fn empty_values_and_separators() {
        assert_eq!(set("a="), json!({"a": ""}));
        assert_eq!(set("a=,b=1"), json!({"a": "", "b": 1}));
        assert_eq!(set("a=1,"), json!({"a": 1}));
        assert_eq!(set(""), json!({}));
        assert_eq!(set_err("a"), r#"key "a" has no value"#);
        assert_eq!(set_err("a=1,b"), r#"key "b" has no value"#);
        assert_eq!(set_err("a,"), r#"key "a" has no value (cannot end with ,)"#);
        assert_eq!(
            set_err("a,b=1"),
            r#"key "a" has no value (cannot end with ,)"#
        );
        assert_eq!(
            set_err("a=1,,"),
            r#"key "" has no value (cannot end with ,)"#
        );
    }

    #[test]
    fn escapes() {
        assert_eq!(set(r"a\.b=1"), json!({"a.b": 1}));
        assert_eq!(set(r"a=x\,y,b=\{1\}"), json!({"a": "x,y", "b": "{1}"}));
        assert_eq!(set(r"a\[0\]=1"), json!({"a[0]": 1}));
        assert_eq!(set(r"a\=b=c"), json!({"a=b": "c"}));
        // A trailing backslash is dropped.
        assert_eq!(set(r"a=1\"), json!({"a": 1}));
        assert_eq!(set_err(r"a\"), r#"key "a" has no value"#);
    }

    #[test]
    fn lists_in_braces() {
        assert_eq!(
            set("a={x,1,true,null},b=2"),
            json!({"a": ["x", 1, true, null], "b": 2})
        );
        assert_eq!(set("a={}"), json!({"a": [""]}));
        assert_eq!(set("a={,}"), json!({"a": ["", ""]}));
        assert_eq!(set("a=x{1}"), json!({"a": "x{1}"}));
        assert_eq!(set_err("a={x"), "list must terminate with '}'");
        assert_eq!(set_err("a={x,y}z"), r#"key "z" has no value"#);
        assert_eq!(set("a={x}b=1"), json!({"a": ["x"], "b": 1}));
    }

    #[test]
    fn indexes() {
        assert_eq!(set("a[1]=x"), json!({"a": [null, "x"]}));
        assert_eq!(set("a[0]=x,a[2]=y"), json!({"a": ["x", null, "y"]}));
        assert_eq!(
            set("a[1].b=y,a[0].c=z"),
            json!({"a": [{"c": "z"}, {"b": "y"}]})
        );
        assert_eq!(set("a[0][1]=1"), json!({"a": [[null, 1]]}));
        assert_eq!(set("a[+1]=x"), json!({"a": [null, "x"]}));
        assert_eq!(set("a[0]={1,2}"), json!({"a": [[1, 2]]}));
        assert_eq!(set("a[0]="), json!({"a": [""]}));
        // Ends without a value: Helm keeps what it has built so far and reports nothing.
        assert_eq!(set("a[0]"), json!({"a": []}));
        assert_eq!(set("a[0][1]"), json!({"a": []}));
        assert_eq!(set("a[0].b="), json!({"a": []}));
        assert_eq!(set("a[0]."), json!({"a": []}));
        assert_eq!(set("a[0].=1"), json!({"a": [{}]}));
        assert_eq!(set("a.b[0]"), json!({"a": {"b": []}}));
        assert_eq!(set_err("a[-1]=x"), "negative -1 index not allowed");
        assert_eq!(
            set_err("a[65537]=x"),
            "index of 65537 is greater than maximum supported index of 65536"
        );
        assert_eq!(set("a[65536]=x")["a"].as_array().unwrap().len(), 65537);
        // The limit is checked when the value is stored, after the rest is read.
        assert_eq!(set("a[70000]."), json!({"a": []}));
        assert_eq!(
            set_err("a[x]=1"),
            r#"error parsing index: strconv.Atoi: parsing "x": invalid syntax"#
        );
        assert_eq!(
            set_err("a[ 1]=1"),
            r#"error parsing index: strconv.Atoi: parsing " 1": invalid syntax"#
        );
        assert_eq!(
            set_err("a[99999999999999999999]=1"),
            r#"error parsing index: strconv.Atoi: parsing "99999999999999999999": value out of range"#
        );
        assert_eq!(
            set_err("a[]=1"),
            r#"error parsing index: strconv.Atoi: parsing "": invalid syntax"#
        );
        assert_eq!(set_err("a[0"), "error parsing index: EOF");
        assert_eq!(
            set_err("a[0]x=1"),
            "unexpected data at end of array index: ['x']"
        );
        assert_eq!(
            set_err("a[0],b=1"),
            "unexpected data at end of array index: [',' 'b']"
        );
        // An empty key is never stored.
        assert_eq!(set("[0]=1,b=2"), json!({"b": 2}));
    }

    #[test]
    fn nesting() {
        assert_eq!(set("a.b.c=1,a.d=2"), json!({"a": {"b": {"c": 1}, "d": 2}}));
        let thirty = (0..31)
            .map(|i| format!("k{i}"))
            .collect::<Vec<_>>()
            .join(".");
        assert!(set(&format!("{thirty}=1")).is_object());
        let thirty_one = format!("k.{thirty}=1");
        assert_eq!(
            set_err(&thirty_one),
            "value name nested level is greater than maximum supported nested level of 30"
        );
        assert_eq!(set("a."), json!({}));
        assert_eq!(set(".a=1"), json!({}));
        assert_eq!(set_err("a.=1"), r#"key map "a" has no value"#);
        assert_eq!(set_err("a.b"), r#"key "b" has no value"#);
        assert_eq!(
            set_err("a.,b=1"),
            r#"key "" has no value (cannot end with ,)"#
        );
        assert_eq!(set("a.b="), json!({"a": {"b": ""}}));
    }

    #[test]
    fn merging_into_base() {
        let b = "a: {x: 1, l: [1, {m: 2}]}\nnn: ~\ns: str\n";
        assert_eq!(
            run_on(b, &[(SetKind::Set, "a.y=2,a.l[1].k=3,a.l[3]=4")]).unwrap(),
            json!({"a": {"x": 1, "y": 2, "l": [1, {"m": 2, "k": 3}, null, 4]}, "nn": null, "s": "str"})
        );
        // Indexing into an existing list element that is not a map replaces it.
        assert_eq!(
            run_on(b, &[(SetKind::Set, "a.l[0].k=3")]).unwrap()["a"]["l"],
            json!([{"k": 3}, {"m": 2}])
        );
        // Nested lists already there are filled in place.
        assert_eq!(
            run_on("l: [[1]]\n", &[(SetKind::Set, "l[0][2]=3")]).unwrap(),
            json!({"l": [[1, null, 3]]})
        );
        // A value ending early still leaves what was changed in place.
        assert_eq!(
            run_on("l: [{x: 1}]\n", &[(SetKind::Set, "l[0].b=")]).unwrap(),
            json!({"l": [{"x": 1, "b": ""}]})
        );
        // Replacing whole values of any type.
        assert_eq!(
            run_on(b, &[(SetKind::Set, "a=1,nn={1},s=2")]).unwrap(),
            json!({"a": 1, "nn": [1], "s": 2})
        );
    }

    #[test]
    fn crossing_a_scalar_or_a_list_is_a_go_panic() {
        let cases = [
            ("a: 1\n", "a.b=2", "float64, not map[string]interface {}"),
            ("a: x\n", "a.b=2", "string, not map[string]interface {}"),
            ("a: true\n", "a.b=2", "bool, not map[string]interface {}"),
            (
                "a: [1]\n",
                "a.b=2",
                "[]interface {}, not map[string]interface {}",
            ),
            (
                "a: {b: 1}\n",
                "a[0]=2",
                "map[string]interface {}, not []interface {}",
            ),
            ("a: 1\n", "a[0]=2", "float64, not []interface {}"),
            ("a: [1]\n", "a[0][0]=2", "float64, not []interface {}"),
            ("", "a=1,a.b=2", "int64, not map[string]interface {}"),
            ("", "a=x,a[0]=2", "string, not []interface {}"),
            (
                "x: {a: 1}\n",
                "x.a.b=2",
                "float64, not map[string]interface {}",
            ),
        ];
        for (b, text, tail) in cases {
            let e = err(SetKind::Set, b, text);
            assert_eq!(
                e.message,
                format!("unable to parse key: interface conversion: interface {{}} is {tail}"),
                "{text}"
            );
        }
        let e = err(SetKind::Set, "a: ~\n", "a.b=1");
        assert_eq!(
            e.message,
            "unable to parse key: interface conversion: interface {} is nil, not map[string]interface {}"
        );
        let e = err(SetKind::Set, "", "a=null,a[0]=1");
        assert!(e.message.ends_with("is nil, not []interface {}"));
        // A nil list element is not a list yet: no panic.
        assert_eq!(
            run_on("a: [~]\n", &[(SetKind::Set, "a[0][0]=1")]).unwrap(),
            json!({"a": [[1]]})
        );
    }

    #[test]
    fn set_string() {
        assert_eq!(
            ok(SetKind::String, "a=1,b=true,c=null,d={1,x},e=,f=0"),
            json!({"a": "1", "b": "true", "c": "null", "d": ["1", "x"], "e": "", "f": "0"})
        );
        assert_eq!(ok(SetKind::String, "a[1]=2"), json!({"a": [null, "2"]}));
    }

    #[test]
    fn set_file() {
        assert_eq!(
            ok(
                SetKind::File,
                "a=f1.txt,b=f2.txt,c=empty.txt,e={f1.txt,f2.txt},g[1]=f2.txt,d="
            ),
            json!({"a": "one\n", "b": "true", "c": "", "d": "", "e": ["one\n", "true"],
                   "g": [null, "true"]})
        );
        let e = err(SetKind::File, "", "a=nofile.txt");
        assert_eq!(e.message, "open nofile.txt: no such file or directory");
        assert_eq!(
            e.helm_message(),
            "failed parsing --set-file data: open nofile.txt: no such file or directory"
        );
        assert_eq!(
            err(SetKind::File, "", "a=,b=f1.txt,c=,").message,
            "open : no such file or directory"
        );
    }

    #[test]
    fn set_json() {
        let j = |t| ok(SetKind::Json, t);
        assert_eq!(
            j(r#"a={"b":[1,2.5,{"c":null}],"d":"x"},e=1"#),
            json!({"a": {"b": [1, 2.5, {"c": null}], "d": "x"}, "e": 1})
        );
        assert_eq!(j("a="), json!({"a": null}));
        assert_eq!(j("a= ,b=true"), json!({"a": null, "b": true}));
        assert_eq!(j("a=null"), json!({"a": null}));
        assert_eq!(j(r#"a="x\u00e9\ud83d\ude00""#), json!({"a": "xé😀"}));
        assert_eq!(j(r#"a="\ud800x""#), json!({"a": "\u{FFFD}x"}));
        // One JSON value at a time; whatever follows starts the next key.
        assert_eq!(j("a=1 b=2"), json!({"a": 1, "b": 2}));
        assert_eq!(j("a=truex=1"), json!({"a": true, "x": 1}));
        assert_eq!(j(r#"a="s"b=[]"#), json!({"a": "s", "b": []}));
        // Blanks after a value are skipped up to the comma, not after it.
        assert_eq!(j("a=[1] , b=2"), json!({"a": [1], " b": 2}));
        assert_eq!(j("a[1]={\"x\":1}"), json!({"a": [null, {"x": 1}]}));
        assert_eq!(j("a[0]="), json!({"a": [null]}));
        assert_eq!(j("a.b=1e2"), json!({"a": {"b": 100}}));
        assert_eq!(j("a=-0.5e-1"), json!({"a": -0.05}));
        assert_eq!(
            err(SetKind::Json, "", "a=01").message,
            r#"key "1" has no value"#
        );
        for bad in [
            "a=[1,]",
            "a={\"x\":1,}",
            "a=tru",
            "a=1.",
            "a=-",
            "a=1e400",
            "a=\"x",
            "a=\"\t\"",
            "a=[1 2]",
            "a={1:2}",
            "a='x'",
            "a=x",
        ] {
            let e = err(SetKind::Json, "", bad);
            assert_eq!(
                e.helm_message(),
                format!("failed parsing --set-json data {bad}")
            );
        }
        // No whole-object form in v3.21.4: `{...}` is a key without a value.
        assert_eq!(
            err(SetKind::Json, "", r#"{"a":1}"#).message,
            r#"key "{\"a\":1}" has no value"#
        );
        let deep = |n: usize| format!("a={}{}", "[".repeat(n), "]".repeat(n));
        assert!(run_on("", &[(SetKind::Json, &deep(1000))]).is_ok());
        assert!(run_on("", &[(SetKind::Json, &deep(10001))]).is_err());
    }

    #[test]
    fn set_literal() {
        let l = |t| ok(SetKind::Literal, t);
        assert_eq!(l("a=x,b=y"), json!({"a": "x,b=y"}));
        assert_eq!(l("a=null"), json!({"a": "null"}));
        assert_eq!(l("a={1,2}"), json!({"a": "{1,2}"}));
        assert_eq!(l(r"a\.b=1"), json!({"a\\": {"b": "1"}}));
        assert_eq!(l("a.b[1]=x=y"), json!({"a": {"b": [null, "x=y"]}}));
        assert_eq!(l("a,b=c"), json!({"a,b": "c"}));
        assert_eq!(l("a="), json!({"a": ""}));
        assert_eq!(
            err(SetKind::Literal, "", "a.b").message,
            r#"key "b" has no value"#
        );
        assert_eq!(
            err(SetKind::Literal, "", "a[0]x=1").message,
            "unexpected data at end of array index: ['x']"
        );
    }

    #[test]
    fn helm_order_regardless_of_position() {
        let args = [
            (SetKind::Literal, "a=lit"),
            (SetKind::File, "a=f1.txt"),
            (SetKind::String, "a=str"),
            (SetKind::Set, "a=1"),
            (SetKind::Json, "a=[1]"),
        ];
        assert_eq!(run_on("", &args).unwrap(), json!({"a": "lit"}));
        assert_eq!(run_on("", &args[1..]).unwrap(), json!({"a": "one\n"}));
        assert_eq!(run_on("", &args[2..]).unwrap(), json!({"a": "str"}));
        assert_eq!(run_on("", &args[3..]).unwrap(), json!({"a": 1}));
        // Within one kind, in the order given.
        assert_eq!(
            run_on("", &[(SetKind::Set, "a=1"), (SetKind::Set, "a=2")]).unwrap(),
            json!({"a": 2})
        );
        // The JSON list is there before --set indexes into it.
        assert_eq!(
            run_on("", &[(SetKind::Set, "a[1]=2"), (SetKind::Json, "a=[1]")]).unwrap(),
            json!({"a": [1, 2]})
        );
    }

    #[test]
    fn errors_point_at_the_key_and_leave_base_alone() {
        let e = err(SetKind::Set, "", "x=1,yy");
        assert_eq!((e.flag, e.col, e.arg.as_str()), ("--set", 5, "x=1,yy"));
        assert_eq!(
            e.helm_message(),
            r#"failed parsing --set data: key "yy" has no value"#
        );
        assert_eq!(err(SetKind::Set, "", "a.b.c").col, 5);
        assert_eq!(err(SetKind::Set, "", "a[0]x=1").col, 2);
        assert_eq!(
            err(SetKind::String, "", r#"a"b"#).message,
            r#"key "a\"b" has no value"#
        );
        assert_eq!(
            err(SetKind::String, "", "a\tb").message,
            r#"key "a\tb" has no value"#
        );
        assert_eq!(
            err(SetKind::String, "", "é\u{1}").message,
            r#"key "é\x01" has no value"#
        );
        let mut m = base("a: 1\n");
        let before = m.clone();
        let args = [SetArg {
            kind: SetKind::Set,
            text: "b=2,c".into(),
        }];
        assert!(apply(&mut m, &args, &files).is_err());
        assert_eq!(m, before);
    }

    #[test]
    fn origins() {
        let mut m = base("keep: 1\n");
        let args = [
            SetArg {
                kind: SetKind::Set,
                text: "x=1,a.b[2]=z".into(),
            },
            SetArg {
                kind: SetKind::Json,
                text: r#"j={"k":[1]}"#.into(),
            },
        ];
        apply(&mut m, &args, &files).unwrap();
        let at = |n: &Node| {
            (
                n.origin.file.to_string(),
                n.origin.pos.line,
                n.origin.pos.col,
            )
        };
        assert_eq!(at(&m["keep"]), ("base.yaml".into(), 1, 1));
        assert_eq!(at(&m["x"]), ("(--set)".into(), 1, 1));
        assert_eq!(at(&m["a"]), ("(--set)".into(), 1, 5));
        let Value::Map(a) = &m["a"].value else {
            panic!()
        };
        assert_eq!(at(&a["b"]), ("(--set)".into(), 1, 7));
        let Value::Seq(items) = &a["b"].value else {
            panic!()
        };
        assert_eq!(at(&items[2]), ("(--set)".into(), 1, 8));
        assert_eq!(at(&items[0]), ("(--set)".into(), 1, 8));
        assert_eq!(at(&m["j"]), ("(--set-json)".into(), 1, 1));
        let Value::Map(j) = &m["j"].value else {
            panic!()
        };
        assert_eq!(at(&j["k"]), ("(--set-json)".into(), 1, 4));
    }

    #[test]
    fn deep_nesting_does_not_overflow() {
        // Go's stack grows; deeply nested arguments run on a big stack here. The results are
        // walked without recursion and leaked: printing or dropping them recursively would
        // overflow this test thread, not `apply`.
        let deep = |kind: SetKind, text: String| {
            let mut m = Map::new();
            apply(&mut m, &[SetArg { kind, text }], &files).unwrap();
            let mut cur = &m["a"].value;
            let mut depth = 0;
            while let Value::Seq(items) = cur {
                depth += 1;
                cur = match items.first() {
                    Some(n) => &n.value,
                    None => break,
                };
            }
            let leaf = format!("{cur:?}");
            std::mem::forget(m);
            (depth, leaf)
        };
        assert_eq!(
            deep(SetKind::Set, format!("a{}=1", "[0]".repeat(40_000))),
            (40_000, "Number(1.0)".into())
        );
        assert_eq!(
            deep(
                SetKind::Json,
                format!("a={}{}", "[".repeat(10_000), "]".repeat(10_000))
            ),
            (10_000, "Seq([])".into())
        );
        assert_eq!(
            deep(SetKind::Literal, format!("a{}=x", "[0]".repeat(20_000))),
            (20_000, "Str(\"x\")".into())
        );
        let mut m = Map::new();
        let text = format!("{}=1", "x[0].".repeat(20_000) + "y");
        apply(
            &mut m,
            &[SetArg {
                kind: SetKind::Set,
                text,
            }],
            &files,
        )
        .unwrap();
        std::mem::forget(m);
        // Files are still read (on the calling thread).
        let text = format!("a{}=f1.txt", "[0]".repeat(1000));
        assert!(ok(SetKind::File, &text).to_string().contains("one"));
    }

    #[test]
    fn quoting_like_go() {
        assert_eq!(go_quote("a\"b\\c"), r#""a\"b\\c""#);
        assert_eq!(
            go_quote("\u{7f}\u{a0}\u{1F600}\u{10FFFF}"),
            r#""\x7f\u00a0😀\U0010ffff""#
        );
        assert_eq!(go_quote_runes("'\""), r#"['\'' '"']"#);
        assert_eq!(go_atoi("-9223372036854775808"), Ok(i64::MIN));
        assert!(go_atoi("9223372036854775808")
            .unwrap_err()
            .ends_with("value out of range"));
        assert!(go_atoi("+").unwrap_err().ends_with("invalid syntax"));
    }
}
