//! The abstract interpreter: runs every template over abstract values and records the values
//! paths they read.
//!
//! Modelled:
//! - dot and `$`: a file runs with its chart's root (`.Values` is the chart's prefix); `with`
//!   sets dot to its value (its else branch keeps the old dot); `range` sets dot and `$v` to an
//!   element (`.Values.p` → `p.*`, which is recorded), `$k` is unknown; a define body runs with
//!   dot = `$` = the argument of `include`/`template`/`block`. Variables are block-scoped; `$x =`
//!   joins the old and new values (either may reach later uses).
//! - values-preserving functions: `default`, `coalesce`, `or`, `and`, `ternary`, `required`,
//!   `first`/`last`, `rest`/`initial`, and string/number conversions (`funcs::Class::Propagate`).
//! - maps: `dict`, `set`/`unset` (also updating the variable passed), `merge*` (consumes values
//!   paths whole, keeps dicts and chart roots readable), `list`/`tuple`; `index`/`get`/`pluck`/
//!   `dig`/`hasKey` with literal keys (or variables holding literals) read the path, any other key
//!   records a [`Dynamic`] and consumes the prefix whole.
//! - `include`/`template`/`block`: the named define runs with the abstract argument, memoized by
//!   (define, argument) and bounded in depth; `include` returns the define's value when its body
//!   is a single action (`{{- .Chart.AppVersion -}}`), else an unknown string.
//! - `tpl X ctx`: X is consumed whole (value strings are scanned separately by `run`).
//! - image-tag fallbacks: `default`/`coalesce`/`or`/`ternary`/`dig` with a pinned alternative
//!   (`.Chart.AppVersion`, `.Chart.Version`, a literal other than `latest`; `printf` of one),
//!   and actions evaluating a pinned value inside a branch taken when a path is empty (`if not
//!   P`, `if empty P`, `if eq P ""`, else of `if P`/`with P`, through `and`/`or`/`not`).
//!
//! Deliberately not modelled: text between actions; `tpl` of a literal string; `include` with a
//! computed name (ignored); the function-defined and variable-defined checks Go makes at parse
//! time (a file Helm rejects for those is scanned anyway); loops are evaluated once (no fixpoint
//! for variables reassigned in a loop body); `.Files`, `.Release`, `.Capabilities`, `.Template`
//! are unknown values.

use super::funcs::{class, Class};
use super::lex::{lex, Kind, Tok};
use super::parse::{parse_tokens, Arg, Cmd, Control, Node, Parsed, Pipe};
use super::refs::{Dynamic, Fallback, FallbackKind, Refs, Unreadable, ANY};
use super::ChartTemplates;
use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};

/// A path segment: borrowed from a template or a chart prefix, owned only for escaped literals.
type Seg<'a> = Cow<'a, str>;
type Path<'a> = Vec<Seg<'a>>;

fn owned(path: &[Seg<'_>]) -> Vec<String> {
    path.iter().map(|s| s.to_string()).collect()
}

fn borrowed(prefix: &[String]) -> Path<'_> {
    prefix.iter().map(|s| Cow::Borrowed(s.as_str())).collect()
}

/// Includes nested deeper than this return an unknown value (recursive helpers).
const MAX_DEPTH: u32 = 48;

/// An abstract value.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum Val<'a> {
    Unknown,
    /// A chart's top context; the prefix of its values.
    Root(Path<'a>),
    /// A values path (may hold `*`).
    Values(Path<'a>),
    Dict(BTreeMap<Seg<'a>, Val<'a>>),
    List(Vec<Val<'a>>),
    /// Any of these (never nested, never holding Unknown, sorted).
    Union(Vec<Val<'a>>),
    /// `.Chart`
    Chart,
    /// `.Chart.AppVersion`
    AppVersion,
    /// `.Chart.Version`
    ChartVersion,
    Lit(Cow<'a, str>),
}

fn union<'a>(vals: impl IntoIterator<Item = Val<'a>>) -> Val<'a> {
    let mut out = Vec::new();
    for v in vals {
        match v {
            Val::Union(vs) => out.extend(vs),
            Val::Unknown => {}
            v => out.push(v),
        }
    }
    out.sort();
    out.dedup();
    match out.len() {
        0 => Val::Unknown,
        1 => out.pop().unwrap_or(Val::Unknown),
        _ => Val::Union(out),
    }
}

/// The values paths a value may be.
fn paths<'a>(v: &Val<'a>) -> Vec<Path<'a>> {
    match v {
        Val::Values(p) => vec![p.clone()],
        Val::Union(vs) => vs.iter().flat_map(paths).collect(),
        _ => Vec::new(),
    }
}

