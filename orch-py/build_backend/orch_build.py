"""The package's build backend: maturin's, after building the ``orch`` command.

maturin puts one Rust library (the extension module ``orch._orch``) in a wheel, not a binary beside it.
So that ``pip install ./orch-py`` also installs the ``orch`` command, a wheel build first builds the
orch-web binary with cargo (release profile, the same target dir as maturin's) and copies it into the
package as ``orch/_bin/orch``; the console script ``orch`` (``orch._cli:main``) runs it. Everything
else is maturin's own (PEP 517 hooks passed through).
"""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import subprocess
import sys
from typing import Any, Dict, List, Optional

import maturin

PACKAGE = pathlib.Path(__file__).resolve().parent.parent
BIN_DIR = PACKAGE / "python" / "orch" / "_bin"


def _build_cli() -> None:
    """cargo builds the `orch` binary (release) and it is copied to orch/_bin/orch."""
    cargo = os.environ.get("CARGO", "cargo")
    cmd = [cargo, "build", "--release", "-p", "orch-web", "--bin", "orch", "--message-format=json-render-diagnostics"]
    print("orch: building the orch command: " + " ".join(cmd), file=sys.stderr)
    done = subprocess.run(cmd, cwd=PACKAGE, stdout=subprocess.PIPE, text=True)
    if done.returncode != 0:
        raise RuntimeError("building the orch command failed (see cargo's messages above)")
    exe: Optional[str] = None
    for line in done.stdout.splitlines():
        try:
            msg = json.loads(line)
        except ValueError:
            continue
        if msg.get("reason") == "compiler-artifact" and msg.get("target", {}).get("name") == "orch" and msg.get("executable"):
            exe = msg["executable"]
    if exe is None:
        raise RuntimeError("cargo built no orch executable")
    BIN_DIR.mkdir(exist_ok=True)
    target = BIN_DIR / "orch"
    shutil.copy2(exe, target)
    target.chmod(0o755)
    if shutil.which("strip"):
        # Its symbols out, as maturin's `strip` does to the extension module.
        subprocess.run(["strip", str(target)], check=False)


def build_wheel(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None) -> str:
    _build_cli()
    name: str = maturin.build_wheel(wheel_directory, config_settings, metadata_directory)
    return name


def build_editable(wheel_directory: str, config_settings: Optional[Dict[str, Any]] = None, metadata_directory: Optional[str] = None) -> str:
    _build_cli()
    name: str = maturin.build_editable(wheel_directory, config_settings, metadata_directory)
    return name


def build_sdist(sdist_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    name: str = maturin.build_sdist(sdist_directory, config_settings)
    return name


def get_requires_for_build_wheel(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    reqs: List[str] = maturin.get_requires_for_build_wheel(config_settings)
    return reqs


def get_requires_for_build_editable(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    reqs: List[str] = maturin.get_requires_for_build_editable(config_settings)
    return reqs


def get_requires_for_build_sdist(config_settings: Optional[Dict[str, Any]] = None) -> List[str]:
    reqs: List[str] = maturin.get_requires_for_build_sdist(config_settings)
    return reqs


def prepare_metadata_for_build_wheel(metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    name: str = maturin.prepare_metadata_for_build_wheel(metadata_directory, config_settings)
    return name


def prepare_metadata_for_build_editable(metadata_directory: str, config_settings: Optional[Dict[str, Any]] = None) -> str:
    name: str = maturin.prepare_metadata_for_build_editable(metadata_directory, config_settings)
    return name
