//! Project templates: slash commands (`.claude/commands/**/*.md`) and agent templates
//! (`.claude/agents/*.md`).
//!
//! [`Templates::load`] reads both from a working directory. Loading never fails: a file that cannot
//! be read or parsed is skipped and reported in [`Templates::problems`] with its path and a message.
//!
//! Frontmatter is the text between a first line `---` and the next `---` line, in the small YAML
//! subset described below (no YAML crate is used; the subset covers every file the seed ships):
//! - `key: value` lines; plain, single- or double-quoted scalars; `|` / `>` block scalars;
//! - lists as flow sequences (`[a, b]`) or block sequences (`- a` lines);
//! - `#` comment lines and ` # comments` after plain values;
//! - nested mappings only under keys that are not read; anchors, tags and multi-line quoted
//!   strings are not supported.
//!
//! `argument-hint` is always a plain string: its unquoted value is kept verbatim (so `[file]
//! [--flag]`, `<a>|<b>` and `key: value` survive), and a one-item list gives its item.
//!
//! ## Slash commands
//! A file `<cwd>/.claude/commands/experts/websocket/question.md` is the command
//! `experts:websocket:question`. Keys: `description`, `argument-hint`, `model`, `allowed-tools`
//! (list or comma-separated string), `disable-model-invocation` (bool, default false); other keys
//! are ignored. A file without frontmatter is a command with empty fields and the whole file as its
//! body. [`Templates::expand`] turns `/name args` into the command body with `$ARGUMENTS` and
//! `$1`…`$9` substituted (see [`split_arguments`]).
//!
//! `disable-model-invocation` is metadata only: it is loaded and reported so a host can keep the
//! command out of what a model may invoke, but expansion of a user prompt ignores it.
//!
//! ## Agent templates
//! `<cwd>/.claude/agents/*.md` (not recursive). Keys: `name` (required, trimmed), `description`
//! (required), `tools` (list or comma-separated string; absent means all tools), `model`, `color`.
//! The trimmed body is the system prompt and must not be empty. Templates are keyed by `name`; a
//! second file with the same name is reported and skipped.

mod frontmatter;

use std::path::{Path, PathBuf};

use serde::Serialize;
use thiserror::Error;

pub use frontmatter::FrontmatterError;

/// Which kind of template a [`TemplateProblem`] is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateKind {
    /// A slash command file.
    Command,
    /// An agent template file.
    Agent,
}

/// A template file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TemplateProblem {
    /// Command or agent.
    pub kind: TemplateKind,
    /// The file (or directory) concerned.
    pub path: PathBuf,
    /// What is wrong with it.
    pub message: String,
}

impl std::fmt::Display for TemplateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let kind = match self.kind {
            TemplateKind::Command => "command",
            TemplateKind::Agent => "agent template",
        };
        write!(f, "{kind} {}: {}", self.path.display(), self.message)
    }
}

/// Errors from template lookup and expansion.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum TemplateError {
    /// The prompt names a slash command that does not exist.
    #[error("unknown slash command `/{name}`; available: {}", list_or_none(.available))]
    UnknownCommand {
        /// The name as typed (without the `/`).
        name: String,
        /// All loaded command names, sorted.
        available: Vec<String>,
    },
}

impl TemplateError {
    /// [`ErrorKind::NotFound`](crate::ErrorKind::NotFound): the slash command does not exist.
    pub fn kind(&self) -> crate::ErrorKind {
        match self {
            Self::UnknownCommand { .. } => crate::ErrorKind::NotFound,
        }
    }
}

fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "(none)".to_string()
    } else {
        names.iter().map(|n| format!("/{n}")).collect::<Vec<_>>().join(", ")
    }
}

