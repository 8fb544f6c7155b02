"""`--format open-unlearning`: a dataset config, an experiment config and the data for open-unlearning.

open-unlearning loads `datasets.load_dataset(**hf_args)`; `path: json` reads one record per JSONL line,
whereas `path: text` would train on the raw JSON lines. The experiment is the benchmark's own unlearning
experiment with the forget set swapped for ours.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from biforget.config_sets import ExportConfig
from biforget.formats.base import ExportItem, Written, qa_as_text_note, qa_rows, text_rows, write_jsonl
from biforget.io.export import write_text

# What each benchmark's own unlearning experiment in open-unlearning sets (configs/experiment/unlearn/*/
# default.yaml), minus its forget set: model, trainer, retain set, evaluation and training arguments.
OU_BENCHMARKS: dict[str, dict[str, Any]] = {
    "tofu": {
        "model": "Llama-3.2-1B-Instruct",
        "trainer": "GradAscent",
        "retain": "TOFU_QA_retain",
        "eval": "tofu",
        "settings": {
            "forget_split": "forget10",
            "retain_split": "retain90",
            "holdout_split": "holdout10",
            "retain_logs_path": None,
            "question_key": "question",
        },
        "model_path": "open-unlearning/tofu_Llama-3.2-1B-Instruct_full",
        "retain_hf_args": {"name": "${retain_split}"},
        "eval_args": {
            "forget_split": "${forget_split}",
            "holdout_split": "${holdout_split}",
            "retain_logs_path": "${retain_logs_path}",
            "overwrite": True,
            "question_key": "${question_key}",
        },
        "trainer_args": {
            "warmup_epochs": 1.0,
            "learning_rate": 1e-5,
            "weight_decay": 0.01,
            "num_train_epochs": 10,
        },
        "text_max_length": 512,
    },
    "muse": {
        "model": "Llama-2-7b-hf",
        "trainer": "GradAscent",
        "retain": "MUSE_retain",
        "eval": "muse",
        "settings": {
            "data_split": "News",
            "forget_split": "forget",
            "retain_split": "retain1",
            "retain_logs_path": None,
        },
        "model_path": "muse-bench/MUSE-${data_split}_target",
        # As the framework's own experiment: the retain corpus follows data_split with the model and eval.
        "retain_hf_args": {"path": "muse-bench/MUSE-${data_split}", "split": "${retain_split}"},
        "eval_args": {
            "data_split": "${data_split}",
            "retain_logs_path": "${retain_logs_path}",
            "overwrite": True,
        },
        "trainer_args": {
            "per_device_train_batch_size": 4,
            "gradient_accumulation_steps": 8,
            "learning_rate": 1e-5,
            "num_train_epochs": 10,
            "lr_scheduler_type": "constant",
        },
        "text_max_length": 2048,
    },
    # The experiment open-unlearning added with its WMDP benchmark (PR #104): forget and retain corpora are
    # read from data/wmdp/wmdp-corpora/ (its `setup_data.py --wmdp`), evaluation is lm-eval-harness.
    "wmdp": {
        "model": "zephyr-7b-beta",
        "trainer": "RMU",
        "retain": "WMDP_retain",
        "eval": "lm_eval",
        "settings": {"data_split": "cyber"},
        "model_path": "HuggingFaceH4/zephyr-7b-beta",
        "retain_hf_args": {"data_files": "data/wmdp/wmdp-corpora/${data_split}-retain-corpus.jsonl"},
        "eval_args": {"tasks": ["wmdp_${data_split}", "mmlu"]},
        "collator": {"DataCollatorForSupervisedDataset": {"args": {"padding_side": "left"}}},
        "trainer_args": {
            "per_device_train_batch_size": 1,
            "gradient_accumulation_steps": 16,
            "learning_rate": 5e-5,
            "eval_strategy": "steps",
            "eval_steps": 0.5,
            "max_steps": 80,
            "lr_scheduler_type": "constant",
        },
        "method_args": {
            "gamma": 1.0,
            "steering_coeff": 2,
            "retain_loss_type": "EMBED_DIFF",
            "alpha": 1,
            "module_regex": r"model\.layers\.7",
            "trainable_params_regex": [r"model\.layers\.(5|6|7)\.mlp\.down_proj\.weight"],
        },
        # As open-unlearning's own WMDP_forget dataset config.
        "text_max_length": 512,
    },
}


QA_MAX_LENGTH = 512


# What the note on a mixed set offers for its question/answer records.
QA_HERE = "all go to one PretrainingDataset; for a QA experiment (QADataset) keep them alone with --shape qa"


def ou_dataset(name: str, data_files: str, qa: bool, benchmark: str) -> dict[str, Any]:
    """The dataset config: one top-level key, the file stem, as in configs/data/datasets/."""
    hf_args = {"path": "json", "data_files": data_files, "split": "train"}
    if qa:
        args: dict[str, Any] = {
            "hf_args": hf_args,
            "question_key": "question",
            "answer_key": "answer",
            "max_length": QA_MAX_LENGTH,
        }
        return {name: {"handler": "QADataset", "args": args}}
    args = {"hf_args": hf_args, "text_key": "text", "max_length": OU_BENCHMARKS[benchmark]["text_max_length"]}
    return {name: {"handler": "PretrainingDataset", "args": args}}


def ou_experiment(name: str, benchmark: str) -> dict[str, Any]:
    """The experiment config: the benchmark's own defaults with the forget set swapped for ours."""
    spec = OU_BENCHMARKS[benchmark]
    experiment: dict[str, Any] = {
        "defaults": [
            {"override /model": spec["model"]},
            {"override /trainer": spec["trainer"]},
            {"override /data": "unlearn"},
            {"override /data/datasets@data.forget": name},
            {"override /data/datasets@data.retain": spec["retain"]},
            {"override /eval": spec["eval"]},
        ],
        **spec["settings"],
        "model": {"model_args": {"pretrained_model_name_or_path": spec["model_path"]}},
        "data": {
            "anchor": "forget",
            "retain": {spec["retain"]: {"args": {"hf_args": dict(spec["retain_hf_args"])}}},
        },
        "eval": {spec["eval"]: dict(spec["eval_args"])},
    }
    if "collator" in spec:
        experiment["collator"] = spec["collator"]
    experiment["trainer"] = {"args": dict(spec["trainer_args"])}
    if "method_args" in spec:
        experiment["trainer"]["method_args"] = dict(spec["method_args"])
    experiment["task_name"] = f"{name}_{benchmark}"
    return experiment


