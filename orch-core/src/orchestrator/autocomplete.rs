//! Suggestions for the orchestrator's command input, from a fast model that knows the live agents, the
//! slash commands, the agent templates, the codebase's files and what people accepted or ignored before.
//!
//! As the seed's autocomplete expert does, it keeps what it learns in an expertise file
//! (`<working dir>/.orch/autocomplete/expertise.yaml`): the orchestrator it belongs to and the history of
//! completions, each either accepted (`autocomplete`: the input before, the item, its reasoning) or
//! ignored (`none`: what the person sent instead). The file is written as JSON, which YAML readers read
//! too; a file that does not parse, or that belongs to another orchestrator, starts over (as the seed's).
//! The history is bounded ([`MAX_HISTORY`]), newest kept.
//!
//! A new query interrupts the one still running (its caller gets no suggestions), so a person typing
//! fast never waits for answers to what they typed before. A failed call, or a reply that is not the
//! asked-for JSON, gives no suggestions: autocomplete never stands in the way of sending a command.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::interrupt::Interrupt;
use crate::model::{ModelError, ModelProvider, ModelRequest, ResponseAssembler};
use crate::wire::Message;

/// Agent name of autocomplete calls (scripted models can match on it).
pub const AUTOCOMPLETE_AGENT: &str = "autocomplete";
/// The most completions kept in the expertise file.
pub const MAX_HISTORY: usize = 200;
/// The most suggestions given for one input.
pub const MAX_SUGGESTIONS: usize = 3;
/// The most files of the codebase the prompt lists.
const MAX_FILES: usize = 300;
/// How long the list of the codebase's files is reused.
const FILES_TTL: Duration = Duration::from_secs(60);
/// The longest input sent to the model (characters).
const MAX_INPUT_CHARS: usize = 2_000;

const SYSTEM_PROMPT: &str = "You complete what a person is typing into the command input of an agent \
orchestrator. Suggest how the input could go on: short continuations (2 to 6 words in all) that name real \
agents, slash commands, agent templates and files from the lists below, in the style of the person's \
earlier accepted completions, and unlike the ones they ignored.

Live agents: {{AVAILABLE_ACTIVE_AGENTS}}
Slash commands: {{AVAILABLE_SLASH_COMMANDS}}
Agent templates: {{AVAILABLE_AGENT_TEMPLATES}}

Files of the codebase:
{{CODEBASE_STRUCTURE}}

Earlier completions (accepted ones are `autocomplete`, ignored ones `none`):
{{PREVIOUS_AUTOCOMPLETE_ITEMS}}

Reply with JSON only, of this shape, with at most 3 items:
{\"autocompletes\": [{\"completion\": \"text appended to the input\", \"reasoning\": \"why, in a few words\"}]}";

/// One suggestion: the text to append to the input, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Suggestion {
    /// Appended to the input when accepted.
    pub completion: String,
    /// Why the model suggests it.
    #[serde(default)]
    pub reasoning: String,
}

/// What a person did with the suggestions (the seed's `autocomplete-update`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "completion_type", rename_all = "snake_case")]
pub enum Feedback {
    /// They sent their own input instead.
    None {
        /// What they sent.
        user_input_on_enter: String,
    },
    /// They accepted a suggestion.
    Autocomplete {
        /// The input before the suggestion.
        user_input_before_completion: String,
        /// The accepted completion.
        autocomplete_item: String,
        /// Its reasoning.
        reasoning: String,
    },
}

/// One remembered completion.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Remembered {
    /// Its place in the history (1, 2, …).
    pub order: u64,
    /// What happened.
    #[serde(flatten)]
    pub feedback: Feedback,
}

/// The expertise file's content.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Expertise {
    /// The orchestrator the history belongs to.
    pub orchestrator_agent_id: Option<String>,
    /// The history, oldest first.
    #[serde(default)]
    pub previous_completions: Vec<Remembered>,
}

