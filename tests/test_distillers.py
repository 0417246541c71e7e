"""Each KD_Lib 0.0.32 defect we rely on: shown on the unpatched class, fixed in ours.

Every test runs the same check on both classes; the unpatched half proves the check can fail.
"""

from __future__ import annotations

import errno
import logging
import os
import random

import numpy as np
import pytest
import torch
import torch.nn as nn
from torch.utils.data import DataLoader, TensorDataset

from training import kd_compat
from training.distillers import (
    DivergedError,
    FixedMessyCollab,
    FixedNoisyTeacher,
    FixedSelfTraining,
    FixedVanillaKD,
    ResumeError,
    as_device,
    noisy_labels,
)
from training.outputs import WorkNotSavedError


def tiny_net(classes: int = 2) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.BatchNorm2d(4),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(4, classes),
    )


def loaders():
    g = torch.Generator().manual_seed(0)
    x, y = torch.randn(64, 3, 8, 8, generator=g), torch.randint(0, 2, (64,), generator=g)
    data = TensorDataset(x, y)
    return DataLoader(data, batch_size=16), DataLoader(data, batch_size=32)


def make(cls, **kwargs):
    torch.manual_seed(0)
    teacher, student = tiny_net(), tiny_net()
    train, val = loaders()
    distiller = cls(
        teacher,
        student,
        train,
        val,
        torch.optim.SGD(teacher.parameters(), 0.01),
        torch.optim.SGD(student.parameters(), 0.01),
        **kwargs,
    )
    distiller.progress = False
    return distiller


def quietly_train_student(distiller, epochs=1, **kwargs):
    kwargs.setdefault("plot_losses", False)
    kwargs.setdefault("save_model", False)
    distiller.train_student(epochs=epochs, **kwargs)


@pytest.mark.parametrize("cls, flawed", [(kd_compat.VanillaKD, True), (FixedVanillaKD, False)])
def test_teacher_gets_no_gradients_during_distillation(cls, flawed):
    distiller = make(cls)
    quietly_train_student(distiller)
    has_grad = any(p.grad is not None for p in distiller.teacher_model.parameters())
    assert has_grad is flawed


@pytest.mark.parametrize("cls, flawed", [(kd_compat.VanillaKD, True), (FixedVanillaKD, False)])
def test_student_trains_in_train_mode_after_validation(cls, flawed):
    distiller = make(cls)
    modes = []
    distiller.student_model.register_forward_hook(
        lambda module, inputs, output: (
            modes.append(module.training) if torch.is_grad_enabled() else None
        )
    )
    quietly_train_student(distiller, epochs=2)
    assert len(modes) == 8  # 4 batches x 2 epochs
    assert all(modes) is not flawed


@pytest.mark.parametrize("cls, flawed", [(kd_compat.VanillaKD, True), (FixedVanillaKD, False)])
def test_vanilla_loss_is_kl_divergence(cls, flawed):
    distiller = make(cls, temp=2.0, distil_weight=1.0)
    student, teacher = torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 2.0]])
    p = torch.softmax(teacher / 2, 1)
    q_log = torch.log_softmax(student / 2, 1)
    expected = 4.0 * (p * (p.log() - q_log)).sum()
    got = distiller.calculate_kd_loss(student, teacher, torch.tensor([0]))
    assert torch.isclose(got, expected, atol=1e-6) is not flawed


@pytest.mark.parametrize(
    "cls, flawed",
    [
        (kd_compat.MessyCollab, True),
        (FixedMessyCollab, False),
        (kd_compat.NoisyTeacher, True),
        (FixedNoisyTeacher, False),
    ],
)
def test_kl_default_is_batchmean(cls, flawed):
    distiller = make(cls)
    loss = distiller.loss_fn
    assert (isinstance(loss, nn.KLDivLoss) and loss.reduction == "batchmean") is not flawed


class Recorder:
    """Stands in for TensorBoard's SummaryWriter, keeping the steps it is given."""

    def __init__(self):
        self.steps: list[int] = []

    def add_scalar(self, tag, value, step):
        self.steps.append(step)