/// A value that is a pinned version whatever the values say.
fn pinned(v: &Val<'_>) -> Option<FallbackKind> {
    match v {
        Val::AppVersion => Some(FallbackKind::AppVersion),
        Val::ChartVersion => Some(FallbackKind::ChartVersion),
        Val::Lit(s) if !s.trim().is_empty() && s.trim() != "latest" => {
            Some(FallbackKind::Literal(s.to_string()))
        }
        Val::Union(vs) => {
            // Pinned only if every alternative is (the first one found is reported).
            let mut kinds = vs.iter().map(pinned);
            let first = kinds.next()??;
            kinds.all(|k| k.is_some()).then_some(first)
        }
        _ => None,
    }
}

/// Where a define sits in Helm's parse order: (path segments, file name); the smallest wins.
type Rank = (usize, String);

/// One file or value string to interpret.
struct Unit<'a> {
    name: String,
    text: &'a str,
    parsed: Parsed<'a>,
    /// Chart prefixes whose root runs the top level (none for `_helpers.tpl`-like files).
    roots: Vec<Path<'a>>,
}

struct Program<'a> {
    units: Vec<Unit<'a>>,
    /// Template name → (unit, define index).
    defines: HashMap<String, (usize, usize)>,
}

pub(super) fn run(charts: &[ChartTemplates], value_strings: &[(Vec<String>, String)]) -> Refs {
    let chart_prefixes: Vec<&[String]> = charts.iter().map(|c| c.prefix.as_slice()).collect();
    let mut eval = Eval {
        refs: Refs::default(),
        chart_prefixes: chart_prefixes.clone(),
        seen_dynamic: HashSet::new(),
        memo: HashMap::new(),
        depth: 0,
    };
    let mut units = Vec::new();
    // Helm parses deeper paths first and lets a later define replace an earlier one.
    let mut winners: HashMap<String, (Rank, (usize, usize))> = HashMap::new();
    for chart in charts {
        for file in &chart.files {
            let base = file.name.rsplit('/').next().unwrap_or(&file.name);
            let roots = if base.starts_with('_') {
                Vec::new()
            } else {
                vec![borrowed(&chart.prefix)]
            };
            let Some(parsed) = eval.read(&file.name, &file.text, &[borrowed(&chart.prefix)], false)
            else {
                continue;
            };
            let unit = units.len();
            for (i, d) in parsed.defines.iter().enumerate() {
                let rank = (file.name.matches('/').count(), file.name.clone());
                match winners.get(&d.name) {
                    Some((best, _)) if *best < rank => {}
                    _ => {
                        winners.insert(d.name.clone(), (rank, (unit, i)));
                    }
                }
            }
            units.push(Unit {
                name: file.name.clone(),
                text: &file.text,
                parsed,
                roots,
            });
        }
    }
    for (path, text) in value_strings {
        let mut roots = vec![Vec::new()];
        if let Some(sub) = chart_prefixes
            .iter()
            .filter(|p| p.len() < path.len() && path.starts_with(p))
            .max_by_key(|p| p.len())
            .filter(|p| !p.is_empty())
        {
            roots.push(borrowed(sub));
        }
        let name = format!("values: {}", path.join("."));
        if let Some(mut parsed) = eval.read(&name, text, &roots, true) {
            parsed.defines.clear(); // `tpl` keeps them local to the string
            units.push(Unit {
                name,
                text,
                parsed,
                roots,
            });
        }
    }
    let prog = Program {
        units,
        defines: winners.into_iter().map(|(k, (_, at))| (k, at)).collect(),
    };
    for (i, unit) in prog.units.iter().enumerate() {
        for root in &unit.roots {
            let root = Val::Root(root.clone());
            let mut fr = Frame {
                unit: i,
                root: root.clone(),
                vars: Vec::new(),
                empties: Vec::new(),
            };
            eval.walk(&prog, &mut fr, &root, &unit.parsed.nodes);
        }
    }
    eval.refs
}

