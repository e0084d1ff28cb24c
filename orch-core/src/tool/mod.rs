//! Tools: the [`Tool`] trait, the [`ToolRegistry`], sandboxed paths and the built-in tools.
//!
//! Built-ins are named and shaped like Claude Code's tools so `.claude/` files that name them
//! (`allowed-tools: Read, Write, Bash`) apply unchanged: `Read`, `Write`, `Edit`, `Glob`, `Grep`, `Bash`.

pub mod builtin;
pub mod confined;
#[cfg(feature = "mcp")]
pub mod mcp;
pub mod sandbox;
mod typed;

/// The `schemars` this crate derives typed tools' schemas with (for `#[schemars(crate = …)]`).
pub use schemars;
pub use typed::{TypedTool, decode_args, input_schema_of};

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::Value;

use crate::ErrorKind;
use crate::Interrupt;
use crate::model::ToolSpec;
use crate::runtime::Runtime;
use crate::wire::Id;

/// What a tool knows about the call it serves.
#[derive(Clone)]
pub struct ToolContext {
    /// The agent's working directory (absolute). File tools are confined to it.
    pub working_dir: PathBuf,
    /// The calling agent.
    pub agent_id: Id,
    /// The calling agent's name.
    pub agent_name: String,
    /// The tool call id.
    pub tool_use_id: String,
    /// Triggered when the turn is interrupted; long tools should stop.
    pub interrupt: Interrupt,
    /// The host runtime (processes, sleep).
    pub runtime: Arc<dyn Runtime>,
}

impl std::fmt::Debug for ToolContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ToolContext")
            .field("working_dir", &self.working_dir)
            .field("agent_name", &self.agent_name)
            .field("tool_use_id", &self.tool_use_id)
            .finish_non_exhaustive()
    }
}

/// A tool's successful answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolOutput {
    /// Text given to the model.
    pub content: String,
    /// Whether the model should read it as an error (e.g. a command's non-zero exit).
    pub is_error: bool,
}

impl ToolOutput {
    /// A successful text result.
    pub fn text(content: impl Into<String>) -> Self {
        Self { content: content.into(), is_error: false }
    }

    /// An error result.
    pub fn error(content: impl Into<String>) -> Self {
        Self { content: content.into(), is_error: true }
    }
}

/// A failed tool call. The model receives the message as a tool error.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum ToolError {
    /// The input does not fit the schema.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// Refused by the sandbox (path outside the working dir, symlink out, …). Recorded as `ToolRefused`.
    #[error("refused: {0}")]
    Refused(String),
    /// The tool ran and failed.
    #[error("{0}")]
    Failed(String),
    /// Stopped by an interrupt.
    #[error("interrupted")]
    Interrupted,
}

impl ToolError {
    /// What kind of failure this is: input that does not fit or that the sandbox refuses is usage, an
    /// interrupted call interrupted, a tool that failed on its own internal. (The engine hands tool
    /// errors to the model; the kind is for hosts that run tools themselves.)
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidInput(_) | Self::Refused(_) => ErrorKind::Usage,
            Self::Failed(_) => ErrorKind::Internal,
            Self::Interrupted => ErrorKind::Interrupted,
        }
    }
}

/// A tool a model can call.
#[async_trait]
pub trait Tool: Send + Sync + 'static {
    /// Name the model uses.
    fn name(&self) -> &str;
    /// What it does, for the model.
    fn description(&self) -> &str;
    /// JSON schema of its input.
    fn input_schema(&self) -> Value;
    /// Runs it.
    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError>;

    /// Whether the call must be in the log before the tool runs. Tools whose effects are events of
    /// their own (the orchestrator's management tools create and command agents) say yes, so the log
    /// reads in causal order; it costs one more store commit per call. Default: no (the call is
    /// committed with its result, or as soon as the tool turns out to be slow).
    fn log_before_call(&self) -> bool {
        false
    }

    /// The spec offered to the model.
    fn spec(&self) -> ToolSpec {
        ToolSpec {
            name: self.name().to_string(),
            description: self.description().to_string(),
            input_schema: self.input_schema(),
        }
    }
}

/// Tools by name. Cloning is cheap (tools are shared).
#[derive(Clone, Default)]
pub struct ToolRegistry {
    tools: BTreeMap<String, Arc<dyn Tool>>,
}

impl std::fmt::Debug for ToolRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.tools.keys()).finish()
    }
}

impl ToolRegistry {
    /// No tools.
    pub fn new() -> Self {
        Self::default()
    }

    /// The built-ins: `Read`, `Write`, `Edit`, `Glob`, `Grep`, `Bash`.
    pub fn with_builtins() -> Self {
        let mut r = Self::new();
        for t in builtin::all() {
            r.register_arc(t);
        }
        r
    }

    /// Adds (or replaces) a tool.
    pub fn register(&mut self, tool: impl Tool) -> &mut Self {
        self.register_arc(Arc::new(tool))
    }

    /// Adds (or replaces) a shared tool.
    pub fn register_arc(&mut self, tool: Arc<dyn Tool>) -> &mut Self {
        self.tools.insert(tool.name().to_string(), tool);
        self
    }

    /// Adds (or replaces) every tool of `other`.
    pub fn extend(&mut self, other: &ToolRegistry) -> &mut Self {
        self.tools.extend(other.tools.iter().map(|(k, v)| (k.clone(), v.clone())));
        self
    }

    /// Removes tool `name`; whether it was there.
    pub fn remove(&mut self, name: &str) -> bool {
        self.tools.remove(name).is_some()
    }

    /// A tool by name.
    pub fn get(&self, name: &str) -> Option<&Arc<dyn Tool>> {
        self.tools.get(name)
    }

    /// Tool names, sorted.
    pub fn names(&self) -> Vec<&str> {
        self.tools.keys().map(String::as_str).collect()
    }

    /// Specs for the model, sorted by name.
    pub fn specs(&self) -> Vec<ToolSpec> {
        self.tools.values().map(|t| t.spec()).collect()
    }

    /// Only the named tools (unknown names are ignored). Used for `allowed-tools` and template `tools`.
    pub fn only(&self, names: &[impl AsRef<str>]) -> Self {
        Self {
            tools: self
                .tools
                .iter()
                .filter(|(k, _)| names.iter().any(|n| n.as_ref() == k.as_str()))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        }
    }
}
