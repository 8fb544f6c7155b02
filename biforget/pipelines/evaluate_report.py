"""The evaluate report as people and programs read it: one JSON document on stdout, and a side-by-side
table with the notes on stderr."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from biforget import console
from biforget.io.jsonl import RecordWriter
from biforget.pipelines.evaluate import DIRECTIONS

if TYPE_CHECKING:
    from rich.table import Table


def _cell(metric: str, row: dict[str, Any], clusters: int) -> str:
    value = row.get(metric)
    if value is None:
        return "–"
    if metric == "overlap":
        return f"{value['share'] * 100:.1f}% ({value['records']})"
    if metric == "relevance_tsne":
        std = row.get("relevance_tsne_std")
        return f"{value:.2f} ± {std:.2f}" if std is not None else f"{value:.2f}"
    if metric == "clusters_covered":
        return f"{value}/{clusters}"
    if isinstance(value, float):
        return f"{value:.4f}"
    return f"{value:,}"


TABLE_ROWS = (
    ("records", "records"),
    ("tokens", "tokens"),
    ("chunks", "chunks"),
    ("diversity", "diversity (remote-clique)"),
    ("relevance_tsne", "relevance (t-SNE distance)"),
    ("topic_similarity", "topic similarity"),
    ("clusters_covered", "clusters covered"),
    ("cluster_entropy", "cluster entropy (bits)"),
    ("overlap", "overlap with retain"),
)


def report_table(report: dict[str, Any]) -> Table:
    """The side-by-side table: one column per set, arrows for which way is better, the best in green."""
    from rich.markup import escape
    from rich.table import Table

    settings = report["settings"]
    title = escape(
        f"evaluate: {settings.get('topic') or 'no topic'} "
        f"({settings['embedder']}, tokens: {settings['tokenizer']})"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("metric")
    for name, meta in settings["sets"].items():
        table.add_column(escape(name) + (" (against)" if meta["role"] == "against" else ""), justify="right")
    for metric, label in TABLE_ROWS:
        direction = DIRECTIONS.get(metric)
        arrow = " ↓" if direction == "lower" else " ↑" if direction == "higher" else ""
        cells = []
        for name, row in report["sets"].items():
            text = escape(_cell(metric, row, settings["clusters_used"]))
            best = report["best"].get(metric) == name and len(report["sets"]) > 1
            cells.append(f"[bold green]{text}[/]" if best else text)
        table.add_row(label + arrow, *cells)
    return table


def print_report(report: dict[str, Any]) -> None:
    if console.is_quiet():
        return
    out = console.stderr_console()
    out.print(report_table(report))
    for name, notes in report["notes"].items():
        for note in notes:
            out.print(f"note ({name}): {note}", markup=False)


def write_report(report: dict[str, Any]) -> None:
    """The report as one JSON document on stdout, UTF-8 whatever the locale (as records are)."""
    RecordWriter().write_document(report)
