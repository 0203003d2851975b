//! The parse tree of a template file: Go's `text/template/parse` grammar (actions, pipelines,
//! control structures, `define`/`block`/`template`), minus the text between actions.

use super::lex::{Keyword, Kind, Tok};
use std::borrow::Cow;

/// A parsed file: its top-level nodes and the templates it defines. Names and literals borrow
/// from the source text.
#[derive(Debug, Default)]
pub(super) struct Parsed<'a> {
    pub nodes: Vec<Node<'a>>,
    pub defines: Vec<Define<'a>>,
}

/// `{{ define "name" }}…{{ end }}` or the body of a `{{ block }}`.
#[derive(Debug)]
pub(super) struct Define<'a> {
    pub name: String,
    pub body: Vec<Node<'a>>,
    /// The body is a single action (`{{- .Chart.AppVersion -}}`): `include` returns its value.
    pub output: Option<Pipe<'a>>,
}

#[derive(Debug)]
pub(super) enum Node<'a> {
    Action(Pipe<'a>),
    Control {
        kind: Control,
        pipe: Pipe<'a>,
        then: Vec<Node<'a>>,
        /// `{{ else }}` list; `else if`/`else with` is a nested control here, as in Go.
        els: Vec<Node<'a>>,
    },
    /// `{{ template "name" pipe }}` (also the call half of a `block`).
    Template {
        name: String,
        line: u32,
        pipe: Option<Pipe<'a>>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Control {
    If,
    With,
    Range,
}

#[derive(Clone, Debug)]
pub(super) struct Pipe<'a> {
    /// Declared or assigned variables (`$x :=`, `$i, $v :=`), with the `$`.
    pub decl: Vec<&'a str>,
    /// `=` rather than `:=`.
    pub assign: bool,
    pub cmds: Vec<Cmd<'a>>,
}

#[derive(Clone, Debug)]
pub(super) struct Cmd<'a> {
    pub line: u32,
    /// Byte range of the command in the source (for notes quoting the expression).
    pub start: usize,
    pub end: usize,
    pub args: Vec<Arg<'a>>,
}

#[derive(Clone, Debug)]
pub(super) enum Arg<'a> {
    Dot,
    /// `.a.b`
    Field(Vec<&'a str>),
    /// `$x.a.b` (`$` is the root).
    Var(&'a str, Vec<&'a str>),
    /// A function name.
    Ident(&'a str),
    /// `(pipe).a.b`, `fn.a`
    Chain(Box<Arg<'a>>, Vec<&'a str>),
    Pipe(Box<Pipe<'a>>),
    Str(Cow<'a, str>),
    Num(&'a str),
    Bool,
    Nil,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub line: u32,
    pub message: String,
}

/// Parses a whole file. Errors carry Go-like messages and the line they were found on.
#[cfg(test)]
pub(super) fn parse(src: &str) -> Result<Parsed<'_>, ParseError> {
    parse_tokens(&super::lex::lex(src))
}

pub(super) fn parse_tokens<'a>(toks: &[Tok<'a>]) -> Result<Parsed<'a>, ParseError> {
    let mut p = Parser {
        toks,
        i: 0,
        defines: Vec::new(),
        nest: 0,
    };
    let (nodes, term) = p.list(true)?;
    match term {
        Term::Eof => Ok(Parsed {
            nodes,
            defines: p.defines,
        }),
        Term::End(line) => Err(err(line, "unexpected {{end}}")),
        Term::Else(line) | Term::ElseChain(line, _) => Err(err(line, "unexpected {{else}}")),
    }
}

fn err(line: u32, message: impl Into<String>) -> ParseError {
    ParseError {
        line,
        message: message.into(),
    }
}

/// What ended a list of nodes.
enum Term {
    Eof,
    End(u32),
    Else(u32),
    /// `{{ else if …` / `{{ else with …`: the keyword is left for the enclosing control.
    ElseChain(u32, Keyword),
}

