//! Slash commands and agent templates loaded from `tests/fixtures/claude/.claude`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![cfg(feature = "engine")]

use std::path::{Path, PathBuf};

use orch_core::template::{TemplateError, TemplateKind, Templates, split_arguments};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/claude")
}

fn load() -> Templates {
    Templates::load(fixture())
}

fn problem_for(t: &Templates, file: &str) -> String {
    let p = t
        .problems()
        .iter()
        .find(|p| p.path.file_name().is_some_and(|n| n == file))
        .unwrap_or_else(|| panic!("no problem reported for {file}: {:?}", t.problems()));
    p.to_string()
}

#[test]
fn commands_are_namespaced_and_sorted() {
    let t = load();
    let names: Vec<&str> = t.commands().iter().map(|c| c.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "build",
            "choose",
            "experts:adw:deep:plan",
            "experts:websocket:question",
            "fix",
            "hash",
            "keyed",
            "listed",
            "ping"
        ]
    );
}

#[test]
fn argument_hints_stay_plain_strings() {
    let t = load();
    let hint = |n: &str| t.command(n).unwrap().argument_hint.clone();
    assert_eq!(hint("build"), "[path-to-plan]");
    assert_eq!(hint("fix"), "[file] [--flag]");
    assert_eq!(hint("choose"), "<a>|<b>");
    assert_eq!(hint("keyed"), "key: value");
    assert_eq!(hint("listed"), "prompt");
    assert_eq!(hint("hash"), "#issue-number {optional}");
    assert_eq!(hint("ping"), "");
}

#[test]
fn command_fields() {
    let t = load();
    let build = t.command("build").unwrap();
    assert_eq!(build.description, "Implement a plan file");
    assert_eq!(build.model.as_deref(), Some("sonnet"));
    assert_eq!(build.allowed_tools, ["Read", "Write", "Edit", "Bash"]);
    assert!(!build.disable_model_invocation);
    assert!(build.body.starts_with("# Build\n"));

    let fix = t.command("fix").unwrap();
    assert_eq!(fix.description, "Apply fixes: from a review report");
    assert_eq!(fix.allowed_tools, ["Read", "Write", "Bash(git diff:*)"]);
    assert!(fix.disable_model_invocation);

    let choose = t.command("choose").unwrap();
    assert_eq!(choose.allowed_tools, ["Read", "Grep", "Glob"]);
    assert_eq!(choose.model, None);

    assert_eq!(t.command("keyed").unwrap().description, "A folded description over two lines.");
    assert_eq!(t.command("listed").unwrap().description, "Line one\nLine two");
    assert!(!t.command("hash").unwrap().disable_model_invocation);
}

#[test]
fn file_without_frontmatter_is_a_command_with_empty_fields() {
    let t = load();
    let ping = t.command("ping").unwrap();
    assert_eq!(ping.description, "");
    assert_eq!(ping.model, None);
    assert!(ping.allowed_tools.is_empty());
    assert!(!ping.disable_model_invocation);
    assert!(ping.body.starts_with("Reply with \"pong\"."));
}

#[test]
fn bad_command_files_are_reported_and_skipped() {
    let t = load();
    for name in ["broken", "badyaml", "badbool"] {
        assert!(t.command(name).is_none(), "{name} should be skipped");
    }
    let broken = problem_for(&t, "broken.md");
    assert!(broken.contains("unterminated frontmatter"), "{broken}");
    assert!(broken.starts_with("command "), "{broken}");
    let badyaml = problem_for(&t, "badyaml.md");
    assert!(badyaml.contains("line 2") && badyaml.contains("unterminated quoted string"), "{badyaml}");
    let badbool = problem_for(&t, "badbool.md");
    assert!(badbool.contains("disable-model-invocation") && badbool.contains("perhaps"), "{badbool}");
    let command_problems = t.problems().iter().filter(|p| p.kind == TemplateKind::Command).count();
    assert_eq!(command_problems, 3, "{:?}", t.problems());
}

#[test]
fn agents_load_keyed_by_name() {
    let t = load();
    let names: Vec<&str> = t.agents().iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["build-agent", "planner", "scout-report-suggest"]);

    let build = t.agent("build-agent").unwrap();
    assert_eq!(build.description, "Implement a single file as part of a parallel build");
    assert_eq!(build.tools.as_deref().unwrap(), ["Write", "Read", "Edit", "Grep", "Glob", "Bash", "TodoWrite"]);
    assert_eq!(build.model.as_deref(), Some("opus"));
    assert_eq!(build.color.as_deref(), Some("blue"));
    assert_eq!(build.system_prompt, "You are a build agent. Implement exactly one file.");

    let scout = t.agent("scout-report-suggest").unwrap();
    assert_eq!(scout.tools.as_deref().unwrap(), ["Read", "Glob", "Grep"]);
    assert!(scout.path.ends_with("scout.md"));

    // No `tools` key: all tools, not a crash.
    let planner = t.agent("planner").unwrap();
    assert_eq!(planner.tools, None);
    assert_eq!(planner.color, None);
    assert_eq!(planner.description, "Structured planning via slash commands");
    assert!(t.agent("ignored").is_none(), "agents are not loaded recursively");
}

