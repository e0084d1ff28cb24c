//! `orch models`: providers, aliases, prices and which API keys are configured (never a key itself).

use std::io::Write;

use orch_core::config::{OrchConfig, Secret, Sourced};

use crate::chat::Failure;

fn key_set(config: &OrchConfig, var: &str) -> bool {
    let p = &config.providers;
    let key: &Sourced<Option<Secret>> = match var {
        "ANTHROPIC_API_KEY" => &p.anthropic_api_key,
        "OPENAI_API_KEY" => &p.openai_api_key,
        _ => return false,
    };
    key.value.as_ref().is_some_and(|k| !k.expose().is_empty())
}

/// Prints providers, aliases, prices and which keys are set (never a key itself).
pub fn print_models(config: &OrchConfig, json: bool) -> Result<(), Failure> {
    let aliases = orch_core::engine::aliases(config)?;
    let prices = orch_core::engine::prices(config)?;
    let providers = [
        ("scripted", "scripted:PATH", "a scripted-model JSON file (no API)", None),
        ("replay", "replay:FILE", "replays a cassette recorded with --record (no API)", None),
        ("anthropic", "anthropic:MODEL", "Anthropic Messages API (ANTHROPIC_BASE_URL)", Some("ANTHROPIC_API_KEY")),
        ("openai", "openai:MODEL", "OpenAI-compatible Chat Completions (OPENAI_BASE_URL)", Some("OPENAI_API_KEY")),
        ("ollama", "ollama:MODEL", "Ollama's OpenAI-compatible API (OLLAMA_HOST)", None),
        ("claude-code", "claude-code[:MODEL]", "the Claude Code CLI (ORCH_CLAUDE_BIN)", Some("ANTHROPIC_API_KEY")),
    ];
    let mut alias_list: Vec<_> = aliases.aliases.iter().collect();
    alias_list.sort();
    let mut price_list: Vec<_> = prices.models.iter().collect();
    price_list.sort_by(|a, b| a.0.cmp(b.0));
    let mut out = std::io::stdout().lock();
    if json {
        let v = serde_json::json!({
            "providers": providers.iter().map(|(name, form, about, key)| serde_json::json!({
                "name": name, "spec": form, "description": about,
                "key_env": key, "key_set": key.map(|k| key_set(config, k)),
            })).collect::<Vec<_>>(),
            "aliases": alias_list.iter().map(|(a, m)| (a.to_string(), serde_json::Value::from(m.as_str()))).collect::<serde_json::Map<_, _>>(),
            "prices_usd_per_mtok": price_list.iter().map(|(m, p)| (m.to_string(), serde_json::to_value(p).unwrap_or_default())).collect::<serde_json::Map<_, _>>(),
        });
        let _ = writeln!(out, "{v}");
        return Ok(());
    }
    let _ = writeln!(out, "Providers:");
    for (_, form, about, key) in providers {
        let key_note = match key {
            Some(k) => format!("  [{k} {}]", if key_set(config, k) { "set" } else { "not set" }),
            None => String::new(),
        };
        let _ = writeln!(out, "  {form:<22} {about}{key_note}");
    }
    let _ = writeln!(out, "\nAliases:");
    for (a, m) in alias_list {
        let _ = writeln!(out, "  {a:<8} {m}");
    }
    let _ = writeln!(out, "\nPrices (USD per million tokens: input / output / cache read / cache write):");
    for (m, p) in price_list {
        let _ = writeln!(
            out,
            "  {m:<22} {:>7.2} {:>7.2} {:>7.3} {:>7.3}",
            p.input,
            p.output,
            p.cache_read.unwrap_or(p.input * 0.1),
            p.cache_write.unwrap_or(p.input * 1.25)
        );
    }
    Ok(())
}
