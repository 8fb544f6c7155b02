"""The library API of the loop: `unlearn` a set from the target, then `audit` what went.

Beside `biforget.api`, which holds the other commands' functions; both are re-exported by `biforget`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from biforget import console
from biforget.api import check_folder
from biforget.config import AuditConfig, ModelOptions, UnlearnConfig
from biforget.console import Tracker
from biforget.errors import UsageError
from biforget.io.paths import folder_lock
from biforget.models import load_text_model
from biforget.models.base import Capability, TextModel, require

if TYPE_CHECKING:
    from biforget.pipelines.unlearn import Unlearned


def unlearn(
    config: UnlearnConfig,
    forget: Path,
    options: ModelOptions | None = None,
    *,
    model: TextModel | None = None,
    tracker: Tracker | None = None,
) -> Unlearned:
    """Unlearn the set at `forget` from the target with `config.method` and write the model folder
    `config.out` (loadable as `--model DIR`); the result holds the trained model and its report.

    Needs a backend with trainable weights (hf); any other is refused before training."""
    from biforget.models import split_model_spec

    options = options or ModelOptions()
    backend, location = split_model_spec(options.model)
    if model is None and backend == "hf":
        from biforget.models.hub import quiet_hf_libraries
        from biforget.models.sources import resolve_model

        # The Trainer's import loads the hub client, which reads its offline and progress-bar switches
        # once, so they are set first, as loading the model would set them.
        quiet_hf_libraries(offline=resolve_model(location).local)
    from biforget.pipelines.unlearn import check_out

    if options.quantize != "none":
        raise UsageError(
            "unlearn trains full-precision weights; drop --quantize (use --lora for large models)"
        )
    inputs: list[str | Path] = [forget, config.retain or forget, options.model]
    check_out(config.out, config.force, inputs)
    with folder_lock(config.out):
        check_out(config.out, config.force, inputs)  # again under the lock: a run may have ended meanwhile
        return _unlearn_into(config, forget, options, model, tracker)


def _unlearn_into(
    config: UnlearnConfig,
    forget: Path,
    options: ModelOptions,
    model: TextModel | None,
    tracker: Tracker | None,
) -> Unlearned:
    from biforget.io.sets import read_set
    from biforget.models.hf import HFTextModel
    from biforget.pipelines.unlearn import unlearn_model, write_model

    data = read_set(forget, name="forget")
    retain = read_set(config.retain, name="retain") if config.retain is not None else None
    if model is None:
        console.info(f"loading model {options.model!r}")
        model = load_text_model(options)
    require(model, Capability.TRAINING, "unlearn")
    if not isinstance(model, HFTextModel):
        raise UsageError(f"unlearn trains transformers models; {model.name} is not one")
    console.info(
        f"unlearning {len(data)} record(s) from {model.name}: {config.method}, {config.steps} steps, "
        f"lr {config.lr:g}, batch {config.batch_size}"
    )
    if config.method == "npo" and retain is None:
        console.info(
            "npo without --retain: the NPO paper's loss alone; open-unlearning's NPO adds alpha x retain "
            "NLL (--retain FILE, --retain-weight alpha)"
        )
    result = unlearn_model(model, data, config, retain=retain, tracker=tracker)
    result.report["target_spec"] = options.model
    write_model(result, config.out)
    return result


def audit(
    config: AuditConfig,
    options: ModelOptions | None = None,
    *,
    target: TextModel | None = None,
    tracker: Tracker | None = None,
) -> dict[str, Any]:
    """Score the sets under the target (`options.model`) and each `config.unlearned` model; the report.

    Each unlearned model is loaded with the same options but `model`, one at a time. With
    `config.plots` the figures are written there and listed under `plots`."""
    from biforget.pipelines.audit import run_audit

    if config.plots is not None:
        check_folder(config.plots)
    return run_audit(config, options or ModelOptions(), load_text_model, target=target, tracker=tracker)


def print_audit(report: dict[str, Any]) -> None:
    """The audit report as one JSON document on stdout and, unless quiet, its tables on stderr."""
    from biforget.pipelines.audit_report import print_tables

    _report_to_stdout(report)
    print_tables(report)
    if report.get("plots"):
        console.info("plots: " + ", ".join(report["plots"]))


def _report_to_stdout(report: dict[str, Any]) -> None:
    """One JSON document on stdout; the writer maps a closed stdout or a gone reader to their errors."""
    from biforget.pipelines.evaluate_report import write_report

    write_report(report)
