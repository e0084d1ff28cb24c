//! Change review: what the agents changed, one "turn" per agent run: per-turn diffs, the net change of
//! a run per file (one diff from the file as the run's first turn found it to the file as its last turn
//! left it), and a warning when two agents working at the same time changed the same file.
//!
//! A turn comes from the run's `FileTracking` event, which the engine appends after a background run;
//! its diffs are git's, against the commit the run started from (outside git it has none, and the
//! run's own calls give them as below). Runs nobody tracks (a workflow's steps run in the foreground)
//! are read from their own successful `Write`, `Edit` and `MultiEdit` calls: the turn ends at the run's `Result`, and its diffs are made here, likewise against the file as
//! the log first knew it (no file before a first `Write`: created). An `Edit` of a file the log never saw
//! whole shows its old and new text without line numbers.
//!
//! A turn's span is from the agent's first event after its previous turn to its end. The net change
//! composes the turns' diffs (see [`crate::netdiff`]): two diffs against the same commit give the
//! change between them, a diff against the commit the previous turn made follows it. When the diffs
//! cannot be composed (clipped, binary, no diff outside git) the turns' diffs are listed instead.

use std::collections::BTreeMap;

use orch_core::wire::{Event, EventRecord, FileChange, FileChangeStatus, Id};
use serde_json::Value;

use crate::netdiff::{self, Hunk, Patch};

/// One agent run's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The seq of the event that ends it (`FileTracking`, or the run's `Result`).
    pub seq: u64,
    /// The agent.
    pub agent: Id,
    /// The run's span, ms since the epoch.
    pub start: f64,
    /// Its end (that event's time).
    pub end: f64,
    /// The files it changed.
    pub files: Vec<FileChange>,
}

/// A file as the log's tool calls tell it.
#[derive(Debug, Default)]
struct Known {
    /// A tool call named it before.
    seen: bool,
    /// Before the first change the log shows: `Some(None)` no file, `None` not known.
    base: Option<Option<String>>,
    /// Now, when known.
    now: Option<String>,
}

/// The change of `path` a run made, by its tool calls, against the file as first known.
fn derived(path: &str, k: &Known, run: Changed) -> FileChange {
    let Changed { tools, edits, created } = run;
    let (diff, added, removed) = match (&k.base, &k.now) {
        (Some(base), Some(now)) => {
            let (d, a, r) = netdiff::files(path, base.as_deref(), Some(now));
            (Some(d).filter(|d| !d.is_empty()), a, r)
        }
        // The old text is not known whole: the edits' own text (or what was written), without positions.
        _ => {
            let mut d = netdiff::header(path, true, true);
            let (mut a, mut r) = (0, 0);
            let written = k.now.clone().filter(|_| edits.is_empty()).map(|now| (String::new(), now));
            for (old, new) in edits.iter().chain(&written) {
                d.push_str("@@ edit @@\n");
                for l in old.lines() {
                    r += 1;
                    d.push_str(&format!("-{l}\n"));
                }
                for l in new.lines() {
                    a += 1;
                    d.push_str(&format!("+{l}\n"));
                }
            }
            (Some(d), a, r)
        }
    };
    let status = if created { FileChangeStatus::Created } else { FileChangeStatus::Modified };
    FileChange {
        path: path.to_string(),
        absolute_path: String::new(),
        status,
        lines_added: added,
        lines_removed: removed,
        diff,
        summary: String::new(),
        tools,
    }
}

/// What one run did to one file by its tool calls.
#[derive(Debug, Default)]
struct Changed {
    /// The tools, in the order first used.
    tools: Vec<String>,
    /// The edits' (old, new) text.
    edits: Vec<(String, String)>,
    /// Its first call wrote a file no call had named before.
    created: bool,
}

/// A run's changes read from its tool calls, by path. (Small lists searched in order, here and below:
/// each map type of its own would add its code to the wasm bundle.)
type Pending = Vec<(String, Changed)>;

