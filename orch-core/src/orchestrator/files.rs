//! File tracking per agent run: which files one run created, modified, deleted and read.
//!
//! Two sources are combined:
//!
//! - **The run's own tool calls.** Successful `Write`, `Edit`, `MultiEdit` and `NotebookEdit` calls name
//!   the files they change; successful `Read` calls name the files they read.
//! - **Git.** Before the run, [`FileSnapshot::take`] records `git status` and a content fingerprint of every
//!   dirty or untracked file. After it, [`track_run`] compares again, so files that `Bash` changed (`mv`,
//!   `rm`, `sed -i`, redirects, even `git commit`) are found too, including a file that was already dirty
//!   before the run and is changed again.
//!
//! The report is **per run**: only the events passed to [`track_run`] and the differences from the
//! snapshot taken just before the run count, so a report never repeats what an earlier run did. (The seed
//! system accumulated its sets for the life of the agent, so every report grew with the agent's history.)
//!
//! Git runs through [`Runtime::run_process`] (10 s per call); when the working directory is not in a git
//! work tree, or `git` is missing, only the tool calls are used and changes carry no diff. Nothing here
//! fails or panics: problems with git are logged at `debug` and make the report less detailed.
//!
//! Limits: every change in the repository during the run is attributed to the run, including changes
//! made at the same time by other processes (another agent in the same repository, an editor). Paths
//! under `.orch/` (where orch keeps its own database) are not reported unless a file tool names them.
//!
//! orch's own database files are never opened here: not `.orch/` of the working directory (nor of the
//! repository's top), and not the files a store names ([`Store::local_files`](crate::store::Store::local_files),
//! given to [`FileSnapshot::take_excluding`]) wherever they are. They are left out of the snapshot before
//! any file is fingerprinted, and are never reported: opening and closing a descriptor of a SQLite file
//! drops the process's POSIX locks on it, and another process may then rebuild the `-shm` file under
//! this one's memory map.

use std::collections::{BTreeMap, BTreeSet};
use std::hash::Hasher;
use std::io::Read;
use std::path::{Component, Path, PathBuf};

use serde_json::Value;

use crate::git;
/// Time allowed to each `git` call (the git client's).
pub use crate::git::GIT_TIMEOUT;
use crate::runtime::Runtime;
use crate::wire::{Event, EventRecord, FileChange, FileChangeStatus, FileRead};

/// Longest diff, in bytes, kept in a [`FileChange`]; longer ones are clipped with a note.
pub const MAX_STORED_DIFF: usize = 64 * 1024;

/// Files larger than this are fingerprinted by size and modification time instead of content.
const CONTENT_HASH_LIMIT: u64 = 8 * 1024 * 1024;

/// Tools whose `file_path` (or `notebook_path`) names a file they change.
pub const CHANGE_TOOLS: &[&str] = &["Write", "Edit", "MultiEdit", "NotebookEdit"];

/// Tools whose `file_path` names a file they read.
pub const READ_TOOLS: &[&str] = &["Read"];

/// The tool a change is attributed to when git shows it and no file tool names it.
pub const SHELL_TOOL: &str = "Bash";

/// The working tree before a run: its `git status` and a fingerprint of every dirty or untracked file.
///
/// Outside a git work tree (or without `git`) it is empty and [`FileSnapshot::in_git`] is `false`.
#[derive(Debug, Clone, Default)]
pub struct FileSnapshot {
    git: Option<GitState>,
    private: Private,
}

/// Paths file tracking never opens nor reports: orch's own database files.
#[derive(Debug, Clone, Default)]
struct Private {
    /// Folders whose whole content is orch's (`.orch/`), absolute, as given and with symlinks resolved.
    dirs: Vec<PathBuf>,
    /// Single files (a store's database files), absolute, as given and with their folder's symlinks
    /// resolved.
    files: Vec<PathBuf>,
}

impl Private {
    fn new(wd: &Path, files: &[PathBuf]) -> Self {
        let mut p = Private::default();
        p.add_dir(&wd.join(".orch"));
        for f in files {
            let abs = absolute(f);
            if let Some(real) = canonical_parent(&abs) {
                p.files.push(real);
            }
            p.files.push(abs);
        }
        p
    }