/// The state of one template execution.
struct Frame<'a> {
    unit: usize,
    /// `$`
    root: Val<'a>,
    vars: Vec<(&'a str, Val<'a>)>,
    /// Paths known to be empty in the branch being walked (for image-tag fallbacks).
    empties: Vec<Path<'a>>,
}

/// What a condition being true or false says about values paths.
#[derive(Default)]
struct Facts<'a> {
    empty_if_true: Vec<Path<'a>>,
    empty_if_false: Vec<Path<'a>>,
}

impl<'a> Facts<'a> {
    fn of_value(v: &Val<'a>) -> Facts<'a> {
        Facts {
            empty_if_true: Vec::new(),
            empty_if_false: paths(v),
        }
    }

    fn negate(self) -> Facts<'a> {
        Facts {
            empty_if_true: self.empty_if_false,
            empty_if_false: self.empty_if_true,
        }
    }
}

struct Eval<'a> {
    refs: Refs,
    chart_prefixes: Vec<&'a [String]>,
    seen_dynamic: HashSet<Vec<String>>,
    memo: HashMap<(usize, usize, Val<'a>), Val<'a>>,
    depth: u32,
}

impl<'a> Eval<'a> {
    /// Parses a file; on failure records it and consumes the `.Values` chains it could lex.
    fn read(
        &mut self,
        name: &str,
        text: &'a str,
        prefixes: &[Path<'a>],
        value_string: bool,
    ) -> Option<Parsed<'a>> {
        let toks = lex(text);
        match parse_tokens(&toks) {
            Ok(parsed) => Some(parsed),
            Err(e) => {
                self.refs.unreadable.push(Unreadable {
                    file: name.to_owned(),
                    line: e.line,
                    message: e.message,
                    value_string,
                });
                for chain in lexed_values_chains(&toks) {
                    for prefix in prefixes {
                        let mut p = prefix.clone();
                        p.extend(chain.iter().map(|s| Cow::Borrowed(*s)));
                        self.whole(&p);
                    }
                }
                None
            }
        }
    }

