//! Replaying: [`ReplayProvider`] answers calls from a cassette, per agent and in order.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};

use async_trait::async_trait;
use futures::StreamExt;
use serde_json::Value;

use super::CassetteError;
use super::diff::{Diff, compact, diff_tools, option_text};
use super::format::{Interaction, read_cassette};
use crate::model::{DeltaStream, ModelError, ModelProvider, ModelRequest};

/// The provider name of a replay of an empty cassette.
const EMPTY_CASSETTE_PROVIDER: &str = "replay";

/// A request field compared when replaying.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MatchField {
    /// `model`.
    Model,
    /// `system`.
    System,
    /// `messages`.
    Messages,
    /// `tools`.
    Tools,
    /// `max_tokens`.
    MaxTokens,
    /// `thinking`.
    Thinking,
}

impl MatchField {
    /// Every compared field, in comparison order.
    pub const ALL: [MatchField; 6] =
        [Self::Model, Self::System, Self::Messages, Self::Tools, Self::MaxTokens, Self::Thinking];
    /// Their names, as accepted by [`ReplayProvider::ignoring`].
    pub const NAMES: [&'static str; 6] = ["model", "system", "messages", "tools", "max_tokens", "thinking"];

    /// The field's name in the request (`max_tokens`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Model => "model",
            Self::System => "system",
            Self::Messages => "messages",
            Self::Tools => "tools",
            Self::MaxTokens => "max_tokens",
            Self::Thinking => "thinking",
        }
    }

    fn bit(self) -> u8 {
        1 << (self as u8)
    }
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MatchField {
    type Err = CassetteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|f| f.as_str() == s)
            .ok_or_else(|| CassetteError::UnknownField { field: s.to_owned() })
    }
}

/// One interaction as loaded.
struct Recorded {
    line: usize,
    interaction: Interaction,
}

/// Answers model calls from a cassette, per agent and in order; see the [module documentation](super).
pub struct ReplayProvider {
    path: PathBuf,
    provider: String,
    agents: HashMap<String, Vec<Arc<Recorded>>>,
    total: usize,
    /// Interactions used so far, per agent.
    cursors: Mutex<HashMap<String, usize>>,
    /// [`MatchField::bit`]s of the fields left out of the comparison.
    ignored: u8,
}

impl fmt::Debug for ReplayProvider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let ignored: Vec<_> = MatchField::ALL.into_iter().filter(|m| self.ignored & m.bit() != 0).collect();
        f.debug_struct("ReplayProvider")
            .field("path", &self.path)
            .field("provider", &self.provider)
            .field("interactions", &self.total)
            .field("remaining", &self.remaining())
            .field("ignored", &ignored)
            .finish()
    }
}

