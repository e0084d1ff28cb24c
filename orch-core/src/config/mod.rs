//! The effective configuration of an orch host: one typed [`OrchConfig`] built from layers, each value
//! carrying the [`Source`] it came from.
//!
//! Layers, highest first:
//! 1. the host's flags ([`Flags`]: `--db`, `--model`, `--record`, `--cwd`);
//! 2. the process environment (`ORCH_*`, the providers' `ANTHROPIC_API_KEY`, …; `DATABASE_URL` when
//!    `ORCH_DATABASE_URL` is unset; `BACKEND_PORT` when `ORCH_PORT` is unset);
//! 3. a `.env` file in the working directory, with the same names. It is read, never loaded into the
//!    process environment: its values configure orch (the API keys reach the providers and the Claude
//!    Code CLI through this config) but are not exported to agents' `Bash` commands;
//! 4. `<working dir>/.orch/config.toml` (see [`file`](mod@file) for its keys; an unknown key is an error);
//! 5. the defaults.
//!
//! [`OrchConfig::load`] reads all of them; [`OrchConfig::load_from`] takes the environment and the
//! current directory as arguments (for tests and embedding hosts). Nothing here opens a store or calls a
//! model: [`crate::engine`] turns a config into a running engine.
//!
//! Secrets (API keys, a database URL's password) are [`Secret`]s and [`DatabaseUrl`]s: their `Debug`,
//! `Display` and `Serialize` never show the secret.

pub mod file;
mod load;
pub mod notify;
mod value;

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use crate::ErrorKind;

pub use load::ConfigInputs;
pub use value::{DatabaseUrl, Secret, redact_url};

/// Where one effective value came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Source {
    /// A command-line flag (or the host's own explicit setting).
    Flag {
        /// The flag, e.g. `--model`.
        name: String,
    },
    /// The process environment.
    Env {
        /// The variable.
        var: String,
    },
    /// A `.env` file.
    DotEnv {
        /// The file.
        path: PathBuf,
        /// The variable.
        var: String,
    },
    /// The config file.
    File {
        /// The file.
        path: PathBuf,
        /// The dotted key, e.g. `models.default`.
        key: String,
    },
    /// Not set anywhere: the built-in default.
    Default,
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Flag { name } => write!(f, "flag {name}"),
            Source::Env { var } => write!(f, "environment variable {var}"),
            Source::DotEnv { path, var } => write!(f, "{var} in {}", path.display()),
            Source::File { path, key } => write!(f, "{key} in {}", path.display()),
            Source::Default => write!(f, "default"),
        }
    }
}

impl Source {
    /// Whether the value is in the process environment already (so a child process inherits it).
    pub fn is_process_env(&self) -> bool {
        matches!(self, Source::Env { .. })
    }
}

/// A value and where it came from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Sourced<T> {
    /// The effective value.
    pub value: T,
    /// Its source.
    pub source: Source,
}

impl<T> Sourced<T> {
    /// A built-in default.
    pub fn default_value(value: T) -> Self {
        Self { value, source: Source::Default }
    }

    /// A value set by the host (shown as the flag `name`).
    pub fn flag(value: T, name: impl Into<String>) -> Self {
        Self { value, source: Source::Flag { name: name.into() } }
    }
}

/// The flags a host passes; every field is optional and beats every other layer.
#[derive(Debug, Clone, Default)]
pub struct Flags {
    /// `--cwd`: the working directory (default: the current directory).
    pub working_dir: Option<PathBuf>,
    /// `--db`: the store URL.
    pub database_url: Option<String>,
    /// `--model`: the default model spec.
    pub model: Option<String>,
    /// `--record`: record model calls to this cassette.
    pub record: Option<PathBuf>,
}

