//! Prompt templates and step conditions of data-defined workflows.
//!
//! ## Paths
//! Both templates and conditions read values through paths:
//! - `prompt` — shorthand for `input.prompt`;
//! - `input.KEY` — a key of the workflow's input object;
//! - `steps.NAME.result` — the final text of an earlier step;
//! - `steps.NAME.status` — `success`, `failed` or `skipped`;
//! - `steps.NAME.outputs.KEY` — an output an earlier step extracted.
//!
//! Names and keys are made of ASCII letters, digits, `_` and `-`.
//!
//! ## Templates
//! Literal text with `{{ PATH [| FILTER]* }}` substitutions ([`Template`]). Filters apply left to right:
//! - `quote` wraps the value in double quotes, escaping `\` and `"` (the seed's
//!   `/review "<prompt with \" escaped>"`);
//! - `or PATH` uses `PATH` when the value so far is missing, null or the empty string;
//! - `default "LIT"` uses the literal when the value so far is missing, null or the empty string.
//!
//! Strings render as they are; numbers, booleans, arrays and objects as JSON. A value that is still
//! missing or null after the filters is an error naming the path ([`ExprError::NoValue`]). A `{{`
//! without its `}}` is a syntax error; a `}}` outside a substitution is literal text.
//!
//! ## Conditions
//! [`Condition`]: `PATH == "lit"`, `PATH != "lit"`, a bare `PATH` (true when the value is present and
//! not null, `false` or `""`), `not C`, `A and B`, `A or B` and parentheses. `not` binds tightest, then
//! `and`, then `or`. A missing path compares as null: `== "x"` is false and `!= "x"` is true. String
//! literals use double or single quotes, with `\` escapes.

use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use thiserror::Error;

/// What a finished (or skipped) step exposes to later templates and conditions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StepOutputs {
    /// `"success"`, `"failed"` or `"skipped"`.
    pub status: String,
    /// The step's final text, if it produced one.
    pub result: Option<String>,
    /// The outputs extracted from the step, by output name.
    #[serde(default)]
    pub outputs: BTreeMap<String, Value>,
}

/// The values templates and conditions are evaluated against.
#[derive(Debug, Clone, Copy)]
pub struct Scope<'a> {
    /// The workflow's input (an object; `prompt`, `model`…).
    pub input: &'a Value,
    /// The steps run (or skipped) so far, by step name.
    pub steps: &'a BTreeMap<String, StepOutputs>,
}

/// Something a template or condition reads, for validation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Reference {
    /// `input.KEY` (or `prompt`, which is `input.prompt`): the key.
    Input(String),
    /// `steps.NAME.…`: the step name.
    Step(String),
}

/// Errors parsing or evaluating a template or condition.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ExprError {
    /// The text does not parse.
    #[error("column {column}: {message}")]
    Syntax {
        /// 1-based column (in characters) in the template or condition text.
        column: usize,
        /// What is wrong there.
        message: String,
    },
    /// A substitution's value is missing or null and no filter supplied one.
    #[error("{path} has no value{}", nor(.alternatives))]
    NoValue {
        /// The substitution's path (`steps.review.outputs.review_path`).
        path: String,
        /// The `or` paths that were tried too, in order.
        alternatives: Vec<String>,
    },
}

fn nor(alternatives: &[String]) -> String {
    if alternatives.is_empty() { String::new() } else { format!(" (nor has {})", alternatives.join(" nor ")) }
}

/// A parsed path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Path {
    /// `input.KEY` / `prompt`.
    Input(String),
    /// `steps.NAME.result`.
    StepResult(String),
    /// `steps.NAME.status`.
    StepStatus(String),
    /// `steps.NAME.outputs.KEY`.
    StepOutput(String, String),
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Path::Input(k) => write!(f, "input.{k}"),
            Path::StepResult(s) => write!(f, "steps.{s}.result"),
            Path::StepStatus(s) => write!(f, "steps.{s}.status"),
            Path::StepOutput(s, k) => write!(f, "steps.{s}.outputs.{k}"),
        }
    }
}

