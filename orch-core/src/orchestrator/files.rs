//! File tracking per agent run (being written).

use std::path::Path;

use crate::runtime::Runtime;
use crate::wire::{Event, EventRecord};

/// The working tree before a run.
#[derive(Debug, Clone, Default)]
pub struct FileSnapshot {}

impl FileSnapshot {
    /// Records the state of `working_dir` before a run. Never fails: outside git it records nothing.
    pub async fn take(_runtime: &dyn Runtime, _working_dir: &Path) -> FileSnapshot {
        FileSnapshot {}
    }
}

/// The `FileTracking` event of one run, or `None` when the run read and changed nothing.
pub async fn track_run(
    _runtime: &dyn Runtime,
    _working_dir: &Path,
    _before: &FileSnapshot,
    _events: &[EventRecord],
) -> Option<Event> {
    None
}
