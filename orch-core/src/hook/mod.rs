//! Hooks: code that runs at `PreToolUse`, `PostToolUse`, `UserPromptSubmit`, `Stop`, `SubagentStop` and
//! `PreCompact`, optionally only for tools whose name matches a regex, and decides what happens next.

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

use async_trait::async_trait;
use regex::Regex;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::ErrorKind;
use crate::wire::Id;

/// Claude Code settings hooks (`.claude/settings.json`) run as shell commands.
#[cfg(feature = "tokio")]
pub mod command;
/// Claude Code permission rules (`permissions.deny` / `permissions.ask` of `.claude/settings.json`).
#[cfg(feature = "tokio")]
pub mod permissions;

/// The points where hooks run (Claude Code's names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum HookEvent {
    /// Before a tool runs. May deny, rewrite the input, add context or stop.
    PreToolUse,
    /// After a tool ran. May replace the output, add context or stop.
    PostToolUse,
    /// When a prompt is submitted. May deny, add context or stop.
    UserPromptSubmit,
    /// When a turn ends.
    Stop,
    /// When a subagent ends.
    SubagentStop,
    /// Before the context is compacted.
    PreCompact,
}

impl HookEvent {
    /// Every event, in the order Claude Code's documentation lists them.
    pub const ALL: [HookEvent; 6] =
        [Self::PreToolUse, Self::PostToolUse, Self::UserPromptSubmit, Self::Stop, Self::SubagentStop, Self::PreCompact];

    /// The name (`PreToolUse`, …), as written in `.claude/settings.json` and in a hook's
    /// `hook_event_name`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::PreToolUse => "PreToolUse",
            Self::PostToolUse => "PostToolUse",
            Self::UserPromptSubmit => "UserPromptSubmit",
            Self::Stop => "Stop",
            Self::SubagentStop => "SubagentStop",
            Self::PreCompact => "PreCompact",
        }
    }
}

impl fmt::Display for HookEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Parses the names used in `.claude/settings.json` and in Claude Code's hook input (`PreToolUse`, …;
/// exact case).
impl FromStr for HookEvent {
    type Err = UnknownHookEvent;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|e| e.as_str() == s).ok_or_else(|| UnknownHookEvent { name: s.to_owned() })
    }
}

/// A hook event name that is not one of [`HookEvent::ALL`] (Claude Code events orch does not run, such
/// as `Notification`, are named here too).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("hook event \"{name}\" is not supported (the events: {})", HookEvent::ALL.map(HookEvent::as_str).join(", "))]
pub struct UnknownHookEvent {
    /// The name given.
    pub name: String,
}

/// What a hook is told.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookInput {
    /// Which point.
    pub event: HookEvent,
    /// The agent.
    pub agent_id: Id,
    /// The agent's name.
    pub agent_name: String,
    /// Its working directory.
    pub working_dir: String,
    /// The tool (tool events).
    pub tool_name: Option<String>,
    /// The tool input (tool events).
    pub tool_input: Option<Value>,
    /// The tool call id (tool events).
    pub tool_use_id: Option<String>,
    /// The tool's output text (PostToolUse).
    pub tool_output: Option<String>,
    /// Whether the tool failed (PostToolUse).
    pub tool_is_error: Option<bool>,
    /// The prompt (UserPromptSubmit).
    pub prompt: Option<String>,
    /// Why the turn stopped (Stop, SubagentStop).
    pub stop_reason: Option<String>,
    /// What started a compaction, `auto` or `manual` (PreCompact).
    pub trigger: Option<String>,
    /// Instructions given for the summary (PreCompact).
    pub custom_instructions: Option<String>,
    /// The subagent that ended (SubagentStop): its id, and its final text.
    pub subagent_id: Option<String>,
    /// The subagent's final text (SubagentStop).
    pub last_message: Option<String>,
}

impl HookInput {
    /// An input for `event` about `agent`, with no tool, prompt or stop reason set yet.
    pub fn for_agent(event: HookEvent, agent: &crate::wire::Agent) -> Self {
        Self {
            event,
            agent_id: agent.id,
            agent_name: agent.name.clone(),
            working_dir: agent.working_dir.clone(),
            tool_name: None,
            tool_input: None,
            tool_use_id: None,
            tool_output: None,
            tool_is_error: None,
            prompt: None,
            stop_reason: None,
            trigger: None,
            custom_instructions: None,
            subagent_id: None,
            last_message: None,
        }
    }
}