impl Path {
    pub(crate) fn reference(&self) -> Reference {
        match self {
            Path::Input(k) => Reference::Input(k.clone()),
            Path::StepResult(s) | Path::StepStatus(s) | Path::StepOutput(s, _) => Reference::Step(s.clone()),
        }
    }

    /// The value at this path, `None` when absent.
    fn lookup(&self, scope: &Scope) -> Option<Value> {
        match self {
            Path::Input(k) => scope.input.get(k).cloned(),
            Path::StepResult(s) => scope.steps.get(s)?.result.clone().map(Value::String),
            Path::StepStatus(s) => Some(Value::String(scope.steps.get(s)?.status.clone())),
            Path::StepOutput(s, k) => scope.steps.get(s)?.outputs.get(k).cloned(),
        }
    }
}

/// Missing, null or `""`: what `or` and `default` replace.
fn is_blank(v: &Option<Value>) -> bool {
    match v {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.is_empty(),
        Some(_) => false,
    }
}

/// Present and not null, `false` or `""`.
fn is_truthy(v: &Option<Value>) -> bool {
    !matches!(v, None | Some(Value::Null) | Some(Value::Bool(false))) && !is_blank(v)
}

/// A value as text: strings as they are, everything else as JSON.
fn render_value(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if c == '\\' || c == '"' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

// ---------------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    /// A dotted name (`steps.plan.outputs.plan_path`, `and`, `quote`).
    Name(String),
    /// A string literal, unescaped.
    Str(String),
    Pipe,
    Eq,
    Ne,
    LParen,
    RParen,
    /// `}}`.
    Close,
    End,
}

impl Tok {
    fn describe(&self) -> String {
        match self {
            Tok::Name(n) => format!("`{n}`"),
            Tok::Str(s) => format!("the string {}", quote(s)),
            Tok::Pipe => "`|`".into(),
            Tok::Eq => "`==`".into(),
            Tok::Ne => "`!=`".into(),
            Tok::LParen => "`(`".into(),
            Tok::RParen => "`)`".into(),
            Tok::Close => "`}}`".into(),
            Tok::End => "the end of the text".into(),
        }
    }
}

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

struct Lexer<'t> {
    text: &'t str,
    /// Byte offset of the next character.
    pos: usize,
    /// The token peeked, with its start offset.
    peeked: Option<(usize, Tok)>,
}

impl<'t> Lexer<'t> {
    fn new(text: &'t str, pos: usize) -> Self {
        Self { text, pos, peeked: None }
    }

    /// 1-based column (characters) of byte offset `at`.
    fn column(&self, at: usize) -> usize {
        self.text.get(..at).map_or(at, |s| s.chars().count()) + 1
    }

    fn error(&self, at: usize, message: impl Into<String>) -> ExprError {
        ExprError::Syntax { column: self.column(at), message: message.into() }
    }

