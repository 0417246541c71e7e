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
from app.console import error, exit_status, guard_streams, log_to_stderr, say, tell
from app.flags import FlagValueError, OneLineParser, input_path, output_folder
from app.stop_signals import STOP_SIGNALS, stop_message, stop_signals_raise
from models.checkpoint import CheckpointError
from training import distill, distill_settings, run_state
from training.dataset_files import class_folders
from training.distillers import DISTILLERS, as_device
from training.outputs import WorkNotSavedError
from training.report import REPORT_FILES
from training.voc import require_scenes_layout

PROG = "training.compare_methods"  # how its one-line complaints begin
TABLE = "comparison.json"
STOPPED = {128 + signum for signum in STOP_SIGNALS}  # distill's status when a signal stops it
OWN_NAMES = {"--student-epochs": "--epochs", "--method": "--methods"}  # distill's flag: ours
DEFAULT_SCENES = Path("../shared/data/scenes")

# What the comparison reads from a method's report.json, and the types it reads them as.
NUMBER = (int, float)
REPORT_FIELDS = (
    ("command", str),
    ("options", dict),
    ("options.data", str),
    ("options.scenes", (str, type(None))),
    ("models.student.best_val_acc", NUMBER),
    ("models.student.test.accuracy", NUMBER),
    ("models.student.test.per_class.mask.recall", NUMBER),
    ("models.student.test.per_class.no_mask.recall", NUMBER),
)
SETTINGS_FIELDS = (("settings", dict), ("settings.data", str))  # absent from older reports


class CompareError(ValueError):
    """A comparison that cannot start as asked."""


# how a stopped comparison goes on, by whether it was run with --overwrite
HOW_TO_GO_ON = {
    False: "run the same command with --resume to continue",
    True: "run the same command with --resume in place of --overwrite to continue",
}


