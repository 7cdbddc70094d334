"""microdl.optim.schedules: hand-worked values, torch.optim.lr_scheduler's semantics, and the checks."""

import math
import warnings

import numpy as np
import pytest

from microdl.optim import (
    SCHEDULES,
    Constant,
    CosineAnnealingLR,
    CosineWithWarmup,
    ExponentialLR,
    InverseScaling,
    LambdaLR,
    LinearLR,
    MultiStepLR,
    OneCycleLR,
    ReduceLROnPlateau,
    StepLR,
    make_schedule,
)


@pytest.mark.parametrize(
    ("schedule", "expected"),
    [
        (Constant(), [0.1, 0.1, 0.1, 0.1]),
        (StepLR(step_size=3, gamma=0.5), [0.1, 0.1, 0.1, 0.05, 0.05, 0.05, 0.025, 0.025]),
        (ExponentialLR(gamma=0.9), [0.1, 0.09, 0.081, 0.0729]),
        (InverseScaling(power_t=0.5), [0.1, 0.1 / math.sqrt(2), 0.1 / math.sqrt(3), 0.05]),
        (InverseScaling(power_t=1.0), [0.1, 0.05, 0.1 / 3, 0.025]),
        # warm-up 0.1·(e+1)/3 for e < 2, then ½(1 + cos(π k/4)) from 0.1 down to min_lr 0 at epoch 6, then held:
        # cos(π/4) = √2/2, so the cosine values are 1, (1+√2/2)/2, 1/2, (1−√2/2)/2, 0
        (CosineWithWarmup(total_epochs=6, warmup_epochs=2),
         [0.1 / 3, 0.2 / 3, 0.1, 0.08535533905932737, 0.05, 0.014644660940672624, 0.0, 0.0]),
        # with min_lr 0.02 the cosine runs from 0.1 to 0.02: 0.02 + 0.08 × the values above
        (CosineWithWarmup(total_epochs=4, warmup_epochs=0, min_lr=0.02),
         [0.1, 0.02 + 0.08 * 0.8535533905932737, 0.06, 0.02 + 0.08 * 0.14644660940672624, 0.02, 0.02]),
    ],
    ids=["constant", "step", "exponential", "invscaling-0.5", "invscaling-1", "cosine-warmup", "cosine-min_lr"],
)
def test_schedule_values(schedule, expected):
    got = [schedule.lr_at(epoch, 0.1) for epoch in range(len(expected))]
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=1e-17)


def test_reduce_on_plateau_follows_torch_semantics():
    # patience 2: the rate drops on the 3rd epoch in a row without a relative improvement of 1e-4; then one
    # epoch of cooldown in which bad epochs are not counted; min_lr floors the rate.
    s = ReduceLROnPlateau(factor=0.5, patience=2, threshold=1e-4, cooldown=1, min_lr=0.2)
    assert s.lr_at(0, 1.0, None) == 1.0  # no loss yet
    losses = [10.0,  # best 10
              10.0, 9.9995,  # bad 1, bad 2 (9.9995 > 10·(1 − 1e-4) = 9.999: not a relative improvement)
              10.0,  # bad 3 > patience: halve; cooldown 1
              10.0,  # in cooldown: not counted
              10.0, 10.0, 10.0,  # bad 1, 2, 3: halve again
              9.0,  # improvement (and the cooldown epoch)
              9.0, 9.0,  # bad 1, 2
              8.9999,  # 8.9999 > 9·(1 − 1e-4) = 8.9991: bad 3: 0.25 halves to 0.125, floored at min_lr 0.2
              1.0]  # improvement: the rate stays where it is
    expected = [1.0, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25, 0.25, 0.125, 0.125]
    expected = [max(e, 0.2) for e in expected]
    got = [s.lr_at(epoch, 1.0, loss) for epoch, loss in enumerate(losses, start=1)]
    assert got == expected


def test_reduce_on_plateau_skips_reductions_below_eps():
    # torch's eps: 1e-7 halves to 5e-8, 2.5e-8, 1.25e-8; the next halving would change it by 6.25e-9 <= 1e-8
    s = ReduceLROnPlateau(factor=0.5, patience=0, eps=1e-8)
    got = [s.lr_at(epoch, 1e-7, 1.0) for epoch in range(7)]
    np.testing.assert_allclose(got, [1e-7, 5e-8, 2.5e-8, 1.25e-8, 1.25e-8, 1.25e-8, 1.25e-8], rtol=1e-15)


