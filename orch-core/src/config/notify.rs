//! `[notify]` of the config file: which events reach which chat channels (Telegram, Slack-compatible
//! and JSON webhooks), and which Telegram chats may command orch. The notifier itself lives in the
//! hosts (`orch serve`, `orch notify`); this is only its typed configuration.
//!
//! ```toml
//! [notify]
//! events = ["task_started", "file_changed", "completed", "failed", "stuck", "waiting"]  # the default
//! stuck_after_secs = 900                   # an executing agent silent this long is reported stuck
//!
//! [notify.telegram]                        # the bot token: ORCH_TELEGRAM_BOT_TOKEN (environment or .env)
//! chat_id = -1001234567890                 # or "@my_channel"
//! critical_chat_id = "@my_critical"        # failures, stuck agents, waiting for a person (default: chat_id)
//! allowed_chats = [123456789]              # chats whose /status, /agents, /interrupt, /approve are obeyed
//! commands = true                          # poll for those commands (default: when allowed_chats is set)
//! api_base = "https://api.telegram.org"    # the Bot API's address
//! events = ["failed", "stuck"]             # this channel's own filter (default: [notify].events)
//!
//! [[notify.webhooks]]
//! url = "https://hooks.slack.com/services/T000/B000/XXXX"
//! format = "slack"                         # {"text": …}; "json" (the default) posts the whole notification
//! events = ["completed", "failed"]
//! ```

use serde::{Deserialize, Serialize};

/// What a notification is about; `[notify] events` and each channel's `events` list these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// An agent started a turn (a prompt, a workflow step, a graph task's attempt).
    TaskStarted,
    /// An agent's run changed files.
    FileChanged,
    /// An agent's turn, a workflow run or a graph ended well.
    Completed,
    /// An agent's turn, a workflow run or a graph task failed (critical).
    Failed,
    /// An executing agent has been silent for `stuck_after_secs` (critical).
    Stuck,
    /// Something waits for a person: a parked tool call, a task checkpoint (critical).
    Waiting,
}

impl NotifyEvent {
    /// Every kind, in the order above.
    pub const ALL: [NotifyEvent; 6] = [
        NotifyEvent::TaskStarted,
        NotifyEvent::FileChanged,
        NotifyEvent::Completed,
        NotifyEvent::Failed,
        NotifyEvent::Stuck,
        NotifyEvent::Waiting,
    ];

    /// The name in the config file (`task_started`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyEvent::TaskStarted => "task_started",
            NotifyEvent::FileChanged => "file_changed",
            NotifyEvent::Completed => "completed",
            NotifyEvent::Failed => "failed",
            NotifyEvent::Stuck => "stuck",
            NotifyEvent::Waiting => "waiting",
        }
    }

    /// Whether it goes to the critical chat (failures, stuck agents, a person needed).
    pub fn is_critical(self) -> bool {
        matches!(self, NotifyEvent::Failed | NotifyEvent::Stuck | NotifyEvent::Waiting)
    }
}

/// Default seconds of silence after which an executing agent is reported stuck (the Parent
/// Harness's 15 minutes).
pub const DEFAULT_STUCK_AFTER_SECS: f64 = 900.0;

/// `[notify]`. Every key is optional; without `telegram` and `webhooks` nothing is sent.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// The events sent (default: all of them).
    pub events: Option<Vec<NotifyEvent>>,
    /// Seconds of silence after which an executing agent is reported stuck (default 900).
    pub stuck_after_secs: Option<f64>,
    /// The Telegram bot.
    pub telegram: Option<TelegramConfig>,
    /// Webhooks.
    #[serde(default)]
    pub webhooks: Vec<WebhookConfig>,
}

impl NotifyConfig {
    /// Whether any channel is configured.
    pub fn is_enabled(&self) -> bool {
        self.telegram.is_some() || !self.webhooks.is_empty()
    }

    /// The events of a channel whose own filter is `own`.
    pub fn events_of(&self, own: Option<&Vec<NotifyEvent>>) -> Vec<NotifyEvent> {
        own.or(self.events.as_ref()).cloned().unwrap_or_else(|| NotifyEvent::ALL.to_vec())
    }
}

/// A Telegram chat: its numeric id or a public `@channel` name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ChatId {
    /// A numeric chat id (negative for groups and channels).
    Id(i64),
    /// `@channelusername`.
    Name(String),
}

impl std::fmt::Display for ChatId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ChatId::Id(id) => write!(f, "{id}"),
            ChatId::Name(name) => f.write_str(name),
        }
    }
}

/// `[notify.telegram]`. The bot token comes from `ORCH_TELEGRAM_BOT_TOKEN` (environment or `.env`),
/// never from this file.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TelegramConfig {
    /// Where notifications go.
    pub chat_id: ChatId,
    /// Where failures, stuck agents and requests for a person go (default: `chat_id`).
    pub critical_chat_id: Option<ChatId>,
    /// Chats whose commands are obeyed; commands from others get a refusal and are logged.
    #[serde(default)]
    pub allowed_chats: Vec<i64>,
    /// Poll the bot for commands (default: when `allowed_chats` is not empty).
    pub commands: Option<bool>,
    /// The Bot API's address (default `https://api.telegram.org`).
    pub api_base: Option<String>,
    /// This channel's events (default: `[notify] events`).
    pub events: Option<Vec<NotifyEvent>>,
}

/// Default address of the Telegram Bot API.
pub const TELEGRAM_API_BASE: &str = "https://api.telegram.org";

