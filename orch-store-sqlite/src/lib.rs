//! # orch-store-sqlite
//!
//! The embedded [`Store`] for orch: one SQLite file (bundled SQLite, nothing to install), by default
//! `<project>/.orch/orch.db` ([`default_path`]).
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::sync::Arc;
//! use orch_core::store::{EventQuery, Store};
//! use orch_store_sqlite::{SqliteStore, default_path};
//!
//! let store: Arc<dyn Store> = Arc::new(SqliteStore::open(default_path(&std::env::current_dir()?))?);
//! let events = store.read_events(&EventQuery::after(0)).await?;
//! # let _ = events; Ok(()) }
//! ```
//!
//! Constructors: [`SqliteStore::open`] (a file; its parent directory is created), [`SqliteStore::in_memory`]
//! (private to the store, gone when it is dropped), [`SqliteStore::open_url`] (`sqlite://PATH`,
//! `sqlite:PATH`, `sqlite::memory:`) and [`SqliteStore::open_read_only`] (an existing database, for reading
//! only: nothing is created, migrated or written; writes fail). They are synchronous (opening may wait up
//! to 10 s for another process holding the database lock): call them at startup or from a blocking
//! context.
//!
//! ## Opening is safe
//!
//! Before anything is written, an existing file is checked read-only: a file that is not a SQLite database
//! gives [`StoreError::Corrupt`], a database written by a newer orch (higher schema version) gives
//! [`StoreError::NewerSchema`] — in both cases the file is left byte-for-byte untouched. A path that cannot
//! be created or written gives [`StoreError::Open`] naming it. Migrations are versioned
//! (`PRAGMA user_version`) and applied on open, in one transaction. A transaction that a crash left
//! unfinished (a hot `-journal` beside the file, e.g. from a process killed while creating the database)
//! is rolled back before those checks, as SQLite does on any open that may write; a crash at any point
//! of creating a database thus leaves one that the next open accepts and finishes creating.
//!
//! ## Durability
//!
//! The database runs in WAL mode with `synchronous = FULL`: every write call (an `append`, a
//! `commit_step`, an entity update) returns only after its transaction is committed and synced, so what a
//! call reported stored survives a crash or power loss.
//!
//! ## Throughput: one writer, coalesced commits
//!
//! All writes of a store go to one dedicated writer thread. It takes every request waiting in its queue
//! and applies them in one `BEGIN IMMEDIATE` transaction (each in its own savepoint, so a failing request,
//! e.g. a taken agent name, does not undo the others), then commits once. The savepoints' statement
//! journal is kept in memory (`temp_store = MEMORY`), not in a temporary file. Many concurrent `append`
//! calls thus share a single sync. Event `seq`s are assigned inside that transaction as `max(seq) + 1`, so commit
//! order is seq order and the log has no gaps. Reads use a small pool of separate connections and never
//! wait for the writer (WAL readers see the last committed state). All SQLite work runs off the async
//! executor, on the store's own threads: one writer and four readers, however many agents run.
//!
//! ## Several processes
//!
//! Several processes (or several `SqliteStore`s) may open the same file. SQLite serializes their write
//! transactions (`BEGIN IMMEDIATE`, waiting up to 10 s on a busy database), so seqs stay global and
//! gap-free across processes. [`Store::subscribe`] wakes at once on this store's own commits and polls
//! `PRAGMA data_version` every 25 ms to see commits of other processes. A database file on a network file
//! system is not supported (WAL needs shared memory on one host).

mod batch;
mod read_only;
mod schema;
mod sql;
mod writer;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use async_trait::async_trait;
use orch_core::store::{
    AgentFilter, Batch, Durability, EventQuery, EventStream, KnownSeq, Store, StoreError, StoreResult, StoreStatus,
    SystemLogQuery, Wakeup, follow_log, follow_log_matching_known,
};
use orch_core::wire::{
    Agent, ChatMessage, EventRecord, Id, Message, Orchestrator, Plan, Prompt, SystemLog, Task, TaskGraph,
    WorkflowRecord,
};
use rusqlite::{Connection, OpenFlags};
use tokio::sync::watch;