    /// For a chart's `global` (which Helm copies down from the top): the top chart's path too.
    fn global_alias<'p>(&self, path: &'p [Seg<'a>]) -> Option<&'p [Seg<'a>]> {
        self.chart_prefixes
            .iter()
            .find(|c| {
                !c.is_empty()
                    && path.len() > c.len()
                    && path[c.len()] == "global"
                    && c.iter().zip(path).all(|(a, b)| a == b)
            })
            .map(|c| &path[c.len()..])
    }

    fn aliases(&self, path: &[Seg<'a>]) -> Vec<Vec<String>> {
        let mut out = vec![owned(path)];
        out.extend(self.global_alias(path).map(owned));
        out
    }

    fn refer(&mut self, path: &[Seg<'a>]) {
        self.refs.refer(path);
        if let Some(top) = self.global_alias(path) {
            self.refs.refer(top);
        }
    }

    fn whole(&mut self, path: &[Seg<'a>]) {
        self.refs.mark_whole(path);
        if let Some(top) = self.global_alias(path) {
            self.refs.mark_whole(top);
        }
    }

    fn fallback(
        &mut self,
        prog: &Program<'a>,
        fr: &Frame<'a>,
        line: u32,
        path: &[Seg<'a>],
        kind: FallbackKind,
    ) {
        for p in self.aliases(path) {
            if !self.refs.fallbacks.iter().any(|(q, _)| *q == p) {
                let file = prog.units[fr.unit].name.clone();
                self.refs.fallbacks.push((
                    p,
                    Fallback {
                        kind: kind.clone(),
                        file,
                        line,
                    },
                ));
            }
        }
    }

    /// `value` falls back to `alt` when empty: a fallback if `alt` is pinned.
    fn note_fallback(
        &mut self,
        prog: &Program<'a>,
        fr: &Frame<'a>,
        c: &Cmd<'a>,
        value: &Val<'a>,
        alt: &Val<'a>,
    ) {
        if let Some(kind) = pinned(alt) {
            for p in paths(value) {
                self.fallback(prog, fr, c.line, &p, kind.clone());
            }
        }
    }

    /// An action evaluating a pinned value in a branch where some paths are empty.
    fn branch_fallback(&mut self, prog: &Program<'a>, fr: &Frame<'a>, line: u32, v: &Val<'a>) {
        if fr.empties.is_empty() {
            return;
        }
        if let Some(kind) = pinned(v) {
            for p in fr.empties.clone() {
                self.fallback(prog, fr, line, &p, kind.clone());
            }
        }
    }

    /// Values consumed whole; a chart root counts only when `roots` (serializers).
    fn consume(&mut self, v: &Val<'a>, roots: bool) {
        match v {
            Val::Values(p) => self.whole(p),
            Val::Root(p) if roots => self.whole(p),
            Val::Dict(m) => m.values().for_each(|v| self.consume(v, roots)),
            Val::List(vs) | Val::Union(vs) => vs.iter().for_each(|v| self.consume(v, roots)),
            _ => {}
        }
    }

    fn walk(&mut self, prog: &Program<'a>, fr: &mut Frame<'a>, dot: &Val<'a>, nodes: &[Node<'a>]) {
        for node in nodes {
            match node {
                Node::Action(p) => {
                    let v = self.pipe(prog, fr, dot, p);
                    let line = p.cmds.first().map_or(0, |c| c.line);
                    self.branch_fallback(prog, fr, line, &v);
                }
                Node::Control {
                    kind,
                    pipe,
                    then,
                    els,
                } => {
                    let (vars, empties) = (fr.vars.len(), fr.empties.len());
                    match kind {
                        Control::If => {
                            let facts = self.cond(prog, fr, dot, pipe);
                            let inner = fr.vars.len();
                            fr.empties.extend(facts.empty_if_true);
                            self.walk(prog, fr, dot, then);
                            fr.vars.truncate(inner);
                            fr.empties.truncate(empties);
                            fr.empties.extend(facts.empty_if_false);
                            self.walk(prog, fr, dot, els);
                        }
                        Control::With => {
                            let v = self.pipe(prog, fr, dot, pipe);
                            let inner = fr.vars.len();
                            self.walk(prog, fr, &v, then);
                            fr.vars.truncate(inner);
                            fr.empties.extend(paths(&v));
                            self.walk(prog, fr, dot, els);
                        }
                        Control::Range => {
                            let x = self.cmds(prog, fr, dot, &pipe.cmds);
                            let e = self.elem(&x);
                            match pipe.decl.as_slice() {
                                [v] => bind(fr, v, e.clone(), pipe.assign),
                                [k, v] => {
                                    bind(fr, k, Val::Unknown, pipe.assign);
                                    bind(fr, v, e.clone(), pipe.assign);
                                }
                                _ => {}
                            }
                            let inner = fr.vars.len();
                            self.walk(prog, fr, &e, then);
                            fr.vars.truncate(inner);
                            fr.empties.extend(paths(&x));
                            self.walk(prog, fr, dot, els);
                        }
                    }
                    fr.vars.truncate(vars);
                    fr.empties.truncate(empties);
                }
                Node::Template { name, line, pipe } => {
                    let arg = match pipe {
                        Some(p) => self.pipe(prog, fr, dot, p),
                        None => Val::Unknown,
                    };
                    let v = self.include(prog, name, arg);
                    self.branch_fallback(prog, fr, *line, &v);
                }
            }
        }
    }

    /// Runs a define with `arg` as dot and `$`; its value if its body is a single action.
    fn include(&mut self, prog: &Program<'a>, name: &str, arg: Val<'a>) -> Val<'a> {
        let Some(&(unit, index)) = prog.defines.get(name) else {
            return Val::Unknown;
        };
        if self.depth >= MAX_DEPTH {
            return Val::Unknown;
        }
        let key = (unit, index, arg);
        if let Some(v) = self.memo.get(&key) {
            return v.clone();
        }
        self.memo.insert(key.clone(), Val::Unknown); // a recursive call sees Unknown
        let define = &prog.units[unit].parsed.defines[index];
        let arg = key.2.clone();
        let mut fr = Frame {
            unit,
            root: arg.clone(),
            vars: Vec::new(),
            empties: Vec::new(),
        };
        self.depth += 1;
        let out = match &define.output {
            Some(p) => self.pipe(prog, &mut fr, &arg, p),
            None => {
                self.walk(prog, &mut fr, &arg, &define.body);
                Val::Unknown
            }
        };
        self.depth -= 1;
        self.memo.insert(key, out.clone());
        out
    }

    /// A pipeline, binding its declared variable.
    fn pipe(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        p: &Pipe<'a>,
    ) -> Val<'a> {
        let v = self.cmds(prog, fr, dot, &p.cmds);
        for name in &p.decl {
            bind(fr, name, v.clone(), p.assign);
        }
        v
    }

    fn cmds(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        cmds: &[Cmd<'a>],
    ) -> Val<'a> {
        let mut piped = None;
        for c in cmds {
            piped = Some(self.cmd(prog, fr, dot, c, piped));
        }
        piped.unwrap_or(Val::Unknown)
    }

    fn cmd(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        c: &Cmd<'a>,
        piped: Option<Val<'a>>,
    ) -> Val<'a> {
        match c.args.split_first() {
            Some((Arg::Ident(name), rest)) => self.call(prog, fr, dot, c, name, rest, piped),
            Some((first, rest)) => {
                // A field with arguments is a method call (`.Files.Get "x"`): an unknown result.
                let v = self.arg(prog, fr, dot, c, first);
                for a in rest {
                    self.arg(prog, fr, dot, c, a);
                }
                if rest.is_empty() {
                    v
                } else {
                    Val::Unknown
                }
            }
            None => Val::Unknown,
        }
    }

    fn arg(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        c: &Cmd<'a>,
        a: &Arg<'a>,
    ) -> Val<'a> {
        match a {
            Arg::Dot => dot.clone(),
            Arg::Field(fields) => self.fields(dot.clone(), fields),
            Arg::Var(name, fields) => {
                let base = lookup(fr, name);
                self.fields(base, fields)
            }
            Arg::Ident(name) => self.call(prog, fr, dot, c, name, &[], None),
            Arg::Chain(inner, fields) => {
                let base = self.arg(prog, fr, dot, c, inner);
                self.fields(base, fields)
            }
            Arg::Pipe(p) => self.pipe(prog, fr, dot, p),
            Arg::Str(s) => Val::Lit(s.clone()),
            Arg::Num(s) => Val::Lit(Cow::Borrowed(*s)),
            Arg::Bool | Arg::Nil => Val::Unknown,
        }
    }

