//! Per-run file tracking against real git repositories: the test does the file operations itself between
//! the snapshot and the report, and feeds synthetic run events.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::Command;

use orch_core::orchestrator::files::{FileSnapshot, MAX_STORED_DIFF, count_diff_lines, track_run};
use orch_core::runtime::TokioRuntime;
use orch_core::wire::{Event, EventKeys, EventRecord, FileChange, FileChangeStatus, FileRead};
use serde_json::json;

// ---- helpers ----

fn run(cwd: &Path, program: &str, args: &[&str]) {
    let out = Command::new(program).args(args).current_dir(cwd).output().expect("spawn");
    assert!(
        out.status.success(),
        "{program} {args:?} failed: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn git(cwd: &Path, args: &[&str]) {
    run(cwd, "git", args);
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(path, text).unwrap();
}

/// A git repository with `a.txt` (3 lines), `old.txt` (4 lines) and `src/lib.rs` (2 lines) committed.
fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    git(root, &["init", "-q"]);
    git(root, &["config", "user.email", "test@example.com"]);
    git(root, &["config", "user.name", "Test"]);
    git(root, &["config", "commit.gpgsign", "false"]);
    write(root, "a.txt", "one\ntwo\nthree\n");
    write(root, "old.txt", "1\n2\n3\n4\n");
    write(root, "src/lib.rs", "fn a() {}\nfn b() {}\n");
    git(root, &["add", "-A"]);
    git(root, &["commit", "-q", "-m", "init"]);
    dir
}

/// Synthetic events of one run.
#[derive(Default)]
struct Events {
    records: Vec<EventRecord>,
    /// Seq of the first event minus one.
    seq_before: u64,
    calls: u32,
}

impl Events {
    /// A run whose first event follows `seq` (the previous run's events).
    fn after(seq: u64) -> Self {
        Events { seq_before: seq, ..Events::default() }
    }

    fn push(&mut self, event: Event) -> u64 {
        let seq = self.last_seq() + 1;
        self.records.push(EventRecord { seq, timestamp: orch_core::wire::now(), keys: EventKeys::default(), event });
        seq
    }

    fn last_seq(&self) -> u64 {
        self.records.last().map(|r| r.seq).unwrap_or(self.seq_before)
    }

    fn text(&mut self, text: &str) -> u64 {
        self.push(Event::Text { text: text.to_string() })
    }

    /// A tool call and its result.
    fn tool(&mut self, tool_name: &str, tool_input: serde_json::Value, ok: bool) {
        self.calls += 1;
        let tool_use_id = format!("toolu_{}_{}", self.seq_before, self.calls);
        self.push(Event::ToolUse { tool_name: tool_name.to_string(), tool_input, tool_use_id: tool_use_id.clone() });
        self.push(Event::ToolResult {
            tool_use_id,
            tool_name: tool_name.to_string(),
            content: if ok { "ok".to_string() } else { "Error: failed".to_string() },
            is_error: !ok,
        });
    }

    fn bash(&mut self, command: &str) {
        self.tool("Bash", json!({ "command": command }), true);
    }
}

struct Report {
    text_seq: Option<u64>,
    changes: Vec<FileChange>,
    reads: Vec<FileRead>,
}

impl Report {
    fn change(&self, path: &str) -> &FileChange {
        self.changes
            .iter()
            .find(|c| c.path == path)
            .unwrap_or_else(|| panic!("no change for {path} in {:#?}", self.changes))
    }

    fn paths(&self) -> Vec<&str> {
        self.changes.iter().map(|c| c.path.as_str()).collect()
    }
}

async fn track(dir: &Path, before: &FileSnapshot, events: &Events) -> Option<Report> {
    match track_run(&TokioRuntime, dir, before, &events.records).await? {
        Event::FileTracking { text_seq, file_changes, read_files } => {
            Some(Report { text_seq, changes: file_changes, reads: read_files })
        }
        other => panic!("expected FileTracking, got {other:?}"),
    }
}

async fn snapshot(dir: &Path) -> FileSnapshot {
    FileSnapshot::take(&TokioRuntime, dir).await
}

// ---- tests ----

