"""The package builds its engine through the composition root every host shares (orch_web::engine):
its Rust modules assemble no store, executor or runner by hand and read no environment themselves."""

from __future__ import annotations

import pathlib

SRC = pathlib.Path(__file__).resolve().parent.parent / "src"

FORBIDDEN = [
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
]


def test_the_native_modules_assemble_nothing_by_hand() -> None:
    modules = sorted(SRC.glob("*.rs"))
    assert any(m.name == "core.rs" for m in modules), modules
    found = [
        f"{m.name}:{n}: {f}"
        for m in modules
        for n, line in enumerate(m.read_text().splitlines(), 1)
        for f in FORBIDDEN
        if f in line
    ]
    assert not found, "assembly or environment reads outside the composition root:\n" + "\n".join(found)
    core = (SRC / "core.rs").read_text()
    assert "orch_web::engine::open_with(" in core, "the engine comes from the shared composition root"
