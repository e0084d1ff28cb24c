//! An executor that runs the native loop but, as a third-party executor would, keeps the default of
//! [`AgentExecutor::ends_with_its_last_commit`]: its turns may go on after their end commit, so the
//! runner gives it no release and no run end to join. Include with
//! `#[path = "support/wrapped.rs"] mod wrapped;`.
#![allow(dead_code)]

use async_trait::async_trait;
use orch_core::executor::{AgentExecutor, NativeExecutor, RunError, RunOutcome, TurnContext};

/// The native executor behind the trait's defaults.
pub struct Wrapped(pub NativeExecutor);

#[async_trait]
impl AgentExecutor for Wrapped {
    fn name(&self) -> &str {
        "wrapped"
    }

    async fn run_turn(&self, cx: TurnContext, prompt: Option<String>) -> Result<RunOutcome, RunError> {
        assert!(cx.release.is_none(), "an executor that does not end with its last commit is given no release");
        self.0.run_turn(cx, prompt).await
    }
}