impl ReplayProvider {
    /// Loads a cassette. Every line is checked now: a bad one is a [`CassetteError`] naming the file
    /// and the line.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, CassetteError> {
        let path = path.as_ref();
        let lines = read_cassette(path)?;
        let provider = lines
            .first()
            .map(|(_, i)| i.provider.clone())
            .filter(|p| !p.is_empty())
            .unwrap_or_else(|| EMPTY_CASSETTE_PROVIDER.to_owned());
        if let Some((line, other)) = lines.iter().find(|(_, i)| i.provider != provider && !i.provider.is_empty()) {
            tracing::warn!(
                cassette = %path.display(),
                line,
                provider = %provider,
                other = %other.provider,
                "the cassette mixes providers; the replay is named after the first line's"
            );
        }
        let total = lines.len();
        let mut agents: HashMap<String, Vec<Arc<Recorded>>> = HashMap::new();
        for (line, interaction) in lines {
            agents
                .entry(interaction.request.agent_name.clone())
                .or_default()
                .push(Arc::new(Recorded { line, interaction }));
        }
        Ok(Self { path: path.to_path_buf(), provider, agents, total, cursors: Mutex::new(HashMap::new()), ignored: 0 })
    }

    /// Leaves the named request fields out of the comparison (names as in [`MatchField::NAMES`]:
    /// `model`, `system`, `messages`, `tools`, `max_tokens`, `thinking`). An unknown name is
    /// [`CassetteError::UnknownField`].
    pub fn ignoring(mut self, fields: &[&str]) -> Result<Self, CassetteError> {
        for name in fields {
            self = self.ignore(name.parse()?);
        }
        Ok(self)
    }

    /// Leaves one request field out of the comparison.
    pub fn ignore(mut self, field: MatchField) -> Self {
        self.ignored |= field.bit();
        self
    }

    /// The cassette file.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Interactions in the cassette.
    pub fn len(&self) -> usize {
        self.total
    }

    /// Whether the cassette holds no interaction.
    pub fn is_empty(&self) -> bool {
        self.total == 0
    }

    /// Names of the agents with recorded interactions, sorted.
    pub fn agents(&self) -> Vec<&str> {
        let mut names: Vec<&str> = self.agents.keys().map(String::as_str).collect();
        names.sort_unstable();
        names
    }

    /// Interactions not replayed yet (over all agents). Zero after a replay that used the whole
    /// cassette.
    pub fn remaining(&self) -> usize {
        let cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        self.total - cursors.values().sum::<usize>()
    }

    fn is_compared(&self, field: MatchField) -> bool {
        self.ignored & field.bit() == 0
    }

    /// The interaction answering `request`, which it uses up; or why there is none.
    fn next_for(&self, request: &ModelRequest) -> Result<Arc<Recorded>, ModelError> {
        let agent = &request.agent_name;
        let mut cursors = self.cursors.lock().unwrap_or_else(PoisonError::into_inner);
        let used = cursors.get(agent).copied().unwrap_or(0);
        let recorded = self.agents.get(agent).map_or(&[][..], Vec::as_slice);
        let Some(entry) = recorded.get(used) else {
            let message = if recorded.is_empty() {
                format!(
                    "replay: cassette {} holds no interaction of agent '{agent}' (agents recorded: {})",
                    self.path.display(),
                    if self.agents.is_empty() { "none".to_owned() } else { self.agents().join(", ") }
                )
            } else {
                format!(
                    "replay: agent '{agent}' made call #{}, but cassette {} recorded only {} call{} of it; \
                     the run makes more model calls than the recording",
                    used + 1,
                    self.path.display(),
                    recorded.len(),
                    if recorded.len() == 1 { "" } else { "s" }
                )
            };
            return Err(ModelError::NoAnswer { message });
        };
        let differences = self.compare(&entry.interaction.request, request);
        if !differences.is_empty() {
            let mut message = format!(
                "replay: call #{} of agent '{agent}' does not match the recording (cassette {}, line {}; \
                 its interaction {} of {}):",
                used + 1,
                self.path.display(),
                entry.line,
                used + 1,
                recorded.len()
            );
            for d in &differences {
                message.push('\n');
                message.push_str(d);
            }
            message.push_str(
                "\nThe code, prompts or tools changed since recording: record the cassette again, or leave fields \
                 out of the comparison (ReplayProvider::ignoring).",
            );
            return Err(ModelError::NoAnswer { message });
        }
        cursors.insert(agent.clone(), used + 1);
        Ok(entry.clone())
    }

    /// The rendered differences between the recorded and the actual request (empty when they match).
    fn compare(&self, recorded: &ModelRequest, actual: &ModelRequest) -> Vec<String> {
        let mut diff = Diff::default();
        for field in MatchField::ALL {
            if !self.is_compared(field) {
                continue;
            }
            match field {
                MatchField::Model => {
                    if recorded.model != actual.model {
                        diff.strings("model", &recorded.model, &actual.model);
                    }
                }
                MatchField::System => match (&recorded.system, &actual.system) {
                    (Some(r), Some(a)) if r != a => diff.strings("system", r, a),
                    (Some(_), Some(_)) | (None, None) => {}
                    (r, a) => diff.push("system", None, option_text(r.as_deref()), option_text(a.as_deref())),
                },
                MatchField::Messages => {
                    if recorded.messages != actual.messages {
                        let r = serde_json::to_value(&*recorded.messages).unwrap_or(Value::Null);
                        let a = serde_json::to_value(&*actual.messages).unwrap_or(Value::Null);
                        diff.values("messages", &r, &a);
                    }
                }
                MatchField::Tools => {
                    if recorded.tools != actual.tools {
                        diff_tools(&mut diff, &recorded.tools, &actual.tools);
                    }
                }
                MatchField::MaxTokens => {
                    if recorded.max_tokens != actual.max_tokens {
                        diff.push("max_tokens", None, recorded.max_tokens.to_string(), actual.max_tokens.to_string());
                    }
                }
                MatchField::Thinking => {
                    if recorded.thinking != actual.thinking {
                        let r = serde_json::to_value(recorded.thinking).unwrap_or(Value::Null);
                        let a = serde_json::to_value(actual.thinking).unwrap_or(Value::Null);
                        diff.push("thinking", None, compact(&r), compact(&a));
                    }
                }
            }
        }
        diff.finish()
    }
}

#[async_trait]
impl ModelProvider for ReplayProvider {
    /// The provider recorded in the cassette's first line (`replay` for an empty cassette).
    fn name(&self) -> &str {
        &self.provider
    }

    async fn stream(&self, request: ModelRequest) -> Result<DeltaStream, ModelError> {
        let entry = self.next_for(&request)?;
        let response = &entry.interaction.response;
        let error = response.error.as_ref().map(ModelError::from);
        match &response.deltas {
            None => Err(error.unwrap_or_else(|| ModelError::Other {
                message: format!("replay: cassette {}, line {}: empty response", self.path.display(), entry.line),
            })),
            Some(deltas) => {
                let items = deltas.clone().into_iter().map(Ok).chain(error.map(Err));
                Ok(futures::stream::iter(items).boxed())
            }
        }
    }
}
