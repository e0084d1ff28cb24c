//! Building an [`OrchConfig`] from its layers: flags, process environment, `.env`, config file, defaults.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::file::{self, LoadedFile};
use super::{
    ClaudeCodeSection, ConfigError, DEFAULT_COMPACT_AT, DEFAULT_MAX_AGENT_TURNS, DEFAULT_MAX_PARALLEL_SUBAGENTS,
    DEFAULT_MAX_SUBAGENT_DEPTH, DEFAULT_PORT, DatabaseUrl, Flags, HooksConfig, LimitsConfig, ModelsConfig, OrchConfig,
    OrchestratorSection, ProvidersConfig, SandboxConfig, Secret, ServerConfig, Source, Sourced, StoreConfig,
};

/// What a configuration is built from besides its files: the flags, the process environment and the
/// current directory. [`ConfigInputs::from_process`] takes the real ones; tests and embedding hosts
/// may pass their own.
#[derive(Debug, Clone, Default)]
pub struct ConfigInputs {
    /// The flags.
    pub flags: Flags,
    /// The process environment (variables that are not UTF-8 are left out).
    pub env: HashMap<String, String>,
    /// The directory relative flag paths and the default working directory are resolved against.
    pub current_dir: PathBuf,
}

impl ConfigInputs {
    /// The flags with this process's environment and current directory.
    pub fn from_process(flags: Flags) -> Result<Self, ConfigError> {
        let current_dir = std::env::current_dir().map_err(|e| ConfigError::WorkingDir {
            flag: "the current directory".into(),
            path: PathBuf::from("."),
            message: e.to_string(),
        })?;
        let env =
            std::env::vars_os().filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))).collect();
        Ok(Self { flags, env, current_dir })
    }
}

impl OrchConfig {
    /// Reads the configuration of this process: `flags`, then the environment, then `.env` and
    /// `.orch/config.toml` in the working directory, then the defaults.
    pub fn load(flags: Flags) -> Result<Self, ConfigError> {
        Self::load_from(ConfigInputs::from_process(flags)?)
    }