struct Parser<'t, 'a> {
    toks: &'t [Tok<'a>],
    i: usize,
    defines: Vec<Define<'a>>,
    /// Open controls and parentheses: bounded so that garbage cannot exhaust the stack.
    nest: u32,
}

/// Far deeper than any chart nests; the parser and the interpreter recurse per level.
const MAX_NEST: u32 = 200;

fn describe(k: &Kind<'_>) -> String {
    match k {
        Kind::Left => "{{".into(),
        Kind::Right => "}}".into(),
        Kind::LParen => "(".into(),
        Kind::RParen => ")".into(),
        Kind::Pipe => "|".into(),
        Kind::Declare => ":=".into(),
        Kind::Assign => "=".into(),
        Kind::Comma => ",".into(),
        Kind::Dot => ".".into(),
        Kind::Field(f) => format!(".{f}"),
        Kind::Var(v) => v.to_string(),
        Kind::Ident(i) => i.to_string(),
        Kind::Keyword(k) => format!("<{}>", format!("{k:?}").to_lowercase()),
        Kind::Bool => "bool".into(),
        Kind::Nil => "nil".into(),
        Kind::Str(s) => format!("{s:?}"),
        Kind::Num(n) => n.to_string(),
        Kind::Char(c) => format!("{c:?}"),
        Kind::Error(e) => e.clone(),
        Kind::Eof => "EOF".into(),
    }
}

