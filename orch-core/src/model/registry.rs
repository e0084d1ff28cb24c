//! [`ProviderRegistry`]: provider names (`anthropic`, `openai`, `ollama`, `scripted`, `replay`,
//! `claude-code`, or your own `mycorp`) → factories that build a [`ModelProvider`] for a spec's target,
//! with the model aliases and prices. An agent's model string picks its provider per run, so one runner
//! runs agents on different providers.
//!
//! ```
//! # fn demo(mycorp: std::sync::Arc<dyn orch_core::model::ModelProvider>) -> Result<(), Box<dyn std::error::Error>> {
//! use orch_core::model::ProviderRegistry;
//!
//! let mut registry = ProviderRegistry::new();
//! registry.register("mycorp", move |_model_id: &str| Ok(mycorp.clone()))?;
//! let route = registry.route("mycorp:big-1")?;
//! assert_eq!((route.spec.provider.as_str(), route.model_id.as_str()), ("mycorp", "big-1"));
//! let provider = registry.provider(&route.spec)?; // built once, then cached per spec
//! # let _ = provider; Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use super::spec::{TargetKind, note_registered, parse_with};
use super::{ModelAliases, ModelError, ModelProvider, ModelSpec, PriceTable, SpecError};

/// Builds a provider for a spec's target (a model id, or a file for [`TargetKind::File`] providers).
pub type ProviderFactory = Arc<dyn Fn(&str) -> Result<Arc<dyn ModelProvider>, ModelError> + Send + Sync>;

/// One registered provider.
#[derive(Clone)]
pub struct ProviderEntry {
    name: String,
    factory: ProviderFactory,
    target: TargetKind,
    executor: Option<String>,
    form: Option<String>,
}

impl std::fmt::Debug for ProviderEntry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderEntry")
            .field("name", &self.name)
            .field("target", &self.target)
            .field("executor", &self.executor)
            .finish_non_exhaustive()
    }
}

impl ProviderEntry {
    /// A native provider taking a model id (`name:MODEL`), built by `factory`.
    pub fn new(
        name: impl Into<String>,
        factory: impl Fn(&str) -> Result<Arc<dyn ModelProvider>, ModelError> + Send + Sync + 'static,
    ) -> Self {
        Self { name: name.into(), factory: Arc::new(factory), target: TargetKind::ModelId, executor: None, form: None }
    }

    /// What its specs' target is (default: a model id).
    pub fn target(mut self, target: TargetKind) -> Self {
        self.target = target;
        self
    }

    /// Its agents run on the external executor named `executor` (e.g. `claude-code`), not on the
    /// native loop: a [`RoutingExecutor`](crate::executor::RoutingExecutor) sends them there.
    pub fn external(mut self, executor: impl Into<String>) -> Self {
        self.executor = Some(executor.into());
        self
    }

    /// How it is listed in the accepted forms (default `name:MODEL`, `name:FILE` or `name[:MODEL]`).
    pub fn form(mut self, form: impl Into<String>) -> Self {
        self.form = Some(form.into());
        self
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What its specs' target is.
    pub fn target_kind(&self) -> TargetKind {
        self.target
    }

    /// The external executor its agents run on, if any.
    pub fn executor(&self) -> Option<&str> {
        self.executor.as_deref()
    }

    fn listed_form(&self) -> String {
        match (&self.form, self.target) {
            (Some(f), _) => f.clone(),
            (None, TargetKind::ModelId) => format!("{}:MODEL", self.name),
            (None, TargetKind::File) => format!("{}:FILE", self.name),
            (None, TargetKind::Optional) => format!("{}[:MODEL]", self.name),
        }
    }
}

/// Why a model could not be routed or its provider built.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ProviderError {
    /// The spec is malformed or names a provider that is not registered.
    #[error(transparent)]
    Spec(#[from] SpecError),
    /// A bare model id or alias, but the registry has no default provider.
    #[error("model '{model}' names no provider and no default provider is set; give it as PROVIDER:MODEL ({accepted})")]
    NoDefault {
        /// The model string.
        model: String,
        /// The accepted forms.
        accepted: String,
    },
    /// The factory failed (a missing API key, an unreadable scripted file, …).
    #[error("cannot set up the provider for '{spec}': {source}")]
    Build {
        /// The spec.
        spec: String,
        /// What failed.
        source: ModelError,
    },
    /// A provider name that cannot be registered.
    #[error("invalid provider name '{0}': use letters, digits, '-', '_' or '.', and no ':'")]
    BadName(String),
}

/// Where an agent's model string runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// The provider spec (whose provider [`ProviderRegistry::provider`] builds).
    pub spec: ModelSpec,
    /// The model id sent in requests: the alias resolved, or the provider's name for file providers.
    pub model_id: String,
    /// The external executor that runs it (`claude-code`), or `None` for the native loop.
    pub executor: Option<String>,
}