def test_reduce_on_plateau_state_dict_resumes():
    rng = np.random.default_rng(0)
    losses = list(np.cumsum(rng.normal(0, 1, 40)))
    a = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    straight = [a.lr_at(e, 1.0, m) for e, m in enumerate(losses)]
    b = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    first = [b.lr_at(e, 1.0, m) for e, m in enumerate(losses[:20])]
    c = ReduceLROnPlateau(factor=0.5, patience=1, cooldown=2)
    c.load_state_dict(b.state_dict())
    second = [c.lr_at(e, 1.0, m) for e, m in enumerate(losses[20:], start=20)]
    assert first + second == straight
    assert min(straight) < 1.0  # the sequence did reduce


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [(lambda: StepLR(step_size=0), ValueError, "step_size"), (lambda: StepLR(gamma=0.0), ValueError, "gamma"),
     (lambda: ExponentialLR(gamma=1.5), ValueError, "gamma"),
     (lambda: CosineWithWarmup(total_epochs=5, warmup_epochs=5), ValueError, "warmup_epochs"),
     (lambda: CosineWithWarmup(total_epochs=0), ValueError, "total_epochs"),
     (lambda: InverseScaling(power_t=-1.0), ValueError, "power_t"),
     (lambda: ReduceLROnPlateau(factor=1.0), ValueError, "factor"),
     (lambda: ReduceLROnPlateau(patience=-1), ValueError, "patience"),
     (lambda: ReduceLROnPlateau(min_lr=-1.0), ValueError, "min_lr"),
     (lambda: make_schedule("cosin"), ValueError, "unknown schedule 'cosin'")],
    ids=["step_size", "step-gamma", "exp-gamma", "warmup", "total", "power_t", "factor", "patience", "min_lr",
         "name"],
)
def test_invalid_schedules(make, error, match):
    with pytest.raises(error, match=match):
        make()


def test_numpy_scalars_are_accepted():
    # issue 12: np.int64 step sizes were rejected although numpy scalars are accepted elsewhere
    assert StepLR(step_size=np.int64(3), gamma=np.float32(0.5)).lr_at(3, 1.0) == 0.5
    assert CosineWithWarmup(total_epochs=np.int64(4), warmup_epochs=np.int32(1)).lr_at(0, 1.0) == 0.5


def test_make_schedule_defaults():
    assert isinstance(make_schedule(None), Constant)
    cosine = make_schedule("cosine", epochs=40)
    assert isinstance(cosine, CosineWithWarmup) and cosine.total_epochs == 40 and cosine.warmup_epochs == 2
    step = make_schedule("step", epochs=30)
    assert [step.lr_at(e, 1.0) for e in (9, 10, 20)] == [1.0, 0.1, pytest.approx(0.01)]
    mine = ExponentialLR(0.5)
    assert make_schedule(mine) is mine


# -- against torch.optim.lr_scheduler ---------------------------------------------------------------------
def _torch_lrs(torch, make_scheduler, epochs, base_lr=0.1, metrics=None):
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
        (StepLR(step_size=3, gamma=0.3), lambda t, o: t.optim.lr_scheduler.StepLR(o, step_size=3, gamma=0.3)),
        (ExponentialLR(gamma=0.8), lambda t, o: t.optim.lr_scheduler.ExponentialLR(o, gamma=0.8)),
        (CosineWithWarmup(total_epochs=12, min_lr=0.001),
         lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=12, eta_min=0.001)),
        (CosineWithWarmup(total_epochs=12, warmup_epochs=3, min_lr=0.001),
         lambda t, o: t.optim.lr_scheduler.SequentialLR(o, [
             t.optim.lr_scheduler.LinearLR(o, start_factor=1 / 4, end_factor=1.0, total_iters=3),
             t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=9, eta_min=0.001)], milestones=[3])),
    ],
    ids=["step", "exponential", "cosine", "cosine-warmup"],
)
def test_schedule_matches_torch(ours, theirs, torch):
    epochs = 13  # through the end of the cosine (torch's would rise again after it; ours holds min_lr)
    expected = _torch_lrs(torch, lambda o: theirs(torch, o), epochs)
    got = [ours.lr_at(epoch, 0.1) for epoch in range(epochs)]
    np.testing.assert_allclose(got, expected, rtol=1e-10)


