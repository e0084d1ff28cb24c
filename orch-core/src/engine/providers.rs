//! Model specs → providers, configured from an [`OrchConfig`] (never from the process environment, so
//! keys from `.env` reach them).

use std::path::{Path, PathBuf};
use std::sync::Arc;
#[cfg(feature = "http")]
use std::time::Duration;

use crate::config::{OrchConfig, Sourced};
use crate::model::cassette::{RecordingProvider, ReplayProvider, read_cassette};
#[cfg(feature = "http")]
use crate::model::http::HttpConfig;
use crate::model::scripted::ScriptedModel;
use crate::model::{
    ACCEPTED_SPECS, DeltaStream, ModelAliases, ModelError, ModelProvider, ModelRequest, ModelSpec, ProviderEntry,
    ProviderError, ProviderRegistry, TargetKind,
};

use super::EngineError;

/// The default model spec: `models.default`, else Anthropic's current Sonnet when an Anthropic key is
/// configured, else `None`. Accepts the built-in providers.
pub fn default_spec(config: &OrchConfig) -> Result<Option<Sourced<ModelSpec>>, EngineError> {
    default_spec_in(config, &config_registry(&Arc::new(config.clone())))
}

/// [`default_spec`] accepting the providers of `registry` (an unknown one's error lists them).
pub fn default_spec_in(
    config: &OrchConfig,
    registry: &ProviderRegistry,
) -> Result<Option<Sourced<ModelSpec>>, EngineError> {
    let d = &config.models.default;
    match d.value.as_deref() {
        Some(s) => registry
            .parse(s)
            .map(|spec| Some(Sourced { value: spec, source: d.source.clone() }))
            .map_err(|e| EngineError::Model(format!("{e} (from {})", d.source))),
        None if config.providers.anthropic_api_key.value.is_some() => Ok(Some(Sourced::default_value(ModelSpec {
            provider: "anthropic".into(),
            target: ModelAliases::default().resolve("sonnet").to_string(),
        }))),
        None => Ok(None),
    }
}

/// The message when a command needs a model and none is configured.
pub fn no_model_message() -> String {
    format!(
        "no model given: pass --model SPEC, set ORCH_MODEL or models.default in .orch/config.toml (or set ANTHROPIC_API_KEY to use Anthropic's current Sonnet); accepted forms: {ACCEPTED_SPECS}"
    )
}

/// A relative file path is looked up in the current directory first, then in the working directory.
pub fn file_path(target: &str, working_dir: &Path) -> PathBuf {
    let p = PathBuf::from(target);
    if p.is_absolute() || p.exists() { p } else { working_dir.join(p) }
}

/// The transport settings of the config.
#[cfg(feature = "http")]
pub fn http_config(config: &OrchConfig) -> HttpConfig {
    let p = &config.providers;
    HttpConfig {
        max_retries: p.max_retries.value,
        connect_timeout: Duration::try_from_secs_f64(p.connect_timeout_secs.value).unwrap_or(Duration::from_secs(10)),
        idle_timeout: Duration::try_from_secs_f64(p.idle_timeout_secs.value).unwrap_or(Duration::from_secs(60)),
        ..HttpConfig::default()
    }
}

/// The built-in providers of `config` as a registry, in the order of [`ACCEPTED_SPECS`]: `scripted`
/// and `replay` (files, relative to the current then the working directory), `anthropic`, `openai` and
/// `ollama` (with the config's keys, endpoints and transport settings; each built on first use, so a
/// missing key fails only the agents that need it), and `claude-code` (run on the Claude Code executor).
/// No default is set; the caller adds the aliases, prices and its own providers.
pub fn config_registry(config: &Arc<OrchConfig>) -> ProviderRegistry {
    let mut r = ProviderRegistry::new();
    let other = |e: &dyn std::fmt::Display| ModelError::Other { message: e.to_string() };
    let c = config.clone();
    let scripted = ProviderEntry::new("scripted", move |target: &str| {
        let m = ScriptedModel::from_file(file_path(target, &c.working_dir.value)).map_err(|e| other(&e))?;
        Ok(Arc::new(m) as Arc<dyn ModelProvider>)
    })
    .target(TargetKind::File)
    .form("scripted:PATH (a scripted-model JSON file)");
    let mut entries = vec![scripted];
    #[cfg(feature = "http")]
    {
        let c = config.clone();
        entries.push(ProviderEntry::new("anthropic", move |_: &str| anthropic(&c)));
        let c = config.clone();
        entries.push(ProviderEntry::new("openai", move |_: &str| openai(&c)));
        let c = config.clone();
        entries.push(ProviderEntry::new("ollama", move |_: &str| ollama(&c)));
    }
    #[cfg(not(feature = "http"))]
    for name in ["anthropic", "openai", "ollama"] {
        entries.push(ProviderEntry::new(name, move |_: &str| {
            Err(ModelError::Other { message: format!("{name}: models need orch-core's `http` feature") })
        }));
    }
    entries.push(crate::executor::claude_code_entry(|_: &str| Ok(Arc::new(NoNativeModel) as Arc<dyn ModelProvider>)));
    let c = config.clone();
    entries.push(
        ProviderEntry::new("replay", move |target: &str| {
            let p = ReplayProvider::from_file(file_path(target, &c.working_dir.value)).map_err(|e| other(&e))?;
            Ok(Arc::new(p) as Arc<dyn ModelProvider>)
        })
        .target(TargetKind::File),
    );
    for e in entries {
        // The built-in names are valid.
        let _ = r.register_entry(e);
    }
    r
}

