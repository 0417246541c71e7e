"""Compare KD_Lib's four distillation methods on the same data and teacher.

``python -m training.compare_methods --teacher models/teacher.pt --out runs/compare`` distils
one student per method (into ``OUT/METHOD/``) with the same seed, epochs and data, then prints
and saves a table of their test figures. Self-training ignores the teacher by design. Any
other flag goes to every ``training.distill`` run as given (``--label-smoothing 0``, say).
An interrupted comparison continues with ``--resume``: methods that finished are read back
from their reports, the interrupted one resumes from its checkpoint.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

from app.atomic import OutputNameError, check_writable, describe_error, write_text
from app.flags import FlagValueError, OneLineParser, input_path, output_folder
from app.stop_signals import STOP_SIGNALS, stop_message, stop_signals_raise
from models.checkpoint import CheckpointError
from training import distill
from training.distillers import DISTILLERS

PROG = "python -m training.compare_methods"
TABLE = "comparison.json"
STOPPED = {128 + signum for signum in STOP_SIGNALS}  # distill's status when a signal stops it


class CompareError(ValueError):
    """A comparison that cannot start as asked."""


def build_parser() -> argparse.ArgumentParser:
    # No abbreviations: "--method" must not pass for "--methods" (it is distill's flag).
    p = OneLineParser(prog=PROG, description=__doc__, allow_abbrev=False)
    p.add_argument("--data", type=input_path, default=Path("../shared/data/faces"))
    p.add_argument("--scenes", type=input_path, default=Path("../shared/data/scenes"))
    p.add_argument("--no-scenes", action="store_true", help="faces only, two classes")
    p.add_argument("--teacher", type=Path, required=True)
    p.add_argument("--out", type=output_folder, required=True)
    p.add_argument("--epochs", type=int, default=10, help="student epochs per method")
    p.add_argument(
        "--methods",
        nargs="+",
        choices=sorted(DISTILLERS),
        default=sorted(DISTILLERS),
        metavar="METHOD",
        help=f"methods to compare, of {', '.join(sorted(DISTILLERS))} (default: all)",
    )
    p.add_argument("--overwrite", action="store_true", help="replace earlier outputs")
    p.add_argument(
        "--resume",
        action="store_true",
        help="continue an interrupted comparison: keep the methods that finished",
    )
    return p


# distill flags that the comparison sets itself for every method, and what to use instead.
SET_HERE = {
    "--method": "name the methods with --methods",
    "--student-epochs": "set them with --epochs",
    "--negatives": "it is on unless --no-scenes is given",
    "--data": "give --data",
    "--out": "give --out",
    "--teacher": "give --teacher",
    "--scenes": "give --scenes",
    "--resume": "give --resume",
    "--overwrite": "give --overwrite",
}


def refuse_clashes(passed_on: list[str]) -> None:
    """Refuse a flag passed on to distill that the comparison sets itself: distill would
    take the later one, and the table would not be what was asked for. Abbreviations are
    resolved as distill's argparse resolves them."""
    # argparse offers no public list of a parser's options; _actions has held it for years.
    options = [o for a in distill.build_parser()._actions for o in a.option_strings]
    for token in passed_on:
        if not token.startswith("--"):
            continue
        name = token.split("=", 1)[0]
        matches = [o for o in options if o == name] or [o for o in options if o.startswith(name)]
        if len(matches) == 1 and matches[0] in SET_HERE:
            flag = matches[0]
            spelled = f" (read by distill as {flag})" if flag != name else ""
            raise FlagValueError(
                f"{name}{spelled} is set by the comparison for every method; {SET_HERE[flag]}"
            )


def distill_argv(
    args: argparse.Namespace, method: str, passed_on: list[str], resume: bool = False
) -> list[str]:
    """The ``training.distill`` command line of one method; ``resume`` for the one an
    interrupted comparison stopped in."""
    argv = ["--data", str(args.data), "--teacher", str(args.teacher), "--method", method]
    argv += ["--student-epochs", str(args.epochs), "--out", str(args.out / method)]
    if "--quiet" not in passed_on:  # one bar for the comparison, not one per epoch
        argv.append("--quiet")
    if not args.no_scenes:
        argv += ["--scenes", str(args.scenes), "--negatives"]
    if args.overwrite:
        argv.append("--overwrite")
    if resume:
        argv.append("--resume")
    return argv + passed_on


def method_args(args: argparse.Namespace, method: str, passed_on: list[str]):
    """The training.distill settings this comparison runs ``method`` with, as distill reads
    them (its crop size from the teacher when not given)."""
    parser = distill.build_parser()
    parser.prog = f"{PROG} (passed on to training.distill)"
    wanted = parser.parse_args(distill_argv(args, method, passed_on))
    distill.trained_teacher(wanted)
    if wanted.input_size is None:
        wanted.input_size = distill.DEFAULT_INPUT_SIZE
    return wanted


def differences(found: dict, wanted: argparse.Namespace) -> list[str]:
    """How a finished method's recorded settings differ from what this comparison would
    run, each said as "--lr: 0.001 there"; the flags the comparison sets in its own terms."""
    kept = found.get("settings")
    if not isinstance(kept, dict):
        return ["its report records no settings (made by an earlier version)"]
    now = json.loads(json.dumps(distill.run_settings(wanted, "", ())))
    said = []
    for name, value in now.items():
        if name in ("data", "classes") or kept.get(name) == value:
            continue
        shown = {"--student-epochs": "--epochs", "--method": "--methods"}.get(name, name)
        said.append(f"{shown}: {kept.get(name)!r} there")
    options = found.get("options", {})
    for flag, name in (("--data", "data"), ("--scenes", "scenes")):
        there, here = options.get(name), getattr(wanted, name)
        if (there is None) != (here is None) or (
            here is not None and Path(there).resolve() != Path(here).resolve()
        ):
            said.append(f"{flag}: {there!r} there")
    return said


