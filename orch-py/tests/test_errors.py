"""Opening engines: by working dir, store URL or file; bad stores and settings raise clear errors."""

from __future__ import annotations

import pathlib

import pytest

import orch


def test_a_working_dir_a_file_and_a_sqlite_url_open_the_same_store(project: pathlib.Path) -> None:
    first = orch.open(project)
    assert first.working_dir == project
    assert first.sync.events() == []
    first.sync.create_agent("ada", system_prompt="x")
    db = project / ".orch" / "orch.db"
    assert db.exists()
    by_file = orch.open(str(db), cwd=project)
    assert [a.name for a in by_file.sync.agents()] == ["ada"]
    by_url = orch.open(f"sqlite://{db}", cwd=project)
    assert [e.type for e in by_url.sync.events()] == ["AgentCreated"]


def test_the_working_dirs_config_file_is_read(project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    other = tmp_path / "elsewhere.db"
    (project / ".orch").mkdir()
    (project / ".orch" / "config.toml").write_text(f'[store]\nurl = "sqlite://{other}"\n')
    orch.open(project).sync.create_agent("ada", system_prompt="x")
    assert other.exists(), "the store of .orch/config.toml"


def test_a_corrupt_database_is_an_error_naming_it(tmp_path: pathlib.Path) -> None:
    bad = tmp_path / "bad.db"
    bad.write_bytes(b"this is not a database, just some bytes " * 200)
    with pytest.raises(orch.OrchError) as caught:
        orch.open(str(bad), cwd=tmp_path)
    assert isinstance(caught.value, (orch.InternalError, orch.UnavailableError)), type(caught.value)
    assert "bad.db" in str(caught.value)
    assert bad.read_bytes().startswith(b"this is not a database"), "nothing stored is lost"


def test_an_unreachable_postgres_is_unavailable(tmp_path: pathlib.Path) -> None:
    with pytest.raises(orch.UnavailableError):
        orch.open("postgres://orch@127.0.0.1:9/none?connect_timeout=2", cwd=tmp_path)


def test_bad_settings_are_usage_errors(project: pathlib.Path, tmp_path: pathlib.Path) -> None:
    with pytest.raises(orch.UsageError, match="nosuch"):
        orch.open(project, model="nosuch:model")
    with pytest.raises(orch.UsageError, match="missing.json"):
        orch.open(project, model=f"scripted:{tmp_path / 'missing.json'}")
    (project / ".orch").mkdir()
    (project / ".orch" / "config.toml").write_text("[store]\nnope = 1\n")
    with pytest.raises(orch.UsageError, match="nope"):
        orch.open(project)
    with pytest.raises(orch.UsageError):
        orch.open(project, cwd=project)  # a directory twice


def test_bad_settings_hooks_are_reported_and_skipped(project: pathlib.Path) -> None:
    (project / ".claude").mkdir()
    (project / ".claude" / "settings.json").write_text('{"hooks": {"NoSuchEvent": []}}')
    engine = orch.open(project)
    assert any("NoSuchEvent" in p for p in engine.hook_problems), engine.hook_problems
    assert engine.sync.last_seq() == 0, "the engine opened all the same"


def test_open_async(project: pathlib.Path) -> None:
    import asyncio

    async def main() -> int:
        engine = await orch.open_async(project)
        return await engine.last_seq()

    assert asyncio.run(main()) == 0
