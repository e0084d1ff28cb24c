//! Delivery: each channel has a queue and a task of its own that sends with retries, so a slow or
//! failing channel never holds up the log follower, another channel, or any agent.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;

use super::channel::{Channel, SendError};
use super::format::Notification;

/// Notifications waiting for one channel at most; past that new ones are dropped (and logged).
const QUEUE: usize = 1000;
/// Tries of one notification.
const ATTEMPTS: u32 = 5;
/// Wait before the first retry; doubled each time.
const FIRST_RETRY: Duration = Duration::from_millis(500);
/// The longest wait between tries.
const MAX_RETRY: Duration = Duration::from_secs(30);

/// The sending side of one channel's queue.
pub struct Outbox {
    channel: Arc<dyn Channel>,
    queue: mpsc::Sender<Notification>,
}

impl Outbox {
    /// Starts `channel`'s delivery task.
    pub fn start(channel: Arc<dyn Channel>) -> Self {
        let (queue, mut rx) = mpsc::channel::<Notification>(QUEUE);
        let sender = channel.clone();
        tokio::spawn(async move {
            while let Some(n) = rx.recv().await {
                deliver(sender.as_ref(), &n).await;
            }
        });
        Outbox { channel, queue }
    }

    /// Queues `n` if the channel wants its kind; never waits.
    pub fn offer(&self, n: &Notification) {
        if !self.channel.events().contains(&n.event) {
            return;
        }
        if let Err(e) = self.queue.try_send(n.clone()) {
            tracing::warn!(channel = %self.channel.name(), error = %e, "a notification was dropped: the channel's queue is full");
        }
    }
}

/// Sends `n`, trying again after transient failures (honouring the channel's `retry_after`).
async fn deliver(channel: &dyn Channel, n: &Notification) {
    let mut wait = FIRST_RETRY;
    for attempt in 1..=ATTEMPTS {
        match channel.send(n).await {
            Ok(()) => return,
            Err(SendError::Refused(message)) => {
                tracing::warn!(channel = %channel.name(), %message, "the channel refused a notification");
                return;
            }
            Err(SendError::Transient { message, retry_after }) => {
                if attempt == ATTEMPTS {
                    tracing::warn!(channel = %channel.name(), %message, attempts = ATTEMPTS, "a notification could not be sent");
                    return;
                }
                tracing::info!(channel = %channel.name(), %message, attempt, "sending a notification failed; trying again");
                tokio::time::sleep(retry_after.unwrap_or(wait).min(MAX_RETRY)).await;
                wait = (wait * 2).min(MAX_RETRY);
            }
        }
    }
}