/// A slash command loaded from `.claude/commands`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SlashCommand {
    /// Namespaced name (`experts:websocket:question`).
    pub name: String,
    /// The file it was loaded from.
    pub path: PathBuf,
    /// `description`, empty when absent.
    pub description: String,
    /// `argument-hint`, empty when absent.
    pub argument_hint: String,
    /// `model`, if set.
    pub model: Option<String>,
    /// `allowed-tools`, empty when absent.
    pub allowed_tools: Vec<String>,
    /// `disable-model-invocation` (metadata only).
    pub disable_model_invocation: bool,
    /// The prompt body after the frontmatter.
    pub body: String,
}

/// What a host needs to list a slash command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CommandSummary {
    /// Namespaced name.
    pub name: String,
    /// Description, possibly empty.
    pub description: String,
    /// Argument hint, possibly empty.
    pub argument_hint: String,
    /// Model override, if any.
    pub model: Option<String>,
    /// Allowed tools (empty: not restricted).
    pub allowed_tools: Vec<String>,
    /// Whether models should not invoke it themselves.
    pub disable_model_invocation: bool,
}

impl SlashCommand {
    /// The host-facing summary.
    pub fn summary(&self) -> CommandSummary {
        CommandSummary {
            name: self.name.clone(),
            description: self.description.clone(),
            argument_hint: self.argument_hint.clone(),
            model: self.model.clone(),
            allowed_tools: self.allowed_tools.clone(),
            disable_model_invocation: self.disable_model_invocation,
        }
    }

    /// The body with `$ARGUMENTS` replaced by `arguments` and `$1`…`$9` by its shell-like words.
    pub fn render(&self, arguments: &str) -> String {
        substitute(&self.body, arguments)
    }
}

/// An agent template loaded from `.claude/agents`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentTemplate {
    /// `name` (trimmed), the key.
    pub name: String,
    /// `description`.
    pub description: String,
    /// `tools`; `None` means all tools.
    pub tools: Option<Vec<String>>,
    /// `model`, used as given.
    pub model: Option<String>,
    /// `color`.
    pub color: Option<String>,
    /// The trimmed body.
    pub system_prompt: String,
    /// The file it was loaded from.
    pub path: PathBuf,
}

/// What a host needs to list an agent template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentSummary {
    /// Template name.
    pub name: String,
    /// Description.
    pub description: String,
    /// Model, if set.
    pub model: Option<String>,
    /// Color, if set.
    pub color: Option<String>,
    /// Tools; `None` means all tools.
    pub tools: Option<Vec<String>>,
}

impl AgentTemplate {
    /// The host-facing summary.
    pub fn summary(&self) -> AgentSummary {
        AgentSummary {
            name: self.name.clone(),
            description: self.description.clone(),
            model: self.model.clone(),
            color: self.color.clone(),
            tools: self.tools.clone(),
        }
    }
}

/// A prompt expanded from a slash command.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expanded {
    /// The command's name.
    pub command: String,
    /// The argument string after the name (trimmed).
    pub arguments: String,
    /// The body with arguments substituted.
    pub prompt: String,
    /// The command's model override, for the caller to apply.
    pub model: Option<String>,
    /// The command's tool restriction, for the caller to apply; `None` when it sets none.
    pub allowed_tools: Option<Vec<String>>,
}

impl Expanded {
    /// Applies the command to a run: its model (if it sets one) becomes the run's, and its allowed tools
    /// narrow the run's (a tool must be allowed by both). Returns the prompt to run.
    pub fn apply_to(self, options: &mut crate::executor::RunOptions) -> String {
        if self.model.is_some() {
            options.model = self.model;
        }
        if let Some(allowed) = self.allowed_tools {
            options.allowed_tools = Some(match options.allowed_tools.take() {
                Some(own) => allowed.into_iter().filter(|t| own.contains(t)).collect(),
                None => allowed,
            });
        }
        self.prompt
    }
}

/// Slash commands and agent templates loaded from a working directory.
#[derive(Debug, Clone, Default)]
pub struct Templates {
    commands: Vec<SlashCommand>,
    agents: Vec<AgentTemplate>,
    problems: Vec<TemplateProblem>,
}

