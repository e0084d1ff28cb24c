"""The ``orch`` command of the Python package: runs orch's own command-line program (the orch-web
binary, the same as ``cargo install``'s) with the arguments given.

The wheel carries the binary as ``orch/_bin/orch`` (the package's build backend builds it). ``ORCH_BIN``
names another one (a development checkout: ``target/debug/orch``).
"""

from __future__ import annotations

import os
import pathlib
import shutil
import sys
from typing import List, Optional


def binary() -> Optional[str]:
    """The orch binary this command runs: ``ORCH_BIN``, else the one in the package."""
    env = os.environ.get("ORCH_BIN")
    if env:
        return env
    bundled = pathlib.Path(__file__).resolve().parent / "_bin" / "orch"
    if bundled.is_file() and os.access(bundled, os.X_OK):
        return str(bundled)
    return None


def main(argv: Optional[List[str]] = None) -> None:
    """Replaces this process with the orch binary (its exit code, signals and terminal are orch's)."""
    args = sys.argv[1:] if argv is None else argv
    exe = binary()
    if exe is None:
        found = shutil.which("orch")
        hint = f" (another orch is on PATH: {found})" if found and not found.startswith(sys.prefix) else ""
        sys.stderr.write(
            "orch: this install of the orch package has no orch binary: install it with `pip install ./orch-py`"
            f" (which builds it), or set ORCH_BIN to one{hint}\n"
        )
        sys.exit(2)
    os.execv(exe, [exe, *args])


if __name__ == "__main__":
    main()
