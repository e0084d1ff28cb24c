//! [`RunnerAdditions`]: tools and hooks a host adds to a running engine (the Python package registers
//! its callables here), seen by every turn that starts afterwards.

use std::sync::{Arc, RwLock};

use crate::hook::{Hook, HookEvent, HookRegistry, MatcherError};
use crate::tool::{Tool, ToolRegistry};

/// Tools and hooks added to an [`AgentRunner`](super::AgentRunner) after it was built. Every clone of
/// the runner (the engine's supervisor, its agent managers and workflows) shares them. Each turn reads
/// them when it starts: an added tool joins the runner's own (replacing one of the same name), and added
/// hooks run after the runner's own. A turn already running keeps the set it started with.
#[derive(Clone, Default)]
pub struct RunnerAdditions {
    inner: Arc<RwLock<Added>>,
}

#[derive(Default)]
struct Added {
    tools: ToolRegistry,
    hooks: HookRegistry,
}

impl std::fmt::Debug for RunnerAdditions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let added = self.read();
        f.debug_struct("RunnerAdditions").field("tools", &added.tools).field("hooks", &added.hooks).finish()
    }
}

impl RunnerAdditions {
    /// None yet.
    pub fn new() -> Self {
        Self::default()
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Added> {
        // A poisoned lock only means a thread panicked mid-update; the registries are still usable.
        self.inner.read().unwrap_or_else(|p| p.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Added> {
        self.inner.write().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds (or replaces) a tool.
    pub fn add_tool(&self, tool: Arc<dyn Tool>) {
        self.write().tools.register_arc(tool);
    }

    /// Removes the added tool `name`; whether there was one.
    pub fn remove_tool(&self, name: &str) -> bool {
        self.write().tools.remove(name)
    }

    /// Adds a hook for `event` (`matcher` as in [`HookRegistry::register`]).
    pub fn add_hook(&self, event: HookEvent, matcher: Option<&str>, hook: Arc<dyn Hook>) -> Result<(), MatcherError> {
        self.write().hooks.register_arc(event, matcher, hook).map(|_| ())
    }

    /// `base` with the added tools.
    pub fn tools_over(&self, base: &ToolRegistry) -> ToolRegistry {
        let mut tools = base.clone();
        tools.extend(&self.read().tools);
        tools
    }

    /// `base` with the added hooks after its own.
    pub fn hooks_over(&self, base: &HookRegistry) -> HookRegistry {
        let mut hooks = base.clone();
        hooks.extend(&self.read().hooks);
        hooks
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::{FnHook, HookDecision, HookInput};
    use crate::tool::{ToolContext, ToolError, ToolOutput};

    struct Named(&'static str, &'static str);

    #[async_trait::async_trait]
    impl Tool for Named {
        fn name(&self) -> &str {
            self.0
        }
        fn description(&self) -> &str {
            self.1
        }
        fn input_schema(&self) -> serde_json::Value {
            serde_json::json!({"type": "object"})
        }
        async fn call(&self, _ctx: &ToolContext, _input: serde_json::Value) -> Result<ToolOutput, ToolError> {
            Ok(ToolOutput::text(self.1))
        }
    }

    #[test]
    fn added_tools_join_the_base_and_replace_a_namesake_and_clones_share_them() {
        let mut base = ToolRegistry::new();
        base.register(Named("Read", "built-in")).register(Named("Write", "built-in"));
        let added = RunnerAdditions::new();
        let clone = added.clone();
        clone.add_tool(Arc::new(Named("weather", "added")));
        clone.add_tool(Arc::new(Named("Write", "added")));
        let tools = added.tools_over(&base);
        assert_eq!(tools.names(), ["Read", "Write", "weather"]);
        assert_eq!(tools.get("Write").map(|t| t.description().to_string()).as_deref(), Some("added"));
        assert_eq!(base.names(), ["Read", "Write"], "the base is left as it was");
        assert!(added.remove_tool("weather"));
        assert!(!added.remove_tool("weather"));
        assert_eq!(added.tools_over(&base).names(), ["Read", "Write"]);
    }

    #[test]
    fn added_hooks_run_after_the_base_ones_and_a_bad_matcher_is_refused() {
        let mut base = HookRegistry::new();
        base.register(HookEvent::PreToolUse, None, FnHook::new("base", |_: &HookInput| HookDecision::Continue))
            .unwrap();
        let added = RunnerAdditions::new();
        let deny = FnHook::new("added", |_: &HookInput| HookDecision::Deny { reason: "no".into() });
        assert!(added.add_hook(HookEvent::PreToolUse, Some("Write"), Arc::new(deny)).is_ok());
        assert!(
            added
                .add_hook(
                    HookEvent::PreToolUse,
                    Some("("),
                    Arc::new(FnHook::new("bad", |_: &HookInput| HookDecision::Continue))
                )
                .is_err()
        );
        let hooks = added.hooks_over(&base);
        let names: Vec<&str> = hooks.matching(HookEvent::PreToolUse, Some("Write")).map(|h| h.name()).collect();
        assert_eq!(names, ["base", "added"]);
        let names: Vec<&str> = hooks.matching(HookEvent::PreToolUse, Some("Read")).map(|h| h.name()).collect();
        assert_eq!(names, ["base"]);
    }
}