/// Everything an orch host is configured with. Build it with [`OrchConfig::load`]; change fields
/// afterwards to override (give them [`Source::Flag`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrchConfig {
    /// The agents' working directory (absolute): file tools are confined to it; `.claude/`, `.env` and
    /// `.orch/config.toml` are read from it.
    pub working_dir: Sourced<PathBuf>,
    /// The `.env` file that was read, if there was one.
    pub dotenv_file: Option<PathBuf>,
    /// The config file that was read, if there was one.
    pub config_file: Option<PathBuf>,
    /// The store.
    pub store: StoreConfig,
    /// Models, prices and aliases.
    pub models: ModelsConfig,
    /// Provider endpoints, keys and transport settings.
    pub providers: ProvidersConfig,
    /// The orchestrator.
    pub orchestrator: OrchestratorSection,
    /// Limits of agent runs.
    pub limits: LimitsConfig,
    /// Hooks.
    pub hooks: HooksConfig,
    /// What `Bash` commands may do.
    pub sandbox: SandboxConfig,
    /// The Claude Code executor.
    pub claude_code: ClaudeCodeSection,
    /// The HTTP server (`orch serve`).
    pub server: ServerConfig,
    /// Task graphs: routing, retries, stuck detection (the `[graphs]` section of the file).
    pub graphs: GraphsConfig,
    /// Chat-channel notifications and Telegram commands (`[notify]`, the bot token).
    pub notify: notify::NotifySection,
}

/// How task graphs are run: `[graphs]` of the config file. Every key is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GraphsConfig {
    /// Tasks a worker runs at once (default 4).
    pub concurrency: Option<u32>,
    /// Failed attempts before a task raises a checkpoint (default 3).
    pub max_attempts: Option<u32>,
    /// Retry backoff base in seconds: base × 2^(failures-1), at most 5 minutes (default 1).
    pub retry_base_secs: Option<f64>,
    /// An attempt without any new event this long is stuck (default 600).
    pub stuck_no_output_secs: Option<f64>,
    /// An attempt without a new tool call this long is stuck (default 300).
    pub stuck_no_tool_secs: Option<f64>,
    /// Each task attempt works in a git worktree and branch of its own, merged into the main tree
    /// when the task completes (default false).
    pub worktree: Option<bool>,
    /// The model of the QA pass: completed tasks whose verification criteria are not all commands are
    /// reviewed by an agent on it, with read-only tools (default: no review).
    pub qa_model: Option<String>,
    /// The planning model of `orch plan`: an alias, a model id or a `provider:model` spec (default: the
    /// default model).
    pub planning_model: Option<String>,
    /// Routing rules, tried in order before the built-in table.
    #[serde(default)]
    pub routes: Vec<RouteRule>,
}

/// One routing rule: tasks of a type and complexity go to a model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRule {
    /// The task type it applies to (`code`, `research`, …); absent or `*`: any.
    #[serde(default)]
    pub task_type: Option<String>,
    /// The complexity it applies to (`simple`, `medium`, `complex`); absent: any.
    #[serde(default)]
    pub complexity: Option<String>,
    /// The model (an alias, a model id or a `provider:model` spec).
    pub model: String,
    /// Models to use instead while the model's provider is unavailable, in order.
    #[serde(default)]
    pub fallback: Vec<String>,
}

/// The store.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoreConfig {
    /// `sqlite://PATH`, `sqlite::memory:`, a file path or `postgres://…`; unset: `<cwd>/.orch/orch.db`.
    pub url: Sourced<Option<DatabaseUrl>>,
    /// PostgreSQL schema (unset: the URL's `search_path` option, else `orch`).
    pub pg_schema: Sourced<Option<String>>,
    /// PostgreSQL pool size (unset: the URL's `pool_max`, else 10).
    pub pg_pool: Sourced<Option<u32>>,
}

/// Models, prices and aliases.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ModelsConfig {
    /// The default model spec (`scripted:PATH`, `anthropic:MODEL`, …). Unset: Anthropic's current Sonnet
    /// when an Anthropic key is configured.
    pub default: Sourced<Option<String>>,
    /// The orchestrator's own model (an alias, a model id or a spec of the default provider); unset:
    /// the default.
    pub orchestrator: Sourced<Option<String>>,
    /// The model of agents created without one; unset: the default.
    pub agents: Sourced<Option<String>>,
    /// The background summary model (a native spec); unset: built-in summaries only.
    pub summary: Sourced<Option<String>>,
    /// The model of the command input's suggestions (an alias, a model id or a native spec); unset:
    /// the `fast` alias on the default model's provider.
    pub autocomplete: Sourced<Option<String>>,
    /// A JSON price file merged over the built-in prices.
    pub prices: Sourced<Option<PathBuf>>,
    /// A JSON alias file merged over the built-in aliases.
    pub aliases: Sourced<Option<PathBuf>>,
    /// Record every model call to this cassette.
    pub record: Sourced<Option<PathBuf>>,
}

