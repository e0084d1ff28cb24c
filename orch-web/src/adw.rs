//! `orch adw …`: workflow types, runs in the foreground, listings and details.

use std::io::Write;

use futures::StreamExt;
use orch_core::config::OrchConfig;
use orch_core::engine::Engine;
use orch_core::prelude::Interrupt;
use orch_core::store::{EventQuery, Store};
use orch_core::wire::{Event, EventRecord, Id, WorkflowRecord, WorkflowStatus};
use orch_core::workflow::{WorkflowEngine, WorkflowError};
use serde_json::{Value, json};

use crate::chat::Failure;
use crate::cli::{engine, open_store};
use crate::signals::Sigint;

/// `orch adw …`: the subcommands.
#[derive(Debug, clap::Subcommand)]
pub enum AdwCommand {
    /// The workflow types: built-in and .orch/workflows/*.toml (broken files are listed as such).
    Types {
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Start a run of TYPE with PROMPT (the global --model is its model). Prints the run's id first.
    Start {
        /// The workflow type (see `orch adw types`).
        workflow_type: String,
        /// The task (the input `prompt`; required by most types).
        #[arg(long)]
        prompt: Option<String>,
        /// Another input of the run, KEY=VALUE (repeatable): `--input domain=billing` for the expert
        /// workflows, `--input max_lines=600`, `--input on_success=merge`. A VALUE that is JSON
        /// (`true`, `600`) is taken as such, anything else as text.
        #[arg(long = "input", value_name = "KEY=VALUE")]
        inputs: Vec<String>,
        /// A name for the run (default: TYPE-<8 characters of its id>).
        #[arg(long)]
        name: Option<String>,
        /// Run it in a git worktree of its own (`.orch/worktrees/<name>`, branch `orch/<name>`),
        /// committing each step's changes there; the main tree is not touched (overrides the type's
        /// `worktree`).
        #[arg(long)]
        worktree: bool,
        /// Run it here and follow it to its end (exit 0 only if it completed; Ctrl-C cancels it).
        /// Without it, the run is handed to a detached orch process (log: .orch/logs/adw-ID.log).
        #[arg(long)]
        wait: bool,
        /// JSON output: the id as {"id": …} (detached: also "pid" and "log"), then (--wait) the run's
        /// events as JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// Continue a run whose process died (completed steps are not run again; the interrupted step's
    /// agent finishes its turn), following it as start --wait does.
    Resume {
        /// The run's id.
        id: String,
        /// JSON lines.
        #[arg(long)]
        json: bool,
        /// Run as the detached process `adw start` hands a run to (waits for the hand-over first).
        #[arg(long, hide = true)]
        detached: bool,
    },
    /// Cancel a run: its running step's agent is interrupted, also in another process, and the run is
    /// marked cancelled (resumable).
    Cancel {
        /// The run's id.
        id: String,
    },
    /// Workflow runs, newest first.
    List {
        /// JSON lines.
        #[arg(long)]
        json: bool,
    },
    /// A run: its record, and its steps with durations and event counts.
    Show {
        /// The run's id.
        id: String,
        /// JSON output.
        #[arg(long)]
        json: bool,
    },
}

/// Runs `orch adw COMMAND` on `config` in `cwd`; `model` is the global --model when it names a model
/// (the runs' `model` input), `child_args` the global flags a detached run's process gets.
pub async fn run(
    command: &AdwCommand,
    config: OrchConfig,
    cwd: &std::path::Path,
    model: Option<String>,
    child_args: Vec<std::ffi::OsString>,
) -> Result<u8, Failure> {
    match command {
        AdwCommand::Types { json } => {
            let engine = engine(config, false).await?;
            types(&engine, *json)
        }
        AdwCommand::Start { workflow_type, prompt, inputs, name, worktree, wait, json } => {
            if prompt.as_deref().is_some_and(|p| p.trim().is_empty()) {
                return Err(Failure::usage("--prompt is empty"));
            }
            let inputs = parse_inputs(inputs)?;
            let start = Start {
                workflow_type,
                prompt: prompt.as_deref(),
                inputs,
                name: name.clone(),
                model,
                worktree: *worktree,
                json: *json,
            };
            if !*wait {
                let engine = engine(config, false).await?;
                return start_detached(&engine, start, cwd, child_args).await;
            }
            let sigint = Sigint::install()?;
            let engine = engine(config, true).await?;
            self::start(&engine, sigint, start).await
        }
        AdwCommand::Resume { id, json, detached } => {
            #[cfg(unix)]
            let _hangup = detached.then(crate::detach::ignore_hangup);
            if *detached {
                crate::detach::await_hand_over();
            }
            let sigint = Sigint::install()?;
            let engine = engine(config, true).await?;
            resume(&engine, sigint, id, *json).await
        }
        AdwCommand::Cancel { id } => {
            let engine = engine(config, false).await?;
            cancel(&engine, id).await
        }
        AdwCommand::List { json } => {
            let store = open_store(&config).await?;
            list(store.as_ref(), *json).await
        }
        AdwCommand::Show { id, json } => {
            let store = open_store(&config).await?;
            show(store.as_ref(), id, *json).await
        }
    }
}

impl From<WorkflowError> for Failure {
    fn from(e: WorkflowError) -> Self {
        Self::new(e.kind(), e.to_string())
    }
}

fn workflows(engine: &Engine) -> WorkflowEngine {
    engine.workflows()
}

/// `orch adw types`.
pub fn types(engine: &Engine, json: bool) -> Result<u8, Failure> {
    let types = workflows(engine).types();
    let mut out = std::io::stdout().lock();
    if json {
        for s in &types.specs {
            let steps: Vec<&str> = s.steps.iter().map(|st| st.name.as_str()).collect();
            let source = s.source.as_ref().map(|p| p.display().to_string());
            let v = json!({
                "type": s.name, "description": s.description, "steps": steps, "inputs": s.inputs, "source": source,
                "worktree": s.isolation.worktree, "on_success": s.isolation.on_success.as_str(),
            });
            let _ = writeln!(out, "{v}");
        }
        for b in &types.broken {
            let _ = writeln!(out, "{}", json!({"broken": b.path.display().to_string(), "error": b.to_string()}));
        }
    } else {
        for s in &types.specs {
            let steps: Vec<&str> = s.steps.iter().map(|st| st.name.as_str()).collect();
            let from = s.source.as_ref().map_or_else(|| "built-in".to_string(), |p| p.display().to_string());
            let tree = match (s.isolation.worktree, s.isolation.on_success) {
                (false, _) => String::new(),
                (true, on_success) => format!(" (in a worktree, {} on success)", on_success.as_str()),
            };
            let needs =
                s.inputs.iter().filter(|i| *i != "prompt").map(|i| format!(" --input {i}=…")).collect::<String>();
            let _ = writeln!(out, "{:<24} {}{tree} [{}] ({from}){needs}", s.name, s.description, steps.join(" → "));
        }
        for b in &types.broken {
            let _ = writeln!(out, "BROKEN {b}");
        }
    }
    Ok(0)
}

/// What `orch adw start` was asked for.
pub struct Start<'a> {
    /// The workflow type.
    pub workflow_type: &'a str,
    /// The task (the input `prompt`).
    pub prompt: Option<&'a str>,
    /// Other inputs (`--input KEY=VALUE`).
    pub inputs: serde_json::Map<String, Value>,
    /// The run's name.
    pub name: Option<String>,
    /// The steps' model (a model name; the engine's spec is the global --model).
    pub model: Option<String>,
    /// `--worktree`: run it in a git worktree of its own.
    pub worktree: bool,
    /// JSON output.
    pub json: bool,
}

/// Records a pending run of `start`.
async fn create(engine: &Engine, start: &Start<'_>) -> Result<WorkflowRecord, Failure> {
    let wf = workflows(engine);
    let workflow = wf.workflow(start.workflow_type)?;
    let mut input = Value::Object(start.inputs.clone());
    if let Some(p) = start.prompt {
        input["prompt"] = json!(p);
    }
    if let Some(m) = &start.model {
        input["model"] = json!(m);
    }
    if start.worktree {
        input["worktree"] = json!(true);
    }
    Ok(wf.create(workflow.as_ref(), input, start.name.clone(), None).await?)
}

/// `orch adw start TYPE --prompt TEXT --wait`: records the run, prints its id, runs it here while
/// printing its steps, and exits 0 only if it completed (130 when interrupted).
pub async fn start(engine: &Engine, sigint: Sigint, start: Start<'_>) -> Result<u8, Failure> {
    let record = create(engine, &start).await?;
    {
        let mut out = std::io::stdout().lock();
        if start.json {
            let _ = writeln!(out, "{}", json!({"id": record.id, "name": record.name, "type": record.workflow_type}));
        } else {
            let _ = writeln!(out, "{}", record.id);
        }
        let _ = out.flush();
    }
    drive(engine, sigint, record.id, start.json).await
}

/// `orch adw start TYPE --prompt TEXT`: records the run and hands it to a detached orch process;
/// prints the id (then, on stderr, the process and its log) and exits 0 at once.
pub async fn start_detached(
    engine: &Engine,
    start: Start<'_>,
    working_dir: &std::path::Path,
    global_args: Vec<std::ffi::OsString>,
) -> Result<u8, Failure> {
    let record = create(engine, &start).await?;
    let launched = crate::detach::launch(engine.store(), &record, working_dir, global_args).await?;
    let mut out = std::io::stdout().lock();
    if start.json {
        let v = json!({"id": record.id, "name": record.name, "type": record.workflow_type, "pid": launched.pid, "log": launched.log});
        let _ = writeln!(out, "{v}");
    } else {
        let _ = writeln!(out, "{}", record.id);
        eprintln!(
            "Started {} in the background (process {}; log {}). Follow it with `orch adw show {}`.",
            record.name,
            launched.pid,
            launched.log.display(),
            record.id
        );
    }
    let _ = out.flush();
    Ok(0)
}

/// The `--input KEY=VALUE` arguments as an input object: a VALUE that parses as JSON is that value,
/// anything else is text.
pub fn parse_inputs(args: &[String]) -> Result<serde_json::Map<String, Value>, Failure> {
    let mut out = serde_json::Map::new();
    for arg in args {
        let Some((key, value)) = arg.split_once('=') else {
            return Err(Failure::usage(format!("--input '{arg}': expected KEY=VALUE")));
        };
        let key = key.trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
            return Err(Failure::usage(format!("--input '{arg}': the key must be letters, digits, _ or -")));
        }
        let value = serde_json::from_str(value).unwrap_or_else(|_| Value::String(value.to_string()));
        out.insert(key.to_string(), value);
    }
    Ok(out)
}

