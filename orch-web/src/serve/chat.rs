//! Chat turns of the hosted orchestrator, run in the background of the server: the request that
//! sends a message returns at once, and the turn's reply and actions arrive as events.

use super::state::AppState;

/// Runs a turn with `message`; the workflow runs it starts are kept so shutdown can interrupt them.
pub fn spawn_turn(state: &AppState, message: String) {
    let state = state.clone();
    tokio::spawn(async move {
        match state.orchestrator().chat(&message, None).await {
            Ok(outcome) => {
                for ticket in outcome.started_workflows {
                    state.keep_workflow(ticket);
                }
            }
            // The turn's failure is in the log (its events); this is for the server's own log.
            Err(e) => tracing::warn!(error = %e, "a chat turn failed"),
        }
    });
}
