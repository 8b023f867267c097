"""The planner, the hardware profile and `localr1 plan` do not import llama_cpp (only measuring does)."""

from __future__ import annotations

from tests.test_layering import modules_after_import


def test_planner_and_plan_command_do_not_import_llama_cpp() -> None:
    loaded = modules_after_import("localr1.plan", "localr1.hardware", "localr1.commands.plan", "localr1.plan_docs",
                                  "localr1.planner.candidates", "localr1.planner.speed", "localr1.planner.synthetic")
    assert "llama_cpp" not in loaded and "textual" not in loaded
    assert "localr1.engine.engine" not in loaded and "localr1.planner.calibrate" not in loaded
