//! What every request handler shares: the engine (from the one composition root), the orchestrator
//! this server hosts, the workflow runs it started, and its settings.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};

use orch_core::engine::Engine;
use orch_core::graph::GraphRunner;
use orch_core::orchestrator::Orchestrator;
use orch_core::orchestrator::autocomplete::Autocompleter;
use orch_core::wire::Id;
use orch_core::workflow::WorkflowTicket;

/// The server's shared state (cheap to clone).
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    engine: Engine,
    orchestrator: Orchestrator,
    graphs: GraphRunner,
    autocomplete: Option<Arc<Autocompleter>>,
    hub: Arc<super::hub::Hub>,
    token: Option<String>,
    working_dir: PathBuf,
    websockets: AtomicUsize,
    workflows: Mutex<HashMap<Id, WorkflowTicket>>,
    metrics: super::limits::Metrics,
    limiter: super::limits::RateLimiter,
}

impl AppState {
    /// The state of a server on `engine`, hosting `orchestrator` and running graphs with `graphs`;
    /// `token` guards every request.
    pub fn new(
        engine: Engine,
        orchestrator: Orchestrator,
        graphs: GraphRunner,
        autocomplete: Option<Autocompleter>,
        hub: Arc<super::hub::Hub>,
        token: Option<String>,
    ) -> Self {
        let working_dir = engine.working_dir().to_path_buf();
        Self {
            inner: Arc::new(Inner {
                engine,
                orchestrator,
                graphs,
                autocomplete: autocomplete.map(Arc::new),
                hub,
                token,
                working_dir,
                websockets: AtomicUsize::new(0),
                workflows: Mutex::new(HashMap::new()),
                metrics: super::limits::Metrics::default(),
                limiter: super::limits::RateLimiter::from_env(),
            }),
        }
    }

    /// The engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// The orchestrator this server hosts.
    pub fn orchestrator(&self) -> &Orchestrator {
        &self.inner.orchestrator
    }

    /// The runner of task graphs (routing, budgets, checkpoints, external claims).
    pub fn graphs(&self) -> &GraphRunner {
        &self.inner.graphs
    }

    /// The follower of the log that every WebSocket client shares.
    pub fn hub(&self) -> &Arc<super::hub::Hub> {
        &self.inner.hub
    }

    /// The autocomplete expert, if a model is configured for it.
    pub fn autocomplete(&self) -> Option<&Arc<Autocompleter>> {
        self.inner.autocomplete.as_ref()
    }

    /// The token every request must carry, if one is set.
    pub fn token(&self) -> Option<&str> {
        self.inner.token.as_deref()
    }

    /// The working dir.
    pub fn working_dir(&self) -> &std::path::Path {
        &self.inner.working_dir
    }

    /// The count of open WebSocket connections.
    pub fn websockets(&self) -> &AtomicUsize {
        &self.inner.websockets
    }

    /// The server's counters.
    pub fn metrics(&self) -> &super::limits::Metrics {
        &self.inner.metrics
    }

    /// The rate limit of requests that start work.
    pub fn limiter(&self) -> &super::limits::RateLimiter {
        &self.inner.limiter
    }

    /// How many workflow runs this server started are still running.
    pub fn running_workflows(&self) -> usize {
        let runs = self.inner.workflows.lock().unwrap_or_else(|p| p.into_inner());
        runs.values().filter(|t| !t.is_done()).count()
    }

    /// Keeps a workflow run this server started (so it can be interrupted on shutdown).
    pub fn keep_workflow(&self, ticket: WorkflowTicket) {
        let mut runs = self.inner.workflows.lock().unwrap_or_else(|p| p.into_inner());
        runs.retain(|_, t| !t.is_done());
        runs.insert(ticket.id, ticket);
    }
}
