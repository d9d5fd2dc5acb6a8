"""Figures 5–8 and the darkness-sweep chart, drawn from arrays (matplotlib, Agg; PNG + PDF).

Each ``plot_*`` function takes plain data (features, confidences, accuracies), draws one figure
and writes ``<out>.png`` and ``<out>.pdf``; it returns the paths written. Reading runs and computing
features/predictions lives elsewhere (:mod:`lldif_bench.reports.evidence`).

- Fig. 5 :func:`plot_tsne_grid` — t-SNE of penultimate features, rows = methods, columns =
  conditions (clear / low-light), points coloured by the true emotion.
- Fig. 6 :func:`plot_confidence` — per method, the density of the predicted-class confidence on clear
  and on low-light images (a Gaussian kernel density, not a histogram), with mean confidence and
  accuracy in the panel.
- Fig. 7 :func:`plot_diffusion_steps` — t-SNE of the denoised EPD at several diffusion steps.
- Fig. 8 :func:`plot_iterations` — accuracy vs the number of diffusion iterations T.
- Sweep :func:`plot_sweep` — accuracy vs exposure (EV), one line per run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lldif_bench.emotions import CANONICAL_8
from lldif_bench.errors import UserError

FORMATS = ("png", "pdf")
CONDITION_ORDER = ("clear", "low-light")


@dataclass(frozen=True)
class FeaturePanel:
    """Features of one (method, condition) for a t-SNE panel."""

    method: str
    condition: str
    features: np.ndarray  # (N, D)
    labels: np.ndarray  # (N,) canonical class indices


@dataclass(frozen=True)
class ConfidenceSet:
    """Predicted-class confidences of one method on one condition."""

    method: str
    condition: str
    confidence: np.ndarray  # (N,) max softmax probability
    correct: np.ndarray  # (N,) bool


def _figure(nrows: int, ncols: int, size: tuple[float, float]):
    from matplotlib.figure import Figure

    fig = Figure(figsize=size, layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False)
    return fig, axes


def save_figure(fig, out: str | Path, formats: Sequence[str] = FORMATS) -> list[Path]:
    """Write ``fig`` as ``out`` with each suffix in ``formats`` (the suffix of ``out`` is replaced)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    paths = []
    for fmt in formats:
        path = out.with_suffix(f".{fmt}")
        fig.savefig(path, dpi=150)
        paths.append(path)
    return paths


def _class_names(labels: np.ndarray) -> list[str]:
    top = int(labels.max()) + 1 if labels.size else 7
    return list(CANONICAL_8[: max(top, 7)])


def _colours(n: int):
    from matplotlib import colormaps

    cmap = colormaps["tab10"]
    return [cmap(i % 10) for i in range(n)]