@pytest.mark.parametrize("cls, flawed", [(kd_compat.VanillaKD, True), (FixedVanillaKD, False)])
def test_tensorboard_step_is_the_epoch(cls, flawed, tmp_path):
    distiller = make(cls)
    distiller.log, distiller.writer = True, Recorder()
    quietly_train_student(distiller, epochs=3)
    steps = sorted(set(distiller.writer.steps))
    assert (steps == [0, 1, 2]) is not flawed


@pytest.mark.parametrize("cls, flawed", [(kd_compat.VanillaKD, True), (FixedVanillaKD, False)])
@pytest.mark.parametrize("device", [torch.device("cpu"), "auto"])
def test_device_accepts_torch_spellings(cls, flawed, device):
    if flawed:
        with pytest.raises(AttributeError):
            make(cls, device=device)
    else:
        assert make(cls, device=device).device.type in ("cpu", "cuda")


@pytest.mark.parametrize("cls, flawed", [(kd_compat.VanillaKD, True), (FixedVanillaKD, False)])
def test_save_to_bare_file_name(cls, flawed, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    distiller = make(cls)
    if flawed:
        with pytest.raises(FileNotFoundError):
            quietly_train_student(distiller, save_model=True, save_model_pth="student.pt")
    else:
        quietly_train_student(distiller, save_model=True, save_model_pth="student.pt")
        state = torch.load("student.pt", weights_only=True)
        assert set(state) == set(distiller.student_model.state_dict())


@pytest.mark.parametrize("cls, flawed", [(kd_compat.MessyCollab, True), (FixedMessyCollab, False)])
def test_messy_collab_noisy_labels_stay_valid(cls, flawed):
    random.seed(3)
    distiller = make(cls, noise_rate=1.0, method="S")
    if flawed:
        with pytest.raises((IndexError, RuntimeError)):
            quietly_train_student(distiller)
    else:
        quietly_train_student(distiller)
        labels = torch.tensor([0, 1, 0, 1, 1, 0])
        noisy = noisy_labels(labels, 2, 1.0)
        assert torch.equal(noisy, 1 - labels)


def test_messy_collab_flips_its_share_of_labels_in_small_batches():
    # KD_Lib's default rate of 0.02 flipped no label at all in batches under 50.
    torch.manual_seed(0)
    labels = torch.randint(0, 3, (32,))
    flipped = sum(int((noisy_labels(labels, 3, 0.02) != labels).sum()) for _ in range(2000))
    assert 0.015 < flipped / (2000 * 32) < 0.025
    assert all(0 <= int(x) < 3 for x in noisy_labels(labels, 3, 0.5))


@pytest.mark.parametrize("cls, flawed", [(kd_compat.MessyCollab, True), (FixedMessyCollab, False)])
def test_epoch_loss_does_not_hold_the_graph(cls, flawed, monkeypatch):
    import KD_Lib.KD.vision.noisy.messy_collab as messy

    plotted = []
    monkeypatch.setattr(messy.plt, "plot", lambda values: plotted.extend(values))
    distiller = make(cls)
    quietly_train_student(distiller, plot_losses=True)
    losses = plotted if flawed else [r["loss"] for r in distiller.history["student"]]
    assert any(isinstance(v, torch.Tensor) and v.grad_fn is not None for v in losses) is flawed


def test_best_weights_are_kept_and_resume_continues(tmp_path):
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = tmp_path
    quietly_train_student(distiller, epochs=2)
    state = torch.load(tmp_path / "student-state.pt", weights_only=True)
    assert state["epoch"] == 2 and len(state["history"]) == 2
    best = max(r["val_acc"] for r in distiller.history["student"])
    assert distiller.val_accuracy(distiller.student_model) == pytest.approx(best)

    again = make(FixedVanillaKD)
    again.checkpoint_dir, again.resume = tmp_path, True
    quietly_train_student(again, epochs=3)
    assert [r["epoch"] for r in again.history["student"]] == [1, 2, 3]


def test_an_epoch_is_said_only_once_its_state_is_saved(tmp_path, caplog, monkeypatch):
    """A Ctrl-C right after the epoch's line must not lose that epoch: the line comes once
    its state is on disk (a breaker lost epoch 1 three times out of three before)."""
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = tmp_path
    said_before_saving = []
    save = distiller._save_state

    def saving(role, state):
        lines = [r.getMessage() for r in caplog.records]
        said_before_saving.append(any(f"epoch {state['epoch']}:" in m for m in lines))
        save(role, state)

    monkeypatch.setattr(distiller, "_save_state", saving)
    with caplog.at_level(logging.INFO, logger="training.distillers"):
        quietly_train_student(distiller, epochs=2)
    assert said_before_saving == [False, False]
    assert sum("student epoch" in r.getMessage() for r in caplog.records) == 2


class NoisyCrops(torch.utils.data.Dataset):
    """Random images whose noise comes from the dataset's own generator, as CropDataset's
    augmentations do."""

    def __init__(self):
        g = torch.Generator().manual_seed(0)
        self.x, self.y = (
            torch.randn(64, 3, 8, 8, generator=g),
            torch.randint(0, 2, (64,), generator=g),
        )
        self.rng = np.random.default_rng(0)

    def __len__(self):
        return len(self.y)

    def __getitem__(self, i):
        noise = torch.as_tensor(self.rng.normal(0, 0.5, (3, 8, 8)), dtype=torch.float32)
        return self.x[i] + noise, self.y[i]


def shuffled_noisy_teacher() -> FixedNoisyTeacher:
    """A NoisyTeacher (torch's global generator draws its noise) on shuffled, augmented data."""
    distiller = make(FixedNoisyTeacher, alpha=0.5, noise_variance=0.5)
    random.seed(0)  # as training.distill seeds it
    data = NoisyCrops()
    generator = torch.Generator().manual_seed(0)
    distiller.train_loader = DataLoader(data, batch_size=16, shuffle=True, generator=generator)
    return distiller


def test_a_resumed_run_goes_on_as_one_never_stopped(tmp_path):
    """Shuffle, augmentation and noise go on from where the stopped run left them, so the
    same seed gives the same figures however often a run is stopped."""
    whole = shuffled_noisy_teacher()
    whole.checkpoint_dir = tmp_path / "whole"
    quietly_train_student(whole, epochs=3)

    stopped = shuffled_noisy_teacher()
    stopped.checkpoint_dir = tmp_path / "stopped"
    quietly_train_student(stopped, epochs=1)
    resumed = shuffled_noisy_teacher()
    resumed.checkpoint_dir, resumed.resume = tmp_path / "stopped", True
    quietly_train_student(resumed, epochs=3)
    losses = [[r["loss"] for r in d.history["student"]] for d in (whole, resumed)]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6, abs=1e-9)


