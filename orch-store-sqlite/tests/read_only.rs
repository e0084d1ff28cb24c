//! `SqliteStore::open_read_only`: reading a database without creating, migrating or writing anything.
//!
//! The tests run as root too, whom file permissions do not stop: so besides making files read-only they
//! check that nothing at all was written or created (every file's bytes, before and after), which only
//! SQLite's read-only mode guarantees.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use futures::StreamExt;
use orch_core::store::testkit::Writes;
use orch_core::store::{EventQuery, Store, StoreError};
use orch_core::wire::{Agent, Event, EventKeys, NewEvent};
use orch_store_sqlite::{SCHEMA_VERSION, SqliteStore};

fn text(i: u64) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::Text { text: format!("event {i}") })
}

/// Every file in `dir` with its length and a hash of its bytes.
fn snapshot(dir: &Path) -> Vec<(String, usize, u64)> {
    use std::hash::{Hash, Hasher};
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = std::fs::read(e.path()).unwrap();
            let mut h = std::collections::hash_map::DefaultHasher::new();
            bytes.hash(&mut h);
            (e.file_name().to_string_lossy().into_owned(), bytes.len(), h.finish())
        })
        .collect();
    v.sort();
    v
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// A database with one agent and three events, closed.
async fn filled(dir: &Path) -> (std::path::PathBuf, Agent) {
    let path = dir.join("orch.db");
    let store = SqliteStore::open(&path).unwrap();
    let agent = Agent::new("reader", "m", "/w");
    store.create_agent(&agent).await.unwrap();
    store.append((0..3).map(text).collect()).await.unwrap();
    (path, agent)
}

/// Makes `dir` and `file` read-only for this process, also when it is root (whom permission bits do not
/// stop): then with `chattr +i`. Undone when dropped.
struct ReadOnly {
    dir: std::path::PathBuf,
    file: std::path::PathBuf,
    chattr: bool,
}

impl ReadOnly {
    fn new(dir: &Path, file: &Path) -> Self {
        chmod(file, 0o444);
        chmod(dir, 0o555);
        let mut guard = Self { dir: dir.to_path_buf(), file: file.to_path_buf(), chattr: false };
        if writable(dir) {
            // Root: permission bits do not apply.
            let status = std::process::Command::new("chattr").arg("+i").arg(dir).arg(file).status();
            guard.chattr = status.is_ok_and(|s| s.success());
            assert!(
                !writable(dir),
                "cannot make {} read-only for this process (root needs `chattr +i`, from e2fsprogs, on a file \
                 system that supports it)",
                dir.display()
            );
        }
        guard
    }
}

impl Drop for ReadOnly {
    fn drop(&mut self) {
        if self.chattr {
            let _ = std::process::Command::new("chattr").arg("-i").arg(&self.dir).arg(&self.file).status();
        }
        chmod(&self.dir, 0o755);
        chmod(&self.file, 0o644);
    }
}

/// Whether a file can be created in `dir`.
fn writable(dir: &Path) -> bool {
    let probe = dir.join(".probe");
    let ok = std::fs::write(&probe, b"").is_ok();
    let _ = std::fs::remove_file(&probe);
    ok
}

#[tokio::test]
async fn a_read_only_file_in_a_read_only_directory_is_read_and_nothing_is_written() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("db");
    std::fs::create_dir(&dir).unwrap();
    let (path, agent) = filled(&dir).await;
    let before = snapshot(&dir);
    let read_only = ReadOnly::new(&dir, &path);

    // What `open` does with it.
    let e = SqliteStore::open(&path).expect_err("open needs to write");
    assert!(matches!(e, StoreError::Open { .. }), "{e:?}");

    let store = SqliteStore::open_read_only(&path).expect("a read-only database opens for reading");
    assert_eq!(store.get_agent(agent.id).await.unwrap().as_ref(), Some(&agent));
    let events = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(events.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3]);
    let status = store.status().await.unwrap();
    assert_eq!((status.events, status.last_seq, status.schema_version), (3, 3, SCHEMA_VERSION));
    let mut sub = store.subscribe(0);
    let first = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.unwrap().unwrap().unwrap();
    assert_eq!(first.seq, 1, "a subscriber replays the log");
    let e = store.append(vec![text(9)]).await.expect_err("appending to a read-only store");
    assert!(e.to_string().contains("read-only"), "{e}");
    drop(sub);
    drop(store);

    drop(read_only);
    assert_eq!(snapshot(&dir), before, "no file was written or created");
}