/// The entry of `key` in `list`, added with `V::default()` when missing.
fn entry<K: PartialEq, V: Default>(list: &mut Vec<(K, V)>, key: K) -> &mut V {
    let at = match list.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            list.push((key, V::default()));
            list.len() - 1
        }
    };
    &mut list[at].1
}

/// What [`apply`] tells of a call: the path, the edits' (old, new) text, whether it created the file.
type Applied = (String, Vec<(String, String)>, bool);

/// Applies a successful file tool call to what is known of the file; returns the path, the edits'
/// (old, new) text, and whether it wrote a file no call had named before.
fn apply(files: &mut Vec<(String, Known)>, tool: &str, input: &Value) -> Option<Applied> {
    let s = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_string);
    let path = s(input, "file_path")?.trim().to_string();
    let k = entry(files, path.clone());
    let new_file = !k.seen;
    let edits: Vec<(String, String, bool)> = match tool {
        "Write" => {
            // Seen first here: taken as created. Seen before but not known whole: the base stays unknown.
            if !k.seen {
                k.base = Some(None);
            }
            k.seen = true;
            k.now = Some(s(input, "content")?);
            return Some((path, Vec::new(), new_file));
        }
        "Edit" => vec![(s(input, "old_string")?, s(input, "new_string")?, input["replace_all"] == true)],
        "MultiEdit" => input
            .get("edits")?
            .as_array()?
            .iter()
            .filter_map(|e| Some((s(e, "old_string")?, s(e, "new_string")?, e["replace_all"] == true)))
            .collect(),
        _ => return None,
    };
    k.seen = true;
    for (old, new, all) in &edits {
        k.now = match k.now.take() {
            Some(text) if !old.is_empty() && text.contains(old.as_str()) => {
                Some(if *all { text.replace(old.as_str(), new) } else { text.replacen(old.as_str(), new, 1) })
            }
            _ => None,
        };
    }
    if k.now.is_none() {
        // The edit did not apply to the text known: nothing is known of the file any more.
        k.base = None;
    }
    Some((path, edits.into_iter().map(|(o, n, _)| (o, n)).collect(), false))
}

