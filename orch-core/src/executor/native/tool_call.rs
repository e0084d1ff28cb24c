//! One tool call of the native loop: PreToolUse hooks (which may deny, rewrite, add context, stop or
//! ask a person), the tool itself (interruptible, with the events before a slow tool committed first),
//! PostToolUse hooks, and the result events.
//!
//! A hook's `ask` parks the call: an `ApprovalRequested` event, the agent `waiting`, and the decision
//! recorded in the loop state ([`Parked`]), committed together; the turn then returns
//! [`EndReason::Waiting`]. Once a person resolved it (see [`crate::approval`]), resuming the turn runs
//! the call from its saved decision without asking the hooks again: approved, the tool runs with the
//! input the person saw; denied, the model gets the reason as the tool's error; answered, the model
//! gets the answer.

use std::pin::pin;
use std::time::Duration;

use futures::future::{Either, select};

use super::{POST_TOOL_RESULT_CHARS, Run, clip};
use crate::executor::{Parked, PendingCall, RunError, RunOutcome};
use crate::hook::{HookDecision, HookEvent};
use crate::tool::{ToolContext, ToolError};
use crate::wire::{ASK_USER_QUESTION, AgentStatus, ApprovalDecision, EndReason, Event, Id, new_id, now};

/// How long a tool may run before the events preceding it are committed on their own.
const FLUSH_BEFORE_SLOW_TOOL: Duration = Duration::from_millis(20);
/// How long a tool gets to stop by itself after an interrupt before it is dropped.
const INTERRUPT_GRACE: Duration = Duration::from_millis(500);

/// How one tool call ended.
pub(super) enum ToolRun {
    /// With this result text and error flag.
    Done(String, bool),
    /// Interrupted before the tool finished.
    Interrupted,
    /// Parked until a person decides.
    Parked,
}

/// What to do with a call once its PreToolUse hooks (or a person) decided.
enum Verdict {
    Run,
    Denied(String),
    Result(String, bool),
}

