//! The URL → store dispatch and the one call that opens an engine, shared by every host.
//!
//! [`open`] (or [`open_with`] for a customised [`EngineBuilder`]) checks the configuration and builds
//! the providers first, then opens the store named by `store.url`, then finishes the engine. The engine
//! itself is [`orch_core::engine::Engine`].

use std::sync::Arc;

use orch_core::config::OrchConfig;
pub use orch_core::engine::{Engine, EngineBuilder, EngineError, EngineExtension, PreparedEngine};
use orch_core::store::{Store, StoreError};
use orch_store_postgres::{PgOptions, PgStore};
use orch_store_sqlite::SqliteStore;

/// The kind of store a URL names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StoreKind {
    /// The embedded SQLite store at a path (`sqlite://PATH`, `sqlite:PATH`, or a bare path).
    Sqlite,
    /// SQLite in memory (`sqlite::memory:`).
    SqliteMemory,
    /// PostgreSQL (`postgres://…`, `postgresql://…`).
    Postgres,
}

/// Which store `url` names.
pub fn store_kind(url: &str) -> StoreKind {
    if url.starts_with("postgres://") || url.starts_with("postgresql://") {
        StoreKind::Postgres
    } else if url.starts_with("sqlite::memory:") {
        StoreKind::SqliteMemory
    } else {
        StoreKind::Sqlite
    }
}

/// Opens (creating and migrating) the store of `config.store`: SQLite at `<working dir>/.orch/orch.db`
/// when no URL is set, `sqlite:`/paths on SQLite, `postgres://` on PostgreSQL (with `store.pg_schema`
/// and `store.pg_pool`).
pub async fn open_store(config: &OrchConfig) -> Result<Arc<dyn Store>, StoreError> {
    let Some(url) = config.store.url.value.as_ref() else {
        return Ok(Arc::new(SqliteStore::open(orch_store_sqlite::default_path(&config.working_dir.value))?));
    };
    let url = url.expose();
    Ok(match store_kind(url) {
        StoreKind::Postgres => {
            // A value from the process environment is read by the store itself, below the URL's own
            // settings; one from `.env`, the config file or the host is passed explicitly.
            let explicit = |s: &orch_core::config::Source| !s.is_process_env();
            let options = PgOptions {
                schema: config.store.pg_schema.value.clone().filter(|_| explicit(&config.store.pg_schema.source)),
                pool_size: config.store.pg_pool.value.filter(|_| explicit(&config.store.pg_pool.source)),
            };
            Arc::new(PgStore::connect_with(url, options).await?)
        }
        StoreKind::Sqlite if url.starts_with("sqlite:") => Arc::new(SqliteStore::open_url(url)?),
        StoreKind::SqliteMemory => Arc::new(SqliteStore::open_url(url)?),
        StoreKind::Sqlite => Arc::new(SqliteStore::open(url)?),
    })
}

/// Opens the engine of `config`: checks it and builds the providers (no model required), opens its
/// store, and finishes the engine.
pub async fn open(config: OrchConfig) -> Result<Engine, EngineError> {
    open_with(EngineBuilder::new(config)).await
}

/// [`open`] with a customised builder (require a model, add extensions, set the hook relay).
pub async fn open_with(builder: EngineBuilder) -> Result<Engine, EngineError> {
    let prepared = builder.prepare()?;
    let store = open_store(prepared.config()).await?;
    Ok(prepared.with_store(store))
}

/// Logs to stderr as the process environment says, before any configuration is read: `ORCH_LOG` is
/// the filter (default `warn`), `ORCH_LOG_FORMAT=json` writes one JSON object a line (for log
/// collectors) instead of text. With the `otel` feature, and `OTEL_EXPORTER_OTLP_ENDPOINT` set, orch's
/// spans are also exported as OpenTelemetry traces (see [`crate::telemetry`]); call
/// [`flush_telemetry`] before the process exits. Call once, first thing.
pub fn init_logging() {
    use tracing_subscriber::Layer;
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;

    let filter = tracing_subscriber::EnvFilter::try_from_env("ORCH_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let json = std::env::var("ORCH_LOG_FORMAT").is_ok_and(|f| f.trim().eq_ignore_ascii_case("json"));
    let logs = tracing_subscriber::fmt::layer().with_writer(std::io::stderr);
    // Each layer filters for itself: the log's filter does not hide spans from the exporter.
    let logs = if json { logs.json().with_filter(filter).boxed() } else { logs.with_filter(filter).boxed() };
    let registry = tracing_subscriber::registry().with(logs);
    #[cfg(feature = "otel")]
    {
        // No layer at all unless traces are asked for, so orch's spans stay disabled at their callsites.
        let requested = ["OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"]
            .iter()
            .any(|v| std::env::var(v).is_ok_and(|s| !s.trim().is_empty()));
        let service_name = std::env::var("OTEL_SERVICE_NAME")
            .ok()
            .map(|s| s.trim().to_string())
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| crate::telemetry::DEFAULT_SERVICE_NAME.to_string());
        match crate::telemetry::layer(requested, service_name) {
            Ok(Some(traces)) => registry.with(traces).init(),
            Ok(None) => registry.init(),
            Err(e) => {
                registry.init();
                tracing::warn!(error = %e, "OpenTelemetry export is off");
            }
        }
    }
    #[cfg(not(feature = "otel"))]
    registry.init();
}

/// Exports the traces still buffered (feature `otel`; nothing otherwise). Blocks until they are sent
/// or the exporter's timeout passes: call it after the async runtime's work is done.
pub fn flush_telemetry() {
    #[cfg(feature = "otel")]
    crate::telemetry::shutdown();
}