/// Provider endpoints, keys and transport settings.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProvidersConfig {
    /// `ANTHROPIC_API_KEY`.
    pub anthropic_api_key: Sourced<Option<Secret>>,
    /// `ANTHROPIC_BASE_URL`.
    pub anthropic_base_url: Sourced<Option<String>>,
    /// `ORCH_THINKING_BUDGET`: extended thinking for `anthropic:` models, in tokens (unset or 0: off).
    pub thinking_budget: Sourced<Option<u32>>,
    /// `OPENAI_API_KEY`.
    pub openai_api_key: Sourced<Option<Secret>>,
    /// `OPENAI_BASE_URL`.
    pub openai_base_url: Sourced<Option<String>>,
    /// `OLLAMA_HOST`.
    pub ollama_host: Sourced<Option<String>>,
    /// `ORCH_MODEL_MAX_RETRIES` (default 3).
    pub max_retries: Sourced<u32>,
    /// `ORCH_MODEL_CONNECT_TIMEOUT_SECS` (default 10).
    pub connect_timeout_secs: Sourced<f64>,
    /// `ORCH_MODEL_IDLE_TIMEOUT_SECS` (default 60).
    pub idle_timeout_secs: Sourced<f64>,
}

/// The orchestrator.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OrchestratorSection {
    /// A Markdown prompt file instead of the built-in prompt.
    pub prompt_file: Sourced<Option<PathBuf>>,
}

/// Limits of agent runs.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LimitsConfig {
    /// Model calls allowed per agent command run (default 500).
    pub max_agent_turns: Sourced<u32>,
    /// A new agent answers a "Ready" turn right after `create_agent` (default off).
    pub agent_warmup: Sourced<bool>,
    /// The fraction of a model's context window past which a conversation is compacted before the
    /// next model call (default 0.8; 0: never automatically). An agent's own `compact_at` wins.
    pub compact_at: Sourced<f64>,
    /// How deep `Task` subagents may nest (default 2: a subagent may start one more level).
    pub max_subagent_depth: Sourced<u32>,
    /// How many `Task` calls of one model response run at once (default 4).
    pub max_parallel_subagents: Sourced<u32>,
}

/// Hooks.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HooksConfig {
    /// Apply the hooks of `.claude/settings.json` and `.claude/settings.local.json` to native agents
    /// and the orchestrator (default on).
    pub settings: Sourced<bool>,
}

/// What the `Bash` tool's commands may do (`[sandbox]`; see [`crate::confine`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SandboxConfig {
    /// Confine `Bash` commands: on Linux (Landlock) they may write only below the working directory,
    /// a private temporary directory and [`SandboxConfig::writable`] (default on).
    pub bash: Sourced<bool>,
    /// Let confined commands use the network (TCP; default off).
    pub network: Sourced<bool>,
    /// More directories confined commands may write below (absolute, resolved against the working
    /// directory).
    pub writable: Sourced<Vec<PathBuf>>,
}

/// The Claude Code executor.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClaudeCodeSection {
    /// The `claude` executable (default `claude` on `PATH`).
    pub binary: Sourced<PathBuf>,
}

/// The HTTP server of `orch serve`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ServerConfig {
    /// Address to bind (default `127.0.0.1`).
    pub host: Sourced<String>,
    /// Port (default 8000; `ORCH_PORT`, else the seed's `BACKEND_PORT`).
    pub port: Sourced<u16>,
    /// Origins allowed by CORS (default none: same origin only).
    pub cors_origins: Sourced<Vec<String>>,
}

