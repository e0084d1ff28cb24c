//! Opening SQLite databases: safety checks, migrations, reopening, URLs.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::Arc;

use orch_core::store::testkit::Writes;
use orch_core::store::{EventQuery, Store, StoreError};
use orch_core::wire::{Agent, Event, EventKeys, NewEvent};
use orch_store_sqlite::{SCHEMA_VERSION, SqliteStore, default_path};

fn text(i: u64) -> NewEvent {
    NewEvent::new(EventKeys::default(), Event::Text { text: format!("event {i}") })
}

/// Every file in `dir` with its bytes.
fn snapshot(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            let bytes = if e.path().is_file() { std::fs::read(e.path()).unwrap() } else { Vec::new() };
            (e.file_name().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    v.sort();
    v
}

#[test]
fn default_path_is_dot_orch() {
    assert_eq!(default_path(Path::new("/proj")), Path::new("/proj/.orch/orch.db"));
}

#[tokio::test]
async fn open_creates_the_parent_directory_and_uses_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = default_path(dir.path());
    assert!(!path.parent().unwrap().exists());
    let store = SqliteStore::open(&path).unwrap();
    assert!(path.exists(), "the database file is created");
    assert_eq!(store.location(), path.display().to_string());
    store.append(vec![text(0)]).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    let mode: String = conn.pragma_query_value(None, "journal_mode", |r| r.get(0)).unwrap();
    assert_eq!(mode, "wal");
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}

#[tokio::test]
async fn reopening_keeps_data_and_seq_continues() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    let agent = Agent::new("keeper", "scripted", "/w");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create_agent(&agent).await.unwrap();
        let recs = store.append((0..5).map(text).collect()).await.unwrap();
        assert_eq!(recs.last().unwrap().seq, 5);
    }
    let store = Arc::new(SqliteStore::open(&path).unwrap());
    assert_eq!(store.get_agent(agent.id).await.unwrap().as_ref(), Some(&agent), "entities survive a reopen");
    assert_eq!(store.last_seq().await.unwrap(), 5, "events survive a reopen");
    let rec = store.append(vec![text(5)]).await.unwrap();
    assert_eq!(rec[0].seq, 6, "seq continues after a reopen");
    let all = store.read_events(&EventQuery::default()).await.unwrap();
    assert_eq!(all.iter().map(|r| r.seq).collect::<Vec<_>>(), (1..=6).collect::<Vec<_>>());
    // Opening the same file twice at once is fine (another process would do the same).
    let second = SqliteStore::open(&path).unwrap();
    assert_eq!(second.last_seq().await.unwrap(), 6);
}

#[tokio::test]
async fn a_newer_schema_is_refused_and_the_file_is_untouched() {
    // A database written by orch, then marked as written by a newer orch.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.append(vec![text(0)]).await.unwrap();
    }
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1).unwrap();
    }
    let before = snapshot(dir.path());
    match SqliteStore::open(&path) {
        Err(StoreError::NewerSchema { location, found, supported }) => {
            assert_eq!(location, path.display().to_string());
            assert_eq!(found, SCHEMA_VERSION + 1);
            assert_eq!(supported, SCHEMA_VERSION);
        }
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    let msg = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(msg.contains("newer") && msg.contains("not modified"), "the message says what happened: {msg}");
    assert_eq!(snapshot(dir.path()), before, "the directory and the database bytes are unchanged");

    // A rollback-journal database made by hand with a far newer version.
    let other = dir.path().join("handmade.db");
    {
        let conn = rusqlite::Connection::open(&other).unwrap();
        conn.execute_batch("CREATE TABLE future (x); PRAGMA user_version = 99;").unwrap();
    }
    let before = snapshot(dir.path());
    assert!(matches!(SqliteStore::open(&other), Err(StoreError::NewerSchema { found: 99, .. })));
    assert_eq!(snapshot(dir.path()), before);
}