/// Provider names → factories, the default provider, model aliases and prices. Cloning is cheap;
/// clones share the providers built so far until one of them registers a provider.
#[derive(Clone)]
pub struct ProviderRegistry {
    entries: Vec<ProviderEntry>,
    default: Option<ModelSpec>,
    aliases: ModelAliases,
    prices: Arc<PriceTable>,
    cache: Arc<Mutex<HashMap<ModelSpec, Arc<dyn ModelProvider>>>>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("providers", &self.names())
            .field("default", &self.default)
            .finish_non_exhaustive()
    }
}

impl Default for ProviderRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl ProviderRegistry {
    /// No providers; the built-in aliases and prices.
    pub fn new() -> Self {
        Self {
            entries: Vec::new(),
            default: None,
            aliases: ModelAliases::default(),
            prices: Arc::new(PriceTable::default()),
            cache: Arc::default(),
        }
    }

    /// A registry whose only provider, and default, is `provider` (under its own name): what
    /// [`NativeExecutor::new`](crate::executor::NativeExecutor::new) and `AgentRunner::builder` use.
    pub fn single(provider: Arc<dyn ModelProvider>) -> Self {
        let name = provider.name().to_string();
        let mut r = Self::new();
        let p = provider.clone();
        let entry =
            ProviderEntry::new(name.clone(), move |_: &str| Ok(p.clone())).target(TargetKind::of_builtin(&name));
        // Not noted process-wide: a test's provider name must not change how other runners parse.
        r.entries.push(entry);
        let spec = ModelSpec { provider: name, target: String::new() };
        r.insert_provider(spec.clone(), provider);
        r.default = Some(spec);
        r
    }

    /// Registers (or replaces) a native provider taking a model id: `name:MODEL` runs on what
    /// `factory(MODEL)` builds (once per spec).
    pub fn register(
        &mut self,
        name: &str,
        factory: impl Fn(&str) -> Result<Arc<dyn ModelProvider>, ModelError> + Send + Sync + 'static,
    ) -> Result<&mut Self, ProviderError> {
        self.register_entry(ProviderEntry::new(name, factory))
    }

    /// Registers (or replaces) a provider with its target kind, executor and listed form.
    pub fn register_entry(&mut self, entry: ProviderEntry) -> Result<&mut Self, ProviderError> {
        let valid = !entry.name.is_empty()
            && entry.name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !valid {
            return Err(ProviderError::BadName(entry.name));
        }
        note_registered(&entry.name);
        // Providers built by the replaced factory must not be served any more; other clones keep theirs.
        let mut cache: HashMap<_, _> = self.cache.lock().map(|c| c.clone()).unwrap_or_default();
        cache.retain(|spec: &ModelSpec, _| spec.provider != entry.name);
        self.cache = Arc::new(Mutex::new(cache));
        match self.entries.iter_mut().find(|e| e.name == entry.name) {
            Some(e) => *e = entry,
            None => self.entries.push(entry),
        }
        Ok(self)
    }

    /// Registered names, in registration order.
    pub fn names(&self) -> Vec<&str> {
        self.entries.iter().map(|e| e.name.as_str()).collect()
    }

    /// The entry of `name`.
    pub fn entry(&self, name: &str) -> Option<&ProviderEntry> {
        self.entries.iter().find(|e| e.name == name)
    }

    /// The accepted spec forms of the registered providers, for messages.
    pub fn accepted_forms(&self) -> String {
        if self.entries.is_empty() {
            return "none: no provider is registered".into();
        }
        self.entries.iter().map(ProviderEntry::listed_form).collect::<Vec<_>>().join(", ")
    }

    /// Parses `spec` against the registered providers; an unknown provider's error lists them.
    pub fn parse(&self, spec: &str) -> Result<ModelSpec, SpecError> {
        parse_with(spec, |p| self.entry(p).map(|e| e.target), || self.accepted_forms())
    }

    /// Whether `model` is `provider:…` with a registered provider, or with a name known to
    /// [`ModelSpec::is_qualified`] (so a spec of a provider missing here gets a clear error rather
    /// than being sent as a model id).
    pub fn is_qualified(&self, model: &str) -> bool {
        let m = model.trim();
        self.entry(m).is_some_and(|e| e.target == TargetKind::Optional)
            || m.split_once(':').is_some_and(|(p, _)| self.entry(p).is_some())
            || ModelSpec::is_qualified(m)
            || m == "claude-code"
    }