    /// Reads the configuration from `inputs` and the files of the working directory.
    pub fn load_from(inputs: ConfigInputs) -> Result<Self, ConfigError> {
        let working_dir = working_dir(&inputs)?;
        let dotenv_path = working_dir.value.join(".env");
        let dotenv = read_dotenv(&dotenv_path)?;
        let file = file::read(&file::path_in(&working_dir.value))?;
        let layers = Layers { env: &inputs.env, dotenv, file: file.as_ref(), working_dir: &working_dir.value };
        let flags = &inputs.flags;
        let cwd = &inputs.current_dir;
        let f = file.as_ref().map(|l| &l.config);

        let store = StoreConfig {
            url: layers.string(
                flags.database_url.as_deref().map(|u| (u, "--db")),
                &["ORCH_DATABASE_URL", "DATABASE_URL"],
                f.and_then(|f| f.store.url.as_deref()).map(|v| (v, "store.url")),
                DatabaseUrl::new,
            ),
            pg_schema: layers.string(
                None,
                &["ORCH_PG_SCHEMA"],
                f.and_then(|f| f.store.pg_schema.as_deref()).map(|v| (v, "store.pg_schema")),
                String::from,
            ),
            pg_pool: layers.parsed(
                &["ORCH_PG_POOL"],
                f.and_then(|f| f.store.pg_pool).map(|v| (v, "store.pg_pool")),
                positive,
            )?,
        };
        let models = ModelsConfig {
            default: layers.string(
                flags.model.as_deref().map(|m| (m, "--model")),
                &["ORCH_MODEL"],
                f.and_then(|f| f.models.default.as_deref()).map(|v| (v, "models.default")),
                String::from,
            ),
            orchestrator: layers.string(
                None,
                &["ORCH_ORCHESTRATOR_MODEL"],
                f.and_then(|f| f.models.orchestrator.as_deref()).map(|v| (v, "models.orchestrator")),
                String::from,
            ),
            agents: layers.string(
                None,
                &["ORCH_AGENT_MODEL"],
                f.and_then(|f| f.models.agents.as_deref()).map(|v| (v, "models.agents")),
                String::from,
            ),
            summary: layers.string(
                None,
                &["ORCH_SUMMARY_MODEL"],
                f.and_then(|f| f.models.summary.as_deref()).map(|v| (v, "models.summary")),
                String::from,
            ),
            autocomplete: layers.string(
                None,
                &["ORCH_AUTOCOMPLETE_MODEL"],
                f.and_then(|f| f.models.autocomplete.as_deref()).map(|v| (v, "models.autocomplete")),
                String::from,
            ),
            prices: layers.path(None, &["ORCH_PRICES"], f.and_then(|f| f.models.prices.clone()), "models.prices"),
            aliases: layers.path(
                None,
                &["ORCH_MODEL_ALIASES"],
                f.and_then(|f| f.models.aliases.clone()),
                "models.aliases",
            ),
            record: layers.path(
                flags.record.as_ref().map(|p| (absolute(cwd, p), "--record")),
                &["ORCH_RECORD"],
                f.and_then(|f| f.models.record.clone()),
                "models.record",
            ),
        };
        let providers = ProvidersConfig {
            anthropic_api_key: layers.string(None, &["ANTHROPIC_API_KEY"], None, Secret::new),
            anthropic_base_url: layers.string(
                None,
                &["ANTHROPIC_BASE_URL"],
                f.and_then(|f| f.providers.anthropic_base_url.as_deref()).map(|v| (v, "providers.anthropic_base_url")),
                String::from,
            ),
            thinking_budget: layers.parsed(
                &["ORCH_THINKING_BUDGET"],
                f.and_then(|f| f.providers.thinking_budget).map(|v| (v, "providers.thinking_budget")),
                |s| s.parse::<u32>().map_err(|_| "not a whole number of tokens".to_string()),
            )?,
            openai_api_key: layers.string(None, &["OPENAI_API_KEY"], None, Secret::new),
            openai_base_url: layers.string(
                None,
                &["OPENAI_BASE_URL"],
                f.and_then(|f| f.providers.openai_base_url.as_deref()).map(|v| (v, "providers.openai_base_url")),
                String::from,
            ),
            ollama_host: layers.string(
                None,
                &["OLLAMA_HOST"],
                f.and_then(|f| f.providers.ollama_host.as_deref()).map(|v| (v, "providers.ollama_host")),
                String::from,
            ),
            max_retries: layers
                .parsed(
                    &["ORCH_MODEL_MAX_RETRIES"],
                    f.and_then(|f| f.providers.max_retries).map(|v| (v, "providers.max_retries")),
                    |s| s.parse::<u32>().map_err(|_| "not a whole number".to_string()),
                )?
                .or_default(3),
            connect_timeout_secs: layers
                .parsed(
                    &["ORCH_MODEL_CONNECT_TIMEOUT_SECS"],
                    f.and_then(|f| f.providers.connect_timeout_secs).map(|v| (v, "providers.connect_timeout_secs")),
                    seconds,
                )?
                .or_default(10.0),
            idle_timeout_secs: layers
                .parsed(
                    &["ORCH_MODEL_IDLE_TIMEOUT_SECS"],
                    f.and_then(|f| f.providers.idle_timeout_secs).map(|v| (v, "providers.idle_timeout_secs")),
                    seconds,
                )?
                .or_default(60.0),
        };
        let orchestrator = OrchestratorSection {
            prompt_file: layers.path(
                None,
                &["ORCH_ORCHESTRATOR_PROMPT"],
                f.and_then(|f| f.orchestrator.prompt_file.clone()),
                "orchestrator.prompt_file",
            ),
        };
        let limits = LimitsConfig {
            max_agent_turns: layers
                .parsed(
                    &["ORCH_MAX_AGENT_TURNS"],
                    f.and_then(|f| f.limits.max_agent_turns).map(|v| (v, "limits.max_agent_turns")),
                    |s| positive(s).map_err(|_| "not a whole number of turns above 0".to_string()),
                )?
                .or_default(DEFAULT_MAX_AGENT_TURNS),
            agent_warmup: layers
                .parsed(
                    &["ORCH_AGENT_WARMUP"],
                    f.and_then(|f| f.limits.agent_warmup).map(|v| (v, "limits.agent_warmup")),
                    flag_value,
                )?
                .or_default(false),
            compact_at: layers
                .parsed(
                    &["ORCH_COMPACT_AT"],
                    f.and_then(|f| f.limits.compact_at).map(|v| (v, "limits.compact_at")),
                    |s| {
                        s.parse::<f64>()
                            .ok()
                            .filter(|v| (0.0..=1.0).contains(v))
                            .ok_or_else(|| "not a fraction from 0 to 1 (e.g. 0.8; 0: never)".to_string())
                    },
                )?
                .or_default(DEFAULT_COMPACT_AT),
            max_subagent_depth: layers
                .parsed(
                    &["ORCH_MAX_SUBAGENT_DEPTH"],
                    f.and_then(|f| f.limits.max_subagent_depth).map(|v| (v, "limits.max_subagent_depth")),
                    |s| s.parse::<u32>().map_err(|_| "not a whole number (0: no subagents)".to_string()),
                )?
                .or_default(DEFAULT_MAX_SUBAGENT_DEPTH),
            max_parallel_subagents: layers
                .parsed(
                    &["ORCH_MAX_PARALLEL_SUBAGENTS"],
                    f.and_then(|f| f.limits.max_parallel_subagents).map(|v| (v, "limits.max_parallel_subagents")),
                    |s| positive(s).map_err(|_| "not a whole number above 0".to_string()),
                )?
                .or_default(DEFAULT_MAX_PARALLEL_SUBAGENTS),
        };
        let hooks = HooksConfig {
            settings: layers
                .parsed(
                    &["ORCH_SETTINGS_HOOKS"],
                    f.and_then(|f| f.hooks.settings).map(|v| (v, "hooks.settings")),
                    flag_value,
                )?
                .or_default(true),
        };
        let mut writable = layers
            .parsed(
                &["ORCH_SANDBOX_WRITABLE"],
                f.and_then(|f| f.sandbox.writable.clone()).map(|v| (v, "sandbox.writable")),
                |s| Ok(std::env::split_paths(s).filter(|p| !p.as_os_str().is_empty()).collect()),
            )?
            .or_default(Vec::new());
        writable.value = writable.value.iter().map(|d| absolute(&working_dir.value, d)).collect();
        let sandbox = SandboxConfig {
            bash: layers
                .parsed(
                    &["ORCH_SANDBOX_BASH"],
                    f.and_then(|f| f.sandbox.bash).map(|v| (v, "sandbox.bash")),
                    flag_value,
                )?
                .or_default(true),
            network: layers
                .parsed(
                    &["ORCH_SANDBOX_NETWORK"],
                    f.and_then(|f| f.sandbox.network).map(|v| (v, "sandbox.network")),
                    flag_value,
                )?
                .or_default(false),
            writable,
        };
        let claude_code = ClaudeCodeSection {
            binary: layers
                .string(
                    None,
                    &["ORCH_CLAUDE_BIN"],
                    f.and_then(|f| f.claude_code.binary.as_deref())
                        .and_then(Path::to_str)
                        .map(|v| (v, "claude_code.binary")),
                    PathBuf::from,
                )
                .or_default(PathBuf::from("claude")),
        };
        let server = ServerConfig {
            host: layers
                .string(
                    None,
                    &["ORCH_HOST"],
                    f.and_then(|f| f.server.host.as_deref()).map(|v| (v, "server.host")),
                    String::from,
                )
                .or_default("127.0.0.1".to_string()),
            port: layers
                .parsed(
                    &["ORCH_PORT", "BACKEND_PORT"],
                    f.and_then(|f| f.server.port).map(|v| (v, "server.port")),
                    |s| s.parse::<u16>().map_err(|_| "not a port number (1-65535)".to_string()),
                )?
                .or_default(DEFAULT_PORT),
            cors_origins: layers
                .parsed(
                    &["ORCH_CORS_ORIGINS"],
                    f.and_then(|f| f.server.cors_origins.clone()).map(|v| (v, "server.cors_origins")),
                    |s| Ok(s.split(',').map(str::trim).filter(|o| !o.is_empty()).map(String::from).collect()),
                )?
                .or_default(Vec::new()),
        };
        let notify = super::notify::NotifySection {
            settings: f.map(|f| f.notify.clone()).unwrap_or_default(),
            telegram_bot_token: layers.string(None, &["ORCH_TELEGRAM_BOT_TOKEN"], None, Secret::new),
        };
        let config = OrchConfig {
            dotenv_file: layers.dotenv.as_ref().map(|(p, _)| p.clone()),
            config_file: file.as_ref().map(|l| l.path.clone()),
            working_dir,
            store,
            models,
            providers,
            orchestrator,
            limits,
            hooks,
            sandbox,
            claude_code,
            server,
            graphs: f.map(|f| f.graphs.clone()).unwrap_or_default(),
            notify,
        };
        if let Some(l) = &file {
            check_file_values(l, &config)?;
        }
        Ok(config)
    }
}

