//! Chat-channel notifications (feature `notify`): what agents do, sent to Telegram (the Parent
//! Harness's messages, failures and stuck agents to a critical chat of their own), Slack-compatible
//! and JSON webhooks, as `[notify]` of `.orch/config.toml` says; and commands from allowed Telegram
//! chats (`/status`, `/agents`, `/interrupt NAME`, `/approve ID`).
//!
//! Notifications come from following the event log, so only committed events are told, from this
//! process or any other sharing the store. Each channel sends from a queue of its own with retries:
//! nothing here ever waits on a channel in an agent's path. [`start`] runs it inside a host (`orch
//! serve`, `orch notify`).

pub mod channel;
mod commands;
mod deliver;
pub mod format;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::StreamExt;
use orch_core::Interrupt;
use orch_core::config::notify::DEFAULT_STUCK_AFTER_SECS;
use orch_core::engine::Engine;
use orch_core::store::{AgentFilter, Store, StoreError};
use orch_core::wire::{AgentStatus, Event, EventRecord, Id};

use channel::{Telegram, Webhook};
use deliver::Outbox;
use format::{AgentInfo, Formatter};

/// Why notifications could not start.
#[derive(Debug, thiserror::Error)]
pub enum NotifyError {
    /// `[notify.telegram]` without a token.
    #[error(
        "[notify.telegram] is configured but the bot token is not: set ORCH_TELEGRAM_BOT_TOKEN (in the environment or .env)"
    )]
    NoToken,
    /// The HTTP client could not be built.
    #[error("cannot build the notifications' HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    /// The store could not be read.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Running notifications; [`NotifyHandle::stop`] ends them (queued notifications still go out while
/// the process runs).
#[derive(Debug)]
pub struct NotifyHandle {
    stop: Interrupt,
    /// What is sent where, for the start-up message.
    pub summary: String,
}

impl NotifyHandle {
    /// Stops following the log and polling for commands.
    pub fn stop(&self) {
        self.stop.trigger();
    }
}

/// Starts the notifications of `engine`'s `[notify]`; `Ok(None)` when no channel is configured.
/// Follows the log from its current end (nothing already in it is told).
pub async fn start(engine: &Engine) -> Result<Option<NotifyHandle>, NotifyError> {
    let section = &engine.config().notify;
    let s = &section.settings;
    if !s.is_enabled() {
        return Ok(None);
    }
    let client = channel::http_client()?;
    let mut outboxes = Vec::new();
    let mut summary = Vec::new();
    let mut commands = None;
    if let Some(t) = &s.telegram {
        let token = section.telegram_bot_token.value.as_ref().ok_or(NotifyError::NoToken)?;
        let bot = Arc::new(Telegram::new(client.clone(), t, token.expose(), s.events_of(t.events.as_ref())));
        outboxes.push(Outbox::start(bot.clone()));
        let critical = t.critical_chat_id.as_ref().unwrap_or(&t.chat_id);
        summary.push(format!("Telegram chat {} (critical: {critical})", t.chat_id));
        if t.commands.unwrap_or(!t.allowed_chats.is_empty()) {
            summary.push(format!("commands from chats {:?}", t.allowed_chats));
            commands = Some((bot, t.allowed_chats.clone()));
        }
    }
    for w in &s.webhooks {
        let hook = Webhook::new(client.clone(), w, s.events_of(w.events.as_ref()));
        summary.push(format!(
            "{} webhook {}",
            format!("{:?}", w.format).to_lowercase(),
            orch_core::config::notify::webhook_display(&w.url)
        ));
        outboxes.push(Outbox::start(Arc::new(hook)));
    }
    let stuck_after = Duration::from_secs_f64(s.stuck_after_secs.unwrap_or(DEFAULT_STUCK_AFTER_SECS));
    let store = engine.store().clone();
    let since = store.last_seq().await?;
    let mut follower = Follower::new(store.clone(), outboxes, stuck_after);
    follower.seed().await?;
    let stop = Interrupt::new();
    tokio::spawn(follower.run(since, stop.clone()));
    if let Some((bot, allowed)) = commands {
        tokio::spawn(commands::poll(engine.clone(), bot, allowed, stop.clone()));
    }
    Ok(Some(NotifyHandle { stop, summary: summary.join(", ") }))
}

