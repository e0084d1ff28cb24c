//! The native agent loop: UserPromptSubmit → model (streamed) → response blocks → for each tool call:
//! PreToolUse hooks → tool → PostToolUse hooks → tool result → … until the model ends its turn, the turn
//! limit, a hook's stop or an interrupt; then Stop hooks and a `Stop` event.
//!
//! Durability: one atomic [`StepCommit`](crate::store::StepCommit) per tool call (events, usage, loop
//! state and new conversation messages together), so a crash never re-runs a tool whose result was
//! stored, and full durability costs one sync per step. A tool that runs longer than a few milliseconds first gets the events that
//! precede it committed, so watchers see `PreToolUse` while it runs.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use async_trait::async_trait;
use tracing::Instrument;

use super::compact::{self, CompactionSettings};
use super::{AgentExecutor, LoopState, PendingCall, Phase, RunError, RunOutcome, TurnContext, TurnRecorder, TurnState};
use crate::hook::{HookDecision, HookEvent, HookInput};
use crate::model::{ModelAliases, ModelError, ModelProvider, ModelRequest, PriceTable, ProviderRegistry, ToolSpec};
use crate::store::SavedState;
use crate::wire::{
    AgentStatus, ContentBlock, EndReason, Event, EventKeys, LogLevel, Message, Role, Timestamp, Usage, now,
    too_deep_input_error, too_deep_input_marker, tool_input_too_deep,
};

mod compaction;
mod subagent;
mod tool_call;

use tool_call::ToolRun;

pub use subagent::{GENERAL_PURPOSE, SubagentSettings, TASK_TOOL};

/// Characters of a tool result kept in the `PostToolUse` event (the full text is in `ToolResult`).
const POST_TOOL_RESULT_CHARS: usize = 500;
/// Characters of a prompt kept in the `UserPromptSubmit` event.
const PROMPT_EVENT_CHARS: usize = 1000;

/// A call admitted by a run's gate: the gate and its pass, handed back when the call returns.
type Admitted = (Arc<dyn crate::executor::ModelGate>, crate::executor::GatePass);

/// The native executor: a [`ProviderRegistry`] (providers, aliases, prices) that picks each turn's
/// provider from the agent's model string (or [`RunOptions::model`](super::RunOptions::model)).
pub struct NativeExecutor {
    registry: ProviderRegistry,
    max_tokens: u32,
    compaction: CompactionSettings,
    subagents: SubagentSettings,
    warned: Mutex<HashSet<String>>,
}

impl std::fmt::Debug for NativeExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NativeExecutor").field("registry", &self.registry).finish_non_exhaustive()
    }
}

impl NativeExecutor {
    /// An executor over `provider` alone (its default), with the default prices and aliases.
    pub fn new(provider: Arc<dyn ModelProvider>) -> Self {
        Self::with_registry(ProviderRegistry::single(provider))
    }

    /// An executor over the providers of `registry`, with its aliases and prices.
    pub fn with_registry(registry: ProviderRegistry) -> Self {
        Self {
            registry,
            max_tokens: 8192,
            compaction: CompactionSettings::default(),
            subagents: SubagentSettings::default(),
            warned: Mutex::new(HashSet::new()),
        }
    }

    /// Limits `Task` subagents (default: 2 levels deep, 4 at once).
    pub fn with_subagents(mut self, settings: SubagentSettings) -> Self {
        self.subagents = settings;
        self
    }

    /// Compacts conversations with these settings (default: past 80 % of the window, summaries by the
    /// agent's own model).
    pub fn with_compaction(mut self, settings: CompactionSettings) -> Self {
        self.compaction = settings;
        self
    }

    /// The compaction settings.
    pub fn compaction(&self) -> &CompactionSettings {
        &self.compaction
    }

    /// The registry.
    pub fn registry(&self) -> &ProviderRegistry {
        &self.registry
    }

