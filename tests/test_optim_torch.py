"""Against ``torch.optim`` itself (optional: skipped when torch is not installed).

Trajectories in float64 over 30 steps of the same gradients, every optimizer and option; the learning-rate
schedules against ``torch.optim.lr_scheduler``; clipping against ``torch.nn.utils``.
"""

import math
import warnings

import numpy as np
import pytest

from microdl.optim import (
    OPTIMIZERS,
    CosineWithWarmup,
    ExponentialLR,
    ReduceLROnPlateau,
    StepLR,
    clip_grad_norm,
    clip_grad_value,
)
from tests.optim.naive import CASES, make_problem

torch = pytest.importorskip("torch")

TORCH_CLASSES = {"gd": "SGD", "sgd": "SGD", "adagrad": "Adagrad", "rmsprop": "RMSprop", "adadelta": "Adadelta",
                 "adam": "Adam", "adamw": "AdamW"}
STEPS = 30


def _torch_trajectory(name, hyper, theta0, grads):
    p = torch.tensor(theta0, dtype=torch.float64, requires_grad=True)
    opt = getattr(torch.optim, TORCH_CLASSES[name])([p], **hyper)
    history = np.empty(grads.shape)
    for t, g in enumerate(grads):
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        history[t] = p.detach().numpy()
    return history


@pytest.mark.parametrize("backend", ["numpy", "cpu"])
@pytest.mark.parametrize(("case_id", "name", "hyper"), CASES, ids=[c[0] for c in CASES])
def test_trajectory_matches_torch_optim(case_id, name, hyper, backend):
    theta0, grads = make_problem(n=37, steps=STEPS, seed=2)
    expected = _torch_trajectory(name, hyper, theta0, grads)
    theta = theta0.copy()
    opt = OPTIMIZERS[name](theta, backend=backend, **hyper)
    history = np.empty(grads.shape)
    for t, g in enumerate(grads):
        opt.step(g)
        history[t] = theta
    # torch evaluates the same documented formulas (in its own order): a few ulp per step apart. The absolute
    # floor is for elements whose trajectory crosses 0 (see test_optim_rules.py).
    np.testing.assert_allclose(history, expected, rtol=1e-10, atol=1e-13)


def test_defaults_match_torch():
    # Same names and same defaults: constructed with no hyperparameters, both take the same steps.
    theta0, grads = make_problem(n=5, steps=10, seed=3)
    for name in TORCH_CLASSES:
        theta = theta0.copy()
        opt = OPTIMIZERS[name](theta, backend="numpy")
        for g in grads:
            opt.step(g)
        np.testing.assert_allclose(theta, _torch_trajectory(name, {}, theta0, grads)[-1], rtol=1e-10,
                                   err_msg=name)


# -- schedules --------------------------------------------------------------------------------------------
def _torch_lrs(make_scheduler, epochs, base_lr=0.1, metrics=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=base_lr)
    scheduler = make_scheduler(opt)
    lrs = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "scheduler.step() before optimizer.step()"
        for epoch in range(epochs):
            lrs.append(opt.param_groups[0]["lr"])
            scheduler.step(*(() if metrics is None else (metrics[epoch],)))
    return lrs


@pytest.mark.parametrize(
    ("ours", "theirs"),
    [
        (StepLR(step_size=3, gamma=0.3), lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3)),
        (ExponentialLR(gamma=0.8), lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
        (CosineWithWarmup(total_epochs=12, min_lr=0.001),
         lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.001)),
        (CosineWithWarmup(total_epochs=12, warmup_epochs=3, min_lr=0.001),
         lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
             torch.optim.lr_scheduler.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3),
             torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=9, eta_min=0.001)], milestones=[3])),
    ],
    ids=["step", "exponential", "cosine", "cosine-warmup"],
)
def test_schedule_matches_torch(ours, theirs):
    epochs = 13  # through the end of the cosine (torch's would rise again after it; ours holds min_lr)
    expected = _torch_lrs(theirs, epochs)
    got = [ours.lr_at(epoch, 0.1) for epoch in range(epochs)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize(("patience", "cooldown", "threshold", "min_lr"),
                         [(0, 0, 1e-4, 0.0), (2, 0, 1e-4, 0.0), (1, 2, 1e-2, 0.0), (3, 1, 0.0, 0.02)])
def test_reduce_on_plateau_matches_torch(patience, cooldown, threshold, min_lr):
    rng = np.random.default_rng(patience * 10 + cooldown)
    # a noisy, slowly flattening loss: long plateaus and occasional improvements
    metrics = list(1.0 / np.arange(1, 61) + rng.normal(0, 0.02, 60))
    hyper = {"factor": 0.5, "patience": patience, "cooldown": cooldown, "threshold": threshold, "min_lr": min_lr}
    expected = _torch_lrs(lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="min", **hyper), 60,
                          metrics=metrics)
    ours = ReduceLROnPlateau(**hyper)
    # torch steps on the loss of epoch e and then sets the rate of epoch e + 1, which lr_at receives with it
    got = [ours.lr_at(0, 0.1)] + [ours.lr_at(e + 1, 0.1, metrics[e]) for e in range(59)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert min(got) < 0.1


# -- clipping ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("max_norm", [0.5, 3.0, 100.0])
def test_clip_grad_norm_matches_torch(max_norm):
    g = np.random.default_rng(0).normal(size=37)
    t = torch.tensor(g)
    t.grad = torch.tensor(g)
    expected_norm = float(torch.nn.utils.clip_grad_norm_([t], max_norm))
    norm = clip_grad_norm(g, max_norm)
    assert math.isclose(norm, expected_norm, rel_tol=1e-13)
    np.testing.assert_allclose(g, t.grad.numpy(), rtol=1e-13)


def test_clip_grad_value_matches_torch():
    g = np.random.default_rng(1).normal(size=37) * 3
    t = torch.tensor(g)
    t.grad = torch.tensor(g)
    torch.nn.utils.clip_grad_value_([t], 1.5)
    clip_grad_value(g, 1.5)
    np.testing.assert_array_equal(g, t.grad.numpy())
