"""
Full-batch GD against mini-batch SGD
====================================

Full-batch gradient descent against mini-batch SGD: which is "faster"? It depends on what you count.

Run with ``python examples/gd_vs_sgd.py`` (a few seconds; ``MICRODL_QUICK=1`` for less).

Both use the same update rule, θ ← θ − γ g. The only difference is the gradient g: GD averages it over the
whole training set (one step per pass over the data), SGD over a mini-batch of 32 samples (here 43 steps per
pass). We train both from the same initial weights and compare them per epoch, per second and per step.
"""

import os

from microdl.datasets import load_dataset
from microdl.nn import MLP
from microdl.optim import GD, SGD
from microdl.train import fit

quick = bool(os.environ.get("MICRODL_QUICK"))
data = load_dataset("digits", random_state=0)


class FullTrainLoss:
    """A callback: after every epoch, the loss on the whole training set with the current weights.

    (fit's own history.train_loss averages the mini-batch losses seen *during* the epoch, which is not the
    same thing for SGD and GD, so we measure both the same way.)"""

    def __init__(self):
        self.losses = []

    def on_epoch_end(self, epoch, history, model, optimizer):
        # loss_and_grad returns the loss (and overwrites model.grads, which the next step recomputes anyway)
        self.losses.append(model.loss_and_grad(data.X_train, data.y_train))
        return False  # do not stop


def train(optimizer_class, lr, epochs):
    model = MLP((data.n_features, 64, data.n_outputs), loss=data.loss, random_state=0)  # same init for both
    optimizer = optimizer_class(model.params, lr=lr)
    record = FullTrainLoss()
    # GD has optimizer.full_batch = True, so fit ignores batch_size and uses every sample in one batch.
    history = fit(model, optimizer, data.X_train, data.y_train, epochs=epochs, batch_size=32, random_state=0,
                  callbacks=[record])
    return record.losses, history


# Learning rates from `microdl sensitivity --dataset digits` (each near its best): GD can take a much
# larger step because its gradient is exact.
gd_losses, gd_hist = train(GD, lr=1.0, epochs=20 if quick else 200)
sgd_losses, sgd_hist = train(SGD, lr=0.3, epochs=2 if quick else 20)

print("per epoch (one pass over the data each):")
for epoch in (1, 2, 5, 10, 20):
    if epoch <= len(sgd_losses):
        print(f"  after {epoch:3d} epochs   GD {gd_losses[epoch - 1]:.4f}   SGD {sgd_losses[epoch - 1]:.4f}")

print("per step (gradient evaluations):")
steps_per_epoch = sgd_hist.grad_evals[0]
for sgd_epoch in (1, 2, 5):
    steps = sgd_epoch * steps_per_epoch
    if sgd_epoch <= len(sgd_losses) and steps <= len(gd_losses):
        print(f"  after {steps:3d} steps    GD {gd_losses[steps - 1]:.4f}   SGD {sgd_losses[sgd_epoch - 1]:.4f}")

# The clock: history.wall_time is cumulative seconds. It includes our callback's evaluation, which costs the
# same per epoch for both, so compare the seconds per epoch rather than reading it as pure training time.
gd_epoch_s = gd_hist.wall_time[-1] / gd_hist.epochs
sgd_epoch_s = sgd_hist.wall_time[-1] / sgd_hist.epochs
print(f"per second: an epoch takes {1e3 * gd_epoch_s:.2f} ms with GD (1 step) and {1e3 * sgd_epoch_s:.2f} ms "
      f"with SGD ({steps_per_epoch} steps)")
target = gd_losses[-1]
reached = next((k for k, v in enumerate(sgd_losses) if v <= target), None)
if reached is None:
    print(f"SGD did not reach GD's final loss {target:.4f} in {len(sgd_losses)} epochs")
else:
    print(f"SGD reaches GD's final loss ({target:.4f} after {gd_hist.epochs} GD epochs, {gd_hist.wall_time[-1]:.2f} s) "
          f"after {reached + 1} epochs, {sgd_hist.wall_time[reached]:.2f} s")
print("So: per epoch and per second SGD is ahead; per step GD is, since each of its steps sees all the data.")

# %%
# The same losses against the three clocks. (The documentation's gallery shows the figure; run as a script, it
# is drawn but not shown.)
import matplotlib.pyplot as plt  # noqa: E402

fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), constrained_layout=True, sharey=True)
gd_epochs, sgd_epochs = range(1, len(gd_losses) + 1), range(1, len(sgd_losses) + 1)
for ax, gd_x, sgd_x, label in (
        (axes[0], gd_epochs, sgd_epochs, "epochs (passes over the data)"),
        (axes[1], gd_hist.wall_time, sgd_hist.wall_time, "seconds"),
        (axes[2], gd_epochs, [e * steps_per_epoch for e in sgd_epochs], "steps (gradient evaluations)")):
    ax.semilogy(gd_x, gd_losses, label="GD (full batch)")
    ax.semilogy(sgd_x, sgd_losses, label="SGD (batch 32)")
    ax.set(xlabel=label)
axes[2].set_xscale("log")
axes[0].set(ylabel="training loss (whole set)")
axes[0].legend()
