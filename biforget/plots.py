"""Figures for `evaluate --plots DIR`: PCA of the sets, the t-SNE relevance map, the convergence curve.

matplotlib is imported only here, and only its object-oriented Agg canvas is used (no pyplot), so
drawing never touches a global backend or state a library caller may have set up.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from biforget.errors import InputError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from biforget.io.sets import TracePoint
    from biforget.pipelines.evaluate import PlotData

DPI = 150
# Qualitative colours that stay apart in greyscale print and for common colour-vision deficiencies.
COLOURS = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000")
TOPIC_COLOUR = "#C00000"


def _figure(width: float = 7.5, height: float = 6.0) -> tuple[Figure, Axes]:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
    FigureCanvasAgg(figure)
    return figure, figure.add_subplot()


def _save(figure: Figure, path: Path) -> Path:
    try:
        figure.savefig(str(path))
    except OSError as exc:
        raise InputError(f"cannot write the figure: {exc.strerror or exc}", source=str(path)) from None
    return path


def _legend_below(axes: Axes) -> None:
    """The legend under the axes, so it never hides points of a dense map."""
    axes.legend(loc="upper center", bbox_to_anchor=(0.5, -0.11), fontsize=8.5, framealpha=0.9, ncol=1)


def _colour(index: int) -> str:
    return COLOURS[index % len(COLOURS)]


def pca_scatter(data: PlotData, path: Path, embedder: str) -> Path | None:
    """Every set's (sampled) record embeddings on the first two principal components of all of them."""
    from sklearn.decomposition import PCA

    joined = np.vstack(data.sample_vectors).astype(np.float64)
    if joined.shape[0] < 2:
        return None
    components = min(2, joined.shape[0], joined.shape[1])
    pca = PCA(n_components=components, random_state=0).fit(joined)
    figure, axes = _figure(7.5, 7.0)
    for index, (name, vectors) in enumerate(zip(data.names, data.sample_vectors, strict=True)):
        points = pca.transform(np.asarray(vectors, dtype=np.float64))
        ys = points[:, 1] if components > 1 else np.zeros(len(points))
        axes.scatter(
            points[:, 0],
            ys,
            s=14,
            alpha=0.55,
            color=_colour(index),
            edgecolors="none",
            label=f"{name} ({len(points)} records)",
        )
    if data.anchor is not None:
        point = pca.transform(np.asarray(data.anchor, dtype=np.float64).reshape(1, -1))[0]
        axes.scatter(
            [point[0]],
            [point[1] if components > 1 else 0.0],
            marker="*",
            s=320,
            color=TOPIC_COLOUR,
            edgecolors="black",
            linewidths=0.8,
            zorder=5,
            label=f"topic: {data.topic}",
        )
    ratios = pca.explained_variance_ratio_
    axes.set_xlabel(f"PC 1 ({ratios[0] * 100:.1f}% of variance)")
    axes.set_ylabel(f"PC 2 ({ratios[1] * 100:.1f}% of variance)" if components > 1 else "PC 2")
    axes.set_title(f"Record embeddings, PCA of all sets ({embedder})")
    _legend_below(axes)
    axes.grid(alpha=0.25)
    return _save(figure, path)


def tsne_map(data: PlotData, path: Path) -> Path | None:
    """The first seed's relevance map: each set's kept chunks, its centroid, and the topic point."""
    mapped = data.tsne
    if mapped is None:
        return None
    coords = mapped.coords
    topic = coords[-1]
    figure, axes = _figure(8.0, 7.5)
    start = 0
    for index, (name, size) in enumerate(zip(data.tsne_names, mapped.sizes, strict=True)):
        points = coords[start : start + size]
        start += size
        colour = _colour(index)
        axes.scatter(
            points[:, 0],
            points[:, 1],
            s=12,
            alpha=0.45,
            color=colour,
            edgecolors="none",
            label=f"{name}: {size} chunks nearest the topic",
        )
        centroid = points.mean(axis=0)
        distance = float(np.linalg.norm(centroid - topic))
        axes.plot(
            [centroid[0], topic[0]], [centroid[1], topic[1]], linestyle="--", color=colour, linewidth=1.4
        )
        axes.scatter(
            [centroid[0]],
            [centroid[1]],
            marker="X",
            s=180,
            color=colour,
            edgecolors="black",
            linewidths=0.9,
            zorder=4,
            label=f"{name} centroid: distance {distance:.2f} (mean over seeds {mapped.mean[index]:.2f})",
        )
    axes.scatter(
        [topic[0]],
        [topic[1]],
        marker="*",
        s=380,
        color=TOPIC_COLOUR,
        edgecolors="black",
        linewidths=0.8,
        zorder=5,
        label=f"topic: {data.topic}",
    )
    axes.set_xlabel("t-SNE 1")
    axes.set_ylabel("t-SNE 2")
    axes.set_title(f"Relevance map (t-SNE, seed {mapped.seeds[0]}): centroid to topic, lower is closer")
    _legend_below(axes)
    axes.grid(alpha=0.25)
    return _save(figure, path)


def convergence_curve(curve: list[TracePoint], path: Path) -> Path:
    """What `synthesize --trace` recorded at each check: the remote-clique diversity of the growing set
    and, where the trace has it, the novelty rate (share of recent offers that were new), which is what
    the default rule stops on."""
    from matplotlib.ticker import MaxNLocator

    figure, axes = _figure(7.5, 4.5)
    samples = [point.samples for point in curve]
    values = [point.diversity for point in curve]
    lines = axes.plot(
        samples,
        values,
        marker="o",
        markersize=4,
        color=_colour(0),
        linewidth=1.6,
        label="remote-clique diversity",
    )
    axes.set_xlabel("accepted samples")
    axes.set_ylabel("diversity (mean pairwise cosine distance)")
    axes.set_xlim(left=0, right=max(samples) * 1.05)
    axes.xaxis.set_major_locator(MaxNLocator(integer=True))
    novel = [(point.samples, point.novelty) for point in curve if point.novelty is not None]
    if novel:
        rates = axes.twinx()
        lines += rates.plot(
            [s for s, _ in novel],
            [r for _, r in novel],
            marker="s",
            markersize=4,
            color=_colour(1),
            linewidth=1.6,
            label="novelty rate (share of recent offers that were new)",
        )
        rates.set_ylabel("novelty rate")
        rates.set_ylim(0, 1.05)
        axes.set_title("Synthesis: novelty (the stop) and diversity at each check")
    else:
        axes.set_title("Diversity convergence during synthesis")
    if len(curve) == 1:
        # One check only (the run ended before --check-every samples): say so rather than draw a lone dot.
        axes.annotate(
            "a single check: run synthesize with a smaller --check-every for a curve",
            xy=(samples[0], values[0]),
            xytext=(0.03, 0.9),
            textcoords="axes fraction",
            fontsize=9,
            arrowprops={"arrowstyle": "->", "color": "grey"},
        )
    axes.legend(handles=lines, loc="lower left", fontsize=9)
    axes.grid(alpha=0.25)
    return _save(figure, path)


def write_plots(data: PlotData, folder: Path, embedder: str) -> list[Path]:
    """Every figure the data allows, as PNG files in `folder` (created); the paths written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(
            f"cannot create the plots folder: {exc.strerror or exc}", source=str(folder)
        ) from None
    written = [
        pca_scatter(data, folder / "pca.png", embedder),
        tsne_map(data, folder / "relevance_tsne.png"),
        convergence_curve(data.trace, folder / "convergence.png") if data.trace else None,
    ]
    return [path for path in written if path is not None]
