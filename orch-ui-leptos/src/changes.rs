//! Change review: what the agents changed, from the stream's `FileTracking` events (one per agent run,
//! a "turn"): per-turn diffs, the net change of a run per file (every turn's change to it, in order,
//! with the lines added and removed summed), and a warning when two agents working at the same time
//! changed the same file.
//!
//! A turn's span is from the agent's first event after its previous `FileTracking` to this one. The net
//! change lists the turns' diffs in order rather than one merged diff: the log keeps each turn's diff
//! against the file as that turn found it, not the files' contents.

use std::collections::BTreeMap;

use orch_core::wire::{Event, EventRecord, FileChange, FileChangeStatus, Id};

/// One agent run's changes.
#[derive(Debug, Clone, PartialEq)]
pub struct Turn {
    /// The `FileTracking` event's seq.
    pub seq: u64,
    /// The agent.
    pub agent: Id,
    /// The run's span, ms since the epoch.
    pub start: f64,
    /// Its end (the `FileTracking` event's time).
    pub end: f64,
    /// The files it changed.
    pub files: Vec<FileChange>,
}

/// The turns of `records` (in seq order) that changed files.
pub fn turns<'a>(records: impl IntoIterator<Item = &'a EventRecord>) -> Vec<Turn> {
    let mut since: BTreeMap<Id, f64> = BTreeMap::new();
    let mut out = Vec::new();
    for r in records {
        let Some(agent) = r.keys.agent_id else { continue };
        let at = r.timestamp.timestamp_millis() as f64;
        let start = *since.entry(agent).or_insert(at);
        if let Event::FileTracking { file_changes, .. } = &r.event {
            since.remove(&agent);
            if !file_changes.is_empty() {
                out.push(Turn { seq: r.seq, agent, start, end: at, files: file_changes.clone() });
            }
        }
    }
    out
}

/// One file's net change over a run's turns.
#[derive(Debug, Clone, PartialEq)]
pub struct NetFile {
    /// The path (as the agents reported it).
    pub path: String,
    /// Created (if the first turn created it), deleted (if the last deleted it), else modified.
    pub status: FileChangeStatus,
    /// Lines added, summed over the turns.
    pub added: u64,
    /// Lines removed, summed over the turns.
    pub removed: u64,
    /// Each turn's change: its seq, agent and diff.
    pub turns: Vec<(u64, Id, Option<String>)>,
}

/// The net change per file of the turns whose agent passes `keep`, by path.
pub fn net(turns: &[Turn], keep: impl Fn(Id) -> bool) -> Vec<NetFile> {
    let mut files: BTreeMap<String, NetFile> = BTreeMap::new();
    for t in turns.iter().filter(|t| keep(t.agent)) {
        for f in &t.files {
            let n = files.entry(f.path.clone()).or_insert_with(|| NetFile {
                path: f.path.clone(),
                status: f.status,
                added: 0,
                removed: 0,
                turns: Vec::new(),
            });
            n.added += f.lines_added;
            n.removed += f.lines_removed;
            n.turns.push((t.seq, t.agent, f.diff.clone()));
            let created = n.status == FileChangeStatus::Created;
            n.status = match f.status {
                FileChangeStatus::Deleted => FileChangeStatus::Deleted,
                _ if created => FileChangeStatus::Created,
                other => other,
            };
        }
    }
    files.into_values().collect()
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
mod tests {
    use super::*;
    use orch_core::wire::EventKeys;

    fn change(path: &str, status: FileChangeStatus, added: u64) -> FileChange {
        FileChange {
            path: path.into(),
            absolute_path: format!("/w/{path}"),
            status,
            lines_added: added,
            lines_removed: 1,
            diff: Some(format!("+{path}")),
            summary: String::new(),
            tools: Vec::new(),
        }
    }

    fn rec(seq: u64, secs: i64, agent: u128, event: Event) -> EventRecord {
        EventRecord {
            seq,
            timestamp: chrono::DateTime::from_timestamp(1_800_000_000 + secs, 0).unwrap_or_default(),
            keys: EventKeys { agent_id: Some(Id::from_u128(agent)), ..EventKeys::default() },
            event,
        }
    }

    fn tracking(files: Vec<FileChange>) -> Event {
        Event::FileTracking { text_seq: None, file_changes: files, read_files: Vec::new() }
    }

    fn text() -> Event {
        Event::Text { text: "working".into() }
    }

    #[test]
    fn turns_net_changes_and_agents_editing_one_file_at_once() {
        use FileChangeStatus::*;
        let records = vec![
            rec(1, 0, 1, text()),
            rec(2, 1, 2, text()),
            rec(3, 5, 1, tracking(vec![change("a.rs", Created, 10), change("b.rs", Modified, 2)])),
            rec(4, 6, 2, tracking(vec![change("b.rs", Modified, 3)])),
            // Agent 1's second turn, after agent 2 finished: no overlap with it.
            rec(5, 10, 1, text()),
            rec(6, 12, 1, tracking(vec![change("a.rs", Modified, 4)])),
            rec(7, 13, 3, text()),
            rec(8, 14, 3, tracking(vec![change("c.rs", Modified, 1)])),
            rec(9, 15, 2, tracking(vec![])),
        ];
        let turns = turns(&records);
        assert_eq!(turns.iter().map(|t| t.seq).collect::<Vec<_>>(), [3, 4, 6, 8], "empty turns are left out");
        assert_eq!((turns[1].start, turns[1].end), (1_800_000_001_000.0, 1_800_000_006_000.0));
        assert_eq!(turns[2].start, 1_800_000_010_000.0, "a turn starts after the agent's previous one");

        let one = net(&turns, |a| a == Id::from_u128(1));
        let a = &one[0];
        assert_eq!((a.path.as_str(), a.status, a.added, a.removed, a.turns.len()), ("a.rs", Created, 14, 2, 2));
        assert_eq!(one.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["a.rs", "b.rs"]);
        assert_eq!(net(&turns, |_| true).len(), 3);

        let o = overlaps(&turns);
        assert_eq!(o, [Overlap { path: "b.rs".into(), agents: vec![Id::from_u128(1), Id::from_u128(2)] }]);
    }
}