#[tokio::test]
async fn write_creates_a_new_file_with_its_diff() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;
    assert!(before.in_git());

    write(root, "hello.py", "print('a')\nprint('b')\nprint('c')\n");
    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": "hello.py", "content": "..." }), true);
    let text_seq = events.text("done");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["hello.py"]);
    let change = report.change("hello.py");
    assert_eq!(change.status, FileChangeStatus::Created);
    assert_eq!((change.lines_added, change.lines_removed), (3, 0));
    assert_eq!(change.tools, vec!["Write"]);
    assert_eq!(change.summary, "Created hello.py (+3 lines)");
    assert_eq!(PathBuf::from(&change.absolute_path), root.join("hello.py"));
    let diff = change.diff.as_deref().expect("a diff");
    assert!(diff.contains("+print('b')"), "{diff}");
    assert_eq!(report.text_seq, Some(text_seq));
    assert!(report.reads.is_empty());
}

#[tokio::test]
async fn edit_of_a_committed_file_is_modified() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    write(root, "a.txt", "one\nTWO\nthree\n");
    let mut events = Events::default();
    // An absolute path is reported relative to the working dir.
    let abs = root.join("a.txt").to_string_lossy().into_owned();
    events.tool("Edit", json!({ "file_path": abs, "old_string": "two", "new_string": "TWO" }), true);

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["a.txt"]);
    let change = report.change("a.txt");
    assert_eq!(change.status, FileChangeStatus::Modified);
    assert_eq!((change.lines_added, change.lines_removed), (1, 1));
    assert_eq!(change.tools, vec!["Edit"]);
    assert_eq!(change.summary, "Modified a.txt (+1 -1 lines)");
    let diff = change.diff.as_deref().unwrap();
    assert!(diff.contains("-two") && diff.contains("+TWO"), "{diff}");
    assert_eq!(report.text_seq, None);
}

#[tokio::test]
async fn bash_rm_is_a_deletion_by_bash() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    run(root, "rm", &["old.txt"]);
    let mut events = Events::default();
    events.bash("rm old.txt");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["old.txt"]);
    let change = report.change("old.txt");
    assert_eq!(change.status, FileChangeStatus::Deleted);
    assert_eq!((change.lines_added, change.lines_removed), (0, 4));
    assert_eq!(change.tools, vec!["Bash"]);
    assert_eq!(change.summary, "Deleted old.txt (-4 lines)");
    assert!(change.diff.as_deref().unwrap().contains("deleted file mode"));
}

#[tokio::test]
async fn bash_mv_deletes_the_source_and_creates_the_target() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    run(root, "mv", &["a.txt", "b.txt"]);
    let mut events = Events::default();
    events.bash("mv a.txt b.txt");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["a.txt", "b.txt"]);
    let a = report.change("a.txt");
    assert_eq!(a.status, FileChangeStatus::Deleted);
    assert_eq!(a.lines_removed, 3);
    assert_eq!(a.tools, vec!["Bash"]);
    let b = report.change("b.txt");
    assert_eq!(b.status, FileChangeStatus::Created);
    assert_eq!((b.lines_added, b.lines_removed), (3, 0));
    assert_eq!(b.tools, vec!["Bash"]);
}

#[tokio::test]
async fn git_mv_is_seen_as_delete_and_create() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    git(root, &["mv", "old.txt", "new.txt"]);
    let mut events = Events::default();
    events.bash("git mv old.txt new.txt");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["new.txt", "old.txt"]);
    assert_eq!(report.change("old.txt").status, FileChangeStatus::Deleted);
    assert_eq!(report.change("new.txt").status, FileChangeStatus::Created);
    assert_eq!(report.change("new.txt").lines_added, 4);
}

#[tokio::test]
async fn a_file_dirty_before_the_run_and_changed_again_is_detected() {
    let dir = repo();
    let root = dir.path();
    // Dirty before the run: one tracked, one untracked; only the first is changed by the run.
    write(root, "a.txt", "one\ntwo\nthree\nfour\n");
    write(root, "scratch.txt", "notes\n");
    let before = snapshot(root).await;
    assert!(before.dirty_paths().any(|p| p == "a.txt"));

    run(root, "sh", &["-c", "echo five >> a.txt"]);
    let mut events = Events::default();
    events.bash("echo five >> a.txt");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["a.txt"], "the untouched dirty file is not reported");
    let change = report.change("a.txt");
    assert_eq!(change.status, FileChangeStatus::Modified);
    assert_eq!(change.tools, vec!["Bash"]);
    // The diff is against the commit: both added lines.
    assert_eq!((change.lines_added, change.lines_removed), (2, 0));
}

