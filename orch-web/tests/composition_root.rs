//! The CLI builds its engine through `orch_web::engine` only: no store, executor or runner is assembled
//! in the CLI's own modules.

use std::path::Path;

#[test]
fn the_cli_modules_assemble_nothing_by_hand() {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    // Every module of the binary: all of src/ but the library's composition root.
    let mut cli_modules: Vec<String> = std::fs::read_dir(&src)
        .unwrap_or_else(|e| panic!("{}: {e}", src.display()))
        .filter_map(|e| e.ok().map(|e| e.file_name().to_string_lossy().into_owned()))
        .filter(|n| n.ends_with(".rs") && n != "lib.rs" && n != "engine.rs")
        .collect();
    cli_modules.sort();
    assert!(cli_modules.iter().any(|m| m == "cli.rs"), "{cli_modules:?}");
    let forbidden = [
        "SqliteStore::",
        "PgStore::",
        "NativeExecutor::new",
        "AgentRunner::builder",
        "RoutingExecutor::new",
        "ClaudeCodeExecutor::new",
        "Orchestrator::builder",
        "AgentManager::new",
        "ManagerConfig::from_env",
        "OrchestratorConfig::from_env",
        "from_env()",
        "std::env::var",
    ];
    let mut found = Vec::new();
    for m in &cli_modules {
        let path = src.join(m);
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        for (i, line) in text.lines().enumerate() {
            for f in forbidden {
                if line.contains(f) {
                    found.push(format!("{m}:{}: {f}", i + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "assembly or environment reads outside the composition root:\n{}", found.join("\n"));
    // And the composition root does exist where hosts look for it.
    let engine = std::fs::read_to_string(src.join("engine.rs")).unwrap_or_default();
    assert!(engine.contains("pub async fn open(") && engine.contains("pub async fn open_store("));
}