/// The turns of `records` (in seq order) that changed files, in the order they ended.
pub fn turns<'a>(records: impl IntoIterator<Item = &'a EventRecord>) -> Vec<Turn> {
    let mut since: BTreeMap<Id, f64> = BTreeMap::new();
    let mut files: Vec<(String, Known)> = Vec::new();
    // File tool calls waiting for their result: id, agent, tool, input.
    let mut calls: Vec<(&str, Id, &str, &Value)> = Vec::new();
    let mut pending: Vec<(Id, Pending)> = Vec::new();
    // Runs that ended with changes read from their calls, until a `FileTracking` of theirs replaces
    // them or the agent starts its next run.
    let mut ended: Vec<Turn> = Vec::new();
    let take = |list: &mut Vec<(Id, Pending)>, agent: Id| {
        list.iter().position(|(a, _)| *a == agent).map(|at| list.swap_remove(at).1)
    };
    let mut out = Vec::new();
    for r in records {
        let Some(agent) = r.keys.agent_id else { continue };
        let at = r.timestamp.timestamp_millis() as f64;
        let active = matches!(
            r.event,
            Event::UserPromptSubmit { .. } | Event::Text { .. } | Event::Thinking { .. } | Event::ToolUse { .. }
        );
        if active && let Some(i) = ended.iter().position(|t| t.agent == agent) {
            out.push(ended.swap_remove(i));
            since.insert(agent, at);
        }
        let start = *since.entry(agent).or_insert(at);
        match &r.event {
            Event::ToolUse { tool_name, tool_input, tool_use_id } => {
                if matches!(tool_name.as_str(), "Write" | "Edit" | "MultiEdit") {
                    calls.push((tool_use_id.as_str(), agent, tool_name.as_str(), tool_input));
                }
            }
            Event::ToolResult { tool_use_id, is_error, .. } => {
                if let Some(i) = calls.iter().position(|c| c.0 == tool_use_id.as_str()) {
                    let (_, who, tool, input) = calls.swap_remove(i);
                    if !is_error && let Some((path, edits, created)) = apply(&mut files, tool, input) {
                        let c = entry(entry(&mut pending, who), path);
                        c.created |= created && c.tools.is_empty();
                        if !c.tools.iter().any(|t| t == tool) {
                            c.tools.push(tool.to_string());
                        }
                        c.edits.extend(edits);
                    }
                }
            }
            Event::Result { .. } => {
                if let Some(p) = take(&mut pending, agent) {
                    let changed: Vec<FileChange> = p
                        .into_iter()
                        .map(|(path, run)| {
                            let none = Known::default();
                            let k = files.iter().find(|(p, _)| *p == path).map_or(&none, |(_, k)| k);
                            derived(&path, k, run)
                        })
                        .collect();
                    ended.retain(|t| t.agent != agent);
                    ended.push(Turn { seq: r.seq, agent, start, end: at, files: changed });
                }
            }
            Event::FileTracking { file_changes, .. } => {
                since.remove(&agent);
                take(&mut pending, agent);
                // Outside git the engine reports no diff: the run's own calls may tell it.
                let read = ended.iter().position(|t| t.agent == agent).map(|i| ended.swap_remove(i).files);
                let mut reported = file_changes.clone();
                for f in reported.iter_mut().filter(|f| f.diff.is_none()) {
                    if let Some(d) = read.iter().flatten().find(|d| d.path == f.path && d.diff.is_some()) {
                        (f.diff, f.lines_added, f.lines_removed) = (d.diff.clone(), d.lines_added, d.lines_removed);
                    }
                }
                if !reported.is_empty() {
                    out.push(Turn { seq: r.seq, agent, start, end: at, files: reported });
                }
            }
            _ => {}
        }
    }
    out.extend(ended);
    out.sort_unstable_by_key(|t| t.seq);
    out
}

/// One file's net change over a run's turns.
#[derive(Debug, Clone, PartialEq)]
pub struct NetFile {
    /// The path (as the agents reported it).
    pub path: String,
    /// Created (if the first turn created it), deleted (if the last deleted it), else modified.
    pub status: FileChangeStatus,
    /// Lines added: of the net diff, or summed over the turns when there is none.
    pub added: u64,
    /// Lines removed, likewise.
    pub removed: u64,
    /// The net diff as unified diff text (empty: the turns undid each other); `None` when the turns'
    /// diffs could not be composed, and [`NetFile::turns`] are shown instead.
    pub diff: Option<String>,
    /// Each turn's change: its seq, agent and diff.
    pub turns: Vec<(u64, Id, Option<String>)>,
}

/// The step from the file as turn `prev` left it to the file as `cur` left it. Both diffs are against
/// a commit: the same one (the change between them), or `cur`'s is the one `prev` ended at.
fn step(prev: &Patch, cur: &Patch) -> Option<Vec<Hunk>> {
    match (&prev.old_id, &prev.new_id, &cur.old_id) {
        (Some(p_old), Some(p_new), Some(c_old)) if p_old != c_old => (p_new == c_old).then(|| cur.hunks.clone()),
        _ => netdiff::compose(&netdiff::invert(&prev.hunks), &cur.hunks).ok(),
    }
}

