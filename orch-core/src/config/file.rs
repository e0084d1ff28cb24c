//! `<working dir>/.orch/config.toml`: every key is optional; an unknown key or a value of the wrong
//! type is an error naming the file, the line and the key.
//!
//! ```toml
//! [store]
//! url = "postgres://orch@db.internal/orch"   # or "sqlite://.orch/orch.db", or a file path
//! pg_schema = "orch"
//! pg_pool = 10
//!
//! [models]
//! default = "anthropic:claude-sonnet-5"      # scripted:PATH, openai:MODEL, ollama:MODEL, claude-code[:MODEL], replay:FILE
//! orchestrator = "opus"                      # the orchestrator's own model (alias, id or spec)
//! agents = "sonnet"                          # model of agents created without one
//! summary = "anthropic:claude-haiku-4-5"     # background event summaries
//! autocomplete = "haiku"                     # suggestions for the command input (default: `fast`)
//! prices = "prices.json"                     # relative paths are relative to the working directory
//! aliases = "aliases.json"
//! record = "calls.jsonl"
//!
//! [providers]                                # API keys belong in the environment or .env, not here
//! anthropic_base_url = "https://api.anthropic.com"
//! thinking_budget = 4096
//! openai_base_url = "http://127.0.0.1:8080/v1"
//! ollama_host = "127.0.0.1:11434"
//! max_retries = 3
//! connect_timeout_secs = 10
//! idle_timeout_secs = 60
//!
//! [orchestrator]
//! prompt_file = "prompts/orchestrator.md"
//!
//! [limits]
//! max_agent_turns = 500
//! agent_warmup = false
//! compact_at = 0.8                           # compact a conversation past 80 % of its window (0: never)
//! max_subagent_depth = 2                     # Task subagents may start subagents this deep
//! max_parallel_subagents = 4                 # Task calls of one step run this many at once
//!
//! [hooks]
//! settings = true                            # apply .claude/settings.json hooks to native agents
//!
//! [sandbox]                                  # what `Bash` commands may do (Linux: Landlock)
//! bash = true                                # confine them: writes only below the working directory
//! network = false                            # let confined commands use TCP
//! writable = ["/home/me/.cache/pip"]         # more directories they may write below
//!
//! [claude_code]
//! binary = "claude"
//!
//! [server]
//! host = "127.0.0.1"
//! port = 8000
//! cors_origins = ["http://localhost:5173"]
//!
//! [graphs]                                   # task graphs (orch graph run, orch worker)
//! concurrency = 4                            # tasks a worker runs at once
//! max_attempts = 3                           # failed attempts before a task raises a checkpoint
//! retry_base_secs = 1.0                      # backoff: base × 2^(failures-1), at most 5 minutes
//! stuck_no_output_secs = 600                 # interrupt an attempt silent this long
//! stuck_no_tool_secs = 300                   # … or without a new tool call this long
//! worktree = false                          # each attempt in a git worktree, merged when done
//! qa_model = "haiku"                        # reviews completed tasks against their criteria
//! planning_model = "opus"                    # the model of `orch plan` (default: the default model)
//! [[graphs.routes]]                          # first match wins; then the built-in table
//! task_type = "research"                     # absent: any type
//! complexity = "simple"                      # absent: any complexity
//! model = "ollama:llama3.2"
//! fallback = ["haiku"]                       # used while the model's provider is unavailable
//!
//! [notify]                                   # chat-channel notifications: see `config::notify`
//! [notify.telegram]
//! chat_id = -1001234567890
//! ```

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::ConfigError;

/// The file's location under a working directory.
pub fn path_in(working_dir: &Path) -> PathBuf {
    working_dir.join(".orch").join("config.toml")
}

/// The file's contents.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `[store]`.
    #[serde(default)]
    pub store: FileStore,
    /// `[models]`.
    #[serde(default)]
    pub models: FileModels,
    /// `[providers]`.
    #[serde(default)]
    pub providers: FileProviders,
    /// `[orchestrator]`.
    #[serde(default)]
    pub orchestrator: FileOrchestrator,
    /// `[limits]`.
    #[serde(default)]
    pub limits: FileLimits,
    /// `[hooks]`.
    #[serde(default)]
    pub hooks: FileHooks,
    /// `[sandbox]`.
    #[serde(default)]
    pub sandbox: FileSandbox,
    /// `[claude_code]`.
    #[serde(default)]
    pub claude_code: FileClaudeCode,
    /// `[server]`.
    #[serde(default)]
    pub server: FileServer,
    /// `[graphs]`: how task graphs are run.
    #[serde(default)]
    pub graphs: super::GraphsConfig,
    /// `[notify]`: chat-channel notifications (see [`super::notify`]).
    #[serde(default)]
    pub notify: super::notify::NotifyConfig,
}

/// `[store]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileStore {
    /// `url`.
    pub url: Option<String>,
    /// `pg_schema`.
    pub pg_schema: Option<String>,
    /// `pg_pool`.
    pub pg_pool: Option<u32>,
}