    fn add_dir(&mut self, dir: &Path) {
        let abs = absolute(dir);
        if let Some(real) = canonical_parent(&abs) {
            self.dirs.push(real);
        }
        self.dirs.push(abs);
    }

    /// Whether `abs` (an absolute path) is one of orch's own files.
    fn contains(&self, abs: &Path) -> bool {
        let abs = normalize(abs);
        self.dirs.iter().any(|d| abs.starts_with(d)) || self.files.contains(&abs)
    }
}

/// What git said about the repository at snapshot time.
#[derive(Debug, Clone)]
struct GitState {
    /// `git rev-parse --show-toplevel`.
    top: PathBuf,
    /// The commit (or, in a repository without commits, the empty tree) diffs are taken against.
    base: Option<String>,
    /// Dirty and untracked paths, relative to `top`.
    entries: BTreeMap<String, Entry>,
}

/// One line of `git status --porcelain`, with the file's fingerprint.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Entry {
    /// The two status letters (`??`, ` M`, `A `, …).
    status: String,
    /// The file's content when the status was taken.
    fingerprint: Fingerprint,
}

/// A cheap identity of a file's content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Fingerprint {
    /// No file there.
    Missing,
    /// A directory (a nested repository or submodule).
    Dir,
    /// Present but not readable.
    Unreadable,
    /// Length and hash of the bytes.
    Content { len: u64, hash: u64 },
    /// A large file: length and modification time.
    Large { len: u64, modified_nanos: u128 },
}

impl FileSnapshot {
    /// Records the state of `working_dir` before a run. Never fails: outside git it records nothing.
    /// Nothing under `.orch/` is looked at (see [`FileSnapshot::take_excluding`]).
    pub async fn take(runtime: &dyn Runtime, working_dir: &Path) -> FileSnapshot {
        Self::take_excluding(runtime, working_dir, &[]).await
    }

    /// [`FileSnapshot::take`] that also never opens (nor, in [`track_run`], reports) the files in
    /// `private`: a store's own files ([`Store::local_files`](crate::store::Store::local_files)), which
    /// orch must not open outside the database engine. `.orch/` of the working directory (and of the
    /// repository's top) is always left out.
    pub async fn take_excluding(runtime: &dyn Runtime, working_dir: &Path, private: &[PathBuf]) -> FileSnapshot {
        let wd = absolute(working_dir);
        let mut private = Private::new(&wd, private);
        // Spawning `git` costs milliseconds; a directory with no `.git` above it (and no GIT_DIR) is
        // not in a work tree, which a few `stat` calls tell.
        let real = std::fs::canonicalize(&wd).unwrap_or_else(|_| wd.clone());
        let has_git = |p: &Path| p.ancestors().any(|a| a.join(".git").exists());
        if std::env::var_os("GIT_DIR").is_none() && !has_git(&wd) && !has_git(&real) {
            return FileSnapshot { git: None, private };
        }
        let Some(top) = git_toplevel(runtime, &wd).await else {
            return FileSnapshot { git: None, private };
        };
        private.add_dir(&top.join(".orch"));
        let base = match git::head(runtime, &top).await {
            Some(head) => Some(head),
            None => git::empty_tree(runtime, &top).await,
        };
        let Some(status) = git::status(runtime, &top).await else {
            return FileSnapshot { git: None, private };
        };
        let entries = fingerprinted(&top, status, &private);
        FileSnapshot { git: Some(GitState { top, base, entries }), private }
    }

    /// Whether the working directory was inside a git work tree (with a working `git`) at snapshot time.
    pub fn in_git(&self) -> bool {
        self.git.is_some()
    }

    /// The top of the git work tree, when in git.
    pub fn repo_root(&self) -> Option<&Path> {
        self.git.as_ref().map(|g| g.top.as_path())
    }

