//! `orch serve`: one process serving orch's API (`/api`), the live event stream (`/ws`), the seed's
//! routes for its dashboard and scripts, and a landing page, on the engine of the shared composition
//! root. It hosts the background work it starts: chat turns, agent runs and workflow runs.

mod api;
mod attention;
mod auth;
mod autocomplete;
mod chat;
mod costs;
mod demo;
mod error;
mod frames;
mod graphs;
mod hub;
mod limits;
mod open_file;
mod openapi;
mod page;
mod seed;
mod state;
mod ui;
mod ws;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get};
use orch_core::engine::Engine;

use crate::chat::Failure;
pub use demo::demo_model;
use error::{ApiError, SeedError};
use state::AppState;

/// The default port (the seed's).
pub const DEFAULT_PORT: u16 = 9403;

/// The largest request body accepted (413 above it).
pub const BODY_LIMIT: usize = 1024 * 1024;

/// How `orch serve` was asked to listen.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// `--host` (else `ORCH_HOST`, `BACKEND_HOST`, `127.0.0.1`).
    pub host: Option<String>,
    /// `--port` (else `ORCH_PORT`, `BACKEND_PORT`, 9403; 0 picks a free one).
    pub port: Option<u16>,
    /// `--token` (else `ORCH_TOKEN`).
    pub token: Option<String>,
    /// `--no-worker`: no in-process task worker.
    pub no_worker: bool,
    /// `--ui DIR`: the dashboard's built files (else `ORCH_UI_DIR`, else the repository's build).
    pub ui: Option<std::path::PathBuf>,
}

fn env(names: &[&str]) -> Option<String> {
    names.iter().find_map(|n| std::env::var(n).ok().map(|v| v.trim().to_string()).filter(|v| !v.is_empty()))
}

/// The address to listen on, the token, and the CORS origins, from the options and the environment;
/// a non-loopback address without a token is refused.
fn settings(options: &ServeOptions) -> Result<(SocketAddr, Option<String>, Vec<String>), Failure> {
    let host =
        options.host.clone().or_else(|| env(&["ORCH_HOST", "BACKEND_HOST"])).unwrap_or_else(|| "127.0.0.1".into());
    let ip: IpAddr = match host.as_str() {
        "localhost" => IpAddr::from([127, 0, 0, 1]),
        h => h
            .parse()
            .map_err(|_| Failure::usage(format!("--host '{h}' is not an IP address (e.g. 127.0.0.1 or 0.0.0.0)")))?,
    };
    let port = match options.port {
        Some(p) => p,
        None => match env(&["ORCH_PORT", "BACKEND_PORT"]) {
            Some(p) => {
                p.parse().map_err(|_| Failure::usage(format!("ORCH_PORT/BACKEND_PORT '{p}' is not a port number")))?
            }
            None => DEFAULT_PORT,
        },
    };
    let token = options.token.clone().filter(|t| !t.trim().is_empty()).or_else(|| env(&["ORCH_TOKEN"]));
    if !ip.is_loopback() && token.is_none() {
        return Err(Failure::usage(format!(
            "refusing to serve on {ip}, which other machines can reach, without a token: pass --token or set ORCH_TOKEN"
        )));
    }
    let origins = match env(&["ORCH_CORS_ORIGINS", "CORS_ORIGINS"]) {
        Some(list) => list.split(',').map(|o| o.trim().to_string()).filter(|o| !o.is_empty()).collect(),
        None => auth::DEFAULT_ORIGINS.iter().map(|o| o.to_string()).collect(),
    };
    Ok((SocketAddr::new(ip, port), token, origins))
}

/// The application: every route and layer, on `state`.
/// With `ui`, `/` and every path no route takes are the dashboard's files (else `/` is the landing page).
fn app(state: AppState, origins: &[String], ui: Option<&std::path::Path>) -> Router {
    let router = match ui {
        Some(_) => Router::new(),
        None => Router::new().route("/", get(page::index)),
    };
    // MCP over streamable HTTP: without a token the server is on loopback, so only local Host headers.
    let mcp = crate::mcp::server(state.engine(), state.orchestrator(), state.graphs().clone());
    let mcp = crate::mcp::http_service(mcp, state.token().is_none());
    let router = router
        .nest("/api", api::routes())
        .merge(seed::routes())
        .route("/ws", any(ws::handler))
        .route_service("/mcp", mcp);
    let router = match ui {
        Some(dir) => {
            let missing = axum::handler::HandlerWithoutStateExt::into_service(not_found);
            router.fallback_service(ui::files(dir, missing))
        }
        None => router.fallback(not_found),
    };
    router
        .layer(axum::middleware::from_fn_with_state(state.clone(), auth::require_token))
        .layer(axum::middleware::from_fn_with_state(state.clone(), limits::track))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(auth::cors(origins))
        .with_state(state)
}

/// Unknown routes: orch's error under `/api`, the seed's `{"detail":"Not Found"}` elsewhere.
async fn not_found(uri: Uri) -> Response {
    let e = ApiError::new(StatusCode::NOT_FOUND, "not_found", format!("no route {}", uri.path()));
    if uri.path().starts_with("/api/") {
        e.into_response()
    } else {
        SeedError(ApiError::new(StatusCode::NOT_FOUND, "not_found", "Not Found")).into_response()
    }
}