use read_only::Access;
pub use schema::SCHEMA_VERSION;
use writer::{BoxJob, WriteCtx};

/// How often a subscriber's store checks for commits made by other processes.
const POLL_INTERVAL: Duration = Duration::from_millis(25);
/// Reader threads (each with its own connection) of a database file.
const READERS: usize = 4;

/// The default database of a project: `<cwd>/.orch/orch.db`.
pub fn default_path(cwd: &Path) -> PathBuf {
    cwd.join(".orch").join("orch.db")
}

/// A [`Store`] in a SQLite database. Cheap to clone: clones share the connections and the writer.
///
/// See the [crate docs](crate) for durability and multi-process behaviour.
#[derive(Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for SqliteStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SqliteStore").field("location", &self.inner.location).finish()
    }
}

struct Inner {
    /// The path, or `:memory:`.
    location: String,
    /// `None` for an in-memory database: reads then go through the writer's connection.
    path: Option<PathBuf>,
    writer: Option<mpsc::Sender<BoxJob>>,
    writer_thread: Option<JoinHandle<()>>,
    /// The highest seq known committed: raised by the writer after each commit, and by the poller when
    /// another process commits.
    last_seq: watch::Sender<u64>,
    /// The highest seq the poller saw (every [`POLL_INTERVAL`] at most): what followers of other
    /// processes' commits wait on, so they do not wake on each of this process's own commits.
    polled_seq: watch::Sender<u64>,
    /// The queue of the reader threads (`None` for an in-memory database).
    reads: Option<mpsc::Sender<ReadJob>>,
    /// The reader threads, joined on drop so their connections are closed before the writer's.
    reader_threads: Vec<JoinHandle<()>>,
    poller: OnceLock<()>,
    /// How the readers (and the poller) open the file; not [`Access::ReadWrite`] for a store opened with
    /// [`SqliteStore::open_read_only`], which has no writer.
    access: Access,
    /// Transactions the writer committed.
    commits: Arc<std::sync::atomic::AtomicU64>,
}

impl Inner {
    /// Why a write cannot be queued.
    fn no_writer(&self) -> StoreError {
        if self.access == Access::ReadWrite {
            writer_gone()
        } else {
            StoreError::Backend(format!("the database {} is opened read-only: writes are refused", self.location))
        }
    }
}

/// A read, run by a reader thread on its connection (or given the error opening one).
type ReadJob = Box<dyn FnOnce(StoreResult<&Connection>) + Send>;