    /// The paths (relative to [`FileSnapshot::repo_root`], `/`-separated) that were dirty or untracked.
    pub fn dirty_paths(&self) -> impl Iterator<Item = &str> + '_ {
        self.git.iter().flat_map(|g| g.entries.keys().map(String::as_str))
    }
}

/// The `FileTracking` event of one run, or `None` when the run read and changed nothing.
///
/// `before` is the snapshot taken just before the run in the same `working_dir`; `events` are the run's
/// events (only them: the report is per run). Files are reported relative to `working_dir` with `/`
/// separators, or by absolute path when outside it; both lists are sorted by path. `text_seq` is the seq of
/// the last `Text` event in `events`.
pub async fn track_run(
    runtime: &dyn Runtime,
    working_dir: &Path,
    before: &FileSnapshot,
    events: &[EventRecord],
) -> Option<Event> {
    let wd = absolute(working_dir);
    let canon_wd = std::fs::canonicalize(&wd).unwrap_or_else(|_| wd.clone());
    let text_seq = events.iter().rev().find(|r| matches!(r.event, Event::Text { .. })).map(|r| r.seq);
    let calls = file_calls(events);

    // Git is used only when it was at the snapshot and still shows the same repository.
    let mut git = None;
    if let Some(state) = &before.git {
        match git_toplevel(runtime, &wd).await {
            Some(top) if top == state.top => git = Some(state),
            other => {
                tracing::debug!(?other, before = ?state.top, "file tracking: git work tree changed; not using git")
            }
        }
    }
    let paths = PathContext { wd, canon_wd, top: git.map(|g| g.top.clone()) };

    // Every file a change tool named, with the tools in call order and whether each succeeded.
    let mut targets: BTreeMap<String, Target> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.kind == CallKind::Change) {
        let resolved = paths.resolve_tool_path(&call.path);
        let target = targets.entry(resolved.display.clone()).or_insert_with(|| Target::new(resolved));
        target.tools.push((call.tool.clone(), call.ok));
    }

    // What git shows changed since the snapshot.
    let mut after: BTreeMap<String, Entry> = BTreeMap::new();
    if let Some(state) = git
        && let Some(status) = git::status(runtime, &state.top).await
    {
        after = fingerprinted(&state.top, status, &before.private);
        let committed = committed_paths(runtime, state).await;
        for repo_rel in changed_paths(state, &after, &committed) {
            let resolved = paths.resolve_repo_path(&repo_rel);
            if let Some(target) = targets.get_mut(&resolved.display) {
                target.git_changed = true;
            } else if !is_orch_internal(&resolved.display, &repo_rel)
                && !before.private.contains(&state.top.join(&repo_rel))
            {
                let mut target = Target::new(resolved);
                target.git_changed = true;
                targets.insert(target.resolved.display.clone(), target);
            }
        }
    }

    let mut file_changes = Vec::new();
    for target in targets.into_values() {
        let tools = target.reported_tools();
        if tools.is_empty() {
            continue;
        }
        let change = match (git, target.resolved.repo_rel.as_deref()) {
            (Some(state), Some(repo_rel)) => {
                git_change(runtime, state, &after, &target.resolved, repo_rel, tools).await
            }
            _ => plain_change(&target.resolved, tools),
        };
        file_changes.push(change);
    }

    let changed: BTreeSet<&str> = file_changes.iter().map(|c| c.path.as_str()).collect();
    let mut reads: BTreeMap<String, FileRead> = BTreeMap::new();
    for call in calls.iter().filter(|c| c.kind == CallKind::Read && c.ok) {
        let resolved = paths.resolve_tool_path(&call.path);
        if changed.contains(resolved.display.as_str()) || reads.contains_key(&resolved.display) {
            continue;
        }
        let read = FileRead {
            path: resolved.display.clone(),
            absolute_path: resolved.abs.to_string_lossy().into_owned(),
            // orch's own files are never opened (a file tool may still name them).
            line_count: if before.private.contains(&resolved.abs) { None } else { line_count(&resolved.abs) },
        };
        reads.insert(resolved.display, read);
    }
    let read_files: Vec<FileRead> = reads.into_values().collect();

    if file_changes.is_empty() && read_files.is_empty() {
        return None;
    }
    Some(Event::FileTracking { text_seq, file_changes, read_files })
}