    fn fields(&mut self, base: Val<'a>, fields: &[&'a str]) -> Val<'a> {
        let mut cur = base;
        for (i, f) in fields.iter().enumerate() {
            if let Val::Values(p) = &mut cur {
                // A chain read records its last path only: the others are its prefixes.
                p.extend(fields[i..].iter().map(|f| Cow::Borrowed(*f)));
                self.refer(p);
                return cur;
            }
            cur = self.access(&cur, &Cow::Borrowed(*f));
        }
        cur
    }

    /// `.key` of a value; reading a values path records it.
    fn access(&mut self, v: &Val<'a>, key: &Seg<'a>) -> Val<'a> {
        match v {
            Val::Values(p) => {
                let mut p = p.clone();
                p.push(key.clone());
                self.refer(&p);
                Val::Values(p)
            }
            Val::Root(prefix) => match key.as_ref() {
                "Values" => Val::Values(prefix.clone()),
                "Chart" => Val::Chart,
                _ => Val::Unknown,
            },
            Val::Dict(m) => m.get(key).cloned().unwrap_or(Val::Unknown),
            // `index . 1` of `include "x" (list $ .Values.a)`: helpers taking several arguments.
            Val::List(vs) => key
                .parse::<usize>()
                .ok()
                .and_then(|i| vs.get(i).cloned())
                .unwrap_or(Val::Unknown),
            Val::Chart if key == "AppVersion" => Val::AppVersion,
            Val::Chart if key == "Version" => Val::ChartVersion,
            Val::Union(vs) => {
                let vs: Vec<Val<'a>> = vs.iter().map(|v| self.access(v, key)).collect();
                union(vs)
            }
            _ => Val::Unknown,
        }
    }

    /// An element of a list or map (`range`, `first`): `p` → `p.*`, recorded.
    fn elem(&mut self, v: &Val<'a>) -> Val<'a> {
        match v {
            Val::Values(p) => {
                let mut p = p.clone();
                p.push(Cow::Borrowed(ANY));
                self.refer(&p);
                Val::Values(p)
            }
            Val::List(vs) => union(vs.iter().cloned()),
            Val::Dict(m) => union(m.values().cloned()),
            Val::Union(vs) => {
                let vs: Vec<Val<'a>> = vs.iter().map(|v| self.elem(v)).collect();
                union(vs)
            }
            _ => Val::Unknown,
        }
    }

    /// `index base k1 k2…`: literal keys read the path, others consume it whole.
    fn navigate(
        &mut self,
        prog: &Program<'a>,
        fr: &Frame<'a>,
        c: &Cmd<'a>,
        base: &Val<'a>,
        keys: &[Val<'a>],
    ) -> Val<'a> {
        let mut cur = base.clone();
        for k in keys {
            cur = match k {
                Val::Lit(s) => self.access(&cur, s),
                Val::Union(ks) if ks.iter().all(|k| matches!(k, Val::Lit(_))) => {
                    let vs: Vec<Val<'a>> = ks
                        .iter()
                        .map(|k| match k {
                            Val::Lit(s) => self.access(&cur, s),
                            _ => Val::Unknown,
                        })
                        .collect();
                    union(vs)
                }
                _ => self.computed(prog, fr, c, &cur),
            };
        }
        cur
    }

    fn computed(
        &mut self,
        prog: &Program<'a>,
        fr: &Frame<'a>,
        c: &Cmd<'a>,
        v: &Val<'a>,
    ) -> Val<'a> {
        match v {
            Val::Values(p) => {
                if self.seen_dynamic.insert(owned(p)) {
                    let unit = &prog.units[fr.unit];
                    self.refs.dynamic.push(Dynamic {
                        file: unit.name.clone(),
                        line: c.line,
                        prefix: owned(p),
                        expr: unit.text.get(c.start..c.end).unwrap_or("").to_owned(),
                    });
                }
                self.whole(p);
                let mut p = p.clone();
                p.push(Cow::Borrowed(ANY));
                Val::Values(p)
            }
            Val::Dict(m) => union(m.values().cloned()),
            Val::List(vs) => union(vs.iter().cloned()),
            Val::Union(vs) => {
                let vs: Vec<Val<'a>> = vs.iter().map(|v| self.computed(prog, fr, c, v)).collect();
                union(vs)
            }
            _ => Val::Unknown,
        }
    }

    /// What an `if` condition says about emptiness, evaluating it (and recording its paths).
    fn cond(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        p: &Pipe<'a>,
    ) -> Facts<'a> {
        match (p.decl.is_empty(), p.cmds.as_slice()) {
            (true, [c]) => self.cond_cmd(prog, fr, dot, c),
            _ => Facts::of_value(&self.pipe(prog, fr, dot, p)),
        }
    }

    fn cond_cmd(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        c: &Cmd<'a>,
    ) -> Facts<'a> {
        let (name, args) = match c.args.split_first() {
            Some((Arg::Ident(name), args)) => (*name, args),
            _ => return Facts::of_value(&self.cmd(prog, fr, dot, c, None)),
        };
        match (name, args) {
            ("not", [a]) => self.cond_arg(prog, fr, dot, c, a).negate(),
            ("empty", [a]) => Facts::of_value(&self.arg(prog, fr, dot, c, a)).negate(),
            ("and" | "or", [_, ..]) => {
                let mut all: Vec<Facts> = args
                    .iter()
                    .map(|a| self.cond_arg(prog, fr, dot, c, a))
                    .collect();
                if all.len() == 1 {
                    return all.pop().unwrap_or_default();
                }
                // `and` true: every part true; `or` false: every part false.
                let mut f = Facts::default();
                for part in all {
                    if name == "and" {
                        f.empty_if_true.extend(part.empty_if_true);
                    } else {
                        f.empty_if_false.extend(part.empty_if_false);
                    }
                }
                f
            }
            ("eq" | "ne", [a, b]) => {
                let (a, b) = (self.arg(prog, fr, dot, c, a), self.arg(prog, fr, dot, c, b));
                let blank = |v: &Val| matches!(v, Val::Lit(s) if s.is_empty());
                let other = if blank(&a) {
                    b
                } else if blank(&b) {
                    a
                } else {
                    return Facts::default();
                };
                let f = Facts::of_value(&other).negate();
                if name == "eq" {
                    f
                } else {
                    f.negate()
                }
            }
            _ => Facts::of_value(&self.cmd(prog, fr, dot, c, None)),
        }
    }

    fn cond_arg(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        c: &Cmd<'a>,
        a: &Arg<'a>,
    ) -> Facts<'a> {
        match a {
            Arg::Pipe(p) => self.cond(prog, fr, dot, p),
            a => Facts::of_value(&self.arg(prog, fr, dot, c, a)),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn call(
        &mut self,
        prog: &Program<'a>,
        fr: &mut Frame<'a>,
        dot: &Val<'a>,
        c: &Cmd<'a>,
        name: &str,
        args: &[Arg<'a>],
        piped: Option<Val<'a>>,
    ) -> Val<'a> {
        let mut vals: Vec<Val<'a>> = args.iter().map(|a| self.arg(prog, fr, dot, c, a)).collect();
        vals.extend(piped);
        let last = vals.last().cloned().unwrap_or(Val::Unknown);
        match name {
            "default" => {
                // Sprig: `default DEFAULT GIVEN`.
                let Some(d) = vals.first().cloned() else {
                    return Val::Unknown;
                };
                let given = vals.get(1).cloned().unwrap_or(Val::Unknown);
                self.note_fallback(prog, fr, c, &given, &d);
                union([given, d])
            }
            "coalesce" | "or" => {
                for (i, v) in vals.iter().enumerate() {
                    if let Some(alt) = vals[i + 1..].iter().find(|a| pinned(a).is_some()) {
                        self.note_fallback(prog, fr, c, v, alt);
                    }
                }
                union(vals)
            }
            "and" => union(vals),
            "ternary" => {
                if let [a, b, ..] = vals.as_slice() {
                    self.note_fallback(prog, fr, c, a, b);
                    self.note_fallback(prog, fr, c, b, a);
                    union([a.clone(), b.clone()])
                } else {
                    Val::Unknown
                }
            }
            "required" => last,
            "first" | "last" | "mustFirst" | "mustLast" => self.elem(&last),
            "rest" | "initial" | "mustRest" | "mustInitial" => last,
            "printf" | "print" | "println" => {
                // `printf "v%s" .Chart.AppVersion` is pinned as the version it formats is.
                let kinds: Vec<FallbackKind> = vals.iter().filter_map(pinned).collect();
                if kinds.contains(&FallbackKind::AppVersion) {
                    Val::AppVersion
                } else if kinds.contains(&FallbackKind::ChartVersion) {
                    Val::ChartVersion
                } else {
                    Val::Unknown
                }
            }
            "dict" => {
                let mut m = BTreeMap::new();
                for pair in vals.chunks(2) {
                    let v = pair.get(1).cloned().unwrap_or(Val::Unknown);
                    match &pair[0] {
                        Val::Lit(k) => {
                            m.insert(k.clone(), v);
                        }
                        _ => self.consume(&v, false),
                    }
                }
                Val::Dict(m)
            }
            "list" | "tuple" => Val::List(vals),
            "set" | "unset" => {
                let new = match (vals.first(), vals.get(1)) {
                    (Some(base), Some(Val::Lit(k))) => {
                        let value = vals.get(2).cloned().unwrap_or(Val::Unknown);
                        edit_dict(base, |m| {
                            if name == "set" {
                                m.insert(k.clone(), value.clone());
                            } else {
                                m.remove(k);
                            }
                        })
                    }
                    (Some(base), _) => base.clone(),
                    _ => Val::Unknown,
                };
                rebind(fr, args, &new);
                new
            }
            "merge" | "mergeOverwrite" | "mustMerge" | "mustMergeOverwrite" => {
                vals.iter().for_each(|v| self.consume(v, false));
                let new = union(vals);
                rebind(fr, args, &new);
                new
            }
            "deepCopy" | "mustDeepCopy" => {
                self.consume(&last, false);
                last
            }
            "omit" | "pick" => {
                let base = vals.first().cloned().unwrap_or(Val::Unknown);
                self.consume(&base, false);
                base
            }
            "keys" | "values" => {
                vals.iter().for_each(|v| self.consume(v, false));
                Val::Unknown
            }
            "index" => match vals.split_first() {
                Some((base, keys)) => self.navigate(prog, fr, c, base, keys),
                None => Val::Unknown,
            },
            "get" => match vals.as_slice() {
                [base, key, ..] => self.navigate(prog, fr, c, base, std::slice::from_ref(key)),
                _ => Val::Unknown,
            },
            "hasKey" => {
                if let [base, key, ..] = vals.as_slice() {
                    self.navigate(prog, fr, c, base, std::slice::from_ref(key));
                }
                Val::Unknown
            }
            "pluck" => match vals.split_first() {
                Some((key, maps)) => {
                    let vs: Vec<Val<'a>> = maps
                        .iter()
                        .map(|m| self.navigate(prog, fr, c, m, std::slice::from_ref(key)))
                        .collect();
                    union(vs)
                }
                None => Val::Unknown,
            },
            "dig" => match vals.as_slice() {
                [keys @ .., default, map] if !keys.is_empty() => {
                    let found = self.navigate(prog, fr, c, map, keys);
                    self.note_fallback(prog, fr, c, &found, default);
                    union([found, default.clone()])
                }
                _ => Val::Unknown,
            },
            "include" => match vals.as_slice() {
                [names, rest @ ..] => {
                    let arg = rest.first().cloned().unwrap_or(Val::Unknown);
                    let names: Vec<Seg<'a>> = match names {
                        Val::Lit(n) => vec![n.clone()],
                        Val::Union(ns) => ns
                            .iter()
                            .filter_map(|n| match n {
                                Val::Lit(n) => Some(n.clone()),
                                _ => None,
                            })
                            .collect(),
                        _ => Vec::new(),
                    };
                    let vs: Vec<Val<'a>> = names
                        .iter()
                        .map(|n| self.include(prog, n, arg.clone()))
                        .collect();
                    union(vs)
                }
                [] => Val::Unknown,
            },
            "tpl" => {
                if let Some(text) = vals.first() {
                    self.consume(text, false);
                }
                Val::Unknown
            }
            _ => match class(name) {
                Class::Serialize => {
                    vals.iter().for_each(|v| self.consume(v, true));
                    Val::Unknown
                }
                Class::Scalar => Val::Unknown,
                Class::Propagate => last,
                Class::Opaque => {
                    vals.iter().for_each(|v| self.consume(v, false));
                    Val::Unknown
                }
            },
        }
    }
}