#[test]
fn bad_agent_files_are_reported_and_skipped() {
    let t = load();
    assert!(problem_for(&t, "nameless.md").contains("`name`"));
    assert!(problem_for(&t, "empty-body.md").contains("empty body"));
    assert!(t.agent("empty").is_none());
    assert!(problem_for(&t, "plain.md").contains("missing frontmatter"));
    let dup = problem_for(&t, "zz-dup.md");
    assert!(dup.contains("duplicate agent name `planner`"), "{dup}");
    assert!(dup.starts_with("agent template "), "{dup}");
    let agent_problems = t.problems().iter().filter(|p| p.kind == TemplateKind::Agent).count();
    assert_eq!(agent_problems, 4, "{:?}", t.problems());
}

#[test]
fn summaries_serialize() {
    let t = load();
    let commands = serde_json::to_value(t.command_summaries()).unwrap();
    let fix = commands.as_array().unwrap().iter().find(|c| c["name"] == "fix").unwrap();
    assert_eq!(fix["argument_hint"], "[file] [--flag]");
    assert_eq!(fix["model"], "opus");
    assert_eq!(fix["disable_model_invocation"], true);
    let agents = serde_json::to_value(t.agent_summaries()).unwrap();
    assert_eq!(agents[1]["name"], "planner");
    assert_eq!(agents[1]["tools"], serde_json::Value::Null);
    assert_eq!(agents[0]["color"], "blue");
    let problems = serde_json::to_value(t.problems()).unwrap();
    assert!(problems.as_array().unwrap().iter().any(|p| p["kind"] == "agent"));
}

#[test]
fn missing_directories_give_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = Templates::load(dir.path());
    assert!(t.commands().is_empty());
    assert!(t.agents().is_empty());
    assert!(t.problems().is_empty());
    assert_eq!(t.expand("hello").unwrap(), None);
    let err = t.expand("/plan x").unwrap_err();
    assert_eq!(err.to_string(), "unknown slash command `/plan`; available: (none)");
}

#[test]
fn expands_arguments_with_quoting() {
    let t = load();
    let e = t.expand(r#"/fix "fix the login bug" 'specs/plan one.md' review\ report.md"#).unwrap().unwrap();
    assert_eq!(e.command, "fix");
    assert_eq!(e.model.as_deref(), Some("opus"));
    assert_eq!(e.allowed_tools.as_deref().unwrap(), ["Read", "Write", "Bash(git diff:*)"]);
    assert_eq!(
        e.prompt,
        "Prompt: fix the login bug\n\
         Plan: specs/plan one.md\n\
         Review: review report.md\n\
         Unused: []\n\
         All: \"fix the login bug\" 'specs/plan one.md' review\\ report.md\n\
         Cost:  and $$ and $x\n"
    );
}

#[test]
fn expands_arguments_whole_and_nested_names() {
    let t = load();
    let e = t.expand("  /build specs/plan.md  ").unwrap().unwrap();
    assert_eq!(e.arguments, "specs/plan.md");
    assert_eq!(e.prompt, "# Build\n\nImplement the plan at specs/plan.md.\n");
    assert_eq!(e.allowed_tools.as_deref().unwrap(), ["Read", "Write", "Edit", "Bash"]);

    let e = t.expand("/experts:websocket:question \"how do we reconnect?\"").unwrap().unwrap();
    assert_eq!(e.prompt, "Question: how do we reconnect?\n");
    assert_eq!(e.model, None);
    assert_eq!(e.allowed_tools, None);

    let e = t.expand("/ping").unwrap().unwrap();
    assert_eq!(e.prompt, "Reply with \"pong\". Args were: \n");
}

#[test]
fn not_a_slash_command_and_unknown_commands() {
    let t = load();
    assert_eq!(t.expand("please /build this").unwrap(), None);
    assert_eq!(t.expand("/usr/bin/ls is a path").unwrap(), None);
    assert_eq!(t.expand("/").unwrap(), None);
    let err = t.expand("/nope a b").unwrap_err();
    let TemplateError::UnknownCommand { name, available } = &err;
    assert_eq!(name, "nope");
    assert_eq!(available.len(), t.commands().len());
    let msg = err.to_string();
    assert!(msg.starts_with("unknown slash command `/nope`; available: /build, /choose"), "{msg}");
    assert!(msg.contains("/experts:websocket:question"), "{msg}");
}

#[test]
fn shell_like_argument_splitting() {
    assert_eq!(split_arguments(r#"a "b c" 'd e' f\ g"#), ["a", "b c", "d e", "f g"]);
    assert_eq!(split_arguments(r#""say \"hi\"" 'it''s' x"y"z"#), ["say \"hi\"", "its", "xyz"]);
    assert_eq!(split_arguments(r#""a\nb""#), ["a\\nb"]);
    assert_eq!(split_arguments("  "), Vec::<String>::new());
    assert_eq!(split_arguments("\"\" b"), ["", "b"]);
    // An unterminated quote falls back to whitespace splitting.
    assert_eq!(split_arguments("what's this"), ["what's", "this"]);
}