/// What a webhook receives.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WebhookFormat {
    /// The notification as JSON: `event`, `text`, `critical`, `at` and the event's keys.
    #[default]
    Json,
    /// A Slack-compatible incoming webhook body: `{"text": …}`.
    Slack,
}

/// `[[notify.webhooks]]`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// Where to POST.
    pub url: String,
    /// The body's shape (default `json`).
    #[serde(default)]
    pub format: WebhookFormat,
    /// This webhook's events (default: `[notify] events`).
    pub events: Option<Vec<NotifyEvent>>,
}

/// The notification settings of an [`OrchConfig`](super::OrchConfig): `[notify]` of the file, and the
/// Telegram bot token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct NotifySection {
    /// `[notify]` as the file has it (empty without one).
    pub settings: NotifyConfig,
    /// `ORCH_TELEGRAM_BOT_TOKEN` (environment or `.env`).
    pub telegram_bot_token: super::Sourced<Option<super::Secret>>,
}

impl NotifySection {
    /// The lines of `orch config`: the token (masked), and each `[notify]` setting with the file as its
    /// source (webhook addresses without their secret path).
    pub(super) fn entries(&self, file: &Option<std::path::PathBuf>) -> Vec<super::ConfigEntry> {
        use serde_json::json;
        let s = &self.settings;
        let source = |set: bool, key: &str| match (set, file) {
            (true, Some(path)) => super::Source::File { path: path.clone(), key: key.to_string() },
            _ => super::Source::Default,
        };
        let entry = |key: &'static str, value: serde_json::Value, set: bool| super::ConfigEntry {
            key,
            env: "",
            value: Some(value).filter(|v| !v.is_null()),
            source: source(set, key),
        };
        let events: Vec<&str> = s.events_of(None).iter().map(|e| e.as_str()).collect();
        let telegram = s.telegram.as_ref().map(|t| {
            json!({
                "chat_id": t.chat_id.to_string(),
                "critical_chat_id": t.critical_chat_id.as_ref().unwrap_or(&t.chat_id).to_string(),
                "allowed_chats": t.allowed_chats,
                "commands": t.commands.unwrap_or(!t.allowed_chats.is_empty()),
                "api_base": t.api_base.as_deref().unwrap_or(TELEGRAM_API_BASE),
                "events": s.events_of(t.events.as_ref()).iter().map(|e| e.as_str()).collect::<Vec<_>>(),
            })
        });
        let webhooks: Vec<serde_json::Value> = s
            .webhooks
            .iter()
            .map(|w| {
                json!({
                    "url": webhook_display(&w.url),
                    "format": w.format,
                    "events": s.events_of(w.events.as_ref()).iter().map(|e| e.as_str()).collect::<Vec<_>>(),
                })
            })
            .collect();
        vec![
            super::entry("notify.telegram_bot_token", "ORCH_TELEGRAM_BOT_TOKEN", &self.telegram_bot_token),
            entry("notify.events", json!(events), s.events.is_some()),
            entry(
                "notify.stuck_after_secs",
                json!(s.stuck_after_secs.unwrap_or(DEFAULT_STUCK_AFTER_SECS)),
                s.stuck_after_secs.is_some(),
            ),
            entry("notify.telegram", telegram.unwrap_or(serde_json::Value::Null), s.telegram.is_some()),
            entry(
                "notify.webhooks",
                if webhooks.is_empty() { serde_json::Value::Null } else { json!(webhooks) },
                !s.webhooks.is_empty(),
            ),
        ]
    }

    /// Values the file's types accept but a notifier cannot use.
    pub(super) fn check(&self, file: &super::file::LoadedFile) -> Result<(), super::ConfigError> {
        let s = &self.settings;
        if let Some(secs) = s.stuck_after_secs
            && !(secs.is_finite() && secs > 0.0)
        {
            return Err(file.error("notify.stuck_after_secs", "must be a number of seconds above 0"));
        }
        if let Some(t) = &s.telegram {
            for (key, chat) in [
                ("notify.telegram.chat_id", Some(&t.chat_id)),
                ("notify.telegram.critical_chat_id", t.critical_chat_id.as_ref()),
            ] {
                if let Some(ChatId::Name(name)) = chat
                    && !name.starts_with('@')
                {
                    return Err(file.error(key, format!("'{name}' is neither a numeric chat id nor an @channel name")));
                }
            }
            if let Some(base) = &t.api_base
                && !is_http(base)
            {
                return Err(
                    file.error("notify.telegram.api_base", format!("'{base}' is not an http:// or https:// address"))
                );
            }
        }
        for w in &s.webhooks {
            if !is_http(&w.url) {
                return Err(file.error(
                    "notify.webhooks.url",
                    format!("'{}' is not an http:// or https:// address", webhook_display(&w.url)),
                ));
            }
        }
        Ok(())
    }
}

fn is_http(url: &str) -> bool {
    let url = url.trim();
    url.starts_with("http://") || url.starts_with("https://")
}

/// A webhook's address as shown: its scheme and host, not its path (a Slack webhook's path is its
/// secret).
pub fn webhook_display(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let host = rest.split(['/', '?']).next().unwrap_or("");
            let host = host.rsplit_once('@').map_or(host, |(_, h)| h);
            if rest.len() > host.len() { format!("{scheme}://{host}/…") } else { format!("{scheme}://{host}") }
        }
        None => "(not a URL)".to_string(),
    }
}