    fn rest(&self) -> &'t str {
        self.text.get(self.pos..).unwrap_or("")
    }

    fn peek(&mut self) -> Result<&(usize, Tok), ExprError> {
        if self.peeked.is_none() {
            let t = self.lex()?;
            self.peeked = Some(t);
        }
        match &self.peeked {
            Some(t) => Ok(t),
            None => Err(self.error(self.pos, "internal lexer error")),
        }
    }

    fn next(&mut self) -> Result<(usize, Tok), ExprError> {
        match self.peeked.take() {
            Some(t) => Ok(t),
            None => self.lex(),
        }
    }

    fn lex(&mut self) -> Result<(usize, Tok), ExprError> {
        let trimmed = self.rest().trim_start();
        self.pos = self.text.len() - trimmed.len();
        let start = self.pos;
        let mut chars = trimmed.chars();
        let Some(c) = chars.next() else {
            return Ok((start, Tok::End));
        };
        let two = |s: &str| trimmed.starts_with(s);
        let (len, tok) = if two("}}") {
            (2, Tok::Close)
        } else if two("==") {
            (2, Tok::Eq)
        } else if two("!=") {
            (2, Tok::Ne)
        } else if c == '|' {
            (1, Tok::Pipe)
        } else if c == '(' {
            (1, Tok::LParen)
        } else if c == ')' {
            (1, Tok::RParen)
        } else if c == '"' || c == '\'' {
            return self.string(c);
        } else if is_name_char(c) {
            let mut len = 0;
            let mut prev_dot = true;
            for ch in trimmed.chars() {
                if is_name_char(ch) {
                    prev_dot = false;
                } else if ch == '.' && !prev_dot {
                    prev_dot = true;
                } else {
                    break;
                }
                len += ch.len_utf8();
            }
            let name = trimmed.get(..len).unwrap_or("");
            if prev_dot {
                return Err(self.error(start + len, format!("`{name}` ends with `.`: a name must follow")));
            }
            (len, Tok::Name(name.to_string()))
        } else {
            return Err(self.error(start, format!("unexpected character `{c}`")));
        };
        self.pos += len;
        Ok((start, tok))
    }

    fn string(&mut self, delim: char) -> Result<(usize, Tok), ExprError> {
        let start = self.pos;
        let mut out = String::new();
        let mut iter = self.rest().char_indices().skip(1);
        while let Some((i, c)) = iter.next() {
            if c == delim {
                self.pos = start + i + c.len_utf8();
                return Ok((start, Tok::Str(out)));
            }
            if c == '\\' {
                match iter.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, e)) => out.push(e),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(self.error(start, "string literal is not closed"))
    }
}

const PATHS_HELP: &str =
    "expected `prompt`, `input.KEY`, `steps.NAME.result`, `steps.NAME.status` or `steps.NAME.outputs.KEY`";

/// Parses a path token at byte offset `at`.
fn parse_path(lx: &Lexer, at: usize, name: &str) -> Result<Path, ExprError> {
    let parts: Vec<&str> = name.split('.').collect();
    let path = match parts.as_slice() {
        ["prompt"] => Path::Input("prompt".to_string()),
        ["input", key] => Path::Input((*key).to_string()),
        ["steps", step, "result"] => Path::StepResult((*step).to_string()),
        ["steps", step, "status"] => Path::StepStatus((*step).to_string()),
        ["steps", step, "outputs", key] => Path::StepOutput((*step).to_string(), (*key).to_string()),
        _ => return Err(lx.error(at, format!("unknown variable `{name}`: {PATHS_HELP}"))),
    };
    Ok(path)
}

fn expect_path(lx: &mut Lexer) -> Result<Path, ExprError> {
    match lx.next()? {
        (at, Tok::Name(n)) => parse_path(lx, at, &n),
        (at, t) => Err(lx.error(at, format!("expected a variable, found {}", t.describe()))),
    }
}

// ---------------------------------------------------------------------------------------------------
// Templates

#[derive(Debug, Clone, PartialEq)]
enum Filter {
    Quote,
    Or(Path),
    Default(String),
}

#[derive(Debug, Clone, PartialEq)]
struct Subst {
    path: Path,
    filters: Vec<Filter>,
}

#[derive(Debug, Clone, PartialEq)]
enum Piece {
    Text(String),
    Subst(Subst),
}

/// A parsed prompt template: literal text with `{{ PATH | FILTER… }}` substitutions (see the
/// [module documentation](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct Template {
    source: String,
    pieces: Vec<Piece>,
}

impl Template {
    /// Parses `text`; a syntax error names the column.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let mut pieces = Vec::new();
        let mut pos = 0;
        while let Some(found) = text.get(pos..).and_then(|r| r.find("{{")) {
            let open = pos + found;
            if open > pos {
                pieces.push(Piece::Text(text.get(pos..open).unwrap_or("").to_string()));
            }
            let mut lx = Lexer::new(text, open + 2);
            let subst = parse_subst(&mut lx, open)?;
            pieces.push(Piece::Subst(subst));
            pos = lx.pos;
        }
        if pos < text.len() {
            pieces.push(Piece::Text(text.get(pos..).unwrap_or("").to_string()));
        }
        Ok(Self { source: text.to_string(), pieces })
    }

    /// The text the template was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// The template with every substitution replaced by its value.
    pub fn render(&self, scope: &Scope) -> Result<String, ExprError> {
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(t) => out.push_str(t),
                Piece::Subst(s) => out.push_str(&s.render(scope)?),
            }
        }
        Ok(out)
    }

    /// The inputs and steps the template reads, without duplicates, in order of appearance.
    pub fn references(&self) -> Vec<Reference> {
        dedup(self.paths().iter().map(|p| p.reference()))
    }

    /// Every path the template reads (substitutions and `or` filters).
    pub(crate) fn paths(&self) -> Vec<&Path> {
        let mut out = Vec::new();
        for piece in &self.pieces {
            if let Piece::Subst(s) = piece {
                out.push(&s.path);
                for f in &s.filters {
                    if let Filter::Or(p) = f {
                        out.push(p);
                    }
                }
            }
        }
        out
    }
}