/// Counts the lines a unified diff adds and removes: `+` and `-` lines inside hunks, so the `+++`/`---`
/// file headers are not counted.
pub fn count_diff_lines(diff: &str) -> (u64, u64) {
    let (mut added, mut removed) = (0u64, 0u64);
    let mut in_hunk = false;
    for line in diff.lines() {
        if line.starts_with("diff ") {
            in_hunk = false;
        } else if line.starts_with("@@") {
            in_hunk = true;
        } else if in_hunk {
            if line.starts_with('+') {
                added += 1;
            } else if line.starts_with('-') {
                removed += 1;
            }
        }
    }
    (added, removed)
}

/// The one-line description of a change: `Created hello.py (+3 lines)`, `Modified src/lib.rs (+2 -1 lines)`,
/// `Deleted old.txt (-4 lines)`; without a diff, `Write on notes.txt` (or `Deleted notes.txt`).
pub fn summarize_change(change: &FileChange) -> String {
    let path = &change.path;
    let binary = change.diff.as_deref().is_some_and(|d| d.lines().any(|l| l.starts_with("Binary files ")));
    match (&change.status, &change.diff) {
        (_, Some(_)) if binary => format!("{} {path} (binary)", status_word(&change.status)),
        (FileChangeStatus::Created, Some(_)) => format!("Created {path} (+{} lines)", change.lines_added),
        (FileChangeStatus::Deleted, Some(_)) => format!("Deleted {path} (-{} lines)", change.lines_removed),
        (FileChangeStatus::Modified, Some(_)) => {
            format!("Modified {path} (+{} -{} lines)", change.lines_added, change.lines_removed)
        }
        (FileChangeStatus::Deleted, None) => format!("Deleted {path}"),
        (_, None) if change.tools.is_empty() => format!("{} {path}", status_word(&change.status)),
        (_, None) => format!("{} on {path}", change.tools.join(", ")),
    }
}

fn status_word(status: &FileChangeStatus) -> &'static str {
    match status {
        FileChangeStatus::Created => "Created",
        FileChangeStatus::Modified => "Modified",
        FileChangeStatus::Deleted => "Deleted",
    }
}

// ---- the run's tool calls ----

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum CallKind {
    Change,
    Read,
}

/// One file tool call of the run.
#[derive(Debug)]
struct FileCall {
    tool: String,
    kind: CallKind,
    /// The path as the tool was given it.
    path: String,
    /// Its result came back and was not an error.
    ok: bool,
}

/// The run's file tool calls in order, each paired with its result by `tool_use_id`.
fn file_calls(events: &[EventRecord]) -> Vec<FileCall> {
    let mut calls: Vec<(String, FileCall)> = Vec::new();
    for record in events {
        match &record.event {
            Event::ToolUse { tool_name, tool_input, tool_use_id } => {
                let kind = if CHANGE_TOOLS.contains(&tool_name.as_str()) {
                    CallKind::Change
                } else if READ_TOOLS.contains(&tool_name.as_str()) {
                    CallKind::Read
                } else {
                    continue;
                };
                let Some(path) = tool_path(tool_name, tool_input) else {
                    continue;
                };
                let call = FileCall { tool: tool_name.clone(), kind, path, ok: false };
                calls.push((tool_use_id.clone(), call));
            }
            Event::ToolResult { tool_use_id, is_error, .. } => {
                for (id, call) in calls.iter_mut() {
                    if id == tool_use_id {
                        call.ok = !*is_error;
                    }
                }
            }
            _ => {}
        }
    }
    calls.into_iter().map(|(_, call)| call).collect()
}

fn tool_path(tool_name: &str, input: &Value) -> Option<String> {
    let key = if tool_name == "NotebookEdit" { "notebook_path" } else { "file_path" };
    let path = input.get(key).and_then(Value::as_str)?;
    let path = path.trim();
    (!path.is_empty()).then(|| path.to_string())
}

// ---- paths ----

