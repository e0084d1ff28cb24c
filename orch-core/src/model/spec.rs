//! Model specs (`scripted:PATH`, `anthropic:MODEL`, …) and model aliases.

use std::collections::HashMap;

/// The accepted forms of a model spec, for error messages and help.
pub const ACCEPTED_SPECS: &str = "scripted:PATH (a scripted-model JSON file), anthropic:MODEL, openai:MODEL, ollama:MODEL, claude-code[:MODEL], replay:FILE";

/// A parsed model spec: which provider, and what it is given (a model id or a file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelSpec {
    /// `scripted`, `anthropic`, `openai`, `ollama`, `claude-code` or `replay`.
    pub provider: String,
    /// Model id, or file path for `scripted` and `replay`. Empty for bare `claude-code`.
    pub target: String,
}

/// A bad model spec.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid model spec '{spec}': {reason}; accepted forms: {ACCEPTED_SPECS}")]
pub struct SpecError {
    /// What was given.
    pub spec: String,
    /// Why it is wrong.
    pub reason: String,
}

const PROVIDERS: &[&str] = &["scripted", "anthropic", "openai", "ollama", "claude-code", "replay"];

impl ModelSpec {
    /// Parses `provider:target`.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        let bad = |reason: &str| SpecError { spec: spec.to_string(), reason: reason.to_string() };
        let spec_t = spec.trim();
        if spec_t.is_empty() {
            return Err(bad("it is empty"));
        }
        let (provider, target) = match spec_t.split_once(':') {
            Some((p, t)) => (p, t),
            None if spec_t == "claude-code" => (spec_t, ""),
            None => return Err(bad("it has no provider prefix")),
        };
        if !PROVIDERS.contains(&provider) {
            return Err(bad(&format!("unknown provider '{provider}'")));
        }
        if target.is_empty() && provider != "claude-code" {
            return Err(bad(&format!(
                "'{provider}:' needs a {}",
                if matches!(provider, "scripted" | "replay") { "file path" } else { "model id" }
            )));
        }
        Ok(Self { provider: provider.to_string(), target: target.to_string() })
    }

    /// Whether an agent's model string names its own provider (`anthropic:claude-…`).
    pub fn is_qualified(model: &str) -> bool {
        model.split_once(':').is_some_and(|(p, _)| PROVIDERS.contains(&p))
    }
}

impl std::fmt::Display for ModelSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.target.is_empty() {
            write!(f, "{}", self.provider)
        } else {
            write!(f, "{}:{}", self.provider, self.target)
        }
    }
}

/// Error loading an alias file.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("model alias file {path}: {message}")]
pub struct AliasFileError {
    /// File.
    pub path: String,
    /// What was wrong.
    pub message: String,
}

/// Short names for model ids (`opus`, `sonnet`, `haiku`, `fast`), case-insensitive. Overridable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAliases {
    /// Alias (lower case) → model id.
    pub aliases: HashMap<String, String>,
}

impl Default for ModelAliases {
    fn default() -> Self {
        // The ids Claude Code 2.1 sends for these names (see shared/spec/claude-code-cli.md).
        let list = [
            ("opus", "claude-opus-4-8"),
            ("sonnet", "claude-sonnet-5"),
            ("haiku", "claude-haiku-4-5"),
            ("fast", "claude-haiku-4-5"),
        ];
        Self { aliases: list.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect() }
    }
}

impl ModelAliases {
    /// Adds or replaces aliases from a JSON file: `{"sonnet": "claude-sonnet-4-5", "mini": "gpt-4.1-mini"}`.
    pub fn merge_file(&mut self, path: &std::path::Path) -> Result<(), AliasFileError> {
        let err = |message: String| AliasFileError { path: path.display().to_string(), message };
        let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
        let map: HashMap<String, String> =
            serde_json::from_str(&text).map_err(|e| err(format!("line {}, column {}: {e}", e.line(), e.column())))?;
        self.aliases.extend(map.into_iter().map(|(k, v)| (k.to_ascii_lowercase(), v)));
        Ok(())
    }

    /// The model id for `name`: the alias target, or `name` itself.
    pub fn resolve<'a>(&'a self, name: &'a str) -> &'a str {
        self.aliases.get(&name.to_ascii_lowercase()).map(String::as_str).unwrap_or(name)
    }
}
