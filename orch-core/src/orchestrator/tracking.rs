//! File tracking as a run observer: a [`FileSnapshot`] before each run (background or foreground),
//! the run's file tool events collected as they commit, and one `FileTracking` event after it (see
//! [`super::files`]).

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use super::files::{FileSnapshot, track_run};
use crate::executor::{RunObserver, RunWatch};
use crate::runtime::Runtime;
use crate::store::Store;
use crate::wire::{Agent, Event, EventRecord};

/// Records the files each run read and changed.
#[derive(Debug, Clone, Default)]
pub struct FileTracking {
    /// The store's own files, never opened nor reported (see [`FileSnapshot::take_excluding`]).
    private: Vec<PathBuf>,
}

impl FileTracking {
    /// File tracking beside `store`: its own files ([`Store::local_files`]) are never opened nor
    /// reported, wherever they are (`.orch/` of the working directory never is).
    pub fn for_store(store: &dyn Store) -> Self {
        Self { private: store.local_files() }
    }
}

struct Watch {
    dir: PathBuf,
    before: FileSnapshot,
    /// What file tracking looks at, collected as the run commits (no need to read the log back).
    seen: Mutex<Vec<EventRecord>>,
}

#[async_trait]
impl RunObserver for FileTracking {
    async fn start(&self, agent: &Agent, runtime: &Arc<dyn Runtime>) -> Option<Box<dyn RunWatch>> {
        let dir = PathBuf::from(&agent.working_dir);
        // The store's own files are left out before anything is opened.
        let before = FileSnapshot::take_excluding(runtime.as_ref(), &dir, &self.private).await;
        Some(Box::new(Watch { dir, before, seen: Mutex::new(Vec::new()) }))
    }
}

#[async_trait]
impl RunWatch for Watch {
    fn on_events(&self, records: &[EventRecord]) {
        if let Ok(mut v) = self.seen.lock() {
            v.extend(
                records
                    .iter()
                    .filter(|r| {
                        matches!(r.event, Event::ToolUse { .. } | Event::ToolResult { .. } | Event::Text { .. })
                    })
                    .cloned(),
            );
        }
    }

    async fn finish(&self, runtime: &Arc<dyn Runtime>) -> Vec<Event> {
        let events = self.seen.lock().map(|mut v| std::mem::take(&mut *v)).unwrap_or_default();
        track_run(runtime.as_ref(), &self.dir, &self.before, &events).await.into_iter().collect()
    }
}