/// A file as reported: its display path, absolute path and path inside the git work tree.
#[derive(Debug, Clone)]
struct Resolved {
    /// Relative to the working dir with `/`, or absolute when outside it.
    display: String,
    /// Absolute, lexically normalised.
    abs: PathBuf,
    /// Relative to the top of the work tree with `/`, when inside it (and git is used).
    repo_rel: Option<String>,
}

/// A file a change tool named or git showed changed.
#[derive(Debug)]
struct Target {
    resolved: Resolved,
    /// Tools that named it, in call order, with whether the call succeeded.
    tools: Vec<(String, bool)>,
    /// Git shows it changed during the run.
    git_changed: bool,
}

impl Target {
    fn new(resolved: Resolved) -> Self {
        Target { resolved, tools: Vec::new(), git_changed: false }
    }

    /// The tools to report (empty: not a change of this run). A failed call counts only when git shows
    /// the file changed; a change git shows and no tool names is `Bash`'s.
    fn reported_tools(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for (tool, ok) in &self.tools {
            if (*ok || self.git_changed) && !out.contains(tool) {
                out.push(tool.clone());
            }
        }
        if out.is_empty() && self.git_changed {
            out.push(SHELL_TOOL.to_string());
        }
        out
    }
}

struct PathContext {
    /// The working dir, absolute and lexically normalised.
    wd: PathBuf,
    /// The working dir with symlinks resolved (as git reports paths).
    canon_wd: PathBuf,
    /// The top of the git work tree, when git is used.
    top: Option<PathBuf>,
}

impl PathContext {
    fn resolve_tool_path(&self, raw: &str) -> Resolved {
        let path = Path::new(raw);
        let joined = if path.is_absolute() { path.to_path_buf() } else { self.wd.join(path) };
        self.resolve_abs(normalize(&joined))
    }

    fn resolve_repo_path(&self, repo_rel: &str) -> Resolved {
        let top = self.top.clone().unwrap_or_default();
        let mut resolved = self.resolve_abs(normalize(&top.join(repo_rel)));
        resolved.repo_rel = Some(repo_rel.to_string());
        resolved
    }

    fn resolve_abs(&self, abs: PathBuf) -> Resolved {
        let rel = abs
            .strip_prefix(&self.wd)
            .or_else(|_| abs.strip_prefix(&self.canon_wd))
            .ok()
            .filter(|rel| !rel.as_os_str().is_empty())
            .map(Path::to_path_buf);
        let resolved = match rel {
            Some(rel) => {
                let repo_rel =
                    self.top.as_ref().and_then(|top| self.canon_wd.join(&rel).strip_prefix(top).ok().map(slash_path));
                Resolved { display: slash_path(&rel), abs: self.wd.join(&rel), repo_rel }
            }
            None => {
                // Outside the working dir: resolve symlinks in its folder, as git's paths have them resolved.
                let abs = canonical_parent(&abs).unwrap_or(abs);
                let repo_rel = self.top.as_ref().and_then(|top| abs.strip_prefix(top).ok().map(slash_path));
                Resolved { display: abs.to_string_lossy().into_owned(), abs, repo_rel }
            }
        };
        resolved.without_empty_repo_rel()
    }
}

impl Resolved {
    fn without_empty_repo_rel(mut self) -> Self {
        if self.repo_rel.as_deref() == Some("") {
            self.repo_rel = None;
        }
        self
    }
}

/// `path` made absolute (against the current directory) and lexically normalised.
fn absolute(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return normalize(path);
    }
    match std::env::current_dir() {
        Ok(cwd) => normalize(&cwd.join(path)),
        Err(_) => normalize(path),
    }
}

/// `path` with its parent folder's symlinks resolved (the file itself need not exist).
fn canonical_parent(path: &Path) -> Option<PathBuf> {
    let name = path.file_name()?;
    let parent = std::fs::canonicalize(path.parent()?).ok()?;
    Some(parent.join(name))
}

