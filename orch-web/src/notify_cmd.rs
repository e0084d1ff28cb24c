//! Notifications in the `orch` program: started by `orch serve`, or alone by `orch notify` (see
//! [`orch_web::notify`]).

use orch_core::engine::Engine;
use orch_web::notify::{NotifyError, NotifyHandle};

use crate::chat::Failure;

/// Starts the notifications of `[notify]`, saying on stderr what goes where; `None` when none is
/// configured. `who` names the program in the message.
pub async fn start(engine: &Engine, who: &str) -> Result<Option<NotifyHandle>, Failure> {
    let handle = orch_web::notify::start(engine).await.map_err(|e| match e {
        NotifyError::NoToken => Failure::usage(e.to_string()),
        e => Failure::runtime(e.to_string()),
    })?;
    if let Some(h) = &handle {
        eprintln!("{who}: notifications to {}", h.summary);
    }
    Ok(handle)
}

/// `orch notify`: sends notifications and answers Telegram commands until SIGINT or SIGTERM.
pub async fn run(engine: Engine) -> Result<u8, Failure> {
    let Some(handle) = start(&engine, "orch notify").await? else {
        return Err(Failure::usage(
            "no notification channel is configured: add [notify.telegram] or [[notify.webhooks]] to .orch/config.toml",
        ));
    };
    eprintln!("orch notify: following the log (Ctrl-C stops)");
    crate::signals::terminated().await;
    handle.stop();
    Ok(0)
}