/// `orch adw resume ID`: continues a run whose process died (or a pending one) here, following it.
pub async fn resume(engine: &Engine, sigint: Sigint, id: &str, json: bool) -> Result<u8, Failure> {
    let id = parse_id(id)?;
    drive(engine, sigint, id, json).await
}

fn parse_id(id: &str) -> Result<Id, Failure> {
    id.trim().parse().map_err(|_| Failure::usage(format!("'{id}' is not a workflow run id (a UUID)")))
}

/// Runs `id` here to its end, printing its steps; the exit code says how it ended.
async fn drive(engine: &Engine, sigint: Sigint, id: Id, json: bool) -> Result<u8, Failure> {
    let wf = workflows(engine);
    let since = engine.store().last_seq().await?;
    let interrupt = Interrupt::new();
    let ctrl_c = {
        let i = interrupt.clone();
        sigint.spawn_each(move || i.trigger())
    };
    let printer = tokio::spawn(follow(engine.store().clone(), id, since, json));
    let result = wf.run(id, Some(interrupt)).await;
    ctrl_c.abort();
    // Let the printer catch up with the last events, then stop it.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    printer.abort();
    let done = result?;
    if !json {
        eprintln!("── {}", status_line(&done));
    }
    Ok(match done.status {
        WorkflowStatus::Completed => 0,
        WorkflowStatus::Cancelled => 130,
        _ => 1,
    })
}