def build_parser() -> argparse.ArgumentParser:
    p = OneLineParser(prog=f"python -m {PROG}", description=__doc__)
    p.add_argument("--data", type=input_path, default=Path("../shared/data/faces"))
    p.add_argument(
        "--scenes",
        type=input_path,
        help=f"the scenes set whose face crops and false boxes join training (default "
        f"{DEFAULT_SCENES}; not with --no-scenes)",
    )
    p.add_argument("--no-scenes", action="store_true", help="faces only, two classes")
    p.add_argument("--teacher", type=input_path, required=True)
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
    take the later one, and the table would not be what was asked for. (Distill takes flags
    by their whole names only, so a prefix is refused there as unrecognized.)"""
    for token in passed_on:
        flag = token.split("=", 1)[0]
        if flag in SET_HERE:
            raise FlagValueError(
                f"{flag} is set by the comparison for every method; {SET_HERE[flag]}"
            )


def settle_scenes(args: argparse.Namespace) -> None:
    """Refuse --scenes beside --no-scenes, rather than drop one of them unsaid; otherwise
    give --scenes its default when it was not given."""
    if args.no_scenes and args.scenes is not None:
        raise FlagValueError(
            "--no-scenes trains on the faces alone, --scenes adds a scenes set: give one of them"
        )
    if not args.no_scenes and args.scenes is None:
        args.scenes = DEFAULT_SCENES


def flag_with(flag: str, value: object) -> list[str]:
    """``flag`` and its ``value`` as distill's parser reads them back: a value beginning with
    '-' (an --out of '-', say) is joined to its flag with '=', or it would be taken for a
    flag and the comparison's own flag refused under distill's name."""
    text = str(value)
    return [f"{flag}={text}"] if text.startswith("-") else [flag, text]


def distill_argv(
    args: argparse.Namespace, method: str, passed_on: list[str], resume: bool = False
) -> list[str]:
    """The ``training.distill`` command line of one method; ``resume`` for one that an
    interrupted comparison left a training state of."""
    argv = [*flag_with("--data", args.data), *flag_with("--teacher", args.teacher)]
    argv += ["--method", method, *flag_with("--student-epochs", args.epochs)]
    argv += flag_with("--out", args.out / method)
    if "--quiet" not in passed_on:  # one bar for the comparison, not one per epoch
        argv.append("--quiet")
    if not args.no_scenes:
        argv += [*flag_with("--scenes", args.scenes), "--negatives"]
    if args.overwrite:
        argv.append("--overwrite")
    if resume:
        argv.append("--resume")
    return argv + passed_on


def method_args(args: argparse.Namespace, method: str, passed_on: list[str]):
    """The training.distill settings this comparison runs ``method`` with, as distill reads
    them (its crop size from the teacher when not given)."""
    parser = distill.build_parser()
    parser.prog = f"python -m {PROG} (passed on to training.distill)"
    wanted = parser.parse_args(distill_argv(args, method, passed_on))
    distill_settings.trained_teacher(wanted)
    if wanted.input_size is None:
        wanted.input_size = distill_settings.DEFAULT_INPUT_SIZE
    return wanted


def read_report(path: Path) -> dict:
    """A method's report.json, every field the comparison reads there checked, so that a
    damaged or hand-edited report is refused as a whole, not met part way as a traceback.

    Raises:
        OSError: when the file cannot be read.
        ValueError: when it is not JSON, or a field is missing or not of its type.
    """
    found = json.loads(path.read_text())
    if not isinstance(found, dict):
        raise ValueError(f"{path} holds no JSON object")
    fields = REPORT_FIELDS + (SETTINGS_FIELDS if "settings" in found else ())
    for name, kinds in fields:
        value = found
        for key in name.split("."):
            if not isinstance(value, dict) or key not in value:
                raise ValueError(f"{path} has no {name}")
            value = value[key]
        if not isinstance(value, kinds) or isinstance(value, bool):
            raise ValueError(f"{path} holds a {type(value).__name__} as {name}")
    return found


def in_own_terms(said: str) -> str:
    """distill's words on settings ("--student-epochs: 30 there") in the comparison's flags."""
    for theirs, ours in OWN_NAMES.items():
        said = said.replace(f"{theirs}: ", f"{ours}: ")
    return said


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
        said.append(f"{OWN_NAMES.get(name, name)}: {kept.get(name)!r} there")
    options = found["options"]
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
    if not args.resume:
        return None
    if not report.exists():
        outputs = [args.out / method / "student.pt"]
        outputs += [report.parent / name for name in REPORT_FILES]
        if any(path.exists() for path in outputs):  # distill writes them all or none
            raise CompareError(
                f"--resume: {report} is missing beside the rest of {method}'s outputs; delete "
                f"{args.out / method} to run {method} again"
            )
        return None
    if report.is_dir():
        return None  # distill_settings.check_outputs names a folder where a file goes
    if not (args.out / method / "student.pt").is_file():  # its row would name no student
        raise CompareError(
            f"--resume: {args.out / method / 'student.pt'} is missing beside {method}'s report; "
            f"delete {args.out / method} to run {method} again"
        )
    try:
        found = read_report(report)
    except (OSError, ValueError):
        raise CompareError(
            f"--resume: {report} cannot be read; delete {args.out / method} to run {method} again"
        ) from None
    said = differences(found, wanted)
    if said:
        raise CompareError(
            f"--resume: {method} finished earlier with other settings ({'; '.join(said)}); "
            f"give the same flags as then, delete {args.out / method} to run {method} again, "
            "or leave out --resume and pass --overwrite to run every method anew"
        )
    return found


def current_data(wanted: argparse.Namespace) -> tuple[str, tuple[str, ...]]:
    """The digest distill records of the crops ``wanted`` learns from, and their class
    names, from distill's own preparation: the first method to run then reads the crops
    back instead of cropping again."""
    if wanted.scenes:
        require_scenes_layout(wanted.scenes)
    data = distill.training_data(wanted, as_device(wanted.device))
    return data.digest, data.class_names


def has_kept_state(wanted: argparse.Namespace, method: str) -> bool:
    """Whether ``--work-dir`` keeps a training state of ``method`` at this seed (of these
    settings or others: distill's --resume tells them apart)."""
    return bool(run_state.runs_of(run_state.states_in(wanted.work_dir), method, wanted.seed))


def refuse_other_seeds(
    args: argparse.Namespace, wanted: argparse.Namespace, unfinished: list[str]
) -> None:
    """With --resume and no kept state of an unfinished method at this seed, refuse when one
    is kept at another seed: a --seed changed by mistake would start them all anew."""
    states = run_state.states_in(wanted.work_dir)
    other = [
        f"{folder.name} (--seed {named['seed']})"
        for folder in run_state.every_run(states)
        if (named := run_state.FOLDER_NAME.fullmatch(folder.name)) and named["method"] in unfinished
    ]
    if other:
        raise CompareError(
            f"--resume: no interrupted run of {', '.join(unfinished)} at --seed {wanted.seed} "
            f"in {wanted.work_dir}; kept: {'; '.join(other)}. Give that --seed, or leave out "
            "--resume and pass --overwrite to run every method anew"
        )


def check_resumed_data(
    args: argparse.Namespace, wanted: argparse.Namespace, finished: dict[str, dict]
) -> None:
    """With --resume, refuse a finished method whose report records other data than this
    comparison learns from, and an interrupted method whose kept state has other settings
    (distill would refuse it in its own flag names). Knowing the data means preparing the
    crops, so it is done only when there is something to check."""
    states = run_state.states_in(wanted.work_dir)
    # any unfinished method may have been stopped: the list's order may have changed
    kept = [m for m in args.methods if m not in finished and has_kept_state(wanted, m)]
    if not kept:
        refuse_other_seeds(args, wanted, [m for m in args.methods if m not in finished])
    if not finished and not kept:
        return
    data, class_names = current_data(wanted)
    for method, report in finished.items():
        if report["settings"]["data"] != data:
            given = "--data" if not wanted.scenes else "--data, --scenes and --negative-thresholds"
            raise CompareError(
                f"--resume: the data changed since {method} finished (its report records "
                f"other crops than {given} give now); delete {args.out / method} to run "
                f"{method} again, or leave out --resume and pass --overwrite to run every "
                "method anew"
            )
    for interrupted in kept:
        wanted.method, wanted.out = interrupted, args.out / interrupted
        settings = distill.run_settings(wanted, data, class_names)
        state = states / run_state.run_key(settings)
        others = [] if state.exists() else run_state.other_runs(state, settings)
        if others:
            anew = " and pass --overwrite" if finished else ""
            raise CompareError(
                f"--resume: no interrupted run of {interrupted} with these data, teacher and "
                f"settings in {wanted.work_dir}; kept runs with other settings: "
                f"{in_own_terms('; '.join(others))}. Give the same flags as that run, or leave "
                f"out --resume{anew} to run every method anew"
            )


def check_before_work(args: argparse.Namespace, passed_on: list[str]) -> dict[str, dict]:
    """Refuse, before any training, what would stop the comparison part way: a bad flag
    for distill, a teacher that cannot serve, an existing table without --overwrite and,
    with --resume, a finished method that does not match (settings or data) or an
    interrupted one kept with other settings. Returns the finished reports by method; the
    teacher is read once, not once per method."""
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
    finished = {}
    try:
        wanted = method_args(args, args.methods[0], passed_on)
        distill_settings.refuse_outputs_in_data(wanted, args.out)  # before anything probes a folder
        class_folders(wanted.data)  # as distill checks them first, but said under our name
        if wanted.scenes:
            require_scenes_layout(wanted.scenes)
        check_writable(args.out / TABLE, args.overwrite or args.resume, make_folder=True)
        distill_settings.check_teacher_source(wanted)
        distill_settings.check_settings(wanted)
        for method in args.methods:  # the methods' distill settings differ in these alone
            wanted.method, wanted.out = method, args.out / method
            report = finished_report(args, method, wanted)
            if report is None:
                distill_settings.check_outputs(wanted)
            else:
                finished[method] = report
        if args.resume:
            check_resumed_data(args, wanted, finished)
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

    With --resume, every method without a report whose training state was kept resumes
    from it: any of them may have been stopped part way (the list's order may differ from
    the stopped run's, and a method whose outputs were deleted runs again before one that
    was stopped). The others start afresh.
    """
    if args.overwrite:  # its rows describe students this run replaces, even if it stops
        (args.out / TABLE).unlink(missing_ok=True)
    rows = []
    for method in args.methods:
        report = finished.get(method)
        if report is not None:
            logging.getLogger(__name__).info("%s finished earlier: its report is kept", method)
            rows.append(row(method, report, None))
            continue
        start = time.perf_counter()
        given = distill.build_parser().parse_args(distill_argv(args, method, passed_on))
        resume = args.resume and has_kept_state(given, method)
        code = distill.main(distill_argv(args, method, passed_on, resume), f"{PROG} ({method})")
        if code in STOPPED:  # distill said what stopped it; say how the comparison goes on
            tell(PROG, f"stopped in {method}; {HOW_TO_GO_ON[args.overwrite]}")
        if code != 0:
            return code
        report = read_report(args.out / method / "report" / "report.json")
        rows.append(row(method, report, (time.perf_counter() - start) / 60))
    return rows


def print_table(rows: list[dict]) -> None:
    say(
        f"\n{'method':15} {'test acc':>9} {'best val':>9} {'mask R':>7} {'no_mask R':>9} "
        f"{'minutes':>8}"
    )
    for r in rows:
        minutes = "earlier" if r["minutes"] is None else f"{r['minutes']:.1f}"
        say(
            f"{r['method']:15} {r['test_accuracy']:9.4f} {r['best_val_acc']:9.4f} "
            f"{r['mask_recall']:7.4f} {r['no_mask_recall']:9.4f} {minutes:>8}"
        )


def main(argv: list[str] | None = None) -> int:
    guard_streams()
    args, passed_on = build_parser().parse_known_args(argv)
    log_to_stderr(logging.INFO)
    try:
        with stop_signals_raise():
            settle_scenes(args)
            finished = check_before_work(args, passed_on)
            rows = compare(args, passed_on, finished)
    except (CompareError, CheckpointError, OutputNameError, ValueError, OSError) as exc:
        error(PROG, describe_error(exc))
        return 2
    except WorkNotSavedError as exc:  # the crops prepared to check the data, as distill says it
        error(PROG, str(exc))
        return 1
    except KeyboardInterrupt as exc:
        said, status = stop_message(exc)
        tell(PROG, f"{said}; {HOW_TO_GO_ON[args.overwrite]}")
        return status
    if isinstance(rows, int):
        return rows
    # The file first, so that a reader leaving early (| head) costs nothing.
    write_text(args.out / TABLE, json.dumps(rows, indent=1), overwrite=True)
    print_table(rows)
    return 0


if __name__ == "__main__":
    sys.exit(exit_status(main(), PROG))