#[tokio::test]
async fn writes_are_refused_even_where_the_process_may_write_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled(dir.path()).await;
    let db_before = std::fs::read(&path).unwrap();

    let store = SqliteStore::open_read_only(&path).unwrap();
    let e = store.append(vec![text(9)]).await.expect_err("appending to a read-only store");
    let message = e.to_string();
    assert!(message.contains(&path.display().to_string()) && message.contains("read-only"), "{message}");
    let e = store.create_agent(&Agent::new("other", "m", "/w")).await.expect_err("creating an agent");
    assert!(e.to_string().contains("read-only"), "{e}");
    assert_eq!(store.last_seq().await.unwrap(), 3);
    drop(store);

    assert!(std::fs::read(&path).unwrap() == db_before, "the database file was not written");
    let rw = SqliteStore::open(&path).unwrap();
    assert_eq!(rw.last_seq().await.unwrap(), 3, "nothing was appended");
    assert!(rw.list_agents(&Default::default()).await.unwrap().iter().all(|a| a.name != "other"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_read_only_store_sees_what_a_writer_commits_later() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled(dir.path()).await;
    let writer = SqliteStore::open(&path).unwrap();
    let reader = SqliteStore::open_read_only(&path).unwrap();
    let mut sub = reader.subscribe(3);
    writer.append(vec![text(3)]).await.unwrap();
    let next = tokio::time::timeout(Duration::from_secs(10), sub.next()).await.expect("seen within 10 s");
    assert_eq!(next.unwrap().unwrap().seq, 4);
    assert_eq!(reader.read_events(&EventQuery::default()).await.unwrap().len(), 4);
}

#[tokio::test]
async fn nothing_is_created_where_there_is_no_database() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("none").join("orch.db");
    let e = SqliteStore::open_read_only(&missing).expect_err("no file");
    assert!(matches!(&e, StoreError::Open { .. }) && e.to_string().contains("no such database file"), "{e}");
    assert!(!missing.parent().unwrap().exists(), "no directory was created");

    let empty = dir.path().join("empty.db");
    std::fs::write(&empty, b"").unwrap();
    let e = SqliteStore::open_read_only(&empty).expect_err("an empty file");
    assert!(e.to_string().contains("empty"), "{e}");
    assert_eq!(std::fs::metadata(&empty).unwrap().len(), 0, "the empty file was not made a database");
    assert_eq!(snapshot(dir.path()).len(), 1, "no side file was created");
}

#[tokio::test]
async fn a_database_needing_a_migration_or_from_a_newer_orch_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let (path, _) = filled(dir.path()).await;
    for (version, expect) in [(SCHEMA_VERSION + 1, "newer"), (0, "no orch schema version")] {
        rusqlite::Connection::open(&path).unwrap().pragma_update(None, "user_version", version).unwrap();
        let before = std::fs::read(&path).unwrap();
        let e = SqliteStore::open_read_only(&path).expect_err("refused");
        match version {
            0 => assert!(matches!(e, StoreError::Corrupt { .. }), "{e:?}"),
            _ => assert!(matches!(e, StoreError::NewerSchema { .. }), "{e:?}"),
        }
        assert!(e.to_string().contains(expect), "{e}");
        assert!(std::fs::read(&path).unwrap() == before, "the database file is untouched");
    }
}
