//! orch's browser dashboard. The page is Leptos with client-side rendering, compiled to WebAssembly and
//! served by `orch serve` (see `scripts/build-ui.sh`).
//!
//! Everything that is not drawing lives in plain Rust modules that build and are tested on the host:
//! the event buffer ([`buffer`]), the state the stream's events are folded into ([`model`]), filters and
//! search ([`filter`]), the reconnect backoff ([`backoff`]), the server's frames and JSON ([`protocol`]),
//! the virtual list's window ([`window`]), formatting ([`format`](mod@format)), safe markdown ([`markdown`]), and the
//! change review ([`changes`]) with its unified diffs ([`netdiff`]). The Leptos views (module `app`) build
//! for `wasm32` only.

pub mod backoff;
pub mod buffer;
pub mod changes;
pub mod costs;
pub mod filter;
pub mod format;
pub mod graphs;
pub mod inbox;
pub mod markdown;
pub mod model;
pub mod netdiff;
pub mod protocol;
pub mod timeline;
pub mod window;
pub mod workers;

#[cfg(target_arch = "wasm32")]
mod app;
