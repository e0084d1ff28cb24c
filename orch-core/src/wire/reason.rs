//! Why a turn ended, and what a hook decided: closed sets of names that may grow, serialized as the plain
//! strings orch has always written, with a fallback that keeps a string this build does not know.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Why a turn ended: the `reason` of a `Stop` event, the `stop_reason` of a `Result` event and of
/// [`super::RunOutcome`].
///
/// Serialized as a string: `end_turn`, `max_turns`, `interrupted`, `hook: <reason>`, …. A string this
/// build does not know (a newer orch's, or a provider's own) is kept as [`EndReason::Other`] and written
/// back unchanged. Compares equal to its string: `reason == "end_turn"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum EndReason {
    /// The model finished its answer (`end_turn`).
    EndTurn,
    /// The turn reached its limit of model calls (`max_turns`).
    MaxTurns,
    /// The model reached its output token limit (`max_tokens`).
    MaxTokens,
    /// The model produced a stop sequence (`stop_sequence`).
    StopSequence,
    /// The provider refused to answer (`refusal`).
    Refusal,
    /// The model stopped to call tools but asked for none (`tool_use`).
    ToolUse,
    /// Someone interrupted the turn (`interrupted`).
    Interrupted,
    /// The turn failed (`error`); the agent is left `blocked`.
    Error,
    /// The run's budget was spent (`max_budget`, Claude Code).
    MaxBudget,
    /// The run compacted the conversation (`/compact`) instead of calling the model (`compacted`).
    Compacted,
    /// The turn waits for a person to approve, deny or answer a tool call (`waiting`); it continues once
    /// one has.
    Waiting,
    /// A hook stopped the turn (`hook: <reason>`).
    Hook(String),
    /// A `UserPromptSubmit` hook denied the prompt (`denied: <reason>`).
    Denied(String),
    /// A reason this build does not know, as written.
    Other(String),
}

impl EndReason {
    const NAMED: [(&'static str, EndReason); 11] = [
        ("end_turn", Self::EndTurn),
        ("max_turns", Self::MaxTurns),
        ("max_tokens", Self::MaxTokens),
        ("stop_sequence", Self::StopSequence),
        ("refusal", Self::Refusal),
        ("tool_use", Self::ToolUse),
        ("interrupted", Self::Interrupted),
        ("error", Self::Error),
        ("max_budget", Self::MaxBudget),
        ("compacted", Self::Compacted),
        ("waiting", Self::Waiting),
    ];

    /// Reads a reason as written (never fails: an unknown one is [`EndReason::Other`]).
    pub fn parse(s: &str) -> Self {
        if let Some((_, r)) = Self::NAMED.iter().find(|(name, _)| *name == s) {
            return r.clone();
        }
        if let Some(reason) = s.strip_prefix("hook: ") {
            return Self::Hook(reason.to_string());
        }
        if let Some(reason) = s.strip_prefix("denied: ") {
            return Self::Denied(reason.to_string());
        }
        Self::Other(s.to_string())
    }

    /// Whether this is the reason written as `s`.
    fn eq_str(&self, s: &str) -> bool {
        match self {
            Self::Hook(reason) => s.strip_prefix("hook: ") == Some(reason.as_str()),
            Self::Denied(reason) => s.strip_prefix("denied: ") == Some(reason.as_str()),
            Self::Other(o) => o == s,
            named => named.name() == Some(s),
        }
    }

    /// The name of a reason without text (`end_turn`, …); `None` for `Hook`, `Denied` and `Other`.
    pub fn name(&self) -> Option<&'static str> {
        Self::NAMED.iter().find(|(_, r)| r == self).map(|(name, _)| *name)
    }
}

impl fmt::Display for EndReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Hook(reason) => write!(f, "hook: {reason}"),
            Self::Denied(reason) => write!(f, "denied: {reason}"),
            Self::Other(s) => f.write_str(s),
            named => f.write_str(named.name().unwrap_or_default()),
        }
    }
}

/// What a hook decided, as the `decision` of a `HookInvoked` event: `continue`, `deny`, `rewrite_input`,
/// `add_context`, `replace_output`, `stop`, `ask`, or `error` (the hook failed and was treated as `continue`).
///
/// Serialized as that string; one this build does not know is kept as [`HookVerdict::Other`]. Compares
/// equal to its string: `decision == "deny"`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum HookVerdict {
    /// Go on unchanged.
    Continue,
    /// The tool call or prompt was denied.
    Deny,
    /// The tool input was rewritten.
    RewriteInput,
    /// Text was added for the model.
    AddContext,
    /// The tool output was replaced.
    ReplaceOutput,
    /// The turn is to stop.
    Stop,
    /// A person is to approve the tool call first.
    Ask,
    /// The hook failed (and was treated as `continue`).
    Error,
    /// A decision this build does not know, as written.
    Other(String),
}