#[tokio::test]
async fn a_newer_schema_still_in_the_wal_is_refused() {
    // The version bump is committed but not yet checkpointed into the main file: the header still shows
    // the old version, and the read-only check must look at the log too.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    drop(SqliteStore::open(&path).unwrap());
    let holder = rusqlite::Connection::open(&path).unwrap();
    holder.pragma_update(None, "wal_autocheckpoint", 0).unwrap();
    holder.pragma_update(None, "user_version", SCHEMA_VERSION + 3).unwrap();
    let main_before = std::fs::read(&path).unwrap();
    match SqliteStore::open(&path) {
        Err(StoreError::NewerSchema { found, .. }) => assert_eq!(found, SCHEMA_VERSION + 3),
        other => panic!("expected NewerSchema, got {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), main_before, "the database file is unchanged");
}

#[test]
fn a_file_that_is_not_a_database_is_corrupt_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let cases: Vec<(&str, Vec<u8>)> = vec![
        ("text.db", b"this is a text file, not a database\n".repeat(100)),
        ("short.db", b"SQLite".to_vec()),
        ("random.db", (0..8192u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect()),
        ("fake-header.db", {
            let mut v = b"SQLite format 3\0".to_vec();
            v.extend((0..8176u32).map(|i| (i.wrapping_mul(40_503) >> 7) as u8));
            v
        }),
        ("damaged-body.db", {
            // A genuine header followed by garbage.
            let real = dir.path().join("real.tmp");
            let conn = rusqlite::Connection::open(&real).unwrap();
            conn.execute_batch("CREATE TABLE t (x); PRAGMA user_version = 1;").unwrap();
            drop(conn);
            let mut v = std::fs::read(&real).unwrap();
            std::fs::remove_file(&real).unwrap();
            for (i, b) in v.iter_mut().enumerate().skip(100) {
                *b = (i as u32).wrapping_mul(2_246_822_519).rotate_left(13) as u8;
            }
            v
        }),
    ];
    for (name, bytes) in cases {
        let path = dir.path().join(name);
        std::fs::write(&path, &bytes).unwrap();
        let before = snapshot(dir.path());
        match SqliteStore::open(&path) {
            Err(StoreError::Corrupt { location, message }) => {
                assert_eq!(location, path.display().to_string(), "{name}: the error names the file");
                assert!(!message.is_empty());
            }
            other => panic!("{name}: expected Corrupt, got {other:?}"),
        }
        assert_eq!(snapshot(dir.path()), before, "{name}: nothing was modified or created");
    }
}

#[test]
fn a_foreign_sqlite_database_is_refused_and_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("app.db");
    {
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE users (id INTEGER PRIMARY KEY, name TEXT); INSERT INTO users VALUES (1, 'x');",
        )
        .unwrap();
    }
    let before = snapshot(dir.path());
    assert!(matches!(SqliteStore::open(&path), Err(StoreError::Corrupt { .. })));
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn an_empty_file_becomes_a_database() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.db");
    std::fs::write(&path, b"").unwrap();
    SqliteStore::open(&path).unwrap();
}

#[test]
fn an_unwritable_path_is_an_open_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    // The parent "directory" is a file.
    let file = dir.path().join("not-a-dir");
    std::fs::write(&file, b"x").unwrap();
    let path = file.join(".orch").join("orch.db");
    match SqliteStore::open(&path) {
        Err(StoreError::Open { location, message }) => {
            assert_eq!(location, path.display().to_string());
            assert!(!message.is_empty());
        }
        other => panic!("expected Open, got {other:?}"),
    }
    let msg = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(msg.contains(&path.display().to_string()), "the message names the path: {msg}");
    assert_eq!(std::fs::read(&file).unwrap(), b"x");

    // The path is a directory.
    assert!(matches!(SqliteStore::open(dir.path()), Err(StoreError::Open { .. })));

    // A directory without write permission (meaningless for root, who may write anyway).
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o500)).unwrap();
        let privileged = std::fs::write(locked.join("probe"), b"").is_ok();
        if !privileged {
            let path = locked.join("orch.db");
            match SqliteStore::open(&path) {
                Err(StoreError::Open { location, .. }) => assert_eq!(location, path.display().to_string()),
                other => panic!("expected Open, got {other:?}"),
            }
        }
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
    }
}