/// Default port of `orch serve`.
pub const DEFAULT_PORT: u16 = 8000;
/// Default model calls per agent command run.
pub const DEFAULT_MAX_AGENT_TURNS: u32 = 500;
/// Default fraction of the context window past which a conversation is compacted.
pub const DEFAULT_COMPACT_AT: f64 = 0.8;
/// Default nesting depth of `Task` subagents.
pub const DEFAULT_MAX_SUBAGENT_DEPTH: u32 = 2;
/// Default number of `Task` subagents of one model response run at once.
pub const DEFAULT_MAX_PARALLEL_SUBAGENTS: u32 = 4;

/// Why a configuration could not be read. Every variant is a usage error (exit code 2 in the CLI).
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The working directory is missing or not a directory.
    #[error("{flag} {path}: {message}")]
    WorkingDir {
        /// How it was given (`--cwd`, or `the current directory`).
        flag: String,
        /// The path.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A value does not parse.
    #[error("{what} '{value}' (from {from}): {message}")]
    Invalid {
        /// The setting.
        what: String,
        /// The value as given (never a secret).
        value: String,
        /// Where it came from.
        from: Box<Source>,
        /// What is wrong.
        message: String,
    },
    /// The `.env` file cannot be read or parsed.
    #[error("{}: {message}", path.display())]
    DotEnv {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// The config file cannot be read, is not TOML, or has an unknown key or a value of the wrong type.
    #[error("{}:{line}: {key}: {message}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The dotted key (or `-` when the error is not about one key).
        key: String,
        /// What is wrong.
        message: String,
    },
}

impl ConfigError {
    /// Always [`ErrorKind::Usage`]: every configuration problem is the user's input to fix.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

/// One line of `orch config`: a key, its value shown safely, and its source.
#[derive(Debug, Clone, Serialize)]
pub struct ConfigEntry {
    /// The dotted key, as in `config.toml`.
    pub key: &'static str,
    /// The environment variable(s) that set it.
    pub env: &'static str,
    /// The value, with secrets masked; `None` when unset.
    pub value: Option<serde_json::Value>,
    /// Where it came from.
    pub source: Source,
}

fn entry<T: Serialize>(key: &'static str, env: &'static str, s: &Sourced<T>) -> ConfigEntry {
    let value = serde_json::to_value(&s.value).ok().filter(|v| !v.is_null());
    ConfigEntry { key, env, value, source: s.source.clone() }
}

impl OrchConfig {
    /// Every setting with its (masked) value and source, in `config.toml` order.
    pub fn entries(&self) -> Vec<ConfigEntry> {
        let (s, m, p) = (&self.store, &self.models, &self.providers);
        let mut out = vec![
            entry("working_dir", "--cwd", &self.working_dir),
            entry("store.url", "ORCH_DATABASE_URL, DATABASE_URL", &s.url),
            entry("store.pg_schema", "ORCH_PG_SCHEMA", &s.pg_schema),
            entry("store.pg_pool", "ORCH_PG_POOL", &s.pg_pool),
            entry("models.default", "ORCH_MODEL", &m.default),
            entry("models.orchestrator", "ORCH_ORCHESTRATOR_MODEL", &m.orchestrator),
            entry("models.agents", "ORCH_AGENT_MODEL", &m.agents),
            entry("models.summary", "ORCH_SUMMARY_MODEL", &m.summary),
            entry("models.autocomplete", "ORCH_AUTOCOMPLETE_MODEL", &m.autocomplete),
            entry("models.prices", "ORCH_PRICES", &m.prices),
            entry("models.aliases", "ORCH_MODEL_ALIASES", &m.aliases),
            entry("models.record", "ORCH_RECORD", &m.record),
            entry("providers.anthropic_api_key", "ANTHROPIC_API_KEY", &p.anthropic_api_key),
            entry("providers.anthropic_base_url", "ANTHROPIC_BASE_URL", &p.anthropic_base_url),
            entry("providers.thinking_budget", "ORCH_THINKING_BUDGET", &p.thinking_budget),
            entry("providers.openai_api_key", "OPENAI_API_KEY", &p.openai_api_key),
            entry("providers.openai_base_url", "OPENAI_BASE_URL", &p.openai_base_url),
            entry("providers.ollama_host", "OLLAMA_HOST", &p.ollama_host),
            entry("providers.max_retries", "ORCH_MODEL_MAX_RETRIES", &p.max_retries),
            entry("providers.connect_timeout_secs", "ORCH_MODEL_CONNECT_TIMEOUT_SECS", &p.connect_timeout_secs),
            entry("providers.idle_timeout_secs", "ORCH_MODEL_IDLE_TIMEOUT_SECS", &p.idle_timeout_secs),
            entry("orchestrator.prompt_file", "ORCH_ORCHESTRATOR_PROMPT", &self.orchestrator.prompt_file),
            entry("limits.max_agent_turns", "ORCH_MAX_AGENT_TURNS", &self.limits.max_agent_turns),
            entry("limits.agent_warmup", "ORCH_AGENT_WARMUP", &self.limits.agent_warmup),
            entry("limits.compact_at", "ORCH_COMPACT_AT", &self.limits.compact_at),
            entry("limits.max_subagent_depth", "ORCH_MAX_SUBAGENT_DEPTH", &self.limits.max_subagent_depth),
            entry("limits.max_parallel_subagents", "ORCH_MAX_PARALLEL_SUBAGENTS", &self.limits.max_parallel_subagents),
            entry("hooks.settings", "ORCH_SETTINGS_HOOKS", &self.hooks.settings),
            entry("sandbox.bash", "ORCH_SANDBOX_BASH", &self.sandbox.bash),
            entry("sandbox.network", "ORCH_SANDBOX_NETWORK", &self.sandbox.network),
            entry("sandbox.writable", "ORCH_SANDBOX_WRITABLE", &self.sandbox.writable),
            entry("claude_code.binary", "ORCH_CLAUDE_BIN", &self.claude_code.binary),
            entry("server.host", "ORCH_HOST", &self.server.host),
            entry("server.port", "ORCH_PORT, BACKEND_PORT", &self.server.port),
            entry("server.cors_origins", "ORCH_CORS_ORIGINS", &self.server.cors_origins),
        ];
        out.extend(self.graph_entries());
        out.extend(self.notify.entries(&self.config_file));
        out
    }

