//! Opening a database for reading only ([`crate::SqliteStore::open_read_only`]): SQLite's read-only mode,
//! nothing created, migrated or written.

use std::os::unix::ffi::OsStrExt;
use std::path::Path;

use orch_core::store::StoreError;
use rusqlite::{Connection, ErrorCode, OpenFlags, ffi};

use crate::schema::{self, BUSY_TIMEOUT, SCHEMA_VERSION};

/// How the connections of a store open its file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Access {
    /// Read-write: the writer and readers of [`crate::SqliteStore::open`] (readers set `query_only`).
    ReadWrite,
    /// SQLite's read-only mode: SQLite never writes to the database file.
    ReadOnly,
    /// Read-only, and the file taken as unchanging (`immutable=1`): for a WAL database in a directory this
    /// process cannot write, which SQLite's read-only mode cannot read (it needs a `-shm` file there),
    /// while no process has it open (no `-wal` file). Changes made after opening are not seen.
    Immutable,
}

impl Access {
    /// A connection to `path` with this access.
    pub(crate) fn connect(self, path: &Path) -> rusqlite::Result<Connection> {
        let flags = OpenFlags::SQLITE_OPEN_NO_MUTEX;
        match self {
            Access::ReadWrite => Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_WRITE),
            Access::ReadOnly => Connection::open_with_flags(path, flags | OpenFlags::SQLITE_OPEN_READ_ONLY),
            Access::Immutable => Connection::open_with_flags(
                format!("file:{}?immutable=1", uri_path(path)),
                flags | OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_URI,
            ),
        }
    }
}

/// `path` for a `file:` URI: every byte but unreserved ones and `/` percent-encoded.
fn uri_path(path: &Path) -> String {
    let mut out = String::new();
    for &b in path.as_os_str().as_bytes() {
        if b.is_ascii_alphanumeric() || b"/-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn side_file_exists(path: &Path, suffix: &str) -> bool {
    let mut p = path.as_os_str().to_owned();
    p.push(suffix);
    Path::new(&p).exists()
}

fn extended_code(e: &rusqlite::Error) -> Option<i32> {
    match e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    }
}

/// A connection with `access` and the database's schema version (the first read).
fn connect_and_read(path: &Path, access: Access) -> rusqlite::Result<(Connection, i64)> {
    let conn = access.connect(path)?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let version = schema::user_version(&conn)?;
    Ok((conn, version))
}

/// Opens the existing orch database at `path` read-only and checks it is one this build reads as it is:
/// same schema version (an older one would need migrating, a newer one is refused). Returns the connection
/// that checked it and how the store's connections must open the file.
pub(crate) fn open(path: &Path, location: &str) -> Result<(Connection, Access), StoreError> {
    let open_err = |message: String| StoreError::Open { location: location.to_string(), message };
    let meta = std::fs::metadata(path).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => open_err("no such database file (opening read-only creates nothing)".into()),
        _ => open_err(e.to_string()),
    })?;
    if meta.is_dir() {
        return Err(open_err("is a directory".into()));
    }
    if meta.len() == 0 {
        return Err(open_err("the file is empty: no orch database yet (opening read-only creates nothing)".into()));
    }
    // With a rollback journal beside it, the file may hold uncommitted pages, even a half-written header:
    // SQLite decides (a hot journal is refused below).
    if !schema::has_journal(path) {
        schema::check_header(path, location)?;
    }
    let (conn, access, version) = match connect_and_read(path, Access::ReadOnly) {
        Ok((conn, version)) => (conn, Access::ReadOnly, version),
        Err(e) if extended_code(&e) == Some(ffi::SQLITE_READONLY_ROLLBACK) => {
            return Err(open_err(format!(
                "a transaction a crash left unfinished must be rolled back first (journal {}), which needs \
                 write access: open the database once read-write",
                schema::journal_path(path).display()
            )));
        }
        // A WAL database whose -shm file cannot be created here (a read-only directory).
        Err(e)
            if e.sqlite_error_code() == Some(ErrorCode::ReadOnly)
                || e.sqlite_error_code() == Some(ErrorCode::CannotOpen) =>
        {
            if side_file_exists(path, "-wal") {
                return Err(open_err(format!(
                    "{e} (its write-ahead log {location}-wal is in use, and SQLite cannot create the {location}-shm \
                     file readers need in a directory this process cannot write)"
                )));
            }
            let (conn, version) =
                connect_and_read(path, Access::Immutable).map_err(|e| schema::open_error(location, e))?;
            tracing::debug!(location, "read-only directory: reading the database as immutable");
            (conn, Access::Immutable, version)
        }
        Err(e) => return Err(schema::open_error(location, e)),
    };
    if version > SCHEMA_VERSION {
        return Err(schema::newer(location, version));
    }
    if version == 0 {
        if schema::has_tables(&conn).map_err(|e| schema::open_error(location, e))? {
            return Err(schema::corrupt(location, "a SQLite database with tables but no orch schema version"));
        }
        return Err(open_err("an empty database: no orch schema yet (opening read-only creates nothing)".into()));
    }
    if version < SCHEMA_VERSION {
        return Err(open_err(format!(
            "schema version {version} is older than this orch's ({SCHEMA_VERSION}): open the database once \
             read-write to migrate it"
        )));
    }
    Ok((conn, access))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uri_paths_escape_what_a_uri_would_read() {
        assert_eq!(uri_path(Path::new("/a b/x?y#z%.db")), "/a%20b/x%3Fy%23z%25.db");
    }
}
