"""Dependencies run one way: the import-linter contracts in pyproject.toml, type-only imports included."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"


def test_import_contracts_hold() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", LINT, "--no-cache"], check=False, cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert " BROKEN" not in result.stdout
    assert result.stdout.count(" KEPT") == 4  # every contract was checked


def test_quantize_is_laid_out_by_stage() -> None:
    """The stage packages exist, each with a docstring, and no loose modules beside the shared helpers."""
    top = {p.stem for p in (ROOT / "quantize").glob("*.py")}
    assert top == {"__init__", "errors", "lazy_exports", "llama_log", "outlock", "progress", "runner", "sizes"}
    for stage in ("convert", "ladder", "quality"):
        init = (ROOT / "quantize" / stage / "__init__.py").read_text()
        assert init.startswith('"""'), stage


def test_stage_entry_points_resolve_after_every_module_is_loaded() -> None:
    """A submodule named like an entry point would shadow it once imported (it did: `verify`)."""
    import importlib
    import pkgutil
    import types

    for stage in ("quantize.convert", "quantize.ladder", "quantize.quality"):
        package = importlib.import_module(stage)
        for module in pkgutil.walk_packages(package.__path__, stage + "."):
            importlib.import_module(module.name)
        for name in package.__all__:
            assert not isinstance(getattr(package, name), types.ModuleType), f"{stage}.{name}"
