//! `orch config [--json]`: the effective configuration and where each value came from. Secrets are
//! masked by the config types themselves ([`orch_core::config::Secret`], [`orch_core::config::DatabaseUrl`]).

use std::io::Write;

use orch_core::config::OrchConfig;

use crate::chat::Failure;

/// Prints `config`.
pub fn print(config: &OrchConfig, json: bool) -> Result<u8, Failure> {
    let entries = config.entries();
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "working_dir": config.working_dir.value,
            "dotenv_file": config.dotenv_file,
            "config_file": config.config_file,
            "settings": entries,
        });
        let _ = writeln!(out, "{v}");
        return Ok(0);
    }
    let file = |p: &Option<std::path::PathBuf>| p.as_ref().map(|p| p.display().to_string()).unwrap_or("none".into());
    let _ = writeln!(out, "working directory: {}", config.working_dir.value.display());
    let _ = writeln!(out, ".env file:         {}", file(&config.dotenv_file));
    let _ = writeln!(out, "config file:       {}", file(&config.config_file));
    let _ = writeln!(out);
    let _ = writeln!(out, "{:<34} {:<40} SOURCE", "KEY", "VALUE");
    for e in entries {
        let value = match &e.value {
            None => "(unset)".to_string(),
            Some(serde_json::Value::String(s)) => s.clone(),
            Some(v) => v.to_string(),
        };
        let _ = writeln!(out, "{:<34} {:<40} {}", e.key, value, e.source);
    }
    let _ = writeln!(out, "\nLayers, highest first: flags, environment, .env, .orch/config.toml, defaults.");
    Ok(0)
}
