"""Compare KD_Lib's four distillation methods on the same data and teacher.

``python -m training.compare_methods --teacher models/teacher.pt --out runs/compare`` distils
one student per method (into ``OUT/METHOD/``) with the same seed, epochs and data, then prints
and saves a table of their test figures. Self-training ignores the teacher by design. Any
other flag goes to every ``training.distill`` run as given (``--label-smoothing 0``, say).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from app.atomic import write_text
from training import distill
from training.distillers import DISTILLERS


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m training.compare_methods", description=__doc__)
    p.add_argument("--data", type=Path, default=Path("../shared/data/faces"))
    p.add_argument("--scenes", type=Path, default=Path("../shared/data/scenes"))
    p.add_argument("--no-scenes", action="store_true", help="faces only, two classes")
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--epochs", type=int, default=10, help="student epochs per method")
    p.add_argument("--methods", nargs="*", default=sorted(DISTILLERS))
    p.add_argument("--overwrite", action="store_true")
    args, passed_on = p.parse_known_args(argv)
    rows = []
    for method in args.methods:
        out = args.out / method
        cmd = [
            "--data",
            str(args.data),
            "--teacher",
            str(args.teacher),
            "--method",
            method,
            "--student-epochs",
            str(args.epochs),
            "--out",
            str(out),
            "--quiet",
            *passed_on,
        ]
        if not args.no_scenes:
            cmd += ["--scenes", str(args.scenes), "--negatives"]
        if args.overwrite:
            cmd.append("--overwrite")
        start = time.perf_counter()
        code = distill.main(cmd)
        if code != 0:
            return code
        report = json.loads((out / "report" / "report.json").read_text())
        student = report["models"]["student"]
        rows.append(
            {
                "method": method,
                "test_accuracy": student["test"]["accuracy"],
                "best_val_acc": student["best_val_acc"],
                "no_mask_recall": student["test"]["per_class"]["no_mask"]["recall"],
                "mask_recall": student["test"]["per_class"]["mask"]["recall"],
                "minutes": (time.perf_counter() - start) / 60,
            }
        )
    print(
        f"\n{'method':15} {'test acc':>9} {'best val':>9} {'mask R':>7} {'no_mask R':>9} "
        f"{'minutes':>8}"
    )
    for r in rows:
        print(
            f"{r['method']:15} {r['test_accuracy']:9.4f} {r['best_val_acc']:9.4f} "
            f"{r['mask_recall']:7.4f} {r['no_mask_recall']:9.4f} {r['minutes']:8.1f}"
        )
    write_text(args.out / "comparison.json", json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