/// Removes `.` and resolves `..` lexically (without touching the file system).
fn normalize(path: &Path) -> PathBuf {
    let mut out = PathBuf::new();
    for component in path.components() {
        match component {
            Component::CurDir => {}
            Component::ParentDir => match out.components().next_back() {
                Some(Component::Normal(_)) => {
                    out.pop();
                }
                Some(Component::RootDir | Component::Prefix(_)) => {}
                _ => out.push(".."),
            },
            other => out.push(other.as_os_str()),
        }
    }
    out
}

/// A relative path with `/` separators.
fn slash_path(path: &Path) -> String {
    path.components()
        .filter_map(|c| match c {
            Component::Normal(part) => Some(part.to_string_lossy().into_owned()),
            Component::ParentDir => Some("..".to_string()),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// orch's own files (its database under `.orch/`) change during every run; git alone does not report them.
fn is_orch_internal(display: &str, repo_rel: &str) -> bool {
    display.starts_with(".orch/") || repo_rel.starts_with(".orch/")
}

// ---- file contents ----

/// `git status` entries with their fingerprints, leaving out orch's own files before any is opened.
fn fingerprinted(top: &Path, status: Vec<(String, String)>, private: &Private) -> BTreeMap<String, Entry> {
    status
        .into_iter()
        .filter(|(path, _)| !private.contains(&top.join(path)))
        .map(|(path, status)| {
            let fingerprint = fingerprint(&top.join(&path));
            (path, Entry { status, fingerprint })
        })
        .collect()
}

fn fingerprint(path: &Path) -> Fingerprint {
    let Ok(meta) = std::fs::symlink_metadata(path) else {
        return Fingerprint::Missing;
    };
    if meta.is_dir() {
        return Fingerprint::Dir;
    }
    if meta.file_type().is_symlink() {
        // A symlink's content is its target.
        return match std::fs::read_link(path) {
            Ok(target) => {
                let bytes = target.to_string_lossy();
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                hasher.write(bytes.as_bytes());
                Fingerprint::Content { len: bytes.len() as u64, hash: hasher.finish() }
            }
            Err(_) => Fingerprint::Unreadable,
        };
    }
    if meta.len() > CONTENT_HASH_LIMIT {
        let modified_nanos = meta
            .modified()
            .ok()
            .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        return Fingerprint::Large { len: meta.len(), modified_nanos };
    }
    let Ok(mut file) = std::fs::File::open(path) else {
        return Fingerprint::Unreadable;
    };
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut len = 0u64;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                hasher.write(&buf[..n]);
                len += n as u64;
            }
            Err(ref e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return Fingerprint::Unreadable,
        }
    }
    Fingerprint::Content { len, hash: hasher.finish() }
}

/// Lines in the file: its `\n`s, plus one for a last line without one. `None` if it cannot be read.
fn line_count(path: &Path) -> Option<u64> {
    let mut file = std::fs::File::open(path).ok()?;
    let mut buf = vec![0u8; 64 * 1024];
    let (mut lines, mut last) = (0u64, None);
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => {
                lines += buf[..n].iter().filter(|&&b| b == b'\n').count() as u64;
                last = Some(buf[n - 1]);
            }
            Err(ref e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(_) => return None,
        }
    }
    match last {
        Some(b) if b != b'\n' => Some(lines + 1),
        _ => Some(lines),
    }
}

// ---- building changes ----

/// A change outside git: no diff, no line counts.
fn plain_change(resolved: &Resolved, tools: Vec<String>) -> FileChange {
    let status = if std::fs::symlink_metadata(&resolved.abs).is_ok() {
        FileChangeStatus::Modified
    } else {
        FileChangeStatus::Deleted
    };
    finish_change(resolved, status, None, tools)
}

