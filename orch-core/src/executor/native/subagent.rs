//! Subagents: the built-in `Task` tool (Claude Code's name and input: `description`, `prompt`,
//! `subagent_type`). A `Task` call runs a new agent made from a `.claude/agents` template (its prompt,
//! model and tools; `general-purpose`: the parent's model and every tool) in the parent's working dir,
//! to completion, and returns its final text as the tool result.
//!
//! The subagent is a real agent in the store (role `subagent`, `parent_id` the caller), its events
//! carry the parent's run (task slug), its cost is added to the parent's, the parent's interrupt stops
//! it, and `SubagentStop` hooks run when it ends (a hook that denies the stop sends its reason back as
//! a new prompt, as `Stop` hooks do). Several `Task` calls of one model response run at once, bounded;
//! nesting is limited. Archived when done: the log keeps it, `agent list` does not.

use futures::StreamExt;
use serde_json::{Value, json};

use super::Run;
use crate::executor::{AgentRunner, PendingCall, RunError, RunOptions, RunOutcome, agent_keys};
use crate::hook::{HookDecision, HookEvent};
use crate::model::ToolSpec;
use crate::store::Change;
use crate::template::Templates;
use crate::wire::{Agent, AgentRole, EndReason, Event, PromptAuthor, TemplateRef, Usage, new_id};

/// The tool's name.
pub const TASK_TOOL: &str = "Task";
/// The template-less subagent type: the parent's model, a general prompt, every tool.
pub const GENERAL_PURPOSE: &str = "general-purpose";
/// How many times `SubagentStop` hooks may send a subagent back to work.
const MAX_STOP_CONTINUATIONS: u32 = 3;
/// The system prompt of a `general-purpose` subagent.
const GENERAL_PROMPT: &str = "You are an agent given one task by another agent. Do the task with the tools you \
have, then answer with a concise report of what you did and found: your answer is all the other agent sees.";

/// Limits of subagents.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubagentSettings {
    /// How deep subagents may nest: 0 turns `Task` off; 1 lets agents start subagents that cannot
    /// start their own (default 2).
    pub max_depth: u32,
    /// How many `Task` calls of one model response run at once (default 4).
    pub max_parallel: usize,
}

impl Default for SubagentSettings {
    fn default() -> Self {
        Self {
            max_depth: crate::config::DEFAULT_MAX_SUBAGENT_DEPTH,
            max_parallel: crate::config::DEFAULT_MAX_PARALLEL_SUBAGENTS as usize,
        }
    }
}

/// The `Task` tool's spec, listing the templates of `working_dir`.
pub(super) fn task_spec(working_dir: &str) -> ToolSpec {
    let templates = Templates::load(working_dir);
    let mut types = format!("- {GENERAL_PURPOSE}: a general agent with every tool, for open-ended tasks");
    for t in templates.agent_summaries() {
        types.push_str(&format!("\n- {}: {}", t.name, t.description));
    }
    ToolSpec {
        name: TASK_TOOL.into(),
        description: format!(
            "Launch a subagent to do a task on its own and report back. It starts with no knowledge of this \
             conversation: give it everything it needs in the prompt. Its final answer is the result. Launch \
             several in one response to run them at once.\n\nSubagent types:\n{types}"
        ),
        input_schema: json!({
            "type": "object",
            "properties": {
                "description": {"type": "string", "description": "A short (3-5 word) description of the task"},
                "prompt": {"type": "string", "description": "The task for the subagent to perform"},
                "subagent_type": {"type": "string", "description": "The type of subagent to use"}
            },
            "required": ["description", "prompt", "subagent_type"]
        }),
    }
}

/// A subagent created for one `Task` call, ready to run.
struct Job {
    /// The call's index in the step's pending calls.
    index: usize,
    tool_use_id: String,
    agent: Agent,
    prompt: String,
    options: RunOptions,
}

/// What became of one `Task` call.
enum Ended {
    /// Refused before a subagent was made (bad input, too deep, unknown type, a hook's denial).
    Refused(String),
    /// The subagent ran.
    Ran { job: Box<Job>, result: Box<Result<RunOutcome, RunError>> },
}

