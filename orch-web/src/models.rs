//! Model specs → providers for the CLI, the default model, `--record`, and `orch models`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use orch_core::model::anthropic::AnthropicProvider;
use orch_core::model::cassette::{RecordingProvider, ReplayProvider, read_cassette};
use orch_core::model::openai::OpenAiProvider;
use orch_core::model::scripted::ScriptedModel;
use orch_core::model::{ACCEPTED_SPECS, ModelAliases, ModelProvider, ModelSpec, PriceTable};

/// A failure with its exit code (2: bad usage or configuration, 1: runtime).
#[derive(Debug)]
pub struct SetupError {
    /// Exit code.
    pub code: u8,
    /// Message.
    pub message: String,
}

fn usage(message: impl Into<String>) -> SetupError {
    SetupError { code: 2, message: message.into() }
}

/// The model aliases: the built-in table with `ORCH_MODEL_ALIASES` (a JSON file) merged over it.
pub fn aliases() -> Result<ModelAliases, SetupError> {
    let mut aliases = ModelAliases::default();
    if let Some(path) = std::env::var_os("ORCH_MODEL_ALIASES").filter(|p| !p.is_empty()) {
        aliases.merge_file(Path::new(&path)).map_err(|e| usage(format!("{e} (from ORCH_MODEL_ALIASES)")))?;
    }
    Ok(aliases)
}

/// The model spec to use: `--model`/`ORCH_MODEL`, else Anthropic's current Sonnet when
/// `ANTHROPIC_API_KEY` is set, else an error listing the choices.
pub fn resolve_spec(given: Option<&str>) -> Result<ModelSpec, SetupError> {
    match given.map(str::trim).filter(|s| !s.is_empty()) {
        Some(s) => ModelSpec::parse(s).map_err(|e| usage(format!("{e} (from --model or ORCH_MODEL)"))),
        None if key_set("ANTHROPIC_API_KEY") => Ok(ModelSpec {
            provider: "anthropic".into(),
            target: ModelAliases::default().resolve("sonnet").to_string(),
        }),
        None => Err(usage(format!(
            "no model given: pass --model SPEC or set ORCH_MODEL (or set ANTHROPIC_API_KEY to use Anthropic's current Sonnet); accepted forms: {ACCEPTED_SPECS}"
        ))),
    }
}

fn key_set(var: &str) -> bool {
    std::env::var_os(var).is_some_and(|v| !v.is_empty())
}

/// A relative file path is looked up in the current directory first, then in `--cwd`.
fn file_path(target: &str, cwd: &Path) -> PathBuf {
    let p = PathBuf::from(target);
    if p.is_absolute() || p.exists() { p } else { cwd.join(p) }
}

/// The provider for native agents under `spec`, wrapped in a recorder when `record` is given.
/// For `claude-code`, native agents have no model: the returned provider refuses with a clear message.
pub fn provider(spec: &ModelSpec, cwd: &Path, record: Option<&Path>) -> Result<Arc<dyn ModelProvider>, SetupError> {
    let config = |e: orch_core::model::ModelError| usage(format!("{e}"));
    let p: Arc<dyn ModelProvider> = match spec.provider.as_str() {
        "scripted" => {
            Arc::new(ScriptedModel::from_file(file_path(&spec.target, cwd)).map_err(|e| usage(e.to_string()))?)
        }
        "replay" => {
            Arc::new(ReplayProvider::from_file(file_path(&spec.target, cwd)).map_err(|e| usage(e.to_string()))?)
        }
        "anthropic" => Arc::new(AnthropicProvider::from_env().map_err(config)?),
        "openai" => Arc::new(OpenAiProvider::from_env().map_err(config)?),
        "ollama" => Arc::new(OpenAiProvider::ollama_from_env().map_err(config)?),
        "claude-code" => Arc::new(NoNativeModel),
        other => return Err(usage(format!("unknown provider '{other}'; accepted forms: {ACCEPTED_SPECS}"))),
    };
    match record {
        None => Ok(p),
        Some(path) => Ok(Arc::new(
            RecordingProvider::create(p, path).map_err(|e| usage(format!("{e} (from --record or ORCH_RECORD)")))?,
        )),
    }
}

/// The model string a new agent gets under `spec`: the spec itself, so the agent keeps running on the
/// provider it was created with (a later run under another provider is refused with a clear message).
/// Under `replay:FILE` it is the bare model id of the cassette's first request, so requests match the
/// recording and run on the replaying provider.
pub fn agent_model(spec: &ModelSpec, cwd: &Path) -> String {
    if spec.provider == "replay" {
        let first = read_cassette(file_path(&spec.target, cwd)).ok().and_then(|c| c.into_iter().next());
        return first.map(|(_, i)| i.request.model).unwrap_or_else(|| "replay".into());
    }
    spec.to_string()
}

