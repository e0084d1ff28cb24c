//! A small, tolerant parser for the YAML frontmatter subset used by `.claude` templates.
//!
//! Supported (everything the shipped command and agent files use):
//! - top-level `key: value` lines; blank lines and `#` comment lines are ignored;
//! - plain scalars (a trailing ` # comment` is stripped), with indented continuation lines folded
//!   into one line; plain `~`, `null` and an empty value are null;
//! - single- and double-quoted scalars on one line (`\"`, `\\`, `\n`, `\t` escapes in double
//!   quotes, `''` in single quotes);
//! - block scalars `|` and `>` (with optional `-`/`+` chomping indicator, treated alike);
//! - flow sequences of scalars `[a, "b", c]` and block sequences (`- item` lines, indented or not);
//! - nested mappings (indented `key: value` lines, or `{...}`) are accepted but only as values of
//!   keys nobody reads: reading such a value is an error.
//!
//! Not supported (reported as errors): anchors/aliases/tags are kept verbatim as plain text,
//! multi-line quoted scalars, nested sequences inside flow sequences, duplicate keys.
//!
//! "Raw" keys (`argument-hint`) keep their text verbatim: no flow-sequence parsing and no comment
//! stripping, so odd unquoted values such as `[file] [--flag]`, `<a>|<b>`, `key: value` or
//! `#tag` stay plain strings (the seed quoted such values before handing them to YAML).

use thiserror::Error;

/// A frontmatter problem, with a 1-based line number in the file where known.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum FrontmatterError {
    /// The file opens a frontmatter block with `---` but never closes it.
    #[error("unterminated frontmatter: the opening `---` has no closing `---` line")]
    Unterminated,
    /// A line of the frontmatter could not be parsed.
    #[error("line {line}: {message}")]
    Syntax {
        /// 1-based line number in the file.
        line: usize,
        /// What is wrong.
        message: String,
    },
    /// A key has a value of the wrong shape.
    #[error("key `{key}`: {message}")]
    Type {
        /// The key.
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl FrontmatterError {
    /// Always [`ErrorKind::Usage`](crate::ErrorKind::Usage): the template file is the user's to fix.
    pub fn kind(&self) -> crate::ErrorKind {
        crate::ErrorKind::Usage
    }
}

/// A frontmatter value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Value {
    /// Empty, `~` or `null`.
    Null,
    /// A string (quoted or plain).
    Scalar(String),
    /// A flow or block sequence of scalars.
    List(Vec<String>),
    /// A nested mapping (not interpreted).
    Nested,
}

/// The file split into its frontmatter and body.
pub(crate) struct Split<'a> {
    /// Frontmatter text between the two `---` lines, or `None` when the file has none.
    pub frontmatter: Option<&'a str>,
    /// Everything after the closing `---` line (or the whole file).
    pub body: &'a str,
}

/// Splits a file into frontmatter and body. The file has frontmatter when its first line is `---`.
pub(crate) fn split(content: &str) -> Result<Split<'_>, FrontmatterError> {
    let content = content.strip_prefix('\u{feff}').unwrap_or(content);
    let (first, rest) = match content.find('\n') {
        Some(i) => (&content[..i], &content[i + 1..]),
        None => (content, ""),
    };
    if first.trim_end() != "---" {
        return Ok(Split { frontmatter: None, body: content });
    }
    let mut offset = 0;
    for line in rest.split_inclusive('\n') {
        if line.trim_end() == "---" {
            return Ok(Split { frontmatter: Some(&rest[..offset]), body: &rest[offset + line.len()..] });
        }
        offset += line.len();
    }
    Err(FrontmatterError::Unterminated)
}

/// Parsed frontmatter entries, in file order.
#[derive(Debug, Default)]
pub(crate) struct Frontmatter {
    entries: Vec<(String, Value)>,
}

struct Line<'a> {
    no: usize,
    text: &'a str,
}

impl Line<'_> {
    fn indented(&self) -> bool {
        self.text.starts_with([' ', '\t'])
    }
    fn blank_or_comment(&self) -> bool {
        let t = self.text.trim();
        t.is_empty() || t.starts_with('#')
    }
    fn is_item(&self) -> bool {
        let t = self.text.trim_start();
        t == "-" || t.starts_with("- ") || t.starts_with("-\t")
    }
}

fn syntax(line: usize, message: impl Into<String>) -> FrontmatterError {
    FrontmatterError::Syntax { line, message: message.into() }
}