/// Serves until SIGINT or SIGTERM, then stops the work it hosts and exits.
pub async fn run(engine: Engine, options: ServeOptions) -> Result<u8, Failure> {
    let (addr, token, origins) = settings(&options)?;
    // From here on SIGINT and SIGTERM stop the server cleanly (its work stopped, its presence removed).
    let terminated = crate::signals::terminated();
    let ui_dir = ui::dir(options.ui.as_deref())?;
    let orchestrator = crate::chat::orchestrator(&engine, None, false).await?;
    let graphs = engine.graph_runner()?;
    let autocomplete = engine.autocompleter().unwrap_or_else(|e| {
        eprintln!("orch serve: no autocomplete: {e}");
        None
    });
    let since = engine.store().last_seq().await?;
    let hub = hub::Hub::start(engine.store().clone(), orchestrator.agent_id(), since);
    let state = AppState::new(engine, orchestrator, graphs, autocomplete, hub, token);
    resume_stale_runs(&state).await;
    let presence = attention::follow(&state, state.graphs().settings().heartbeat).await;
    #[cfg(feature = "notify")]
    let notifications = crate::notify_cmd::start(state.engine(), "orch serve").await?;
    let worker = (!options.no_worker).then(|| start_worker(&state));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|e| Failure::new(orch_core::ErrorKind::Unavailable, format!("cannot listen on {addr}: {e}")))?;
    let bound = listener.local_addr().map_err(|e| Failure::runtime(format!("cannot read the bound address: {e}")))?;
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "orch serve: listening on http://{bound}");
        let _ = out.flush();
    }
    eprintln!(
        "orch serve: working dir {}, orchestrator {}{}",
        state.working_dir().display(),
        state.orchestrator().id(),
        if state.token().is_some() { ", token required" } else { "" }
    );
    let open = if state.token().is_some() { "?token=YOUR_TOKEN" } else { "" };
    eprintln!(
        "  dashboard http://{bound}/{open}  API http://{bound}/api  events ws://{bound}/ws  MCP http://{bound}/mcp   (Ctrl-C stops)"
    );
    match &ui_dir {
        Some(d) => eprintln!("  dashboard files: {}", d.display()),
        None => eprintln!("  no dashboard build: / is a landing page (scripts/build-ui.sh builds the dashboard)"),
    }
    let shutdown_state = state.clone();
    let app = app(state, &origins, ui_dir.as_deref());
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(async move {
            terminated.await;
            eprintln!("orch serve: stopping");
            stop_work(&shutdown_state, worker).await;
            if let Some(p) = presence {
                p.remove().await;
            }
        })
        .await
        .map_err(|e| Failure::runtime(format!("the server failed: {e}")))?;
    #[cfg(feature = "notify")]
    if let Some(n) = notifications {
        n.stop();
    }
    Ok(0)
}

/// Interrupts the chat turns and agent runs this server runs (each records its `Stop` and ends) and
/// waits a little for them. Workflow runs are left as a crash leaves them: the next server on this
/// store (or `orch adw resume`) continues each from where it stopped, its completed steps and tool
/// calls not run again, which an interrupt would not give (an interrupted step runs again whole).
async fn stop_work(state: &AppState, worker: Option<WorkerHandle>) {
    if let Some(w) = &worker {
        w.stop.trigger();
    }
    state.orchestrator().interrupt();
    let runs = state.orchestrator().manager().active_runs();
    for r in &runs {
        r.interrupt();
    }
    let wait = async {
        for r in runs {
            let _ = r.wait().await;
        }
        // The worker's attempts are interrupted; their tasks go back to ready (no failure counted)
        // and the worker's row is removed, so another worker claims them at once.
        if let Some(w) = worker {
            let _ = w.done.await;
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(4), wait).await;
}

/// The server's task worker: what stops it, and its end.
struct WorkerHandle {
    stop: orch_core::Interrupt,
    done: tokio::task::JoinHandle<()>,
}

/// Starts the in-process task worker: it claims and runs the tasks of every running graph, beside any
/// `orch worker` processes and external agents on the same store.
fn start_worker(state: &AppState) -> WorkerHandle {
    let worker = state.graphs().worker(None);
    let stop = worker.stopper();
    eprintln!("orch serve: task worker {} (concurrency {})", worker.id(), state.graphs().settings().concurrency);
    let done = tokio::spawn(async move {
        match worker.run().await {
            Ok(report) => tracing::info!(attempts = report.attempts, "task worker stopped"),
            Err(e) => eprintln!("orch serve: the task worker stopped: {e}"),
        }
    });
    WorkerHandle { stop, done }
}

/// Continues, in this server, the workflow runs whose process is gone (a server stopped or killed
/// mid-run, a detached run that died).
async fn resume_stale_runs(state: &AppState) {
    let runs = match state.engine().store().list_workflows(None, 10_000).await {
        Ok(runs) => runs,
        Err(e) => {
            tracing::warn!(error = %e, "could not list workflow runs to resume");
            return;
        }
    };
    let workflows = state.engine().workflows();
    for run in runs.iter().filter(|r| orch_core::workflow::is_stale(r)) {
        eprintln!(
            "orch serve: resuming workflow run {} ({}, at {})",
            run.name,
            run.id,
            run.current_step.as_deref().unwrap_or("its start")
        );
        state.keep_workflow(workflows.spawn(run));
    }
}