/// `[models]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileModels {
    /// `default`.
    pub default: Option<String>,
    /// `orchestrator`.
    pub orchestrator: Option<String>,
    /// `agents`.
    pub agents: Option<String>,
    /// `summary`.
    pub summary: Option<String>,
    /// `autocomplete`.
    pub autocomplete: Option<String>,
    /// `prices`.
    pub prices: Option<PathBuf>,
    /// `aliases`.
    pub aliases: Option<PathBuf>,
    /// `record`.
    pub record: Option<PathBuf>,
}

/// `[providers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileProviders {
    /// `anthropic_base_url`.
    pub anthropic_base_url: Option<String>,
    /// `thinking_budget`.
    pub thinking_budget: Option<u32>,
    /// `openai_base_url`.
    pub openai_base_url: Option<String>,
    /// `ollama_host`.
    pub ollama_host: Option<String>,
    /// `max_retries`.
    pub max_retries: Option<u32>,
    /// `connect_timeout_secs`.
    pub connect_timeout_secs: Option<f64>,
    /// `idle_timeout_secs`.
    pub idle_timeout_secs: Option<f64>,
}

/// `[orchestrator]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileOrchestrator {
    /// `prompt_file`.
    pub prompt_file: Option<PathBuf>,
}

/// `[limits]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileLimits {
    /// `max_agent_turns`.
    pub max_agent_turns: Option<u32>,
    /// `agent_warmup`.
    pub agent_warmup: Option<bool>,
    /// `compact_at`.
    pub compact_at: Option<f64>,
    /// `max_subagent_depth`.
    pub max_subagent_depth: Option<u32>,
    /// `max_parallel_subagents`.
    pub max_parallel_subagents: Option<u32>,
}

/// `[hooks]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileHooks {
    /// `settings`.
    pub settings: Option<bool>,
}

/// `[sandbox]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileSandbox {
    /// `bash`.
    pub bash: Option<bool>,
    /// `network`.
    pub network: Option<bool>,
    /// `writable`.
    pub writable: Option<Vec<PathBuf>>,
}

/// `[claude_code]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileClaudeCode {
    /// `binary`.
    pub binary: Option<PathBuf>,
}

/// `[server]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileServer {
    /// `host`.
    pub host: Option<String>,
    /// `port`.
    pub port: Option<u16>,
    /// `cors_origins`.
    pub cors_origins: Option<Vec<String>>,
}

/// The file as read: its path, text and contents.
#[derive(Debug)]
pub struct LoadedFile {
    /// The file.
    pub path: PathBuf,
    /// Its text (to find a key's line for value errors).
    pub text: String,
    /// Its contents.
    pub config: FileConfig,
}

impl LoadedFile {
    /// An error about `key` (dotted), on the line that sets it.
    pub fn error(&self, key: &str, message: impl Into<String>) -> ConfigError {
        ConfigError::File {
            path: self.path.clone(),
            line: key_line(&self.text, key),
            key: key.to_string(),
            message: message.into(),
        }
    }
}

/// Reads the file at `path`; `Ok(None)` when there is none.
pub fn read(path: &Path) -> Result<Option<LoadedFile>, ConfigError> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(ConfigError::File {
                path: path.to_path_buf(),
                line: 0,
                key: "-".into(),
                message: e.to_string(),
            });
        }
    };
    let config = parse(path, &text)?;
    Ok(Some(LoadedFile { path: path.to_path_buf(), text, config }))
}

/// Parses `text` (read from `path`).
pub fn parse(path: &Path, text: &str) -> Result<FileConfig, ConfigError> {
    toml::from_str::<FileConfig>(text).map_err(|e| {
        let (line, key) = match e.span() {
            Some(span) => locate(text, span.start),
            None => (0, "-".to_string()),
        };
        ConfigError::File { path: path.to_path_buf(), line, key, message: e.message().trim().to_string() }
    })
}

/// The 1-based line of byte `offset`, and the dotted key set on that line (with its table), or the
/// table named there.
fn locate(text: &str, offset: usize) -> (usize, String) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line_index = before.matches('\n').count();
    let lines: Vec<&str> = text.split('\n').collect();
    let line = lines.get(line_index).copied().unwrap_or("").trim();
    if let Some(table) = table_header(line) {
        return (line_index + 1, table);
    }
    let key = line.split_once('=').map(|(k, _)| k.trim().trim_matches('"').to_string()).unwrap_or_default();
    let table = lines[..line_index.min(lines.len())].iter().rev().find_map(|l| table_header(l.trim()));
    let full = match (table, key.is_empty()) {
        (_, true) => "-".to_string(),
        (Some(t), false) => format!("{t}.{key}"),
        (None, false) => key,
    };
    (line_index + 1, full)
}

fn table_header(line: &str) -> Option<String> {
    let inner = line.strip_prefix('[')?.split(']').next()?;
    Some(inner.trim_matches('[').trim().to_string())
}

/// The 1-based line that sets dotted `key` (0 when not found).
fn key_line(text: &str, key: &str) -> usize {
    let (table, name) = key.rsplit_once('.').unwrap_or(("", key));
    let mut current = String::new();
    for (i, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(t) = table_header(line) {
            current = t;
            continue;
        }
        if let Some((k, _)) = line.split_once('=') {
            let k = k.trim().trim_matches('"');
            if (current == table && k == name) || (current.is_empty() && k == key) {
                return i + 1;
            }
        }
    }
    0
}
