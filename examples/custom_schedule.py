"""
A learning-rate schedule of your own
====================================

Write your own learning-rate schedule by subclassing ``microdl.optim.LRSchedule``.

Run with ``python examples/custom_schedule.py`` (a few seconds; ``MICRODL_QUICK=1`` for less).

The training loop asks the schedule for the rate before every epoch: ``lr_at(epoch, base_lr, metric)``, where
``epoch`` counts from 0, ``base_lr`` is the optimizer's initial rate and ``metric`` is the last epoch's
monitored loss (validation loss if there is validation data, else training loss; None before the first).
Whatever it returns becomes ``optimizer.lr`` for that epoch.
"""

import os

from microdl.datasets import load_dataset
from microdl.nn import MLP
from microdl.optim import SGD, LRSchedule
from microdl.train import fit

EPOCHS = 6 if os.environ.get("MICRODL_QUICK") else 30


class WarmupThenHalve(LRSchedule):
    """Ramp linearly up to base_lr over ``warmup`` epochs, then halve the rate every ``every`` epochs.

    A warm-up keeps the first, largest gradients from throwing freshly initialised weights too far; the
    halving lets SGD settle into a minimum instead of bouncing around it at a fixed step size.
    """

    def __init__(self, warmup=3, every=8):
        self.warmup = warmup
        self.every = every

    def lr_at(self, epoch, base_lr, metric=None):
        if epoch < self.warmup:
            return base_lr * (epoch + 1) / self.warmup
        return base_lr * 0.5 ** ((epoch - self.warmup) // self.every)


data = load_dataset("digits", random_state=0)


def run(schedule):
    model = MLP((data.n_features, 64, data.n_outputs), loss=data.loss, random_state=0)
    optimizer = SGD(model.params, lr=0.05, momentum=0.9)
    history = fit(model, optimizer, data.X_train, data.y_train, epochs=EPOCHS, batch_size=32, random_state=0,
                  validation_data=(data.X_test, data.y_test), schedule=schedule)
    return history


schedule = WarmupThenHalve(warmup=3, every=8)
print(schedule)  # LRSchedule gives a repr (and state_dict() for checkpoints) for free
print("rates of the first 20 epochs:", [round(schedule.lr_at(e, 0.05), 4) for e in range(20)])

custom = run(schedule)
constant = run("constant")  # the built-in schedules go by name: constant, step, exponential, cosine, ...
print("history.lr records the rate each epoch used:", [round(x, 4) for x in custom.lr[:6]], "...")
for name, h in (("constant lr 0.05", constant), ("warm-up then halve", custom)):
    print(f"{name:20s} final train loss {h.train_loss[-1]:.4f}  test loss {h.val_loss[-1]:.4f}  "
          f"test accuracy {h.val_metric[-1]:.3f}  diverged: {h.diverged}")

# %%
# The two runs side by side: the rate each epoch used, and the test loss it led to. (The documentation's
# gallery shows the figure; run as a script, it is drawn but not shown.)
import matplotlib.pyplot as plt  # noqa: E402

fig, (ax_lr, ax_loss) = plt.subplots(1, 2, figsize=(9, 3.2), constrained_layout=True)
for name, h in (("constant lr 0.05", constant), ("warm-up then halve", custom)):
    ax_lr.plot(range(1, len(h.lr) + 1), h.lr, label=name)
    ax_loss.plot(range(1, len(h.val_loss) + 1), h.val_loss, label=name)
ax_lr.set(xlabel="epoch", ylabel="learning rate", title="the schedule")
ax_loss.set(xlabel="epoch", ylabel="test loss", title="its effect", yscale="log")
ax_lr.legend()
