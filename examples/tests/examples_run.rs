//! Runs each example that needs no server and checks what it prints. `cargo test` builds the examples
//! (into `target/<profile>/examples/`) before it runs this test.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

/// Runs example `name`, expecting success; returns its stdout.
fn run(name: &str) -> String {
    run_with(name, None)
}

/// Runs example `name` with `ORCH_DATABASE_URL` set to `db` (or unset), expecting success.
fn run_with(name: &str, db: Option<&str>) -> String {
    // This test is target/<profile>/deps/examples_run-HASH; the examples are in target/<profile>/examples.
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().and_then(|d| d.parent()).map(|d| d.join("examples")).unwrap_or_default();
    let bin = dir.join(name);
    assert!(bin.exists(), "{} is not built: run this test with `cargo test -p orch-examples`", bin.display());
    let mut cmd = Command::new(&bin);
    match db {
        Some(url) => cmd.env("ORCH_DATABASE_URL", url),
        None => cmd.env_remove("ORCH_DATABASE_URL"),
    };
    let out = cmd.output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{name} failed: {}\n{stdout}\n{}", out.status, String::from_utf8_lossy(&out.stderr));
    stdout
}

fn has(out: &str, line: &str) {
    assert!(out.lines().any(|l| l.trim() == line), "no line {line:?} in:\n{out}");
}

#[test]
fn hello_agent_writes_the_greeting() {
    let out = run("hello_agent");
    has(&out, "hello.txt: Hello, Ada!");
}

#[test]
fn custom_tool_and_hook_adds_and_denies_the_cleanup() {
    let out = run("custom_tool_and_hook");
    has(&out, "reply: The cleanup was refused by a hook; leaving the files alone.");
}

#[test]
fn the_orchestrator_creates_and_commands_alice() {
    let out = run("orchestrator");
    has(&out, "orchestrator: alice is writing hello.py now; its progress follows below.");
    has(&out, "[alice] hello.py is written and prints its greeting.");
    has(&out, "hello.py: print(\"Hello from an orch agent!\")");
    assert!(out.contains("alice: Idle, model claude-sonnet-5"), "{out}");
}

#[test]
fn record_replay_replays_the_answer_and_diffs_a_changed_request() {
    let out = run("record_replay");
    has(&out, "recorded: The capital of Norway is Oslo.");
    has(&out, "cassette: 1 interaction(s)");
    has(&out, "replayed: The capital of Norway is Oslo.");
    assert!(out.contains("changed request: ") && out.contains("does not match the recording"), "{out}");
}

#[test]
fn custom_provider_runs_agents_on_their_own_providers() {
    let out = run("custom_provider");
    has(&out, "big: [big-1 via mycorp] HELLO THERE");
    has(&out, "local: scripted says hi");
    has(&out, "local, one run on mycorp:reviewer: [reviewer via mycorp] REVIEW THIS");
    assert!(out.contains("lost: agent 'lost': ") && out.contains("unknown provider 'openai'"), "{out}");
}

#[test]
fn typed_tool_names_the_bad_field_then_runs() {
    let out = run("typed_tool");
    assert!(out.contains(r#""required":["city","days"]"#), "{out}");
    assert!(out.contains("tool result (error): invalid input: field 'days': invalid type: string \"three\""), "{out}");
    has(&out, "tool result: Oslo: sunny for the next 3 days");
    has(&out, "reply: Oslo will be sunny for three days.");
}

#[test]
fn postgres_without_a_server_explains_what_to_do_and_succeeds() {
    // Port 1 on loopback: nothing listens there.
    let out = run_with("postgres", Some("postgres://orch@127.0.0.1:1/none"));
    assert!(out.contains("no PostgreSQL server answered at postgres://orch@127.0.0.1:1/none"), "{out}");
    assert!(out.contains("set ORCH_DATABASE_URL="), "{out}");
}
