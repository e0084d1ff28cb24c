//! Data-defined workflows: the `.orch/workflows/*.toml` format, templates, conditions, extraction, built-ins.
pub mod builtin;
pub mod expr;
pub mod extract;
pub mod spec;
