"""
Compare the six optimizers
==========================

Compare the six optimizers of the article from Python, as ``microdl compare`` does from the shell.

Run with ``python examples/compare_optimizers.py`` (about 10 s). ``MICRODL_QUICK=1`` makes it tiny.

``compare`` trains the same MLP with every optimizer on every dataset, once per seed. For a given seed every
optimizer starts from the same weights, sees the same train/test split and the same batch order, so the only
difference between two rows of the table is the optimizer and its learning rate.
"""

import os
import tempfile

from microdl.experiments import compare, load_results

quick = bool(os.environ.get("MICRODL_QUICK"))

# Two problems: a classification (wine) and a regression (diabetes, scored with R²).
# tune=True first picks each optimizer's learning rate from a log grid, using a validation split carved out
# of the training data (the test set is never used to choose anything). Without it every optimizer runs at
# torch.optim's default rate, which for plain SGD (1e-3) is far too small to be a fair comparison.
result = compare(
    datasets=["wine", "diabetes"],
    optimizers=["gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam"],
    seeds=2,
    epochs=2 if quick else 20,
    hidden=(8,) if quick else (64,),
    tune=True,
    trials=2 if quick else 16,  # quasi-random trials per optimizer over every hyperparameter (tuning.py)
    progress=False,
)

# One table per dataset: final losses and accuracy/R² (mean ± std over seeds), and how many epochs and
# seconds each optimizer needed to reach the target loss (90% of the way to the best final loss).
print(result.format_tables())

# What did the tuning pick (every hyperparameter, the consensus of the seeds), and how did it score in
# cross-validation against torch's defaults, on each tuning seed?
for dataset, picks in result.tuning.items():
    for name, pick in picks.items():
        scores = [(round(v["score"], 3), round(v["default_score"], 3)) for v in pick["per_seed"].values()]
        print(f"{dataset:9s} {name:9s} picked lr {pick['lr']:g}, {pick['kwargs']}; validation loss (tuned, "
              f"defaults) per seed: {scores}")

# Every curve is kept: result.runs is a list of dicts, one per (dataset, seed, optimizer).
run = result.runs_of("wine", "adam")[0]
print("adam on wine, seed", run["seed"], "train loss per epoch:", [round(v, 3) for v in run["train_loss"]])

# save() writes history.json, summary.csv, summary.txt and curves.png; load_results() reads them back.
out = os.environ.get("MICRODL_OUT") or tempfile.mkdtemp(prefix="microdl-compare-")
result.save(out)
print("wrote", sorted(os.listdir(out)), "to", out)
assert load_results(out).summary()[0]["optimizer"] == "gd"

# %%
# Every run's training loss on wine, one colour per optimizer (curves.png, written above, has the same for
# every dataset). The documentation's gallery shows the figure; run as a script, it is drawn but not shown.
import matplotlib.pyplot as plt  # noqa: E402

fig, ax = plt.subplots(figsize=(6, 3.6), constrained_layout=True)
for k, name in enumerate(["gd", "sgd", "adagrad", "rmsprop", "adadelta", "adam"]):
    for i, r in enumerate(result.runs_of("wine", name)):
        ax.semilogy(range(1, len(r["train_loss"]) + 1), r["train_loss"], color=f"C{k}", alpha=0.8,
                    label=name if i == 0 else None)
ax.set(xlabel="epoch", ylabel="training loss", title="wine, each optimizer at its tuned rate")
ax.legend(ncol=2)