#[tokio::test]
async fn an_untracked_file_edited_again_is_modified_not_created() {
    let dir = repo();
    let root = dir.path();
    write(root, "draft.md", "# Draft\n");
    let before = snapshot(root).await;

    write(root, "draft.md", "# Draft\nmore\n");
    let mut events = Events::default();
    events.tool("Edit", json!({ "file_path": "draft.md" }), true);

    let report = track(root, &before, &events).await.expect("a report");
    let change = report.change("draft.md");
    assert_eq!(change.status, FileChangeStatus::Modified);
    assert_eq!(change.lines_added, 2, "untracked: diffed against nothing");
    assert_eq!(change.tools, vec!["Edit"]);
}

#[tokio::test]
async fn reads_are_reported_with_line_counts_once() {
    let dir = repo();
    let root = dir.path();
    write(root, "notes.txt", "x\ny");
    git(root, &["add", "notes.txt"]);
    git(root, &["commit", "-q", "-m", "notes"]);
    let before = snapshot(root).await;

    write(root, "src/lib.rs", "fn a() {}\nfn b() {}\nfn c() {}\n");
    let mut events = Events::default();
    events.tool("Read", json!({ "file_path": "old.txt" }), true);
    events.tool("Read", json!({ "file_path": "./old.txt" }), true);
    events.tool("Read", json!({ "file_path": "notes.txt" }), true);
    events.tool("Read", json!({ "file_path": "missing.txt" }), false);
    // Read and then edited: only a change.
    events.tool("Read", json!({ "file_path": "src/lib.rs" }), true);
    events.tool("Edit", json!({ "file_path": "src/lib.rs" }), true);
    events.text("first");
    let last = events.text("second");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(
        report.reads,
        vec![
            FileRead {
                path: "notes.txt".into(),
                absolute_path: root.join("notes.txt").to_string_lossy().into_owned(),
                line_count: Some(2),
            },
            FileRead {
                path: "old.txt".into(),
                absolute_path: root.join("old.txt").to_string_lossy().into_owned(),
                line_count: Some(4),
            },
        ]
    );
    assert_eq!(report.paths(), vec!["src/lib.rs"]);
    assert_eq!(report.change("src/lib.rs").lines_added, 1);
    assert_eq!(report.text_seq, Some(last));
}

#[tokio::test]
async fn a_failed_write_is_not_reported_unless_the_file_changed() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": "never.txt" }), false);
    events.text("could not write");
    assert!(track(root, &before, &events).await.is_none(), "a failed Write that changed nothing");

    // A failed Edit whose file did change on disk (it failed after writing) counts.
    write(root, "a.txt", "changed\n");
    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": "never.txt" }), false);
    events.tool("Edit", json!({ "file_path": "a.txt" }), false);
    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["a.txt"]);
    assert_eq!(report.change("a.txt").tools, vec!["Edit"]);
}

#[tokio::test]
async fn a_second_run_reports_only_its_own_files() {
    let dir = repo();
    let root = dir.path();

    let first_before = snapshot(root).await;
    write(root, "first.txt", "1\n");
    let mut first = Events::default();
    first.tool("Write", json!({ "file_path": "first.txt" }), true);
    first.tool("Read", json!({ "file_path": "a.txt" }), true);
    let report1 = track(root, &first_before, &first).await.expect("first report");
    assert_eq!(report1.paths(), vec!["first.txt"]);
    assert_eq!(report1.reads.len(), 1);

    let second_before = snapshot(root).await;
    write(root, "second.txt", "2\n2\n");
    let mut second = Events::after(first.last_seq());
    second.tool("Write", json!({ "file_path": "second.txt" }), true);
    let report2 = track(root, &second_before, &second).await.expect("second report");
    assert_eq!(report2.paths(), vec!["second.txt"], "first.txt is not repeated");
    assert!(report2.reads.is_empty(), "the first run's read is not repeated");
    assert_eq!(report2.change("second.txt").status, FileChangeStatus::Created);

    // A third run that touches nothing, with dirty files around from the earlier runs.
    let third_before = snapshot(root).await;
    let mut third = Events::after(second.last_seq());
    third.bash("ls");
    third.text("nothing to do");
    assert!(track(root, &third_before, &third).await.is_none());
}