@pytest.mark.parametrize(("patience", "cooldown", "threshold", "min_lr"),
                         [(0, 0, 1e-4, 0.0), (2, 0, 1e-4, 0.0), (1, 2, 1e-2, 0.0), (3, 1, 0.0, 0.02)])
def test_reduce_on_plateau_matches_torch(patience, cooldown, threshold, min_lr, torch):
    rng = np.random.default_rng(patience * 10 + cooldown)
    # a noisy, slowly flattening loss: long plateaus and occasional improvements
    metrics = list(1.0 / np.arange(1, 61) + rng.normal(0, 0.02, 60))
    hyper = {"factor": 0.5, "patience": patience, "cooldown": cooldown, "threshold": threshold, "min_lr": min_lr}
    expected = _torch_lrs(torch, lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, mode="min", **hyper), 60,
                          metrics=metrics)
    ours = ReduceLROnPlateau(**hyper)
    # torch steps on the loss of epoch e and then sets the rate of epoch e + 1, which lr_at receives with it
    got = [ours.lr_at(0, 0.1)] + [ours.lr_at(e + 1, 0.1, metrics[e]) for e in range(59)]
    np.testing.assert_allclose(got, expected, rtol=1e-12)
    assert min(got) < 0.1


# -- torch's names: each against the formula of torch's documentation, written out here, then torch itself -----
def _cosine(eta_min, base, t, t_max):
    return eta_min + (base - eta_min) * (1 + math.cos(math.pi * t / t_max)) / 2


def _one_cycle_doc(step, total, max_lr, pct, div, final_div, strategy="cos", three_phase=False):
    # torch.optim.lr_scheduler.OneCycleLR's docstring: phases end at pct*total - 1 (and 2*pct*total - 2 with
    # three_phase) and total - 1; each anneals from its start rate to its end rate over its steps
    initial = max_lr / div
    low = initial / final_div
    ends = [pct * total - 1, 2 * pct * total - 2, total - 1] if three_phase else [pct * total - 1, total - 1]
    rates = [(initial, max_lr), (max_lr, initial), (initial, low)] if three_phase else [(initial, max_lr),
                                                                                         (max_lr, low)]
    start = 0
    for i, end in enumerate(ends):
        if step <= end or i == len(ends) - 1:
            a, b = rates[i]
            t = (step - start) / (end - start)
            return b + (a - b) * (1 + math.cos(math.pi * t)) / 2 if strategy == "cos" else a + (b - a) * t
        start = end


TORCH_NAMED = [
    ("multistep", lambda: MultiStepLR([2, 5, 5, 9], gamma=0.5),
     lambda e: 0.1 * 0.5 ** sum(m <= e for m in [2, 5, 5, 9]),
     lambda t, o: t.optim.lr_scheduler.MultiStepLR(o, milestones=[2, 5, 5, 9], gamma=0.5)),
    ("linear", lambda: LinearLR(start_factor=0.25, end_factor=0.75, total_iters=6),
     lambda e: 0.1 * (0.25 + 0.5 * min(e, 6) / 6),
     lambda t, o: t.optim.lr_scheduler.LinearLR(o, start_factor=0.25, end_factor=0.75, total_iters=6)),
    ("linear-defaults", LinearLR, lambda e: 0.1 * (1 / 3 + 2 / 3 * min(e, 5) / 5),
     lambda t, o: t.optim.lr_scheduler.LinearLR(o)),
    # past T_max torch's cosine rises again: the 20 epochs cover that
    ("cosine-annealing", lambda: CosineAnnealingLR(T_max=7, eta_min=0.01), lambda e: _cosine(0.01, 0.1, e, 7),
     lambda t, o: t.optim.lr_scheduler.CosineAnnealingLR(o, T_max=7, eta_min=0.01)),
    ("onecycle", lambda: OneCycleLR(max_lr=0.5, total_steps=20),
     lambda e: _one_cycle_doc(e, 20, 0.5, 0.3, 25.0, 1e4),
     lambda t, o: t.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=20, cycle_momentum=False)),
    ("onecycle-linear-3phase",
     lambda: OneCycleLR(max_lr=0.3, total_steps=20, pct_start=0.25, anneal_strategy="linear", div_factor=10,
                        final_div_factor=100, three_phase=True),
     lambda e: _one_cycle_doc(e, 20, 0.3, 0.25, 10, 100, "linear", True),
     lambda t, o: t.optim.lr_scheduler.OneCycleLR(o, max_lr=0.3, total_steps=20, pct_start=0.25,
                                                  anneal_strategy="linear", div_factor=10, final_div_factor=100,
                                                  three_phase=True, cycle_momentum=False)),
    ("lambda", lambda: LambdaLR(lambda e: 0.9**e + 0.1 * (e % 3)), lambda e: 0.1 * (0.9**e + 0.1 * (e % 3)),
     lambda t, o: t.optim.lr_scheduler.LambdaLR(o, lambda e: 0.9**e + 0.1 * (e % 3))),
]


