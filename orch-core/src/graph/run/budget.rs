//! The budget gate of a task's agent: before every model call it reserves the call's estimated cost on
//! the day, the month and the graph (one atomic store change, so concurrent workers in any process never
//! spend past a limit together; stored with the turn's first step when there is one); after the call it
//! settles the reservation with the real cost (stored with the call's step).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::executor::{GatePass, ModelGate};
use crate::store::{Batch, Change, Store, StoreError};
use crate::wire::{Event, EventKeys, Id, LogLevel, Reservation, now};

/// Reserves and settles budget for one attempt of one task.
pub(crate) struct BudgetGate {
    store: Arc<dyn Store>,
    graph_id: Id,
    /// Set when a reservation was refused: why.
    refused: Mutex<Option<String>>,
}

impl BudgetGate {
    pub(crate) fn new(store: Arc<dyn Store>, graph_id: Id) -> Self {
        Self { store, graph_id, refused: Mutex::new(None) }
    }

    /// Why a reservation was refused, if one was.
    pub(crate) fn refused(&self) -> Option<String> {
        self.refused.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

#[async_trait]
impl ModelGate for BudgetGate {
    async fn admit(&self, model: &str, estimate_usd: f64) -> Result<GatePass, String> {
        let reservation = Reservation::at(Some(self.graph_id), estimate_usd.max(0.0), now());
        let token = serde_json::to_value(&reservation).ok();
        // Relaxed: a reservation only holds budget for a call of this process; a power cut that lost
        // it would end the process and its call too. The settlement, which records the spending, is
        // durable (it is stored with the call's step).
        let reserve = Batch::new().change(Change::ReserveBudget(Box::new(reservation))).relaxed();
        match self.store.commit(reserve).await {
            Ok(_) => Ok(GatePass { model: model.to_string(), estimate_usd, token }),
            Err(e @ StoreError::BudgetExhausted { .. }) => {
                let reason = e.to_string();
                *self.refused.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                Err(reason)
            }
            Err(e) => Err(format!("cannot reserve budget: {e}")),
        }
    }

    async fn settle(&self, pass: GatePass, cost_usd: f64) {
        let Some(reservation) = pass.token.and_then(|t| serde_json::from_value::<Reservation>(t).ok()) else {
            return;
        };
        let change = Change::SettleBudget { reservation: Box::new(reservation), actual: cost_usd };
        if let Err(e) = self.store.commit(Batch::new().change(change)).await {
            tracing::warn!(error = %e, graph = %self.graph_id, "could not settle a budget reservation");
        }
    }

    fn reservation(&self, model: &str, estimate_usd: f64) -> Option<(GatePass, Change)> {
        let reservation = Reservation::at(Some(self.graph_id), estimate_usd.max(0.0), now());
        let token = serde_json::to_value(&reservation).ok()?;
        let pass = GatePass { model: model.to_string(), estimate_usd, token: Some(token) };
        Some((pass, Change::ReserveBudget(Box::new(reservation))))
    }

    fn settlement(&self, pass: &GatePass, cost_usd: f64) -> Option<Change> {
        let reservation = pass.token.clone().and_then(|t| serde_json::from_value::<Reservation>(t).ok())?;
        Some(Change::SettleBudget { reservation: Box::new(reservation), actual: cost_usd })
    }
}

/// The budget warnings of one process: those given, and when each graph was last seen with no limit
/// at all.
#[derive(Debug, Default)]
pub(crate) struct Warned {
    given: Vec<String>,
    unlimited: HashMap<Id, Instant>,
}

/// How long a graph seen without any limit (its own, daily, monthly) is not looked at again: the two
/// reads are then paid once a second, not by each of thousands of short attempts. A graph with a
/// limit is looked at after every attempt.
const UNLIMITED_FOR: Duration = Duration::from_secs(1);

/// Appends a `budget_warning` log when the graph, the day or the month has used 80 % of its limit
/// (once per key in this process).
pub(crate) async fn warn_near_limits(store: &Arc<dyn Store>, graph_id: Id, warned: &Mutex<Warned>) {
    {
        let w = warned.lock().unwrap_or_else(|p| p.into_inner());
        if w.unlimited.get(&graph_id).is_some_and(|seen| seen.elapsed() < UNLIMITED_FOR) {
            return;
        }
    }
    let mut limited = false;
    let at = now();
    let day = at.format("%Y-%m-%d").to_string();
    let month = at.format("%Y-%m").to_string();
    let mut near = Vec::new();
    if let Ok(Some(g)) = store.get_graph(graph_id).await
        && let Some(limit) = g.budget_usd
        && limit > 0.0
    {
        limited = true;
        if g.cost_usd >= 0.8 * limit {
            near.push((format!("graph:{graph_id}"), format!("graph {graph_id}"), g.cost_usd, limit));
        }
    }
    if let Ok(b) = store.budget(&day, &month).await {
        for line in [b.daily, b.monthly] {
            limited |= line.limit_usd.is_some();
            if let Some(limit) = line.limit_usd
                && line.spent_usd >= 0.8 * limit
            {
                near.push((
                    format!("{}:{}", line.scope.as_str(), line.period),
                    format!("{} ({})", line.scope.as_str(), line.period),
                    line.spent_usd,
                    limit,
                ));
            }
        }
    }
    {
        let mut w = warned.lock().unwrap_or_else(|p| p.into_inner());
        if limited {
            w.unlimited.remove(&graph_id);
        } else {
            w.unlimited.insert(graph_id, Instant::now());
        }
    }
    for (key, what, spent, limit) in near {
        {
            let mut w = warned.lock().unwrap_or_else(|p| p.into_inner());
            if w.given.contains(&key) {
                continue;
            }
            w.given.push(key);
        }
        let message = format!(
            "budget_warning: the {what} budget is {:.0} % used (${spent:.4} of ${limit:.4})",
            spent / limit * 100.0
        );
        let event = Event::SystemLog {
            level: LogLevel::Warning,
            message,
            metadata: serde_json::json!({"event": "budget_warning", "graph_id": graph_id, "spent_usd": spent, "limit_usd": limit}),
        };
        if let Err(e) = store.commit(Batch::new().event(EventKeys::default(), event)).await {
            tracing::warn!(error = %e, "could not record a budget warning");
        }
    }
}