/// Starts the reader threads of a database file. Each opens its connection on its first job; all take
/// jobs from one queue, so however many agents read at once, the store holds `READERS` threads and
/// connections, and the callers wait without a thread.
fn start_readers(
    path: &Path,
    location: &str,
    access: Access,
) -> Result<(mpsc::Sender<ReadJob>, Vec<JoinHandle<()>>), StoreError> {
    let (tx, rx) = mpsc::channel::<ReadJob>();
    let rx = Arc::new(Mutex::new(rx));
    let mut threads = Vec::with_capacity(READERS);
    for i in 0..READERS {
        let (rx, path, loc) = (rx.clone(), path.to_path_buf(), location.to_string());
        let thread = std::thread::Builder::new()
            .name(format!("orch-sqlite-reader-{i}"))
            .spawn(move || {
                let mut conn: Option<Connection> = None;
                loop {
                    let job = match rx.lock() {
                        Ok(q) => q.recv(),
                        Err(_) => return,
                    };
                    let Ok(job) = job else { return };
                    match &conn {
                        Some(c) => job(Ok(c)),
                        None => match open_reader(&path, &loc, access) {
                            Ok(c) => job(Ok(&*conn.insert(c))),
                            Err(e) => job(Err(e)),
                        },
                    }
                }
            })
            .map_err(|e| StoreError::Open {
                location: location.to_string(),
                message: format!("cannot start a reader: {e}"),
            })?;
        threads.push(thread);
    }
    Ok((tx, threads))
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queues stops the readers, then the writer once it has answered what is queued;
        // wait for them so the database is closed (and its WAL checkpointed) when the last handle is
        // dropped, not left to the process's exit.
        drop(self.reads.take());
        for t in self.reader_threads.drain(..) {
            if t.thread().id() != std::thread::current().id() {
                let _ = t.join();
            }
        }
        drop(self.writer.take());
        if let Some(t) = self.writer_thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

impl SqliteStore {
    /// Opens (creating if needed) the database file at `path`, creating its parent directory, and brings
    /// its schema up to date.
    ///
    /// Errors: [`StoreError::Open`] if the path cannot be created or written, [`StoreError::Corrupt`] if the
    /// file is not an orch SQLite database, [`StoreError::NewerSchema`] if a newer orch wrote it. In the
    /// last two cases the file is not modified.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let location = path.display().to_string();
        if let Some(parent) = path.parent()
            && !parent.as_os_str().is_empty()
        {
            create_directory(parent, &location)?;
        }
        // Processes opening one file at once take turns until its schema is in place: two creating a
        // new database together otherwise race on the switch to WAL and on the first migration.
        let _opening = lock_directory_of(&path);
        schema::check_existing(&path, &location)?;
        let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_CREATE | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let mut conn = Connection::open_with_flags(&path, flags).map_err(|e| schema::open_error(&location, e))?;
        if conn.is_readonly(rusqlite::MAIN_DB).map_err(|e| schema::open_error(&location, e))? {
            return Err(StoreError::Open { location, message: "the database file is read-only".into() });
        }
        schema::configure_writer_file(&conn, &location)?;
        schema::migrate(&mut conn, &location)?;
        Self::start(conn, location, Some(path))
    }

    /// Opens the existing database at `path` for reading only, for a file (or directory) this process may
    /// not write, e.g. a backup or another user's database.
    ///
    /// Nothing is created, migrated or written: the connections use SQLite's read-only mode (so even a
    /// process that could write the file does not). Every read of the [`Store`] works; every write fails
    /// with [`StoreError::Backend`] saying the database is opened read-only. Commits of other processes
    /// are seen as with [`SqliteStore::open`], except in a read-only directory holding no `-wal` file,
    /// where SQLite cannot create the shared-memory file WAL readers use: the file is then read as
    /// unchanging (SQLite's `immutable`), and changes made after opening are not seen.
    ///
    /// Errors: [`StoreError::Open`] if there is no such file, it is empty or holds no orch schema yet, its
    /// schema is older than this build's (it needs [`SqliteStore::open`] once to migrate), or a crash
    /// left a transaction to roll back; [`StoreError::Corrupt`] if it is not an orch SQLite database;
    /// [`StoreError::NewerSchema`] if a newer orch wrote it.
    pub fn open_read_only(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let location = path.display().to_string();
        let (conn, access) = read_only::open(&path, &location)?;
        let last = sql::last_seq(&conn)?;
        drop(conn);
        let (reads, reader_threads) = start_readers(&path, &location, access)?;
        Ok(Self {
            inner: Arc::new(Inner {
                location,
                path: Some(path),
                writer: None,
                writer_thread: None,
                last_seq: watch::channel(last).0,
                polled_seq: watch::channel(last).0,
                reads: Some(reads),
                reader_threads,
                poller: OnceLock::new(),
                access,
                commits: Arc::default(),
            }),
        })
    }

    /// A fresh database in memory, private to this store (and its clones); gone when the last is dropped.
    pub fn in_memory() -> Result<Self, StoreError> {
        let location = ":memory:".to_string();
        let mut conn = Connection::open_in_memory().map_err(|e| schema::open_error(&location, e))?;
        schema::configure_common(&conn).map_err(|e| schema::open_error(&location, e))?;
        schema::migrate(&mut conn, &location)?;
        Self::start(conn, location, None)
    }

    /// Opens a database by URL: `sqlite://PATH` (so `sqlite:///abs/path` for an absolute path),
    /// `sqlite:PATH`, or `sqlite::memory:` (also `sqlite://:memory:`) for [`SqliteStore::in_memory`].
    pub fn open_url(url: &str) -> Result<Self, StoreError> {
        let rest =
            url.strip_prefix("sqlite://").or_else(|| url.strip_prefix("sqlite:")).ok_or_else(|| StoreError::Open {
                location: url.to_string(),
                message: "not a SQLite URL (expected sqlite://PATH, sqlite:PATH or sqlite::memory:)".into(),
            })?;
        match rest {
            ":memory:" => Self::in_memory(),
            "" => Err(StoreError::Open { location: url.to_string(), message: "the URL names no file".into() }),
            path => Self::open(path),
        }
    }

    /// Where the database is: its path, or `:memory:`.
    pub fn location(&self) -> &str {
        &self.inner.location
    }

    /// How many write transactions this store's writer has committed since it was opened (several
    /// concurrent writes share one): what a benchmark divides by its work to count commits per unit.
    pub fn commits(&self) -> u64 {
        self.inner.commits.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn start(conn: Connection, location: String, path: Option<PathBuf>) -> Result<Self, StoreError> {
        let last = sql::last_seq(&conn)?;
        let (reads, reader_threads) = match &path {
            Some(p) => {
                let (tx, threads) = start_readers(p, &location, Access::ReadWrite)?;
                (Some(tx), threads)
            }
            None => (None, Vec::new()),
        };
        let (last_seq, _) = watch::channel(last);
        let (tx, rx) = mpsc::channel::<BoxJob>();
        let watch = last_seq.clone();
        let commits = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let counter = commits.clone();
        let thread = std::thread::Builder::new()
            .name("orch-sqlite-writer".into())
            .spawn(move || writer::run(conn, rx, watch, &counter))
            .map_err(|e| StoreError::Open {
                location: location.clone(),
                message: format!("cannot start writer: {e}"),
            })?;
        Ok(Self {
            inner: Arc::new(Inner {
                location,
                path,
                writer: Some(tx),
                writer_thread: Some(thread),
                last_seq,
                polled_seq: watch::channel(last).0,
                reads,
                reader_threads,
                poller: OnceLock::new(),
                access: Access::ReadWrite,
                commits,
            }),
        })
    }

    /// Runs `f` on the writer thread, inside its batch transaction; answers after the commit.
    async fn write<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        self.write_with(f, false).await
    }

    /// Runs `f` on the writer; `relaxed`: it may commit without a sync ([`Durability::Relaxed`]).
    async fn write_with<T, F>(&self, f: F, relaxed: bool) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut WriteCtx<'_>) -> StoreResult<T> + Send + 'static,
    {
        let (job, rx) = writer::job(f, relaxed);
        let sender = self.inner.writer.as_ref().ok_or_else(|| self.inner.no_writer())?;
        sender.send(job).map_err(|_| writer_gone())?;
        rx.await.map_err(|_| writer_gone())?
    }

    /// Runs `f` on a reader thread's connection (through the writer for in-memory databases).
    async fn read<T, F>(&self, f: F) -> StoreResult<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> StoreResult<T> + Send + 'static,
    {
        let Some(reads) = &self.inner.reads else {
            return self.write(move |ctx| f(ctx.conn)).await;
        };
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: ReadJob = Box::new(move |conn| {
            let _ = tx.send(conn.and_then(f));
        });
        reads.send(job).map_err(|_| StoreError::Backend("the store's reader threads are gone".into()))?;
        rx.await.map_err(|_| StoreError::Backend("a read was dropped by its reader thread".into()))?
    }

    /// Starts (once) the thread that notices commits of other processes.
    fn ensure_poller(&self) {
        let Some(path) = self.inner.path.clone() else { return };
        self.inner.poller.get_or_init(|| {
            let weak = Arc::downgrade(&self.inner);
            let spawned = std::thread::Builder::new().name("orch-sqlite-poller".into()).spawn(move || poll(weak, path));
            if let Err(e) = spawned {
                tracing::warn!(error = %e, "cannot start the SQLite poller; other processes' events arrive late");
            }
        });
    }
}

