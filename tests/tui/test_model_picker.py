"""The model picker (F3) lists the installed models, then the GGUFs other tools downloaded (found as `localr1 models`
finds them, marked with where), and points to `localr1 pull r1`."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from textual.widgets import OptionList

from localr1.settings import Settings
from tests.tui.conftest import AppMaker
from tests.tui.fake_engine import FakeFactory
from tests.tui.helpers import ready, screen_text, wait_for


def _lm_studio_copy(demo_path: Path) -> Path:
    """The demo GGUF where LM Studio keeps its downloads (PUBLISHER/REPO/FILE), linked, not copied, when it can be."""
    target = Path(os.environ["LOCALR1_LMSTUDIO_MODELS"]) / "lmstudio-community" / "SmolLM2-135M" / "smol.gguf"
    target.parent.mkdir(parents=True)
    try:
        os.link(demo_path, target)
    except OSError:
        shutil.copyfile(demo_path, target)
    return target


async def test_the_picker_lists_models_other_tools_downloaded_and_loads_one(make_app: AppMaker,
                                                                            demo_path: Path) -> None:
    copy = _lm_studio_copy(demo_path)
    factory = FakeFactory()
    app = make_app(settings=Settings(model="demo"), factory=factory)
    async with app.run_test(size=(160, 40)) as pilot:
        await ready(pilot)
        await pilot.press("f3")
        await wait_for(pilot, lambda: type(app.screen).__name__ == "ModelPicker")
        options = app.screen.query_one("#model-options", OptionList)
        await wait_for(pilot, lambda: any(options.get_option_at_index(i).id == str(copy)
                                          for i in range(options.option_count)), timeout=30)
        ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
        assert ids[0] == "demo" and ids[-1] == str(copy)  # installed first, then what was found elsewhere
        await pilot.pause(0.1)
        text = screen_text(app)
        assert "● SmolLM2" in text  # the current model is marked
        assert "demo  [Q4_1, found in LM Studio: lmstudio-community/SmolLM2-135M/smol.gguf]" in text
        assert "1 found elsewhere on this disk" in text
        assert "'localr1 pull r1'" in text and "localr1 convert" not in text
        options.highlighted = ids.index(str(copy))
        await pilot.press("enter")
        await wait_for(pilot, lambda: len(factory.loads) == 2)
        assert factory.loads[-1][0] == str(copy)  # loaded in place, from LM Studio's folder