/// What the model is told about the moment: names it may complete with.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Context {
    /// Live agents' names.
    pub agents: Vec<String>,
    /// Slash commands (`/name`).
    pub commands: Vec<String>,
    /// Agent template names.
    pub templates: Vec<String>,
}

/// Why feedback could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum AutocompleteError {
    /// The feedback is not usable (an empty field).
    #[error("{0}")]
    Usage(String),
    /// The expertise file could not be written.
    #[error("cannot write the autocomplete expertise file {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// What went wrong.
        message: String,
    },
}

impl AutocompleteError {
    /// What kind of failure this is.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::Usage(_) => crate::ErrorKind::Usage,
            Self::Io { .. } => crate::ErrorKind::Internal,
        }
    }
}

/// The autocomplete expert of one working directory; see the [module documentation](self).
pub struct Autocompleter {
    provider: Arc<dyn ModelProvider>,
    model: String,
    working_dir: PathBuf,
    /// The expertise file, read and written under this lock.
    expertise: Mutex<()>,
    /// The query running now, interrupted by the next one.
    running: Mutex<Option<Interrupt>>,
    files: Mutex<Option<(Instant, Vec<String>)>>,
}

impl std::fmt::Debug for Autocompleter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Autocompleter").field("model", &self.model).field("working_dir", &self.working_dir).finish()
    }
}

/// Lock a mutex, even one a panicking holder poisoned (its data is still sound here).
fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

impl Autocompleter {
    /// An expert calling `model` (the model id) on `provider`, for `working_dir`.
    pub fn new(provider: Arc<dyn ModelProvider>, model: impl Into<String>, working_dir: impl Into<PathBuf>) -> Self {
        Self {
            provider,
            model: model.into(),
            working_dir: working_dir.into(),
            expertise: Mutex::new(()),
            running: Mutex::new(None),
            files: Mutex::new(None),
        }
    }

    /// The model id called.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The expertise file.
    pub fn expertise_path(&self) -> PathBuf {
        self.working_dir.join(".orch").join("autocomplete").join("expertise.yaml")
    }

    /// The expertise of orchestrator `orchestrator_id`: the file's, or an empty one when the file is
    /// missing, does not parse or belongs to another orchestrator.
    pub fn expertise(&self, orchestrator_id: &str) -> Expertise {
        let _held = lock(&self.expertise);
        self.read(orchestrator_id)
    }

    fn read(&self, orchestrator_id: &str) -> Expertise {
        let fresh = || Expertise { orchestrator_agent_id: Some(orchestrator_id.to_string()), ..Expertise::default() };
        let Ok(text) = std::fs::read_to_string(self.expertise_path()) else { return fresh() };
        match serde_json::from_str::<Expertise>(&text) {
            Ok(e) if e.orchestrator_agent_id.as_deref() == Some(orchestrator_id) => e,
            Ok(_) => fresh(),
            Err(e) => {
                tracing::warn!(error = %e, "the autocomplete expertise file does not parse; it starts over");
                fresh()
            }
        }
    }

    /// Remembers what a person did with the suggestions, in the expertise file.
    pub fn remember(&self, orchestrator_id: &str, feedback: Feedback) -> Result<(), AutocompleteError> {
        let empty = match &feedback {
            Feedback::None { user_input_on_enter } => user_input_on_enter.trim().is_empty(),
            Feedback::Autocomplete { autocomplete_item, .. } => autocomplete_item.trim().is_empty(),
        };
        if empty {
            return Err(AutocompleteError::Usage("nothing to remember: the input or the item is empty".into()));
        }
        let _held = lock(&self.expertise);
        let mut e = self.read(orchestrator_id);
        let order = e.previous_completions.last().map_or(1, |r| r.order + 1);
        e.previous_completions.push(Remembered { order, feedback });
        let extra = e.previous_completions.len().saturating_sub(MAX_HISTORY);
        e.previous_completions.drain(..extra);
        let path = self.expertise_path();
        let io =
            |err: std::io::Error| AutocompleteError::Io { path: path.display().to_string(), message: err.to_string() };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let text = serde_json::to_string_pretty(&e).unwrap_or_default();
        // Written whole then renamed, so a reader never sees half a file.
        let tmp = path.with_extension("yaml.tmp");
        std::fs::write(&tmp, text).map_err(io)?;
        std::fs::rename(&tmp, &path).map_err(io)
    }