#[cfg(feature = "http")]
fn anthropic(config: &OrchConfig) -> Result<Arc<dyn ModelProvider>, ModelError> {
    use crate::model::anthropic::{AnthropicConfig, AnthropicProvider, ENV_API_KEY};
    let p = &config.providers;
    let key = p.anthropic_api_key.value.as_ref().ok_or_else(|| ModelError::Auth {
        message: format!("{ENV_API_KEY} is not set: export it or put it in .env to use anthropic: models"),
    })?;
    let mut c = AnthropicConfig::new(key.expose().trim());
    if let Some(base) = &p.anthropic_base_url.value {
        c.base_url = base.clone();
    }
    c.http = http_config(config);
    c.thinking_budget = p.thinking_budget.value.filter(|n| *n > 0);
    Ok(Arc::new(AnthropicProvider::new(c)?))
}

#[cfg(feature = "http")]
fn openai(config: &OrchConfig) -> Result<Arc<dyn ModelProvider>, ModelError> {
    use crate::model::openai::{OpenAiConfig, OpenAiProvider};
    let p = &config.providers;
    let key = p.openai_api_key.value.as_ref().map(|k| k.expose().trim().to_string());
    let mut c = match p.openai_base_url.value.as_deref() {
        Some(base) if !base.trim_end_matches('/').eq_ignore_ascii_case(OpenAiConfig::DEFAULT_BASE_URL) => {
            OpenAiConfig::compatible(base, key)
        }
        _ => OpenAiConfig::new(key),
    };
    c.http = http_config(config);
    Ok(Arc::new(OpenAiProvider::new(c)?))
}

#[cfg(feature = "http")]
fn ollama(config: &OrchConfig) -> Result<Arc<dyn ModelProvider>, ModelError> {
    use crate::model::openai::{OpenAiConfig, OpenAiProvider};
    let host = config.providers.ollama_host.value.as_deref().unwrap_or(OpenAiConfig::DEFAULT_OLLAMA_HOST);
    let mut c = OpenAiConfig::ollama(host);
    c.http = http_config(config);
    Ok(Arc::new(OpenAiProvider::new(c)?))
}

/// The provider for native agents under `spec` (without recording), built anew. For `claude-code`,
/// native agents have no model: the provider refuses with a clear message.
pub fn provider_for(spec: &ModelSpec, config: &OrchConfig) -> Result<Arc<dyn ModelProvider>, EngineError> {
    config_registry(&Arc::new(config.clone())).provider(spec).map_err(provider_error)
}

/// A registry error as an engine error, with a factory's own message unwrapped.
pub(crate) fn provider_error(e: ProviderError) -> EngineError {
    match e {
        ProviderError::Build { source, .. } => EngineError::Model(source.to_string()),
        e => EngineError::Model(e.to_string()),
    }
}

/// Wraps `provider` in a recorder writing to `path`.
pub fn recording(
    provider: Arc<dyn ModelProvider>,
    path: &Sourced<PathBuf>,
) -> Result<Arc<dyn ModelProvider>, EngineError> {
    Ok(Arc::new(
        RecordingProvider::create(provider, &path.value)
            .map_err(|e| EngineError::Model(format!("{e} (from {})", path.source)))?,
    ))
}

/// The model string a new agent gets under `spec`: the spec itself, so the agent keeps running on the
/// provider it was created with. Under `replay:FILE` it is the bare model id of the cassette's first
/// request, so requests match the recording.
pub fn agent_model(spec: &ModelSpec, working_dir: &Path) -> String {
    if spec.provider == "replay" {
        let first = read_cassette(file_path(&spec.target, working_dir)).ok().and_then(|c| c.into_iter().next());
        return first.map(|(_, i)| i.request.model).unwrap_or_else(|| "replay".into());
    }
    spec.to_string()
}

/// A provider for hosts without a configured model: any call is refused with the choices.
pub struct NoModel;

#[async_trait::async_trait]
impl ModelProvider for NoModel {
    fn name(&self) -> &str {
        "none"
    }

    async fn stream(&self, _request: ModelRequest) -> Result<DeltaStream, ModelError> {
        Err(ModelError::Other {
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

    async fn stream(&self, _request: ModelRequest) -> Result<DeltaStream, ModelError> {
        Err(ModelError::Other {
            message: "this agent runs natively, but the default model is claude-code; pass a native --model (anthropic:, openai:, ollama:, scripted:)".into(),
        })
    }
}
