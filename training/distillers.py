"""KD_Lib's distillers with the defects of version 0.0.32 fixed, on one shared training loop.

Each fix is tested in ``tests/test_distillers.py`` against the unpatched class:

1. the teacher ran with gradients during distillation: its forward pass is now no-grad;
2. ``_evaluate_model`` left the student in eval mode after the first validation, freezing
   BatchNorm statistics for the rest of training: every epoch now starts in train mode;
3. ``VanillaKD`` defaulted to MSE between softened probabilities (and passed KL's arguments
   the wrong way round): it now uses KL divergence of log-probabilities against probabilities;
4. ``nn.KLDivLoss()`` defaulted to reduction 'mean', which divides by the class count too:
   every default is now 'batchmean', the true KL per sample;
5. TensorBoard scalars were logged at step ``epochs`` (the total) instead of the epoch;
6. ``device`` accepted only "cpu" or "cuda" (``"cuda:0"`` left ``self.device`` unset);
7. saving to a bare file name failed in ``os.makedirs('')``;
8. ``MessyCollab`` drew noisy labels from ``data.shape[1]`` (image channels) instead of the
   number of classes, producing labels out of range;
9. ``epoch_loss += loss`` summed tensors, keeping every batch's autograd graph alive.

The loop also adds what KD_Lib lacks: progress bars, a checkpoint each epoch, ``resume``,
an optional LR scheduler, the best weights by validation accuracy kept at the end, and a
stop at the first non-finite loss or weights, before a diverged state is saved.
"""

from __future__ import annotations

import errno
import inspect
import json
import logging
import os
import random
from copy import deepcopy
from pathlib import Path
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm import tqdm

from app.atomic import atomic_path
from models.torch_files import save_torch
from training import kd_compat
from training.outputs import WorkNotSavedError

log = logging.getLogger(__name__)

BatchLoss = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


def kl_loss() -> nn.KLDivLoss:
    return nn.KLDivLoss(reduction="batchmean")


class DivergedError(ArithmeticError):
    """Training produced a non-finite loss or weights; nothing from it should be kept."""

    def __init__(self, role: str, epoch: int, what: str):
        super().__init__(f"{role} training diverged: {what} at epoch {epoch}")
        self.role, self.epoch = role, epoch


class StateNotSavedError(WorkNotSavedError):
    """An epoch's state could not be written. The state file is replaced whole or not at
    all, so a failure at epoch N leaves the role's state of epoch N - 1 when there was one,
    and none after a failure in its first epoch.

    Attributes:
        failure: what could not be saved, and why.
        kept: what of the role is left for --resume.
        remedy: "" or, for a full disk, where to free space (begins with "; ").
    """

    def __init__(self, role: str, epoch: int, path: Path, exc: OSError):
        self.failure = (
            f"could not save the {role} state of epoch {epoch} to {path} ({exc.strerror or exc})"
        )
        if epoch > 1 and path.is_file():
            self.kept = (
                f"the {role} state of epoch {epoch - 1} is kept, and --resume goes on from it"
            )
        else:
            self.kept = (
                f"no {role} state is kept yet, so --resume would train the {role} from its "
                "first epoch"
            )
        full = exc.errno in (errno.ENOSPC, errno.EDQUOT)
        self.remedy = f"; free space on the disk of {path.parent} first" if full else ""
        super().__init__(f"{self.failure}; {self.kept}{self.remedy}")


class ResumeError(ValueError):
    """The state ``--resume`` would continue from cannot be read."""


# What a per-epoch state file holds; one without all of these cannot be resumed from.
STATE_KEYS = {"epoch", "model", "optimizer", "scheduler", "best_acc", "best_model", "history"}

# The device types training runs on; torch parses more (xla, meta, ...) that it cannot use here.
TRAINING_DEVICES = ("cpu", "cuda", "mps")


