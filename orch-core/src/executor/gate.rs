//! A gate on model calls: asked before every model call of a run with an estimate of its cost (or for
//! its admission as a change stored with the step committed before the call), told after it what the
//! call cost (or asked for that as a change stored with the call's step). Task graphs use it to reserve
//! budget before a call and settle it after, so concurrent workers (in any process) never spend past a
//! limit together.

use async_trait::async_trait;

/// What a gate admitted: handed back to [`ModelGate::settle`] after the call.
#[derive(Debug, Clone, PartialEq)]
pub struct GatePass {
    /// The model called.
    pub model: String,
    /// The estimate admitted, USD.
    pub estimate_usd: f64,
    /// The gate's own record of the admission (e.g. the budget reservation), if it keeps one.
    pub token: Option<serde_json::Value>,
}

/// Admits model calls. Set on [`RunOptions::gate`](super::RunOptions::gate); the native executor asks it
/// before each model call (the Claude Code executor, whose CLI makes its own calls, before each turn).
#[async_trait]
pub trait ModelGate: Send + Sync + 'static {
    /// Before a call of `model` estimated at `estimate_usd` (an upper bound: the request's tokens and
    /// its whole output allowance). `Err(reason)`: the call is not made and the turn ends with a model
    /// error carrying `reason`.
    async fn admit(&self, model: &str, estimate_usd: f64) -> Result<GatePass, String>;
    /// After the call, with what it cost (0 when it failed or was interrupted).
    async fn settle(&self, pass: GatePass, cost_usd: f64);

    /// The settlement of a call that returned, as a store change the executor commits with the step
    /// that records the call's usage and cost (one commit instead of two, and the two agree). `None`
    /// (the default): the executor calls [`ModelGate::settle`] instead.
    fn settlement(&self, pass: &GatePass, cost_usd: f64) -> Option<crate::store::Change> {
        let _ = (pass, cost_usd);
        None
    }

    /// The admission of a call of `model` estimated at `estimate_usd`, as a store change and the pass
    /// it gives once stored. When a step must be committed before the call anyway (a turn's first
    /// step: its prompt and status), the executor stores the change in that commit instead of asking
    /// [`ModelGate::admit`] for a commit of its own. If the store refuses the merged commit with
    /// [`StoreError::BudgetExhausted`](crate::store::StoreError::BudgetExhausted), the step is
    /// committed alone and [`ModelGate::admit`] is asked as usual (it refuses, or admits if the limit
    /// was raised meanwhile). `None` (the default): the executor always asks [`ModelGate::admit`].
    fn reservation(&self, model: &str, estimate_usd: f64) -> Option<(GatePass, crate::store::Change)> {
        let _ = (model, estimate_usd);
        None
    }
}