/// Values the file's types accept but orch does not (0 turns, 0 connections, port 0, …).
fn check_file_values(l: &LoadedFile, c: &OrchConfig) -> Result<(), ConfigError> {
    let from_file = |s: &Source| matches!(s, Source::File { .. });
    if from_file(&c.limits.max_agent_turns.source) && c.limits.max_agent_turns.value == 0 {
        return Err(l.error("limits.max_agent_turns", "must be a whole number of turns above 0"));
    }
    if from_file(&c.limits.compact_at.source) && !(0.0..=1.0).contains(&c.limits.compact_at.value) {
        return Err(l.error("limits.compact_at", "must be a fraction from 0 to 1 (e.g. 0.8; 0: never)"));
    }
    if from_file(&c.limits.max_parallel_subagents.source) && c.limits.max_parallel_subagents.value == 0 {
        return Err(l.error("limits.max_parallel_subagents", "must be a whole number above 0"));
    }
    if from_file(&c.store.pg_pool.source) && c.store.pg_pool.value == Some(0) {
        return Err(l.error("store.pg_pool", "must be at least 1"));
    }
    if from_file(&c.server.port.source) && c.server.port.value == 0 {
        return Err(l.error("server.port", "must be a port number (1-65535)"));
    }
    for (s, key) in [
        (&c.providers.connect_timeout_secs, "providers.connect_timeout_secs"),
        (&c.providers.idle_timeout_secs, "providers.idle_timeout_secs"),
    ] {
        if from_file(&s.source) && !(s.value.is_finite() && s.value > 0.0) {
            return Err(l.error(key, "must be a number of seconds above 0"));
        }
    }
    c.notify.check(l)?;
    Ok(())
}