/// Parses frontmatter text. `first_line` is the 1-based file line of its first line; `raw_keys`
/// keep their single-line value verbatim.
pub(crate) fn parse(text: &str, first_line: usize, raw_keys: &[&str]) -> Result<Frontmatter, FrontmatterError> {
    let lines: Vec<Line<'_>> =
        text.lines().enumerate().map(|(i, t)| Line { no: first_line + i, text: t.trim_end_matches('\r') }).collect();
    let mut out = Frontmatter::default();
    let mut i = 0;
    while i < lines.len() {
        let line = &lines[i];
        i += 1;
        if line.blank_or_comment() {
            continue;
        }
        if line.indented() || line.is_item() {
            return Err(syntax(line.no, "indented line or list item without a key above it"));
        }
        let Some((key, rest)) = split_key(line.text) else {
            return Err(syntax(line.no, format!("expected `key: value`, found `{}`", line.text.trim())));
        };
        if out.entries.iter().any(|(k, _)| k == key) {
            return Err(syntax(line.no, format!("duplicate key `{key}`")));
        }
        // Following lines that belong to this key: indented, blank, comments, or `- ` items.
        let start = i;
        while i < lines.len() && (lines[i].indented() || lines[i].is_item() || lines[i].text.trim().is_empty()) {
            i += 1;
        }
        let cont = &lines[start..i];
        let rest = rest.trim();
        let value = if raw_keys.contains(&key) && !rest.is_empty() {
            let v = match quoted(rest, line.no) {
                Ok((s, tail)) if tail.trim().is_empty() => s,
                _ => rest.to_string(),
            };
            Value::Scalar(fold(v, cont))
        } else {
            value(rest, line.no, cont)?
        };
        out.entries.push((key.to_string(), value));
    }
    Ok(out)
}

/// `key: rest` or `key:`; `None` when the line is not a mapping entry.
fn split_key(text: &str) -> Option<(&str, &str)> {
    let (key, rest) = match text.find(": ").or_else(|| text.find(":\t")) {
        Some(i) => (&text[..i], &text[i + 1..]),
        None => (text.strip_suffix(':')?, ""),
    };
    let key = key.trim_end();
    let ok = !key.is_empty()
        && !key.starts_with(['[', '{', '"', '\'', '-', '#', '&', '*', '!', '|', '>', '%', '@', '`'])
        && !key.contains(':');
    ok.then_some((key, rest))
}