    /// Up to [`MAX_SUGGESTIONS`] suggestions for `input`. Interrupts the query still running, if any;
    /// an interrupted query, a failed call or an unusable reply gives none.
    pub async fn suggest(
        &self,
        orchestrator_id: &str,
        input: &str,
        context: &Context,
    ) -> Result<Vec<Suggestion>, ModelError> {
        let input: String = input.chars().take(MAX_INPUT_CHARS).collect();
        if input.trim().is_empty() {
            return Ok(Vec::new());
        }
        let mine = Interrupt::new();
        if let Some(previous) = lock(&self.running).replace(mine.clone()) {
            previous.trigger();
        }
        let request = ModelRequest {
            model: self.model.clone(),
            system: Some(self.system_prompt(orchestrator_id, context)),
            messages: Arc::new(vec![Message::user_text(format!(
                "Generate autocomplete suggestions for the following user input: {input}"
            ))]),
            tools: Arc::new(Vec::new()),
            max_tokens: 512,
            thinking: None,
            agent_name: AUTOCOMPLETE_AGENT.to_owned(),
        };
        let call = async { ResponseAssembler::collect(self.provider.stream(request).await?).await };
        let interrupted = mine.triggered();
        futures::pin_mut!(call, interrupted);
        let outcome = match futures::future::select(call, interrupted).await {
            futures::future::Either::Left((r, _)) => Some(r),
            futures::future::Either::Right(_) => None,
        };
        {
            let mut running = lock(&self.running);
            if running.as_ref().is_some_and(|r| r.same_as(&mine)) {
                *running = None;
            }
        }
        let Some(response) = outcome else { return Ok(Vec::new()) };
        Ok(parse_reply(&response?.text()))
    }

    /// The system prompt for this moment.
    pub fn system_prompt(&self, orchestrator_id: &str, context: &Context) -> String {
        let list = |v: &[String]| if v.is_empty() { "(none)".to_string() } else { v.join(", ") };
        let files = self.files();
        let history = self.expertise(orchestrator_id).previous_completions;
        let history = if history.is_empty() {
            "(none yet)".to_string()
        } else {
            history
                .iter()
                .rev()
                .take(50)
                .rev()
                .map(|r| serde_json::to_string(r).unwrap_or_default())
                .collect::<Vec<_>>()
                .join("\n")
        };
        SYSTEM_PROMPT
            .replace("{{AVAILABLE_ACTIVE_AGENTS}}", &list(&context.agents))
            .replace("{{AVAILABLE_SLASH_COMMANDS}}", &list(&context.commands))
            .replace("{{AVAILABLE_AGENT_TEMPLATES}}", &list(&context.templates))
            .replace("{{CODEBASE_STRUCTURE}}", &if files.is_empty() { "(none)".into() } else { files.join("\n") })
            .replace("{{PREVIOUS_AUTOCOMPLETE_ITEMS}}", &history)
    }

    /// The codebase's files (relative paths, hidden directories and build output skipped, at most
    /// [`MAX_FILES`]), read again at most once a minute.
    fn files(&self) -> Vec<String> {
        let mut cached = lock(&self.files);
        if let Some((at, files)) = cached.as_ref()
            && at.elapsed() < FILES_TTL
        {
            return files.clone();
        }
        let files = list_files(&self.working_dir);
        *cached = Some((Instant::now(), files.clone()));
        files
    }
}