/// The model summarizer of `ORCH_SUMMARY_MODEL` (a model spec), if set.
pub fn summarizer(cwd: &Path) -> Result<Option<Arc<orch_core::orchestrator::summary::Summarizer>>, SetupError> {
    let Some(value) = std::env::var("ORCH_SUMMARY_MODEL").ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty())
    else {
        return Ok(None);
    };
    let spec = ModelSpec::parse(&value).map_err(|e| usage(format!("{e} (from ORCH_SUMMARY_MODEL)")))?;
    if spec.provider == "claude-code" {
        return Err(usage("ORCH_SUMMARY_MODEL must be a native model (anthropic:, openai:, ollama:, scripted:)"));
    }
    let provider = provider(&spec, cwd, None)?;
    let model = match spec.provider.as_str() {
        "scripted" | "replay" => spec.provider.clone(),
        _ => aliases()?.resolve(&spec.target).to_string(),
    };
    Ok(Some(Arc::new(orch_core::orchestrator::summary::Summarizer::new(provider, model))))
}

/// A provider for commands that call no model (`orch agent status`, …): any call is refused.
pub fn no_model() -> Arc<dyn ModelProvider> {
    Arc::new(NoModel)
}

struct NoModel;

#[async_trait::async_trait]
impl ModelProvider for NoModel {
    fn name(&self) -> &str {
        "none"
    }

    async fn stream(
        &self,
        _request: orch_core::model::ModelRequest,
    ) -> Result<orch_core::model::DeltaStream, orch_core::model::ModelError> {
        Err(orch_core::model::ModelError::Other {
            message: format!(
                "no model is configured: pass --model SPEC or set ORCH_MODEL; accepted forms: {ACCEPTED_SPECS}"
            ),
        })
    }
}

/// Stands in for a native model when the default spec is `claude-code`.
struct NoNativeModel;

#[async_trait::async_trait]
impl ModelProvider for NoNativeModel {
    fn name(&self) -> &str {
        "claude-code"
    }

    async fn stream(
        &self,
        _request: orch_core::model::ModelRequest,
    ) -> Result<orch_core::model::DeltaStream, orch_core::model::ModelError> {
        Err(orch_core::model::ModelError::Other {
            message: "this agent runs natively, but the default model is claude-code; pass a native --model (anthropic:, openai:, ollama:, scripted:)".into(),
        })
    }
}

/// Prints providers, aliases, prices and which keys are set (never a key itself).
pub fn print_models(json: bool) -> Result<(), SetupError> {
    let aliases = aliases()?;
    let mut prices = PriceTable::default();
    if let Some(path) = std::env::var_os("ORCH_PRICES").filter(|p| !p.is_empty()) {
        prices.merge_file(Path::new(&path)).map_err(|e| usage(format!("{e} (from ORCH_PRICES)")))?;
    }
    let providers = [
        ("scripted", "scripted:PATH", "a scripted-model JSON file (no API)", None),
        ("replay", "replay:FILE", "replays a cassette recorded with --record (no API)", None),
        ("anthropic", "anthropic:MODEL", "Anthropic Messages API (ANTHROPIC_BASE_URL)", Some("ANTHROPIC_API_KEY")),
        ("openai", "openai:MODEL", "OpenAI-compatible Chat Completions (OPENAI_BASE_URL)", Some("OPENAI_API_KEY")),
        ("ollama", "ollama:MODEL", "Ollama's OpenAI-compatible API (OLLAMA_HOST)", None),
        ("claude-code", "claude-code[:MODEL]", "the Claude Code CLI (ORCH_CLAUDE_BIN)", Some("ANTHROPIC_API_KEY")),
    ];
    let mut alias_list: Vec<_> = aliases.aliases.iter().collect();
    alias_list.sort();
    let mut price_list: Vec<_> = prices.models.iter().collect();
    price_list.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "providers": providers.iter().map(|(name, form, about, key)| serde_json::json!({
                "name": name, "spec": form, "description": about,
                "key_env": key, "key_set": key.map(key_set),
            })).collect::<Vec<_>>(),
            "aliases": alias_list.iter().map(|(a, m)| (a.to_string(), serde_json::Value::from(m.as_str()))).collect::<serde_json::Map<_, _>>(),
            "prices_usd_per_mtok": price_list.iter().map(|(m, p)| (m.to_string(), serde_json::to_value(p).unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
        });
        let _ = writeln!(out, "{v}");
        return Ok(());
    }
    let _ = writeln!(out, "Providers:");
    for (_, form, about, key) in providers {
        let key_note = match key {
            Some(k) => format!("  [{k} {}]", if key_set(k) { "set" } else { "not set" }),
            None => String::new(),
        };
        let _ = writeln!(out, "  {form:<22} {about}{key_note}");
    }
    let _ = writeln!(out, "\nAliases:");
    for (a, m) in alias_list {
        let _ = writeln!(out, "  {a:<8} {m}");
    }
    let _ = writeln!(out, "\nPrices (USD per million tokens: input / output / cache read / cache write):");
    for (m, p) in price_list {
        let _ = writeln!(
            out,
            "  {m:<22} {:>7.2} {:>7.2} {:>7.3} {:>7.3}",
            p.input,
            p.output,
            p.cache_read.unwrap_or(p.input * 0.1),
            p.cache_write.unwrap_or(p.input * 1.25)
        );
    }
    Ok(())
}
