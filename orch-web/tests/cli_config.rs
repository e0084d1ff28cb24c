//! `orch config`, `.env` and `.orch/config.toml` as a user meets them.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod support;

use std::path::Path;

use serde_json::Value;
use support::{json_lines, orch, run_in, script, text};

fn setting<'a>(config: &'a Value, key: &str) -> &'a Value {
    config["settings"].as_array().unwrap().iter().find(|s| s["key"] == key).unwrap_or_else(|| panic!("no {key}"))
}

fn config_json(dir: &Path, env: &[(&str, &str)], args: &[&str]) -> Value {
    let mut c = orch();
    c.arg("--cwd").arg(dir);
    for (k, v) in env {
        c.env(k, v);
    }
    let out = c.args(args).args(["config", "--json"]).output().unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn layers_apply_in_order_flag_env_dotenv_file_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(".orch")).unwrap();
    std::fs::write(
        d.join(".orch/config.toml"),
        "[models]\ndefault = \"scripted:file.json\"\nsummary = \"scripted:file-summary.json\"\nagents = \"file-agent\"\n\n[limits]\nmax_agent_turns = 11\n",
    )
    .unwrap();
    std::fs::write(
        d.join(".env"),
        "ORCH_MODEL=scripted:dotenv.json\nORCH_SUMMARY_MODEL=scripted:dotenv-summary.json\n",
    )
    .unwrap();
    let env = [("ORCH_MODEL", "scripted:env.json")];

    let c = config_json(d, &env, &["--model", "scripted:flag.json"]);
    assert_eq!(setting(&c, "models.default")["value"], "scripted:flag.json");
    assert_eq!(setting(&c, "models.default")["source"]["kind"], "flag");
    let c = config_json(d, &env, &[]);
    assert_eq!(setting(&c, "models.default")["value"], "scripted:env.json");
    assert_eq!(setting(&c, "models.default")["source"]["kind"], "env");
    let c = config_json(d, &[], &[]);
    assert_eq!(setting(&c, "models.default")["value"], "scripted:dotenv.json");
    assert_eq!(setting(&c, "models.default")["source"]["kind"], "dot_env");
    assert_eq!(setting(&c, "models.summary")["value"], "scripted:dotenv-summary.json");
    assert_eq!(setting(&c, "models.agents")["value"], "file-agent");
    assert_eq!(setting(&c, "models.agents")["source"]["kind"], "file");
    assert_eq!(setting(&c, "limits.max_agent_turns")["value"], 11);
    assert_eq!(setting(&c, "limits.agent_warmup")["source"]["kind"], "default");

    // The layers drive what runs: the model of .env runs the demo when nothing else names one.
    std::fs::write(d.join(".orch/config.toml"), "[limits]\nmax_agent_turns = 11\n").unwrap();
    std::fs::write(d.join(".env"), format!("ORCH_MODEL=scripted:{}\n", script("demo.json").display())).unwrap();
    let out = run_in(d, &["run", "write a greeting for Ada"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(d.join("hello.txt").exists());
    // …and a flag beats it.
    let out = run_in(d, &["--model", "nosuch:thing", "run", "hi"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("--model"), "{}", text(&out.stderr));
}

#[test]
fn dotenv_database_url_and_api_keys_are_used_and_never_shown() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // The seed's .env: DATABASE_URL names the store, the Anthropic key reaches the provider.
    std::fs::write(
        d.join(".env"),
        "ANTHROPIC_API_KEY=sk-ant-very-secret-key\nANTHROPIC_BASE_URL=http://127.0.0.1:1\nORCH_MODEL_MAX_RETRIES=0\nDATABASE_URL=postgres://orch:hunter2@127.0.0.1:1/orch\nBACKEND_PORT=9403\n",
    )
    .unwrap();
    let c = config_json(d, &[], &[]);
    assert_eq!(setting(&c, "store.url")["value"], "postgres://orch:***@127.0.0.1:1/orch");
    assert_eq!(setting(&c, "store.url")["source"]["var"], "DATABASE_URL");
    assert_eq!(setting(&c, "providers.anthropic_api_key")["value"], "***");
    assert_eq!(setting(&c, "server.port")["value"], 9403);
    let human = run_in(d, &["config"]);
    assert!(human.status.success());
    for out in [text(&human.stdout), c.to_string()] {
        assert!(!out.contains("very-secret") && !out.contains("hunter2"), "a secret leaked: {out}");
        assert!(out.contains(".env"), "{out}");
    }
    // The key from .env reaches the Anthropic provider (it fails to connect, not for a missing key),
    // and the default model is Anthropic's because the key is set.
    std::fs::write(
        d.join(".env"),
        "ANTHROPIC_API_KEY=sk-ant-very-secret-key\nANTHROPIC_BASE_URL=http://127.0.0.1:1\nORCH_MODEL_MAX_RETRIES=0\n",
    )
    .unwrap();
    let out = run_in(d, &["run", "hi"]);
    let e = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{e}");
    assert!(!e.contains("ANTHROPIC_API_KEY is not set") && !e.contains("no model given"), "{e}");
    assert!(e.contains("127.0.0.1:1") || e.contains("connect"), "{e}");
    assert!(!e.contains("very-secret"), "{e}");
    let models = text(&run_in(d, &["models"]).stdout);
    assert!(models.contains("ANTHROPIC_API_KEY set"), "{models}");
}

#[test]
fn a_malformed_config_file_is_a_usage_error_naming_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(".orch")).unwrap();
    let file = d.join(".orch/config.toml");
    for (toml, line, key) in [
        (
            "[models]\ndefault = \"scripted:x.json\"\n\n[limits]\nmax_agent_turns = \"lots\"\n",
            5,
            "limits.max_agent_turns",
        ),
        ("[models]\ndefault = \"x\"\ndefualt = \"y\"\n", 3, "models.defualt"),
        ("[server]\nport = 8000\n[nonsense]\n", 3, "nonsense"),
        ("[limits]\nmax_agent_turns = 0\n", 2, "limits.max_agent_turns"),
    ] {
        std::fs::write(&file, toml).unwrap();
        for args in [&["config"][..], &["agent", "list"][..]] {
            let out = run_in(d, args);
            let e = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{toml}: {e}");
            assert!(e.contains(&format!("config.toml:{line}:")) && e.contains(key), "{toml}: {e}");
        }
    }
    assert!(!d.join(".orch/orch.db").exists(), "no database is created on a bad config");
    let _ = json_lines;
}