/// A change inside the git work tree, with its diff against the commit the run started from.
async fn git_change(
    runtime: &dyn Runtime,
    state: &GitState,
    after: &BTreeMap<String, Entry>,
    resolved: &Resolved,
    repo_rel: &str,
    tools: Vec<String>,
) -> FileChange {
    let top = &state.top;
    let meta = std::fs::symlink_metadata(&resolved.abs).ok();
    let exists = meta.is_some();
    let after_status = after.get(repo_rel).map(|e| e.status.as_str());
    let base = state.base.as_deref().unwrap_or("HEAD");

    let mut diff = git::diff(runtime, top, base, repo_rel).await;
    if diff.is_none() && meta.as_ref().is_some_and(|m| !m.is_dir()) {
        let untracked = match after_status {
            Some(status) => status == "??",
            // Not in the status: clean, or ignored. Ignored files are not in the index.
            None => !git::is_tracked(runtime, top, repo_rel).await,
        };
        if untracked {
            diff = git::diff_new_file(runtime, top, repo_rel).await;
        }
    }

    let status = if !exists {
        FileChangeStatus::Deleted
    } else if let Some(old) = state.entries.get(repo_rel) {
        // It was dirty or untracked before the run: it existed unless git showed it deleted.
        if old.fingerprint == Fingerprint::Missing { FileChangeStatus::Created } else { FileChangeStatus::Modified }
    } else if after_status.is_some_and(|s| s == "??" || s.starts_with('A'))
        || diff
            .as_deref()
            .is_some_and(|d| d.lines().take_while(|l| !l.starts_with("@@")).any(|l| l.starts_with("new file mode")))
    {
        FileChangeStatus::Created
    } else {
        FileChangeStatus::Modified
    };
    finish_change(resolved, status, Some(diff.unwrap_or_default()), tools)
}

/// Counts, clips and summarises. `diff: Some("")` means "git was asked and showed no difference".
fn finish_change(
    resolved: &Resolved,
    status: FileChangeStatus,
    diff: Option<String>,
    tools: Vec<String>,
) -> FileChange {
    let (lines_added, lines_removed) = diff.as_deref().map(count_diff_lines).unwrap_or((0, 0));
    let diff = diff.filter(|d| !d.is_empty()).map(clip_diff);
    let mut change = FileChange {
        path: resolved.display.clone(),
        absolute_path: resolved.abs.to_string_lossy().into_owned(),
        status,
        lines_added,
        lines_removed,
        diff,
        summary: String::new(),
        tools,
    };
    change.summary = summarize_change(&change);
    change
}

/// Keeps at most [`MAX_STORED_DIFF`] bytes (on a char boundary) and says so when clipped.
fn clip_diff(diff: String) -> String {
    if diff.len() <= MAX_STORED_DIFF {
        return diff;
    }
    let mut end = MAX_STORED_DIFF;
    while end > 0 && !diff.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}\n[diff truncated: {} of {} bytes shown]\n", &diff[..end], end, diff.len())
}

/// Repository paths whose content changed between the snapshot and `after`.
fn changed_paths(state: &GitState, after: &BTreeMap<String, Entry>, committed: &[String]) -> BTreeSet<String> {
    let mut candidates: BTreeSet<&str> = after.keys().map(String::as_str).collect();
    candidates.extend(state.entries.keys().map(String::as_str));
    candidates.extend(committed.iter().map(String::as_str));
    candidates
        .into_iter()
        .filter(|path| match state.entries.get(*path) {
            // Dirty before: changed if its content changed (staging or committing it alone is no change).
            Some(old) => {
                let now = after.get(*path).map(|e| e.fingerprint).unwrap_or_else(|| fingerprint(&state.top.join(path)));
                now != old.fingerprint
            }
            // Clean before and dirty now, or changed by a commit made during the run.
            None => true,
        })
        .map(str::to_string)
        .collect()
}

/// Paths changed by commits made during the run (`HEAD` moved away from the snapshot's base).
async fn committed_paths(runtime: &dyn Runtime, state: &GitState) -> Vec<String> {
    let Some(base) = state.base.as_deref() else {
        return Vec::new();
    };
    let Some(head) = git::head(runtime, &state.top).await else {
        return Vec::new();
    };
    if head == base {
        return Vec::new();
    }
    git::changed_between(runtime, &state.top, base, "HEAD").await.unwrap_or_default()
}

async fn git_toplevel(runtime: &dyn Runtime, wd: &Path) -> Option<PathBuf> {
    git::toplevel(runtime, wd).await.map(|top| normalize(&top))
}
