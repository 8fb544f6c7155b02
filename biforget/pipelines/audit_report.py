"""How an audit is shown: the tables on stderr and, with `--plots DIR`, its two figures."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from biforget import console
from biforget.pipelines.audit import METRICS, QA_METRICS, AuditPlots

if TYPE_CHECKING:
    from rich.table import Table

LABELS = {
    "nll": "NLL",
    "mink": "Min-K%",
    "answer_nll": "answer NLL",
    "rouge_l": "ROUGE-L recall",
    "rouge_l_f1": "ROUGE-L F1",
}


def _number(value: float | None, signed: bool = False) -> str:
    if value is None:
        return "–"
    return f"{value:+.3f}" if signed else f"{value:.3f}"


def _interval(ci: list[float] | None) -> str:
    return "" if ci is None else f" [{ci[0]:+.3f}, {ci[1]:+.3f}]"


def shift_table(report: dict[str, Any]) -> Table:
    """One row per set and metric: the target's value, then each model's value and its shift."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=escape(f"audit: target {report['settings']['target']}"), title_justify="left")
    table.add_column("set")
    table.add_column("metric")
    table.add_column("target", justify="right")
    for name in report["models"]:
        table.add_column(escape(f"{name} (shift)"), justify="right")
    for role, before in report["target"].items():
        for metric in METRICS:
            if before[metric] is None:
                continue
            cells = []
            for row in report["models"].values():
                value, shift = row["sets"][role][metric], row["shift"][role][metric]
                cells.append(f"{_number(value)} ({_number(shift, signed=True)})")
            records = before["qa_records"] if metric in QA_METRICS else before["records"]
            table.add_row(f"{role} ({records})", LABELS[metric], _number(before[metric]), *cells)
    return table


def summary_table(report: dict[str, Any]) -> Table:
    from rich.markup import escape
    from rich.table import Table

    table = Table(
        title="per unlearned model (on the NLL shifts; [95% bootstrap interval])", title_justify="left"
    )
    for column in ("model", "forget shift", "transfer", "damage", "selectivity"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for name, row in report["models"].items():
        ci = row["ci"]
        table.add_row(
            escape(name),
            _number(row["shift"]["forget"]["nll"], signed=True) + _interval(ci["shift"]["forget"]["nll"]),
            _number(row["transfer"]) + _interval(ci["transfer"]),
            _number(row["damage"], signed=True) + _interval(ci["damage"]),
            _number(row["selectivity"], signed=True) + _interval(ci["selectivity"]),
        )
    return table


def leak_table(report: dict[str, Any]) -> Table:
    """Per model and set: the membership AUC against the non-member text, and its change from the target."""
    from rich.markup import escape
    from rich.table import Table

    leak = report["leak"]
    table = Table(title="leak: ROC AUC by Min-K% against --nonmember (0.5: no trace)", title_justify="left")
    table.add_column("model")
    roles = [role for role in ("forget", "heldout") if role in leak["target"]]
    for role in roles:
        row = leak["target"][role]
        table.add_column(f"{role} ({row['members']} vs {row['nonmembers']})", justify="right")
    for name, row in leak.items():
        cells = []
        for role in roles:
            cell = _number(row[role]["auc"])
            if name != "target":
                cell += f" ({_number(row['change'][role], signed=True)})"
            cells.append(cell)
        table.add_row(escape(name), *cells)
    return table


def print_tables(report: dict[str, Any]) -> None:
    if console.is_quiet():
        return
    out = console.stderr_console()
    out.print(shift_table(report))
    out.print(summary_table(report))
    if "leak" in report:
        out.print(leak_table(report))
    for note in report["notes"]:
        out.print(f"note: {note}", markup=False)


def write_plots(report: dict[str, Any], data: AuditPlots, folder: Path) -> list[Path]:
    """`shifts.png`: the NLL shift of every set per model; `forget_nll.png`: the forget set's per-record
    NLL under the target and each model."""
    from biforget.plots import _colour, _figure, _save

    written = []
    figure, axes = _figure(7.5, 4.8)
    roles = list(report["target"])
    names = list(report["models"])
    width = 0.8 / max(1, len(names))
    positions = np.arange(len(roles))
    for index, name in enumerate(names):
        row = report["models"][name]
        shifts = [row["shift"][role]["nll"] or 0.0 for role in roles]
        intervals = [
            row["ci"]["shift"][role]["nll"] or [shift, shift]
            for role, shift in zip(roles, shifts, strict=True)
        ]
        # Error bars span each shift's 95% bootstrap interval.
        errors = [
            [s - ci[0] for s, ci in zip(shifts, intervals, strict=True)],
            [ci[1] - s for s, ci in zip(shifts, intervals, strict=True)],
        ]
        axes.bar(
            positions + index * width, shifts, width, yerr=errors, capsize=3, label=name, color=_colour(index)
        )
    axes.set_xticks(positions + width * (len(names) - 1) / 2, roles)
    axes.axhline(0.0, color="#444444", linewidth=0.8)
    axes.set_ylabel("NLL shift (nats/token), unlearned minus target, 95% interval")
    axes.set_title("How far each set moved")
    axes.legend(fontsize=8.5)
    written.append(_save(figure, folder / "shifts.png"))

    figure, axes = _figure(7.5, 4.8)
    values = [v for series in data.forget_nll.values() for v in series]
    bins: list[float] | int = np.linspace(min(values), max(values), 30).tolist() if values else 10
    for index, (name, series) in enumerate(data.forget_nll.items()):
        colour = "#444444" if name == "target" else _colour(index - 1)
        axes.hist(series, bins=bins, alpha=0.5, label=name, color=colour)
    axes.set_xlabel("per-record mean token NLL on the forget set (nats)")
    axes.set_ylabel("records")
    axes.set_title("Forget set before and after unlearning")
    axes.legend(fontsize=8.5)
    written.append(_save(figure, folder / "forget_nll.png"))
    if "leak" in report:
        written.append(_leak_plot(report["leak"], folder / "leak.png"))
    return written


def _leak_plot(leak: dict[str, Any], path: Path) -> Path:
    """`leak.png`: the membership AUC of each set under each model (the target first)."""
    from biforget.plots import _colour, _figure, _save

    figure, axes = _figure(7.5, 4.8)
    roles = [role for role in ("forget", "heldout") if role in leak["target"]]
    names = list(leak)
    width = 0.8 / max(1, len(names))
    positions = np.arange(len(roles))
    for index, name in enumerate(names):
        values = [leak[name][role]["auc"] or 0.0 for role in roles]
        colour = "#444444" if name == "target" else _colour(index - 1)
        axes.bar(positions + index * width, values, width, label=name, color=colour)
    axes.set_xticks(positions + width * (len(names) - 1) / 2, roles)
    axes.axhline(0.5, color="#444444", linewidth=0.8, linestyle="--")
    axes.set_ylim(0.0, 1.0)
    axes.set_ylabel("ROC AUC against non-member text (Min-K%)")
    axes.set_title("Membership traces: 0.5 is none")
    axes.legend(fontsize=8.5)
    return _save(figure, path)