/// What running the hooks of one point gave: their decisions, and one `HookInvoked` event per invocation
/// for the caller to record.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HookRun {
    /// Decisions in order (a failed hook counts as `Continue` and has none).
    pub decisions: Vec<HookDecision>,
    /// The `HookInvoked` events.
    pub events: Vec<crate::wire::Event>,
}

/// A hook's decision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, Default)]
#[serde(tag = "decision", rename_all = "snake_case")]
pub enum HookDecision {
    /// Go on unchanged.
    #[default]
    Continue,
    /// Do not run the tool (PreToolUse) or the prompt (UserPromptSubmit); the model gets the reason as a tool error.
    Deny {
        /// Why.
        reason: String,
    },
    /// Run the tool with this input instead (PreToolUse).
    RewriteInput {
        /// New input.
        input: Value,
    },
    /// Add text for the model: appended to the prompt or to the tool result.
    AddContext {
        /// The text.
        context: String,
    },
    /// Give the model this output instead of the tool's (PostToolUse).
    ReplaceOutput {
        /// Output text.
        output: String,
        /// Whether it is an error.
        #[serde(default)]
        is_error: bool,
    },
    /// End the turn after this point.
    Stop {
        /// Why.
        reason: String,
    },
    /// Ask a person before the tool runs (PreToolUse): the run parks, durably, with the question and the
    /// tool call recorded, until a person approves (the tool runs), denies (the model gets the reason
    /// as the tool's error) or answers (the model gets the answer). A `Deny` of another hook wins.
    /// Elsewhere than PreToolUse it counts as `Continue`.
    Ask {
        /// What the person is asked.
        question: String,
    },
}

impl HookDecision {
    /// Short name (`continue`, `deny`, …) for events.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Continue => "continue",
            Self::Deny { .. } => "deny",
            Self::RewriteInput { .. } => "rewrite_input",
            Self::AddContext { .. } => "add_context",
            Self::ReplaceOutput { .. } => "replace_output",
            Self::Stop { .. } => "stop",
            Self::Ask { .. } => "ask",
        }
    }

    /// The reason, context or output carried, if any.
    pub fn detail(&self) -> Option<String> {
        match self {
            Self::Continue => None,
            Self::Deny { reason } | Self::Stop { reason } => Some(reason.clone()),
            Self::Ask { question } => Some(question.clone()),
            Self::RewriteInput { input } => Some(input.to_string()),
            Self::AddContext { context } => Some(context.clone()),
            Self::ReplaceOutput { output, .. } => Some(output.clone()),
        }
    }
}

/// A hook failed to decide. The failure is recorded as an event and the hook is treated as `Continue`.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
#[error("hook failed: {0}")]
pub struct HookError(pub String);

/// Code run at a hook point.
#[async_trait]
pub trait Hook: Send + Sync + 'static {
    /// Name, for events.
    fn name(&self) -> &str;
    /// Decides.
    async fn call(&self, input: &HookInput) -> Result<HookDecision, HookError>;
    /// Whether this hook comes from a project's `.claude/settings*.json`. The Claude Code CLI runs
    /// those itself, so the Claude Code executor leaves them out rather than running them twice.
    fn is_claude_settings_hook(&self) -> bool {
        false
    }
}

/// A hook from a closure: `FnHook::new("no-rm", |input| HookDecision::Continue)`.
pub struct FnHook<F> {
    name: String,
    f: F,
}

impl<F> FnHook<F>
where
    F: Fn(&HookInput) -> HookDecision + Send + Sync + 'static,
{
    /// Wraps a closure.
    pub fn new(name: impl Into<String>, f: F) -> Self {
        Self { name: name.into(), f }
    }
}

#[async_trait]
impl<F> Hook for FnHook<F>
where
    F: Fn(&HookInput) -> HookDecision + Send + Sync + 'static,
{
    fn name(&self) -> &str {
        &self.name
    }

    async fn call(&self, input: &HookInput) -> Result<HookDecision, HookError> {
        Ok((self.f)(input))
    }
}

/// A bad matcher regex.
#[derive(Debug, thiserror::Error)]
#[error("invalid hook matcher '{matcher}': {message}")]
pub struct MatcherError {
    /// The matcher.
    pub matcher: String,
    /// What was wrong.
    pub message: String,
}

impl MatcherError {
    /// Always [`ErrorKind::Usage`]: the matcher is the user's regex to fix.
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::Usage
    }
}

