//! Providers as a registry: agents of one runner on different providers, a model per run, your own
//! provider registered beside the built-ins (also in the engine), and the errors of unknown names.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use orch_core::config::{Flags, OrchConfig};
use orch_core::engine::EngineBuilder;
use orch_core::executor::{AgentRunner, RunError, RunOptions};
use orch_core::model::scripted::{ScriptReply, ScriptedModel};
use orch_core::model::{
    DeltaStream, ModelError, ModelProvider, ModelRequest, ProviderEntry, ProviderRegistry, TargetKind,
};
use orch_core::store::{MemoryStore, Store};
use orch_core::wire::Agent;

/// A provider under its own name answering `"{name} answered {model id}"`; it notes the model ids.
struct Echo {
    name: String,
    inner: ScriptedModel,
    seen: Arc<Mutex<Vec<String>>>,
}

impl Echo {
    fn new(name: &str) -> Self {
        let n = name.to_string();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        let inner = ScriptedModel::from_fn(move |req: &ModelRequest| {
            s.lock().unwrap().push(req.model.clone());
            Ok(ScriptReply::text(format!("{n} answered {}", req.model)))
        });
        Self { name: name.to_string(), inner, seen }
    }
}

#[async_trait]
impl ModelProvider for Echo {
    fn name(&self) -> &str {
        &self.name
    }
    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        self.inner.stream(request).await
    }
}

/// A registry of a scripted model (the default) and `mycorp`, whose factory makes one provider per
/// model id.
fn registry() -> ProviderRegistry {
    let mut r = ProviderRegistry::new();
    let scripted: Arc<dyn ModelProvider> = Arc::new(Echo::new("scripted"));
    r.register_entry(ProviderEntry::new("scripted", move |_: &str| Ok(scripted.clone())).target(TargetKind::File))
        .unwrap();
    r.register("mycorp", |_model: &str| Ok(Arc::new(Echo::new("mycorp")) as Arc<dyn ModelProvider>)).unwrap();
    r.set_default("scripted:demo.json".parse_spec()).unwrap();
    r
}

trait ParseSpec {
    fn parse_spec(&self) -> orch_core::model::ModelSpec;
}

impl ParseSpec for str {
    fn parse_spec(&self) -> orch_core::model::ModelSpec {
        orch_core::model::ModelSpec::parse(self).unwrap()
    }
}

async fn agent(runner: &AgentRunner, name: &str, model: &str) -> Agent {
    runner.create_agent(Agent::new(name, model, std::env::temp_dir().to_string_lossy())).await.unwrap()
}

#[tokio::test]
async fn agents_of_one_runner_run_on_the_providers_their_models_name() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = AgentRunner::with_registry(store.clone(), registry()).build();
    let local = agent(&runner, "local", "scripted:demo.json").await;
    let remote = agent(&runner, "remote", "mycorp:big-1").await;
    let bare = agent(&runner, "bare", "sonnet").await;

    let out = runner.run(local.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("scripted answered scripted"));
    let out = runner.run(remote.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("mycorp answered big-1"));
    // A bare alias runs on the default provider, resolved.
    let out = runner.run(bare.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("scripted answered claude-sonnet-5"));
}

#[tokio::test]
async fn a_per_run_model_picks_another_provider_and_leaves_the_agent_unchanged() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = AgentRunner::with_registry(store.clone(), registry()).build();
    let a = agent(&runner, "stepper", "scripted:demo.json").await;

    let opts = RunOptions { model: Some("mycorp:reviewer".into()), ..RunOptions::default() };
    let out = runner.run(a.id, "review this", opts).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("mycorp answered reviewer"));

    let out = runner.run(a.id, "and now you", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("scripted answered scripted"));
    assert_eq!(store.get_agent(a.id).await.unwrap().unwrap().model, "scripted:demo.json");
}