def test_self_training_distils_from_a_trained_copy():
    torch.manual_seed(0)
    train, val = loaders()
    student = tiny_net()
    optimizer = torch.optim.AdamW(student.parameters(), 0.01)  # as training.distill uses
    distiller = FixedSelfTraining(student, train, val, optimizer)
    distiller.progress = False
    quietly_train_student(distiller, epochs=2)
    assert [len(distiller.history[r]) for r in ("self_teacher", "student")] == [2, 2]
    assert all(isinstance(r["loss"], float) for r in distiller.history["student"])


@pytest.mark.parametrize("spelling", ["cuda:x", "tpu", "", "cuda:-1", "xla", "meta"])
def test_a_device_training_cannot_use_is_a_one_line_value_error(spelling):
    with pytest.raises(ValueError, match=f"device '{spelling}'") as caught:
        as_device(spelling)
    assert "\n" not in str(caught.value)


@pytest.mark.skipif(torch.cuda.is_available(), reason="the fallback is for machines without CUDA")
@pytest.mark.parametrize("spelling", ["cuda", "cuda:1"])
def test_cuda_without_cuda_warns_and_trains_on_the_cpu(spelling, caplog):
    assert as_device(spelling) == torch.device("cpu")
    assert "CUDA is not available" in caplog.text


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_cuda_index_past_the_devices_is_refused():
    assert as_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="numbered from 0"):
        as_device(f"cuda:{torch.cuda.device_count()}")


