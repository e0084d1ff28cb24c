#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::path::Path;

use super::*;

fn inputs(dir: &Path, flags: Flags, env: &[(&str, &str)]) -> ConfigInputs {
    ConfigInputs {
        flags: Flags { working_dir: Some(dir.to_path_buf()), ..flags },
        env: env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect::<HashMap<_, _>>(),
        current_dir: dir.to_path_buf(),
    }
}

fn write(dir: &Path, dotenv: Option<&str>, toml: Option<&str>) {
    if let Some(d) = dotenv {
        std::fs::write(dir.join(".env"), d).unwrap();
    }
    if let Some(t) = toml {
        std::fs::create_dir_all(dir.join(".orch")).unwrap();
        std::fs::write(dir.join(".orch/config.toml"), t).unwrap();
    }
}

#[test]
fn flag_beats_env_beats_dotenv_beats_file_beats_default() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        Some("ORCH_MODEL=scripted:dotenv.json\nORCH_MAX_AGENT_TURNS=7\nORCH_SUMMARY_MODEL=scripted:s.json\n"),
        Some(
            "[models]\ndefault = \"scripted:file.json\"\nagents = \"haiku\"\nsummary = \"scripted:f.json\"\n[limits]\nmax_agent_turns = 9\n[server]\nport = 9001\n",
        ),
    );
    let flag = Flags { model: Some("scripted:flag.json".into()), ..Flags::default() };
    let env = [("ORCH_MODEL", "scripted:env.json"), ("ORCH_MAX_AGENT_TURNS", "5")];

    let c = OrchConfig::load_from(inputs(d, flag, &env)).unwrap();
    assert_eq!(c.models.default.value.as_deref(), Some("scripted:flag.json"));
    assert_eq!(c.models.default.source, Source::Flag { name: "--model".into() });
    assert_eq!(c.limits.max_agent_turns.value, 5);
    assert_eq!(c.limits.max_agent_turns.source, Source::Env { var: "ORCH_MAX_AGENT_TURNS".into() });
    assert_eq!(c.models.summary.value.as_deref(), Some("scripted:s.json"));
    assert!(matches!(c.models.summary.source, Source::DotEnv { .. }));
    assert_eq!(c.models.agents.value.as_deref(), Some("haiku"));
    assert!(matches!(&c.models.agents.source, Source::File { key, .. } if key == "models.agents"));
    assert_eq!(c.server.port.value, 9001);
    assert!(!c.limits.agent_warmup.value);
    assert_eq!(c.limits.agent_warmup.source, Source::Default);

    let c = OrchConfig::load_from(inputs(d, Flags::default(), &env)).unwrap();
    assert_eq!(c.models.default.value.as_deref(), Some("scripted:env.json"));
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap();
    assert_eq!(c.models.default.value.as_deref(), Some("scripted:dotenv.json"));
    assert_eq!(c.limits.max_agent_turns.value, 7);
    std::fs::remove_file(d.join(".env")).unwrap();
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap();
    assert_eq!(c.models.default.value.as_deref(), Some("scripted:file.json"));
    assert_eq!(c.limits.max_agent_turns.value, 9);
}

#[test]
fn database_url_and_backend_port_are_accepted_and_secrets_are_masked() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        d,
        Some("DATABASE_URL=postgres://u:hunter2@h/db\nANTHROPIC_API_KEY=sk-ant-very-secret\nBACKEND_PORT=9403\n"),
        None,
    );
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap();
    let url = c.store.url.value.as_ref().unwrap();
    assert_eq!(url.expose(), "postgres://u:hunter2@h/db");
    assert_eq!(url.to_string(), "postgres://u:***@h/db");
    assert_eq!(c.providers.anthropic_api_key.value.as_ref().unwrap().expose(), "sk-ant-very-secret");
    assert_eq!(c.server.port.value, 9403);
    let shown = format!("{} {:?}", serde_json::to_string(&c).unwrap(), c);
    let entries = serde_json::to_string(&c.entries()).unwrap();
    for s in [&shown, &entries] {
        assert!(!s.contains("hunter2") && !s.contains("very-secret"), "{s}");
    }
    // ORCH_DATABASE_URL wins over DATABASE_URL, wherever each is set.
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &[("ORCH_DATABASE_URL", "x.db")])).unwrap();
    assert_eq!(c.store.url.value.unwrap().expose(), "x.db");
}

#[test]
fn a_malformed_or_unknown_key_names_file_line_and_key() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, None, Some("[models]\ndefault = \"x\"\n\n[limits]\nmax_agent_turns = \"many\"\n"));
    let e = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap_err();
    let ConfigError::File { line, key, .. } = &e else { panic!("{e:?}") };
    assert_eq!((*line, key.as_str()), (5, "limits.max_agent_turns"), "{e}");

    write(d, None, Some("[models]\ndefault = \"x\"\ndefualt_model = \"y\"\n"));
    let e = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap_err();
    let msg = e.to_string();
    assert!(msg.contains("config.toml:3:") && msg.contains("models.defualt_model"), "{msg}");

    write(d, None, Some("[limits\nmax_agent_turns = 3\n"));
    let e = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap_err();
    assert!(matches!(e, ConfigError::File { line: 1, .. }), "{e:?}");

    write(d, None, Some("[limits]\nmax_agent_turns = 0\n"));
    let e = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap_err();
    assert!(e.to_string().contains(":2: limits.max_agent_turns"), "{e}");
}

#[test]
fn bad_values_name_their_variable_and_source() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, Some("ORCH_AGENT_WARMUP=maybe\n"), None);
    let e = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap_err().to_string();
    assert!(e.contains("ORCH_AGENT_WARMUP") && e.contains("maybe") && e.contains(".env"), "{e}");
}

#[test]
fn redaction_covers_userinfo_and_query_passwords() {
    assert_eq!(redact_url("postgres://a:b@h:5/d?password=c&x=1"), "postgres://a:***@h:5/d?password=***&x=1");
    assert_eq!(redact_url("sqlite://x.db"), "sqlite://x.db");
    assert_eq!(redact_url("/tmp/a.db"), "/tmp/a.db");
}

#[test]
fn sandbox_defaults_file_values_and_environment() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap();
    assert!(c.sandbox.bash.value && !c.sandbox.network.value && c.sandbox.writable.value.is_empty());

    write(d, None, Some("[sandbox]\nnetwork = true\nwritable = [\"cache\", \"/opt/x\"]\n"));
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap();
    assert!(c.sandbox.network.value);
    let wd = c.working_dir.value.clone();
    assert_eq!(c.sandbox.writable.value, vec![wd.join("cache"), std::path::PathBuf::from("/opt/x")]);
    assert!(c.entries().iter().any(|e| e.key == "sandbox.writable" && e.value.is_some()));

    let env = [("ORCH_SANDBOX_BASH", "off"), ("ORCH_SANDBOX_WRITABLE", "/a:/b")];
    let c = OrchConfig::load_from(inputs(d, Flags::default(), &env)).unwrap();
    assert!(!c.sandbox.bash.value);
    assert_eq!(c.sandbox.writable.value, vec![std::path::PathBuf::from("/a"), std::path::PathBuf::from("/b")]);

    write(d, None, Some("[sandbox]\n\nnetwork = \"sometimes\"\n"));
    let e = OrchConfig::load_from(inputs(d, Flags::default(), &[])).unwrap_err().to_string();
    assert!(e.contains(":3:") && e.contains("sandbox.network"), "{e}");
}
