#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicUsize, Ordering};

use super::*;
use crate::model::scripted::ScriptedModel;

fn counting(builds: Arc<AtomicUsize>) -> impl Fn(&str) -> Result<Arc<dyn ModelProvider>, ModelError> + Send + Sync {
    move |_: &str| {
        builds.fetch_add(1, Ordering::SeqCst);
        Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>)
    }
}

#[test]
fn a_registered_provider_is_built_once_per_spec_and_reused() {
    let builds = Arc::new(AtomicUsize::new(0));
    let mut r = ProviderRegistry::new();
    r.register("unit-corp", counting(builds.clone())).unwrap();
    let a = r.provider(&r.parse("unit-corp:big").unwrap()).unwrap();
    let b = r.provider(&r.parse("unit-corp:big").unwrap()).unwrap();
    assert!(Arc::ptr_eq(&a, &b));
    assert_eq!(builds.load(Ordering::SeqCst), 1);
    r.provider(&r.parse("unit-corp:small").unwrap()).unwrap();
    assert_eq!(builds.load(Ordering::SeqCst), 2, "another model id is another spec");
}

#[test]
fn re_registering_a_name_drops_the_providers_of_the_old_factory() {
    let old = Arc::new(AtomicUsize::new(0));
    let new = Arc::new(AtomicUsize::new(0));
    let mut r = ProviderRegistry::new();
    r.register("unit-swap", counting(old.clone())).unwrap();
    let spec = r.parse("unit-swap:m").unwrap();
    r.provider(&spec).unwrap();
    let before = r.clone();
    r.register("unit-swap", counting(new.clone())).unwrap();
    r.provider(&spec).unwrap();
    assert_eq!((old.load(Ordering::SeqCst), new.load(Ordering::SeqCst)), (1, 1));
    // A clone taken before keeps the provider it had.
    before.provider(&spec).unwrap();
    assert_eq!(old.load(Ordering::SeqCst), 1);
}

#[test]
fn routes_qualified_bare_and_aliased_models() {
    let mut r = ProviderRegistry::new();
    r.register("unit-route", |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>)).unwrap();
    r.register("unit-default", |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>)).unwrap();
    r.set_default(ModelSpec { provider: "unit-default".into(), target: "base".into() }).unwrap();

    let q = r.route("unit-route:opus").unwrap();
    assert_eq!(q.spec, ModelSpec { provider: "unit-route".into(), target: "opus".into() });
    assert_eq!(q.model_id, "claude-opus-4-8", "the target's alias is resolved");
    assert_eq!(q.executor, None);

    let bare = r.route("sonnet").unwrap();
    assert_eq!(bare.spec.provider, "unit-default");
    assert_eq!(bare.model_id, "claude-sonnet-5");

    // An id with a colon whose prefix is no provider is a bare id (e.g. Ollama's `llama3.2:3b`).
    let colon = r.route("llama3.2:3b").unwrap();
    assert_eq!((colon.spec.provider.as_str(), colon.model_id.as_str()), ("unit-default", "llama3.2:3b"));
}

#[test]
fn an_unknown_provider_lists_the_registered_ones() {
    let mut r = ProviderRegistry::new();
    r.register("unit-list", |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>)).unwrap();
    // `anthropic` is a known name, so it is not taken for a bare model id, but it is not registered here.
    let e = r.route("anthropic:claude-sonnet-5").unwrap_err().to_string();
    assert!(e.contains("unknown provider 'anthropic'"), "{e}");
    assert!(e.contains("accepted forms: unit-list:MODEL"), "{e}");
    let e = r.parse("nosuch:x").unwrap_err().to_string();
    assert!(e.contains("unknown provider 'nosuch'") && e.contains("unit-list:MODEL"), "{e}");
}

#[test]
fn a_bare_model_without_a_default_says_how_to_name_one() {
    let mut r = ProviderRegistry::new();
    r.register("unit-nodefault", |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>)).unwrap();
    let e = r.route("opus").unwrap_err().to_string();
    assert!(e.contains("model 'opus' names no provider") && e.contains("unit-nodefault:MODEL"), "{e}");
}

#[test]
fn bad_names_are_refused() {
    let mut r = ProviderRegistry::new();
    for bad in ["", "my:corp", "my corp"] {
        let e = r.register(bad, |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>));
        assert!(matches!(e, Err(ProviderError::BadName(_))), "{bad:?}");
    }
    assert!(r.names().is_empty());
}