fn working_dir(inputs: &ConfigInputs) -> Result<Sourced<PathBuf>, ConfigError> {
    let (dir, flag, source) = match &inputs.flags.working_dir {
        Some(d) => (absolute(&inputs.current_dir, d), "--cwd", Source::Flag { name: "--cwd".into() }),
        None => (inputs.current_dir.clone(), "the current directory", Source::Default),
    };
    let err = |message: String| ConfigError::WorkingDir { flag: flag.into(), path: dir.clone(), message };
    let real = std::fs::canonicalize(&dir).map_err(|e| err(e.to_string()))?;
    if !real.is_dir() {
        return Err(err("not a directory".into()));
    }
    Ok(Sourced { value: real, source })
}

fn absolute(base: &Path, p: &Path) -> PathBuf {
    if p.is_absolute() { p.to_path_buf() } else { base.join(p) }
}

/// Reads `.env` without changing the process environment; `Ok(None)` when there is none.
fn read_dotenv(path: &Path) -> Result<Option<DotEnv>, ConfigError> {
    let err = |message: String| ConfigError::DotEnv { path: path.to_path_buf(), message };
    let iter = match dotenvy::from_path_iter(path) {
        Ok(i) => i,
        Err(dotenvy::Error::Io(e)) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(err(e.to_string())),
    };
    let mut vars = HashMap::new();
    for item in iter {
        let (k, v) = item.map_err(|e| err(e.to_string()))?;
        vars.insert(k, v);
    }
    Ok(Some((path.to_path_buf(), vars)))
}

/// A `.env` file read: its path and variables.
type DotEnv = (PathBuf, HashMap<String, String>);

struct Layers<'a> {
    env: &'a HashMap<String, String>,
    dotenv: Option<DotEnv>,
    file: Option<&'a LoadedFile>,
    working_dir: &'a Path,
}