impl Templates {
    /// Loads `<cwd>/.claude/commands` and `<cwd>/.claude/agents`. Missing directories give no
    /// templates; bad files are skipped and reported in [`Templates::problems`].
    pub fn load(cwd: impl AsRef<Path>) -> Templates {
        let cwd = cwd.as_ref();
        let mut problems = Vec::new();
        let commands = load_commands(&cwd.join(".claude").join("commands"), &mut problems);
        let agents = load_agents(&cwd.join(".claude").join("agents"), &mut problems);
        Templates { commands, agents, problems }
    }

    /// Slash commands, sorted by name.
    pub fn commands(&self) -> &[SlashCommand] {
        &self.commands
    }

    /// Agent templates, sorted by name.
    pub fn agents(&self) -> &[AgentTemplate] {
        &self.agents
    }

    /// A slash command by name (without the `/`).
    pub fn command(&self, name: &str) -> Option<&SlashCommand> {
        self.commands.iter().find(|c| c.name == name)
    }

    /// An agent template by its frontmatter name.
    pub fn agent(&self, name: &str) -> Option<&AgentTemplate> {
        self.agents.iter().find(|a| a.name == name)
    }

    /// Files that were skipped, with the reason.
    pub fn problems(&self) -> &[TemplateProblem] {
        &self.problems
    }

    /// Summaries of all commands, sorted by name.
    pub fn command_summaries(&self) -> Vec<CommandSummary> {
        self.commands.iter().map(SlashCommand::summary).collect()
    }

    /// Summaries of all agent templates, sorted by name.
    pub fn agent_summaries(&self) -> Vec<AgentSummary> {
        self.agents.iter().map(AgentTemplate::summary).collect()
    }

    /// Expands a prompt of the form `/name args`. Returns `Ok(None)` when the prompt is not a slash
    /// command (it does not start with `/` followed by a command-like name, e.g. `/usr/bin/ls`),
    /// and an error when it names an unknown command.
    pub fn expand(&self, prompt: &str) -> Result<Option<Expanded>, TemplateError> {
        let Some((name, arguments)) = parse_invocation(prompt) else {
            return Ok(None);
        };
        // The engine's own commands pass through unless the project defines one of the same name.
        if BUILTIN_COMMANDS.contains(&name) && self.command(name).is_none() {
            return Ok(None);
        }
        let Some(command) = self.command(name) else {
            return Err(TemplateError::UnknownCommand {
                name: name.to_string(),
                available: self.commands.iter().map(|c| c.name.clone()).collect(),
            });
        };
        Ok(Some(Expanded {
            command: command.name.clone(),
            arguments: arguments.to_string(),
            prompt: command.render(arguments),
            model: command.model.clone(),
            allowed_tools: (!command.allowed_tools.is_empty()).then(|| command.allowed_tools.clone()),
        }))
    }
}

/// Commands the agent loop itself runs (`/compact [instructions]`), not templates.
pub const BUILTIN_COMMANDS: &[&str] = &["compact"];

/// `/name rest` → (`name`, trimmed `rest`); `None` when the prompt is not a slash command.
fn parse_invocation(prompt: &str) -> Option<(&str, &str)> {
    let rest = prompt.trim_start().strip_prefix('/')?;
    let end = rest.find(char::is_whitespace).unwrap_or(rest.len());
    let name = &rest[..end];
    let valid = !name.is_empty()
        && name.chars().all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | ':' | '.'))
        && !name.starts_with(':')
        && !name.ends_with(':');
    valid.then(|| (name, rest[end..].trim()))
}

/// Splits an argument string into words like a shell: whitespace separates words, double and
/// single quotes group words (quotes are removed), a backslash escapes the next character outside
/// single quotes (inside double quotes only `"`, `\`, `$` and `` ` `` are escaped; other backslashes
/// stay). An unterminated quote is not an error: the string is then split on whitespace only, so
/// `what's this` gives `what's` and `this`.
pub fn split_arguments(arguments: &str) -> Vec<String> {
    shell_words(arguments).unwrap_or_else(|| arguments.split_whitespace().map(String::from).collect())
}