@pytest.mark.parametrize(("make", "formula"), [case[1:3] for case in TORCH_NAMED], ids=[c[0] for c in TORCH_NAMED])
def test_torch_named_schedule_follows_the_documented_formula(make, formula):
    got = [make().lr_at(e, 0.1) for e in range(20)]
    np.testing.assert_allclose(got, [formula(e) for e in range(20)], rtol=1e-12)
    assert len(set(np.round(got, 12))) > 2  # the schedule moves


@pytest.mark.parametrize(("make", "theirs"), [(case[1], case[3]) for case in TORCH_NAMED],
                         ids=[c[0] for c in TORCH_NAMED])
def test_torch_named_schedule_matches_torch(make, theirs, torch):
    expected = _torch_lrs(torch, lambda o: theirs(torch, o), 20)
    np.testing.assert_allclose([make().lr_at(e, 0.1) for e in range(20)], expected, rtol=1e-10)


def test_torch_names_in_the_registry():
    for key, cls in [("multistep", MultiStepLR), ("linear", LinearLR), ("cosine_annealing", CosineAnnealingLR),
                     ("onecycle", OneCycleLR)]:
        assert SCHEDULES[key] is cls
        assert isinstance(make_schedule(key, epochs=12), cls)
        assert isinstance(make_schedule(cls.__name__, epochs=12), cls)  # torch's class name
    assert isinstance(make_schedule("StepLR", epochs=12), StepLR)
    one = make_schedule("onecycle", epochs=12)
    rates = [one.lr_at(e, 0.2) for e in range(12)]
    # from the optimizer's rate / 25 up to near it (the peak falls between epochs 2 and 3), then far below
    assert rates[0] == pytest.approx(0.2 / 25) and 0.19 < max(rates) <= 0.2 and rates[-1] < rates[0] / 1000
    assert make_schedule("cosine_annealing", epochs=12).T_max == 12
    assert make_schedule("multistep", epochs=30).milestones == [10, 20]


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [(lambda: MultiStepLR([3, -1]), ValueError, "milestones"),
     (lambda: LinearLR(start_factor=0.0), ValueError, "start_factor"),
     (lambda: CosineAnnealingLR(T_max=0), ValueError, "T_max"),
     (lambda: OneCycleLR(anneal_strategy="cosine"), ValueError, "anneal_strategy"),
     (lambda: OneCycleLR(total_steps=5).lr_at(5, 0.1), ValueError, "total_steps=5"),
     (lambda: LambdaLR(0.5), TypeError, "lr_lambda"),
     (lambda: LambdaLR(lambda e: float("nan")).lr_at(0, 0.1), ValueError, "finite")],
)
def test_torch_named_bad_input(build, error, match):
    with pytest.raises(error, match=match):
        build()


def test_fit_takes_a_torch_named_schedule():
    from microdl.nn import MLP
    from microdl.optim import SGD
    from microdl.train import fit

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    net = MLP((3, 4, 2), random_state=0)
    history = fit(net, SGD(net.params, lr=0.2), X, y, epochs=8, schedule="CosineAnnealingLR", random_state=0)
    np.testing.assert_allclose(history.lr, [_cosine(0.0, 0.2, e, 8) for e in range(8)], rtol=1e-12)
