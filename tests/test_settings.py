"""The settings file: values of the wrong type are a clear error; a failed save leaves nothing behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from localr1.errors import ConfigError
from localr1.settings import Settings, load_settings, save_settings


@pytest.mark.parametrize(("line", "name"), [
    ("model = 5", "model"), ('temperature = "hot"', "temperature"), ("context_size = 4096.5", "context_size"),
    ('show_thinking = "no"', "show_thinking"), ("max_tokens = true", "max_tokens"),
])
def test_a_value_of_the_wrong_type_names_the_setting(tmp_path: Path, line: str, name: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError, match=rf"bad settings in .*config.toml: {name} = .* should be"):
        load_settings(path)


def test_settings_round_trip(tmp_path: Path) -> None:
    settings = Settings(model="/m/[x].gguf", temperature=0.3, max_tokens=512, show_thinking=False)
    assert load_settings(save_settings(settings, tmp_path / "config.toml")) == settings


def test_a_failed_save_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "config.toml"
    target.mkdir()  # a folder in the way: the final rename fails
    with pytest.raises(OSError):
        save_settings(Settings(), target)
    assert [p.name for p in tmp_path.iterdir()] == ["config.toml"]
