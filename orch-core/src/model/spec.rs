//! Model specs (`scripted:PATH`, `anthropic:MODEL`, …) and model aliases.

use std::collections::HashMap;
use std::sync::RwLock;

/// The accepted forms of a model spec, for error messages and help.
pub const ACCEPTED_SPECS: &str = "scripted:PATH (a scripted-model JSON file), anthropic:MODEL, openai:MODEL, ollama:MODEL, claude-code[:MODEL], replay:FILE";

/// What follows `provider:` in a model spec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetKind {
    /// A model id (`anthropic:claude-sonnet-5`); required.
    ModelId,
    /// A file path (`scripted:demo.json`, `replay:run.jsonl`); required. The model id such a provider
    /// is sent is its own name.
    File,
    /// An optional model id (`claude-code` or `claude-code:sonnet`).
    Optional,
}

impl TargetKind {
    /// The built-in providers' kinds; any other name takes a model id.
    pub fn of_builtin(provider: &str) -> Self {
        match provider {
            "scripted" | "replay" => Self::File,
            "claude-code" => Self::Optional,
            _ => Self::ModelId,
        }
    }
}

/// A parsed model spec: which provider, and what it is given (a model id or a file).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModelSpec {
    /// `scripted`, `anthropic`, `openai`, `ollama`, `claude-code`, `replay`, or a provider registered
    /// in a [`ProviderRegistry`](super::ProviderRegistry).
    pub provider: String,
    /// Model id, or file path for `scripted` and `replay`. Empty for bare `claude-code`.
    pub target: String,
}

/// A bad model spec.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("invalid model spec '{spec}': {reason}; accepted forms: {accepted}")]
pub struct SpecError {
    /// What was given.
    pub spec: String,
    /// Why it is wrong.
    pub reason: String,
    /// The accepted forms (of the built-in providers, or of a registry's).
    pub accepted: String,
}

const PROVIDERS: &[&str] = &["scripted", "anthropic", "openai", "ollama", "claude-code", "replay"];

/// Names registered in any [`ProviderRegistry`](super::ProviderRegistry) of this process, so that
/// [`ModelSpec::parse`] accepts them too. Only ever grows.
static REGISTERED: RwLock<Vec<String>> = RwLock::new(Vec::new());

/// Makes [`ModelSpec::parse`] accept `name` (registries call this when a provider is registered).
pub(crate) fn note_registered(name: &str) {
    if PROVIDERS.contains(&name) {
        return;
    }
    let mut names = REGISTERED.write().unwrap_or_else(|p| p.into_inner());
    if !names.iter().any(|n| n == name) {
        names.push(name.to_string());
    }
}

fn registered_here(name: &str) -> bool {
    PROVIDERS.contains(&name) || REGISTERED.read().unwrap_or_else(|p| p.into_inner()).iter().any(|n| n == name)
}

/// The accepted forms of [`ModelSpec::parse`]: the built-ins', then registered providers'.
fn accepted_forms() -> String {
    let mut s = ACCEPTED_SPECS.to_string();
    for n in REGISTERED.read().unwrap_or_else(|p| p.into_inner()).iter() {
        s.push_str(&format!(", {n}:MODEL"));
    }
    s
}

/// The one parser behind [`ModelSpec::parse`] and [`ProviderRegistry::parse`](super::ProviderRegistry::parse):
/// `kind` says what a provider name takes (`None`: unknown), `accepted` lists the forms for errors.
pub(crate) fn parse_with(
    spec: &str,
    kind: impl Fn(&str) -> Option<TargetKind>,
    accepted: impl Fn() -> String,
) -> Result<ModelSpec, SpecError> {
    let bad = |reason: &str| SpecError { spec: spec.to_string(), reason: reason.to_string(), accepted: accepted() };
    let spec_t = spec.trim();
    if spec_t.is_empty() {
        return Err(bad("it is empty"));
    }
    let (provider, target) = match spec_t.split_once(':') {
        Some((p, t)) => (p, t),
        None if kind(spec_t) == Some(TargetKind::Optional) => (spec_t, ""),
        None => return Err(bad("it has no provider prefix")),
    };
    let Some(k) = kind(provider) else {
        return Err(bad(&format!("unknown provider '{provider}'")));
    };
    if target.is_empty() && k != TargetKind::Optional {
        return Err(bad(&format!(
            "'{provider}:' needs a {}",
            if k == TargetKind::File { "file path" } else { "model id" }
        )));
    }
    Ok(ModelSpec { provider: provider.to_string(), target: target.to_string() })
}

impl ModelSpec {
    /// Parses `provider:target`. The provider is a built-in one or one registered in a
    /// [`ProviderRegistry`](super::ProviderRegistry) of this process; a registry's own
    /// [`parse`](super::ProviderRegistry::parse) accepts exactly its providers.
    pub fn parse(spec: &str) -> Result<Self, SpecError> {
        parse_with(
            spec,
            |p| {
                if PROVIDERS.contains(&p) {
                    Some(TargetKind::of_builtin(p))
                } else {
                    registered_here(p).then_some(TargetKind::ModelId)
                }
            },
            accepted_forms,
        )
    }

    /// Whether an agent's model string names its own provider (`anthropic:claude-…`), a built-in one or
    /// one registered in a registry of this process.
    pub fn is_qualified(model: &str) -> bool {
        model.split_once(':').is_some_and(|(p, _)| registered_here(p))
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