#[cfg(unix)]
#[test]
fn dotenv_names_the_claude_binary_and_its_key_reaches_the_claude_code_cli() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    // A stand-in `claude` that records whether it got the key, then fails.
    let bin = d.join("fake-claude.sh");
    std::fs::write(&bin, "#!/bin/sh\nprintf '%s' \"$ANTHROPIC_API_KEY\" > \"$(dirname \"$0\")/seen-key\"\nexit 1\n")
        .unwrap();
    std::fs::set_permissions(&bin, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::write(
        d.join(".env"),
        format!("ORCH_MODEL=claude-code\nORCH_CLAUDE_BIN={}\nANTHROPIC_API_KEY=sk-ant-from-dotenv\n", bin.display()),
    )
    .unwrap();
    let out = run_in(d, &["run", "--agent", "cc", "hello"]);
    assert_eq!(out.status.code(), Some(1), "the stand-in fails: {}", text(&out.stderr));
    assert_eq!(std::fs::read_to_string(d.join("seen-key")).unwrap(), "sk-ant-from-dotenv");
}

/// `[graphs]` settings are shown with their source; an unknown key there is refused naming it.
#[test]
fn graph_settings_are_shown_and_checked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join(".orch")).unwrap();
    std::fs::write(d.join(".orch/config.toml"), "[graphs]\nqa_model = \"haiku\"\nconcurrency = 8\n").unwrap();
    let c = config_json(d, &[], &[]);
    assert_eq!(setting(&c, "graphs.qa_model")["value"], "haiku");
    assert_eq!(setting(&c, "graphs.qa_model")["source"]["kind"], "file");
    assert_eq!(setting(&c, "graphs.concurrency")["value"], 8);
    assert_eq!(setting(&c, "graphs.max_attempts")["value"], 3);
    assert_eq!(setting(&c, "graphs.max_attempts")["source"]["kind"], "default");

    std::fs::write(d.join(".orch/config.toml"), "[graphs]\nqa_modle = \"haiku\"\n").unwrap();
    let out = run_in(d, &["config"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("qa_modle"), "{}", text(&out.stderr));
}
