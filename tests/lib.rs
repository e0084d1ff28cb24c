//! Shared pieces of the cross-crate tests and benchmarks.

pub mod mcp_stub;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use async_trait::async_trait;
use orch_core::tool::{Tool, ToolContext, ToolError, ToolOutput};
use serde_json::Value;

/// Wraps a tool and adds the time spent inside its body to a counter (nanoseconds).
pub struct TimedTool {
    inner: Arc<dyn Tool>,
    nanos: Arc<AtomicU64>,
}

impl TimedTool {
    /// Wraps `inner`; time is added to `nanos`.
    pub fn new(inner: Arc<dyn Tool>, nanos: Arc<AtomicU64>) -> Self {
        Self { inner, nanos }
    }
}

#[async_trait]
impl Tool for TimedTool {
    fn name(&self) -> &str {
        self.inner.name()
    }
    fn description(&self) -> &str {
        self.inner.description()
    }
    fn input_schema(&self) -> Value {
        self.inner.input_schema()
    }
    async fn call(&self, ctx: &ToolContext, input: Value) -> Result<ToolOutput, ToolError> {
        let t = Instant::now();
        let r = self.inner.call(ctx, input).await;
        self.nanos.fetch_add(t.elapsed().as_nanos() as u64, Ordering::Relaxed);
        r
    }
}

/// Median and 90th percentile of a sample (sorted in place).
pub fn median_p90(v: &mut [f64]) -> (f64, f64) {
    if v.is_empty() {
        return (0.0, 0.0);
    }
    v.sort_by(|a, b| a.total_cmp(b));
    let med = v[v.len() / 2];
    let p90 = v[((v.len() as f64 * 0.9).ceil() as usize).saturating_sub(1).min(v.len() - 1)];
    (med, p90)
}

/// A field of `/proc/self/status` as a number: kB for the memory fields (`VmRSS`, `VmHWM`), a count for
/// `Threads`. `None` where there is no procfs (not Linux) or no such field.
pub fn proc_status(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status.lines().find_map(|line| {
        let rest = line.strip_prefix(field)?.strip_prefix(':')?;
        rest.split_whitespace().next()?.parse().ok()
    })
}

/// Resets the process's peak RSS (`VmHWM`) to its current RSS (Linux: `5` into `/proc/self/clear_refs`).
/// Returns whether it worked.
pub fn reset_peak_rss() -> bool {
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}
