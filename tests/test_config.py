"""`--config FILE` (TOML): precedence through the real CLI, and `config_default_map` on its own."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import biforget.api
from biforget import cli, console
from biforget.config import ModelOptions, SeedsConfig, config_default_map, load_config_file
from biforget.errors import UsageError
from tests.scripted import HashEmbedder, ScriptedModel


def points(prompt: str, draw: int, seed: int) -> str:
    return "1. Hogwarts\n2. Quidditch\n3. Horcruxes\n4. Diagon Alley"


@pytest.fixture(autouse=True)
def scripted_backend(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[ModelOptions]]:
    """`biforget.api.load_models` answers with the scripted backend and remembers the options it got."""
    seen: list[ModelOptions] = []

    def load(options: ModelOptions) -> tuple[ScriptedModel, HashEmbedder]:
        seen.append(options)
        return ScriptedModel(points), HashEmbedder()

    monkeypatch.setattr(biforget.api, "load_models", load)
    yield seen
    console.set_quiet(False)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "biforget.toml"
    path.write_text(text, encoding="utf-8")
    return path


def run_seeds(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, list[dict[str, object]], str]:
    code = cli.run(["seeds", *args])
    out, err = capsys.readouterr()
    return code, [json.loads(line) for line in out.splitlines()], err


BASE = """
[defaults]
count = 3
seed = 9

[seeds]
count = 2
depth = 0
"""


def test_command_table_overrides_defaults_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, BASE)
    code, records, _ = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 0
    settings = records[0]["gen"]["settings"]
    assert settings["count"] == 2  # [seeds] beats [defaults]
    assert settings["seed"] == 9  # [defaults] beats the built-in default
    assert settings["depth"] == 0
    assert settings["max_points"] == SeedsConfig.max_points  # untouched: the built-in default
    assert [record["text"] for record in records] == ["Hogwarts", "Quidditch"]  # count 2 really applied


def test_defaults_table_overrides_builtin_defaults(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[defaults]\ncount = 3\nseed = 9\ndepth = 0\n")
    code, records, _ = run_seeds(capsys, "--topic", "X", f"--config={path}")
    assert code == 0
    assert (records[0]["gen"]["settings"]["count"], records[0]["gen"]["seed"]) == (3, 9)
    assert len(records) == 3


def test_flags_override_the_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, BASE)
    code, records, _ = run_seeds(capsys, "--topic", "X", "--count", "4", "--seed", "1", "--config", str(path))
    assert code == 0
    settings = records[0]["gen"]["settings"]
    assert (settings["count"], settings["seed"], settings["depth"]) == (4, 1, 0)
    assert len(records) == 4


def test_without_config_the_builtin_defaults_apply(capsys: pytest.CaptureFixture[str]) -> None:
    code, records, _ = run_seeds(capsys, "--topic", "X", "--depth", "0")
    assert code == 0
    settings = records[0]["gen"]["settings"]
    assert (settings["count"], settings["seed"]) == (SeedsConfig.count, SeedsConfig.seed)


def test_file_supplies_topic_model_options_and_dashed_keys(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], scripted_backend: list[ModelOptions]
) -> None:
    path = write_config(
        tmp_path,
        '[defaults]\nbatch-size = 3\ndevice = "cpu"\nchat-template = false\n\n'
        '[seeds]\ntopic = "Harry Potter"\nmax-points = 2\ndepth = 0\n',
    )
    code, records, _ = run_seeds(capsys, "--config", str(path))
    assert code == 0
    assert [record["topic"] for record in records] == ["Harry Potter", "Harry Potter"]
    assert records[0]["gen"]["settings"]["max_points"] == 2
    assert scripted_backend[-1].batch_size == 3
    assert scripted_backend[-1].device == "cpu"
    assert scripted_backend[-1].chat_template is False


def test_a_value_from_the_file_is_validated_like_a_flag(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_config(tmp_path, "[seeds]\ncount = 0\n")
    code, records, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert records == []
    assert "--count must be at least 1" in err


def test_unknown_key_in_command_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "[seeds]\ncount = 2\ncolour = 3\n")
    code, records, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert records == []
    assert "unknown key 'colour' in [seeds]" in err
    assert str(path) in err
    assert len(err.strip().splitlines()) == 1


def test_unknown_key_in_defaults_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "[defaults]\ncolour = 3\n")
    code, _, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert "unknown key 'colour' in [defaults]" in err


def test_unknown_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "[seedz]\ncount = 2\n")
    code, records, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert records == []
    assert "unknown table [seedz]" in err and "seeds" in err


def test_bad_value_type(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, '[seeds]\ncount = "x"\n')
    code, records, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert records == []
    assert "count" in err
    assert "Traceback" not in err


def test_invalid_toml(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "[seeds\ncount = 2\n")
    code, records, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert records == []
    assert f"{path}: invalid TOML" in err
    assert len(err.strip().splitlines()) == 1


def test_missing_config_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "absent.toml"
    code, records, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert records == []
    assert f"{path}: no such config file" in err


def test_top_level_value_outside_a_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_config(tmp_path, "count = 2\n")
    code, _, err = run_seeds(capsys, "--topic", "X", "--config", str(path))
    assert code == 2
    assert "'count' must be a table" in err


# config_default_map on its own.

COMMANDS = {
    "seeds": ["topic", "count", "seed", "max_points", "config"],
    "synthesize": ["count", "temperature", "config"],
}


def test_default_map_merges_defaults_into_each_command_that_takes_the_key(tmp_path: Path) -> None:
    path = write_config(
        tmp_path, "[defaults]\ncount = 3\ntemperature = 0.5\nseed = 1\n\n[synthesize]\ncount = 7\n"
    )
    assert config_default_map(path, COMMANDS) == {
        "seeds": {"count": 3, "seed": 1},
        "synthesize": {"count": 7, "temperature": 0.5},
    }


def test_default_map_normalises_dashed_keys(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[seeds]\nmax-points = 5\n")
    assert config_default_map(path, COMMANDS) == {"seeds": {"max_points": 5}}


def test_default_map_of_an_empty_file(tmp_path: Path) -> None:
    assert config_default_map(write_config(tmp_path, ""), COMMANDS) == {}
    assert config_default_map(write_config(tmp_path, "[defaults]\n[seeds]\n"), COMMANDS) == {}


def test_default_map_rejects_a_key_the_command_does_not_take(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[synthesize]\nseed = 1\n")
    with pytest.raises(UsageError, match=r"unknown key 'seed' in \[synthesize\]"):
        config_default_map(path, COMMANDS)


@pytest.mark.parametrize("table", ["defaults", "seeds"])
def test_default_map_rejects_config_inside_the_file(tmp_path: Path, table: str) -> None:
    path = write_config(tmp_path, f'[{table}]\nconfig = "other.toml"\n')
    with pytest.raises(UsageError, match=rf"unknown key 'config' in \[{table}\]"):
        config_default_map(path, COMMANDS)


def test_default_map_rejects_unknown_table_and_lists_known_ones(tmp_path: Path) -> None:
    path = write_config(tmp_path, "[probe]\ncount = 1\n")
    with pytest.raises(UsageError, match=r"unknown table \[probe\] \(known: defaults, seeds, synthesize\)"):
        config_default_map(path, COMMANDS)


def test_config_file_that_is_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_bytes(b'[seeds]\ntopic = "\xff"\n')
    with pytest.raises(UsageError, match="not UTF-8"):
        load_config_file(path)


def test_config_path_that_is_a_directory(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match=rf"^{tmp_path}: cannot read config file"):
        load_config_file(tmp_path)