impl<'a> Parser<'_, 'a> {
    /// The current token; past the end it is the last one (lexing always ends with Eof or Error).
    fn peek(&self) -> &Tok<'a> {
        let last = self.toks.len().saturating_sub(1);
        &self.toks[self.i.min(last)]
    }

    fn next(&mut self) -> Tok<'a> {
        let t = self.peek().clone();
        self.advance();
        t
    }

    fn advance(&mut self) {
        if self.i < self.toks.len() {
            self.i += 1;
        }
    }

    /// An error at the current token; a lexing error reports its own message.
    fn unexpected(&self, context: &str) -> ParseError {
        let t = self.peek();
        match &t.kind {
            Kind::Error(m) => err(t.line, m.clone()),
            Kind::Eof => err(t.line, format!("unexpected EOF in {context}")),
            k => err(t.line, format!("unexpected {} in {context}", describe(k))),
        }
    }

    fn expect_right(&mut self, context: &str) -> Result<(), ParseError> {
        if self.peek().kind == Kind::Right {
            self.advance();
            Ok(())
        } else {
            Err(self.unexpected(context))
        }
    }

    fn list(&mut self, top: bool) -> Result<(Vec<Node<'a>>, Term), ParseError> {
        let mut nodes = Vec::new();
        loop {
            match &self.peek().kind {
                Kind::Eof => return Ok((nodes, Term::Eof)),
                Kind::Left => {
                    self.advance();
                }
                _ => return Err(self.unexpected("input")),
            }
            let kw = match self.peek().kind {
                Kind::Keyword(k) => k,
                _ => {
                    nodes.push(Node::Action(self.pipeline("command", &Kind::Right)?));
                    continue;
                }
            };
            let line = self.peek().line;
            match kw {
                Keyword::End => {
                    self.advance();
                    self.expect_right("end")?;
                    return Ok((nodes, Term::End(line)));
                }
                Keyword::Else => {
                    self.advance();
                    if let Kind::Keyword(k @ (Keyword::If | Keyword::With)) = self.peek().kind {
                        return Ok((nodes, Term::ElseChain(line, k)));
                    }
                    self.expect_right("else")?;
                    return Ok((nodes, Term::Else(line)));
                }
                Keyword::If => nodes.push(self.control(Control::If)?),
                Keyword::With => nodes.push(self.control(Control::With)?),
                Keyword::Range => nodes.push(self.control(Control::Range)?),
                Keyword::Define if top => self.define()?,
                Keyword::Template => {
                    self.advance();
                    let name = self.template_name("template clause")?;
                    let pipe = if self.peek().kind == Kind::Right {
                        self.advance();
                        None
                    } else {
                        Some(self.pipeline("template clause", &Kind::Right)?)
                    };
                    nodes.push(Node::Template { name, line, pipe });
                }
                Keyword::Block => {
                    self.advance();
                    let name = self.template_name("block clause")?;
                    let pipe = self.pipeline("block clause", &Kind::Right)?;
                    let body = self.body("block")?;
                    self.push_define(name.clone(), body);
                    nodes.push(Node::Template {
                        name,
                        line,
                        pipe: Some(pipe),
                    });
                }
                Keyword::Break | Keyword::Continue => {
                    self.advance();
                    self.expect_right("break or continue")?;
                }
                Keyword::Define => return Err(self.unexpected("command")),
            }
        }
    }

    fn template_name(&mut self, context: &str) -> Result<String, ParseError> {
        match self.peek().kind.clone() {
            Kind::Str(s) => {
                self.advance();
                Ok(s.into_owned())
            }
            _ => Err(self.unexpected(context)),
        }
    }

    /// A list that must close with `{{ end }}`.
    fn body(&mut self, context: &str) -> Result<Vec<Node<'a>>, ParseError> {
        self.enter()?;
        let (nodes, term) = self.list(false)?;
        self.nest -= 1;
        match term {
            Term::End(_) => Ok(nodes),
            Term::Eof => Err(err(
                self.peek().line,
                format!("unexpected EOF in {context}"),
            )),
            Term::Else(l) | Term::ElseChain(l, _) => {
                Err(err(l, format!("unexpected {{{{else}}}} in {context}")))
            }
        }
    }

    fn define(&mut self) -> Result<(), ParseError> {
        self.advance();
        let name = self.template_name("define clause")?;
        self.expect_right("define clause")?;
        let body = self.body("define")?;
        self.push_define(name, body);
        Ok(())
    }

    fn push_define(&mut self, name: String, body: Vec<Node<'a>>) {
        let output = match body.as_slice() {
            [Node::Action(p)] if p.decl.is_empty() => Some(p.clone()),
            _ => None,
        };
        self.defines.push(Define { name, body, output });
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nest += 1;
        if self.nest > MAX_NEST {
            return Err(err(self.peek().line, "too deeply nested"));
        }
        Ok(())
    }

    /// `if`/`with`/`range` from its keyword to its `end`.
    fn control(&mut self, kind: Control) -> Result<Node<'a>, ParseError> {
        self.enter()?;
        let node = self.control_body(kind);
        self.nest -= 1;
        node
    }

    fn control_body(&mut self, kind: Control) -> Result<Node<'a>, ParseError> {
        let kw = self.next();
        let context = match kind {
            Control::If => "if",
            Control::With => "with",
            Control::Range => "range",
        };
        let pipe = self.pipeline(context, &Kind::Right)?;
        let (then, term) = self.list(false)?;
        let els = match term {
            Term::End(_) => Vec::new(),
            Term::Else(_) => self.body(context)?,
            Term::ElseChain(_, Keyword::If) if kind == Control::If => {
                vec![self.control(Control::If)?]
            }
            Term::ElseChain(_, Keyword::With) if kind == Control::With => {
                vec![self.control(Control::With)?]
            }
            Term::ElseChain(line, _) => {
                return Err(err(line, format!("unexpected else-chain in {context}")))
            }
            Term::Eof => {
                return Err(err(
                    kw.line,
                    format!("unexpected EOF: {{{{{context}}}}} opened here is never closed"),
                ))
            }
        };
        Ok(Node::Control {
            kind,
            pipe,
            then,
            els,
        })
    }

    /// A pipeline up to `end` (`}}` or `)`), which it consumes.
    fn pipeline(&mut self, context: &str, end: &Kind<'_>) -> Result<Pipe<'a>, ParseError> {
        let mut pipe = Pipe {
            decl: Vec::new(),
            assign: false,
            cmds: Vec::new(),
        };
        // Declarations: `$x :=`, `$x =`, and in range `$i, $v :=`.
        let save = self.i;
        while let Kind::Var(v) = &self.peek().kind {
            let v = *v;
            self.i += 1;
            match self.peek().kind {
                Kind::Declare | Kind::Assign => {
                    pipe.assign = self.next().kind == Kind::Assign;
                    pipe.decl.push(v);
                    break;
                }
                Kind::Comma if context == "range" && pipe.decl.is_empty() => {
                    self.advance();
                    pipe.decl.push(v);
                    if !matches!(self.peek().kind, Kind::Var(_)) {
                        return Err(err(self.peek().line, "range can only initialize variables"));
                    }
                }
                Kind::Comma => {
                    return Err(err(
                        self.peek().line,
                        format!("too many declarations in {context}"),
                    ))
                }
                _ => {
                    if !pipe.decl.is_empty() {
                        return Err(self.unexpected(context));
                    }
                    self.i = save;
                    break;
                }
            }
        }
        loop {
            let t = self.peek();
            if &t.kind == end {
                let line = t.line;
                self.advance();
                if pipe.cmds.is_empty() {
                    return Err(err(line, format!("missing value for {context}")));
                }
                // Only the first stage may start with a value that cannot be called.
                for (i, c) in pipe.cmds.iter().enumerate().skip(1) {
                    if matches!(
                        c.args.first(),
                        Some(Arg::Bool | Arg::Dot | Arg::Nil | Arg::Num(_) | Arg::Str(_))
                    ) {
                        return Err(err(
                            c.line,
                            format!("non executable command in pipeline stage {}", i + 1),
                        ));
                    }
                }
                return Ok(pipe);
            }
            match t.kind {
                Kind::Bool
                | Kind::Dot
                | Kind::Field(_)
                | Kind::Ident(_)
                | Kind::Num(_)
                | Kind::Nil
                | Kind::Str(_)
                | Kind::Var(_)
                | Kind::LParen => pipe.cmds.push(self.command()?),
                _ => return Err(self.unexpected(context)),
            }
        }
    }

    /// Operands up to `|` (consumed), `}}` or `)` (left).
    fn command(&mut self) -> Result<Cmd<'a>, ParseError> {
        let first = self.peek();
        let (line, start) = (first.line, first.start);
        let mut end = start;
        let mut args = Vec::new();
        loop {
            match self.operand()? {
                Some(a) => args.push(a),
                None => return Err(self.unexpected("operand")),
            }
            end = self.toks[self.i.saturating_sub(1).min(self.toks.len() - 1)]
                .end
                .max(end);
            let t = self.peek();
            match t.kind {
                Kind::Right | Kind::RParen => break,
                Kind::Pipe => {
                    self.advance();
                    break;
                }
                Kind::Error(_) | Kind::Eof => return Err(self.unexpected("command")),
                _ if t.space_before => continue,
                _ => return Err(self.unexpected("operand")),
            }
        }
        Ok(Cmd {
            line,
            start,
            end,
            args,
        })
    }

    /// A term and the fields chained onto it without a space.
    fn operand(&mut self) -> Result<Option<Arg<'a>>, ParseError> {
        let Some(term) = self.term()? else {
            return Ok(None);
        };
        let mut fields = Vec::new();
        while let Kind::Field(f) = &self.peek().kind {
            if self.peek().space_before {
                break;
            }
            fields.push(*f);
            self.advance();
        }
        if fields.is_empty() {
            return Ok(Some(term));
        }
        Ok(Some(match term {
            Arg::Field(mut f) => {
                f.extend(fields);
                Arg::Field(f)
            }
            Arg::Var(v, mut f) => {
                f.extend(fields);
                Arg::Var(v, f)
            }
            Arg::Bool | Arg::Str(_) | Arg::Num(_) | Arg::Nil | Arg::Dot => {
                return Err(err(self.peek().line, "unexpected . after term"))
            }
            other => Arg::Chain(Box::new(other), fields),
        }))
    }

    fn term(&mut self) -> Result<Option<Arg<'a>>, ParseError> {
        let arg = match &self.peek().kind {
            Kind::Ident(n) => Arg::Ident(n),
            Kind::Dot => Arg::Dot,
            Kind::Nil => Arg::Nil,
            Kind::Var(v) => Arg::Var(v, Vec::new()),
            Kind::Field(f) => Arg::Field(vec![*f]),
            Kind::Bool => Arg::Bool,
            Kind::Num(n) => Arg::Num(n),
            Kind::Str(s) => Arg::Str(s.clone()),
            Kind::LParen => {
                self.advance();
                self.enter()?;
                let p = self.pipeline("parenthesized pipeline", &Kind::RParen)?;
                self.nest -= 1;
                return Ok(Some(Arg::Pipe(Box::new(p))));
            }
            _ => return Ok(None),
        };
        self.advance();
        Ok(Some(arg))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn else_if_chains_nest() {
        let p = parse("{{ if .a }}x{{ else if .b }}y{{ else }}z{{ end }}").unwrap();
        let [Node::Control { kind, els, .. }] = p.nodes.as_slice() else {
            panic!("{:?}", p.nodes)
        };
        assert_eq!(*kind, Control::If);
        assert!(matches!(
            els.as_slice(),
            [Node::Control {
                kind: Control::If,
                ..
            }]
        ));
    }

    #[test]
    fn range_declares_two_variables() {
        let p = parse("{{ range $k, $v := .Values.env }}{{ $k }}{{ end }}").unwrap();
        let [Node::Control { pipe, .. }] = p.nodes.as_slice() else {
            panic!()
        };
        assert_eq!(pipe.decl, vec!["$k", "$v"]);
    }

    #[test]
    fn chains_on_parenthesized_pipelines() {
        let p = parse("{{ ((.global).imageRegistry) }}").unwrap();
        let [Node::Action(pipe)] = p.nodes.as_slice() else {
            panic!()
        };
        let Arg::Pipe(inner) = &pipe.cmds[0].args[0] else {
            panic!()
        };
        assert!(matches!(&inner.cmds[0].args[0], Arg::Chain(_, f) if f == &["imageRegistry"]));
    }

    #[test]
    fn defines_blocks_and_single_action_outputs() {
        let p = parse(
            "{{- define \"a\" -}}{{ .Chart.AppVersion }}{{- end -}}\n{{ block \"b\" . }}{{ .x }}{{ .y }}{{ end }}",
        )
        .unwrap();
        assert_eq!(p.defines.len(), 2);
        assert!(p.defines[0].output.is_some());
        assert!(p.defines[1].output.is_none());
        assert!(matches!(p.nodes.as_slice(), [Node::Template { name, .. }] if name == "b"));
    }

    #[test]
    fn errors_have_lines() {
        for (src, line) in [
            ("a\n{{ if .x }}\nb", 2),
            ("{{ end }}", 1),
            ("\n{{ .a | \"x\" }}", 2),
            ("{{ define \"x\" }}{{ define \"y\" }}{{ end }}{{ end }}", 1),
            ("{{ .a \"b\"\"c\" }}", 1),
            ("{{ range $a, $b, $c := .x }}{{ end }}", 1),
            (
                &format!("{}{}", "{{ if .a }}".repeat(5000), "{{ end }}".repeat(5000)),
                1,
            ),
            (
                &format!("{{{{ {} .a {} }}}}", "(".repeat(5000), ")".repeat(5000)),
                1,
            ),
        ] {
            let e = parse(src).expect_err(src);
            assert_eq!(e.line, line, "{src}: {e:?}");
        }
    }
}