#[test]
fn registered_names_are_accepted_by_model_spec_parse() {
    assert!(ModelSpec::parse("unit-global:m1").is_err());
    let mut r = ProviderRegistry::new();
    r.register("unit-global", |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>)).unwrap();
    assert_eq!(
        ModelSpec::parse("unit-global:m1").unwrap(),
        ModelSpec { provider: "unit-global".into(), target: "m1".into() }
    );
    assert!(ModelSpec::is_qualified("unit-global:m1"));
    let e = ModelSpec::parse("nosuch:x").unwrap_err().to_string();
    assert!(e.contains("unit-global:MODEL") && e.contains("claude-code[:MODEL]"), "{e}");
}

#[test]
fn a_factory_error_names_the_spec() {
    let mut r = ProviderRegistry::new();
    r.register("unit-fail", |_: &str| Err(ModelError::Auth { message: "MYCORP_KEY is not set".into() })).unwrap();
    let e = r.provider(&r.parse("unit-fail:m").unwrap()).err().unwrap().to_string();
    assert!(e.contains("'unit-fail:m'") && e.contains("MYCORP_KEY is not set"), "{e}");
}

#[test]
fn an_external_entry_routes_to_its_executor_and_file_specs_of_the_default_use_the_default() {
    let mut r = ProviderRegistry::new();
    let file = |_: &str| Ok(Arc::new(ScriptedModel::default()) as Arc<dyn ModelProvider>);
    r.register_entry(ProviderEntry::new("scripted", file).target(TargetKind::File)).unwrap();
    r.register_entry(ProviderEntry::new("claude-code", file).target(TargetKind::Optional).external("claude-code"))
        .unwrap();
    r.set_default(ModelSpec { provider: "scripted".into(), target: "now.json".into() }).unwrap();
    assert_eq!(r.route("claude-code").unwrap().executor.as_deref(), Some("claude-code"));
    assert_eq!(r.route("claude-code:sonnet").unwrap().model_id, "claude-sonnet-5");
    let old = r.route("scripted:then.json").unwrap();
    assert_eq!(old.spec.target, "now.json", "the configured script serves agents created under another");
    assert_eq!(old.model_id, "scripted");
    assert_eq!(r.accepted_forms(), "scripted:FILE, claude-code[:MODEL]");
}

/// A provider under another name (what a cassette recorded from `anthropic` answers as).
struct Named(&'static str);

#[async_trait::async_trait]
impl ModelProvider for Named {
    fn name(&self) -> &str {
        self.0
    }
    async fn stream(&self, _request: crate::model::ModelRequest) -> Result<crate::model::DeltaStream, ModelError> {
        Err(ModelError::Other { message: "not called".into() })
    }
}

#[test]
fn a_replayed_cassette_serves_the_agents_of_the_provider_it_recorded() {
    let mut r = ProviderRegistry::new();
    r.register("unit-live", |_: &str| Err(ModelError::Auth { message: "no key: this must not be built".into() }))
        .unwrap();
    r.register_entry(
        ProviderEntry::new("unit-replay", |_: &str| Ok(Arc::new(Named("unit-live")) as Arc<dyn ModelProvider>))
            .target(TargetKind::File),
    )
    .unwrap();
    let cassette = ModelSpec { provider: "unit-replay".into(), target: "run.jsonl".into() };
    r.set_default(cassette.clone()).unwrap();
    r.provider(&cassette).unwrap();
    let route = r.route("unit-live:sonnet").unwrap();
    assert_eq!(route.spec, cassette);
    assert_eq!(route.model_id, "claude-sonnet-5");
    assert_eq!(r.provider(&route.spec).unwrap().name(), "unit-live");
    // Also when the recorded provider takes files, as a scripted model does.
    let mut r2 = r.clone();
    r2.register_entry(
        ProviderEntry::new("unit-script", |_: &str| Err(ModelError::Other { message: "must not be built".into() }))
            .target(TargetKind::File),
    )
    .unwrap();
    r2.register_entry(
        ProviderEntry::new("unit-replay", |_: &str| Ok(Arc::new(Named("unit-script")) as Arc<dyn ModelProvider>))
            .target(TargetKind::File),
    )
    .unwrap();
    r2.provider(&cassette).unwrap();
    let route = r2.route("unit-script:demo.json").unwrap();
    assert_eq!((route.spec, route.model_id.as_str()), (cassette.clone(), "unit-script"));
    // Another provider's agents are not served by it.
    r.register("unit-other", |_: &str| Ok(Arc::new(Named("unit-other")) as Arc<dyn ModelProvider>)).unwrap();
    assert_eq!(r.route("unit-other:m").unwrap().spec.provider, "unit-other");
}