fn writer_gone() -> StoreError {
    StoreError::Backend("the SQLite writer thread has stopped".into())
}

/// Creates the directory that holds a database file, with its parents. orch's own directory (one named
/// `.orch`, as [`default_path`]'s is), when created here, gets a `.gitignore` holding `*`, so `git status`
/// never lists the database (an existing `.gitignore` is never touched).
fn create_directory(dir: &Path, location: &str) -> Result<(), StoreError> {
    let failed = |e: std::io::Error| StoreError::Open {
        location: location.to_string(),
        message: format!("cannot create directory {}: {e}", dir.display()),
    };
    if dir.is_dir() {
        return Ok(());
    }
    if let Some(parent) = dir.parent()
        && !parent.as_os_str().is_empty()
    {
        std::fs::create_dir_all(parent).map_err(failed)?;
    }
    match std::fs::create_dir(dir) {
        Ok(()) => {}
        // Another process created it meanwhile (and writes its .gitignore).
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists && dir.is_dir() => return Ok(()),
        Err(e) => return Err(failed(e)),
    }
    if dir.file_name().is_some_and(|n| n == ".orch") {
        let ignore = dir.join(".gitignore");
        let written = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&ignore)
            .and_then(|mut f| std::io::Write::write_all(&mut f, b"*\n"));
        if let Err(e) = written {
            tracing::warn!(file = %ignore.display(), error = %e, "cannot write the .gitignore of orch's directory");
        }
    }
    Ok(())
}

