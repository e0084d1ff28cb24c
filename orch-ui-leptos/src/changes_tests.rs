//! Tests of [`super`]: turns from `FileTracking` events and from untracked runs' tool calls, the net
//! diff of a run, and agents editing one file at once.

use super::*;
use orch_core::wire::{EndReason, EventKeys, Usage};
use serde_json::json;

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
    assert_eq!(a.diff, None, "diffs that are not unified diffs are listed per turn, their lines summed");
    assert_eq!(one.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(), ["a.rs", "b.rs"]);
    assert_eq!(net(&turns, |_| true).len(), 3);

    let o = overlaps(&turns);
    assert_eq!(o, [Overlap { path: "b.rs".into(), agents: vec![Id::from_u128(1), Id::from_u128(2)] }]);
}

const BASE: &str = "one\ntwo\nthree\nfour\nfive\nsix\nseven\neight\nnine\nten\n";

/// A change as the engine's file tracking reports it: git's diff of the file against the commit
/// `base_id` (blob ids `base_id..now_id`); `None` when git shows no difference.
fn git_change(now: &str, base_id: &str, now_id: &str) -> FileChange {
    let (body, added, removed) = crate::netdiff::files("s.txt", Some(BASE), Some(now));
    let diff =
        (!body.is_empty()).then(|| format!("diff --git a/s.txt b/s.txt\nindex {base_id}..{now_id} 100644\n{body}"));
    FileChange { lines_added: added, lines_removed: removed, diff, ..change("s.txt", FileChangeStatus::Modified, 0) }
}

#[test]
fn two_turns_editing_one_line_are_one_net_change_and_a_revert_is_none() {
    let five = |to: &str| BASE.replace("five", to);
    let records = vec![
        rec(1, 0, 1, text()),
        rec(2, 1, 1, tracking(vec![git_change(&five("5"), "1111111", "2222222")])),
        rec(3, 2, 1, text()),
        rec(4, 3, 1, tracking(vec![git_change(&five("FIVE"), "1111111", "3333333")])),
        // Another agent edits far away in the same file, then the first one puts line five back.
        rec(5, 4, 2, tracking(vec![git_change(&five("FIVE").replace("ten", "10"), "1111111", "4444444")])),
        rec(6, 5, 1, tracking(vec![git_change(&BASE.replace("ten", "10"), "1111111", "5555555")])),
    ];
    let turns = turns(&records);
    let upto = |n: usize| net(&turns[..n], |_| true).remove(0);

    let two = upto(2);
    let diff = two.diff.unwrap_or_default();
    assert_eq!((two.added, two.removed, two.turns.len()), (1, 1, 2), "{diff}");
    assert!(diff.contains("-five\n+FIVE\n") && !diff.contains('5'), "one change, from the first before: {diff}");

    // Agent 1's run over all four turns: from "five" to "five" again; agent 2's edit sits in between and
    // shows, as the file the run ended with has it.
    let mine = net(&turns, |a| a == Id::from_u128(1)).remove(0);
    let diff = mine.diff.unwrap_or_default();
    assert_eq!((mine.added, mine.removed), (1, 1), "{diff}");
    assert!(diff.contains("-ten\n+10\n") && !diff.contains("five\n+"), "{diff}");
    // Agent 2's own turn: only its change.
    let theirs = net(&turns, |a| a == Id::from_u128(2)).remove(0);
    assert!(theirs.diff.unwrap_or_default().contains("-ten\n+10\n"));

    // An edit then its revert: git shows the file clean again (no diff), and the net change is none.
    let revert = vec![
        rec(1, 0, 1, tracking(vec![git_change(&five("5"), "1111111", "2222222")])),
        rec(2, 1, 1, tracking(vec![git_change(BASE, "1111111", "1111111")])),
    ];
    let n = net(&turns_of(&revert), |_| true).remove(0);
    assert_eq!((n.diff.as_deref(), n.added, n.removed, n.turns.len()), (Some(""), 0, 0, 2));

    // A turn after a commit of the previous one's result: its diff follows on from that commit.
    let committed = vec![
        rec(1, 0, 1, tracking(vec![git_change(&five("5"), "1111111", "2222222")])),
        rec(
            2,
            1,
            1,
            tracking(vec![{
                let (body, a, r) =
                    crate::netdiff::files("s.txt", Some(&five("5")), Some(&five("5").replace("one", "1")));
                let diff = Some(format!("diff --git a/s.txt b/s.txt\nindex 2222222..6666666 100644\n{body}"));
                FileChange { lines_added: a, lines_removed: r, diff, ..change("s.txt", FileChangeStatus::Modified, 0) }
            }]),
        ),
    ];
    let n = net(&turns_of(&committed), |_| true).remove(0);
    assert_eq!((n.added, n.removed), (2, 2), "{:?}", n.diff);
}

fn turns_of(records: &[EventRecord]) -> Vec<Turn> {
    turns(records)
}

fn tool_use(id: &str, tool: &str, input: serde_json::Value) -> Event {
    Event::ToolUse { tool_name: tool.into(), tool_input: input, tool_use_id: id.into() }
}