def ou_paths(name: str, benchmark: str) -> tuple[str, str]:
    return f"configs/data/datasets/{name}.yaml", f"configs/experiment/unlearn/{benchmark}/{name}.yaml"


def _dump_yaml(path: Path, value: dict[str, Any], header: str = "") -> None:
    import yaml

    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, header + yaml.safe_dump(value, sort_keys=False, allow_unicode=True, width=1000))


def _ou_readme(name: str, benchmark: str, qa: bool, data_files: str, count: int) -> str:
    dataset_path, experiment_path = ou_paths(name, benchmark)
    handler = "QADataset (question/answer)" if qa else "PretrainingDataset (text)"
    extra = ""
    if benchmark == "muse":
        extra = """
`data_split` (default `News`) picks the MUSE corpus for the model (`muse-bench/MUSE-${data_split}_target`),
the retain set (`muse-bench/MUSE-${data_split}`, split `${retain_split}`) and the evaluation together, as
the framework's own MUSE experiment does: pass `data_split=Books` for MUSE-Books.
"""
    if benchmark == "wmdp":
        extra = """
The retain corpus is read from `data/wmdp/wmdp-corpora/${data_split}-retain-corpus.jsonl` under the
framework's root (`python setup_data.py --wmdp` there fetches it); `data_split=bio` switches the retain
corpus and the lm-eval task to the bio ones. The experiment pins RMU's `trainer.method_args` as the
benchmark does: delete them before switching to another trainer.
"""
    return f"""# {name}: a forget set for open-unlearning

Written by `biforget export --format open-unlearning`: {count} record(s), {handler}, benchmark {benchmark}.

| file | goes to |
|---|---|
| `forget.jsonl` | stays here; `{dataset_path}` reads it from `{data_files}` |
| `{dataset_path}` | `<open-unlearning>/{dataset_path}` |
| `{experiment_path}` | `<open-unlearning>/{experiment_path}` |

Copy the config tree into the framework, then run the experiment from its root:

```bash
cp -r configs/. <open-unlearning>/configs/
python src/train.py --config-name=unlearn.yaml \\
    experiment=unlearn/{benchmark}/{name} task_name={name}_{benchmark}
```

The experiment keeps the benchmark's retain set, model and evaluation and only swaps the forget set;
override any of them on the command line (e.g. `trainer=NPO`). If you move `forget.jsonl`, edit
`data_files` in `{dataset_path}`.
{extra}"""


def write(staging: Path, items: Sequence[ExportItem], config: ExportConfig) -> Written:
    # The framework reads a set with one handler: a set all question/answer goes to QADataset; any other
    # to PretrainingDataset, its question/answer records as "question answer" text.
    qa = all(item.is_qa for item in items)
    benchmark = config.benchmark or ("tofu" if qa else "muse")
    notes = []
    as_text = None if qa else qa_as_text_note("open-unlearning", items, QA_HERE)
    if as_text:
        notes.append(as_text)
    if config.benchmark is None:
        shape = "question/answer" if qa else "text"
        notes.append(f"open-unlearning: benchmark {benchmark}, as the set is {shape} (--benchmark overrides)")
    write_jsonl(staging / "forget.jsonl", qa_rows(items) if qa else text_rows(items))
    data_files = config.data_path or str((config.out / "forget.jsonl").resolve())
    dataset_path, experiment_path = ou_paths(config.name, benchmark)
    _dump_yaml(staging / dataset_path, ou_dataset(config.name, data_files, qa, benchmark))
    _dump_yaml(
        staging / experiment_path, ou_experiment(config.name, benchmark), header="# @package _global_\n"
    )
    write_text(staging / "README.md", _ou_readme(config.name, benchmark, qa, data_files, len(items)))
    return Written(notes=notes)
