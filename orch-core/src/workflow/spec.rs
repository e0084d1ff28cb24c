//! The workflow file format: `<cwd>/.orch/workflows/*.toml`.
//!
//! ```toml
//! name = "plan_build_review_fix"          # optional: defaults to the file stem
//! description = "Plan, build, review, fix on FAIL"
//! inputs = ["prompt"]                      # required input keys (others optional)
//! worktree = true                          # optional, default false: run in a git worktree of its own
//! on_success = "merge"                     # optional, "keep" (default) or "merge" its branch on success
//!
//! [[steps]]
//! name = "plan"                            # unique, [a-z0-9_-]+
//! prompt = "/plan {{prompt}}"              # template (see `expr`)
//! model = '{{input.model | default ""}}'   # optional template; empty after rendering = engine default
//! allowed_tools = ["Read", "Write"]        # optional
//! when = 'steps.review.outputs.verdict == "FAIL"'   # optional condition
//! retries = 1                              # optional, default 0: extra attempts when the run fails
//! track = { path = "notes/{{input.topic}}.yaml", max_lines = '{{input.max_lines | default "1000"}}' }
//!                                          # optional: record a file before and after the step (its
//!                                          # history in the log) and fail the step when it ends up
//!                                          # longer than max_lines (a number or a template); the
//!                                          # path is a template relative to the working dir
//! [[steps.outputs]]
//! name = "plan_path"
//! required = true                          # default false
//! extract = [ { ask = "Reply with ONLY the absolute path of the plan file you wrote.", accept = '^(/|\./)\S+\.md$' },
//!             { newest_file = "specs/*.md" } ]   # tried in order; the first that yields a value wins
//! ```
//!
//! Each extractor has exactly one kind ([`Extract`]): `{ regex = "PATTERN", group = 1 }`,
//! `{ newest_file = "GLOB" }`, `{ keyword = ["FAIL", "PASS"] }`, `{ ask = "QUESTION", accept = "REGEX" }`
//! or `{ result = true }`; see [`super::extract`] for what each yields. A `required` output for which no
//! extractor yields fails its step, naming the output.
//!
//! [`parse_workflow`] validates everything it can before a run: unknown keys, names, templates,
//! conditions, regular expressions and globs, and that every `steps.NAME` reference names an earlier
//! step (and, for `steps.NAME.outputs.KEY`, an output that step declares). `input.KEY` may name an
//! undeclared input: those are optional. Errors carry the file, line, column and key path
//! (`steps[2].when`, indexes from 0).

use std::fmt;
use std::ops::Range;
use std::path::{Path, PathBuf};

use regex::Regex;
use serde::Deserialize;
use toml::Spanned;

use super::expr::{self, Condition, Reference, Template};
use super::worktree::{Isolation, OnSuccess};

/// A parsed, validated workflow.
#[derive(Debug, Clone)]
pub struct WorkflowSpec {
    /// Its name (`name`, or the file stem).
    pub name: String,
    /// `description`, empty when absent.
    pub description: String,
    /// The input keys a run must supply.
    pub inputs: Vec<String>,
    /// The steps, in order (at least one).
    pub steps: Vec<StepSpec>,
    /// Whether its runs work in a git worktree of their own, and what becomes of the branch
    /// (`worktree`, `on_success`; see [`super::worktree`]).
    pub isolation: Isolation,
    /// The file it was read from (`None` for workflows built in code).
    pub source: Option<PathBuf>,
}

impl WorkflowSpec {
    /// The step named `name`.
    pub fn step(&self, name: &str) -> Option<&StepSpec> {
        self.steps.iter().find(|s| s.name == name)
    }
}

/// One step: a fresh agent running one prompt.
#[derive(Debug, Clone)]
pub struct StepSpec {
    /// Unique within the workflow, `[a-z0-9_-]+`.
    pub name: String,
    /// The prompt template, as written (parse it with [`Template::parse`]; it is known to parse). Kept
    /// as text so the runner can record it.
    pub prompt: String,
    /// The model template (empty after rendering: the engine's default), as written; known to parse.
    pub model: Option<String>,
    /// The tools the step's agent may use (`None`: the engine's default set).
    pub allowed_tools: Option<Vec<String>>,
    /// Run the step only when this holds (otherwise it is `skipped`).
    pub when: Option<Condition>,
    /// Extra attempts when the step's run fails.
    pub retries: u32,
    /// What to extract from the step when it succeeds.
    pub outputs: Vec<OutputSpec>,
    /// A file the step maintains: recorded before and after it, with a line limit.
    pub track: Option<TrackSpec>,
}