/// Appends indented plain continuation lines, folded with single spaces.
fn fold(mut first: String, cont: &[Line<'_>]) -> String {
    for l in cont {
        let t = l.text.trim();
        if t.is_empty() {
            continue;
        }
        if !first.is_empty() {
            first.push(' ');
        }
        first.push_str(t);
    }
    first
}

fn value(rest: &str, no: usize, cont: &[Line<'_>]) -> Result<Value, FrontmatterError> {
    let content: Vec<&Line<'_>> = cont.iter().filter(|l| !l.blank_or_comment()).collect();
    if rest.is_empty() || rest.starts_with('#') {
        let Some(first) = content.first() else {
            return Ok(Value::Null);
        };
        if content.iter().all(|l| l.is_item()) {
            let mut items = Vec::new();
            for l in &content {
                let t = l.text.trim_start();
                let item = t.strip_prefix('-').unwrap_or(t).trim();
                match scalar(item, l.no)? {
                    Value::Scalar(s) => items.push(s),
                    Value::Null => items.push(String::new()),
                    _ => return Err(syntax(l.no, "nested collections in a list are not supported")),
                }
            }
            return Ok(Value::List(items));
        }
        if split_key(first.text.trim()).is_some() {
            return Ok(Value::Nested);
        }
        return Ok(Value::Scalar(fold(String::new(), cont)));
    }
    if let Some(indicator) = rest.strip_prefix(['|', '>']) {
        if !matches!(indicator.trim(), "" | "-" | "+") {
            return Err(syntax(no, format!("unsupported block scalar header `{rest}`")));
        }
        return Ok(Value::Scalar(block(rest.starts_with('|'), cont)));
    }
    if let Some(l) = content.iter().find(|l| l.is_item()) {
        return Err(syntax(l.no, "list item after a key that already has a value"));
    }
    let quoted_value = rest.starts_with(['"', '\'']);
    match scalar(rest, no)? {
        Value::Scalar(s) if !quoted_value => Ok(Value::Scalar(fold(s, cont))),
        Value::Null if !content.is_empty() => Ok(Value::Scalar(fold(String::new(), cont))),
        other => match content.first() {
            None => Ok(other),
            Some(l) if matches!(other, Value::Scalar(_)) => {
                Err(syntax(l.no, "multi-line quoted strings are not supported"))
            }
            Some(l) => Err(syntax(l.no, "unexpected indented line after a value")),
        },
    }
}

/// `|` keeps line breaks, `>` folds them into spaces. Common indentation is removed.
fn block(literal: bool, cont: &[Line<'_>]) -> String {
    let indent = cont
        .iter()
        .filter(|l| !l.text.trim().is_empty())
        .map(|l| l.text.len() - l.text.trim_start().len())
        .min()
        .unwrap_or(0);
    let lines: Vec<&str> = cont.iter().map(|l| l.text.get(indent..).unwrap_or("").trim_end()).collect();
    if literal {
        return lines.join("\n").trim_end().to_string();
    }
    let mut out = String::new();
    for l in lines {
        if l.is_empty() {
            out.push('\n');
        } else {
            if !out.is_empty() && !out.ends_with('\n') {
                out.push(' ');
            }
            out.push_str(l);
        }
    }
    out.trim_end().to_string()
}

/// One scalar or flow collection on a single line.
fn scalar(text: &str, no: usize) -> Result<Value, FrontmatterError> {
    let text = text.trim();
    if text.starts_with(['"', '\'']) {
        let (s, tail) = quoted(text, no)?;
        let tail = tail.trim();
        if !tail.is_empty() && !tail.starts_with('#') {
            return Err(syntax(no, format!("unexpected text `{tail}` after a quoted string")));
        }
        return Ok(Value::Scalar(s));
    }
    let text = strip_comment(text);
    if let Some(inner) = text.strip_prefix('[') {
        let Some(inner) = inner.strip_suffix(']') else {
            return Err(syntax(no, "unterminated flow sequence (missing `]`)"));
        };
        return flow_items(inner, no).map(Value::List);
    }
    if text.starts_with('{') {
        if !text.ends_with('}') {
            return Err(syntax(no, "unterminated flow mapping (missing `}`)"));
        }
        return Ok(Value::Nested);
    }
    Ok(match text {
        "" | "~" | "null" | "Null" | "NULL" => Value::Null,
        s => Value::Scalar(s.to_string()),
    })
}

fn flow_items(inner: &str, no: usize) -> Result<Vec<String>, FrontmatterError> {
    let mut items = Vec::new();
    let mut rest = inner.trim();
    while !rest.is_empty() {
        let (item, tail) = if rest.starts_with(['"', '\'']) {
            let (s, tail) = quoted(rest, no)?;
            (s, tail.trim_start())
        } else {
            let end = rest.find(',').unwrap_or(rest.len());
            let item = rest[..end].trim();
            if item.starts_with(['[', '{']) || item.contains([']', '}']) {
                return Err(syntax(no, "nested collections in a flow sequence are not supported"));
            }
            (item.to_string(), &rest[end..])
        };
        if !item.is_empty() {
            items.push(item);
        }
        rest = match tail.strip_prefix(',') {
            Some(t) => t.trim_start(),
            None if tail.is_empty() => tail,
            None => return Err(syntax(no, format!("expected `,` in flow sequence, found `{tail}`"))),
        };
    }
    Ok(items)
}

/// Parses a quoted string at the start of `text`; returns it and the text after the closing quote.
fn quoted(text: &str, no: usize) -> Result<(String, &str), FrontmatterError> {
    let mut chars = text.char_indices();
    let Some((_, q)) = chars.next() else {
        return Err(syntax(no, "expected a quoted string"));
    };
    let mut out = String::new();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if q == '\'' && text[i + 1..].starts_with('\'') {
                chars.next();
                out.push('\'');
                continue;
            }
            return Ok((out, &text[i + 1..]));
        }
        if c == '\\' && q == '"' {
            match chars.next() {
                Some((_, 'n')) => out.push('\n'),
                Some((_, 't')) => out.push('\t'),
                Some((_, e)) => out.push(e),
                None => break,
            }
            continue;
        }
        out.push(c);
    }
    Err(syntax(no, format!("unterminated quoted string (missing closing {q})")))
}

/// Strips a ` #` comment from a plain scalar.
fn strip_comment(text: &str) -> &str {
    let mut prev_space = false;
    for (i, c) in text.char_indices() {
        if c == '#' && prev_space {
            return text[..i].trim_end();
        }
        prev_space = c == ' ' || c == '\t';
    }
    text
}

impl Frontmatter {
    fn get(&self, key: &str) -> Option<&Value> {
        self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v)
    }

    fn type_error(key: &str, message: &str) -> FrontmatterError {
        FrontmatterError::Type { key: key.to_string(), message: message.to_string() }
    }

    /// A string value; `None` when absent or null.
    pub(crate) fn string(&self, key: &str) -> Result<Option<String>, FrontmatterError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Scalar(s)) => Ok(Some(s.clone())),
            Some(Value::List(_)) => Err(Self::type_error(key, "expected a string, found a list")),
            Some(Value::Nested) => Err(Self::type_error(key, "expected a string, found a mapping")),
        }
    }

    /// A string that may also be written as a list (a one-item list gives its item; longer lists
    /// are joined with spaces).
    pub(crate) fn string_or_list(&self, key: &str) -> Result<Option<String>, FrontmatterError> {
        match self.get(key) {
            Some(Value::List(items)) => Ok(Some(items.join(" "))),
            _ => self.string(key),
        }
    }

    /// A list value, from a sequence or a comma-separated string; `None` when absent or null.
    pub(crate) fn list(&self, key: &str) -> Result<Option<Vec<String>>, FrontmatterError> {
        match self.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Scalar(s)) => {
                Ok(Some(s.split(',').map(str::trim).filter(|t| !t.is_empty()).map(String::from).collect()))
            }
            Some(Value::List(items)) => {
                Ok(Some(items.iter().map(|t| t.trim()).filter(|t| !t.is_empty()).map(String::from).collect()))
            }
            Some(Value::Nested) => Err(Self::type_error(key, "expected a list, found a mapping")),
        }
    }

    /// A boolean (`true/false/yes/no/on/off`, any case); `None` when absent or null.
    pub(crate) fn bool(&self, key: &str) -> Result<Option<bool>, FrontmatterError> {
        match self.string(key)? {
            None => Ok(None),
            Some(s) => match s.to_ascii_lowercase().as_str() {
                "true" | "yes" | "on" => Ok(Some(true)),
                "false" | "no" | "off" => Ok(Some(false)),
                _ => Err(Self::type_error(key, &format!("expected true or false, found `{s}`"))),
            },
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn fm(text: &str) -> Result<Frontmatter, FrontmatterError> {
        parse(text, 2, &["argument-hint"])
    }

    #[test]
    fn crlf_and_column_zero_lists() {
        let content = "---\r\ntools:\r\n- Read\r\n- Grep\r\nmodel: opus\r\n---\r\nBody\r\n";
        let s = split(content).unwrap();
        assert_eq!(s.body, "Body\r\n");
        let f = fm(s.frontmatter.unwrap()).unwrap();
        assert_eq!(f.list("tools").unwrap().unwrap(), ["Read", "Grep"]);
        assert_eq!(f.string("model").unwrap().as_deref(), Some("opus"));
    }

    #[test]
    fn nested_mapping_only_fails_when_read() {
        let f = fm("meta:\n  owner: me\n  tags: [a]\ndescription: ok\nother: {a: b}\n").unwrap();
        assert_eq!(f.string("description").unwrap().as_deref(), Some("ok"));
        let err = f.string("meta").unwrap_err().to_string();
        assert_eq!(err, "key `meta`: expected a string, found a mapping");
        assert!(f.list("other").is_err());
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let err = fm("description: ok\njust words\n").err().unwrap().to_string();
        assert_eq!(err, "line 3: expected `key: value`, found `just words`");
        let err = fm("tools: [Read, Grep\n").err().unwrap().to_string();
        assert!(err.contains("unterminated flow sequence"), "{err}");
        let err = fm("a: 1\na: 2\n").err().unwrap().to_string();
        assert!(err.contains("duplicate key `a`"), "{err}");
        let err = fm("  - orphan\n").err().unwrap().to_string();
        assert!(err.starts_with("line 2:"), "{err}");
        assert!(matches!(split("---\nname: x\n"), Err(FrontmatterError::Unterminated)));
    }

    #[test]
    fn scalars() {
        let f = fm("a: plain # comment\nb: 'it''s'\nc: \"x\\\"y\"\nd: ~\ne: folded\n  more\nf: a#b\n").unwrap();
        assert_eq!(f.string("a").unwrap().as_deref(), Some("plain"));
        assert_eq!(f.string("b").unwrap().as_deref(), Some("it's"));
        assert_eq!(f.string("c").unwrap().as_deref(), Some("x\"y"));
        assert_eq!(f.string("d").unwrap(), None);
        assert_eq!(f.string("e").unwrap().as_deref(), Some("folded more"));
        assert_eq!(f.string("f").unwrap().as_deref(), Some("a#b"));
        let f = fm("argument-hint: \"[quoted]\"\n").unwrap();
        assert_eq!(f.string_or_list("argument-hint").unwrap().as_deref(), Some("[quoted]"));
        let f = fm("argument-hint: [one]\n").unwrap();
        assert_eq!(f.string_or_list("argument-hint").unwrap().as_deref(), Some("[one]"));
        assert!(split("no frontmatter\n---\n").unwrap().frontmatter.is_none());
    }
}
