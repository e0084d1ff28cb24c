//! [`CodeWorkflows`]: workflows a host registers in code while it runs (the Python package registers
//! its workflow classes here), found by name before the built-ins and `.orch/workflows/*.toml`, so
//! their runs are started, resumed and cancelled by the one [`WorkflowEngine`](super::WorkflowEngine).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use super::Workflow;

/// Workflows registered by name. Clones share them.
#[derive(Clone, Default)]
pub struct CodeWorkflows {
    inner: Arc<RwLock<BTreeMap<String, Arc<dyn Workflow>>>>,
}

impl std::fmt::Debug for CodeWorkflows {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CodeWorkflows").field("names", &self.names()).finish()
    }
}

impl CodeWorkflows {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers `workflow` under its name, replacing one of the same name (returned).
    pub fn register(&self, workflow: Arc<dyn Workflow>) -> Option<Arc<dyn Workflow>> {
        // A poisoned lock only means a thread panicked mid-update; the map is still usable.
        let mut map = self.inner.write().unwrap_or_else(|p| p.into_inner());
        map.insert(workflow.name().to_string(), workflow)
    }

    /// Removes workflow `name`; whether there was one.
    pub fn remove(&self, name: &str) -> bool {
        self.inner.write().unwrap_or_else(|p| p.into_inner()).remove(name).is_some()
    }

    /// Workflow `name`, if registered.
    pub fn get(&self, name: &str) -> Option<Arc<dyn Workflow>> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).get(name).cloned()
    }

    /// The registered names, sorted.
    pub fn names(&self) -> Vec<String> {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).keys().cloned().collect()
    }
}
