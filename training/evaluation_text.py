"""An evaluation report as the table the command prints: the class-folder figures or the
scenes figures, under a line naming the model, its weights and the data."""

from __future__ import annotations

from app.console import counted
from training.voc import INCORRECT


def _num(value: float | None, digits: int = 4) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _recall_text(cell: dict) -> str:
    return f"{_num(cell['recall'], 3)} ({cell['found']}/{cell['total']})"


def _listed_text(images: dict) -> str:
    """How many images were listed, in which split, and how many --limit chose of them,
    for the summary's first line."""
    if images.get("split", "all") != "all":
        text = f"{images['in_split']} in the {images['split']} split of {images['listed']}"
    else:
        text = f"{images['listed']} listed"
    if images.get("chosen", images["in_split"]) < images["in_split"]:
        text = f"{images['chosen']} chosen by --limit from {text}"
    return text


def format_classes(report: dict) -> list[str]:
    images, no_face = report["images"], report["no_face"]
    left_out = images.get("left_out", [])  # reports written before it was counted lack it
    lines = [
        f"images: {images['evaluated']} evaluated of {_listed_text(images)}, "
        f"{len(images['unreadable'])} unreadable"
        + (f", {len(left_out)} left out (warned of above)" if left_out else ""),
        f"no face (or only a part of one) found by the app's detector: {no_face['count']} "
        f"({_num(no_face['fraction'], 3)}); "
        f"crop rules {report['rules']}",
    ]
    found = report["faces_found"]
    found_text = (
        f"{_num(found['accuracy'])} ({counted(found['count'], 'image')})" if found else "n/a"
    )
    lines += [
        f"accuracy: all images {_num(report['all_images']['accuracy'])}, "
        f"where a face was found {found_text}",
        "",
    ]
    for title, figures in (("all images", report["all_images"]), ("face found", found)):
        if figures is None:
            continue
        names = figures["class_names"]
        lines += [f"{title:<12}{'precision':>10}{'recall':>8}{'support':>9}"]
        for index, name in enumerate(names):
            pc = figures["per_class"].get(name)
            if pc is None:
                continue
            if not pc["support"]:  # not_face in class folders: no precision or recall to give
                said = sum(row[index] for row in figures["confusion"])
                lines.append(
                    f"{name:<12}  no image of its own here; given to {counted(said, 'image')}"
                )
                continue
            lines.append(
                f"{name:<12}{pc['precision']:>10.4f}{pc['recall']:>8.4f}{pc['support']:>9}"
            )
        lines.append(
            "confusion (rows true, columns predicted): "
            + ", ".join(f"{n} {row}" for n, row in zip(names, figures["confusion"]))
        )
        lines.append("")
    return lines


def format_scenes(report: dict, iou: float) -> list[str]:
    images = report["images"]
    gt = report["ground_truth"]
    # A malformed box drops its whole image: scored without it, a hit on that face would
    # count as a false detection.
    unreadable = len(images["unreadable"])
    left_out = (
        f"{unreadable} left out (image or annotation unreadable, each named above)"
        if unreadable
        else "none unreadable"
    )
    lines = [
        f"images: {images['evaluated']} evaluated of {_listed_text(images)}, {left_out}; "
        "ground truth "
        + ", ".join(f"{n} {c}" for n, c in gt.items())
        + f"; detections {report['detections']}",
        "",
    ]
    lines.append(
        f"{'AP@' + format(iou, 'g'):<10}{'AP':>8}{'positives':>11}{'TP':>6}{'FP':>6}"
        f"{'ignored':>9}{'recall':>8}"
    )
    for label, ap in report["ap"].items():
        lines.append(
            f"{label:<10}{_num(ap['ap']):>8}{ap['positives']:>11}"
            f"{ap['true_positives']:>6}{ap['false_positives']:>6}{ap['ignored']:>9}"
            f"{_num(ap['recall'], 3):>8}"
        )
    lines += [f"{'mAP':<10}{_num(report['map']):>8}", ""]

    bins = list(next(iter(report["recall_by_size"].values())))
    lines.append(f"detector recall by face size (longer side, px), IoU {iou:g}")
    lines.append(f"{'class':<23}" + "".join(f"{b:>19}" for b in bins))
    for name, cells in report["recall_by_size"].items():
        row = "".join(f"{_recall_text(c):>19}" for c in cells.values())
        lines.append(f"{name:<23}{row}")
    safety, wrong = report["unmasked_recall"], report["incorrect_mask"]
    false = report["false_detections"]
    large = report["large_recall"]
    found_large = ", ".join(
        f"{name} {_recall_text(cell)}" for name, cell in large.items() if name != "min_side"
    )
    lines += [
        "",
        f"faces >= {large['min_side']} px found: {found_large}",
        f"unmasked faces >= {safety['min_side']} px found and labelled no_mask: "
        f"{_num(safety['recall'], 3)} ({safety['found']}/{safety['total']})",
        f"labels given to found faces: {report['labels_of_found']}",
        f"{INCORRECT}: {wrong['total']} boxes, {wrong['detected']} detected, "
        f"labelled {wrong['labels']} (left out of the mAP)",
        f"false detections: {false['total']} ({_num(false['per_image'], 3)} per image), "
        f"duplicates {false['duplicates']}",
        "",
    ]
    return lines


def format_report(report: dict, iou: float) -> str:
    head = [
        f"MaskWatch evaluation: {report['model']} ({report['weights']}) on {report['data']}"
        f" [{report['layout']}], device {report['device']}"
        + (", mirror on" if report["settings"].get("mirror") else "")
    ]
    body = format_classes(report) if report["layout"] == "classes" else format_scenes(report, iou)
    timing = report["timing"]
    return "\n".join(
        head + body + [f"time: {timing['seconds']} s, {timing['images_per_s']} images/s"]
    )