fn shell_words(s: &str) -> Option<Vec<String>> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            '\'' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '\'' => break,
                        c => word.push(c),
                    }
                }
            }
            '"' => {
                in_word = true;
                loop {
                    match chars.next()? {
                        '"' => break,
                        '\\' => match chars.next()? {
                            e @ ('"' | '\\' | '$' | '`') => word.push(e),
                            e => {
                                word.push('\\');
                                word.push(e);
                            }
                        },
                        c => word.push(c),
                    }
                }
            }
            '\\' => {
                in_word = true;
                if let Some(e) = chars.next() {
                    word.push(e);
                }
            }
            c => {
                in_word = true;
                word.push(c);
            }
        }
    }
    if in_word {
        words.push(word);
    }
    Some(words)
}

/// Replaces `$ARGUMENTS` with the whole argument string and `$1`…`$9` with its words (empty when
/// missing). `$10` is `$1` followed by `0`; other `$` text is left alone.
fn substitute(body: &str, arguments: &str) -> String {
    let words = split_arguments(arguments);
    let mut out = String::with_capacity(body.len() + arguments.len());
    let mut rest = body;
    while let Some(i) = rest.find('$') {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        if let Some(tail) = after.strip_prefix("ARGUMENTS") {
            out.push_str(arguments);
            rest = tail;
        } else if let Some(d) = after.chars().next().and_then(|c| c.to_digit(10)).filter(|d| *d > 0) {
            if let Some(w) = words.get(d as usize - 1) {
                out.push_str(w);
            }
            rest = &after[1..];
        } else {
            out.push('$');
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

fn read(path: &Path) -> Result<String, String> {
    std::fs::read_to_string(path).map_err(|e| format!("cannot read file: {e}"))
}

/// The 1-based file line of the frontmatter's first line (after the opening `---`).
const FRONTMATTER_FIRST_LINE: usize = 2;

fn parse_command(root: &Path, path: &Path) -> Result<SlashCommand, String> {
    let rel = path.strip_prefix(root).map_err(|e| e.to_string())?.with_extension("");
    let mut parts = Vec::new();
    for c in rel.components() {
        let part = c.as_os_str().to_str().ok_or("the path is not valid UTF-8")?;
        parts.push(part.to_string());
    }
    let content = read(path)?;
    SlashCommand::from_markdown(parts.join(":"), path, &content)
}

impl SlashCommand {
    /// A command from the text of its Markdown file (frontmatter, then the body); `path` is where it
    /// came from (shown in listings).
    pub fn from_markdown(name: String, path: &Path, content: &str) -> Result<SlashCommand, String> {
        let split = frontmatter::split(content).map_err(|e| e.to_string())?;
        let mut command = SlashCommand {
            name,
            path: path.to_path_buf(),
            description: String::new(),
            argument_hint: String::new(),
            model: None,
            allowed_tools: Vec::new(),
            disable_model_invocation: false,
            body: split.body.to_string(),
        };
        if let Some(text) = split.frontmatter {
            let fm = frontmatter::parse(text, FRONTMATTER_FIRST_LINE, &["argument-hint"]).map_err(|e| e.to_string())?;
            let err = |e: FrontmatterError| e.to_string();
            command.description = fm.string("description").map_err(err)?.unwrap_or_default();
            command.argument_hint = fm.string_or_list("argument-hint").map_err(err)?.unwrap_or_default();
            command.model = fm.string("model").map_err(err)?.filter(|m| !m.trim().is_empty());
            command.allowed_tools = fm.list("allowed-tools").map_err(err)?.unwrap_or_default();
            command.disable_model_invocation = fm.bool("disable-model-invocation").map_err(err)?.unwrap_or(false);
        }
        Ok(command)
    }
}

fn load_commands(dir: &Path, problems: &mut Vec<TemplateProblem>) -> Vec<SlashCommand> {
    let mut commands: Vec<SlashCommand> = Vec::new();
    if !dir.is_dir() {
        return commands;
    }
    let problem = |path: &Path, message: String| TemplateProblem {
        kind: TemplateKind::Command,
        path: path.to_path_buf(),
        message,
    };
    let mut walker = walkdir::WalkDir::new(dir).sort_by_file_name().into_iter();
    while let Some(entry) = walker.next() {
        let entry = match entry {
            Ok(e) => e,
            Err(e) => {
                let path = e.path().unwrap_or(dir).to_path_buf();
                problems.push(problem(&path, format!("cannot read directory entry: {e}")));
                continue;
            }
        };
        let path = entry.path();
        if entry.depth() > 0 && entry.file_name().to_string_lossy().starts_with('.') {
            if entry.file_type().is_dir() {
                walker.skip_current_dir();
            }
            continue;
        }
        if !entry.file_type().is_file() || path.extension().is_none_or(|e| e != "md") {
            continue;
        }
        match parse_command(dir, path) {
            Ok(c) => commands.push(c),
            Err(message) => problems.push(problem(path, message)),
        }
    }
    commands.sort_by(|a, b| a.name.cmp(&b.name));
    commands
}

fn parse_agent(path: &Path) -> Result<AgentTemplate, String> {
    let content = read(path)?;
    let split = frontmatter::split(&content).map_err(|e| e.to_string())?;
    let text = split.frontmatter.ok_or("missing frontmatter (the file must start with `---`)")?;
    let fm = frontmatter::parse(text, FRONTMATTER_FIRST_LINE, &[]).map_err(|e| e.to_string())?;
    let err = |e: FrontmatterError| e.to_string();
    let name = fm.string("name").map_err(err)?.map(|n| n.trim().to_string()).unwrap_or_default();
    if name.is_empty() {
        return Err("missing required key `name`".into());
    }
    let description = fm.string("description").map_err(err)?.unwrap_or_default();
    if description.trim().is_empty() {
        return Err("missing required key `description`".into());
    }
    let system_prompt = split.body.trim().to_string();
    if system_prompt.is_empty() {
        return Err("empty body: the system prompt after the frontmatter is required".into());
    }
    let nonempty = |v: Option<String>| v.filter(|s| !s.trim().is_empty());
    Ok(AgentTemplate {
        name,
        description,
        tools: fm.list("tools").map_err(err)?,
        model: nonempty(fm.string("model").map_err(err)?),
        color: nonempty(fm.string("color").map_err(err)?),
        system_prompt,
        path: path.to_path_buf(),
    })
}

fn load_agents(dir: &Path, problems: &mut Vec<TemplateProblem>) -> Vec<AgentTemplate> {
    let mut agents: Vec<AgentTemplate> = Vec::new();
    if !dir.is_dir() {
        return agents;
    }
    let problem =
        |path: &Path, message: String| TemplateProblem { kind: TemplateKind::Agent, path: path.to_path_buf(), message };
    let mut paths = match std::fs::read_dir(dir) {
        Ok(entries) => entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "md"))
            .collect::<Vec<_>>(),
        Err(e) => {
            problems.push(problem(dir, format!("cannot read directory: {e}")));
            return agents;
        }
    };
    paths.sort();
    for path in paths {
        match parse_agent(&path) {
            Ok(a) => {
                if let Some(first) = agents.iter().find(|x| x.name == a.name) {
                    let message =
                        format!("duplicate agent name `{}` (already defined in {})", a.name, first.path.display());
                    problems.push(problem(&path, message));
                } else {
                    agents.push(a);
                }
            }
            Err(message) => problems.push(problem(&path, message)),
        }
    }
    agents.sort_by(|a, b| a.name.cmp(&b.name));
    agents
}