fn tool_result(id: &str, tool: &str, is_error: bool) -> Event {
    Event::ToolResult { tool_use_id: id.into(), tool_name: tool.into(), content: "ok".into(), is_error }
}

fn result() -> Event {
    Event::Result {
        is_error: false,
        stop_reason: EndReason::EndTurn,
        num_turns: 1,
        duration_ms: 10,
        usage: Usage::default(),
        cost_usd: 0.0,
        result: None,
    }
}

#[test]
fn a_workflow_steps_file_writes_are_turns_read_from_its_tool_calls() {
    let step = |mut r: EventRecord| {
        r.keys.workflow_id = Some(Id::from_u128(90));
        r.keys.step = Some("build".into());
        r
    };
    let records = vec![
        // A workflow step's run: foreground, so no `FileTracking` follows it.
        step(rec(1, 0, 5, tool_use("w1", "Write", json!({"file_path": "hello.py", "content": "a\nb\nc\n"})))),
        step(rec(2, 1, 5, tool_result("w1", "Write", false))),
        step(rec(
            3,
            1,
            5,
            tool_use("e0", "Edit", json!({"file_path": "hello.py", "old_string": "zzz", "new_string": "y"})),
        )),
        step(rec(4, 1, 5, tool_result("e0", "Edit", true))),
        step(rec(5, 2, 5, result())),
        // The next step's agent edits the file the first wrote.
        step(rec(
            6,
            3,
            8,
            tool_use("e1", "Edit", json!({"file_path": "hello.py", "old_string": "b", "new_string": "B"})),
        )),
        step(rec(7, 4, 8, tool_result("e1", "Edit", false))),
        step(rec(8, 5, 8, result())),
        // A background run's calls: its `FileTracking` event is what counts, not a second turn.
        rec(9, 6, 6, tool_use("w2", "Write", json!({"file_path": "notes.md", "content": "n\n"}))),
        rec(10, 7, 6, tool_result("w2", "Write", false)),
        rec(11, 8, 6, result()),
        rec(12, 8, 6, tracking(vec![change("notes.md", FileChangeStatus::Created, 1)])),
    ];
    let turns = turns(&records);
    assert_eq!(turns.iter().map(|t| (t.seq, t.files.len())).collect::<Vec<_>>(), [(5, 1), (8, 1), (12, 1)]);
    assert_eq!(turns[2].files[0].diff.as_deref(), Some("+notes.md"), "git's diff is kept");
    let first = &turns[0].files[0];
    assert_eq!(
        (first.path.as_str(), first.status, first.lines_added, first.tools.clone()),
        ("hello.py", FileChangeStatus::Created, 3, vec!["Write".to_string()]),
        "the failed edit is not a change"
    );
    assert_eq!((turns[1].start, turns[1].end), (1_800_000_003_000.0, 1_800_000_005_000.0));

    assert_eq!(turns[1].files[0].status, FileChangeStatus::Modified);
    let workflow = |a: Id| a == Id::from_u128(5) || a == Id::from_u128(8);
    let hello = net(&turns, workflow).remove(0);
    assert_eq!(hello.status, FileChangeStatus::Created);
    assert_eq!(hello.diff.as_deref(), Some("--- /dev/null\n+++ b/hello.py\n@@ -0,0 +1,3 @@\n+a\n+B\n+c\n"));
    // The second step alone: its edit against the file as the first left it.
    let second = net(&turns, |a| a == Id::from_u128(8)).remove(0);
    assert_eq!(second.diff.as_deref(), Some("--- a/hello.py\n+++ b/hello.py\n@@ -1,3 +1,3 @@\n a\n-b\n+B\n c\n"));

    // An edit of a file the log never saw whole: its text, without positions.
    let blind = vec![
        step(rec(
            1,
            0,
            7,
            tool_use("e", "Edit", json!({"file_path": "x.rs", "old_string": "old()", "new_string": "new()"})),
        )),
        step(rec(2, 1, 7, tool_result("e", "Edit", false))),
        step(rec(3, 2, 7, result())),
    ];
    let t = turns_of(&blind);
    let diff = t[0].files[0].diff.clone().unwrap_or_default();
    assert!(diff.ends_with("@@ edit @@\n-old()\n+new()\n"), "{diff}");
    assert_eq!(net(&t, |_| true)[0].diff, None, "no net diff can be made of it");

    // Outside git a background run's `FileTracking` has no diff: its own calls give it.
    let plain = vec![
        rec(1, 0, 6, tool_use("w", "Write", json!({"file_path": "notes.md", "content": "n\n"}))),
        rec(2, 1, 6, tool_result("w", "Write", false)),
        rec(3, 2, 6, result()),
        rec(4, 2, 6, tracking(vec![FileChange { diff: None, ..change("notes.md", FileChangeStatus::Created, 0) }])),
    ];
    let t = turns_of(&plain);
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].files[0].diff.as_deref(), Some("--- /dev/null\n+++ b/notes.md\n@@ -0,0 +1,1 @@\n+n\n"));
    assert_eq!(t[0].files[0].lines_added, 1);
}
