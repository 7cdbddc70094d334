"""
Train one model
===============

Train one MLP on the digits data set and check it on held-out data.

Run with ``python examples/train_one_model.py`` (a few seconds). Set ``MICRODL_QUICK=1`` for a 3-epoch run.

The steps are the same for any problem: load data, build a network whose input and output sizes fit the
data, bind an optimizer to the network's parameters, and call ``fit``.
"""

import os

from microdl.datasets import load_dataset
from microdl.nn import MLP
from microdl.optim import Adam
from microdl.train import EarlyStopping, fit, score

EPOCHS = 3 if os.environ.get("MICRODL_QUICK") else 40

# 1. Data: 8x8 images of handwritten digits, 10 classes. load_dataset splits it 75/25 into train and test
#    (stratified, seeded) and standardises the features with the *training* mean and standard deviation.
data = load_dataset("digits", random_state=0)
print(f"{data.X_train.shape[0]} training and {data.X_test.shape[0]} test images, {data.n_features} pixels each")

# 2. The network: 64 inputs -> 128 ReLU units -> 10 outputs. The loss fixes the output layer: cross-entropy
#    comes with a softmax. All weights and biases live in ONE flat array, model.params.
model = MLP((data.n_features, 128, data.n_outputs), activation="relu", loss=data.loss, random_state=0)
print(model, f"with {model.n_params} parameters")

# 3. The optimizer is bound to that flat array and updates it in place: optimizer.step(model.grads).
#    Its hyperparameters and defaults are torch.optim's (Adam: lr 1e-3, betas (0.9, 0.999), eps 1e-8).
optimizer = Adam(model.params, lr=1e-3)

# 4. Training: mini-batches of 32, 10% of the training data held out for validation, and early stopping
#    that restores the best weights once the validation loss has not improved for 5 epochs.
history = fit(model, optimizer, data.X_train, data.y_train, epochs=EPOCHS, batch_size=32, random_state=0,
              validation_fraction=0.1, callbacks=[EarlyStopping(patience=5)])

# History holds one entry per epoch: losses, the validation accuracy, learning rate, time and step counts.
for epoch in range(0, history.epochs, max(1, history.epochs // 8)):
    print(f"epoch {epoch + 1:3d}  train loss {history.train_loss[epoch]:.4f}  "
          f"val loss {history.val_loss[epoch]:.4f}  val accuracy {history.val_metric[epoch]:.3f}  "
          f"({history.wall_time[epoch]:.2f} s)")
print(f"stopped after {history.epochs} epochs ({history.stop_reason}); best epoch {history.best_epoch}")

# 5. The test set was never used above. score() is accuracy for classification (R² for regression);
#    predict() gives class indices.
Y_test = model.encode_targets(data.y_test)
print(f"test accuracy {score(model, data.X_test, Y_test):.3f}")
print("first ten predictions:", model.predict(data.X_test[:10]), "truth:", data.y_test[:10])
