//! One classification of every engine error: [`ErrorKind`].
//!
//! Each public error type of the engine ([`StoreError`](crate::store::StoreError),
//! [`RunError`](crate::executor::RunError), [`ModelError`](crate::model::ModelError),
//! [`ManageError`](crate::orchestrator::ManageError),
//! [`OrchestratorError`](crate::orchestrator::OrchestratorError),
//! [`EngineError`](crate::engine::EngineError), [`ConfigError`](crate::config::ConfigError),
//! [`ToolError`](crate::tool::ToolError)) has a `kind()` method. Hosts decide what to do with an error
//! from its kind alone, so they all answer the same way: the `orch` CLI's exit code
//! ([`ErrorKind::exit_code`]), the HTTP status of the coming server ([`ErrorKind::http_status`]), the
//! exception class of the coming Python bindings. An error that wraps another (a run's store failure)
//! has the kind of the one it wraps.
//!
//! | kind | what | CLI exit | HTTP | Python |
//! |---|---|---|---|---|
//! | [`Usage`](ErrorKind::Usage) | bad input: a flag, setting, model spec, parameter or file | 2 | 400 | `UsageError` |
//! | [`NotFound`](ErrorKind::NotFound) | no such agent, orchestrator, template or entity | 2 | 404 | `NotFoundError` |
//! | [`Conflict`](ErrorKind::Conflict) | the request contradicts the stored state | 2 | 409 | `ConflictError` |
//! | [`Busy`](ErrorKind::Busy) | the agent is running another turn; try again later | 1 | 409 | `BusyError` |
//! | [`Unavailable`](ErrorKind::Unavailable) | the store or the provider cannot be reached now; retryable | 1 | 503 | `UnavailableError` |
//! | [`Provider`](ErrorKind::Provider) | the model provider refused or broke the call | 1 | 502 | `ProviderError` |
//! | [`Interrupted`](ErrorKind::Interrupted) | stopped on request (Ctrl-C, an interrupt) | 130 | 499 | `RunInterrupted` |
//! | [`Internal`](ErrorKind::Internal) | damaged or incompatible data, a bug | 1 | 500 | `InternalError` |

use std::fmt;

/// What kind of failure an error is; see the [module documentation](self) for what each kind maps to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// Bad input from the caller: a flag, a setting (environment, `.env`, `.orch/config.toml`), a model
    /// spec or file, a missing or invalid parameter, an empty message, a tool input that does not fit.
    /// Fixed by changing the request.
    Usage,
    /// What the request names does not exist: an agent, an orchestrator, a template, a stored entity.
    NotFound,
    /// The request contradicts the stored state: a name a live agent already has, an archived
    /// orchestrator, an unfinished turn to resume first, no turn to resume. Waiting does not help;
    /// changing the request or the state does.
    Conflict,
    /// The agent is running another turn (here or in another process), or its run was taken over.
    /// Waiting for it (or interrupting it) helps.
    Busy,
    /// The store or the model provider cannot be reached or is overloaded right now: a connection that
    /// failed or stalled, a rate limit, a 5xx, a database that cannot be opened. Retrying may help.
    Unavailable,
    /// The model provider refused the call or broke it, in a way retrying does not fix: authentication,
    /// a rejected request, a malformed or broken stream, a scripted or replayed model with no answer.
    Provider,
    /// Stopped on request: Ctrl-C, an interrupt from another caller or process.
    Interrupted,
    /// Stored data or the program is wrong: a damaged database or one written by a newer orch, state
    /// that cannot be decoded, an unexpected backend failure, a bug.
    Internal,
}

impl ErrorKind {
    /// Every kind.
    pub const ALL: [ErrorKind; 8] = [
        Self::Usage,
        Self::NotFound,
        Self::Conflict,
        Self::Busy,
        Self::Unavailable,
        Self::Provider,
        Self::Interrupted,
        Self::Internal,
    ];

    /// The name in snake case (`usage`, `not_found`, …), as hosts show it (an HTTP error body's `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Usage => "usage",
            Self::NotFound => "not_found",
            Self::Conflict => "conflict",
            Self::Busy => "busy",
            Self::Unavailable => "unavailable",
            Self::Provider => "provider",
            Self::Interrupted => "interrupted",
            Self::Internal => "internal",
        }
    }

    /// The `orch` CLI's exit code: `2` for the caller's mistakes (usage, not found, conflict), `130` for
    /// an interruption, `1` for every other failure.
    pub fn exit_code(self) -> u8 {
        match self {
            Self::Usage | Self::NotFound | Self::Conflict => 2,
            Self::Interrupted => 130,
            Self::Busy | Self::Unavailable | Self::Provider | Self::Internal => 1,
        }
    }

    /// The HTTP status a server answers with: 400, 404, 409 (conflict and busy), 503, 502, 499 (the
    /// client-closed-request convention) and 500.
    pub fn http_status(self) -> u16 {
        match self {
            Self::Usage => 400,
            Self::NotFound => 404,
            Self::Conflict | Self::Busy => 409,
            Self::Unavailable => 503,
            Self::Provider => 502,
            Self::Interrupted => 499,
            Self::Internal => 500,
        }
    }

    /// Whether trying the same request again later may succeed (busy, unavailable).
    pub fn is_retryable(self) -> bool {
        matches!(self, Self::Busy | Self::Unavailable)
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_keeps_its_three_exit_codes() {
        let codes: Vec<(ErrorKind, u8)> = ErrorKind::ALL.into_iter().map(|k| (k, k.exit_code())).collect();
        assert_eq!(
            codes,
            vec![
                (ErrorKind::Usage, 2),
                (ErrorKind::NotFound, 2),
                (ErrorKind::Conflict, 2),
                (ErrorKind::Busy, 1),
                (ErrorKind::Unavailable, 1),
                (ErrorKind::Provider, 1),
                (ErrorKind::Interrupted, 130),
                (ErrorKind::Internal, 1),
            ]
        );
    }

    #[test]
    fn names_and_statuses_are_distinct_where_hosts_need_them_to_be() {
        let names: std::collections::HashSet<&str> = ErrorKind::ALL.into_iter().map(ErrorKind::as_str).collect();
        assert_eq!(names.len(), ErrorKind::ALL.len());
        assert_eq!(ErrorKind::Busy.http_status(), ErrorKind::Conflict.http_status());
        assert!(ErrorKind::Busy.is_retryable() && !ErrorKind::Conflict.is_retryable());
    }
}