#[tokio::test]
async fn nothing_touched_is_none() {
    let dir = repo();
    let root = dir.path();
    write(root, "a.txt", "dirty before\n");
    let before = snapshot(root).await;
    let mut events = Events::default();
    events.tool("Glob", json!({ "pattern": "*.txt" }), true);
    events.text("hello");
    assert!(track(root, &before, &events).await.is_none());
    assert!(track(root, &before, &Events::default()).await.is_none());
}

#[tokio::test]
async fn a_commit_made_during_the_run_is_still_seen() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    write(root, "feature.rs", "pub fn f() {}\n");
    git(root, &["add", "feature.rs"]);
    git(root, &["commit", "-q", "-m", "feature"]);
    let mut events = Events::default();
    events.bash("git add feature.rs && git commit -m feature");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["feature.rs"]);
    let change = report.change("feature.rs");
    assert_eq!(change.status, FileChangeStatus::Created);
    assert_eq!(change.lines_added, 1);
}

#[tokio::test]
async fn a_subdirectory_working_dir_reports_outside_paths_absolutely() {
    let dir = repo();
    let root = dir.path();
    let wd = root.join("src");
    let before = snapshot(&wd).await;
    assert!(before.in_git());

    write(root, "src/new.rs", "fn n() {}\n");
    write(root, "a.txt", "one\n");
    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": "./x/../new.rs" }), true);
    events.tool("Write", json!({ "file_path": "../a.txt" }), true);

    let report = track(&wd, &before, &events).await.expect("a report");
    let outside = root.join("a.txt").to_string_lossy().into_owned();
    let mut expected = vec![outside.clone(), "new.rs".to_string()];
    expected.sort();
    assert_eq!(report.paths(), expected);
    let new = report.change("new.rs");
    assert_eq!(new.status, FileChangeStatus::Created);
    assert_eq!(PathBuf::from(&new.absolute_path), wd.join("new.rs"));
    let a = report.change(&outside);
    assert_eq!(a.status, FileChangeStatus::Modified);
    assert_eq!((a.lines_added, a.lines_removed), (0, 2));
    assert_eq!(a.absolute_path, outside);
}

#[tokio::test]
async fn orch_database_files_are_not_reported() {
    let dir = repo();
    let root = dir.path();
    write(root, ".orch/orch.db", "v1");
    let before = snapshot(root).await;
    write(root, ".orch/orch.db", "v2 after the run");
    write(root, ".orch/orch.db-wal", "wal");
    let mut events = Events::default();
    events.text("hi");
    assert!(track(root, &before, &events).await.is_none());
}

#[tokio::test]
async fn outside_git_changes_have_no_diff() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    let before = snapshot(root).await;
    assert!(!before.in_git());

    write(root, "notes.txt", "a\nb\n");
    write(root, "read.txt", "r\n");
    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": "notes.txt" }), true);
    events.tool("Write", json!({ "file_path": "gone.txt" }), true);
    events.tool("Write", json!({ "file_path": "failed.txt" }), false);
    events.tool("Read", json!({ "file_path": "read.txt" }), true);
    // Changed by Bash outside git: cannot be seen.
    write(root, "by_bash.txt", "x\n");
    events.bash("echo x > by_bash.txt");

    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["gone.txt", "notes.txt"]);
    let notes = report.change("notes.txt");
    assert_eq!(notes.status, FileChangeStatus::Modified);
    assert_eq!(notes.diff, None);
    assert_eq!((notes.lines_added, notes.lines_removed), (0, 0));
    assert_eq!(notes.summary, "Write on notes.txt");
    assert_eq!(report.change("gone.txt").status, FileChangeStatus::Deleted);
    assert_eq!(report.reads.len(), 1);
    assert_eq!(report.reads[0].line_count, Some(1));

    // A working dir that does not exist: no panic, nothing in git.
    let missing = root.join("does/not/exist");
    let before = snapshot(&missing).await;
    assert!(!before.in_git());
    let mut events = Events::default();
    events.tool("Read", json!({ "file_path": "nope.txt" }), true);
    let report = track(&missing, &before, &events).await.expect("a report");
    assert_eq!(report.reads[0].line_count, None);
}