#[tokio::test]
async fn an_unknown_provider_fails_the_run_listing_the_registered_ones() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = AgentRunner::with_registry(store.clone(), registry()).build();
    let a = agent(&runner, "lost", "openai:gpt-5").await;
    let err = runner.run(a.id, "hi", RunOptions::default()).await.unwrap_err();
    assert!(matches!(err, RunError::Config { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(msg.contains("unknown provider 'openai'"), "{msg}");
    assert!(msg.contains("accepted forms: scripted:FILE, mycorp:MODEL"), "{msg}");
}

#[tokio::test]
async fn a_runner_built_on_one_provider_refuses_another_providers_model_by_name() {
    // `AgentRunner::builder(store, provider)`: that provider is the registry's only one.
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let runner = AgentRunner::builder(store.clone(), Arc::new(Echo::new("scripted"))).build();
    let a = agent(&runner, "a", "anthropic:claude-sonnet-5").await;
    let msg = runner.run(a.id, "hi", RunOptions::default()).await.unwrap_err().to_string();
    assert!(msg.contains("unknown provider 'anthropic'") && msg.contains("accepted forms: scripted:FILE"), "{msg}");
    let b = agent(&runner, "b", "haiku").await;
    let out = runner.run(b.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("scripted answered claude-haiku-4-5"));
}

fn config(model: &str) -> (tempfile::TempDir, OrchConfig) {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("demo.json"),
        r#"{"steps": [{"repeat": true, "reply": [{"type": "text", "text": "from the script"}]}]}"#,
    )
    .unwrap();
    let flags = Flags { working_dir: Some(dir.path().to_path_buf()), model: Some(model.into()), ..Flags::default() };
    (dir, OrchConfig::load(flags).unwrap())
}

#[tokio::test]
async fn the_engine_runs_agents_on_a_provider_registered_beside_the_built_ins() {
    let (dir, config) = config("scripted:demo.json");
    let mycorp = Arc::new(Echo::new("mycorp"));
    let seen = mycorp.seen.clone();
    let engine = EngineBuilder::new(config)
        .provider("mycorp", move |_: &str| Ok(mycorp.clone() as Arc<dyn ModelProvider>))
        .prepare()
        .unwrap()
        .with_store(Arc::new(MemoryStore::new()));
    assert_eq!(
        engine.registry().names(),
        ["scripted", "anthropic", "openai", "ollama", "claude-code", "replay", "mycorp"]
    );

    let runner = engine.runner();
    let wd = dir.path().to_string_lossy();
    let a = runner.create_agent(Agent::new("ours", "mycorp:big-2", wd.clone())).await.unwrap();
    let b = runner.create_agent(Agent::new("scripted", engine.default_agent_model(), wd)).await.unwrap();
    let out = runner.run(a.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("mycorp answered big-2"));
    let out = runner.run(b.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("from the script"));
    assert_eq!(*seen.lock().unwrap(), ["big-2"]);
}

#[test]
fn a_default_model_of_an_unknown_provider_lists_the_registered_ones() {
    let (_dir, config) = config("nosuch:model");
    let e = EngineBuilder::new(config)
        .provider("yourcorp", |_: &str| Ok(Arc::new(Echo::new("yourcorp")) as Arc<dyn ModelProvider>))
        .prepare()
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("unknown provider 'nosuch'"), "{e}");
    assert!(
        e.contains("scripted:PATH (a scripted-model JSON file), anthropic:MODEL, openai:MODEL, ollama:MODEL, claude-code[:MODEL], replay:FILE, yourcorp:MODEL"),
        "{e}"
    );
}

#[tokio::test]
async fn the_engine_takes_a_registered_provider_as_its_default_model() {
    let (_dir, config) = config("theircorp:m-3");
    let engine = EngineBuilder::new(config)
        .provider("theircorp", |_: &str| Ok(Arc::new(Echo::new("theircorp")) as Arc<dyn ModelProvider>))
        .require_model(true)
        .prepare()
        .unwrap()
        .with_store(Arc::new(MemoryStore::new()));
    assert_eq!(engine.provider().name(), "theircorp");
    assert_eq!(engine.default_agent_model(), "theircorp:m-3");
}