fn status_line(r: &WorkflowRecord) -> String {
    let mut s = format!("{} {} ({}/{} steps", r.name, r.status.as_str(), r.completed_steps, r.total_steps);
    if let Some(d) = r.duration_seconds {
        s.push_str(&format!(", {d}s"));
    }
    s.push(')');
    if let Some(e) = &r.error_message {
        s.push_str(&format!(": {}{e}", r.error_step.as_deref().map(|st| format!("{st}: ")).unwrap_or_default()));
    }
    let tree = &r.output_data["worktree"];
    if let Some(branch) = tree["branch"].as_str() {
        let state = match tree["state"].as_str() {
            Some("merged") => "merged".to_string(),
            Some("merge_skipped") => format!("kept, not merged: {}", tree["merge_error"].as_str().unwrap_or("")),
            Some("active") => format!("in worktree {}", tree["path"].as_str().unwrap_or("")),
            _ => "kept".to_string(),
        };
        s.push_str(&format!(" · branch {branch} {state}"));
    }
    s
}

/// Prints a run's steps as they happen: JSON lines, or a line per step and tool call.
async fn follow(store: std::sync::Arc<dyn Store>, id: Id, since: u64, json: bool) {
    let mut events = store.subscribe(since);
    while let Some(Ok(r)) = events.next().await {
        if r.keys.workflow_id != Some(id) {
            continue;
        }
        if json {
            println!("{}", serde_json::to_string(&r).unwrap_or_default());
            continue;
        }
        print_human(&r);
    }
}

