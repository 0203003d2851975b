//! Tokens of Go's text/template actions (the semantics of Go's `text/template/parse/lex.go`, default
//! `{{ }}` delimiters). Text between actions and comments produce no tokens: nothing here reads them.

use std::borrow::Cow;

/// One token inside an action (or a delimiter). `space_before` replaces Go's space tokens: the parser
/// needs it only to tell `.a.b` (one chain) from `.a .b` (two operands).
#[derive(Clone, Debug, PartialEq)]
pub(super) struct Tok<'s> {
    pub kind: Kind<'s>,
    /// Byte range in the source.
    pub start: usize,
    pub end: usize,
    pub line: u32,
    pub space_before: bool,
}

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Kind<'s> {
    Left,
    Right,
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
    Dot,
    /// `.name` (without the dot).
    Field(&'s str),
    /// `$` or `$name` (with the `$`).
    Var(&'s str),
    Ident(&'s str),
    Keyword(Keyword),
    Bool,
    Nil,
    /// A quoted or raw string, unquoted; also a character constant.
    Str(Cow<'s, str>),
    Num(&'s str),
    /// Any other printable ASCII character: Go lexes it and lets the parser reject it.
    Char(char),
    /// Lexing stopped here; the message is Go's wording where it has one.
    Error(String),
    Eof,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Keyword {
    Block,
    Break,
    Continue,
    Define,
    Else,
    End,
    If,
    Range,
    Template,
    With,
}

const LEFT: &str = "{{";
const RIGHT: &str = "}}";

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\r' | '\n')
}

fn is_alnum(c: char) -> bool {
    c == '_' || c.is_alphanumeric()
}

/// Every token of `src`, ending with `Eof` or `Error` (never panics, whatever the input).
pub(super) fn lex(src: &str) -> Vec<Tok<'_>> {
    let mut lx = Lexer {
        src,
        pos: 0,
        line: 1,
        toks: Vec::with_capacity(src.len() / 16),
    };
    lx.run();
    lx.toks
}

struct Lexer<'s> {
    src: &'s str,
    pos: usize,
    line: u32,
    toks: Vec<Tok<'s>>,
}

impl<'s> Lexer<'s> {
    fn rest(&self) -> &str {
        &self.src[self.pos..]
    }

    /// The next character; ASCII (nearly all of an action) without decoding.
    fn peek(&self) -> Option<char> {
        match self.src.as_bytes().get(self.pos) {
            Some(&b) if b.is_ascii() => Some(b as char),
            Some(_) => self.rest().chars().next(),
            None => None,
        }
    }

    fn peek2(&self) -> Option<char> {
        self.rest().chars().nth(1)
    }

    /// Moves to `to`, counting the newlines passed.
    fn advance_to(&mut self, to: usize) {
        let to = to.min(self.src.len());
        let passed = &self.src.as_bytes()[self.pos..to];
        self.line += passed.iter().filter(|&&b| b == b'\n').count() as u32;
        self.pos = to;
    }

    /// Offset of the next `{{` from `pos` (a byte search: `{` never occurs inside a UTF-8
    /// sequence).
    fn find_left(&self) -> Option<usize> {
        let bytes = &self.src.as_bytes()[self.pos..];
        let mut from = 0;
        while let Some(i) = bytes[from..].iter().position(|&b| b == b'{') {
            let at = from + i;
            if bytes.get(at + 1) == Some(&b'{') {
                return Some(at);
            }
            from = at + 1;
        }
        None
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
        }
        Some(c)
    }

    fn push(&mut self, kind: Kind<'s>, start: usize, line: u32, space_before: bool) {
        self.toks.push(Tok {
            kind,
            start,
            end: self.pos,
            line,
            space_before,
        });
    }

    fn error(&mut self, msg: impl Into<String>) {
        let (pos, line) = (self.pos, self.line);
        self.push(Kind::Error(msg.into()), pos, line, false);
    }

    fn run(&mut self) {
        loop {
            let Some(off) = self.find_left() else {
                self.advance_to(self.src.len());
                let (pos, line) = (self.pos, self.line);
                self.push(Kind::Eof, pos, line, false);
                return;
            };
            self.advance_to(self.pos + off);
            if !self.action() {
                return;
            }
        }
    }

    /// Right delimiter here (after an optional ` -` trim marker)? Returns its total length.
    fn at_right(&self) -> Option<usize> {
        match &self.src.as_bytes()[self.pos..] {
            [b'}', b'}', ..] => Some(RIGHT.len()),
            [a, b'-', b'}', b'}', ..] if is_space(*a as char) => Some(2 + RIGHT.len()),
            _ => None,
        }
    }

    /// One action from its left delimiter; false once lexing has stopped (error).
    fn action(&mut self) -> bool {
        let (start, line) = (self.pos, self.line);
        self.advance_to(self.pos + LEFT.len());
        // `{{- ` trims: the dash must be followed by a space character.
        if self.peek() == Some('-') && self.peek2().is_some_and(is_space) {
            self.advance_to(self.pos + 2);
        }
        if self.rest().starts_with("/*") {
            return self.comment();
        }
        self.push(Kind::Left, start, line, false);
        let mut depth = 0usize;
        let mut space = false;
        loop {
            if let Some(n) = self.at_right() {
                if depth > 0 {
                    self.error("unclosed left paren");
                    return false;
                }
                let (start, line) = (self.pos, self.line);
                self.advance_to(self.pos + n);
                self.push(Kind::Right, start, line, space);
                return true;
            }
            let (start, line) = (self.pos, self.line);
            let Some(c) = self.peek() else {
                self.error("unclosed action");
                return false;
            };
            if is_space(c) {
                self.bump();
                space = true;
                continue;
            }
            let ok = match c {
                '=' => {
                    self.bump();
                    self.push(Kind::Assign, start, line, space);
                    true
                }
                ':' => {
                    self.bump();
                    if self.peek() == Some('=') {
                        self.bump();
                        self.push(Kind::Declare, start, line, space);
                        true
                    } else {
                        self.error("expected :=");
                        false
                    }
                }
                '|' => {
                    self.bump();
                    self.push(Kind::Pipe, start, line, space);
                    true
                }
                ',' => {
                    self.bump();
                    self.push(Kind::Comma, start, line, space);
                    true
                }
                '(' => {
                    self.bump();
                    depth += 1;
                    self.push(Kind::LParen, start, line, space);
                    true
                }
                ')' => {
                    self.bump();
                    if depth == 0 {
                        self.error("unexpected right paren");
                        false
                    } else {
                        depth -= 1;
                        self.push(Kind::RParen, start, line, space);
                        true
                    }
                }
                '"' => self.quoted(space),
                '`' => self.raw(space),
                '\'' => self.char_const(space),
                '$' => {
                    self.bump();
                    self.word();
                    self.push(Kind::Var(&self.src[start..self.pos]), start, line, space);
                    self.terminated()
                }
                '.' if !self.peek2().is_some_and(|d| d.is_ascii_digit()) => {
                    self.bump();
                    let name = self.word();
                    let kind = if name.is_empty() {
                        Kind::Dot
                    } else {
                        Kind::Field(name)
                    };
                    self.push(kind, start, line, space);
                    self.terminated()
                }
                '.' | '+' | '-' | '0'..='9' => self.number(space),
                c if is_alnum(c) => {
                    let word = self.word();
                    let kind = match word {
                        "true" | "false" => Kind::Bool,
                        "nil" => Kind::Nil,
                        "block" => Kind::Keyword(Keyword::Block),
                        "break" => Kind::Keyword(Keyword::Break),
                        "continue" => Kind::Keyword(Keyword::Continue),
                        "define" => Kind::Keyword(Keyword::Define),
                        "else" => Kind::Keyword(Keyword::Else),
                        "end" => Kind::Keyword(Keyword::End),
                        "if" => Kind::Keyword(Keyword::If),
                        "range" => Kind::Keyword(Keyword::Range),
                        "template" => Kind::Keyword(Keyword::Template),
                        "with" => Kind::Keyword(Keyword::With),
                        _ => Kind::Ident(word),
                    };
                    self.push(kind, start, line, space);
                    self.terminated()
                }
                c if c.is_ascii() && !c.is_ascii_control() => {
                    self.bump();
                    self.push(Kind::Char(c), start, line, space);
                    true
                }
                c => {
                    self.error(format!("unrecognized character in action: {c:?}"));
                    false
                }
            };
            if !ok {
                return false;
            }
            space = false;
        }
    }

    /// `{{/* ... */}}`: the comment must close right before the (optionally trimmed) delimiter.
    fn comment(&mut self) -> bool {
        let Some(end) = self.rest().find("*/") else {
            self.error("unclosed comment");
            return false;
        };
        self.advance_to(self.pos + end + 2);
        match self.at_right() {
            Some(n) => {
                self.advance_to(self.pos + n);
                true
            }
            None => {
                self.error("comment ends before closing delimiter");
                false
            }
        }
    }

    fn word(&mut self) -> &'s str {
        let start = self.pos;
        let bytes = self.src.as_bytes();
        while let Some(&b) = bytes.get(self.pos) {
            if b.is_ascii_alphanumeric() || b == b'_' {
                self.pos += 1;
            } else if b.is_ascii() {
                break;
            } else {
                // Non-ASCII letters are rare: finish by characters.
                let rest = self.rest();
                self.pos += rest.find(|c| !is_alnum(c)).unwrap_or(rest.len());
                break;
            }
        }
        &self.src[start..self.pos]
    }

    /// Go rejects a word glued to anything but a terminator (`.a-b`, `$x=1`).
    fn terminated(&mut self) -> bool {
        match self.peek() {
            None => true,
            Some(c) if is_space(c) || matches!(c, '.' | ',' | '|' | ':' | ')' | '(') => true,
            Some(_) if self.rest().starts_with(RIGHT) => true,
            Some(c) => {
                self.error(format!("bad character {c:?}"));
                false
            }
        }
    }

    fn quoted(&mut self, space: bool) -> bool {
        let (start, line) = (self.pos, self.line);
        self.bump();
        let mut out = String::new();
        let mut escaped = false;
        loop {
            match self.bump() {
                None | Some('\n') => {
                    self.error("unterminated quoted string");
                    return false;
                }
                Some('"') => break,
                Some('\\') => match self.escape('"') {
                    Some(c) => {
                        escaped = true;
                        out.push(c);
                    }
                    None => {
                        self.error("invalid escape in quoted string");
                        return false;
                    }
                },
                Some(c) => out.push(c),
            }
        }
        let text = if escaped {
            Cow::Owned(out)
        } else {
            Cow::Borrowed(&self.src[start + 1..self.pos - 1])
        };
        self.push(Kind::Str(text), start, line, space);
        true
    }

    fn raw(&mut self, space: bool) -> bool {
        let (start, line) = (self.pos, self.line);
        self.bump();
        let Some(end) = self.rest().find('`') else {
            self.error("unterminated raw quoted string");
            return false;
        };
        let text = &self.src[self.pos..self.pos + end];
        self.advance_to(self.pos + end + 1);
        self.push(Kind::Str(Cow::Borrowed(text)), start, line, space);
        true
    }

    fn char_const(&mut self, space: bool) -> bool {
        let (start, line) = (self.pos, self.line);
        self.bump();
        let c = match self.bump() {
            Some('\\') => self.escape('\''),
            Some('\n') | Some('\'') | None => None,
            Some(c) => Some(c),
        };
        match (c, self.bump()) {
            (Some(c), Some('\'')) => {
                self.push(Kind::Str(Cow::Owned(c.to_string())), start, line, space);
                true
            }
            _ => {
                self.error("unterminated character constant");
                false
            }
        }
    }

    /// The character a backslash escape stands for (Go's `strconv.Unquote` rules).
    fn escape(&mut self, quote: char) -> Option<char> {
        let c = self.bump()?;
        let simple = match c {
            'a' => Some('\x07'),
            'b' => Some('\x08'),
            'f' => Some('\x0c'),
            'n' => Some('\n'),
            'r' => Some('\r'),
            't' => Some('\t'),
            'v' => Some('\x0b'),
            '\\' => Some('\\'),
            c if c == quote => Some(c),
            _ => None,
        };
        if simple.is_some() {
            return simple;
        }
        let (digits, radix) = match c {
            'x' => (2, 16),
            'u' => (4, 16),
            'U' => (8, 16),
            '0'..='7' => (2, 8),
            _ => return None,
        };
        let mut v = if radix == 8 { c.to_digit(8)? } else { 0 };
        for _ in 0..digits {
            v = v
                .checked_mul(radix)?
                .checked_add(self.bump()?.to_digit(radix)?)?;
        }
        // `\xHH` and octal escapes are bytes; a lone high byte is not valid UTF-8, so keep its
        // code point (the value only serves as a key or a literal here).
        char::from_u32(v)
    }

    /// A Go number: sign, digits with `_`, radix prefixes, fraction, exponent, `i` suffix.
    fn number(&mut self, space: bool) -> bool {
        let (start, line) = (self.pos, self.line);
        if matches!(self.peek(), Some('+' | '-')) {
            self.bump();
        }
        let mut digits = 0;
        let mut prev = ' ';
        while let Some(c) = self.peek() {
            let sign_in_exponent =
                matches!(c, '+' | '-') && matches!(prev, 'e' | 'E' | 'p' | 'P') && digits > 0;
            if c.is_ascii_alphanumeric() || c == '_' || c == '.' || sign_in_exponent {
                if c.is_ascii_digit() {
                    digits += 1;
                }
                prev = c;
                self.bump();
            } else {
                break;
            }
        }
        let text = &self.src[start..self.pos];
        let body = text.trim_start_matches(['+', '-']);
        let valid = digits > 0
            && (body.starts_with("0x")
                || body.starts_with("0X")
                || body.chars().all(|c| {
                    c.is_ascii_digit()
                        || matches!(
                            c,
                            '_' | '.' | 'e' | 'E' | '+' | '-' | 'i' | 'o' | 'O' | 'b' | 'B'
                        )
                }));
        if !valid {
            self.error(format!("bad number syntax: {text:?}"));
            return false;
        }
        self.push(Kind::Num(text), start, line, space);
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(src: &str) -> Vec<Kind<'_>> {
        lex(src).into_iter().map(|t| t.kind).collect()
    }

    #[test]
    fn fields_variables_and_trim_markers() {
        assert_eq!(
            kinds("a {{- $x := .Values.a.b | default 1.5 -}} b"),
            vec![
                Kind::Left,
                Kind::Var("$x"),
                Kind::Declare,
                Kind::Field("Values"),
                Kind::Field("a"),
                Kind::Field("b"),
                Kind::Pipe,
                Kind::Ident("default"),
                Kind::Num("1.5"),
                Kind::Right,
                Kind::Eof,
            ]
        );
    }

    #[test]
    fn comments_and_strings() {
        assert_eq!(
            kinds("{{/* a {{ b }} */}}{{- /* c */ -}}{{ \"x\\\"y\" `r\nr` 'c' }}"),
            vec![
                Kind::Left,
                Kind::Str("x\"y".into()),
                Kind::Str("r\nr".into()),
                Kind::Str("c".into()),
                Kind::Right,
                Kind::Eof,
            ]
        );
    }

    #[test]
    fn negative_number_is_not_a_trim_marker() {
        assert_eq!(
            kinds("{{ sub 3 -1 -}}"),
            vec![
                Kind::Left,
                Kind::Ident("sub"),
                Kind::Num("3"),
                Kind::Num("-1"),
                Kind::Right,
                Kind::Eof,
            ]
        );
    }

    #[test]
    fn errors_stop_lexing() {
        for (src, msg) in [
            ("{{ .a-b }}", "bad character"),
            ("{{ if", "unclosed action"),
            ("{{ (x }}", "unclosed left paren"),
            ("{{ \"abc }}", "unterminated quoted string"),
            ("{{/* x */ y }}", "comment ends before closing delimiter"),
        ] {
            let toks = lex(src);
            match &toks.last().unwrap().kind {
                Kind::Error(m) => assert!(m.contains(msg), "{src}: {m}"),
                k => panic!("{src}: {k:?}"),
            }
        }
    }

    #[test]
    fn lines_count_newlines_in_text_and_actions() {
        let toks = lex("a\nb\n{{ .x\n .y }}");
        let lines: Vec<u32> = toks.iter().map(|t| t.line).collect();
        assert_eq!(lines, vec![3, 3, 4, 4, 4]);
    }
}