#[tokio::test]
async fn under_a_replayed_cassette_agents_of_the_recorded_provider_replay_offline() {
    use orch_core::model::cassette::RecordingProvider;
    let dir = tempfile::tempdir().unwrap();
    let wd = dir.path().to_string_lossy().into_owned();
    // Agents created under an `anthropic` provider (a stand-in here) and under a scripted file that is
    // gone by replay time, each recorded to its own cassette, then replayed with no Anthropic key.
    for (provider, model, answer) in [
        ("anthropic", "anthropic:sonnet", "anthropic answered claude-sonnet-5"),
        ("scripted", "scripted:gone.json", "scripted answered scripted"),
    ] {
        let cassette = dir.path().join(format!("{provider}.jsonl"));
        let live: Arc<dyn ModelProvider> = Arc::new(Echo::new(provider));
        let rec = Arc::new(RecordingProvider::create(live, &cassette).unwrap());
        let runner = AgentRunner::builder(Arc::new(MemoryStore::new()), rec).build();
        let a = runner.create_agent(Agent::new("a", model, wd.clone())).await.unwrap();
        runner.run(a.id, "hi", RunOptions::default()).await.unwrap();

        let flags = Flags {
            working_dir: Some(dir.path().to_path_buf()),
            model: Some(format!("replay:{}", cassette.display())),
            ..Flags::default()
        };
        let mut config = OrchConfig::load(flags).unwrap();
        config.providers.anthropic_api_key.value = None;
        let engine = EngineBuilder::new(config).prepare().unwrap().with_store(Arc::new(MemoryStore::new()));
        let runner = engine.runner();
        let a = runner.create_agent(Agent::new("a", model, wd.clone())).await.unwrap();
        let out = runner.run(a.id, "hi", RunOptions::default()).await.unwrap();
        assert_eq!(out.final_text.as_deref(), Some(answer), "{model}");
    }
}

/// An external executor that answers every turn with its name and the agent's model, recording nothing.
struct Cli;

#[async_trait]
impl orch_core::executor::AgentExecutor for Cli {
    fn name(&self) -> &str {
        "echo-cli"
    }
    async fn run_turn(
        &self,
        cx: orch_core::executor::TurnContext,
        _prompt: Option<String>,
    ) -> Result<orch_core::executor::RunOutcome, RunError> {
        Ok(orch_core::executor::RunOutcome {
            stop_reason: "end_turn".into(),
            num_turns: 1,
            usage: Default::default(),
            cost_usd: 0.0,
            final_text: Some(format!("echo-cli ran {}", cx.agent.model)),
            duration_ms: 0,
            task_slug: String::new(),
        })
    }
}

#[tokio::test]
async fn a_provider_entry_that_names_an_external_executor_routes_its_agents_there() {
    let (dir, config) = config("scripted:demo.json");
    let not_native =
        |_: &str| Err(ModelError::Other { message: "echo-cli models run on the echo-cli executor".into() });
    let engine = EngineBuilder::new(config)
        .provider_entry(ProviderEntry::new("echo-cli", not_native).target(TargetKind::Optional).external("echo-cli"))
        .external_executor("echo-cli", Arc::new(Cli))
        .prepare()
        .unwrap()
        .with_store(Arc::new(MemoryStore::new()));
    let runner = engine.runner();
    let wd = dir.path().to_string_lossy();
    let a = runner.create_agent(Agent::new("cli", "echo-cli:fast", wd.clone())).await.unwrap();
    let out = runner.run(a.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("echo-cli ran echo-cli:fast"));
    // A name that merely starts like it is no such provider: it is a bare model id on the default.
    let b = runner.create_agent(Agent::new("native", "echo-clipper", wd)).await.unwrap();
    let out = runner.run(b.id, "hi", RunOptions::default()).await.unwrap();
    assert_eq!(out.final_text.as_deref(), Some("from the script"));
}