fn print_human(r: &EventRecord) {
    let tag = r.keys.step.as_deref().map(|s| format!("[{s}] ")).unwrap_or_default();
    match &r.event {
        Event::StepStart { .. } | Event::StepEnd { .. } => eprintln!("{}", r.event.summary()),
        Event::ToolUse { .. } => eprintln!("  {tag}⏺ {}", r.event.summary()),
        Event::Text { text } => println!("{tag}{}", text.trim_end()),
        Event::SystemLog { .. } | Event::ModelError { .. } => eprintln!("  {tag}{}", r.event.summary()),
        _ => {}
    }
}

/// `orch adw cancel ID`.
pub async fn cancel(engine: &Engine, id: &str) -> Result<u8, Failure> {
    let id = parse_id(id)?;
    let r = workflows(engine).cancel(id, "cli", std::time::Duration::from_secs(30)).await?;
    println!("Cancelled workflow run {} ({})", r.name, status_line(&r));
    Ok(0)
}

/// `orch adw list`.
pub async fn list(store: &dyn Store, json: bool) -> Result<u8, Failure> {
    let runs = store.list_workflows(None, 1000).await?;
    let mut out = std::io::stdout().lock();
    if json {
        for r in &runs {
            let mut v = serde_json::to_value(r).unwrap_or_default();
            v["stale"] = json!(orch_core::workflow::is_stale(r));
            let _ = writeln!(out, "{v}");
        }
    } else if runs.is_empty() {
        let _ = writeln!(out, "No workflow runs");
    } else {
        let _ = writeln!(out, "{:<36} {:<24} {:<12} {:<8} {:<28} NAME", "ID", "TYPE", "STATUS", "STEPS", "RUN BY");
        for r in &runs {
            let steps = format!("{}/{}", r.completed_steps, r.total_steps);
            let stale = orch_core::workflow::is_stale(r);
            let status = if stale { "stale" } else { r.status.as_str() };
            let run_by = runner(r, stale);
            let _ = writeln!(
                out,
                "{:<36} {:<24} {:<12} {:<8} {:<28} {}",
                r.id, r.workflow_type, status, steps, run_by, r.name
            );
        }
    }
    Ok(0)
}