def as_device(device: str | torch.device) -> torch.device:
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``; CUDA falls back to CPU with a warning.

    Raises:
        ValueError: for a spelling torch does not parse, a device type training cannot use,
            an unavailable MPS, or a CUDA index past the devices this machine has.
    """
    if isinstance(device, str):
        device = device.lower()  # CUDA and cuda alike, as the app takes them
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        parsed = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(
            f"invalid device {str(device)!r}: expected auto, cpu, cuda, cuda:N or mps"
        ) from None
    if parsed.type not in TRAINING_DEVICES:
        raise ValueError(f"device {str(device)!r}: training runs on cpu, cuda or mps only")
    if parsed.type == "mps" and not torch.backends.mps.is_available():
        raise ValueError(f"device {str(device)!r}: MPS is not available on this machine")
    if parsed.type == "cuda" and not torch.cuda.is_available():
        log.warning("CUDA is not available; training on the CPU")
        return torch.device("cpu")
    if parsed.type == "cuda" and (parsed.index or 0) >= torch.cuda.device_count():
        raise ValueError(
            f"device {str(device)!r}: this machine has {torch.cuda.device_count()} CUDA "
            "device(s), numbered from 0"
        )
    return parsed


def noisy_labels(labels: torch.Tensor, num_classes: int, rate: float) -> torch.Tensor:
    """Replace each label, with probability ``rate``, by a different, valid class (fix 8).

    KD_Lib flips the first ``int(rate * batch)`` labels, which is none at all for its
    default rate of 0.02 below batches of 50: the method then never did what it is for.
    """
    flip = torch.rand(labels.shape[0], device=labels.device) < rate
    shift = torch.randint(1, max(num_classes, 2), labels.shape, device=labels.device)
    return torch.where(flip, (labels + shift) % num_classes, labels)


class TrainingLoop:
    """The loop shared by every fixed distiller. Set attributes before training:

    Attributes:
        progress: show tqdm bars.
        checkpoint_dir: where ``ROLE-state.pt`` is written after every epoch (None: nowhere).
        resume: continue from the saved state of a role when one exists.
        schedulers: optional LR scheduler per role, stepped once per epoch.
        label_smoothing: smoothing of the hard-label cross-entropy (teachers, and the
            student's hard term where the distiller has one of its own).
        history: per role, one dict per epoch (loss, train and validation accuracy, lr).
    """

    progress: bool = True
    checkpoint_dir: Path | None = None
    resume: bool = False
    label_smoothing: float = 0.0

    def hard_loss(self, logits: torch.Tensor, label: torch.Tensor) -> torch.Tensor:
        """Cross-entropy against the true labels, smoothed by ``label_smoothing``."""
        return F.cross_entropy(logits, label, label_smoothing=self.label_smoothing)

    def _setup_loop(self, device: str | torch.device) -> None:
        self.device = as_device(device)
        self.schedulers: dict[str, object] = {}
        self.history: dict[str, list[dict]] = {}

    def _state_path(self, role: str) -> Path | None:
        return Path(self.checkpoint_dir) / f"{role}-state.pt" if self.checkpoint_dir else None

    def _save_state(self, role: str, state: dict) -> None:
        path = self._state_path(role)
        if path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(path) as tmp:
                save_torch(state, tmp)
        except OSError as exc:
            raise StateNotSavedError(role, state["epoch"], path, exc) from None

    def _load_state(self, role: str) -> dict | None:
        path = self._state_path(role)
        if not (self.resume and path and path.exists()):
            return None
        log.info("resuming %s from %s", role, path)
        try:
            state = torch.load(path, map_location="cpu", weights_only=True)
        except Exception:  # noqa: BLE001 - a cut-off zip makes torch raise anything
            state = None
        if not isinstance(state, dict) or not STATE_KEYS <= state.keys():
            raise ResumeError(
                f"the saved {role} state {path} is damaged; run without --resume to start anew"
            )
        return state

    def _random_state(self) -> dict:
        """What draws the next epoch's shuffle, augmentations and noise, saved with each
        epoch so that a resumed run goes on as one never stopped would (same seed, same
        figures: what a comparison of methods relies on)."""
        # Python's own generator too: KD_Lib's NoisyTeacher and MessyCollab draw from it
        state = {"torch": torch.get_rng_state(), "python": json.dumps(random.getstate())}
        if torch.cuda.is_available():
            state["cuda"] = torch.cuda.get_rng_state_all()
        if getattr(self.train_loader, "generator", None) is not None:
            state["loader"] = self.train_loader.generator.get_state()
        rng = getattr(self.train_loader.dataset, "rng", None)
        if isinstance(rng, np.random.Generator):  # as JSON: its state holds 128-bit numbers
            state["augment"] = json.dumps(rng.bit_generator.state)
        return state

    def _restore_random(self, state: dict) -> None:
        """Put back what ``_random_state`` saved; states saved before it existed have none,
        and a state saved on another number of GPUs leaves theirs as they are."""
        if "torch" in state:
            torch.set_rng_state(state["torch"])
        if "python" in state:
            version, internal, gauss = json.loads(state["python"])
            random.setstate((version, tuple(internal), gauss))
        cuda = state.get("cuda")
        if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
        if "loader" in state and getattr(self.train_loader, "generator", None) is not None:
            self.train_loader.generator.set_state(state["loader"])
        rng = getattr(self.train_loader.dataset, "rng", None)
        if "augment" in state and isinstance(rng, np.random.Generator):
            rng.bit_generator.state = json.loads(state["augment"])

    def val_accuracy(self, model: nn.Module) -> float:
        was_training = model.training
        model.eval()
        correct = total = 0
        with torch.no_grad():
            for data, target in self.val_loader:
                out = model(data.to(self.device))
                out = out[0] if isinstance(out, tuple) else out
                correct += (out.argmax(1).cpu() == target).sum().item()
                total += target.numel()
        model.train(was_training)
        return correct / max(total, 1)

    def fit(
        self,
        role: str,
        model: nn.Module,
        optimizer: torch.optim.Optimizer,
        epochs: int,
        batch_loss: BatchLoss,
    ) -> nn.Module:
        """Train ``model`` for ``epochs`` and load its best validation weights into it.

        Raises:
            DivergedError: at a non-finite batch loss, or weights gone non-finite in an epoch;
                the state of that epoch is not saved.
        """
        scheduler = self.schedulers.get(role)
        state = self._load_state(role)
        start, best_acc, best_weights = 0, -1.0, deepcopy(model.state_dict())
        history = self.history.setdefault(role, [])
        if state is not None:
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            if scheduler is not None and state.get("scheduler"):
                scheduler.load_state_dict(state["scheduler"])
                if hasattr(scheduler, "T_max"):  # a resumed run may be given another length
                    scheduler.T_max = epochs
            start, best_acc, best_weights = state["epoch"], state["best_acc"], state["best_model"]
            history[:] = state["history"]
            self._restore_random(state.get("random", {}))
        epochs_bar = tqdm(
            range(start, epochs),
            desc=f"{role} epochs",
            unit="epoch",
            disable=not self.progress,
            initial=start,
            total=epochs,
        )
        for ep in epochs_bar:
            model.train()  # fix 2: validation must not leave BatchNorm frozen
            epoch_loss, correct, seen = 0.0, 0, 0
            batches = tqdm(
                self.train_loader,
                desc=f"{role} {ep + 1}/{epochs}",
                unit="batch",
                leave=False,
                disable=not self.progress,
            )
            for data, label in batches:
                data, label = data.to(self.device), label.to(self.device)
                loss, logits = batch_loss(data, label)
                if not torch.isfinite(loss):
                    raise DivergedError(role, ep + 1, f"loss is {loss.item()}")
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                epoch_loss += loss.item()  # fix 9: a float, not the graph
                correct += (logits.argmax(1) == label).sum().item()
                seen += label.numel()
            if not all(torch.isfinite(p).all() for p in model.parameters()):
                raise DivergedError(role, ep + 1, "the weights are not finite")
            lr = optimizer.param_groups[0]["lr"]
            if scheduler is not None:
                scheduler.step()
            val_acc = self.val_accuracy(model)
            if val_acc > best_acc:
                best_acc, best_weights = val_acc, deepcopy(model.state_dict())
            record = {
                "epoch": ep + 1,
                "loss": epoch_loss / max(len(self.train_loader), 1),
                "train_acc": correct / max(seen, 1),
                "val_acc": val_acc,
                "lr": lr,
            }
            history.append(record)
            self._log_scalars(role, record, ep)
            self._save_state(
                role,
                {
                    "epoch": ep + 1,
                    "model": model.state_dict(),
                    "optimizer": optimizer.state_dict(),
                    "scheduler": scheduler.state_dict() if scheduler is not None else {},
                    "best_acc": best_acc,
                    "best_model": best_weights,
                    "history": history,
                    "random": self._random_state(),
                },
            )
            # Said once the state is saved: a Ctrl-C upon reading it keeps this epoch.
            epochs_bar.set_postfix(loss=f"{record['loss']:.4f}", val=f"{val_acc:.4f}")
            log.info(
                "%s epoch %d: loss %.4f, train acc %.4f, val acc %.4f",
                role,
                ep + 1,
                record["loss"],
                record["train_acc"],
                val_acc,
            )
        model.load_state_dict(best_weights)
        return model

    def _log_scalars(self, role: str, record: dict, epoch: int) -> None:
        if getattr(self, "log", False) and getattr(self, "writer", None) is not None:
            self.writer.add_scalar(f"Training loss/{role}", record["loss"], epoch)  # fix 5
            self.writer.add_scalar(f"Training accuracy/{role}", record["train_acc"], epoch)
            self.writer.add_scalar(f"Validation accuracy/{role}", record["val_acc"], epoch)

    @staticmethod
    def _save_weights(model: nn.Module, path: str | os.PathLike) -> None:
        folder = os.path.dirname(os.fspath(path))
        if folder:  # fix 7: a bare file name has no folder to create
            os.makedirs(folder, exist_ok=True)
        with atomic_path(Path(path)) as tmp:
            save_torch(model.state_dict(), tmp)


class FixedBase(TrainingLoop):
    """Fixes shared by the BaseClass distillers; mixed in before the KD_Lib class."""

    def __init__(
        self,
        teacher_model,
        student_model,
        train_loader,
        val_loader,
        optimizer_teacher,
        optimizer_student,
        device="cpu",
        **kwargs,
    ):
        self._init_fixed(
            device,
            teacher_model=teacher_model,
            student_model=student_model,
            train_loader=train_loader,
            val_loader=val_loader,
            optimizer_teacher=optimizer_teacher,
            optimizer_student=optimizer_student,
            **kwargs,
        )

    def _init_fixed(self, device: str | torch.device, **kwargs) -> None:
        kwargs.setdefault("loss_fn", kl_loss())  # fixes 3 and 4
        # fix 6: the base class only understands "cpu"/"cuda"; give it "cpu", then move.
        super().__init__(device="cpu", **kwargs)
        self._setup_loop(device)
        self.teacher_model = self.teacher_model.to(self.device)
        self.student_model = self.student_model.to(self.device)
        self.loss_fn = self.loss_fn.to(self.device)

    def teacher_labels(self, label: torch.Tensor) -> torch.Tensor:
        return label

    def student_labels(self, label: torch.Tensor) -> torch.Tensor:
        return label

    def train_teacher(
        self,
        epochs: int = 20,
        plot_losses: bool = False,
        save_model: bool = False,
        save_model_pth: str = "teacher.pt",
    ) -> nn.Module:
        def step(data, label):
            logits = self.teacher_model(data)
            return self.hard_loss(logits, self.teacher_labels(label)), logits

        self.fit("teacher", self.teacher_model, self.optimizer_teacher, epochs, step)
        if save_model:
            self._save_weights(self.teacher_model, save_model_pth)
        return self.teacher_model

    def _student_step(self, teacher: nn.Module) -> BatchLoss:
        def step(data, label):
            teacher.eval()
            with torch.no_grad():  # fix 1: the teacher is frozen during distillation
                teacher_logits = teacher(data)
            logits = self.student_model(data)
            loss = self.calculate_kd_loss(logits, teacher_logits, self.student_labels(label))
            return loss, logits

        return step

    def train_student(
        self,
        epochs: int = 10,
        plot_losses: bool = False,
        save_model: bool = False,
        save_model_pth: str = "student.pt",
    ) -> nn.Module:
        self.fit(
            "student",
            self.student_model,
            self.optimizer_student,
            epochs,
            self._student_step(self.teacher_model),
        )
        if save_model:
            self._save_weights(self.student_model, save_model_pth)
        return self.student_model


class FixedVanillaKD(FixedBase, kd_compat.VanillaKD):
    """Hinton et al.'s distillation: soft-target KL at temperature T plus hard-label CE."""

    def calculate_kd_loss(self, y_pred_student, y_pred_teacher, y_true):
        soft = self.loss_fn(
            F.log_softmax(y_pred_student / self.temp, dim=1),
            F.softmax(y_pred_teacher / self.temp, dim=1),
        )
        hard = self.hard_loss(y_pred_student, y_true)
        return (1 - self.distil_weight) * hard + self.distil_weight * self.temp**2 * soft


class FixedNoisyTeacher(FixedBase, kd_compat.NoisyTeacher):
    """Distillation from a teacher whose logits get multiplicative Gaussian noise."""


class FixedMessyCollab(FixedBase, kd_compat.MessyCollab):
    """Distillation with a share of labels flipped to another class (student, teacher or both)."""

    def teacher_labels(self, label):
        if self.method not in ("T", "TS"):
            return label
        return noisy_labels(label, self._class_count(), self.noise_rate)

    def student_labels(self, label):
        if self.method not in ("S", "TS"):
            return label
        return noisy_labels(label, self._class_count(), self.noise_rate)

    def _class_count(self) -> int:
        if not hasattr(self, "_classes"):
            last = [m for m in self.student_model.modules() if isinstance(m, nn.Linear)][-1]
            self._classes = last.out_features
        return self._classes


class FixedSelfTraining(TrainingLoop, kd_compat.SelfTraining):
    """Teacher-free distillation: a copy of the student, trained first, teaches the student.

    KD_Lib hard-codes SGD(lr=0.01) for the self-teacher; here it gets the same kind of
    optimizer, with the same settings, as the student.
    """

    def __init__(
        self, student_model, train_loader, val_loader, optimizer_student, device="cpu", **kwargs
    ):
        kwargs.setdefault("loss_fn", kl_loss())
        super().__init__(
            student_model, train_loader, val_loader, optimizer_student, device="cpu", **kwargs
        )
        self._setup_loop(device)
        self.student_model = self.student_model.to(self.device)
        self.loss_fn = self.loss_fn.to(self.device)

    def train_student(
        self,
        epochs: int = 10,
        plot_losses: bool = False,
        save_model: bool = False,
        save_model_pth: str = "student.pt",
    ) -> nn.Module:
        self_teacher = deepcopy(self.student_model)
        kind = type(self.optimizer_student)
        accepted = inspect.signature(kind.__init__).parameters
        # defaults can hold settings the constructor no longer takes (AdamW's own flag)
        settings = {k: v for k, v in self.optimizer_student.defaults.items() if k in accepted}
        optimizer = kind(self_teacher.parameters(), **settings)

        def teacher_step(data, label):
            logits = self_teacher(data)
            return self.hard_loss(logits, label), logits

        self.fit("self_teacher", self_teacher, optimizer, epochs, teacher_step)

        def student_step(data, label):
            self_teacher.eval()
            with torch.no_grad():
                teacher_logits = self_teacher(data)
            logits = self.student_model(data)
            return self.calculate_kd_loss(logits, teacher_logits, label), logits

        self.fit("student", self.student_model, self.optimizer_student, epochs, student_step)
        if save_model:
            self._save_weights(self.student_model, save_model_pth)
        return self.student_model


DISTILLERS = {
    "vanilla": FixedVanillaKD,
    "noisy-teacher": FixedNoisyTeacher,
    "self-training": FixedSelfTraining,
    "messy-collab": FixedMessyCollab,
}