/// An exclusive advisory lock (`flock`) on the directory holding `path`, released when dropped. `None`
/// where directories cannot be locked; opening then goes without it.
fn lock_directory_of(path: &Path) -> Option<std::fs::File> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let handle = std::fs::File::open(dir).ok()?;
    match handle.lock() {
        Ok(()) => Some(handle),
        Err(e) => {
            tracing::debug!(dir = %dir.display(), error = %e, "cannot lock the database directory while opening");
            None
        }
    }
}

fn open_reader(path: &Path, location: &str, access: Access) -> StoreResult<Connection> {
    let conn = access.connect(path).map_err(|e| schema::open_error(location, e))?;
    schema::configure_common(&conn).map_err(|e| schema::open_error(location, e))?;
    conn.pragma_update(None, "query_only", true).map_err(|e| schema::open_error(location, e))?;
    Ok(conn)
}

/// Polls `PRAGMA data_version` (cheap; it changes when another connection commits) while anyone waits on
/// the store's `last_seq`, and raises it when another process appended. Exits when the store is dropped.
fn poll(store: Weak<Inner>, path: PathBuf) {
    let mut conn: Option<Connection> = None;
    let mut seen_version: Option<i64> = None;
    loop {
        std::thread::sleep(POLL_INTERVAL);
        let Some(inner) = store.upgrade() else { return };
        if inner.last_seq.receiver_count() == 0 && inner.polled_seq.receiver_count() == 0 {
            continue;
        }
        if conn.is_none() {
            match open_reader(&path, &inner.location, inner.access) {
                Ok(c) => conn = Some(c),
                Err(e) => {
                    tracing::warn!(error = %e, "SQLite poller cannot open the database");
                    continue;
                }
            }
        }
        let Some(c) = conn.as_ref() else { continue };
        let version: Result<i64, _> = c.pragma_query_value(None, "data_version", |r| r.get(0));
        let Ok(version) = version else {
            conn = None;
            continue;
        };
        if seen_version == Some(version) {
            continue;
        }
        seen_version = Some(version);
        if let Ok(max) = sql::last_seq(c) {
            inner.polled_seq.send_if_modified(|v| {
                let raise = max > *v;
                if raise {
                    *v = max;
                }
                raise
            });
            inner.last_seq.send_if_modified(|v| {
                let raise = max > *v;
                if raise {
                    *v = max;
                }
                raise
            });
        }
    }
}