def finished_report(
    args: argparse.Namespace, method: str, wanted: argparse.Namespace
) -> dict | None:
    """The report of a method that finished in an earlier, interrupted comparison, checked
    against ``wanted``, the distill settings this comparison runs that method with.

    Raises:
        CompareError: when that report is damaged, or that run had other settings (more
            epochs, another teacher, even one retrained at the same path): its figures would
            stand in a table of runs they do not match.
    """
    report = args.out / method / "report" / "report.json"
    if not args.resume or not report.is_file():
        return None
    try:
        found = json.loads(report.read_text())
        if not isinstance(found["command"], str) or "test" not in found["models"]["student"]:
            raise ValueError("not what the table reads")
    except (OSError, ValueError, KeyError, TypeError):
        raise CompareError(
            f"--resume: {report} cannot be read; delete {args.out / method} to run {method} again"
        ) from None
    said = differences(found, wanted)
    if said:
        raise CompareError(
            f"--resume: {method} finished earlier with other settings ({'; '.join(said)}); "
            "give the same flags as then, or leave out --resume and pass --overwrite to run "
            "every method anew"
        )
    return found


def check_before_work(args: argparse.Namespace, passed_on: list[str]) -> dict[str, dict]:
    """Refuse, before any training, what would stop the comparison part way: a bad flag
    for distill, a teacher that cannot serve, an existing table without --overwrite, a
    finished method (with --resume) that does not match. Returns the finished reports by
    method; the teacher is read once, not once per method."""
    if args.epochs < 1:
        raise FlagValueError(f"--epochs must be at least 1, not {args.epochs}")
    refuse_clashes(passed_on)
    if args.resume and args.overwrite:
        raise FlagValueError(
            "--resume keeps what finished, --overwrite replaces it: give one of them"
        )
    twice = sorted({m for m in args.methods if args.methods.count(m) > 1})
    if twice:
        raise FlagValueError(f"--methods names {', '.join(twice)} twice; name each method once")
    check_writable(args.out / TABLE, args.overwrite or args.resume, make_folder=True)
    finished = {}
    try:
        wanted = method_args(args, args.methods[0], passed_on)
        distill.check_settings(wanted)
        for method in args.methods:  # the methods' distill settings differ in these alone
            wanted.method, wanted.out = method, args.out / method
            report = finished_report(args, method, wanted)
            if report is None:
                distill.check_outputs(wanted)
            else:
                finished[method] = report
    except CheckpointError as exc:
        if args.no_scenes and "not_face" in str(exc):
            raise CompareError(
                f"{args.teacher} was trained with the not_face class of the scenes set; "
                "leave out --no-scenes or give a two-class teacher"
            ) from None
        raise
    return finished


def row(method: str, report: dict, minutes: float | None) -> dict:
    student = report["models"]["student"]
    return {
        "method": method,
        "test_accuracy": student["test"]["accuracy"],
        "best_val_acc": student["best_val_acc"],
        "no_mask_recall": student["test"]["per_class"]["no_mask"]["recall"],
        "mask_recall": student["test"]["per_class"]["mask"]["recall"],
        "minutes": minutes,
        "command": report["command"],  # the distill run behind the row, with its settings
    }


def compare(
    args: argparse.Namespace, passed_on: list[str], finished: dict[str, dict]
) -> list[dict] | int:
    """Distil one student per method, keeping the ``finished`` ones' reports; the rows of
    the table, or distill's exit status.

    With --resume, methods run in order, so the first one without a report is the one that
    was interrupted; the methods after it never started and start afresh.
    """
    rows = []
    resume = args.resume
    for method in args.methods:
        report = finished.get(method)
        if report is not None:
            logging.getLogger(__name__).info("%s finished earlier: its report is kept", method)
            rows.append(row(method, report, None))
            continue
        start = time.perf_counter()
        code = distill.main(distill_argv(args, method, passed_on, resume))
        resume = False
        if code in STOPPED:  # distill said what stopped it; say how the comparison goes on
            print(
                f"{PROG.removeprefix('python -m ')}: stopped in {method}; run the same "
                "command with --resume to continue",
                file=sys.stderr,
            )
        if code != 0:
            return code
        report = json.loads((args.out / method / "report" / "report.json").read_text())
        rows.append(row(method, report, (time.perf_counter() - start) / 60))
    return rows


def print_table(rows: list[dict]) -> None:
    print(
        f"\n{'method':15} {'test acc':>9} {'best val':>9} {'mask R':>7} {'no_mask R':>9} "
        f"{'minutes':>8}"
    )
    for r in rows:
        minutes = "earlier" if r["minutes"] is None else f"{r['minutes']:.1f}"
        print(
            f"{r['method']:15} {r['test_accuracy']:9.4f} {r['best_val_acc']:9.4f} "
            f"{r['mask_recall']:7.4f} {r['no_mask_recall']:9.4f} {minutes:>8}"
        )


def main(argv: list[str] | None = None) -> int:
    args, passed_on = build_parser().parse_known_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        with stop_signals_raise():
            finished = check_before_work(args, passed_on)
            rows = compare(args, passed_on, finished)
    except (CompareError, CheckpointError, OutputNameError, ValueError, OSError) as exc:
        print(f"training.compare_methods: error: {describe_error(exc)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        print(
            f"training.compare_methods: {said}; run the same command with --resume to continue",
            file=sys.stderr,
        )
        return status
    if isinstance(rows, int):
        return rows
    print_table(rows)
    write_text(args.out / TABLE, json.dumps(rows, indent=1), overwrite=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