impl HookVerdict {
    const NAMED: [(&'static str, HookVerdict); 8] = [
        ("continue", Self::Continue),
        ("deny", Self::Deny),
        ("rewrite_input", Self::RewriteInput),
        ("add_context", Self::AddContext),
        ("replace_output", Self::ReplaceOutput),
        ("stop", Self::Stop),
        ("ask", Self::Ask),
        ("error", Self::Error),
    ];

    /// Reads a decision as written (never fails: an unknown one is [`HookVerdict::Other`]).
    pub fn parse(s: &str) -> Self {
        match Self::NAMED.iter().find(|(name, _)| *name == s) {
            Some((_, v)) => v.clone(),
            None => Self::Other(s.to_string()),
        }
    }

    fn eq_str(&self, s: &str) -> bool {
        self.as_str() == s
    }

    /// The decision as written.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Other(s) => s,
            known => Self::NAMED.iter().find(|(_, v)| v == known).map(|(name, _)| *name).unwrap_or_default(),
        }
    }
}

impl fmt::Display for HookVerdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// String conversions, comparisons and serde shared by both types.
macro_rules! string_enum {
    ($t:ty) => {
        impl From<&str> for $t {
            fn from(s: &str) -> Self {
                Self::parse(s)
            }
        }

        impl From<String> for $t {
            fn from(s: String) -> Self {
                Self::parse(&s)
            }
        }

        impl PartialEq<str> for $t {
            fn eq(&self, other: &str) -> bool {
                self.eq_str(other)
            }
        }

        impl PartialEq<&str> for $t {
            fn eq(&self, other: &&str) -> bool {
                self.eq_str(other)
            }
        }

        impl Serialize for $t {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.collect_str(self)
            }
        }

        impl<'de> Deserialize<'de> for $t {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = std::borrow::Cow::<'de, str>::deserialize(d)?;
                Ok(Self::parse(&s))
            }
        }
    };
}

string_enum!(EndReason);
string_enum!(HookVerdict);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_string_reads_back_as_written() {
        for s in ["end_turn", "max_turns", "interrupted", "hook: stop now", "denied: no", "hook:x", "", "future"] {
            let r = EndReason::parse(s);
            assert_eq!(r.to_string(), s);
            assert_eq!(serde_json::to_value(&r).unwrap(), serde_json::Value::from(s));
            assert_eq!(serde_json::from_value::<EndReason>(serde_json::Value::from(s)).unwrap(), r);
        }
        assert_eq!(EndReason::parse("hook: x"), EndReason::Hook("x".into()));
        assert_eq!(EndReason::parse("future"), EndReason::Other("future".into()));
        assert!(EndReason::Hook("x".into()) == "hook: x" && EndReason::MaxTurns == "max_turns");
        assert!(EndReason::Hook("x".into()) != "hook: y" && EndReason::EndTurn != "end_turn ");
        for s in ["continue", "deny", "rewrite_input", "add_context", "replace_output", "stop", "error", "ask"] {
            let v = HookVerdict::parse(s);
            assert_eq!(v.as_str(), s);
            assert_eq!(serde_json::from_value::<HookVerdict>(serde_json::to_value(&v).unwrap()).unwrap(), v);
        }
        assert_eq!(HookVerdict::parse("ask"), HookVerdict::Ask);
        assert_eq!(HookVerdict::parse("escalate"), HookVerdict::Other("escalate".into()));
        assert_eq!(EndReason::parse("waiting"), EndReason::Waiting);
    }
}

/// What started a compaction (Claude Code's `trigger`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum CompactTrigger {
    /// The conversation passed its threshold before a model call.
    Auto,
    /// Someone asked (`/compact`, `orch agent compact`).
    Manual,
    /// A trigger this build does not know.
    #[serde(other)]
    Other,
}

impl CompactTrigger {
    /// As written (`auto`, `manual`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Auto => "auto",
            Self::Manual => "manual",
            Self::Other => "other",
        }
    }
}

impl std::fmt::Display for CompactTrigger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How a workflow step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum StepStatus {
    /// It ran and succeeded.
    Success,
    /// It ran and failed (or its outputs could not be found).
    Failed,
    /// Its condition was false; it did not run.
    Skipped,
    /// A status this build does not know.
    #[serde(other)]
    Other,
}

impl StepStatus {
    /// As written (`success`, `failed`, `skipped`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failed => "failed",
            Self::Skipped => "skipped",
            Self::Other => "other",
        }
    }
}