/// The net diff of `changes` (one file's, in order) over `first..=last`, with its lines added and removed.
fn compose(path: &str, changes: &[&FileChange], first: usize, last: usize) -> Option<(String, u64, u64)> {
    if changes.iter().all(|c| c.diff.is_none()) {
        return None;
    }
    // A change without a diff among ones with diffs: git showed no difference from the commit.
    let patch = |c: &FileChange| c.diff.as_deref().map_or_else(|| Some(Patch::default()), netdiff::parse);
    let mut net: Vec<Hunk> = Vec::new();
    for j in first..=last {
        let cur = patch(changes[j])?;
        let step = match j.checked_sub(1) {
            None => cur.hunks,
            Some(p) => step(&patch(changes[p])?, &cur)?,
        };
        net = netdiff::compose(&net, &step).ok()?;
    }
    let (created, deleted) = (changes[first].status, changes[last].status);
    let mut text = netdiff::header(path, created != FileChangeStatus::Created, deleted != FileChangeStatus::Deleted);
    let (added, removed) = netdiff::write_hunks(&mut text, &net);
    if added + removed == 0 {
        text.clear();
    }
    Some((text, added, removed))
}

/// The net change per file of the turns whose agent passes `keep`, by path: from the file as the first
/// kept turn found it (as the turn before it, of any agent, left it) to the file as the last left it.
pub fn net(turns: &[Turn], keep: impl Fn(Id) -> bool) -> Vec<NetFile> {
    let mut by_path: Vec<(&str, Vec<(&Turn, &FileChange)>)> = Vec::new();
    for t in turns {
        for f in &t.files {
            entry(&mut by_path, f.path.as_str()).push((t, f));
        }
    }
    by_path.sort_unstable_by(|a, b| a.0.cmp(b.0));
    let mut out = Vec::new();
    for (path, list) in by_path {
        let kept: Vec<usize> = (0..list.len()).filter(|&i| keep(list[i].0.agent)).collect();
        let (Some(&first), Some(&last)) = (kept.first(), kept.last()) else { continue };
        let changes: Vec<&FileChange> = list.iter().map(|(_, f)| *f).collect();
        let status = match (changes[first].status, changes[last].status) {
            (_, FileChangeStatus::Deleted) => FileChangeStatus::Deleted,
            (FileChangeStatus::Created, _) => FileChangeStatus::Created,
            (_, s) => s,
        };
        let turns: Vec<(u64, Id, Option<String>)> =
            kept.iter().map(|&i| (list[i].0.seq, list[i].0.agent, list[i].1.diff.clone())).collect();
        let (diff, added, removed) = match compose(path, &changes, first, last) {
            Some((d, a, r)) => (Some(d), a, r),
            None => {
                let sum = |f: fn(&FileChange) -> u64| kept.iter().map(|&i| f(changes[i])).sum();
                (None, sum(|c| c.lines_added), sum(|c| c.lines_removed))
            }
        };
        out.push(NetFile { path: path.to_string(), status, added, removed, diff, turns });
    }
    out
}

/// Two or more agents changing one file while they worked at the same time.
#[derive(Debug, Clone, PartialEq)]
pub struct Overlap {
    /// The file.
    pub path: String,
    /// The agents, in the order they first changed it.
    pub agents: Vec<Id>,
}

/// The files changed by turns of different agents whose spans overlap.
pub fn overlaps(turns: &[Turn]) -> Vec<Overlap> {
    let mut found: BTreeMap<String, Vec<Id>> = BTreeMap::new();
    for (i, a) in turns.iter().enumerate() {
        for b in turns.iter().skip(i + 1) {
            if a.agent == b.agent || a.end < b.start || b.end < a.start {
                continue;
            }
            for fa in &a.files {
                let same = |fb: &&FileChange| {
                    fb.path == fa.path || (!fa.absolute_path.is_empty() && fb.absolute_path == fa.absolute_path)
                };
                if b.files.iter().any(|fb| same(&fb)) {
                    let agents = found.entry(fa.path.clone()).or_default();
                    for id in [a.agent, b.agent] {
                        if !agents.contains(&id) {
                            agents.push(id);
                        }
                    }
                }
            }
        }
    }
    found.into_iter().map(|(path, agents)| Overlap { path, agents }).collect()
}

#[cfg(test)]
#[path = "changes_tests.rs"]
mod tests;