/// A dict (or the dicts of a union) with an edit applied; other values unchanged.
fn edit_dict<'a>(base: &Val<'a>, edit: impl Fn(&mut BTreeMap<Seg<'a>, Val<'a>>) + Copy) -> Val<'a> {
    match base {
        Val::Dict(m) => {
            let mut m = m.clone();
            edit(&mut m);
            Val::Dict(m)
        }
        Val::Union(vs) => union(vs.iter().map(|v| edit_dict(v, edit))),
        v => v.clone(),
    }
}

/// `set $d …`/`merge $d …` change the map `$d` holds.
fn rebind<'a>(fr: &mut Frame<'a>, args: &[Arg<'a>], new: &Val<'a>) {
    if let Some(Arg::Var(name, fields)) = args.first() {
        if fields.is_empty() && *name != "$" {
            if let Some(slot) = fr.vars.iter_mut().rev().find(|(n, _)| n == name) {
                slot.1 = new.clone();
            }
        }
    }
}

/// `$x := v` declares; `$x = v` joins the old value (either may reach later uses).
fn bind<'a>(fr: &mut Frame<'a>, name: &'a str, v: Val<'a>, assign: bool) {
    if assign {
        if let Some(slot) = fr.vars.iter_mut().rev().find(|(n, _)| *n == name) {
            slot.1 = union([slot.1.clone(), v]);
            return;
        }
    }
    fr.vars.push((name, v));
}

fn lookup<'a>(fr: &Frame<'a>, name: &str) -> Val<'a> {
    if name == "$" {
        return fr.root.clone();
    }
    fr.vars
        .iter()
        .rev()
        .find(|(n, _)| *n == name)
        .map_or(Val::Unknown, |(_, v)| v.clone())
}

/// `.Values.a.b` chains among tokens (for files that do not parse): `["a","b"]`.
fn lexed_values_chains<'a>(toks: &[Tok<'a>]) -> Vec<Vec<&'a str>> {
    let mut out = Vec::new();
    for (i, t) in toks.iter().enumerate() {
        if t.kind != Kind::Field("Values") {
            continue;
        }
        let chain: Vec<&'a str> = toks[i + 1..]
            .iter()
            .map_while(|t| match &t.kind {
                Kind::Field(f) if !t.space_before => Some(*f),
                _ => None,
            })
            .collect();
        if !chain.is_empty() {
            out.push(chain);
        }
    }
    out
}