/// A file a step maintains (`track = { path = "…", max_lines = "…" }`): its content before and after
/// the step goes into the step's `StepEnd` payload (its history in the log), and a file longer than
/// `max_lines` after the step fails the step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackSpec {
    /// The path template, relative to the working dir (after rendering: relative, without `..`).
    pub path: String,
    /// The line limit template (renders to a whole number), if any.
    pub max_lines: Option<String>,
}

impl StepSpec {
    /// The parsed prompt template.
    pub fn prompt_template(&self) -> Result<Template, expr::ExprError> {
        Template::parse(&self.prompt)
    }

    /// The parsed model template, if any.
    pub fn model_template(&self) -> Result<Option<Template>, expr::ExprError> {
        self.model.as_deref().map(Template::parse).transpose()
    }
}

/// One output of a step.
#[derive(Debug, Clone)]
pub struct OutputSpec {
    /// Unique within the step; read as `steps.STEP.outputs.NAME`.
    pub name: String,
    /// When no extractor yields a value, the step fails naming this output.
    pub required: bool,
    /// The extractors, tried in order; the first that yields a value wins (at least one).
    pub extract: Vec<Extract>,
}

/// One way of extracting an output value (see [`super::extract::extract_now`]).
#[derive(Debug, Clone)]
pub enum Extract {
    /// `{ regex = "PATTERN", group = N }`: the group of the first match in the step's final text
    /// (`group` defaults to 1, or 0 when the pattern has no group).
    Regex {
        /// The compiled pattern.
        pattern: Regex,
        /// The capture group (0: the whole match); at most the pattern's group count.
        group: usize,
    },
    /// `{ newest_file = "GLOB" }`: the newest file under the working directory matching the relative
    /// glob, as an absolute path.
    NewestFile {
        /// The glob, relative to the working directory.
        glob: String,
    },
    /// `{ keyword = ["FAIL", "PASS"] }`: the first keyword of the list found in the final text,
    /// ignoring case.
    Keyword {
        /// The keywords, in priority order (at least one, none empty).
        keywords: Vec<String>,
    },
    /// `{ ask = "QUESTION", accept = "REGEX" }`: the runner asks the step's agent one more question and
    /// takes the answer by [`super::extract::accept_answer`].
    Ask {
        /// The question.
        question: String,
        /// What an acceptable answer looks like.
        accept: Option<Regex>,
    },
    /// `{ result = true }`: the whole final text.
    Result,
}

/// A workflow file that cannot be used: where and why.
///
/// Displays as `<path>:<line>:<column>: <key>: <message>`, leaving out the parts that are not known.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct WorkflowFileError {
    /// The file.
    pub path: PathBuf,
    /// 1-based line, when known.
    pub line: Option<usize>,
    /// 1-based column (characters), when known.
    pub column: Option<usize>,
    /// The key path (`steps[2].when`, indexes from 0), when known.
    pub key: Option<String>,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for WorkflowFileError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
            if let Some(column) = self.column {
                write!(f, ":{column}")?;
            }
        }
        if let Some(key) = &self.key {
            write!(f, ": {key}")?;
        }
        write!(f, ": {}", self.message)
    }
}