impl Layers<'_> {
    /// The first of `vars` set (non-empty) in the environment, else in `.env`. Each name is looked up
    /// in every layer before the next name (`ORCH_DATABASE_URL` in `.env` beats `DATABASE_URL`).
    fn var(&self, vars: &[&str]) -> Option<(String, Source)> {
        for var in vars {
            if let Some(v) = self.env.get(*var).map(|v| v.trim()).filter(|v| !v.is_empty()) {
                return Some((v.to_string(), Source::Env { var: var.to_string() }));
            }
            if let Some((path, map)) = &self.dotenv
                && let Some(v) = map.get(*var).map(|v| v.trim()).filter(|v| !v.is_empty())
            {
                return Some((v.to_string(), Source::DotEnv { path: path.clone(), var: var.to_string() }));
            }
        }
        None
    }

    fn file_source(&self, key: &str) -> Source {
        Source::File { path: self.file.map(|f| f.path.clone()).unwrap_or_default(), key: key.to_string() }
    }

    /// A text setting: the flag, the variables, the file, else unset.
    fn string<T>(
        &self,
        flag: Option<(&str, &str)>,
        vars: &[&str],
        file: Option<(&str, &str)>,
        make: impl Fn(String) -> T,
    ) -> Sourced<Option<T>> {
        if let Some((v, name)) = flag.filter(|(v, _)| !v.trim().is_empty()) {
            return Sourced { value: Some(make(v.trim().to_string())), source: Source::Flag { name: name.into() } };
        }
        if let Some((v, source)) = self.var(vars) {
            return Sourced { value: Some(make(v)), source };
        }
        if let Some((v, key)) = file.filter(|(v, _)| !v.trim().is_empty()) {
            return Sourced { value: Some(make(v.trim().to_string())), source: self.file_source(key) };
        }
        Sourced::default_value(None)
    }

    /// A path setting; relative paths from `.env` and the file are relative to the working directory.
    fn path(
        &self,
        flag: Option<(PathBuf, &str)>,
        vars: &[&str],
        file: Option<PathBuf>,
        key: &str,
    ) -> Sourced<Option<PathBuf>> {
        if let Some((p, name)) = flag.filter(|(p, _)| !p.as_os_str().is_empty()) {
            return Sourced { value: Some(p), source: Source::Flag { name: name.into() } };
        }
        if let Some((v, source)) = self.var(vars) {
            let p = match &source {
                Source::DotEnv { .. } => absolute(self.working_dir, Path::new(&v)),
                _ => PathBuf::from(v),
            };
            return Sourced { value: Some(p), source };
        }
        if let Some(p) = file.filter(|p| !p.as_os_str().is_empty()) {
            return Sourced { value: Some(absolute(self.working_dir, &p)), source: self.file_source(key) };
        }
        Sourced::default_value(None)
    }

    /// A typed setting: the variables (parsed), the file (typed by TOML), else unset.
    fn parsed<T>(
        &self,
        vars: &[&str],
        file: Option<(T, &str)>,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Sourced<Option<T>>, ConfigError> {
        if let Some((v, source)) = self.var(vars) {
            let what = match &source {
                Source::Env { var } | Source::DotEnv { var, .. } => var.clone(),
                _ => vars.first().map(|v| v.to_string()).unwrap_or_default(),
            };
            return match parse(&v) {
                Ok(value) => Ok(Sourced { value: Some(value), source }),
                Err(message) => Err(ConfigError::Invalid { what, value: v, from: Box::new(source), message }),
            };
        }
        if let Some((v, key)) = file {
            return Ok(Sourced { value: Some(v), source: self.file_source(key) });
        }
        Ok(Sourced::default_value(None))
    }
}

impl<T> Sourced<Option<T>> {
    /// The value, or `default` (with [`Source::Default`]) when unset.
    pub fn or_default(self, default: T) -> Sourced<T> {
        match self.value {
            Some(value) => Sourced { value, source: self.source },
            None => Sourced::default_value(default),
        }
    }
}

fn positive(s: &str) -> Result<u32, String> {
    s.parse::<u32>().ok().filter(|n| *n > 0).ok_or_else(|| "not a whole number above 0".to_string())
}

fn seconds(s: &str) -> Result<f64, String> {
    s.parse::<f64>().ok().filter(|v| v.is_finite() && *v > 0.0).ok_or_else(|| "not a number of seconds above 0".into())
}

fn flag_value(s: &str) -> Result<bool, String> {
    match s.to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err("not 1 or 0 (true/false, yes/no, on/off)".to_string()),
    }
}