/// Who runs `r`: `detached pid N` / `pid N` (with the host when it is another one), `-` when no
/// process holds it; a stale holder is shown as gone.
fn runner(r: &WorkflowRecord, stale: bool) -> String {
    let Some(h) = &r.run else { return "-".to_string() };
    let detached = r.metadata.get("launch").and_then(|l| l.get("mode")).and_then(Value::as_str) == Some("detached");
    let mut s = format!("{}pid {}", if detached { "detached " } else { "" }, h.pid);
    if h.host != orch_core::executor::lease::host_id() {
        s.push_str(&format!(" on {}", h.host.split('#').next().unwrap_or(&h.host)));
    }
    if stale {
        s.push_str(" (gone)");
    }
    s
}

/// `orch adw show ID`: the record and its steps, with durations and event counts.
pub async fn show(store: &dyn Store, id: &str, json: bool) -> Result<u8, Failure> {
    let id = parse_id(id)?;
    let record = store
        .get_workflow(id)
        .await?
        .ok_or_else(|| Failure::new(orch_core::ErrorKind::NotFound, format!("workflow run {id} not found")))?;
    let events = store.read_events(&EventQuery { workflow_id: Some(id), ..EventQuery::default() }).await?;
    let mut steps: Vec<Value> = Vec::new();
    for r in &events {
        match &r.event {
            Event::StepStart { step_name: step, model, attempt, .. } => steps.push(json!({
                "step": step, "model": model, "attempt": attempt, "agent_id": r.keys.agent_id, "status": "running", "events": 0
            })),
            Event::StepEnd { step_name: step, status, duration_ms, payload } => {
                match steps.iter_mut().rev().find(|s| s["step"] == *step && s["status"] == "running") {
                    Some(s) => {
                        s["status"] = json!(status.as_str());
                        s["duration_ms"] = json!(duration_ms);
                        s["payload"] = payload.clone();
                    }
                    None => steps.push(json!({"step": step, "status": status.as_str(), "duration_ms": duration_ms, "payload": payload})),
                }
            }
            _ => {
                if let Some(step) = &r.keys.step
                    && let Some(s) = steps.iter_mut().rev().find(|s| s["step"] == *step)
                {
                    s["events"] = json!(s["events"].as_u64().unwrap_or(0) + 1);
                }
            }
        }
    }
    let mut out = std::io::stdout().lock();
    if json {
        let _ = writeln!(out, "{}", json!({"workflow": record, "steps": steps}));
        return Ok(0);
    }
    let _ = writeln!(out, "{} [{}]", status_line(&record), record.workflow_type);
    let stale = orch_core::workflow::is_stale(&record);
    if record.run.is_some() || stale {
        let hint = if stale { format!("; `orch adw resume {}` continues it", record.id) } else { String::new() };
        let _ = writeln!(out, "  run by {}{hint}", runner(&record, stale));
    }
    if let Some(log) = record.metadata.get("launch").and_then(|l| l.get("log")).and_then(Value::as_str) {
        let _ = writeln!(out, "  log: {log}");
    }
    for s in &steps {
        let _ = writeln!(
            out,
            "  {:<10} {:<8} {:>8} ms  {} events",
            s["step"].as_str().unwrap_or(""),
            s["status"].as_str().unwrap_or(""),
            s["duration_ms"].as_u64().unwrap_or(0),
            s["events"].as_u64().unwrap_or(0)
        );
    }
    if record.output_data.as_object().is_some_and(|o| !o.is_empty()) {
        let _ = writeln!(out, "output: {}", record.output_data);
    }
    Ok(0)
}