// ---------------------------------------------------------------------------------------------------
// The file as deserialized, with spans for validation errors.

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawWorkflow {
    name: Option<Spanned<String>>,
    description: Option<String>,
    #[serde(default)]
    inputs: Vec<Spanned<String>>,
    worktree: Option<bool>,
    on_success: Option<Spanned<String>>,
    steps: Option<Spanned<Vec<Spanned<RawStep>>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    name: Spanned<String>,
    prompt: Spanned<String>,
    model: Option<Spanned<String>>,
    allowed_tools: Option<Vec<String>>,
    when: Option<Spanned<String>>,
    #[serde(default)]
    retries: u32,
    #[serde(default)]
    outputs: Vec<Spanned<RawOutput>>,
    track: Option<RawTrack>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrack {
    path: Spanned<String>,
    max_lines: Option<Spanned<RawLimit>>,
}

/// `max_lines = 500` or a template (`'{{input.max_lines | default "1000"}}'`).
#[derive(Deserialize)]
#[serde(untagged)]
enum RawLimit {
    Lines(u64),
    Template(String),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOutput {
    name: Spanned<String>,
    #[serde(default)]
    required: bool,
    extract: Spanned<Vec<Spanned<RawExtract>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExtract {
    regex: Option<Spanned<String>>,
    group: Option<Spanned<usize>>,
    newest_file: Option<Spanned<String>>,
    keyword: Option<Spanned<Vec<String>>>,
    ask: Option<Spanned<String>>,
    accept: Option<Spanned<String>>,
    result: Option<Spanned<bool>>,
}

/// Builds errors located in one file's text.
struct Ctx<'a> {
    path: &'a Path,
    text: &'a str,
}

impl Ctx<'_> {
    fn at(&self, span: Option<Range<usize>>, key: Option<String>, message: impl Into<String>) -> WorkflowFileError {
        let (line, column) = match span {
            Some(span) => {
                let (l, c) = line_column(self.text, span.start);
                (Some(l), Some(c))
            }
            None => (None, None),
        };
        WorkflowFileError { path: self.path.to_path_buf(), line, column, key, message: message.into() }
    }

    fn err<T>(&self, spanned: &Spanned<T>, key: &str, message: impl Into<String>) -> WorkflowFileError {
        self.at(Some(spanned.span()), Some(key.to_string()), message)
    }
}

/// 1-based line and column (characters) of byte `offset` in `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(text.len());
    while !text.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = text.get(..offset).unwrap_or("");
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

fn is_step_name(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// Input keys, output names and workflow names: what a path segment may hold.
fn is_key(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Parses and validates the workflow file `path` whose contents are `text`. The name defaults to the
/// file stem.
pub fn parse_workflow(text: &str, path: &Path) -> Result<WorkflowSpec, WorkflowFileError> {
    let cx = Ctx { path, text };
    let raw = deserialize(&cx)?;

    let name = match &raw.name {
        Some(n) => {
            if !is_key(n.get_ref()) {
                return Err(cx.err(
                    n,
                    "name",
                    format!("`{}` is not a valid workflow name ([A-Za-z0-9_-]+)", n.get_ref()),
                ));
            }
            n.get_ref().clone()
        }
        None => {
            let stem = path.file_stem().and_then(|s| s.to_str()).unwrap_or("");
            if !is_key(stem) {
                return Err(cx.at(
                    None,
                    Some("name".into()),
                    format!("the file name `{stem}` is not a valid workflow name ([A-Za-z0-9_-]+); set `name`"),
                ));
            }
            stem.to_string()
        }
    };

    let mut inputs: Vec<String> = Vec::new();
    for (i, input) in raw.inputs.iter().enumerate() {
        let key = format!("inputs[{i}]");
        if !is_key(input.get_ref()) {
            return Err(cx.err(
                input,
                &key,
                format!("`{}` is not a valid input name ([A-Za-z0-9_-]+)", input.get_ref()),
            ));
        }
        if inputs.contains(input.get_ref()) {
            return Err(cx.err(input, &key, format!("input `{}` is listed twice", input.get_ref())));
        }
        inputs.push(input.get_ref().clone());
    }

    let on_success = match &raw.on_success {
        None => OnSuccess::default(),
        Some(v) => OnSuccess::parse(v.get_ref())
            .ok_or_else(|| cx.err(v, "on_success", format!("`{}` is not one of \"keep\" or \"merge\"", v.get_ref())))?,
    };
    let isolation = Isolation { worktree: raw.worktree.unwrap_or(false), on_success };

    let raw_steps = match &raw.steps {
        None => return Err(cx.at(None, Some("steps".into()), "a workflow needs at least one [[steps]]")),
        Some(s) if s.get_ref().is_empty() => {
            return Err(cx.err(s, "steps", "a workflow needs at least one [[steps]]"));
        }
        Some(s) => s.get_ref(),
    };

    let mut steps: Vec<StepSpec> = Vec::with_capacity(raw_steps.len());
    for (i, raw_step) in raw_steps.iter().enumerate() {
        let step = parse_step(&cx, i, raw_step.get_ref(), &steps)?;
        steps.push(step);
    }

    Ok(WorkflowSpec {
        name,
        description: raw.description.unwrap_or_default(),
        inputs,
        steps,
        isolation,
        source: Some(path.to_path_buf()),
    })
}

/// Deserializes the file, turning TOML and shape errors into located errors with the key path.
fn deserialize(cx: &Ctx) -> Result<RawWorkflow, WorkflowFileError> {
    let de = toml::Deserializer::parse(cx.text).map_err(|e| cx.at(e.span(), None, e.message().trim()))?;
    serde_path_to_error::deserialize(de).map_err(|e| {
        let key = key_path(e.path());
        let inner = e.into_inner();
        cx.at(inner.span(), key, inner.message().trim())
    })
}

/// A deserialization path as `steps[2].when`, without the fields `Spanned` uses internally.
fn key_path(path: &serde_path_to_error::Path) -> Option<String> {
    use serde_path_to_error::Segment;
    let mut out = String::new();
    for segment in path.iter() {
        match segment {
            Segment::Seq { index } => out.push_str(&format!("[{index}]")),
            Segment::Map { key } if key.starts_with("$__serde_spanned_private") => {}
            Segment::Map { key } | Segment::Enum { variant: key } => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(key);
            }
            Segment::Unknown => {}
        }
    }
    (!out.is_empty()).then_some(out)
}

fn parse_step(cx: &Ctx, i: usize, raw: &RawStep, earlier: &[StepSpec]) -> Result<StepSpec, WorkflowFileError> {
    let k = |field: &str| format!("steps[{i}].{field}");
    let name = raw.name.get_ref();
    if !is_step_name(name) {
        return Err(cx.err(&raw.name, &k("name"), format!("`{name}` is not a valid step name ([a-z0-9_-]+)")));
    }
    if earlier.iter().any(|s| &s.name == name) {
        return Err(cx.err(&raw.name, &k("name"), format!("a step named `{name}` comes earlier")));
    }

    let prompt = raw.prompt.get_ref();
    if prompt.trim().is_empty() {
        return Err(cx.err(&raw.prompt, &k("prompt"), "the prompt is empty"));
    }
    let template = Template::parse(prompt).map_err(|e| cx.err(&raw.prompt, &k("prompt"), e.to_string()))?;
    check_paths(cx, &raw.prompt, &k("prompt"), &template.paths(), earlier)?;

    if let Some(model) = &raw.model {
        let template = Template::parse(model.get_ref()).map_err(|e| cx.err(model, &k("model"), e.to_string()))?;
        check_paths(cx, model, &k("model"), &template.paths(), earlier)?;
    }

    let when = match &raw.when {
        Some(w) => {
            let cond = Condition::parse(w.get_ref()).map_err(|e| cx.err(w, &k("when"), e.to_string()))?;
            check_paths(cx, w, &k("when"), &cond.paths(), earlier)?;
            Some(cond)
        }
        None => None,
    };

    let mut outputs: Vec<OutputSpec> = Vec::with_capacity(raw.outputs.len());
    for (j, raw_out) in raw.outputs.iter().enumerate() {
        let ok = |field: &str| format!("steps[{i}].outputs[{j}].{field}");
        let out = raw_out.get_ref();
        let oname = out.name.get_ref();
        if !is_key(oname) {
            return Err(cx.err(
                &out.name,
                &ok("name"),
                format!("`{oname}` is not a valid output name ([A-Za-z0-9_-]+)"),
            ));
        }
        if outputs.iter().any(|o| &o.name == oname) {
            return Err(cx.err(&out.name, &ok("name"), format!("step `{name}` already has an output `{oname}`")));
        }
        if out.extract.get_ref().is_empty() {
            return Err(cx.err(&out.extract, &ok("extract"), "an output needs at least one extractor"));
        }
        let mut extract = Vec::with_capacity(out.extract.get_ref().len());
        for (x, raw_x) in out.extract.get_ref().iter().enumerate() {
            let key = format!("steps[{i}].outputs[{j}].extract[{x}]");
            extract.push(parse_extract(cx, &key, raw_x)?);
        }
        outputs.push(OutputSpec { name: oname.clone(), required: out.required, extract });
    }

    let track = match &raw.track {
        Some(t) => {
            let max_lines = t.max_lines.as_ref().map(|m| {
                let text = match m.get_ref() {
                    RawLimit::Lines(n) => n.to_string(),
                    RawLimit::Template(t) => t.clone(),
                };
                Spanned::new(m.span(), text)
            });
            for (field, value) in [("path", Some(&t.path)), ("max_lines", max_lines.as_ref())] {
                let Some(value) = value else { continue };
                let key = k(&format!("track.{field}"));
                let template = Template::parse(value.get_ref()).map_err(|e| cx.err(value, &key, e.to_string()))?;
                check_paths(cx, value, &key, &template.paths(), earlier)?;
            }
            let path = t.path.get_ref();
            if path.trim().is_empty() || Path::new(path).is_absolute() || path.split('/').any(|c| c == "..") {
                return Err(cx.err(
                    &t.path,
                    &k("track.path"),
                    "the path must be relative to the working dir, without `..`",
                ));
            }
            Some(TrackSpec { path: path.clone(), max_lines: max_lines.map(Spanned::into_inner) })
        }
        None => None,
    };

    Ok(StepSpec {
        name: name.clone(),
        prompt: prompt.clone(),
        model: raw.model.as_ref().map(|m| m.get_ref().clone()),
        allowed_tools: raw.allowed_tools.clone(),
        when,
        retries: raw.retries,
        outputs,
        track,
    })
}

/// Every `steps.S…` path must name an earlier step, and `steps.S.outputs.K` an output `S` declares.
fn check_paths(
    cx: &Ctx,
    at: &Spanned<String>,
    key: &str,
    paths: &[&expr::Path],
    earlier: &[StepSpec],
) -> Result<(), WorkflowFileError> {
    for path in paths {
        let Reference::Step(step) = path.reference() else { continue };
        let Some(found) = earlier.iter().find(|s| s.name == step) else {
            let message = if earlier.is_empty() {
                format!("`{path}` refers to step `{step}`, but no step comes before this one")
            } else {
                let names: Vec<&str> = earlier.iter().map(|s| s.name.as_str()).collect();
                format!(
                    "`{path}` refers to step `{step}`, which does not come earlier (earlier steps: {})",
                    names.join(", ")
                )
            };
            return Err(cx.err(at, key, message));
        };
        if let expr::Path::StepOutput(_, output) = path
            && !found.outputs.iter().any(|o| &o.name == output)
        {
            let names: Vec<&str> = found.outputs.iter().map(|o| o.name.as_str()).collect();
            let declared = if names.is_empty() { "none".to_string() } else { names.join(", ") };
            return Err(cx.err(
                at,
                key,
                format!("`{path}`: step `{step}` declares no output `{output}` (its outputs: {declared})"),
            ));
        }
    }
    Ok(())
}

fn parse_extract(cx: &Ctx, key: &str, raw: &Spanned<RawExtract>) -> Result<Extract, WorkflowFileError> {
    let x = raw.get_ref();
    let kinds: Vec<&str> = [
        ("regex", x.regex.is_some()),
        ("newest_file", x.newest_file.is_some()),
        ("keyword", x.keyword.is_some()),
        ("ask", x.ask.is_some()),
        ("result", x.result.is_some()),
    ]
    .into_iter()
    .filter_map(|(k, present)| present.then_some(k))
    .collect();
    const KINDS: &str = "`regex`, `newest_file`, `keyword`, `ask` or `result`";
    match kinds.as_slice() {
        [] => return Err(cx.err(raw, key, format!("an extractor needs one of {KINDS}"))),
        [_] => {}
        several => {
            return Err(cx.err(
                raw,
                key,
                format!("an extractor has exactly one of {KINDS}; this one has {}", several.join(", ")),
            ));
        }
    }
    if let (Some(group), None) = (&x.group, &x.regex) {
        return Err(cx.err(group, &format!("{key}.group"), "`group` goes only with `regex`"));
    }
    if let (Some(accept), None) = (&x.accept, &x.ask) {
        return Err(cx.err(accept, &format!("{key}.accept"), "`accept` goes only with `ask`"));
    }
    let compile = |s: &Spanned<String>, field: &str| {
        Regex::new(s.get_ref()).map_err(|e| {
            // The syntax error's text repeats the pattern with a caret; its last line says what is wrong.
            let text = e.to_string();
            let why = text.lines().last().unwrap_or("").trim().trim_start_matches("error: ").to_string();
            cx.err(s, &format!("{key}.{field}"), format!("bad regular expression: {why}"))
        })
    };

    if let Some(re) = &x.regex {
        let pattern = compile(re, "regex")?;
        let groups = pattern.captures_len() - 1;
        let group = match &x.group {
            Some(g) if *g.get_ref() > groups => {
                return Err(cx.err(
                    g,
                    &format!("{key}.group"),
                    format!("group {} does not exist: the pattern has {groups} group(s)", g.get_ref()),
                ));
            }
            Some(g) => *g.get_ref(),
            None => usize::from(groups > 0),
        };
        return Ok(Extract::Regex { pattern, group });
    }
    if let Some(glob) = &x.newest_file {
        let g = glob.get_ref();
        let k = format!("{key}.newest_file");
        if g.is_empty() || g.starts_with('/') || Path::new(g).is_absolute() {
            return Err(cx.err(glob, &k, "the glob must be a non-empty path relative to the working directory"));
        }
        if g.split('/').any(|part| part == "..") {
            return Err(cx.err(glob, &k, "the glob must stay inside the working directory (no `..`)"));
        }
        if let Err(e) = globset::GlobBuilder::new(g).literal_separator(true).build() {
            return Err(cx.err(glob, &k, format!("bad glob: {e}")));
        }
        return Ok(Extract::NewestFile { glob: g.clone() });
    }
    if let Some(keywords) = &x.keyword {
        if keywords.get_ref().is_empty() || keywords.get_ref().iter().any(|k| k.is_empty()) {
            return Err(cx.err(keywords, &format!("{key}.keyword"), "`keyword` needs a list of non-empty words"));
        }
        return Ok(Extract::Keyword { keywords: keywords.get_ref().clone() });
    }
    if let Some(question) = &x.ask {
        if question.get_ref().trim().is_empty() {
            return Err(cx.err(question, &format!("{key}.ask"), "the question is empty"));
        }
        let accept = x.accept.as_ref().map(|a| compile(a, "accept")).transpose()?;
        return Ok(Extract::Ask { question: question.get_ref().clone(), accept });
    }
    match &x.result {
        Some(r) if !*r.get_ref() => {
            Err(cx.err(r, &format!("{key}.result"), "write `result = true` (or leave the extractor out)"))
        }
        _ => Ok(Extract::Result),
    }
}

/// Every workflow in `<cwd>/.orch/workflows/*.toml`, sorted by name, and the files that could not be
/// used (sorted by path). A broken file never hides the good ones; a missing directory is no workflows.
/// Two files with the same workflow name: the first by path wins and the other is an error.
pub fn load_dir(cwd: &Path) -> (Vec<WorkflowSpec>, Vec<WorkflowFileError>) {
    let dir = cwd.join(".orch").join("workflows");
    let io_error = |path: &Path, e: std::io::Error| WorkflowFileError {
        path: path.to_path_buf(),
        line: None,
        column: None,
        key: None,
        message: e.to_string(),
    };
    let entries = match std::fs::read_dir(&dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return (Vec::new(), Vec::new()),
        Err(e) => return (Vec::new(), vec![io_error(&dir, e)]),
    };
    let mut files = Vec::new();
    let mut errors = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                if path.extension().is_some_and(|e| e == "toml") && path.is_file() {
                    files.push(path);
                }
            }
            Err(e) => errors.push(io_error(&dir, e)),
        }
    }
    files.sort();
    let mut specs: Vec<WorkflowSpec> = Vec::new();
    for path in files {
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) => {
                errors.push(io_error(&path, e));
                continue;
            }
        };
        match parse_workflow(&text, &path) {
            Ok(spec) => {
                if let Some(first) = specs.iter().find(|s| s.name == spec.name) {
                    let first = first.source.as_deref().map(|p| p.display().to_string()).unwrap_or_default();
                    errors.push(WorkflowFileError {
                        path: path.clone(),
                        line: None,
                        column: None,
                        key: Some("name".into()),
                        message: format!("workflow `{}` is already defined in {first}", spec.name),
                    });
                } else {
                    specs.push(spec);
                }
            }
            Err(e) => errors.push(e),
        }
    }
    specs.sort_by(|a, b| a.name.cmp(&b.name));
    errors.sort_by(|a, b| a.path.cmp(&b.path));
    (specs, errors)
}

#[cfg(test)]
mod tests;
