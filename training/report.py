"""The training report written next to the weights: JSON, Markdown and PNG figures."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.ticker import MaxNLocator  # noqa: E402

from training.outputs import OutputSet, strict_json  # noqa: E402

REPORT_FILES = ("curves.png", "confusion.png", "report.json", "report.md")


def _save_figure(fig, path: Path) -> None:
    try:
        fig.savefig(path, dpi=90, bbox_inches="tight", format="png")
    finally:
        plt.close(fig)


def plot_curves(history: dict[str, list[dict]], path: Path) -> None:
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 3.6))
    for role, records in history.items():
        epochs = [r["epoch"] for r in records]
        # Markers: a run of one epoch (a quick trial's teacher) is a point, not a line.
        ax_loss.plot(epochs, [r["loss"] for r in records], "o-", ms=3, label=role)
        ax_acc.plot(epochs, [r["train_acc"] for r in records], "o--", ms=3, label=f"{role} train")
        ax_acc.plot(epochs, [r["val_acc"] for r in records], "o-", ms=3, label=f"{role} val")
    ax_loss.set(title="training loss", xlabel="epoch")
    ax_acc.set(title="accuracy", xlabel="epoch")
    for ax in (ax_loss, ax_acc):
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))  # no epoch 1.2
    ax_loss.legend()
    ax_acc.legend(fontsize=7)
    _save_figure(fig, path)


def plot_confusions(results: dict[str, dict], path: Path) -> None:
    fig, axes = plt.subplots(1, len(results), figsize=(3.6 * len(results), 3.4), squeeze=False)
    for ax, (role, figures) in zip(axes[0], results.items()):
        matrix, names = figures["confusion"], figures["class_names"]
        ax.imshow(matrix, cmap="Blues")
        for i, row in enumerate(matrix):
            for j, value in enumerate(row):
                ax.text(j, i, str(value), ha="center", va="center")
        ax.set(
            title=f"{role}: acc {figures['accuracy']:.4f}",
            xticks=range(len(names)),
            yticks=range(len(names)),
            xticklabels=names,
            yticklabels=names,
            xlabel="predicted",
            ylabel="true",
        )
    _save_figure(fig, path)


def markdown(report: dict) -> str:
    lines = [
        f"# Training report ({report['method']})",
        "",
        f"Command: `{report['command']}`",
        "",
        f"Data: `{report['data']}`, split sizes {report['data_stats']['split_sizes']}, "
        f"crop rules {report['data_stats']['rules']}, "
        f"near-duplicate images grouped: {report['data_stats']['near_duplicate_images']}.",
        "",
        "| model | params | test accuracy | mask P / R | no_mask P / R | crops/s (b32) |",
        "|---|---|---|---|---|---|",
    ]
    for role, r in report["models"].items():
        pc = r["test"]["per_class"]
        lines.append(
            f"| {role} | {r['parameters']:,} | {r['test']['accuracy']:.4f} | "
            f"{pc['mask']['precision']:.4f} / {pc['mask']['recall']:.4f} | "
            f"{pc['no_mask']['precision']:.4f} / {pc['no_mask']['recall']:.4f} | "
            f"{r['crops_per_s']:.0f} |"
        )
    lines += [
        "",
        f"Student / teacher parameters: {report['param_ratio']:.4f}",
        "",
        "![curves](curves.png)",
        "",
        "![confusion](confusion.png)",
        "",
    ]
    return "\n".join(lines)


def write_report(
    folder: Path, report: dict, history: dict, results: dict, outputs: OutputSet
) -> None:
    """Write the report's files (``REPORT_FILES``) under the temporary names of ``outputs``;
    they take their final names in ``folder`` when the caller commits the set."""
    plot_curves(history, outputs.path(folder / "curves.png"))
    plot_confusions(results, outputs.path(folder / "confusion.png"))
    outputs.path(folder / "report.json").write_text(strict_json(report), encoding="utf-8")
    outputs.path(folder / "report.md").write_text(markdown(report), encoding="utf-8")
