"""Run the real `localr1` command line in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys

LOCALR1 = [sys.executable, "-m", "localr1"]


def localr1(*args: str, stdin: str | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run `localr1 ARGS` with this test's environment; returns the completed process."""
    return subprocess.run(
        [*LOCALR1, *args], input=stdin, capture_output=True, text=True, timeout=timeout,
        env=dict(os.environ), check=False,
    )