def test_a_diverging_loss_stops_training_before_its_state_is_saved(tmp_path):
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = tmp_path
    distiller.optimizer_student.param_groups[0]["lr"] = 1e30
    with pytest.raises(
        DivergedError, match=r"student training diverged: loss is (nan|inf) at epoch 1"
    ):
        quietly_train_student(distiller, epochs=2)
    assert not (tmp_path / "student-state.pt").exists()


def test_weights_gone_non_finite_in_the_last_step_stop_training(tmp_path):
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = tmp_path
    distiller.train_loader = [next(iter(distiller.train_loader))]  # one step, loss still finite
    distiller.optimizer_student.param_groups[0]["lr"] = float("inf")
    with pytest.raises(DivergedError, match="the weights are not finite at epoch 1"):
        quietly_train_student(distiller)
    assert not (tmp_path / "student-state.pt").exists()


def test_a_damaged_state_is_named_instead_of_resumed(tmp_path):
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = tmp_path
    quietly_train_student(distiller, epochs=1)
    state = tmp_path / "student-state.pt"
    state.write_bytes(state.read_bytes()[: state.stat().st_size // 2])
    again = make(FixedVanillaKD)
    again.checkpoint_dir, again.resume = tmp_path, True
    with pytest.raises(ResumeError, match="saved student state .* is damaged; run without"):
        quietly_train_student(again, epochs=2)


def test_a_state_that_cannot_be_saved_stops_training_in_one_line(tmp_path):
    blocked = tmp_path / "state"
    blocked.write_text("a file where the state folder should be")
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = blocked
    with pytest.raises(WorkNotSavedError) as info:
        quietly_train_student(distiller, epochs=1)
    message = str(info.value)
    assert f"could not save the student state of epoch 1 to {blocked / 'student-state.pt'}" in (
        message
    )
    assert message.endswith(
        "no student state is kept yet, so --resume would train the student from its first epoch"
    )
    assert "\n" not in message and blocked.read_text().startswith("a file")


@pytest.mark.parametrize(
    "full_at, kept",
    [
        (
            1,
            "no student state is kept yet, so --resume would train the student from its "
            "first epoch",
        ),
        (3, "the student state of epoch 2 is kept, and --resume goes on from it"),
    ],
)
def test_a_full_disk_says_which_epoch_state_is_kept(tmp_path, monkeypatch, full_at, kept):
    """A state that cannot be saved leaves the one before it; in the first epoch there is
    none, and the message must not promise one."""
    from training import distillers

    real_save = distillers.save_torch

    def save_until_full(state, path):
        if state["epoch"] == full_at:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        real_save(state, path)

    monkeypatch.setattr(distillers, "save_torch", save_until_full)
    distiller = make(FixedVanillaKD)
    distiller.checkpoint_dir = tmp_path
    with pytest.raises(WorkNotSavedError) as info:
        quietly_train_student(distiller, epochs=4)
    state = tmp_path / "student-state.pt"
    assert str(info.value) == (
        f"could not save the student state of epoch {full_at} to {state} (No space left on "
        f"device); {kept}; free space on the disk of {tmp_path} first"
    )
    kept_epochs = [torch.load(state, weights_only=True)["epoch"]] if state.exists() else []
    assert kept_epochs == ([full_at - 1] if full_at > 1 else [])


def test_a_device_in_capitals_is_the_same_device():
    assert as_device("CPU") == torch.device("cpu")
    with pytest.raises(ValueError, match="expected auto, cpu, cuda, cuda:N or mps"):
        as_device("cuda:00")
