//! Command-line parsing and the commands.

// The arguments' doc comments are clap's `--help` text, written for a terminal (`<cwd>`, `[notify]`),
// not rustdoc markup.
#![allow(rustdoc::broken_intra_doc_links, rustdoc::invalid_html_tags)]

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use orch_core::Interrupt;
use orch_core::config::{Flags, OrchConfig};
use orch_core::engine::{Engine, EngineBuilder};
use orch_core::executor::{AgentRunner, DeltaCallback, RunError, RunOptions};
use orch_core::model::{BlockStart, ModelDelta, ModelSpec};
use orch_core::orchestrator::validate_agent_name;
use orch_core::store::{AgentFilter, Store, StoreError};
use orch_core::wire::Id;

use crate::chat::Failure;
use crate::signals::Sigint;
use crate::{chat, config_cmd, hook_relay, models};

/// Run LLM agents under deterministic orchestration.
#[derive(Debug, Parser)]
#[command(name = "orch", version, about, long_about = None)]
pub struct Cli {
    /// Database: sqlite://PATH, sqlite::memory:, a file path or postgres://… [env: ORCH_DATABASE_URL,
    /// DATABASE_URL]. Default: <cwd>/.orch/orch.db.
    #[arg(long, global = true)]
    db: Option<String>,
    /// Working directory of agents (default: the current directory).
    #[arg(long, global = true)]
    cwd: Option<PathBuf>,
    /// Model spec: scripted:PATH, anthropic:MODEL, openai:MODEL, ollama:MODEL, claude-code[:MODEL], replay:FILE.
    /// Default: anthropic with the current Sonnet when ANTHROPIC_API_KEY is set. [env: ORCH_MODEL]
    #[arg(long, global = true)]
    model: Option<String>,
    /// Record every model request and its streamed response to this cassette file (replay it with
    /// --model replay:FILE). [env: ORCH_RECORD]
    #[arg(long, global = true)]
    record: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run PROMPT as one native agent (created if missing) and stream its reply.
    Run {
        /// Agent name.
        #[arg(long, default_value = "agent")]
        agent: String,
        /// Model calls allowed in this turn.
        #[arg(long, default_value_t = 500)]
        max_turns: u32,
        /// System prompt for a new agent (an existing agent keeps its own).
        #[arg(long)]
        system_prompt: Option<String>,
        /// Print every event as one JSON line instead of the reply text.
        #[arg(long)]
        json: bool,
        /// The prompt.
        prompt: String,
    },
    /// Resume an agent's turn left unfinished by a crash (completed tool calls are not repeated).
    Resume {
        /// Agent name.
        #[arg(long, default_value = "agent")]
        agent: String,
        /// Print every event as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Print the event log, oldest first.
    Events {
        /// Only this agent's events.
        #[arg(long)]
        agent: Option<String>,
        /// Only events after this seq.
        #[arg(long, default_value_t = 0)]
        since: u64,
        /// At most this many (ignored with --follow once caught up).
        #[arg(long)]
        limit: Option<usize>,
        /// Keep printing new events, from any process, until Ctrl-C.
        #[arg(long)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// List providers, model aliases, prices, and which API keys are set (never the keys).
    Models {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Slash commands (.claude/commands) and agent templates (.claude/agents) of --cwd, and bad files.
    Templates {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// The effective configuration and where each value came from (flags, environment, .env,
    /// .orch/config.toml, defaults); secrets are masked.
    Config {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Database operations: migrate, status, retention.
    Db {
        #[command(subcommand)]
        command: DbCommand,
    },
    /// Send MESSAGE to the orchestrator (the newest one, or a new one) and stream its reply; then wait
    /// for the agent runs it started, streaming their events (this process hosts them).
    Chat {
        /// Continue this orchestrator (default: the newest live one).
        #[arg(long)]
        orchestrator: Option<String>,
        /// Start a new orchestrator.
        #[arg(long, conflicts_with = "orchestrator")]
        new: bool,
        /// Return when the orchestrator's turn ends; the agent runs it started are interrupted.
        #[arg(long)]
        no_wait: bool,
        /// Print every event as one JSON line.
        #[arg(long)]
        json: bool,
        /// The message.
        message: String,
    },
    /// Manage agents.
    Agent {
        #[command(subcommand)]
        command: AgentCommand,
    },
    /// AI developer workflows: plan → build → review → fix, and your own (.orch/workflows/*.toml).
    Adw {
        #[command(subcommand)]
        command: crate::adw::AdwCommand,
    },
    /// Plans: requirements → a plan of tasks with dependencies, by the planning model (the default
    /// model) or from a file; checked, stored as a versioned draft and printed by wave. Approve a plan
    /// before making its task graph.
    Plan(crate::plan::PlanArgs),
    /// Task graphs: the tasks of an approved plan, in waves; run, resumed, cancelled.
    Graph {
        #[command(subcommand)]
        command: crate::plan::GraphCommand,
    },
    /// Claim and run tasks of running graphs until stopped (many may run, on one store).
    Worker(crate::graph_run::WorkerArgs),
    /// The workers and servers on this store, from their heartbeat rows: alive, or silent (a silent
    /// worker's tasks are taken over).
    Workers {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Tasks waiting for a person: list them, resolve them (retry, skip, fail).
    Checkpoint {
        #[command(subcommand)]
        command: crate::graph_run::CheckpointCommand,
    },
    /// Spending today and this month against their limits; `budget set` sets the limits.
    Budget(crate::graph_run::BudgetArgs),
    /// Everything waiting for a person, oldest first: tool calls hooks parked, questions, checkpoints,
    /// failed runs.
    Attention(crate::attention::AttentionArgs),
    /// Approve a parked tool call: it runs and the agent's turn continues (in a server following the
    /// store, else here).
    Approve(crate::attention::ApproveArgs),
    /// Deny a parked tool call: the model gets the reason as the tool's error.
    Deny(crate::attention::DenyArgs),
    /// Answer a parked tool call or question: the model gets the answer as the tool's result.
    Answer(crate::attention::AnswerArgs),
    /// Send notifications ([notify] of .orch/config.toml: Telegram, webhooks) and answer Telegram
    /// commands until Ctrl-C, without a server (`orch serve` does both too).
    #[cfg(feature = "notify")]
    Notify,
    /// Serve orch's tools to an MCP client (Claude Code, Codex, …) over stdio: agents, workflows,
    /// task graphs and the task queue (see "MCP" in the README).
    Mcp,
    /// Serve the API (/api), the live event stream (/ws), the seed dashboard's routes and a landing page.
    Serve {
        /// Address to listen on [env: ORCH_HOST, BACKEND_HOST; default 127.0.0.1]. Any other than a
        /// loopback address needs a token.
        #[arg(long)]
        host: Option<String>,
        /// Port [env: ORCH_PORT, BACKEND_PORT; default 9403; 0 picks a free one].
        #[arg(long)]
        port: Option<u16>,
        /// Token every request must carry (Authorization: Bearer TOKEN, or ?token=) [env: ORCH_TOKEN].
        #[arg(long)]
        token: Option<String>,
        /// Run no task worker in the server: graph tasks are left to `orch worker` processes and to
        /// external agents claiming them over /api/tasks.
        #[arg(long)]
        no_worker: bool,
        /// Serve the dashboard from this directory (built by scripts/build-ui.sh) [env: ORCH_UI_DIR;
        /// default: the repository's orch-ui-leptos/dist when built, else a landing page].
        #[arg(long, value_name = "DIR")]
        ui: Option<PathBuf>,
    },
    /// Relays one Claude Code hook call to the orch process running the turn (run by generated settings).
    #[command(hide = true)]
    HookRelay {
        /// The relay socket of the running turn.
        #[arg(long)]
        socket: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
enum DbCommand {
    /// Apply pending migrations (opening a database always does) and print the schema version.
    Migrate,
    /// Backend, location, schema version, event count and size.
    Status {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Delete the events of archived (deleted) agents older than a date.
    Prune {
        /// A date (2026-01-31, midnight UTC) or an RFC 3339 time.
        #[arg(long)]
        before: String,
    },
}

#[derive(Debug, Subcommand)]
enum AgentCommand {
    /// List live agents with status, model, tokens and cost.
    List {
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Create an agent of the orchestrator from a system prompt or a .claude/agents template. Its model
    /// is --model (an alias such as opus, sonnet, haiku; a model id; or a spec), else the default.
    Create {
        /// Name.
        name: String,
        /// System prompt.
        #[arg(long, conflicts_with = "template", required_unless_present = "template")]
        system_prompt: Option<String>,
        /// Agent template name (.claude/agents).
        #[arg(long)]
        template: Option<String>,
        /// Compact its conversation past this share of the context window (0 to 1; 0: never); default
        /// limits.compact_at.
        #[arg(long)]
        compact_at: Option<f64>,
        /// The orchestrator (default: the newest live one, created if there is none).
        #[arg(long)]
        orchestrator: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Run PROMPT on the agent and stream it until it ends (Ctrl-C interrupts it).
    Command {
        /// Name.
        name: String,
        /// The prompt (a leading /slash-command is expanded).
        prompt: String,
        /// The orchestrator (default: the newest live one).
        #[arg(long)]
        orchestrator: Option<String>,
        /// Print every event as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// Compact the agent's conversation now: its older part is replaced by a summary (the agent loop
    /// does this by itself past 80 % of the context window; see limits.compact_at).
    Compact {
        /// Name.
        name: String,
        /// Instructions for the summary (what to keep).
        instructions: Vec<String>,
        /// The orchestrator (default: the newest live one).
        #[arg(long)]
        orchestrator: Option<String>,
        /// Print every event as one JSON line.
        #[arg(long)]
        json: bool,
    },
    /// The agent's status and its latest run's recent activity.
    Status {
        /// Name.
        name: String,
        /// Entries to show.
        #[arg(long, default_value_t = 10)]
        tail: usize,
        /// Show each entry's payload.
        #[arg(long)]
        verbose: bool,
        /// The orchestrator (default: the newest live one).
        #[arg(long)]
        orchestrator: Option<String>,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
    /// Stop the agent's running command (in this or another process).
    Interrupt {
        /// Name.
        name: String,
        /// The orchestrator (default: the newest live one).
        #[arg(long)]
        orchestrator: Option<String>,
    },
    /// Delete the agent (interrupting its run first); its name can be reused.
    Delete {
        /// Name.
        name: String,
        /// The orchestrator (default: the newest live one).
        #[arg(long)]
        orchestrator: Option<String>,
    },
}

/// Parses the arguments and runs the command; returns the exit code.
pub async fn main() -> u8 {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return code;
        }
    };
    match run(cli).await {
        Ok(code) => code,
        Err(f) => {
            eprintln!("orch: {}", f.message);
            f.code()
        }
    }
}

/// The global flags a child `orch` process (a detached workflow run) is started with, so it opens the
/// same store with the same model in the same working dir.
fn child_args(cli: &Cli, cwd: &std::path::Path) -> Vec<std::ffi::OsString> {
    let mut args: Vec<std::ffi::OsString> = vec!["--cwd".into(), cwd.as_os_str().to_owned()];
    if let Some(db) = &cli.db {
        args.extend(["--db".into(), db.into()]);
    }
    if let Some(model) = &cli.model {
        args.extend(["--model".into(), model.into()]);
    }
    if let Some(record) = &cli.record {
        args.extend(["--record".into(), record.as_os_str().to_owned()]);
    }
    args
}

/// The flags of the command line.
fn flags(cli: &Cli) -> Flags {
    Flags {
        working_dir: cli.cwd.clone(),
        database_url: cli.db.clone(),
        model: cli.model.clone(),
        record: cli.record.clone(),
    }
}

/// The effective configuration (flags, environment, `.env`, `.orch/config.toml`, defaults).
fn load_config(flags: Flags) -> Result<OrchConfig, Failure> {
    Ok(OrchConfig::load(flags)?)
}

/// Opens the engine of `config` (checking the model first when `require_model`, before the database
/// is touched), printing problems with `.claude/settings*.json` hooks as warnings.
pub(crate) async fn engine(config: OrchConfig, require_model: bool) -> Result<Engine, Failure> {
    let e = orch_web::engine::open_with(EngineBuilder::new(config).require_model(require_model)).await?;
    for problem in e.hook_problems() {
        eprintln!("orch: warning: {problem}");
    }
    Ok(e)
}

/// Opens the store of `config` (no engine: for commands that only read or maintain the log).
pub(crate) async fn open_store(config: &OrchConfig) -> Result<Arc<dyn Store>, Failure> {
    Ok(orch_web::engine::open_store(config).await?)
}

/// Parses `--before`: an RFC 3339 time, or a date (midnight UTC).
fn parse_before(s: &str) -> Result<chrono::DateTime<chrono::Utc>, Failure> {
    if let Ok(t) = chrono::DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&chrono::Utc));
    }
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
        .map(|t| t.and_utc())
        .ok_or_else(|| {
            Failure::usage(format!(
                "--before '{s}': expected a date like 2026-01-31 or a time like 2026-01-31T12:00:00Z"
            ))
        })
}

async fn db_command(store: Arc<dyn Store>, command: &DbCommand) -> Result<u8, Failure> {
    let mut out = std::io::stdout().lock();
    match command {
        DbCommand::Migrate => {
            let st = store.status().await?;
            let _ = writeln!(out, "{} database {} is at schema version {}", st.backend, st.location, st.schema_version);
        }
        DbCommand::Status { json } => {
            let st = store.status().await?;
            if *json {
                let _ = writeln!(out, "{}", serde_json::to_string(&st).unwrap_or_default());
            } else {
                let _ = writeln!(out, "backend:        {}", st.backend);
                let _ = writeln!(out, "location:       {}", st.location);
                let _ = writeln!(out, "schema version: {}", st.schema_version);
                let _ = writeln!(out, "events:         {} (last seq {})", st.events, st.last_seq);
                match st.size_bytes {
                    Some(b) => {
                        let _ = writeln!(out, "size:           {b} bytes ({:.1} MiB)", b as f64 / 1048576.0);
                    }
                    None => {
                        let _ = writeln!(out, "size:           unknown");
                    }
                }
            }
        }
        DbCommand::Prune { before } => {
            let before = parse_before(before)?;
            let n = store.prune_events(before).await?;
            let _ = writeln!(out, "removed {n} events of archived agents older than {}", before.to_rfc3339());
        }
    }
    Ok(0)
}

async fn run(cli: Cli) -> Result<u8, Failure> {
    // Before anything that could fail: a hook relay must never block Claude Code by its own failure.
    if let Command::HookRelay { socket } = &cli.command {
        return Ok(hook_relay::run(socket));
    }
    // `agent create --model ALIAS` names the new agent's model, not the engine's default model.
    let mut flags = flags(&cli);
    if let Command::Agent { command: AgentCommand::Create { .. } } = &cli.command
        && let Some(m) = cli.model.as_deref().map(str::trim).filter(|m| !m.is_empty())
        && ModelSpec::parse(m).is_err()
    {
        flags.model = None;
    }
    // Usage errors in the arguments come before anything is read or opened.
    if let Command::Run { agent, prompt, .. } = &cli.command {
        validate_agent_name(agent).map_err(|e| Failure::usage(format!("--agent: {e}")))?;
        if prompt.trim().is_empty() {
            return Err(Failure::usage("the prompt is empty"));
        }
    }
    let config = load_config(flags)?;
    let cwd = config.working_dir.value.clone();
    match &cli.command {
        Command::HookRelay { socket } => Ok(hook_relay::run(socket)),
        Command::Config { json } => config_cmd::print(&config, *json),
        Command::Run { agent, max_turns, system_prompt, json, prompt } => {
            let sigint = Sigint::install()?;
            let agent = validate_agent_name(agent).map_err(|e| Failure::usage(format!("--agent: {e}")))?;
            let agent = agent.as_str();
            let engine = engine(config, true).await?;
            let (store, runner) = (engine.store().clone(), engine.runner().clone());
            let existing = store.find_agent(None, agent).await?;
            let agent = match existing {
                Some(a) => a,
                None => {
                    let mut a = orch_core::wire::Agent::new(agent, engine.default_agent_model(), cwd.to_string_lossy());
                    a.system_prompt = system_prompt.clone();
                    match runner.create_agent(a).await {
                        Ok(a) => a,
                        Err(RunError::Store(StoreError::NameTaken { .. })) => store
                            .find_agent(None, agent)
                            .await?
                            .ok_or_else(|| Failure::runtime(format!("agent '{agent}' vanished")))?,
                        Err(e) => return Err(e.into()),
                    }
                }
            };
            let mut options = RunOptions { max_turns: *max_turns, ..RunOptions::default() };
            // `/name args` runs the slash command of `.claude/commands` with its allowed tools.
            let templates = engine.templates();
            let prompt = match templates.expand(prompt).map_err(|e| Failure::usage(e.to_string()))? {
                Some(expanded) => expanded.apply_to(&mut options),
                None => prompt.clone(),
            };
            drive(&runner, store, sigint, agent.id, Some(prompt), options, *json).await
        }
        Command::Resume { agent, json } => {
            let sigint = Sigint::install()?;
            let engine = engine(config, true).await?;
            let (store, runner) = (engine.store().clone(), engine.runner().clone());
            // A free-standing agent of `orch run`, else one of the newest orchestrator's.
            let mut found = store.find_agent(None, agent).await?;
            if found.is_none()
                && let Some(o) = orch_core::orchestrator::Orchestrator::latest(store.as_ref()).await?
            {
                found = store.find_agent(Some(o.id), agent).await?;
            }
            let a = found.ok_or_else(|| Failure::usage(format!("no agent named '{agent}'")))?;
            drive(&runner, store, sigint, a.id, None, RunOptions::default(), *json).await
        }
        Command::Db { command } => {
            if let DbCommand::Prune { before } = command {
                parse_before(before)?;
            }
            let store = open_store(&config).await?;
            db_command(store, command).await
        }
        Command::Templates { json } => {
            let t = orch_core::template::Templates::load(&cwd);
            let mut out = std::io::stdout().lock();
            if *json {
                let v = serde_json::json!({
                    "commands": t.command_summaries(),
                    "agents": t.agent_summaries(),
                    "problems": t.problems().iter().map(|p| p.to_string()).collect::<Vec<_>>(),
                });
                let _ = writeln!(out, "{v}");
            } else {
                let _ = writeln!(out, "Slash commands ({}):", t.commands().len());
                for c in t.command_summaries() {
                    let _ = writeln!(out, "  /{:<28} {} {}", c.name, c.argument_hint, c.description);
                }
                let _ = writeln!(out, "Agent templates ({}):", t.agents().len());
                for a in t.agent_summaries() {
                    let tools = a.tools.map(|t| t.join(", ")).unwrap_or_else(|| "all tools".into());
                    let _ = writeln!(out, "  {:<29} {} [{}]", a.name, a.description, tools);
                }
                for p in t.problems() {
                    eprintln!("orch: warning: {p}");
                }
            }
            Ok(0)
        }
        Command::Models { json } => {
            models::print_models(&config, *json)?;
            Ok(0)
        }
        Command::Events { agent, since, limit, follow, json } => {
            // One listener for the whole command, before the store is opened.
            let sigint = if *follow { Some(Sigint::install()?) } else { None };
            let store = open_store(&config).await?;
            crate::events_cmd::events(store, sigint, agent.as_deref(), *since, *limit, *json).await
        }
        Command::Chat { orchestrator, new, no_wait, json, message } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            let sigint = Sigint::install()?;
            let engine = engine(config, true).await?;
            Ok(chat::chat(&engine, sigint, id, *new, message, *json, *no_wait).await?)
        }
        Command::Agent {
            command: AgentCommand::Create { name, system_prompt, template, compact_at, orchestrator, json },
        } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            // `--model` here is the agent's model: an alias or id is fine, the provider comes from the default.
            let given = cli.model.as_deref().map(str::trim).filter(|m| !m.is_empty());
            let (engine, model) = match given {
                Some(m) if ModelSpec::parse(m).is_err() => (engine(config, false).await?, Some(m.to_string())),
                Some(m) => {
                    let spec = ModelSpec::parse(m).map_err(|e| Failure::usage(e.to_string()))?;
                    (engine(config, true).await?, Some(orch_core::engine::agent_model(&spec, &cwd)))
                }
                None => (engine(config, true).await?, None),
            };
            let request = orch_core::wire::CreateAgent {
                name: name.clone(),
                system_prompt: system_prompt.clone(),
                model,
                template: template.clone(),
                compact_at: *compact_at,
            };
            Ok(chat::create(&engine, id, request, *json).await?)
        }
        Command::Agent { command: AgentCommand::Command { name, prompt, orchestrator, json } } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            // One listener for the whole command, before the store is opened.
            let sigint = Sigint::install()?;
            let engine = engine(config, true).await?;
            Ok(chat::command(&engine, sigint, id, name, prompt, *json).await?)
        }
        Command::Agent { command: AgentCommand::Compact { name, instructions, orchestrator, json } } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            let sigint = Sigint::install()?;
            let engine = engine(config, true).await?;
            let prompt = format!("/compact {}", instructions.join(" ")).trim_end().to_string();
            Ok(chat::command(&engine, sigint, id, name, &prompt, *json).await?)
        }
        Command::Agent { command: AgentCommand::Status { name, tail, verbose, orchestrator, json } } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            let engine = engine(config, false).await?;
            Ok(chat::status(&engine, id, name, *tail, *verbose, *json).await?)
        }
        Command::Agent { command: AgentCommand::Interrupt { name, orchestrator } } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            let engine = engine(config, false).await?;
            Ok(chat::interrupt(&engine, id, name).await?)
        }
        Command::Agent { command: AgentCommand::Delete { name, orchestrator } } => {
            let id = orchestrator.as_deref().map(chat::parse_orchestrator_id).transpose()?;
            let engine = engine(config, false).await?;
            Ok(chat::delete(&engine, id, name).await?)
        }
        Command::Mcp => crate::mcp::run_stdio(engine(config, true).await?).await,
        #[cfg(feature = "notify")]
        Command::Notify => crate::notify_cmd::run(engine(config, false).await?).await,
        Command::Serve { host, port, token, no_worker, ui } => {
            // No model configured: the scripted demo orchestrator, so the first server answers.
            let config = match orch_core::engine::default_spec(&config) {
                Ok(None) => {
                    let mut with_demo = self::flags(&cli);
                    with_demo.model = Some(crate::serve::demo_model(&cwd)?);
                    eprintln!(
                        "orch serve: no model is configured (--model, ORCH_MODEL or ANTHROPIC_API_KEY): \
                         chat runs the scripted demo orchestrator"
                    );
                    load_config(with_demo)?
                }
                _ => config,
            };
            let engine = engine(config, false).await?;
            let options = crate::serve::ServeOptions {
                host: host.clone(),
                port: *port,
                token: token.clone(),
                no_worker: *no_worker,
                ui: ui.clone(),
            };
            crate::serve::run(engine, options).await
        }
        Command::Adw { command } => {
            let model = cli.model.clone().filter(|m| !m.trim().is_empty() && ModelSpec::parse(m).is_err());
            crate::adw::run(command, config, &cwd, model, child_args(&cli, &cwd)).await
        }
        Command::Plan(args) => crate::plan::run_plan(args, config).await,
        Command::Graph { command } => crate::plan::run_graph(command, config).await,
        Command::Worker(args) => crate::graph_run::worker(config, args).await,
        Command::Workers { json } => crate::graph_run::workers(config, *json).await,
        Command::Checkpoint { command } => crate::graph_run::checkpoint(config, command).await,
        Command::Budget(args) => crate::graph_run::budget(config, args).await,
        Command::Attention(args) => crate::attention::attention(config, args).await,
        Command::Approve(a) => {
            crate::attention::resolve(config, orch_core::wire::ApprovalDecision::Approve, &a.id, None, &a.then).await
        }
        Command::Deny(a) => {
            crate::attention::resolve(config, orch_core::wire::ApprovalDecision::Deny, &a.id, a.reason.clone(), &a.then)
                .await
        }
        Command::Answer(a) => {
            let text = Some(a.text.join(" "));
            crate::attention::resolve(config, orch_core::wire::ApprovalDecision::Answer, &a.id, text, &a.then).await
        }
        Command::Agent { command: AgentCommand::List { json } } => {
            let store = open_store(&config).await?;
            let mut agents = store.list_agents(&AgentFilter::default()).await?;
            agents.retain(|a| !orch_core::orchestrator::is_orchestrator_agent(a));
            let mut out = std::io::stdout().lock();
            if *json {
                for a in &agents {
                    let v = serde_json::json!({
                        "id": a.id, "name": a.name, "status": a.status, "model": a.model,
                        "input_tokens": a.usage.input_tokens, "output_tokens": a.usage.output_tokens,
                        "cache_read_input_tokens": a.usage.cache_read_input_tokens,
                        "cache_creation_input_tokens": a.usage.cache_creation_input_tokens,
                        "total_cost_usd": a.total_cost_usd, "working_dir": a.working_dir,
                        "context_used": a.context_used, "context_window": a.context_window,
                    });
                    let _ = writeln!(out, "{v}");
                }
            } else if agents.is_empty() {
                let _ = writeln!(out, "No agents found");
            } else {
                let _ = writeln!(
                    out,
                    "{:<20} {:<10} {:<28} {:>10} {:>10} {:>10}",
                    "NAME", "STATUS", "MODEL", "IN", "OUT", "COST"
                );
                for a in &agents {
                    let _ = writeln!(
                        out,
                        "{:<20} {:<10} {:<28} {:>10} {:>10} {:>10}",
                        a.name,
                        a.status.as_str(),
                        a.model,
                        a.usage.input_tokens,
                        a.usage.output_tokens,
                        format!("${:.4}", a.total_cost_usd)
                    );
                }
            }
            Ok(0)
        }
    }
}

/// Runs or resumes a turn, printing text live (or events as JSON), handling Ctrl-C.
pub(crate) async fn drive(
    runner: &AgentRunner,
    store: Arc<dyn Store>,
    sigint: Sigint,
    agent_id: Id,
    prompt: Option<String>,
    mut options: RunOptions,
    json: bool,
) -> Result<u8, Failure> {
    let interrupt = Interrupt::new();
    options.interrupt = Some(interrupt.clone());
    let since = store.last_seq().await?;
    let (done_tx, done_rx) = tokio::sync::watch::channel(None);
    if !json {
        // Text blocks are printed as they stream, separated by a line break.
        let at_line_start = Arc::new(std::sync::atomic::AtomicBool::new(true));
        let cb: DeltaCallback = Arc::new(move |d: &ModelDelta| {
            use std::sync::atomic::Ordering;
            let mut out = std::io::stdout().lock();
            match d {
                ModelDelta::BlockStart { block: BlockStart::Text, .. } if !at_line_start.load(Ordering::Relaxed) => {
                    let _ = out.write_all(b"\n");
                    at_line_start.store(true, Ordering::Relaxed);
                }
                ModelDelta::Text { text, .. } if !text.is_empty() => {
                    let _ = out.write_all(text.as_bytes());
                    at_line_start.store(text.ends_with('\n'), Ordering::Relaxed);
                }
                _ => {}
            }
            let _ = out.flush();
        });
        options.on_delta = Some(cb);
    }
    let printer = tokio::spawn(chat::follow(store.clone(), since, chat::Filter::Agent(agent_id), done_rx, json));
    let ctrl_c = {
        let interrupt = interrupt.clone();
        sigint.spawn_each(move || interrupt.trigger())
    };
    let result = match prompt {
        Some(p) => runner.run(agent_id, p, options).await,
        None => runner.resume(agent_id, options).await,
    };
    ctrl_c.abort();
    // Let the printer catch up to everything recorded so far, then stop it.
    let last = store.last_seq().await.unwrap_or(since);
    let _ = done_tx.send(Some(last));
    let _ = tokio::time::timeout(std::time::Duration::from_secs(10), printer).await;
    match result {
        Ok(outcome) => {
            if !json {
                println!();
                eprintln!(
                    "── {} after {} model call(s), {} in / {} out tokens, ${:.4}; events {}..{} (see `orch events`)",
                    outcome.stop_reason,
                    outcome.num_turns,
                    outcome.usage.input_tokens,
                    outcome.usage.output_tokens,
                    outcome.cost_usd,
                    since + 1,
                    last
                );
            }
            if outcome.stop_reason == orch_core::wire::EndReason::Waiting {
                crate::attention::print_waiting(runner, agent_id).await;
            }
            Ok(if outcome.interrupted() { 130 } else { 0 })
        }
        Err(e) => Err(e.into()),
    }
}