fn list_files(root: &Path) -> Vec<String> {
    const SKIP: [&str; 4] = ["target", "node_modules", "dist", "__pycache__"];
    walkdir::WalkDir::new(root)
        .sort_by_file_name()
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0 || {
                let name = e.file_name().to_string_lossy();
                !name.starts_with('.') && !SKIP.contains(&name.as_ref())
            }
        })
        .filter_map(Result::ok)
        .filter(|e| e.file_type().is_file())
        .filter_map(|e| e.path().strip_prefix(root).ok().map(|p| p.display().to_string()))
        .take(MAX_FILES)
        .collect()
}

/// The suggestions of a reply: its JSON (a fenced block, or the whole text) as
/// `{"autocompletes": [{completion, reasoning}]}`; anything else gives none.
pub fn parse_reply(text: &str) -> Vec<Suggestion> {
    #[derive(Deserialize)]
    struct Reply {
        autocompletes: Vec<Suggestion>,
    }
    let Ok(value) = crate::graph::parse::extract_json(text) else { return Vec::new() };
    match serde_json::from_value::<Reply>(value) {
        Ok(r) => {
            r.autocompletes.into_iter().filter(|s| !s.completion.trim().is_empty()).take(MAX_SUGGESTIONS).collect()
        }
        Err(e) => {
            tracing::debug!(error = %e, "the autocomplete reply is not the asked-for JSON");
            Vec::new()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replies_give_at_most_three_suggestions_and_bad_ones_none() {
        let fenced = "Sure:\n```json\n{\"autocompletes\": [{\"completion\": \" to alice\", \"reasoning\": \"agent\"}, \
                      {\"completion\": \"\", \"reasoning\": \"empty\"}, {\"completion\": \" now\"}, \
                      {\"completion\": \" a\"}, {\"completion\": \" b\"}]}\n```";
        let got = parse_reply(fenced);
        assert_eq!(got.len(), 3);
        assert_eq!(got[0], Suggestion { completion: " to alice".into(), reasoning: "agent".into() });
        assert!(parse_reply("no JSON here").is_empty());
        assert!(parse_reply("{\"suggestions\": []}").is_empty());
    }

    #[test]
    fn feedback_is_remembered_bounded_and_reset_for_another_orchestrator() {
        let dir = tempfile_dir();
        let provider: Arc<dyn ModelProvider> = Arc::new(crate::model::scripted::ScriptedModel::default());
        let a = Autocompleter::new(provider, "fast", dir.clone());
        a.remember("o1", Feedback::None { user_input_on_enter: "list agents".into() }).unwrap_or_default();
        let accepted = Feedback::Autocomplete {
            user_input_before_completion: "command al".into(),
            autocomplete_item: "ice to write tests".into(),
            reasoning: "alice is live".into(),
        };
        a.remember("o1", accepted.clone()).unwrap_or_default();
        let e = a.expertise("o1");
        assert_eq!(e.previous_completions.len(), 2);
        assert_eq!((e.previous_completions[1].order, &e.previous_completions[1].feedback), (2, &accepted));
        let text = std::fs::read_to_string(a.expertise_path()).unwrap_or_default();
        assert!(text.contains("\"completion_type\": \"autocomplete\""), "{text}");
        assert!(a.system_prompt("o1", &Context::default()).contains("ice to write tests"));
        assert!(a.expertise("o2").previous_completions.is_empty(), "another orchestrator starts over");
        for i in 0..MAX_HISTORY + 5 {
            a.remember("o1", Feedback::None { user_input_on_enter: format!("input {i}") }).unwrap_or_default();
        }
        let e = a.expertise("o1");
        assert_eq!(e.previous_completions.len(), MAX_HISTORY);
        assert_eq!(e.previous_completions.last().map(|r| r.order), Some(MAX_HISTORY as u64 + 7));
        assert!(a.remember("o1", Feedback::None { user_input_on_enter: " ".into() }).is_err());
        std::fs::write(a.expertise_path(), "not: [json").unwrap_or_default();
        assert!(a.expertise("o1").previous_completions.is_empty(), "a broken file starts over");
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn tempfile_dir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!("orch-autocomplete-{}", crate::wire::new_id()));
        let _ = std::fs::create_dir_all(&dir);
        dir
    }
}
