"""scripts/group-trace.py on logs written the way the PostgreSQL store traces its group commits."""

import pathlib
import subprocess
import sys

SCRIPT = pathlib.Path(__file__).resolve().parents[1] / "group-trace.py"
ESC = "\x1b"


def field(name, value):
    # tracing's ANSI formatting of a field, as on a terminal.
    return f"{ESC}[3m{name}{ESC}[0m{ESC}[2m={ESC}[0m{value}"


def line(message, **fields):
    head = f"{ESC}[2m2026-12-05T17:18:49.560054Z{ESC}[0m {ESC}[35mTRACE{ESC}[0m orch_store_postgres::group: "
    return head + message + " " + " ".join(field(k, v) for k, v in fields.items()) + "\n"


def phases(append_at_us, commit_at_us, apply=1.0):
    return line(
        "group phases (ms)",
        batches=2, acquire=0.1, begin=0.2, lock=0.3, apply=apply, append=0.4, commit=0.5, after=0.0,
        append_at_us=append_at_us, commit_at_us=commit_at_us,
    )


def run(tmp_path, text):
    log = tmp_path / "trace.log"
    log.write_text(text)
    return subprocess.run([sys.executable, str(SCRIPT), str(log)], capture_output=True, text=True)


def test_counts_each_span_from_the_previous_commit_and_splits_it_by_second(tmp_path):
    base = 1_796_491_129_000_000
    text = (
        phases(base + 100_000, base + 300_000)
        # Queued behind the first: held from its commit on, not from its own append.
        + phases(base + 200_000, base + 400_000, apply=2.0)
        # Across a second's end: 0.1 s in each.
        + phases(base + 900_000, base + 1_100_000)
        + line("group committed", lane="Graph", batches=2, waited_ms=0.1, ms=3.0)
        + line("group committed", lane="Graph", batches=5, waited_ms=0.1, ms=4.5)
        + line("group committed", lane="Other", batches=1, waited_ms=0.1, ms=1.0)
    )
    out = run(tmp_path, text)
    assert out.returncode == 0, out.stderr
    assert "lane Graph: 2 groups, 7 batches, writers busy 8 ms" in out.stdout
    assert "lane Other: 1 groups, 1 batches, writers busy 1 ms" in out.stdout
    assert "apply 4," in out.stdout
    assert "counter row held by groups: 0.50 s of 1.00 s" in out.stdout
    assert "second   0:  40.0 %" in out.stdout
    assert "second   1:  10.0 %" in out.stdout


def test_says_what_is_missing(tmp_path):
    out = run(tmp_path, "nothing traced here\n")
    assert out.returncode != 0
    assert "RUST_LOG=orch_store_postgres::group=trace" in out.stderr

    old = line("group phases (ms)", batches=2, apply=1.0, append=0.4, commit=0.5)
    out = run(tmp_path, old)
    assert out.returncode == 0, out.stderr
    assert "no append_at_us / commit_at_us" in out.stdout
