//! A database left by a crash in the middle of a write transaction: its rollback journal is "hot" (the
//! database file holds pages of a transaction that never committed). Opening must roll it back, as SQLite
//! does on any read-write open, instead of failing forever.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use orch_core::store::{EventQuery, Store};
use orch_core::wire::{Event, EventKeys, NewEvent};
use orch_store_sqlite::{SCHEMA_VERSION, SqliteStore};
use rusqlite::Connection;

/// Leaves at `dst` the files a process killed in the middle of its first write transaction on a new,
/// empty database (rollback-journal mode) leaves: a database file holding uncommitted pages and a hot
/// `-journal` beside it. Without `header` the file's first page is not written yet (its header is
/// missing); with it, the empty database had been written once before, so the header is valid (the state
/// `orch` left when killed at its 4th sync while switching a new database to WAL).
///
/// Made without killing anything: a transaction too big for its page cache spills pages into the
/// database file (after syncing the journal); the two files are copied at that moment, while the
/// transaction is still open, exactly as a crash would leave them.
fn crash_image(work: &Path, dst: &Path, header: bool) {
    let src = work.join("src.db");
    let _ = std::fs::remove_file(&src);
    let conn = Connection::open(&src).unwrap();
    if header {
        conn.execute_batch("CREATE TABLE gone (x); DROP TABLE gone;").unwrap();
    }
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "delete", "a new database starts in rollback-journal mode");
    conn.pragma_update(None, "cache_size", 10).unwrap();
    conn.execute_batch("BEGIN IMMEDIATE; CREATE TABLE filler (x BLOB);").unwrap();
    for _ in 0..200 {
        conn.execute("INSERT INTO filler VALUES (zeroblob(4000))", []).unwrap();
    }
    let journal = work.join("src.db-journal");
    let db_len = std::fs::metadata(&src).unwrap().len();
    assert!(db_len > 0 && journal.exists(), "the transaction spilled into the database file ({db_len} bytes)");
    std::fs::copy(&src, dst).unwrap();
    let mut dst_journal = dst.as_os_str().to_owned();
    dst_journal.push("-journal");
    std::fs::copy(&journal, &dst_journal).unwrap();
    conn.execute_batch("ROLLBACK").unwrap();
}

#[tokio::test]
async fn a_hot_journal_left_by_a_crash_while_creating_is_rolled_back_on_open() {
    for header in [false, true] {
        hot_journal_is_rolled_back_on_open(header).await;
    }
}

async fn hot_journal_is_rolled_back_on_open(header: bool) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    crash_image(dir.path(), &path, header);

    let store = SqliteStore::open(&path).unwrap_or_else(|e| panic!("a database left by a crash opens ({header}): {e}"));
    let status = store.status().await.unwrap();
    assert_eq!(status.schema_version, SCHEMA_VERSION);
    let rec = store.append(vec![NewEvent::new(EventKeys::default(), Event::Text { text: "after".into() })]).await;
    assert_eq!(rec.unwrap()[0].seq, 1, "a fresh log: the crashed transaction was rolled back");
    drop(store);

    let conn = Connection::open(&path).unwrap();
    let filler: bool =
        conn.query_row("SELECT EXISTS (SELECT 1 FROM sqlite_master WHERE name = 'filler')", [], |r| r.get(0)).unwrap();
    assert!(!filler, "the uncommitted table is gone");
    let mut journal = path.as_os_str().to_owned();
    journal.push("-journal");
    assert!(!Path::new(&journal).exists(), "the hot journal was consumed");
    // And the next open is an ordinary one.
    let again = SqliteStore::open(&path).unwrap();
    assert_eq!(again.read_events(&EventQuery::default()).await.unwrap().len(), 1);
}

#[test]
fn opening_read_only_refuses_a_hot_journal_clearly_and_leaves_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    crash_image(dir.path(), &path, true);
    let mut journal = path.as_os_str().to_owned();
    journal.push("-journal");
    let (db_before, journal_before) = (std::fs::read(&path).unwrap(), std::fs::read(&journal).unwrap());

    let e = SqliteStore::open_read_only(&path).expect_err("a read-only open cannot roll back");
    let message = e.to_string();
    assert!(message.contains("rolled back") && message.contains("read-write"), "{message}");
    assert!(std::fs::read(&path).unwrap() == db_before, "the database file is untouched");
    assert!(std::fs::read(&journal).unwrap() == journal_before, "the journal is left for a read-write open");
}