#[tokio::test]
async fn a_long_diff_is_clipped_but_fully_counted() {
    let dir = repo();
    let root = dir.path();
    let before = snapshot(root).await;

    let line = "é".repeat(15); // two bytes each, so a clip can fall inside a char
    let text: String = (0..5000).map(|i| format!("{i} {line}\n")).collect();
    write(root, "big.txt", &text);
    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": "big.txt" }), true);

    let report = track(root, &before, &events).await.expect("a report");
    let change = report.change("big.txt");
    assert_eq!(change.lines_added, 5000);
    let diff = change.diff.as_deref().unwrap();
    assert!(diff.len() < MAX_STORED_DIFF + 200, "{}", diff.len());
    assert!(diff.ends_with("bytes shown]\n"), "no truncation note");
}

#[test]
fn diff_line_counts_exclude_headers_only() {
    let diff = "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1,3 +1,2 @@\n-old\n---dashes\n+new\n ctx\n";
    assert_eq!(count_diff_lines(diff), (1, 2));
    assert_eq!(count_diff_lines(""), (0, 0));
}

#[cfg(unix)]
#[tokio::test]
async fn a_working_dir_reached_through_a_symlink_reports_each_file_once() {
    let dir = repo();
    let links = tempfile::tempdir().unwrap();
    let wd = links.path().join("link");
    std::os::unix::fs::symlink(dir.path(), &wd).unwrap();
    let before = snapshot(&wd).await;
    assert!(before.in_git());

    write(&wd, "x.txt", "x\n");
    run(&wd, "rm", &["old.txt"]);
    let mut events = Events::default();
    events.tool("Write", json!({ "file_path": wd.join("x.txt").to_string_lossy() }), true);
    events.bash("rm old.txt");

    let report = track(&wd, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), vec!["old.txt", "x.txt"]);
    assert_eq!(report.change("x.txt").tools, vec!["Write"]);
    assert_eq!(PathBuf::from(&report.change("x.txt").absolute_path), wd.join("x.txt"));
    assert_eq!(report.change("old.txt").tools, vec!["Bash"]);
    assert_eq!(report.change("old.txt").status, FileChangeStatus::Deleted);
}

#[tokio::test]
async fn a_stores_own_files_and_orch_directory_are_left_out_before_anything_is_opened() {
    let dir = repo();
    let root = dir.path();
    // A database elsewhere in the working directory (git lists it), and orch's directory without the
    // .gitignore orch gives it.
    for f in ["state/orch.db", "state/orch.db-wal", "state/orch.db-shm", ".orch/orch.db", ".orch/orch.db-shm"] {
        write(root, f, "db");
    }
    let private: Vec<PathBuf> = ["state/orch.db", "state/orch.db-wal", "state/orch.db-shm", "state/orch.db-journal"]
        .map(|f| root.join(f))
        .into();
    let before = FileSnapshot::take_excluding(&TokioRuntime, root, &private).await;
    assert!(before.in_git());
    let dirty: Vec<&str> = before.dirty_paths().collect();
    assert!(dirty.is_empty(), "orch's own files were fingerprinted: {dirty:?}");

    // The run changes the database files (as every run does) and one file of its own.
    for f in ["state/orch.db", "state/orch.db-wal", "state/orch.db-journal", ".orch/orch.db-shm"] {
        write(root, f, "db, later");
    }
    write(root, "a.txt", "one\n");
    let mut events = Events::default();
    events.bash("sed -i 2,3d a.txt");
    let report = track(root, &before, &events).await.expect("a report");
    assert_eq!(report.paths(), ["a.txt"]);
}