impl fmt::Display for Template {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn dedup(refs: impl Iterator<Item = Reference>) -> Vec<Reference> {
    let mut out: Vec<Reference> = Vec::new();
    for r in refs {
        if !out.contains(&r) {
            out.push(r);
        }
    }
    out
}

/// Parses `PATH (| FILTER)* }}` after the `{{` at byte `open`.
fn parse_subst(lx: &mut Lexer, open: usize) -> Result<Subst, ExprError> {
    let unclosed = |lx: &Lexer| lx.error(open, "`{{` is not closed by `}}`");
    let path = match lx.next()? {
        (_, Tok::End) => return Err(unclosed(lx)),
        (at, Tok::Close) => return Err(lx.error(at, "empty `{{ }}`: expected a variable")),
        (at, Tok::Name(n)) => parse_path(lx, at, &n)?,
        (at, t) => return Err(lx.error(at, format!("expected a variable, found {}", t.describe()))),
    };
    let mut filters = Vec::new();
    loop {
        match lx.next()? {
            (_, Tok::Close) => return Ok(Subst { path, filters }),
            (_, Tok::End) => return Err(unclosed(lx)),
            (_, Tok::Pipe) => {}
            (at, t) => return Err(lx.error(at, format!("expected `|` or `}}}}`, found {}", t.describe()))),
        }
        match lx.next()? {
            (_, Tok::Name(n)) if n == "quote" => filters.push(Filter::Quote),
            (_, Tok::Name(n)) if n == "or" => filters.push(Filter::Or(expect_path(lx)?)),
            (_, Tok::Name(n)) if n == "default" => match lx.next()? {
                (_, Tok::Str(s)) => filters.push(Filter::Default(s)),
                (at, t) => {
                    return Err(lx.error(at, format!("`default` needs a quoted string, found {}", t.describe())));
                }
            },
            (_, Tok::End) => return Err(unclosed(lx)),
            (at, t) => {
                return Err(lx.error(
                    at,
                    format!("unknown filter {}: expected `quote`, `or PATH` or `default \"TEXT\"`", t.describe()),
                ));
            }
        }
    }
}

impl Subst {
    fn render(&self, scope: &Scope) -> Result<String, ExprError> {
        let mut value = self.path.lookup(scope);
        let mut alternatives = Vec::new();
        for f in &self.filters {
            match f {
                Filter::Quote => {
                    if let Some(v) = value.as_ref().filter(|v| !v.is_null()) {
                        value = Some(Value::String(quote(&render_value(v))));
                    }
                }
                Filter::Or(p) => {
                    if is_blank(&value) {
                        alternatives.push(p.to_string());
                        value = p.lookup(scope);
                    }
                }
                Filter::Default(lit) => {
                    if is_blank(&value) {
                        value = Some(Value::String(lit.clone()));
                    }
                }
            }
        }
        match value {
            Some(v) if !v.is_null() => Ok(render_value(&v)),
            _ => Err(ExprError::NoValue { path: self.path.to_string(), alternatives }),
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// Conditions

#[derive(Debug, Clone, PartialEq)]
enum Cond {
    Truthy(Path),
    Eq(Path, String),
    Ne(Path, String),
    Not(Box<Cond>),
    And(Box<Cond>, Box<Cond>),
    Or(Box<Cond>, Box<Cond>),
}

/// A parsed step condition (see the [module documentation](self)).
#[derive(Debug, Clone, PartialEq)]
pub struct Condition {
    source: String,
    cond: Cond,
}

impl Condition {
    /// Parses `text`; a syntax error names the column.
    pub fn parse(text: &str) -> Result<Self, ExprError> {
        let mut lx = Lexer::new(text, 0);
        if matches!(lx.peek()?, (_, Tok::End)) {
            return Err(lx.error(0, "empty condition"));
        }
        let cond = parse_or(&mut lx)?;
        match lx.next()? {
            (_, Tok::End) => Ok(Self { source: text.to_string(), cond }),
            (at, t) => Err(lx.error(at, format!("expected `and`, `or` or the end, found {}", t.describe()))),
        }
    }

    /// The text the condition was parsed from.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Whether the condition holds in `scope`. Missing values are null; evaluation does not fail today
    /// (the `Result` leaves room for typed comparisons).
    pub fn eval(&self, scope: &Scope) -> Result<bool, ExprError> {
        Ok(eval(&self.cond, scope))
    }

    /// The inputs and steps the condition reads, without duplicates, in order of appearance.
    pub fn references(&self) -> Vec<Reference> {
        dedup(self.paths().iter().map(|p| p.reference()))
    }

    /// Every path the condition reads.
    pub(crate) fn paths(&self) -> Vec<&Path> {
        fn walk<'c>(c: &'c Cond, out: &mut Vec<&'c Path>) {
            match c {
                Cond::Truthy(p) | Cond::Eq(p, _) | Cond::Ne(p, _) => out.push(p),
                Cond::Not(c) => walk(c, out),
                Cond::And(a, b) | Cond::Or(a, b) => {
                    walk(a, out);
                    walk(b, out);
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.cond, &mut out);
        out
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.source)
    }
}

fn eval(c: &Cond, scope: &Scope) -> bool {
    match c {
        Cond::Truthy(p) => is_truthy(&p.lookup(scope)),
        Cond::Eq(p, lit) => equals(&p.lookup(scope), lit),
        Cond::Ne(p, lit) => !equals(&p.lookup(scope), lit),
        Cond::Not(c) => !eval(c, scope),
        Cond::And(a, b) => eval(a, scope) && eval(b, scope),
        Cond::Or(a, b) => eval(a, scope) || eval(b, scope),
    }
}

/// A value equals a literal when its text (strings as they are, others as JSON) is the literal;
/// missing and null equal nothing.
fn equals(v: &Option<Value>, lit: &str) -> bool {
    match v {
        None | Some(Value::Null) => false,
        Some(v) => render_value(v) == lit,
    }
}

fn is_keyword(t: &Tok, word: &str) -> bool {
    matches!(t, Tok::Name(n) if n == word)
}

fn parse_or(lx: &mut Lexer) -> Result<Cond, ExprError> {
    let mut left = parse_and(lx)?;
    while is_keyword(&lx.peek()?.1, "or") {
        lx.next()?;
        let right = parse_and(lx)?;
        left = Cond::Or(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_and(lx: &mut Lexer) -> Result<Cond, ExprError> {
    let mut left = parse_unary(lx)?;
    while is_keyword(&lx.peek()?.1, "and") {
        lx.next()?;
        let right = parse_unary(lx)?;
        left = Cond::And(Box::new(left), Box::new(right));
    }
    Ok(left)
}

fn parse_unary(lx: &mut Lexer) -> Result<Cond, ExprError> {
    match lx.next()? {
        (_, Tok::Name(n)) if n == "not" => Ok(Cond::Not(Box::new(parse_unary(lx)?))),
        (at, Tok::LParen) => {
            let inner = parse_or(lx)?;
            match lx.next()? {
                (_, Tok::RParen) => Ok(inner),
                (_, Tok::End) => Err(lx.error(at, "`(` is not closed by `)`")),
                (at, t) => Err(lx.error(at, format!("expected `)`, found {}", t.describe()))),
            }
        }
        (at, Tok::Name(n)) => {
            let path = parse_path(lx, at, &n)?;
            let op = match lx.peek()? {
                (_, Tok::Eq) => true,
                (_, Tok::Ne) => false,
                _ => return Ok(Cond::Truthy(path)),
            };
            lx.next()?;
            let lit = match lx.next()? {
                (_, Tok::Str(s)) => s,
                (at, t) => {
                    return Err(
                        lx.error(at, format!("expected a quoted string to compare with, found {}", t.describe()))
                    );
                }
            };
            Ok(if op { Cond::Eq(path, lit) } else { Cond::Ne(path, lit) })
        }
        (at, t) => Err(lx.error(at, format!("expected a variable, `not` or `(`, found {}", t.describe()))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn steps() -> BTreeMap<String, StepOutputs> {
        let mut steps = BTreeMap::new();
        steps.insert(
            "plan".to_string(),
            StepOutputs {
                status: "success".into(),
                result: Some("planned".into()),
                outputs: [("plan_path".to_string(), json!("/repo/specs/x.md"))].into_iter().collect(),
            },
        );
        steps.insert(
            "review".to_string(),
            StepOutputs {
                status: "success".into(),
                result: Some("VERDICT: FAIL".into()),
                outputs: [("verdict".to_string(), json!("FAIL")), ("count".to_string(), json!(3))]
                    .into_iter()
                    .collect(),
            },
        );
        steps
    }

    fn render(t: &str, input: Value) -> Result<String, ExprError> {
        let steps = steps();
        Template::parse(t)?.render(&Scope { input: &input, steps: &steps })
    }

    fn holds(c: &str) -> bool {
        let steps = steps();
        let input = json!({"prompt": "p", "flag": true, "off": false, "empty": ""});
        Condition::parse(c).unwrap().eval(&Scope { input: &input, steps: &steps }).unwrap()
    }

    #[test]
    fn renders_paths_and_literal_text() {
        let out = render(
            "/build {{steps.plan.outputs.plan_path}} for {{ prompt }}: {{steps.review.status}} {{steps.review.outputs.count}} {{input.n}} }}",
            json!({"prompt": "add login", "n": 2}),
        )
        .unwrap();
        assert_eq!(out, "/build /repo/specs/x.md for add login: success 3 2 }}");
        assert_eq!(render("{{steps.plan.result}}", json!({})).unwrap(), "planned");
    }

    #[test]
    fn quote_escapes_backslashes_and_quotes() {
        let out = render("/review {{prompt | quote}} x", json!({"prompt": r#"say "hi" \ bye"#})).unwrap();
        assert_eq!(out, r#"/review "say \"hi\" \\ bye" x"#);
    }

    #[test]
    fn or_and_default_fill_missing_null_and_empty_values() {
        let t = "{{input.review_model | or input.model | default \"\"}}";
        assert_eq!(render(t, json!({"review_model": "r", "model": "m"})).unwrap(), "r");
        assert_eq!(render(t, json!({"model": "m"})).unwrap(), "m");
        assert_eq!(render(t, json!({"review_model": null, "model": "m"})).unwrap(), "m");
        assert_eq!(render(t, json!({"review_model": "", "model": "m"})).unwrap(), "m");
        assert_eq!(render(t, json!({})).unwrap(), "");
        assert_eq!(render("{{input.x | default 'a \\'b\\''}}", json!({})).unwrap(), "a 'b'");
        assert_eq!(render("{{input.x | default \"d\" | quote}}", json!({})).unwrap(), "\"d\"");
    }

    #[test]
    fn a_missing_value_is_an_error_naming_the_path() {
        let err = render("/fix {{steps.review.outputs.review_path}}", json!({})).unwrap_err();
        assert_eq!(err.to_string(), "steps.review.outputs.review_path has no value");
        let err = render("{{input.fix_model | or input.model}}", json!({"model": null})).unwrap_err();
        assert_eq!(err.to_string(), "input.fix_model has no value (nor has input.model)");
        let err = render("{{prompt | quote}}", json!({})).unwrap_err();
        assert_eq!(err.to_string(), "input.prompt has no value");
        // A step that has not run yet has no status.
        assert!(render("{{steps.fix.status}}", json!({})).is_err());
        // An empty string is a value.
        assert_eq!(render("[{{input.e}}]", json!({"e": ""})).unwrap(), "[]");
    }

    #[test]
    fn template_syntax_errors_name_the_column() {
        let err = Template::parse("/plan {{prompt").unwrap_err();
        assert_eq!(err.to_string(), "column 7: `{{` is not closed by `}}`");
        let err = Template::parse("ab {{steps.plan}}").unwrap_err();
        assert!(err.to_string().starts_with("column 6: unknown variable `steps.plan`"), "{err}");
        let err = Template::parse("{{prompt | upper}}").unwrap_err();
        assert!(err.to_string().starts_with("column 12: unknown filter `upper`"), "{err}");
        assert!(Template::parse("{{ }}").is_err());
        assert!(Template::parse("{{prompt | default}}").is_err());
        assert!(Template::parse("{{prompt | default \"x}}").is_err());
        assert!(Template::parse("{{prompt prompt}}").is_err());
        assert!(Template::parse("{{input.}}").is_err());
        assert!(Template::parse("no substitutions } { }} at all").is_ok());
    }

    #[test]
    fn template_references_list_inputs_and_steps_once() {
        let t = Template::parse("{{prompt}} {{steps.plan.outputs.a | or input.m}} {{steps.plan.result}}").unwrap();
        assert_eq!(
            t.references(),
            vec![Reference::Input("prompt".into()), Reference::Step("plan".into()), Reference::Input("m".into())]
        );
    }

    #[test]
    fn conditions_compare_and_combine() {
        assert!(holds(r#"steps.review.outputs.verdict == "FAIL""#));
        assert!(!holds(r#"steps.review.outputs.verdict != "FAIL""#));
        assert!(holds("steps.review.outputs.verdict == 'FAIL'"));
        assert!(holds(r#"steps.review.outputs.count == "3""#));
        // Missing values compare as null.
        assert!(!holds(r#"steps.fix.outputs.x == "x""#));
        assert!(holds(r#"steps.fix.outputs.x != "x""#));
        assert!(!holds(r#"input.nothing == "x""#));
        // Truthiness.
        assert!(holds("input.flag"));
        assert!(!holds("input.off"));
        assert!(!holds("input.empty"));
        assert!(!holds("input.nothing"));
        assert!(holds("prompt"));
        // not / and / or, precedence and parentheses.
        assert!(holds("not input.off"));
        assert!(holds(r#"input.flag and steps.plan.status == "success""#));
        assert!(!holds(r#"input.off and steps.plan.status == "success""#));
        assert!(holds(r#"input.off or steps.plan.status == "success""#));
        assert!(holds("input.flag or input.off and input.off"));
        assert!(!holds("(input.flag or input.off) and input.off"));
        assert!(holds("not input.off and not (input.empty or input.nothing)"));
        assert!(!holds("not not input.off"));
    }

    #[test]
    fn condition_syntax_errors_name_the_column() {
        let err = Condition::parse(r#"steps.review.outputs.verdict = "FAIL""#).unwrap_err();
        assert_eq!(err.to_string(), "column 30: unexpected character `=`");
        let err = Condition::parse("input.a and").unwrap_err();
        assert!(err.to_string().starts_with("column 12: expected a variable"), "{err}");
        let err = Condition::parse("(input.a").unwrap_err();
        assert_eq!(err.to_string(), "column 1: `(` is not closed by `)`");
        let err = Condition::parse("verdict == \"FAIL\"").unwrap_err();
        assert!(err.to_string().starts_with("column 1: unknown variable `verdict`"), "{err}");
        assert!(Condition::parse("input.a == input.b").is_err());
        assert!(Condition::parse("").is_err());
        assert!(Condition::parse("input.a input.b").is_err());
        assert!(Condition::parse("input.a == \"x").is_err());
    }

    #[test]
    fn condition_references() {
        let c = Condition::parse(r#"steps.review.outputs.verdict == "FAIL" and not input.skip_fix"#).unwrap();
        assert_eq!(c.references(), vec![Reference::Step("review".into()), Reference::Input("skip_fix".into())]);
    }
}
