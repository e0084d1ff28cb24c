//! Following the event log live: `async for ev in engine.follow(...)` (or `for ev in
//! engine.sync.follow(...)`), every matching event exactly once, in order, also those other processes
//! append.

use std::sync::Arc;

use futures::StreamExt;
use orch_core::store::{EventQuery, EventStream};
use pyo3::exceptions::{PyStopAsyncIteration, PyStopIteration};
use pyo3::prelude::*;

use crate::bridge::{awaitable, blocking};
use crate::core::Shared;
use crate::error::Failure;
use crate::types::Event;

/// Where a follower is: not started yet (its filter unresolved), or reading its subscription.
enum State {
    Pending { since: u64, agent: Option<String>, workflow: Option<String> },
    Open { stream: EventStream, filter: EventQuery },
    Ended,
}

/// A live follower of the event log. Iterate it with `async for` (or, from `engine.sync.follow`, with
/// `for`); it ends only when the store closes its stream.
#[pyclass(frozen, module = "orch._orch", name = "Follower")]
pub struct Follower {
    core: Shared,
    state: Arc<tokio::sync::Mutex<State>>,
}

impl Follower {
    /// A follower of the events after `since`, of `agent` (a name or id) and `workflow` (a run id) when
    /// given.
    pub fn new(core: Shared, since: u64, agent: Option<String>, workflow: Option<String>) -> Self {
        Self { core, state: Arc::new(tokio::sync::Mutex::new(State::Pending { since, agent, workflow })) }
    }

    /// The next matching event, or None once the stream has ended.
    async fn next(core: Shared, state: Arc<tokio::sync::Mutex<State>>) -> Result<Option<Event>, Failure> {
        let mut state = state.lock().await;
        if let State::Pending { since, agent, workflow } = &mut *state {
            let filter = core.query(*since, agent.take(), workflow.take(), None).await?;
            let stream = core.engine.store().subscribe(*since);
            *state = State::Open { stream, filter };
        }
        let State::Open { stream, filter } = &mut *state else {
            return Ok(None);
        };
        loop {
            match stream.next().await {
                Some(Ok(r)) if filter.matches(&r) => return Ok(Some(Event::new(r))),
                Some(Ok(_)) => {}
                Some(Err(e)) => {
                    *state = State::Ended;
                    return Err(e.into());
                }
                None => {
                    *state = State::Ended;
                    return Ok(None);
                }
            }
        }
    }
}

#[pymethods]
impl Follower {
    fn __aiter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __anext__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let (core, state) = (self.core.clone(), self.state.clone());
        crate::bridge::into_asyncio(py, async move {
            match Self::next(core, state).await {
                Ok(Some(ev)) => Ok(ev),
                Ok(None) => Err(PyStopAsyncIteration::new_err(())),
                Err(e) => Err(e.into()),
            }
        })
    }

    fn __iter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    fn __next__(&self, py: Python<'_>) -> PyResult<Event> {
        let (core, state) = (self.core.clone(), self.state.clone());
        match blocking(py, Self::next(core, state))? {
            Some(ev) => Ok(ev),
            None => Err(PyStopIteration::new_err(())),
        }
    }

    /// The next matching event (awaitable), or None once the stream has ended.
    fn next_event<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        awaitable(py, Self::next(self.core.clone(), self.state.clone()))
    }
}