#[tokio::test]
async fn urls() {
    let dir = tempfile::tempdir().unwrap();
    let abs = dir.path().join("a").join("orch.db");
    let s = SqliteStore::open_url(&format!("sqlite://{}", abs.display())).unwrap();
    assert_eq!(s.location(), abs.display().to_string());
    s.append(vec![text(0)]).await.unwrap();
    drop(s);
    let s = SqliteStore::open_url(&format!("sqlite:{}", abs.display())).unwrap();
    assert_eq!(s.last_seq().await.unwrap(), 1, "sqlite:PATH opens the same file");

    for url in ["sqlite::memory:", "sqlite://:memory:"] {
        let m = SqliteStore::open_url(url).unwrap();
        assert_eq!(m.location(), ":memory:");
        assert_eq!(m.append(vec![text(0)]).await.unwrap()[0].seq, 1);
    }
    // Two in-memory stores are separate databases.
    let a = SqliteStore::in_memory().unwrap();
    let b = SqliteStore::in_memory().unwrap();
    a.append(vec![text(0)]).await.unwrap();
    assert_eq!(b.last_seq().await.unwrap(), 0);

    for bad in ["postgres://x", "sqlite:", "sqlite://", "/plain/path.db"] {
        assert!(matches!(SqliteStore::open_url(bad), Err(StoreError::Open { .. })), "{bad} is refused");
    }
}

/// Migration 3 lifts the role, template and tools out of the metadata of agents written before they
/// were columns, and the store reads them back as typed fields.
#[tokio::test]
async fn migration_3_lifts_role_template_and_tools_out_of_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("orch.db");
    let agent = Agent::new("old", "scripted", "/w");
    {
        let store = SqliteStore::open(&path).unwrap();
        store.create_agent(&agent).await.unwrap();
    }
    {
        // Back to the version-2 layout, with the fields where version 2 kept them.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(
            "ALTER TABLE agents DROP COLUMN role; ALTER TABLE agents DROP COLUMN template_name; \
             ALTER TABLE agents DROP COLUMN template_color; ALTER TABLE agents DROP COLUMN tools; \
             ALTER TABLE agents DROP COLUMN context_used; ALTER TABLE agents DROP COLUMN context_window; \
             ALTER TABLE agents DROP COLUMN compact_at; ALTER TABLE agents DROP COLUMN parent_id; \
             ALTER TABLE workflows DROP COLUMN run_lease; \
             UPDATE agents SET metadata = '{\"role\":\"orchestrator\",\"template_name\":\"builder\", \
             \"template_color\":\"#ff00aa\",\"tools\":[\"Read\",\"Grep\"],\"keep\":1}'; \
             DROP TABLE plans; DROP TABLE task_graphs; DROP TABLE tasks; DROP TABLE task_deps; \
             DROP TABLE workers; DROP TABLE budget_limits; DROP TABLE budget_spend; \
             PRAGMA user_version = 2;",
        )
        .unwrap();
    }
    let store = SqliteStore::open(&path).unwrap();
    let got = store.get_agent(agent.id).await.unwrap().unwrap();
    assert_eq!(got.role, orch_core::wire::AgentRole::Orchestrator);
    assert_eq!(got.template.as_ref().map(|t| t.name.as_str()), Some("builder"));
    assert_eq!(got.template.as_ref().and_then(|t| t.color.as_deref()), Some("#ff00aa"));
    assert_eq!(got.tools, Some(vec!["Read".to_string(), "Grep".to_string()]));
    assert_eq!(got.metadata, serde_json::json!({"keep": 1}), "the lifted keys leave the metadata");
    let conn = rusqlite::Connection::open(&path).unwrap();
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0)).unwrap();
    assert_eq!(version, SCHEMA_VERSION);
}