    /// The `[graphs]` settings: set in the config file (or by a flag of `graph run` / `worker`), else
    /// their defaults.
    fn graph_entries(&self) -> Vec<ConfigEntry> {
        let g = &self.graphs;
        let file = |key: &'static str, value: Option<serde_json::Value>, default: serde_json::Value| {
            let source = match (&value, &self.config_file) {
                (Some(_), Some(path)) => Source::File { path: path.clone(), key: key.to_string() },
                (Some(_), None) => Source::Flag { name: "--worktree".into() },
                (None, _) => Source::Default,
            };
            let value = value.or(Some(default)).filter(|v| !v.is_null());
            ConfigEntry { key, env: "", value, source }
        };
        let v = |x: serde_json::Value| Some(x).filter(|x| !x.is_null());
        use serde_json::{Value, json};
        // The defaults are those the runner uses.
        let d = crate::graph::GraphSettings::default();
        vec![
            file("graphs.concurrency", v(json!(g.concurrency)), json!(d.concurrency)),
            file("graphs.max_attempts", v(json!(g.max_attempts)), json!(d.max_attempts)),
            file("graphs.retry_base_secs", v(json!(g.retry_base_secs)), json!(d.retry_base.as_secs_f64())),
            file(
                "graphs.stuck_no_output_secs",
                v(json!(g.stuck_no_output_secs)),
                json!(d.stuck.no_output.as_secs_f64()),
            ),
            file("graphs.stuck_no_tool_secs", v(json!(g.stuck_no_tool_secs)), json!(d.stuck.no_tool.as_secs_f64())),
            file("graphs.worktree", v(json!(g.worktree)), json!(d.worktree)),
            file("graphs.qa_model", v(json!(g.qa_model)), Value::Null),
            file("graphs.planning_model", v(json!(g.planning_model)), Value::Null),
            file(
                "graphs.routes",
                (!g.routes.is_empty()).then(|| serde_json::to_value(&g.routes).unwrap_or_default()),
                Value::Null,
            ),
        ]
    }
}

#[cfg(test)]
mod tests;