impl Run<'_> {
    /// Runs pending call `i`.
    pub(super) async fn run_tool(&mut self, i: usize) -> Result<ToolRun, RunError> {
        let PendingCall { id, name, input, approval, .. } = self.turn().pending[i].clone();
        let (input, mut context, verdict) = match approval {
            Some(Parked { input, context, resolution: Some((decision, text)), .. }) => {
                (input, context, resolved_verdict(&name, decision, text))
            }
            _ => {
                let (input, context, verdict, ask) = self.pre_tool_hooks(&id, &name, input).await;
                if let (Verdict::Run, Some(question)) = (&verdict, ask) {
                    return self.park(i, question, input, context).await;
                }
                (input, context, verdict)
            }
        };
        let (mut content, mut is_error) = match verdict {
            Verdict::Denied(reason) => (reason, true),
            Verdict::Result(content, is_error) => (content, is_error),
            Verdict::Run => match self.call_tool(&id, &name, input.clone()).await? {
                Some(result) => result,
                None => return Ok(ToolRun::Interrupted),
            },
        };
        let mut hin = self.hook_input(HookEvent::PostToolUse);
        hin.tool_name = Some(name.clone());
        hin.tool_input = Some(input);
        hin.tool_use_id = Some(id.clone());
        hin.tool_output = Some(content.clone());
        hin.tool_is_error = Some(is_error);
        for d in self.hooks(&mut hin).await {
            match d {
                HookDecision::ReplaceOutput { output, is_error: e } => {
                    content = output;
                    is_error = e;
                }
                HookDecision::AddContext { context: c } => context.push(c),
                HookDecision::Stop { reason } => self.turn().stop_requested = Some(reason),
                _ => {}
            }
        }
        for c in context {
            content.push_str("\n\n");
            content.push_str(&c);
        }
        self.emit(Event::PostToolUse {
            tool_name: name.clone(),
            result: Some(clip(&content, POST_TOOL_RESULT_CHARS)),
            is_error,
            tool_use_id: id.clone(),
        });
        self.emit(Event::ToolResult { tool_use_id: id, tool_name: name, content: content.clone(), is_error });
        Ok(ToolRun::Done(content, is_error))
    }

    /// The `PreToolUse` event and hooks: the input as rewritten, the context added, the verdict, and
    /// the question if a hook asked a person (a `Deny` wins over an ask).
    async fn pre_tool_hooks(
        &mut self,
        id: &str,
        name: &str,
        input: serde_json::Value,
    ) -> (serde_json::Value, Vec<String>, Verdict, Option<String>) {
        self.emit(Event::PreToolUse { tool_name: name.into(), tool_input: input.clone(), tool_use_id: id.into() });
        let mut hin = self.hook_input(HookEvent::PreToolUse);
        hin.tool_name = Some(name.into());
        hin.tool_input = Some(input.clone());
        hin.tool_use_id = Some(id.into());
        let mut input = input;
        let mut context = Vec::new();
        let mut denied = None;
        let mut ask: Option<String> = None;
        for d in self.hooks(&mut hin).await {
            match d {
                HookDecision::Deny { reason } => denied = Some(reason),
                HookDecision::RewriteInput { input: new } => input = new,
                HookDecision::AddContext { context: c } => context.push(c),
                HookDecision::Stop { reason } => self.turn().stop_requested = Some(reason),
                HookDecision::Ask { question } => {
                    ask = Some(match ask {
                        Some(q) => format!("{q}\n{question}"),
                        None => question,
                    })
                }
                HookDecision::Continue | HookDecision::ReplaceOutput { .. } => {}
            }
        }
        if let Some(reason) = denied {
            return (input, context, Verdict::Denied(format!("Tool call denied by a PreToolUse hook: {reason}")), None);
        }
        if let Some(question) = &ask
            && self.cx.options.subagent_depth > 0
        {
            let reason = format!(
                "Tool call not run: a PreToolUse hook asks a person first ({question}), and a subagent cannot wait for one"
            );
            return (input, context, Verdict::Denied(reason), None);
        }
        (input, context, Verdict::Run, ask)
    }

    /// Parks call `i` for a person: the approval in the loop state, its `ApprovalRequested` event and
    /// the agent `waiting`, in one commit. The turn is not over: its `Stop` comes when it ends.
    async fn park(
        &mut self,
        i: usize,
        question: String,
        input: serde_json::Value,
        context: Vec<String>,
    ) -> Result<ToolRun, RunError> {
        let approval: Id = new_id();
        let call = &mut self.turn().pending[i];
        call.approval =
            Some(Parked { id: approval, question: question.clone(), input: input.clone(), context, resolution: None });
        let (tool_use_id, tool_name) = (call.id.clone(), call.name.clone());
        tracing::info!(agent = %self.cx.agent.name, tool = %tool_name, %approval, "a tool call waits for a person");
        self.emit(Event::ApprovalRequested { approval, tool_use_id, tool_name, tool_input: input, question });
        let keys = self.keys.clone();
        self.rec.status_change(&keys, AgentStatus::Executing, AgentStatus::Waiting);
        self.commit().await?;
        Ok(ToolRun::Parked)
    }

    /// The outcome of a turn parked for a person: its usage so far; the turn stays open.
    pub(super) fn parked_outcome(&mut self) -> RunOutcome {
        let t = self.turn().clone();
        let duration_ms = (now() - t.started_at).num_milliseconds().max(0) as u64;
        RunOutcome {
            stop_reason: EndReason::Waiting,
            num_turns: t.num_turns,
            usage: t.usage,
            cost_usd: t.cost_usd,
            final_text: t.last_text,
            duration_ms,
            task_slug: t.task_slug,
        }
    }

    /// Calls the tool. `None`: interrupted before it finished.
    async fn call_tool(
        &mut self,
        id: &str,
        name: &str,
        input: serde_json::Value,
    ) -> Result<Option<(String, bool)>, RunError> {
        let Some(tool) = self.cx.tools.get(name).cloned() else {
            let reason = format!("unknown tool '{name}'; available tools: {}", self.cx.tools.names().join(", "));
            self.emit(Event::ToolRefused { tool_name: name.into(), tool_use_id: id.into(), reason: reason.clone() });
            return Ok(Some((reason, true)));
        };
        let ctx = ToolContext {
            working_dir: std::path::PathBuf::from(&self.cx.agent.working_dir),
            agent_id: self.cx.agent.id,
            agent_name: self.cx.agent.name.clone(),
            tool_use_id: id.into(),
            interrupt: self.cx.interrupt.clone(),
            runtime: self.cx.runtime.clone(),
        };
        if tool.log_before_call() && self.rec.pending_events() > 0 {
            // Its effects are events of their own: the request must precede them in the log.
            self.commit().await?;
        }
        let result = {
            let mut fut = pin!(tool.call(&ctx, input));
            let mut early = None;
            if self.rec.pending_events() > 0 {
                // Commit what precedes the tool if it turns out to be slow.
                match select(fut.as_mut(), self.cx.runtime.sleep(FLUSH_BEFORE_SLOW_TOOL)).await {
                    Either::Left((r, _)) => early = Some(r),
                    Either::Right(_) => self.commit().await?,
                }
            }
            match early {
                Some(r) => Some(r),
                None => {
                    let interrupt = self.cx.interrupt.clone();
                    match select(fut.as_mut(), pin!(interrupt.triggered())).await {
                        Either::Left((r, _)) => Some(r),
                        Either::Right(_) => {
                            // Give the tool a moment to stop by itself (Bash kills its process group).
                            match select(fut.as_mut(), self.cx.runtime.sleep(INTERRUPT_GRACE)).await {
                                Either::Left((r, _)) => Some(r),
                                Either::Right(_) => None,
                            }
                        }
                    }
                }
            }
        };
        Ok(match result {
            None | Some(Err(ToolError::Interrupted)) => None,
            Some(Ok(out)) => Some((out.content, out.is_error)),
            Some(Err(ToolError::Refused(reason))) => {
                self.emit(Event::ToolRefused {
                    tool_name: name.into(),
                    tool_use_id: id.into(),
                    reason: reason.clone(),
                });
                Some((format!("Refused: {reason}"), true))
            }
            Some(Err(e)) => Some((e.to_string(), true)),
        })
    }
}

/// What a person's decision makes of a parked call.
fn resolved_verdict(tool: &str, decision: ApprovalDecision, text: Option<String>) -> Verdict {
    let text = text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty());
    match decision {
        ApprovalDecision::Approve => Verdict::Run,
        ApprovalDecision::Deny => Verdict::Denied(match text {
            Some(reason) => format!("Tool call denied by a person: {reason}"),
            None => "Tool call denied by a person (no reason given).".into(),
        }),
        ApprovalDecision::Answer => {
            let answer = text.unwrap_or_default();
            if tool == ASK_USER_QUESTION {
                Verdict::Result(answer, false)
            } else {
                Verdict::Result(format!("The tool was not run; a person answered instead: {answer}"), false)
            }
        }
    }
}