#[async_trait]
impl Store for SqliteStore {
    async fn commit(&self, batch: Batch) -> StoreResult<Vec<EventRecord>> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let relaxed = batch.durability == Durability::Relaxed;
        let prepared = batch::prepare(batch)?;
        self.write_with(move |ctx| batch::commit(ctx, prepared), relaxed).await
    }

    async fn get_orchestrator(&self, id: Id) -> StoreResult<Option<Orchestrator>> {
        self.read(move |c| sql::get_orchestrator(c, id)).await
    }

    async fn list_orchestrators(&self, include_archived: bool) -> StoreResult<Vec<Orchestrator>> {
        self.read(move |c| sql::list_orchestrators(c, include_archived)).await
    }

    async fn get_agent(&self, id: Id) -> StoreResult<Option<Agent>> {
        self.read(move |c| sql::get_agent(c, id)).await
    }

    async fn find_agent(&self, orchestrator_id: Option<Id>, name: &str) -> StoreResult<Option<Agent>> {
        let name = name.to_string();
        self.read(move |c| sql::find_agent(c, orchestrator_id, &name)).await
    }

    async fn list_agents(&self, filter: &AgentFilter) -> StoreResult<Vec<Agent>> {
        let filter = filter.clone();
        self.read(move |c| sql::list_agents(c, &filter)).await
    }

    async fn list_prompts(&self, agent_id: Id) -> StoreResult<Vec<Prompt>> {
        self.read(move |c| sql::list_prompts(c, agent_id)).await
    }

    async fn list_chat(&self, orchestrator_id: Id, limit: usize) -> StoreResult<Vec<ChatMessage>> {
        self.read(move |c| sql::list_chat(c, orchestrator_id, limit)).await
    }

    async fn list_system_logs(&self, query: &SystemLogQuery) -> StoreResult<Vec<SystemLog>> {
        let q = query.clone();
        self.read(move |c| sql::list_system_logs(c, &q)).await
    }

    async fn get_workflow(&self, id: Id) -> StoreResult<Option<WorkflowRecord>> {
        self.read(move |c| sql::get_workflow(c, id)).await
    }

    async fn list_workflows(&self, orchestrator_id: Option<Id>, limit: usize) -> StoreResult<Vec<WorkflowRecord>> {
        self.read(move |c| sql::list_workflows(c, orchestrator_id, limit)).await
    }

    async fn get_plan(&self, id: Id, version: Option<u32>) -> StoreResult<Option<Plan>> {
        self.read(move |c| sql::get_plan(c, id, version)).await
    }

    async fn list_plans(&self, limit: usize) -> StoreResult<Vec<Plan>> {
        self.read(move |c| sql::list_plans(c, limit)).await
    }

    async fn get_graph(&self, id: Id) -> StoreResult<Option<TaskGraph>> {
        self.read(move |c| sql::get_graph(c, id)).await
    }

    async fn list_graphs(&self, limit: usize) -> StoreResult<Vec<TaskGraph>> {
        self.read(move |c| sql::list_graphs(c, limit)).await
    }

    async fn get_task(&self, id: Id) -> StoreResult<Option<Task>> {
        self.read(move |c| sql::get_task(c, id)).await
    }

    async fn list_tasks(&self, graph_id: Id) -> StoreResult<Vec<Task>> {
        self.read(move |c| sql::list_tasks(c, graph_id)).await
    }

    async fn find_tasks(&self, graph_id: Id, names: &[String]) -> StoreResult<Vec<Task>> {
        let names = names.to_vec();
        self.read(move |c| sql::find_tasks(c, graph_id, &names)).await
    }

    async fn graph_facts(&self, graph_id: Id) -> StoreResult<Vec<orch_core::wire::Fact>> {
        self.read(move |c| sql::graph_facts(c, graph_id)).await
    }

    async fn budget(&self, day: &str, month: &str) -> StoreResult<orch_core::wire::BudgetStatus> {
        let (day, month) = (day.to_string(), month.to_string());
        self.read(move |c| sql::budget(c, &day, &month)).await
    }

    async fn list_workers(&self) -> StoreResult<Vec<orch_core::wire::WorkerInfo>> {
        self.read(sql::list_workers).await
    }

    async fn load_conversation(&self, agent_id: Id) -> StoreResult<Vec<Message>> {
        self.read(move |c| sql::load_conversation(c, agent_id)).await
    }

    async fn load_executor_state(&self, agent_id: Id) -> StoreResult<Option<serde_json::Value>> {
        self.read(move |c| sql::load_executor_state(c, agent_id)).await
    }

    async fn read_events(&self, query: &EventQuery) -> StoreResult<Vec<EventRecord>> {
        let q = query.clone();
        self.read(move |c| sql::read_events(c, &q)).await
    }

    async fn status(&self) -> StoreResult<StoreStatus> {
        let (events, last_seq) = self.read(|c| Ok((sql::count_events(c)?, sql::last_seq(c)?))).await?;
        let size_bytes = self.inner.path.as_ref().map(|p| {
            let mut wal = p.as_os_str().to_owned();
            wal.push("-wal");
            [p.clone(), PathBuf::from(wal)].iter().filter_map(|f| std::fs::metadata(f).ok()).map(|m| m.len()).sum()
        });
        Ok(StoreStatus {
            backend: "sqlite".into(),
            location: self.location().to_string(),
            schema_version: SCHEMA_VERSION,
            events,
            last_seq,
            size_bytes,
        })
    }

    async fn prune_events(&self, before: orch_core::wire::Timestamp) -> StoreResult<u64> {
        self.write(move |ctx| sql::prune_events(ctx.conn, before)).await
    }

    async fn last_seq(&self) -> StoreResult<u64> {
        self.read(sql::last_seq).await
    }

    fn shared_with_other_processes(&self) -> bool {
        // `sqlite::memory:` lives in this process only.
        self.inner.path.is_some()
    }

    fn subscribe(&self, since: u64) -> EventStream {
        self.ensure_poller();
        let last_seq = self.inner.last_seq.clone();
        let wakeup: Wakeup = Arc::new(move |seen| {
            let mut rx = last_seq.subscribe();
            Box::pin(async move {
                // Returns at once if a later seq is already known; otherwise on this store's next commit
                // or when the poller sees another process's.
                let _ = rx.wait_for(|&last| last > seen).await;
            })
        });
        follow_log(Arc::new(self.clone()), since, wakeup)
    }

    fn subscribe_foreign(&self, since: u64, filter: EventQuery) -> EventStream {
        // In memory, this store's own commits are all there is; on a file, only the poller's signal: at
        // most one wake-up per poll, not one per own commit. Either seq is committed, so a pass reads
        // up to it without asking.
        let seq = if self.inner.path.is_none() {
            self.inner.last_seq.clone()
        } else {
            self.ensure_poller();
            self.inner.polled_seq.clone()
        };
        let watched = seq.clone();
        let wakeup: Wakeup = Arc::new(move |seen| {
            let mut rx = watched.subscribe();
            Box::pin(async move {
                let _ = rx.wait_for(|&last| last > seen).await;
            })
        });
        let known: KnownSeq = Arc::new(move || *seq.borrow());
        follow_log_matching_known(Arc::new(self.clone()), since, wakeup, filter, known)
    }

    fn local_files(&self) -> Vec<PathBuf> {
        let Some(path) = &self.inner.path else { return Vec::new() };
        let path = std::path::absolute(path).unwrap_or_else(|_| path.clone());
        let with = |suffix: &str| {
            let mut p = path.as_os_str().to_owned();
            p.push(suffix);
            PathBuf::from(p)
        };
        vec![with("-wal"), with("-shm"), with("-journal"), path.clone()]
    }
}