    /// Uses this price table.
    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.registry.set_prices(prices);
        self
    }

    /// Uses these aliases.
    pub fn with_aliases(mut self, aliases: ModelAliases) -> Self {
        self.registry.set_aliases(aliases);
        self
    }

    /// Output token limit per model call (default 8192).
    pub fn with_max_tokens(mut self, max_tokens: u32) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// The model id an agent's model string runs as: `provider:model` on that registered provider, a
    /// bare name or alias on the default provider.
    pub fn route_model(&self, agent_model: &str) -> Result<String, String> {
        self.resolve(agent_model).map(|(_, id)| id)
    }

    /// The provider and model id of an agent's model string.
    pub fn resolve(&self, agent_model: &str) -> Result<(Arc<dyn ModelProvider>, String), String> {
        let route = self.registry.route(agent_model).map_err(|e| e.to_string())?;
        if let Some(executor) = &route.executor {
            return Err(format!(
                "its model '{agent_model}' runs on the {executor} executor, not on the native loop (use a runner whose executor routes it, e.g. the engine's)"
            ));
        }
        let provider = self.registry.provider(&route.spec).map_err(|e| e.to_string())?;
        Ok((provider, route.model_id))
    }

    /// Price of a call; an unknown model costs 0 and logs one warning event per model.
    fn price(&self, model: &str, usage: &Usage, events: &mut Vec<Event>) -> f64 {
        match self.registry.prices().cost(model, usage) {
            Some(c) => c,
            None => {
                let first = self.warned.lock().map(|mut w| w.insert(model.to_string())).unwrap_or(false);
                if first {
                    tracing::warn!(model, "no price known for model; its cost is counted as 0");
                    events.push(Event::SystemLog {
                        level: LogLevel::Warning,
                        message: format!("no price known for model '{model}'; its cost is counted as 0"),
                        metadata: serde_json::json!({"model": model}),
                    });
                }
                0.0
            }
        }
    }
}

#[async_trait]
impl AgentExecutor for NativeExecutor {
    fn name(&self) -> &str {
        "native"
    }

    /// The turn's end commit is its last write; nothing runs on after it.
    fn ends_with_its_last_commit(&self) -> bool {
        true
    }

    async fn run_turn(&self, cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError> {
        let (provider, model) = self
            .resolve(&cx.agent.model)
            .map_err(|message| RunError::Config { agent: cx.agent.name.clone(), message })?;
        // A fresh agent has nothing saved: its first turn reads nothing back.
        let saved = if cx.fresh { None } else { cx.store.load_executor_state(cx.agent.id).await? };
        let state: LoopState = match saved {
            None => LoopState::default(),
            Some(v) => serde_json::from_value(v)
                .map_err(|e| RunError::BadState { agent: cx.agent.name.clone(), message: e.to_string() })?,
        };
        let mut messages = if cx.fresh { Vec::new() } else { cx.store.load_conversation(cx.agent.id).await? };
        messages.truncate(state.message_count);
        let mut run = Run {
            exec: self,
            keys: super::agent_keys(&cx.agent, None),
            tool_specs: Arc::new(cx.tools.specs()),
            cx: &cx,
            provider,
            model,
            messages: Arc::new(messages),
            unsaved: Vec::new(),
            state,
            rec: TurnRecorder::new(),
            started: Instant::now(),
        };
        if run.offers_task() {
            Arc::make_mut(&mut run.tool_specs).push(subagent::task_spec(&cx.agent.working_dir));
        }
        if let Some((call, parked)) = run.state.waiting() {
            return Err(RunError::WaitingForPerson {
                agent: cx.agent.name.clone(),
                approval: parked.id,
                tool: call.name.clone(),
            });
        }
        match prompt {
            Some(p) => {
                if run.state.phase != Phase::Idle {
                    return Err(RunError::UnfinishedTurn(cx.agent.name.clone()));
                }
                if let Some(instructions) = compact::compact_command(&p) {
                    let instructions = instructions.to_string();
                    return run.compact_command(p, instructions).await;
                }
                if let Some(outcome) = run.start(p).await? {
                    return Ok(outcome);
                }
            }
            None => {
                if run.state.phase == Phase::Idle || run.state.turn.is_none() {
                    return Err(RunError::NothingToResume(cx.agent.name.clone()));
                }
                run.keys.task_slug = run.state.turn.as_ref().map(|t| t.task_slug.clone());
                // Recorded as a change when the agent was reset to idle after its process died.
                let keys = run.keys.clone();
                run.rec.status_change(&keys, cx.agent.status, AgentStatus::Executing);
                run.emit(Event::SystemLog {
                    level: LogLevel::Info,
                    message: format!("resuming the unfinished turn of agent '{}'", cx.agent.name),
                    metadata: serde_json::Value::Null,
                });
            }
        }
        run.drive().await
    }
}

/// Derives a run slug like the seed: the prompt's first 50 chars, lower-cased, non-alphanumeric runs as
/// `-`, then `-YYYYMMDD-HHMMSS`.
pub fn task_slug(prompt: &str, at: Timestamp) -> String {
    let head: String = prompt.chars().take(50).collect::<String>().to_lowercase();
    let mut slug = String::with_capacity(head.len() + 16);
    for c in head.chars() {
        if c.is_ascii_alphanumeric() {
            slug.push(c);
        } else if !slug.ends_with('-') {
            slug.push('-');
        }
    }
    let slug = slug.trim_matches('-');
    let stamp = at.format("%Y%m%d-%H%M%S");
    if slug.is_empty() { format!("run-{stamp}") } else { format!("{slug}-{stamp}") }
}

fn clip(s: &str, n: usize) -> String {
    crate::text::clip_chars(s, n, "")
}

struct Run<'a> {
    exec: &'a NativeExecutor,
    cx: &'a TurnContext,
    /// Tool specs offered to the model, computed once per run.
    tool_specs: Arc<Vec<ToolSpec>>,
    /// The provider of this turn (from the agent's model string).
    provider: Arc<dyn ModelProvider>,
    model: String,
    keys: EventKeys,
    /// The whole conversation (shared with the model request while a call runs).
    messages: Arc<Vec<Message>>,
    /// Messages not yet stored.
    unsaved: Vec<Message>,
    state: LoopState,
    /// Events, changes, status and usage of the step in progress.
    rec: TurnRecorder,
    started: Instant,
}

