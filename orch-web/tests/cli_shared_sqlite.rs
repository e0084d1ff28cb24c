//! Several `orch` processes on one SQLite file, as a user runs them: `orch chat` commanding agents in a
//! git repository while other processes read the same database.
//!
//! orch must never open its own database files outside SQLite: closing any descriptor of a file drops
//! every POSIX lock the process holds on it, SQLite's locks on the `-shm` file included, and another
//! process may then rebuild that file under the first one's memory map (which dies of SIGBUS).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde_json::Value;
use support::{git_init, json_lines, orch, script, signal_of, text};

const CHATS: usize = 30;
const READERS: usize = 2;

/// `orch events --json` in a loop, in `READERS` threads, until `stop`; returns the signals readers
/// died of.
fn start_readers(dir: &Path, db: Option<&str>, stop: &Arc<AtomicBool>) -> Vec<std::thread::JoinHandle<Vec<i32>>> {
    (0..READERS)
        .map(|_| {
            let (dir, db, stop) = (dir.to_path_buf(), db.map(str::to_string), stop.clone());
            std::thread::spawn(move || {
                let mut signals = Vec::new();
                while !stop.load(Ordering::SeqCst) {
                    let mut c = orch();
                    c.arg("--cwd").arg(&dir);
                    if let Some(db) = &db {
                        c.arg("--db").arg(db);
                    }
                    let out = c.args(["events", "--json"]).stdout(Stdio::null()).output().unwrap();
                    signals.extend(signal_of(&out.status));
                }
                signals
            })
        })
        .collect()
}

/// Runs `CHATS` chats that create and command an agent each (the agent writes and runs hello.py),
/// with readers going all the time; asserts no chat or reader died of a signal and every chat exited 0.
fn chats_with_readers(dir: &Path, db: Option<&str>) {
    let model = format!("scripted:{}", script("orchestrator.json").display());
    let stop = Arc::new(AtomicBool::new(false));
    let readers = start_readers(dir, db, &stop);
    let mut failures = Vec::new();
    for i in 0..CHATS {
        let mut c = orch();
        c.arg("--cwd").arg(dir).args(["--model", &model]);
        if let Some(db) = db {
            c.arg("--db").arg(db);
        }
        let msg = format!("create an agent called a{i} for python work, then have it write hello.py");
        let out = c.args(["chat", &msg]).output().unwrap();
        if !out.status.success() {
            failures.push(format!(
                "chat {i}: {:?} (signal {:?}): {}",
                out.status,
                signal_of(&out.status),
                text(&out.stderr)
            ));
        }
    }
    stop.store(true, Ordering::SeqCst);
    let reader_signals: Vec<i32> = readers.into_iter().flat_map(|r| r.join().unwrap()).collect();
    assert!(failures.is_empty(), "{} of {CHATS} chats failed:\n{}", failures.len(), failures.join("\n"));
    assert!(reader_signals.is_empty(), "readers died of signals {reader_signals:?}");
}

/// The `FileTracking` events of the log, as (path, summary) pairs of their file changes.
fn tracked_changes(dir: &Path, db: Option<&str>) -> Vec<String> {
    let mut c = orch();
    c.arg("--cwd").arg(dir);
    if let Some(db) = db {
        c.arg("--db").arg(db);
    }
    let out = c.args(["events", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let events = json_lines(&out.stdout);
    assert!(events.iter().any(|e| e["type"] == "FileTracking"), "no run reported its files");
    events
        .iter()
        .filter(|e| e["type"] == "FileTracking")
        .flat_map(|e| e["file_changes"].as_array().cloned().unwrap_or_default())
        .map(|c: Value| c["path"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn git_status(dir: &Path) -> String {
    let out = Command::new("git").arg("-C").arg(dir).args(["status", "--porcelain", "--untracked-files=all"]).output();
    text(&out.unwrap().stdout)
}

#[test]
fn chats_in_a_git_repository_survive_concurrent_readers_of_the_default_database() {
    let dir = tempfile::tempdir().unwrap();
    git_init(dir.path());
    chats_with_readers(dir.path(), None);

    // orch's directory keeps itself out of git, so git status never lists the database.
    let ignore = std::fs::read_to_string(dir.path().join(".orch/.gitignore")).expect(".orch/.gitignore");
    assert_eq!(ignore.trim(), "*");
    let status = git_status(dir.path());
    assert!(!status.contains(".orch"), "{status}");
    assert!(status.contains("hello.py"), "{status}");
    let changes = tracked_changes(dir.path(), None);
    assert!(changes.iter().all(|p| !p.contains(".orch")), "{changes:?}");
}

#[test]
fn chats_in_a_git_repository_survive_concurrent_readers_of_a_database_elsewhere_in_it() {
    let dir = tempfile::tempdir().unwrap();
    git_init(dir.path());
    // The database lives in the working directory, in a folder git does list.
    let db = dir.path().join("state/orch.db");
    let db = db.to_str().unwrap();
    chats_with_readers(dir.path(), Some(db));

    let status = git_status(dir.path());
    assert!(status.contains("state/orch.db"), "git does list this database: {status}");
    assert!(!dir.path().join("state/.gitignore").exists(), "only orch's own .orch/ directory is ignored");
    let changes = tracked_changes(dir.path(), Some(db));
    assert!(changes.contains(&"hello.py".to_string()), "{changes:?}");
    assert!(
        changes.iter().all(|p| !p.contains("orch.db")),
        "the store's files are not the agents' changes: {changes:?}"
    );
}

#[test]
fn an_existing_orch_directory_keeps_its_own_gitignore() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir(dir.path().join(".orch")).unwrap();
    std::fs::write(dir.path().join(".orch/.gitignore"), "orch.db*\n").unwrap();
    let out = support::run_in(dir.path(), &["agent", "list"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(dir.path().join(".orch/.gitignore")).unwrap(), "orch.db*\n");
}
