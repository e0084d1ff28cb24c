//! The [`Channel`] adapter and its implementations: Telegram (Bot API `sendMessage`, with a critical
//! chat of its own), a Slack-compatible incoming webhook and a generic JSON webhook.

use std::time::Duration;

use orch_core::config::notify::{ChatId, NotifyEvent, TELEGRAM_API_BASE, TelegramConfig, WebhookConfig, WebhookFormat};
use serde_json::{Value, json};

use super::format::Notification;

/// How long one request to a channel may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// Why a channel did not take a notification.
#[derive(Debug, thiserror::Error)]
pub enum SendError {
    /// Worth trying again (no answer, a 5xx, rate limited): after `retry_after` when the channel said.
    #[error("{message}")]
    Transient {
        /// What went wrong.
        message: String,
        /// How long the channel asked to wait.
        retry_after: Option<Duration>,
    },
    /// Refused for good (a 4xx: a bad token, an unknown chat).
    #[error("{0}")]
    Refused(String),
}

/// Somewhere notifications are sent.
#[async_trait::async_trait]
pub trait Channel: Send + Sync {
    /// A name for logs (`telegram`, `webhook https://hooks.slack.com/…`).
    fn name(&self) -> String;
    /// The events it wants.
    fn events(&self) -> &[NotifyEvent];
    /// Sends one notification (once: retries are the caller's).
    async fn send(&self, notification: &Notification) -> Result<(), SendError>;
}

/// An HTTP client for channels.
pub fn http_client() -> Result<reqwest::Client, reqwest::Error> {
    reqwest::Client::builder().timeout(REQUEST_TIMEOUT).build()
}

/// A request's failure, without its URL (a Telegram URL holds the bot token).
fn transport(e: reqwest::Error) -> SendError {
    SendError::Transient { message: e.without_url().to_string(), retry_after: None }
}

/// A non-success status: 429 and 5xx are transient, other 4xx refusals.
fn status_error(status: reqwest::StatusCode, body: &Value, retry_after: Option<Duration>) -> SendError {
    let detail = body.get("description").and_then(Value::as_str).unwrap_or_else(|| status.as_str());
    let message = format!("HTTP {}: {detail}", status.as_u16());
    if status.as_u16() == 429 || status.is_server_error() {
        SendError::Transient { message, retry_after }
    } else {
        SendError::Refused(message)
    }
}

/// A Telegram bot: notifications to its chat, critical ones to its critical chat.
pub struct Telegram {
    client: reqwest::Client,
    /// `{api_base}/bot{token}`.
    base: String,
    chat: ChatId,
    critical: ChatId,
    events: Vec<NotifyEvent>,
}

impl std::fmt::Debug for Telegram {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the token.
        f.debug_struct("Telegram").field("chat", &self.chat).field("critical", &self.critical).finish_non_exhaustive()
    }
}

impl Telegram {
    /// The bot of `config` with `token`, sending `events`.
    pub fn new(client: reqwest::Client, config: &TelegramConfig, token: &str, events: Vec<NotifyEvent>) -> Self {
        let api = config.api_base.as_deref().unwrap_or(TELEGRAM_API_BASE).trim_end_matches('/');
        Telegram {
            client,
            base: format!("{api}/bot{token}"),
            chat: config.chat_id.clone(),
            critical: config.critical_chat_id.clone().unwrap_or_else(|| config.chat_id.clone()),
            events,
        }
    }

    /// Calls Bot API `method` with `body`; its `result` on success.
    pub async fn call(&self, method: &str, body: &Value) -> Result<Value, SendError> {
        let reply = self.client.post(format!("{}/{method}", self.base)).json(body).send().await.map_err(transport)?;
        let status = reply.status();
        let answer: Value = reply.json().await.unwrap_or(Value::Null);
        let retry_after = answer.pointer("/parameters/retry_after").and_then(Value::as_u64).map(Duration::from_secs);
        if !status.is_success() || answer.get("ok") != Some(&Value::Bool(true)) {
            return Err(status_error(status, &answer, retry_after));
        }
        Ok(answer.get("result").cloned().unwrap_or(Value::Null))
    }

    /// Sends `text` to `chat` (`sendMessage`).
    pub async fn send_text(&self, chat: &Value, text: &str) -> Result<(), SendError> {
        let body = json!({"chat_id": chat, "text": text, "disable_web_page_preview": true});
        self.call("sendMessage", &body).await.map(|_| ())
    }

    /// Waits up to `timeout` for updates after `offset` (`getUpdates`, long polling).
    pub async fn updates(&self, offset: i64, timeout: Duration) -> Result<Vec<Value>, SendError> {
        let body = json!({"offset": offset, "timeout": timeout.as_secs(), "allowed_updates": ["message"]});
        let result = self.call("getUpdates", &body).await?;
        Ok(result.as_array().cloned().unwrap_or_default())
    }
}

#[async_trait::async_trait]
impl Channel for Telegram {
    fn name(&self) -> String {
        "telegram".into()
    }

    fn events(&self) -> &[NotifyEvent] {
        &self.events
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let chat = if n.critical { &self.critical } else { &self.chat };
        self.send_text(&json!(chat), &n.text).await
    }
}

/// A webhook: a Slack-compatible `{"text": …}` or the whole notification as JSON.
#[derive(Debug)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    format: WebhookFormat,
    events: Vec<NotifyEvent>,
}

impl Webhook {
    /// The webhook of `config`, sending `events`.
    pub fn new(client: reqwest::Client, config: &WebhookConfig, events: Vec<NotifyEvent>) -> Self {
        Webhook { client, url: config.url.trim().to_string(), format: config.format, events }
    }
}

#[async_trait::async_trait]
impl Channel for Webhook {
    fn name(&self) -> String {
        format!("webhook {}", orch_core::config::notify::webhook_display(&self.url))
    }

    fn events(&self) -> &[NotifyEvent] {
        &self.events
    }

    async fn send(&self, n: &Notification) -> Result<(), SendError> {
        let body = match self.format {
            WebhookFormat::Slack => json!({"text": n.text}),
            WebhookFormat::Json => serde_json::to_value(n).unwrap_or_else(|_| json!({"text": n.text})),
        };
        let reply = self.client.post(&self.url).json(&body).send().await.map_err(transport)?;
        let status = reply.status();
        if status.is_success() {
            return Ok(());
        }
        let retry_after = reply
            .headers()
            .get("retry-after")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        Err(status_error(status, &Value::Null, retry_after))
    }
}