    /// Makes bare model ids and aliases run on `spec`'s provider. Fails when it is not registered.
    pub fn set_default(&mut self, spec: ModelSpec) -> Result<&mut Self, ProviderError> {
        let spec = self.parse(&spec.to_string())?;
        self.default = Some(spec);
        Ok(self)
    }

    /// The default spec: where bare model ids and aliases run.
    pub fn default_spec(&self) -> Option<&ModelSpec> {
        self.default.as_ref()
    }

    /// The model aliases.
    pub fn aliases(&self) -> &ModelAliases {
        &self.aliases
    }

    /// Uses these aliases.
    pub fn set_aliases(&mut self, aliases: ModelAliases) -> &mut Self {
        self.aliases = aliases;
        self
    }

    /// The price table.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// Uses this price table.
    pub fn set_prices(&mut self, prices: PriceTable) -> &mut Self {
        self.prices = Arc::new(prices);
        self
    }

    /// Serves `spec` with `provider` from now on, without calling its factory (e.g. a provider wrapped
    /// in a recorder).
    pub fn insert_provider(&mut self, spec: ModelSpec, provider: Arc<dyn ModelProvider>) -> &mut Self {
        if let Ok(mut c) = self.cache.lock() {
            c.insert(spec, provider);
        }
        self
    }

    /// Where `model` runs: `provider:target` on that provider; a bare id or alias on the default
    /// provider. A file spec (`scripted:FILE`) of the default's provider runs on the default itself, so
    /// the configured script or cassette serves every agent created under it; so does
    /// `anthropic:MODEL` when the default is a cassette recorded from `anthropic`.
    pub fn route(&self, model: &str) -> Result<Route, ProviderError> {
        let m = model.trim();
        let (spec, model_id) = if self.is_qualified(m) {
            let spec = self.parse(m)?;
            let kind = self.entry(&spec.provider).map(|e| e.target).unwrap_or(TargetKind::ModelId);
            // A file provider is sent its own name as the model id.
            let id = match kind {
                TargetKind::File => spec.provider.clone(),
                _ => self.aliases.resolve(&spec.target).to_string(),
            };
            let spec = match &self.default {
                Some(d) if kind == TargetKind::File && d.provider == spec.provider => d.clone(),
                _ => self.stand_in(&spec.provider).unwrap_or(spec),
            };
            (spec, id)
        } else {
            let spec = self
                .default
                .clone()
                .ok_or_else(|| ProviderError::NoDefault { model: m.to_string(), accepted: self.accepted_forms() })?;
            (spec, self.aliases.resolve(m).to_string())
        };
        let executor = self.entry(&spec.provider).and_then(|e| e.executor.clone());
        Ok(Route { spec, model_id, executor })
    }

    /// The default spec when it is a file provider (a cassette) whose provider, already built, answers
    /// under `provider`'s name: a replayed cassette recorded from `anthropic` serves `anthropic:` agents,
    /// so a replay never reaches the real API.
    fn stand_in(&self, provider: &str) -> Option<ModelSpec> {
        let d = self.default.as_ref()?;
        if d.provider == provider || self.entry(&d.provider).map(|e| e.target) != Some(TargetKind::File) {
            return None;
        }
        let built = self.cache.lock().ok()?.get(d).cloned()?;
        (built.name() == provider).then(|| d.clone())
    }

    /// The provider of `spec`: built by its factory the first time, then the same one.
    pub fn provider(&self, spec: &ModelSpec) -> Result<Arc<dyn ModelProvider>, ProviderError> {
        if let Some(p) = self.cache.lock().ok().and_then(|c| c.get(spec).cloned()) {
            return Ok(p);
        }
        let entry = self.entry(&spec.provider).ok_or_else(|| {
            ProviderError::Spec(SpecError {
                spec: spec.to_string(),
                reason: format!("unknown provider '{}'", spec.provider),
                accepted: self.accepted_forms(),
            })
        })?;
        let built =
            (entry.factory)(&spec.target).map_err(|source| ProviderError::Build { spec: spec.to_string(), source })?;
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        // Another caller may have built it meanwhile: everyone gets the first one.
        Ok(cache.entry(spec.clone()).or_insert(built).clone())
    }

    /// The default spec's provider, if a default is set.
    pub fn default_provider(&self) -> Option<Result<Arc<dyn ModelProvider>, ProviderError>> {
        self.default.as_ref().map(|s| self.provider(s))
    }
}

#[cfg(test)]
#[path = "registry_tests.rs"]
mod tests;