impl Run<'_> {
    /// Whether `Task` is offered to this run's model.
    pub(super) fn offers_task(&self) -> bool {
        self.cx.runner.is_some()
            && self.cx.options.subagent_depth < self.exec.subagents.max_depth
            && self.cx.tools.get(TASK_TOOL).is_none()
            && self.cx.options.allowed_tools.as_ref().is_none_or(|names| names.iter().any(|n| n == TASK_TOOL))
    }

    /// Whether pending call `i` is a `Task` call this run handles.
    pub(super) fn is_task(&mut self, i: usize) -> bool {
        self.offers_task() && self.turn().pending[i].name == TASK_TOOL
    }

    /// Runs the unresolved `Task` calls among `indices` (consecutive calls of one response), at most
    /// `max_parallel` at once, and records each result. Returns `false` if the run was interrupted.
    pub(super) async fn run_tasks(&mut self, indices: Vec<usize>) -> Result<bool, RunError> {
        let mut ended: Vec<(usize, Ended)> = Vec::new();
        let mut jobs = Vec::new();
        for i in indices {
            match self.prepare_task(i).await {
                Ok(job) => jobs.push(job),
                Err(reason) => ended.push((i, Ended::Refused(reason))),
            }
        }
        // The subagents and their start events are stored before any of them runs.
        self.commit().await?;
        let Some(runner) = self.cx.runner.clone() else {
            return Err(RunError::Config {
                agent: self.cx.agent.name.clone(),
                message: "Task needs a runner to run subagents".into(),
            });
        };
        let parallel = self.exec.subagents.max_parallel.max(1);
        let ran: Vec<(usize, Ended)> = futures::stream::iter(jobs)
            .map(|job| {
                let runner = runner.clone();
                async move {
                    let result = runner.run(job.agent.id, job.prompt.clone(), job.options.clone()).await;
                    (job.index, Ended::Ran { job: Box::new(job), result: Box::new(result) })
                }
            })
            .buffer_unordered(parallel)
            .collect()
            .await;
        ended.extend(ran);
        ended.sort_by_key(|(i, _)| *i);
        for (i, e) in ended {
            let (content, is_error) = match e {
                Ended::Refused(reason) => (reason, true),
                Ended::Ran { job, result } => self.finish_task(&runner, *job, *result).await,
            };
            let PendingCall { id, name, .. } = self.turn().pending[i].clone();
            self.emit(Event::PostToolUse {
                tool_name: name.clone(),
                result: Some(super::clip(&content, super::POST_TOOL_RESULT_CHARS)),
                is_error,
                tool_use_id: id.clone(),
            });
            self.emit(Event::ToolResult { tool_use_id: id, tool_name: name, content: content.clone(), is_error });
            self.turn().pending[i].result = Some((content, is_error));
            self.commit().await?;
        }
        Ok(!self.cx.interrupt.is_triggered())
    }

    /// Checks one `Task` call and creates its subagent (stored with the next commit); `Err`: the
    /// call's error result.
    async fn prepare_task(&mut self, i: usize) -> Result<Job, String> {
        let PendingCall { id, name, input, .. } = self.turn().pending[i].clone();
        self.emit(Event::PreToolUse { tool_name: name.clone(), tool_input: input.clone(), tool_use_id: id.clone() });
        let mut hin = self.hook_input(HookEvent::PreToolUse);
        hin.tool_name = Some(name);
        hin.tool_input = Some(input.clone());
        hin.tool_use_id = Some(id.clone());
        let mut input = input;
        for d in self.hooks(&mut hin).await {
            match d {
                HookDecision::Deny { reason } => {
                    return Err(format!("Tool call denied by a PreToolUse hook: {reason}"));
                }
                HookDecision::Ask { question } => {
                    return Err(format!(
                        "Tool call not run: a PreToolUse hook asks a person first ({question}), and Task calls cannot wait for one yet"
                    ));
                }
                HookDecision::RewriteInput { input: new } => input = new,
                HookDecision::Stop { reason } => self.turn().stop_requested = Some(reason),
                _ => {}
            }
        }
        let field = |key: &str| input.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty());
        let Some(prompt) = field("prompt") else {
            return Err("Task needs a non-empty 'prompt' (the task for the subagent)".into());
        };
        let kind = field("subagent_type").unwrap_or(GENERAL_PURPOSE).to_string();
        let description = field("description").unwrap_or_default().to_string();
        let prompt = prompt.to_string();
        let depth = self.cx.options.subagent_depth + 1;
        if depth > self.exec.subagents.max_depth {
            return Err(format!("subagents may not nest deeper than {} levels", self.exec.subagents.max_depth));
        }
        let parent = &self.cx.agent;
        let mut agent = Agent::new(
            format!("{kind}-{}", &new_id().simple().to_string()[24..]), // the random part of a v7 id
            parent.model.clone(),
            parent.working_dir.clone(),
        );
        agent.orchestrator_id = parent.orchestrator_id;
        agent.workflow_id = parent.workflow_id;
        agent.workflow_step = parent.workflow_step.clone();
        agent.role = AgentRole::Subagent;
        agent.parent_id = Some(parent.id);
        if kind == GENERAL_PURPOSE {
            agent.system_prompt = Some(GENERAL_PROMPT.into());
        } else {
            let templates = Templates::load(&parent.working_dir);
            let Some(t) = templates.agent(&kind) else {
                let mut names: Vec<String> = templates.agents().iter().map(|a| a.name.clone()).collect();
                names.insert(0, GENERAL_PURPOSE.into());
                return Err(format!("unknown subagent_type '{kind}'; available: {}", names.join(", ")));
            };
            agent.system_prompt = Some(t.system_prompt.clone());
            if let Some(m) = &t.model {
                agent.model = m.clone();
            }
            agent.template = Some(TemplateRef { name: t.name.clone(), color: t.color.clone() });
            agent.tools = t.tools.clone();
        }
        let keys = agent_keys(&agent, self.keys.task_slug.clone());
        self.rec.change(Change::CreateAgent(Box::new(agent.clone())));
        self.rec.emit(&keys, Event::AgentCreated { agent: Box::new(agent.clone()) });
        self.emit(Event::SubagentStart {
            subagent_id: agent.id.to_string(),
            subagent_type: kind,
            description,
            tool_use_id: id.clone(),
        });
        let options = RunOptions {
            max_turns: self.cx.options.max_turns,
            task_slug: self.keys.task_slug.clone(),
            interrupt: Some(self.cx.interrupt.clone()),
            allowed_tools: agent.tools.clone(),
            author: PromptAuthor::OrchestratorAgent,
            subagent_depth: depth,
            ..RunOptions::default()
        };
        Ok(Job { index: i, tool_use_id: id, agent, prompt, options })
    }

    /// After a subagent's run: `SubagentStop` hooks (which may send it back to work), its cost added to
    /// the parent's, `SubagentStop`, and the subagent archived. Returns the call's result.
    async fn finish_task(
        &mut self,
        runner: &AgentRunner,
        job: Job,
        mut result: Result<RunOutcome, RunError>,
    ) -> (String, bool) {
        let mut usage = Usage::default();
        let mut cost = 0.0;
        let mut continuations = 0;
        loop {
            if let Ok(out) = &result {
                usage.add(&out.usage);
                cost += out.cost_usd;
            }
            let mut hin = self.hook_input(HookEvent::SubagentStop);
            hin.subagent_id = Some(job.agent.id.to_string());
            hin.stop_reason = Some(match &result {
                Ok(out) => out.stop_reason.to_string(),
                Err(_) => "error".into(),
            });
            hin.last_message = result.as_ref().ok().and_then(|o| o.final_text.clone());
            let again = self.hooks(&mut hin).await.into_iter().find_map(|d| match d {
                HookDecision::Deny { reason } => Some(reason),
                _ => None,
            });
            let resumable = matches!(&result, Ok(out) if out.stop_reason == EndReason::EndTurn);
            match again {
                Some(reason)
                    if resumable && continuations < MAX_STOP_CONTINUATIONS && !self.cx.interrupt.is_triggered() =>
                {
                    continuations += 1;
                    self.commit().await.ok();
                    result = runner.run(job.agent.id, reason, job.options.clone()).await;
                }
                _ => break,
            }
        }
        let turn = self.turn();
        turn.usage.add(&usage);
        turn.cost_usd += cost;
        self.rec.add_usage(&usage, cost);
        let reason = match &result {
            Ok(out) => out.stop_reason.clone(),
            Err(_) => EndReason::Error,
        };
        self.emit(Event::SubagentStop {
            subagent_id: job.agent.id.to_string(),
            tool_use_id: Some(job.tool_use_id.clone()),
            reason: Some(reason),
            cost_usd: cost,
        });
        let sub_keys = agent_keys(&job.agent, self.keys.task_slug.clone());
        self.rec.change(Change::ArchiveAgent { id: job.agent.id });
        self.rec.emit(&sub_keys, Event::AgentDeleted {});
        match result {
            Ok(out) if out.stop_reason == EndReason::Interrupted => {
                ("Interrupted: the subagent was stopped.".into(), true)
            }
            Ok(out) => {
                let failed = out.stop_reason == EndReason::Error;
                let text = out.final_text.unwrap_or_else(|| "(the subagent gave no answer)".into());
                (text, failed)
            }
            Err(e) => (format!("The subagent failed: {e}"), true),
        }
    }
}