def subsample(n: int, max_points: int, seed: int) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` items (all of them, sorted, when n is small)."""
    if n <= max_points:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size=max_points, replace=False))


def tsne_embed(features: np.ndarray, seed: int = 0, perplexity: float = 30.0, iterations: int = 1000) -> np.ndarray:
    """2-D t-SNE (scikit-learn) of ``(N, D)`` features; perplexity is capped for small N."""
    try:
        from sklearn.manifold import TSNE
    except ImportError:
        raise UserError("t-SNE figures need scikit-learn: pip install 'lldif-bench[figures]'") from None
    features = np.asarray(features, dtype=np.float32).reshape(len(features), -1)
    if len(features) < 5:
        raise UserError(f"t-SNE needs at least 5 samples, got {len(features)}")
    if not np.isfinite(features).all():
        raise UserError("features contain NaN or inf; the run's checkpoint may be broken")
    perp = float(min(perplexity, max(2.0, (len(features) - 1) / 3.0)))
    import inspect

    its = "max_iter" if "max_iter" in inspect.signature(TSNE).parameters else "n_iter"  # sklearn < 1.5
    # Exact gradients for small sets: as fast there, and immune to OpenMP oversubscription on busy CPUs.
    method = "exact" if len(features) <= 300 else "barnes_hut"
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", random_state=seed, learning_rate="auto",
                method=method, **{its: max(int(iterations), 250)})
    return tsne.fit_transform(features)


def _scatter(ax, xy: np.ndarray, labels: np.ndarray, names: list[str], title: str) -> None:
    colours = _colours(len(names))
    for k, name in enumerate(names):
        sel = labels == k
        if sel.any():
            ax.scatter(xy[sel, 0], xy[sel, 1], s=6, color=colours[k], label=name, alpha=0.8, linewidths=0)
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tsne_grid(panels: Sequence[FeaturePanel], out: str | Path, seed: int = 0, max_points: int = 2000,
                   title: str = "t-SNE of penultimate features", tsne_iterations: int = 1000) -> list[Path]:
    """Fig. 5: one t-SNE per (method, condition); rows = methods, columns = conditions."""
    if not panels:
        raise UserError("no feature sets to plot")
    methods = list(dict.fromkeys(p.method for p in panels))
    conditions = [c for c in CONDITION_ORDER if any(p.condition == c for p in panels)]
    conditions += [c for c in dict.fromkeys(p.condition for p in panels) if c not in conditions]
    names = _class_names(np.concatenate([p.labels for p in panels]))
    fig, axes = _figure(len(methods), len(conditions), (3.2 * len(conditions) + 1.2, 3.0 * len(methods)))
    for ax in axes.flat:
        ax.set_axis_off()
    for panel in panels:
        ax = axes[methods.index(panel.method), conditions.index(panel.condition)]
        ax.set_axis_on()
        keep = subsample(len(panel.labels), max_points, seed)
        xy = tsne_embed(panel.features[keep], seed=seed, iterations=tsne_iterations)
        _scatter(ax, xy, np.asarray(panel.labels)[keep], names, f"{panel.method} — {panel.condition}")
    handles, labels = axes.flat[0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, labels, loc="outside right center", fontsize=8, markerscale=2)
    fig.suptitle(title)
    return save_figure(fig, out)


def kde_curve(values: np.ndarray, grid: np.ndarray, bandwidth: float | None = None,
              bounds: tuple[float, float] | None = None) -> np.ndarray:
    """Gaussian kernel density of ``values`` on ``grid`` (Scott's rule bandwidth, floored at 0.01).

    With ``bounds`` the kernels are reflected at both ends, so no mass leaks outside (confidences
    live in [0, 1]).
    """
    values = np.asarray(values, dtype=np.float64)
    if values.size == 0:
        return np.zeros_like(grid)
    if bandwidth is None:
        bandwidth = max(float(values.std(ddof=1)) if values.size > 1 else 0.0, 1e-12) * values.size ** (-1 / 5)
    bandwidth = max(bandwidth, 0.01)
    centres = values
    if bounds is not None:
        lo, hi = bounds
        centres = np.concatenate([values, 2 * lo - values, 2 * hi - values])
    z = (grid[:, None] - centres[None, :]) / bandwidth
    return np.exp(-0.5 * z * z).sum(axis=1) / (values.size * bandwidth * np.sqrt(2 * np.pi))


def plot_confidence(sets: Sequence[ConfidenceSet], out: str | Path,
                    title: str = "Confidence of the predicted class") -> list[Path]:
    """Fig. 6: one panel per method, density of confidence for each condition, means as dashed lines.

    The panel title gives the accuracy over all images of that method (every condition together),
    as the paper's figure does; the legend gives the per-condition mean confidence and accuracy.
    """
    if not sets:
        raise UserError("no predictions to plot")
    methods = list(dict.fromkeys(s.method for s in sets))
    fig, axes = _figure(1, len(methods), (3.4 * len(methods), 3.0))
    grid = np.linspace(0.0, 1.0, 201)
    colours = {"clear": "tab:orange", "low-light": "tab:blue"}
    for ax, method in zip(axes[0], methods):
        mine = [s for s in sets if s.method == method]
        correct = np.concatenate([np.asarray(s.correct, bool) for s in mine])
        for s in mine:
            conf = np.asarray(s.confidence, dtype=np.float64)
            colour = colours.get(s.condition, None)
            acc = float(np.mean(s.correct)) if len(s.correct) else float("nan")
            density = kde_curve(conf, grid, bounds=(0.0, 1.0))
            line, = ax.plot(grid, density, color=colour,
                            label=f"{s.condition}: mean {conf.mean():.2f}, acc {acc:.3f}")
            ax.fill_between(grid, density, color=line.get_color(), alpha=0.2)
            ax.axvline(conf.mean(), color=line.get_color(), linestyle="--", linewidth=1)
        ax.set_title(f"{method} (acc {correct.mean():.3f})", fontsize=10)
        ax.set_xlim(0, 1)
        ax.set_xlabel("confidence of the predicted class")
        ax.set_ylabel("density")
        ax.legend(fontsize=7, loc="upper left")
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_diffusion_steps(embeddings: dict[int, np.ndarray], labels: np.ndarray, out: str | Path,
                         seed: int = 0, max_points: int = 2000,
                         title: str = "t-SNE of the denoised EPD at diffusion steps",
                         tsne_iterations: int = 1000) -> list[Path]:
    """Fig. 7: one t-SNE panel per step ``t`` (``embeddings[t]`` is ``(N, C)``), same points in each."""
    if not embeddings:
        raise UserError("no diffusion-step embeddings to plot")
    steps = sorted(embeddings, reverse=True)  # from noise (t = T) to the final EPD (t = 0)
    labels = np.asarray(labels)
    keep = subsample(len(labels), max_points, seed)
    names = _class_names(labels)
    fig, axes = _figure(1, len(steps), (2.8 * len(steps) + 1.2, 3.0))
    for ax, step in zip(axes[0], steps):
        xy = tsne_embed(np.asarray(embeddings[step])[keep], seed=seed, iterations=tsne_iterations)
        _scatter(ax, xy, labels[keep], names, f"t = {step}")
    handles, names_ = axes[0][0].get_legend_handles_labels()
    if handles:
        fig.legend(handles, names_, loc="outside right center", fontsize=8, markerscale=2)
    fig.suptitle(title)
    return save_figure(fig, out)


def plot_iterations(iterations: Sequence[int], accuracy: Sequence[float], out: str | Path,
                    label: str = "LLDif", title: str = "Accuracy vs diffusion iterations") -> list[Path]:
    """Fig. 8: accuracy (%) against the number of diffusion iterations T (evenly spaced ticks, so
    T = 50 sits one step after T = 10 as in the paper)."""
    if len(iterations) == 0 or len(iterations) != len(accuracy):
        raise UserError("need one accuracy per iteration count")
    order = np.argsort(np.asarray(iterations))
    its = [int(iterations[i]) for i in order]
    acc = [float(accuracy[i]) for i in order]
    fig, axes = _figure(1, 1, (5.0, 3.2))
    ax = axes[0][0]
    x = np.arange(len(its))
    ax.plot(x, acc, marker="o", label=label)
    for xi, a in zip(x, acc):
        ax.annotate(f"{a:.2f}", (xi, a), textcoords="offset points", xytext=(0, 6), ha="center", fontsize=7)
    ax.margins(y=0.15)
    ax.set_xticks(x, [str(t) for t in its])
    ax.set_xlabel("diffusion iterations T")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)


def plot_sweep(series: dict[str, tuple[Sequence[float], Sequence[float]]], out: str | Path,
               title: str = "Accuracy vs exposure") -> list[Path]:
    """Darkness sweep: ``series[name] = (ev values, accuracy %)``, one line each, on one chart."""
    if not series:
        raise UserError("no sweep results to plot")
    fig, axes = _figure(1, 1, (6.0, 3.6))
    ax = axes[0][0]
    for name, (evs, acc) in series.items():
        order = np.argsort(np.asarray(evs, dtype=float))
        ax.plot(np.asarray(evs, float)[order], np.asarray(acc, float)[order], marker="o", markersize=3,
                label=name)
    ax.set_xlabel("exposure change (EV)")
    ax.set_ylabel("accuracy (%)")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    ax.set_title(title, fontsize=10)
    return save_figure(fig, out)
