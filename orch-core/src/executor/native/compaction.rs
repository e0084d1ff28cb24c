//! The native loop's compaction: measuring the context before a model call, and replacing the older
//! part of the conversation by a summary (see [`crate::executor::compact`]).

use std::pin::pin;
use std::sync::Arc;

use futures::StreamExt;
use futures::future::{Either, select};

use super::Run;
use crate::executor::compact;
use crate::executor::{RunError, RunOutcome};
use crate::hook::{HookDecision, HookEvent};
use crate::model::{AssembledResponse, ModelDelta, ModelError, ModelProvider, ModelRequest, ResponseAssembler};
use crate::store::Change;
use crate::wire::{CompactTrigger, Event, LogLevel, Message, Usage};

/// How a compaction went.
pub(super) enum Compaction {
    /// Done; the summary.
    Done(String),
    /// A `PreCompact` hook vetoed it; its reason.
    Vetoed(String),
    /// Nothing could be replaced; why.
    Nothing(String),
    /// The summary model failed; its error.
    Failed(ModelError),
    /// Interrupted while the summary was written.
    Interrupted,
}

impl Run<'_> {
    /// The context window of this turn's model, when known.
    pub(super) fn window(&self) -> Option<u64> {
        self.exec.registry.prices().context_window(&self.model)
    }

    /// Estimated tokens of what every request carries besides the conversation: system prompt and
    /// tool specs.
    fn fixed_context(&self) -> u64 {
        let system = self.cx.agent.system_prompt.as_deref().map_or(0, compact::estimate_text);
        let tools: u64 = self
            .tool_specs
            .iter()
            .map(|t| {
                compact::estimate_text(&t.name)
                    + compact::estimate_text(&t.description)
                    + compact::estimate_text(&t.input_schema.to_string())
            })
            .sum();
        system + tools
    }

    /// The context the next request would use: the last call's, plus an estimate of the messages
    /// added since; before any call (or after a compaction), an estimate of the whole request.
    pub(super) fn estimated_context(&self) -> u64 {
        let (used, at) = (self.state.context_used, self.state.context_at);
        if used > 0 && at <= self.messages.len() {
            used + compact::estimate_messages(&self.messages[at..])
        } else {
            self.fixed_context() + compact::estimate_messages(&self.messages)
        }
    }

    /// Compacts the conversation first if the next request would pass the agent's threshold.
    pub(super) async fn maybe_compact(&mut self) -> Result<(), RunError> {
        let at = self.cx.agent.compact_at.unwrap_or(self.exec.compaction.compact_at);
        let Some(window) = self.window() else { return Ok(()) };
        if at <= 0.0 || !at.is_finite() {
            return Ok(());
        }
        let limit = (window as f64 * at.min(1.0)) as u64;
        let used = self.estimated_context();
        if used <= limit {
            return Ok(());
        }
        tracing::info!(agent = %self.cx.agent.name, used, limit, "compacting the conversation before a model call");
        match self.compact(CompactTrigger::Auto, Vec::new(), used).await? {
            Compaction::Done(_) | Compaction::Vetoed(_) | Compaction::Interrupted => {}
            Compaction::Nothing(why) => self.emit(Event::SystemLog {
                level: LogLevel::Warning,
                message: format!("the conversation is past {:.0} % of its window but {why}", at * 100.0),
                metadata: serde_json::json!({"context": used, "window": window}),
            }),
            Compaction::Failed(e) => self.emit(Event::SystemLog {
                level: LogLevel::Warning,
                message: format!("compaction failed, the call goes ahead with the whole conversation: {e}"),
                metadata: serde_json::json!({"context": used, "window": window}),
            }),
        }
        Ok(())
    }

    /// Replaces the older part of the conversation by a summary, in one commit with the `Compacted`
    /// event that keeps the replaced messages. `PreCompact` hooks run first: they may veto it or add
    /// instructions for the summary.
    pub(super) async fn compact(
        &mut self,
        trigger: CompactTrigger,
        mut instructions: Vec<String>,
        tokens_before: u64,
    ) -> Result<Compaction, RunError> {
        if !self.unsaved.is_empty() || !self.rec.is_empty() {
            self.commit().await?;
        }
        self.emit(Event::PreCompact { tokens_before });
        let mut hin = self.hook_input(HookEvent::PreCompact);
        hin.trigger = Some(trigger.as_str().to_string());
        hin.custom_instructions = Some(instructions.join("\n")).filter(|s| !s.is_empty());
        for d in self.hooks(&mut hin).await {
            match d {
                HookDecision::Deny { reason } | HookDecision::Stop { reason } => {
                    self.emit(Event::SystemLog {
                        level: LogLevel::Info,
                        message: format!("compaction vetoed by a PreCompact hook: {reason}"),
                        metadata: serde_json::Value::Null,
                    });
                    self.commit().await?;
                    return Ok(Compaction::Vetoed(reason));
                }
                HookDecision::AddContext { context } => instructions.push(context),
                _ => {}
            }
        }
        let settings = &self.exec.compaction;
        let at = self.cx.agent.compact_at.unwrap_or(settings.compact_at);
        // The verbatim tail must leave room under the threshold for the summary.
        let keep_fraction = if at > 0.0 { settings.keep_fraction.min(at / 2.0) } else { settings.keep_fraction };
        let keep = (self.window().unwrap_or(tokens_before) as f64 * keep_fraction) as u64;
        let Some(cut) = compact::cut_point(&self.messages, keep) else {
            return Ok(Compaction::Nothing("there is nothing before its last answer to summarize".into()));
        };
        let replaced = self.messages[..cut].to_vec();
        let (provider, model) = match settings.summary_model.as_deref() {
            Some(spec) => match self.exec.resolve(spec) {
                Ok(pm) => pm,
                Err(message) => {
                    return Ok(Compaction::Failed(ModelError::Other {
                        message: format!("summary model '{spec}': {message}"),
                    }));
                }
            },
            None => (self.provider.clone(), self.model.clone()),
        };
        let request = ModelRequest {
            model: model.clone(),
            system: Some(compact::SUMMARY_SYSTEM.to_string()),
            messages: Arc::new(vec![Message::user_text(compact::summary_request(&replaced, &instructions))]),
            tools: Arc::new(Vec::new()),
            max_tokens: settings.summary_max_tokens,
            thinking: None,
            agent_name: self.cx.agent.name.clone(),
        };
        let resp = match self.stream_call(provider, request, false).await {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Compaction::Interrupted),
            Err(e) => return Ok(Compaction::Failed(e)),
        };
        let mut extra = Vec::new();
        let cost = self.exec.price(&model, &resp.usage, &mut extra);
        for e in extra {
            self.emit(e);
        }
        self.account(&model, &resp.usage, cost);
        let summary = resp.text();
        if summary.trim().is_empty() {
            return Ok(Compaction::Failed(ModelError::Other {
                message: "the summary model answered with no text".into(),
            }));
        }
        let mut kept = vec![compact::summary_message(&summary)];
        kept.extend(self.messages[cut..].iter().cloned());
        let tokens_after = self.fixed_context() + compact::estimate_messages(&kept);
        let agent_id = self.cx.agent.id;
        self.rec.change(Change::ClearConversation { agent_id });
        self.rec.change(Change::AppendMessages { agent_id, messages: kept.clone() });
        self.emit(Event::Compacted {
            trigger,
            tokens_before,
            tokens_after,
            messages_replaced: u32::try_from(cut).unwrap_or(u32::MAX),
            messages_kept: u32::try_from(kept.len() - 1).unwrap_or(u32::MAX),
            summary: summary.clone(),
            replaced,
        });
        self.messages = Arc::new(kept);
        self.state.context_used = 0;
        self.state.context_at = 0;
        self.commit().await?;
        Ok(Compaction::Done(summary))
    }

    /// Adds a call's usage and cost to the turn and the agent, with its `AgentCostsUpdated` event.
    fn account(&mut self, model: &str, usage: &Usage, cost: f64) {
        let (total_usage, total_cost) = match self.state.turn.as_mut() {
            Some(t) => {
                t.usage.add(usage);
                t.cost_usd += cost;
                (t.usage, t.cost_usd)
            }
            None => (*usage, cost),
        };
        let mut agent_usage = self.cx.agent.usage;
        agent_usage.add(&total_usage);
        self.rec.add_usage(usage, cost);
        self.emit(Event::AgentCostsUpdated {
            model: model.to_string(),
            usage: *usage,
            cost_usd: cost,
            total_usage: agent_usage,
            total_cost_usd: self.cx.agent.total_cost_usd + total_cost,
            context_used: None,
            context_window: None,
        });
    }

    /// One model call assembled whole: retries are recorded as events and, when `live`, each delta
    /// goes to the run's `on_delta` as it arrives. `Ok(None)` when interrupted.
    pub(super) async fn stream_call(
        &mut self,
        provider: Arc<dyn ModelProvider>,
        request: ModelRequest,
        live: bool,
    ) -> Result<Option<AssembledResponse>, ModelError> {
        let model = request.model.clone();
        let interrupt = self.cx.interrupt.clone();
        let mut stream = {
            let call = pin!(provider.stream(request));
            match select(call, pin!(interrupt.triggered())).await {
                Either::Left((r, _)) => r?,
                Either::Right(_) => return Ok(None),
            }
        };
        let mut asm = ResponseAssembler::new();
        loop {
            let next = {
                let n = stream.next();
                match select(n, pin!(interrupt.triggered())).await {
                    Either::Left((n, _)) => n,
                    Either::Right(_) => return Ok(None),
                }
            };
            match next {
                None => break,
                Some(Err(e)) => return Err(e),
                Some(Ok(ModelDelta::Retry { attempt, wait_ms, error })) => {
                    self.emit(Event::ModelRetry { model: model.clone(), attempt, wait_ms, error });
                }
                Some(Ok(delta)) => {
                    if live && let Some(cb) = &self.cx.options.on_delta {
                        cb(&delta);
                    }
                    asm.push(delta)?;
                }
            }
        }
        asm.finish().map(Some)
    }

    /// Runs `/compact [instructions]`: a turn that compacts the conversation instead of calling the
    /// model, and ends with the summary as its result.
    pub(super) async fn compact_command(
        &mut self,
        prompt: String,
        instructions: String,
    ) -> Result<RunOutcome, RunError> {
        self.begin_turn(&prompt);
        let before = self.estimated_context();
        let instructions = if instructions.is_empty() { Vec::new() } else { vec![instructions] };
        let (reason, text, is_error) = match self.compact(CompactTrigger::Manual, instructions, before).await? {
            Compaction::Done(summary) => ("compacted".to_string(), summary, false),
            Compaction::Vetoed(reason) => (format!("hook: {reason}"), format!("Not compacted: {reason}"), false),
            Compaction::Nothing(why) => ("compacted".to_string(), format!("Nothing to compact: {why}"), false),
            Compaction::Failed(e) => ("error".to_string(), format!("Compaction failed: {e}"), true),
            Compaction::Interrupted => ("interrupted".to_string(), "Compaction interrupted".to_string(), false),
        };
        if let Some(t) = self.state.turn.as_mut() {
            t.last_text = Some(text);
        }
        self.finish(&reason, is_error).await
    }
}