#[cfg(all(test, feature = "tokio"))]
mod engine_error_tests {
    use std::time::Duration;

    use super::ErrorKind;
    use crate::config::ConfigError;
    use crate::engine::EngineError;
    use crate::executor::RunError;
    use crate::model::ModelError;
    use crate::orchestrator::{ManageError, OrchestratorError};
    use crate::store::StoreError;
    use crate::tool::ToolError;
    use crate::wire::Id;

    fn store_not_found() -> StoreError {
        StoreError::NotFound { what: "agent x".into() }
    }

    #[test]
    fn store_errors_have_their_kinds() {
        assert_eq!(store_not_found().kind(), ErrorKind::NotFound);
        assert_eq!(StoreError::NameTaken { name: "a".into() }.kind(), ErrorKind::Conflict);
        let held = StoreError::RunConflict { agent_id: Id::nil(), current: None };
        assert_eq!(held.kind(), ErrorKind::Busy);
        let open = StoreError::Open { location: "db".into(), message: "refused".into() };
        assert_eq!(open.kind(), ErrorKind::Unavailable);
        let newer = StoreError::NewerSchema { location: "db".into(), found: 9, supported: 1 };
        assert_eq!(newer.kind(), ErrorKind::Internal);
        assert_eq!(newer.kind().exit_code(), 1);
    }

    #[test]
    fn model_errors_are_unavailable_exactly_when_retryable() {
        let rate = ModelError::RateLimited { message: "slow down".into(), retry_after: Some(Duration::from_secs(1)) };
        let auth = ModelError::Auth { message: "bad key".into() };
        let broken = ModelError::StreamBroken { message: "cut".into() };
        for e in [rate, auth, broken, ModelError::Server { status: 503, message: String::new() }] {
            let expected = if e.is_retryable() { ErrorKind::Unavailable } else { ErrorKind::Provider };
            assert_eq!(e.kind(), expected, "{e}");
        }
    }

    #[test]
    fn wrapping_errors_keep_the_kind_of_what_they_wrap() {
        assert_eq!(RunError::Store(store_not_found()).kind(), ErrorKind::NotFound);
        assert_eq!(RunError::Model(ModelError::Overloaded { message: String::new() }).kind(), ErrorKind::Unavailable);
        let busy = RunError::AgentBusy { name: "a".into(), run: "task".into() };
        assert_eq!(ManageError::Run(busy).kind(), ErrorKind::Busy);
        let missing = OrchestratorError::Manage(ManageError::Missing("agent_name"));
        assert_eq!(missing.kind(), ErrorKind::Usage);
        let unfinished = OrchestratorError::Run(RunError::UnfinishedTurn("a".into()));
        assert_eq!(unfinished.kind(), ErrorKind::Conflict);
        let engine = EngineError::Store(StoreError::Open { location: "db".into(), message: "refused".into() });
        assert_eq!(engine.kind(), ErrorKind::Unavailable);
        assert!(!engine.is_usage());
    }

    #[test]
    fn usage_errors_exit_2_and_runtime_failures_exit_1() {
        let config = ConfigError::DotEnv { path: ".env".into(), message: "bad line".into() };
        assert_eq!(config.kind().exit_code(), 2);
        assert!(EngineError::Config(config).is_usage());
        assert_eq!(EngineError::Model("no model".into()).kind().exit_code(), 2);
        assert_eq!(RunError::Config { agent: "a".into(), message: "m".into() }.kind().exit_code(), 2);
        assert_eq!(OrchestratorError::Archived(Id::nil()).kind().exit_code(), 2);
        assert_eq!(ManageError::Busy { name: "a".into(), task: "t".into() }.kind().exit_code(), 1);
        assert_eq!(RunError::BadState { agent: "a".into(), message: "m".into() }.kind().exit_code(), 1);
        assert_eq!(ToolError::Interrupted.kind().exit_code(), 130);
        assert_eq!(ToolError::InvalidInput("x".into()).kind(), ErrorKind::Usage);
    }

    #[test]
    fn file_and_template_errors_are_the_users_to_fix() {
        let script = crate::model::scripted::ScriptedModel::from_json_str("{not json").unwrap_err();
        assert_eq!(script.kind(), ErrorKind::Usage);
        let cassette = crate::model::cassette::ReplayProvider::from_file("/nonexistent/cassette.jsonl").unwrap_err();
        assert_eq!(cassette.kind(), ErrorKind::Usage);
        let unknown =
            crate::template::TemplateError::UnknownCommand { name: "nope".into(), available: vec!["review".into()] };
        assert_eq!(unknown.kind(), ErrorKind::NotFound);
        assert_eq!(unknown.kind().exit_code(), 2);
    }
}
