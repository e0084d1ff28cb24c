//! The built-in tools, named and shaped like Claude Code's: [`Read`], [`Write`], [`Edit`], [`Glob`],
//! [`Grep`] and [`Bash`].
//!
//! The five file tools are confined to the agent's working directory by [`super::sandbox`]: a path
//! outside it (by `..`, an absolute path or a symbolic link) is [`ToolError::Refused`], and every file
//! operation goes through a handle on the working directory, so a link swapped in during a call cannot
//! lead out either. [`Bash`] commands are confined by Landlock on Linux (see its documentation).
//!
//! Inputs are checked against the tool's schema before use: an unknown field, a missing required
//! field or a field of the wrong type is [`ToolError::InvalidInput`] naming the field. `null` counts
//! as absent for optional fields.

pub mod bash;
pub mod edit;
pub mod glob;
pub mod grep;
pub mod read;
pub mod write;

use std::path::Path;
use std::sync::Arc;

use serde_json::{Map, Value, json};

pub use bash::{Bash, BashSandbox};
pub use edit::Edit;
pub use glob::Glob;
pub use grep::Grep;
pub use read::Read;
pub use write::Write;

use super::{Tool, ToolError};

/// All built-in tools: `Read`, `Write`, `Edit`, `Glob`, `Grep`, `Bash`.
pub fn all() -> Vec<Arc<dyn Tool>> {
    vec![Arc::new(Read), Arc::new(Write), Arc::new(Edit), Arc::new(Glob), Arc::new(Grep), Arc::new(Bash::default())]
}

/// JSON type of an input field.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    String,
    /// A non-negative integer (`10` or `10.0`).
    Integer,
    Boolean,
}

impl Kind {
    fn json_type(self) -> &'static str {
        match self {
            Kind::String => "string",
            Kind::Integer => "integer",
            Kind::Boolean => "boolean",
        }
    }
}

/// One input field of a tool: the schema and the validation are built from the same table.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Field {
    pub name: &'static str,
    pub kind: Kind,
    pub required: bool,
    pub description: &'static str,
}

impl Field {
    pub const fn required(name: &'static str, kind: Kind, description: &'static str) -> Self {
        Self { name, kind, required: true, description }
    }

    pub const fn optional(name: &'static str, kind: Kind, description: &'static str) -> Self {
        Self { name, kind, required: false, description }
    }
}

/// The JSON Schema of an input made of `fields`.
pub(crate) fn schema(fields: &[Field]) -> Value {
    let mut properties = Map::new();
    for f in fields {
        let mut p = json!({ "type": f.kind.json_type(), "description": f.description });
        if f.kind == Kind::Integer
            && let Some(obj) = p.as_object_mut()
        {
            obj.insert("minimum".to_string(), json!(0));
        }
        properties.insert(f.name.to_string(), p);
    }
    let required: Vec<&str> = fields.iter().filter(|f| f.required).map(|f| f.name).collect();
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// A validated input: every key is a known field of the right type, required ones are present.
#[derive(Debug)]
pub(crate) struct Args {
    map: Map<String, Value>,
}

impl Args {
    /// Checks `input` against `fields`.
    pub fn parse(tool: &str, fields: &[Field], input: Value) -> Result<Self, ToolError> {
        let Value::Object(map) = input else {
            return Err(ToolError::InvalidInput(format!(
                "{tool} input must be a JSON object, got {}",
                type_name(&input)
            )));
        };
        let accepted = || fields.iter().map(|f| f.name).collect::<Vec<_>>().join(", ");
        for (key, value) in &map {
            let Some(field) = fields.iter().find(|f| f.name == key) else {
                return Err(ToolError::InvalidInput(format!("unknown field `{key}` ({tool} accepts: {})", accepted())));
            };
            if value.is_null() && !field.required {
                continue;
            }
            let ok = match field.kind {
                Kind::String => value.is_string(),
                Kind::Boolean => value.is_boolean(),
                Kind::Integer => as_count(value).is_some(),
            };
            if !ok {
                let expected = match field.kind {
                    Kind::Integer => "a non-negative integer",
                    Kind::String => "a string",
                    Kind::Boolean => "a boolean",
                };
                let shown = value.to_string();
                let (shown, cut) = truncate_chars(&shown, 80);
                return Err(ToolError::InvalidInput(format!(
                    "field `{key}` must be {expected}, got {} ({shown}{})",
                    type_name(value),
                    if cut { "…" } else { "" }
                )));
            }
        }
        for f in fields.iter().filter(|f| f.required) {
            if map.get(f.name).is_none_or(Value::is_null) {
                return Err(ToolError::InvalidInput(format!(
                    "missing required field `{}` ({tool} accepts: {})",
                    f.name,
                    accepted()
                )));
            }
        }
        Ok(Self { map })
    }

    /// A string field (empty string if absent; use for required fields).
    pub fn string(&self, name: &str) -> String {
        self.opt_string(name).unwrap_or_default()
    }

    /// An optional string field.
    pub fn opt_string(&self, name: &str) -> Option<String> {
        self.map.get(name).and_then(Value::as_str).map(str::to_string)
    }

    /// An optional integer field.
    pub fn opt_u64(&self, name: &str) -> Option<u64> {
        self.map.get(name).and_then(as_count)
    }

    /// An optional boolean field.
    pub fn opt_bool(&self, name: &str) -> Option<bool> {
        self.map.get(name).and_then(Value::as_bool)
    }
}

/// A non-negative integer, also accepted as an integral float (`10.0`).
fn as_count(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_u64() {
        return Some(n);
    }
    let f = v.as_f64()?;
    // Integral, non-negative and exactly representable; the cast cannot lose anything.
    if f >= 0.0 && f.fract() == 0.0 && f <= 9_007_199_254_740_992.0 {
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        Some(f as u64)
    } else {
        None
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// `path` as shown to the model: relative to the canonical working dir `root` (`.` for the root
/// itself), or absolute if it is not under it.
pub(crate) fn display_path(root: &Path, path: &Path) -> String {
    match path.strip_prefix(root) {
        Ok(rel) if rel.as_os_str().is_empty() => ".".to_string(),
        Ok(rel) => rel.display().to_string(),
        Err(_) => path.display().to_string(),
    }
}

/// Whether `bytes` look binary (a NUL byte in the first 8 KiB, like `grep` and `git`).
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    bytes.iter().take(8192).any(|&b| b == 0)
}

/// `line` cut to at most `max` characters; the flag says whether it was cut.
pub(crate) use crate::text::prefix_chars as truncate_chars;

/// An I/O error as a tool failure, naming what was being done.
pub(crate) fn io_failed(what: &str, shown: &str, e: &std::io::Error) -> ToolError {
    ToolError::Failed(format!("{what} {shown}: {e}"))
}
