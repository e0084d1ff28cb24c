//! The readable diff between a recorded request and the actual one.

use serde_json::Value;

use crate::model::ToolSpec;

/// Most differences listed in a mismatch error.
const MAX_DIFFERENCES: usize = 12;
/// Characters of a text shown before its first difference.
const CONTEXT_BEFORE: usize = 40;
/// Characters of a text shown in all (from the start of its window).
const SNIPPET_CHARS: usize = 100;
/// Longest rendering of a JSON value in a diff, in characters.
const VALUE_CHARS: usize = 100;
/// Relative tolerance when comparing non-integer JSON numbers.
const FLOAT_TOLERANCE: f64 = 1e-12;

#[derive(Default)]
pub(super) struct Diff {
    lines: Vec<String>,
    /// Differences found beyond [`MAX_DIFFERENCES`].
    omitted: usize,
}

impl Diff {
    fn full(&self) -> bool {
        self.lines.len() >= MAX_DIFFERENCES
    }

    /// Records one difference; short values on one line, long ones on two more.
    pub(super) fn push(&mut self, path: &str, detail: Option<String>, recorded: String, actual: String) {
        if self.full() {
            self.omitted += 1;
            return;
        }
        let line = match detail {
            None if path.len() + recorded.len() + actual.len() <= 80 => {
                format!("  - {path}: recorded {recorded}, actual {actual}")
            }
            None => format!("  - {path}:\n      recorded: {recorded}\n      actual:   {actual}"),
            Some(d) => format!("  - {path}: {d}\n      recorded: {recorded}\n      actual:   {actual}"),
        };
        self.lines.push(line);
    }

    /// Two differing texts: a window around their first difference.
    pub(super) fn strings(&mut self, path: &str, recorded: &str, actual: &str) {
        let at = first_difference(recorded, actual);
        let (r_len, a_len) = (recorded.chars().count(), actual.chars().count());
        let detail = format!("differs at offset {at} (recorded {r_len} chars, actual {a_len})");
        self.push(path, Some(detail), window(recorded, at), window(actual, at));
    }

    /// Two differing JSON values, walked down to the differing leaves.
    pub(super) fn values(&mut self, path: &str, recorded: &Value, actual: &Value) {
        match (recorded, actual) {
            (Value::Object(r), Value::Object(a)) => {
                for (key, rv) in r {
                    let sub = join_key(path, key);
                    match a.get(key) {
                        Some(av) => {
                            if !json_eq(rv, av) {
                                self.values(&sub, rv, av);
                            }
                        }
                        None => self.push(&sub, None, compact(rv), "(absent)".to_owned()),
                    }
                }
                for (key, av) in a.iter().filter(|(k, _)| !r.contains_key(*k)) {
                    self.push(&join_key(path, key), None, "(absent)".to_owned(), compact(av));
                }
            }
            (Value::Array(r), Value::Array(a)) => {
                if r.len() != a.len() {
                    self.push(path, None, items(r.len()), items(a.len()));
                }
                for (i, (rv, av)) in r.iter().zip(a).enumerate() {
                    if !json_eq(rv, av) {
                        self.values(&format!("{path}[{i}]"), rv, av);
                    }
                }
                // The first extra item only: the rest follow from it.
                let n = r.len().min(a.len());
                match (r.get(n), a.get(n)) {
                    (Some(rv), None) => self.push(&format!("{path}[{n}]"), None, compact(rv), "(absent)".to_owned()),
                    (None, Some(av)) => self.push(&format!("{path}[{n}]"), None, "(absent)".to_owned(), compact(av)),
                    _ => {}
                }
            }
            (Value::String(r), Value::String(a)) => self.strings(path, r, a),
            (r, a) => {
                if !json_eq(r, a) {
                    self.push(path, None, compact(r), compact(a));
                }
            }
        }
    }

    pub(super) fn finish(mut self) -> Vec<String> {
        if self.omitted > 0 {
            self.lines.push(format!(
                "  … and {} more difference{}",
                self.omitted,
                if self.omitted == 1 { "" } else { "s" }
            ));
        }
        self.lines
    }
}

/// Tools compared by name: the name lists when they differ, then each tool present in both.
pub(super) fn diff_tools(diff: &mut Diff, recorded: &[ToolSpec], actual: &[ToolSpec]) {
    let names = |tools: &[ToolSpec]| -> Vec<String> { tools.iter().map(|t| t.name.clone()).collect() };
    let (r_names, a_names) = (names(recorded), names(actual));
    if r_names != a_names {
        let list = |n: &[String]| format!("[{}]", n.join(", "));
        diff.push("tools (names)", None, list(&r_names), list(&a_names));
    }
    for r in recorded {
        let Some(a) = actual.iter().find(|a| a.name == r.name) else { continue };
        let path = format!("tools[{:?}]", r.name);
        if r.description != a.description {
            diff.strings(&format!("{path}.description"), &r.description, &a.description);
        }
        if !json_eq(&r.input_schema, &a.input_schema) {
            diff.values(&format!("{path}.input_schema"), &r.input_schema, &a.input_schema);
        }
    }
}

/// JSON equality, with non-integer numbers equal within [`FLOAT_TOLERANCE`] (relative).
fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => {
            if x == y {
                return true;
            }
            if !(x.is_f64() || y.is_f64()) {
                return false;
            }
            match (x.as_f64(), y.as_f64()) {
                (Some(x), Some(y)) => (x - y).abs() <= FLOAT_TOLERANCE * x.abs().max(y.abs()),
                _ => false,
            }
        }
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        _ => a == b,
    }
}

/// `path.key`, or `path["key"]` when the key is not a plain identifier.
fn join_key(path: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && !key.starts_with(|c: char| c.is_ascii_digit())
        && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if plain { format!("{path}.{key}") } else { format!("{path}[{key:?}]") }
}

/// Index (in chars) of the first char where `a` and `b` differ.
fn first_difference(a: &str, b: &str) -> usize {
    a.chars().zip(b.chars()).take_while(|(x, y)| x == y).count()
}

/// The text around char `at`, quoted, with `…` where it is cut.
fn window(s: &str, at: usize) -> String {
    let start = at.saturating_sub(CONTEXT_BEFORE);
    let mut out = String::new();
    if start > 0 {
        out.push('…');
    }
    let mut taken = s.chars().skip(start);
    out.extend(taken.by_ref().take(SNIPPET_CHARS));
    if taken.next().is_some() {
        out.push('…');
    }
    format!("{out:?}")
}

/// A JSON value on one line, cut at [`VALUE_CHARS`].
pub(super) fn compact(v: &Value) -> String {
    let s = v.to_string();
    match crate::text::prefix_chars(&s, VALUE_CHARS) {
        (head, true) => format!("{head}… ({} chars)", s.chars().count()),
        (_, false) => s,
    }
}

pub(super) fn option_text(s: Option<&str>) -> String {
    match s {
        Some(s) => window(s, 0),
        None => "(none)".to_owned(),
    }
}

fn items(n: usize) -> String {
    format!("{n} item{}", if n == 1 { "" } else { "s" })
}