#[derive(Clone)]
struct Entry {
    event: HookEvent,
    matcher: Option<Regex>,
    hook: Arc<dyn Hook>,
}

/// Hooks by event, in registration order.
#[derive(Clone, Default)]
pub struct HookRegistry {
    entries: Vec<Entry>,
}

impl std::fmt::Debug for HookRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.entries.iter().map(|e| (e.event, e.hook.name().to_string()))).finish()
    }
}

impl HookRegistry {
    /// No hooks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a hook for an event. `matcher` is a regex on the tool name (tool events), anchored:
    /// `Bash` matches only `Bash`, `Write|Edit` either, `.*` or `None` every tool.
    pub fn register(
        &mut self,
        event: HookEvent,
        matcher: Option<&str>,
        hook: impl Hook,
    ) -> Result<&mut Self, MatcherError> {
        self.register_arc(event, matcher, Arc::new(hook))
    }

    /// Registers a shared hook.
    pub fn register_arc(
        &mut self,
        event: HookEvent,
        matcher: Option<&str>,
        hook: Arc<dyn Hook>,
    ) -> Result<&mut Self, MatcherError> {
        let matcher = match matcher {
            None | Some("") | Some("*") => None,
            Some(m) => Some(
                Regex::new(&format!("^(?:{m})$"))
                    .map_err(|e| MatcherError { matcher: m.to_string(), message: e.to_string() })?,
            ),
        };
        self.entries.push(Entry { event, matcher, hook });
        Ok(self)
    }

    /// The hooks that apply to `event` (and `tool_name`, for tool events), in order.
    pub fn matching(&self, event: HookEvent, tool_name: Option<&str>) -> impl Iterator<Item = &Arc<dyn Hook>> {
        self.entries
            .iter()
            .filter(move |e| {
                e.event == event
                    && match (&e.matcher, tool_name) {
                        (None, _) => true,
                        (Some(re), Some(t)) => re.is_match(t),
                        (Some(_), None) => false,
                    }
            })
            .map(|e| &e.hook)
    }

    /// Runs the hooks matching `input` in order. A hook that fails is recorded and treated as `Continue`;
    /// later hooks see an input rewritten by earlier ones; the first `Deny` ends the run.
    pub async fn run(&self, input: &mut HookInput) -> HookRun {
        let mut out = HookRun::default();
        let hooks: Vec<_> = self.matching(input.event, input.tool_name.as_deref()).cloned().collect();
        for hook in hooks {
            let result = hook.call(input).await;
            let (decision, detail) = match &result {
                Ok(d) => (d.name(), d.detail()),
                Err(e) => ("error", Some(e.0.clone())),
            };
            out.events.push(crate::wire::Event::HookInvoked {
                hook_event: input.event.as_str().into(),
                hook_name: hook.name().into(),
                tool_name: input.tool_name.clone(),
                decision: decision.into(),
                detail,
            });
            let Ok(decision) = result else { continue };
            if let HookDecision::RewriteInput { input: new } = &decision {
                input.tool_input = Some(new.clone());
            }
            let deny = matches!(decision, HookDecision::Deny { .. });
            out.decisions.push(decision);
            if deny {
                break;
            }
        }
        out
    }

    /// The same hooks without those loaded from `.claude/settings*.json` (see
    /// [`Hook::is_claude_settings_hook`]): what an executor that reads those files itself should run.
    pub fn without_settings_hooks(&self) -> Self {
        Self { entries: self.entries.iter().filter(|e| !e.hook.is_claude_settings_hook()).cloned().collect() }
    }

    /// Adds every hook of `other` after these, in its order.
    pub fn extend(&mut self, other: &HookRegistry) -> &mut Self {
        self.entries.extend(other.entries.iter().cloned());
        self
    }

    /// Whether no hooks are registered.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn event_names_parse_to_their_events_and_back() {
        for event in HookEvent::ALL {
            assert_eq!(event.as_str().parse::<HookEvent>(), Ok(event));
            assert_eq!(event.to_string(), event.as_str());
        }
    }

    #[test]
    fn an_unknown_event_name_is_an_error_listing_the_valid_names() {
        let e = "preToolUse".parse::<HookEvent>().unwrap_err();
        assert_eq!(e.name, "preToolUse");
        assert_eq!(
            e.to_string(),
            "hook event \"preToolUse\" is not supported (the events: PreToolUse, PostToolUse, UserPromptSubmit, \
             Stop, SubagentStop, PreCompact)"
        );
        assert!("Notification".parse::<HookEvent>().is_err());
    }
}