/// An executing agent being watched for silence.
struct Active {
    name: String,
    last: Instant,
    reported: bool,
}

/// Follows the log and offers each notification to every channel.
struct Follower {
    store: Arc<dyn Store>,
    outboxes: Vec<Outbox>,
    formatter: Formatter,
    agents: HashMap<Id, AgentInfo>,
    active: HashMap<Id, Active>,
    stuck_after: Duration,
}

impl Follower {
    fn new(store: Arc<dyn Store>, outboxes: Vec<Outbox>, stuck_after: Duration) -> Self {
        Follower {
            store,
            outboxes,
            formatter: Formatter::default(),
            agents: HashMap::new(),
            active: HashMap::new(),
            stuck_after,
        }
    }

    /// Watches the agents executing already.
    async fn seed(&mut self) -> Result<(), StoreError> {
        for a in self.store.list_agents(&AgentFilter::default()).await? {
            if a.status == AgentStatus::Executing && !a.is_orchestrator() {
                self.active.insert(a.id, Active { name: a.name.clone(), last: Instant::now(), reported: false });
            }
        }
        Ok(())
    }

    async fn run(mut self, mut since: u64, stop: Interrupt) {
        let tick = (self.stuck_after / 4).clamp(Duration::from_millis(100), Duration::from_secs(30));
        let mut ticker = tokio::time::interval(tick);
        let mut events = self.store.subscribe(since);
        loop {
            tokio::select! {
                _ = stop.triggered() => return,
                _ = ticker.tick() => self.check_stuck(),
                next = events.next() => match next {
                    Some(Ok(record)) => {
                        since = record.seq;
                        self.on_event(&record).await;
                    }
                    Some(Err(e)) => {
                        tracing::warn!(error = %e, "notifications: reading the log failed; following it again");
                        tokio::time::sleep(Duration::from_secs(1)).await;
                        events = self.store.subscribe(since);
                    }
                    None => {
                        tracing::warn!("notifications: the log's stream ended");
                        return;
                    }
                },
            }
        }
    }

    async fn on_event(&mut self, record: &EventRecord) {
        let info = match record.keys.agent_id {
            Some(id) => self.agent(id, &record.event).await,
            None => None,
        };
        if let (Some(id), Some(info)) = (record.keys.agent_id, &info)
            && !info.orchestrator
        {
            match format::activity(&record.event) {
                Some(true) => {
                    self.active.insert(id, Active { name: info.name.clone(), last: Instant::now(), reported: false });
                }
                Some(false) => {
                    self.active.remove(&id);
                }
                None => {
                    if let Some(a) = self.active.get_mut(&id) {
                        a.last = Instant::now();
                        a.reported = false;
                    }
                }
            }
        }
        if let Some(n) = self.formatter.format(record, info.as_ref()) {
            self.offer(&n);
        }
    }

    /// What is known of agent `id` (read once, or taken from its `AgentCreated`).
    async fn agent(&mut self, id: Id, event: &Event) -> Option<AgentInfo> {
        if let Event::AgentCreated { agent } = event {
            self.agents.insert(id, info(agent));
        }
        if let Some(known) = self.agents.get(&id) {
            return Some(known.clone());
        }
        match self.store.get_agent(id).await {
            Ok(Some(a)) => {
                let known = info(&a);
                self.agents.insert(id, known.clone());
                Some(known)
            }
            Ok(None) => None,
            Err(e) => {
                tracing::warn!(error = %e, agent = %id, "notifications: cannot read an agent");
                None
            }
        }
    }

    /// Reports each executing agent silent for `stuck_after`, once until it is heard from again.
    fn check_stuck(&mut self) {
        let mut stuck = Vec::new();
        for (id, a) in self.active.iter_mut() {
            let silent = a.last.elapsed();
            if !a.reported && silent >= self.stuck_after {
                a.reported = true;
                stuck.push(format::stuck(&a.name, *id, silent));
            }
        }
        for n in stuck {
            self.offer(&n);
        }
    }

    fn offer(&self, n: &format::Notification) {
        for o in &self.outboxes {
            o.offer(n);
        }
    }
}

fn info(a: &orch_core::wire::Agent) -> AgentInfo {
    AgentInfo {
        name: a.name.clone(),
        orchestrator: a.is_orchestrator(),
        graph_task: a.metadata.get("task_id").is_some(),
    }
}