impl Run<'_> {
    fn emit(&mut self, event: Event) {
        self.rec.emit(&self.keys, event);
    }

    fn turn(&mut self) -> &mut TurnState {
        // Only called while a turn runs; a missing turn is recreated rather than panicking.
        self.state.turn.get_or_insert_with(|| TurnState {
            task_slug: String::new(),
            started_at: now(),
            num_turns: 0,
            max_turns: 500,
            usage: Usage::default(),
            cost_usd: 0.0,
            pending: Vec::new(),
            last_text: None,
            stop_requested: None,
        })
    }

    fn push_message(&mut self, msg: Message) {
        // Consecutive user messages (a prompt after an interrupted turn) merge into one.
        if msg.role == Role::User
            && self.messages.last().is_some_and(|m| m.role == Role::User)
            && !self.unsaved.is_empty()
            && let (Some(last), Some(last_unsaved)) =
                (Arc::make_mut(&mut self.messages).last_mut(), self.unsaved.last_mut())
        {
            last.content.extend(msg.content.iter().cloned());
            last_unsaved.content.extend(msg.content);
            return;
        }
        Arc::make_mut(&mut self.messages).push(msg.clone());
        self.unsaved.push(msg);
    }

    /// Stores everything pending in one atomic commit.
    async fn commit(&mut self) -> Result<(), RunError> {
        let saved = self.saved_state()?;
        self.rec.commit(self.cx, Some(saved), std::mem::take(&mut self.unsaved)).await?;
        Ok(())
    }

    /// The loop's state as saved with a commit.
    fn saved_state(&mut self) -> Result<SavedState, RunError> {
        self.state.message_count = self.messages.len();
        self.state.version = LoopState::VERSION;
        let state = serde_json::to_value(&self.state)
            .map_err(|e| RunError::BadState { agent: self.cx.agent.name.clone(), message: e.to_string() })?;
        Ok(SavedState { state: Some(state), session_id: self.cx.agent.session_id.clone() })
    }

    fn hook_input(&self, event: HookEvent) -> HookInput {
        HookInput::for_agent(event, &self.cx.agent)
    }

    /// Runs the matching hooks in order, recording each invocation. Returns the decisions.
    async fn hooks(&mut self, input: &mut HookInput) -> Vec<HookDecision> {
        let run = self.cx.hooks.run(input).await;
        for e in run.events {
            self.emit(e);
        }
        run.decisions
    }

    /// Opens a turn for `prompt`: its slug and state, the prompt row, the agent executing.
    fn begin_turn(&mut self, prompt: &str) {
        let at = now();
        let slug = self.cx.options.task_slug.clone().unwrap_or_else(|| task_slug(prompt, at));
        self.keys.task_slug = Some(slug.clone());
        self.state.turn = Some(TurnState {
            task_slug: slug.clone(),
            started_at: at,
            num_turns: 0,
            max_turns: self.cx.options.max_turns,
            usage: Usage::default(),
            cost_usd: 0.0,
            pending: Vec::new(),
            last_text: None,
            stop_requested: None,
        });
        self.rec.prompt(self.cx, &slug, prompt, at);
        self.rec.status_change(&self.keys, self.cx.agent.status, AgentStatus::Executing);
    }

    /// Starts a turn. Returns an outcome when the turn ends before any model call (a denied prompt).
    async fn start(&mut self, prompt: String) -> Result<Option<RunOutcome>, RunError> {
        self.begin_turn(&prompt);
        self.emit(Event::UserPromptSubmit {
            prompt: clip(&prompt, PROMPT_EVENT_CHARS),
            prompt_length: prompt.chars().count(),
        });
        let mut input = self.hook_input(HookEvent::UserPromptSubmit);
        input.prompt = Some(prompt.clone());
        let mut prompt = prompt;
        for d in self.hooks(&mut input).await {
            match d {
                HookDecision::Deny { reason } => {
                    return self.finish(&format!("denied: {reason}"), false).await.map(Some);
                }
                HookDecision::AddContext { context } => {
                    prompt.push_str("\n\n");
                    prompt.push_str(&context);
                }
                HookDecision::Stop { reason } => {
                    return self.finish(&format!("hook: {reason}"), false).await.map(Some);
                }
                _ => {}
            }
        }
        self.push_message(Message::user_text(prompt));
        self.state.phase = Phase::CallModel;
        // Committed before the first model call, with the gate's admission of it when it offers one.
        Ok(None)
    }

    async fn drive(&mut self) -> Result<RunOutcome, RunError> {
        loop {
            if self.cx.interrupt.is_triggered() {
                return self.interrupted().await;
            }
            match self.state.phase {
                Phase::Idle => return self.finish("end_turn", false).await,
                Phase::CallModel => {
                    let (n, max) = {
                        let t = self.turn();
                        (t.num_turns, t.max_turns)
                    };
                    if n >= max {
                        return self.finish("max_turns", false).await;
                    }
                    // A compaction first commits what is pending, then its own step.
                    self.maybe_compact().await?;
                    let request = self.request();
                    // Events must be stored before the next model call. New conversation messages alone
                    // (the tool results just closed) may wait for the next commit: the saved state already
                    // holds those results, so a crash here loses nothing.
                    let admitted =
                        if self.rec.pending_events() > 0 { self.commit_before_call(&request).await? } else { None };
                    match self.call_model(request, admitted).await {
                        Ok(Some(())) => {}
                        Ok(None) => return self.interrupted().await,
                        Err(e) => {
                            self.emit(Event::ModelError {
                                model: self.model.clone(),
                                message: e.to_string(),
                                retryable: e.is_retryable(),
                            });
                            self.finish_error(&e).await?;
                            return Err(RunError::Model(e));
                        }
                    }
                }
                Phase::RunTools => {
                    let n = self.turn().pending.len();
                    let mut next = 0;
                    while next < n {
                        let i = next;
                        next += 1;
                        if self.turn().pending[i].result.is_some() {
                            continue;
                        }
                        if self.turn().stop_requested.is_some() {
                            self.turn().pending[i].result =
                                Some(("Not run: the turn was stopped by a hook.".into(), true));
                            continue;
                        }
                        if self.is_task(i) {
                            // This and the following unresolved Task calls run at once.
                            let mut tasks = vec![i];
                            while next < n && self.turn().pending[next].result.is_none() && self.is_task(next) {
                                tasks.push(next);
                                next += 1;
                            }
                            if !self.run_tasks(tasks).await? {
                                return self.interrupted().await;
                            }
                            continue;
                        }
                        let span = self.tool_span(i);
                        match self.run_tool(i).instrument(span.clone()).await? {
                            ToolRun::Done(content, is_error) => {
                                span.record("orch.tool.is_error", is_error);
                                self.turn().pending[i].result = Some((content, is_error));
                                self.commit().await?;
                            }
                            ToolRun::Interrupted => return self.interrupted().await,
                            ToolRun::Parked => return Ok(self.parked_outcome()),
                        }
                    }
                    self.close_tool_step();
                    if let Some(reason) = self.turn().stop_requested.clone() {
                        return self.finish(&format!("hook: {reason}"), false).await;
                    }
                }
            }
        }
    }

    /// Moves the step's tool results into the conversation and goes back to the model.
    fn close_tool_step(&mut self) {
        let pending = std::mem::take(&mut self.turn().pending);
        let content = pending
            .into_iter()
            .map(|p| {
                let (content, is_error) = p.result.unwrap_or_else(|| ("Not run.".into(), true));
                ContentBlock::ToolResult { tool_use_id: p.id, content, is_error }
            })
            .collect();
        self.push_message(Message { role: Role::User, content });
        self.state.phase = Phase::CallModel;
    }

    /// An upper bound of a call's cost for a [`ModelGate`](crate::executor::ModelGate): the request's
    /// bytes as input tokens (real tokens average three to four bytes) and its whole output allowance.
    fn estimate_cost(&self, request: &ModelRequest) -> f64 {
        let bytes = serde_json::to_string(&request.messages).map(|s| s.len()).unwrap_or(0)
            + request.system.as_ref().map_or(0, String::len)
            + serde_json::to_string(&request.tools).map(|s| s.len()).unwrap_or(0);
        let usage = Usage {
            input_tokens: u64::try_from(bytes).unwrap_or(u64::MAX),
            output_tokens: u64::from(request.max_tokens),
            ..Usage::default()
        };
        self.exec.registry.prices().cost(&self.model, &usage).unwrap_or(0.0)
    }

    /// The request of the next model call: the whole conversation.
    fn request(&self) -> ModelRequest {
        ModelRequest {
            model: self.model.clone(),
            system: self.cx.agent.system_prompt.clone(),
            messages: self.messages.clone(),
            tools: self.tool_specs.clone(),
            max_tokens: self.exec.max_tokens,
            thinking: None,
            agent_name: self.cx.agent.name.clone(),
        }
    }

    /// Commits what is pending before the call of `request`. A gate that offers its admission as a
    /// change ([`ModelGate::reservation`](crate::executor::ModelGate::reservation)) has it stored in
    /// this commit: the call is then admitted (returned), with no commit of its own. A refused
    /// reservation leaves the step committed alone and the call to [`Run::call_model`]'s `admit`.
    async fn commit_before_call(&mut self, request: &ModelRequest) -> Result<Option<Admitted>, RunError> {
        let offered = match &self.cx.options.gate {
            Some(gate) => gate.reservation(&self.model, self.estimate_cost(request)).map(|o| (gate.clone(), o)),
            None => None,
        };
        let Some((gate, (pass, change))) = offered else {
            self.commit().await?;
            return Ok(None);
        };
        let saved = self.saved_state()?;
        let messages = std::mem::take(&mut self.unsaved);
        let (_, reserved) = self.rec.commit_reserving(self.cx, Some(saved), messages, change).await?;
        Ok(reserved.then_some((gate, pass)))
    }

    /// One model call, admitted already or asking the gate now. `Ok(None)` when interrupted.
    async fn call_model(
        &mut self,
        request: ModelRequest,
        admitted: Option<Admitted>,
    ) -> Result<Option<()>, ModelError> {
        let pass = match (admitted, self.cx.options.gate.clone()) {
            (Some(admitted), _) => Some(admitted),
            (None, Some(gate)) => {
                let estimate = self.estimate_cost(&request);
                let pass = gate.admit(&self.model, estimate).await.map_err(|message| ModelError::Other { message })?;
                Some((gate, pass))
            }
            (None, None) => None,
        };
        let span = self.model_span();
        let resp = self.stream_call(self.provider.clone(), request, true).instrument(span.clone()).await;
        let mut resp = match resp {
            Ok(Some(resp)) => resp,
            other => {
                if let Err(e) = &other {
                    span.record("otel.status_code", "ERROR");
                    span.record("error.type", tracing::field::display(e));
                }
                if let Some((gate, pass)) = pass {
                    gate.settle(pass, 0.0).await;
                }
                return other.map(|_| None);
            }
        };
        // A tool input too deep to be read back once stored is refused, and stored as a small marker.
        let mut too_deep = HashSet::new();
        for block in &mut resp.content {
            if let ContentBlock::ToolUse { id, input, .. } = block
                && tool_input_too_deep(input)
            {
                *input = too_deep_input_marker();
                too_deep.insert(id.clone());
            }
        }
        // Usage and cost, added atomically with the step's commit.
        let mut extra = Vec::new();
        let cost = self.exec.price(&self.model, &resp.usage, &mut extra);
        // OpenTelemetry's integers are signed: counts go as i64.
        let count = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        span.record("gen_ai.usage.input_tokens", count(resp.usage.input_tokens));
        span.record("gen_ai.usage.output_tokens", count(resp.usage.output_tokens));
        span.record("gen_ai.usage.cache_read.input_tokens", count(resp.usage.cache_read_input_tokens));
        span.record("gen_ai.usage.cache_creation.input_tokens", count(resp.usage.cache_creation_input_tokens));
        span.record("gen_ai.response.finish_reasons", resp.stop_reason.as_str());
        span.record("orch.cost_usd", cost);
        drop(span);
        for e in extra {
            self.emit(e);
        }
        // The settlement is stored with the step that records this call's usage, when the gate allows.
        if let Some((gate, pass)) = pass {
            match gate.settlement(&pass, cost) {
                Some(change) => self.rec.change(change),
                None => gate.settle(pass, cost).await,
            }
        }
        let (total_usage, total_cost) = {
            let t = self.turn();
            t.num_turns += 1;
            t.usage.add(&resp.usage);
            t.cost_usd += cost;
            (t.usage, t.cost_usd)
        };
        let mut agent_usage = self.cx.agent.usage;
        agent_usage.add(&total_usage);
        self.rec.add_usage(&resp.usage, cost);
        let u = &resp.usage;
        let context_used = u.input_tokens + u.cache_read_input_tokens + u.cache_creation_input_tokens + u.output_tokens;
        let window = self.window();
        self.rec.context(context_used, window);
        self.emit(Event::AgentCostsUpdated {
            model: self.model.clone(),
            usage: resp.usage,
            cost_usd: cost,
            total_usage: agent_usage,
            total_cost_usd: self.cx.agent.total_cost_usd + total_cost,
            context_used: Some(context_used),
            context_window: window,
        });
        let mut pending = Vec::new();
        for block in &resp.content {
            match block {
                ContentBlock::Text { text } => {
                    self.emit(Event::Text { text: text.clone() });
                    self.turn().last_text = Some(text.clone());
                }
                ContentBlock::Thinking { thinking, signature } => {
                    self.emit(Event::Thinking { thinking: thinking.clone(), signature: signature.clone() })
                }
                ContentBlock::ToolUse { id, name, input } => {
                    self.emit(Event::ToolUse {
                        tool_name: name.clone(),
                        tool_input: input.clone(),
                        tool_use_id: id.clone(),
                    });
                    let result = if too_deep.contains(id) {
                        let reason = too_deep_input_error();
                        tracing::warn!(tool = %name, id = %id, "refused a tool call: {reason}");
                        self.emit(Event::ToolRefused {
                            tool_name: name.clone(),
                            tool_use_id: id.clone(),
                            reason: reason.clone(),
                        });
                        self.emit(Event::ToolResult {
                            tool_use_id: id.clone(),
                            tool_name: name.clone(),
                            content: reason.clone(),
                            is_error: true,
                        });
                        Some((reason, true))
                    } else {
                        None
                    };
                    pending.push(PendingCall {
                        id: id.clone(),
                        name: name.clone(),
                        input: input.clone(),
                        result,
                        approval: None,
                    });
                }
                ContentBlock::RedactedThinking { .. } | ContentBlock::ToolResult { .. } => {}
            }
        }
        let stop = resp.stop_reason;
        self.push_message(Message { role: Role::Assistant, content: resp.content });
        self.state.context_used = context_used;
        self.state.context_at = self.messages.len();
        if pending.is_empty() {
            self.state.phase = Phase::Idle;
            self.turn().stop_requested = Some(stop.as_str().to_string());
        } else {
            self.turn().pending = pending;
            self.state.phase = Phase::RunTools;
        }
        Ok(Some(()))
    }

    /// The span of one model call (OpenTelemetry's GenAI `chat`); usage and cost are recorded on it
    /// when the call returns.
    fn model_span(&self) -> tracing::Span {
        let provider = self.provider.name();
        tracing::info_span!(
            "chat",
            otel.name = %format_args!("chat {}", self.model),
            otel.kind = "client",
            gen_ai.operation.name = "chat",
            gen_ai.system = provider,
            gen_ai.provider.name = provider,
            gen_ai.request.model = %self.model,
            gen_ai.request.max_tokens = i64::from(self.exec.max_tokens),
            gen_ai.agent.name = %self.cx.agent.name,
            gen_ai.usage.input_tokens = tracing::field::Empty,
            gen_ai.usage.output_tokens = tracing::field::Empty,
            gen_ai.usage.cache_read.input_tokens = tracing::field::Empty,
            gen_ai.usage.cache_creation.input_tokens = tracing::field::Empty,
            gen_ai.response.finish_reasons = tracing::field::Empty,
            orch.cost_usd = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
            error.type = tracing::field::Empty,
        )
    }

    /// The span of pending call `i` (OpenTelemetry's GenAI `execute_tool`), hooks included.
    fn tool_span(&mut self, i: usize) -> tracing::Span {
        let call = &self.turn().pending[i];
        tracing::info_span!(
            "execute_tool",
            otel.name = %format_args!("execute_tool {}", call.name),
            gen_ai.operation.name = "execute_tool",
            gen_ai.tool.name = %call.name,
            gen_ai.tool.call.id = %call.id,
            orch.tool.is_error = tracing::field::Empty,
        )
    }

    async fn interrupted(&mut self) -> Result<RunOutcome, RunError> {
        // Keep the conversation valid: every tool call gets a result.
        if self.state.phase == Phase::RunTools {
            for p in self.turn().pending.iter_mut() {
                if p.result.is_none() {
                    p.result = Some(("Interrupted by the user before the tool finished.".into(), true));
                }
            }
            self.close_tool_step();
        }
        self.finish("interrupted", false).await
    }

    async fn finish_error(&mut self, e: &ModelError) -> Result<RunOutcome, RunError> {
        let msg = e.to_string();
        self.turn().last_text = Some(msg);
        self.finish("error", true).await
    }

    /// Ends the turn: Stop hooks (which may ask to continue), `Stop` and `Result` events, state idle.
    async fn finish(&mut self, reason: &str, is_error: bool) -> Result<RunOutcome, RunError> {
        let reason = match self.state.turn.as_ref().and_then(|t| t.stop_requested.clone()) {
            Some(r) if reason == "end_turn" => r,
            _ => reason.to_string(),
        };
        let mut hin = self.hook_input(HookEvent::Stop);
        hin.stop_reason = Some(reason.clone());
        let decisions = self.hooks(&mut hin).await;
        if reason == "end_turn" && !self.cx.interrupt.is_triggered() {
            // A Stop hook that denies stopping sends its reason back to the model (Claude Code's `block`).
            if let Some(HookDecision::Deny { reason: why }) =
                decisions.into_iter().find(|d| matches!(d, HookDecision::Deny { .. }))
            {
                let (n, max) = {
                    let t = self.turn();
                    (t.num_turns, t.max_turns)
                };
                if n < max {
                    self.turn().stop_requested = None;
                    self.push_message(Message::user_text(why));
                    self.state.phase = Phase::CallModel;
                    return Box::pin(self.drive()).await;
                }
            }
        }
        let turn = self.state.turn.take();
        let (num_turns, usage, cost_usd, final_text, slug, started_at) = match turn {
            Some(t) => (t.num_turns, t.usage, t.cost_usd, t.last_text, t.task_slug, Some(t.started_at)),
            None => (0, Usage::default(), 0.0, None, String::new(), None),
        };
        let duration_ms = match started_at {
            Some(s) => (now() - s).num_milliseconds().max(0) as u64,
            None => self.started.elapsed().as_millis() as u64,
        };
        let reason = EndReason::parse(&reason);
        self.emit(Event::Stop { reason: reason.clone(), num_turns, duration_ms });
        self.emit(Event::Result {
            is_error,
            stop_reason: reason.clone(),
            num_turns,
            duration_ms,
            usage,
            cost_usd,
            result: final_text.clone(),
        });
        let new_status = if is_error { AgentStatus::Blocked } else { AgentStatus::Idle };
        self.rec.status_change(&self.keys, AgentStatus::Executing, new_status);
        self.state.phase = Phase::Idle;
        self.state.turn = None;
        self.commit().await?;
        Ok(RunOutcome { stop_reason: reason, num_turns, usage, cost_usd, final_text, duration_ms, task_slug: slug })
    }
}
