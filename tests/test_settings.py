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


@pytest.mark.parametrize(("line", "message"), [
    ("temperature = 2.5", "temperature 2.5 is out of range (0 to 2)"),
    ("temperature = -0.1", "temperature -0.1 is out of range (0 to 2)"),
    ("top_p = 0", "top_p 0 is out of range (above 0, at most 1)"),
    ("top_p = 1.5", "top_p 1.5 is out of range (above 0, at most 1)"),
    ("max_tokens = 0", "max tokens 0 must be at least 1"),
    ("context_size = 255", "context size 255 is out of range (256 to 1048576)"),
    ("context_size = 1048577", "context size 1048577 is out of range (256 to 1048576)"),
])
def test_a_value_out_of_range_is_named(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(line + "\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert message in str(err.value) and "\n" not in str(err.value)


def test_the_edges_of_each_range_load(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("temperature = 0\ntop_p = 1\nmax_tokens = 1\ncontext_size = 256\n")
    assert load_settings(path) == Settings(temperature=0, top_p=1, max_tokens=1, context_size=256)
    path.write_text("temperature = 2\ntop_p = 0.01\ncontext_size = 1048576\nshow_thinking = false\n")
    assert load_settings(path) == Settings(temperature=2, top_p=0.01, context_size=1048576, show_thinking=False)


def test_a_file_that_is_not_toml_says_where_and_what_to_do(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text("temperature = \n[[[\n")
    with pytest.raises(ConfigError) as err:
        load_settings(path)
    assert str(err.value).startswith(f"cannot read settings {path}: ") and "(fix or delete the file)" in str(err.value)


def test_a_missing_file_gives_the_defaults(tmp_path: Path) -> None:
    assert load_settings(tmp_path / "absent.toml") == Settings()
