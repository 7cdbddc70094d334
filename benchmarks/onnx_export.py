"""The largest difference between onnxruntime and microdl's estimators, per activation, loss and precision.

``python -m benchmarks.onnx_export`` prints a Markdown table (needs the ``onnx`` extra). It measures what
``tests/test_onnx.py`` bounds: the classifier's ``predict_proba`` (3 classes) and the regressor's ``predict``
(2 outputs, squared error and poisson), on the same data for every activation.
"""

import warnings

import numpy as np
import onnxruntime as rt
from sklearn.datasets import make_classification, make_regression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from microdl.nn import activation_names
from microdl.onnx import to_onnx
from microdl.sklearn import _ACTIVATION_ALIASES, MLPClassifier, MLPRegressor


def _run(model, X):
    session = rt.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: X})


def main() -> None:
    warnings.simplefilter("ignore")
    Xc, yc = make_classification(500, 8, n_informative=5, n_classes=3, random_state=0)
    Xr, yr = make_regression(500, 8, n_targets=2, noise=0.1, random_state=0)
    yr = yr / np.abs(yr).max()
    print("| model | activation | float32 max abs diff | float64 max abs diff |")
    print("|---|---|---|---|")
    cases = [("MLPClassifier proba", lambda a: MLPClassifier((16, 16), activation=a, max_iter=100), Xc, yc),
             ("Pipeline(StandardScaler, MLPClassifier) proba",
              lambda a: make_pipeline(StandardScaler(), MLPClassifier((16,), activation=a, max_iter=100)),
              Xc * 40 + 3, yc),
             ("MLPRegressor squared_error, 2 outputs", lambda a: MLPRegressor("squared_error", (16,), activation=a,
                                                                               max_iter=100), Xr, yr),
             ("MLPRegressor poisson, 2 outputs", lambda a: MLPRegressor("poisson", (16,), activation=a,
                                                                         max_iter=100), Xr, np.exp(yr))]
    for label, make, X, y in cases:
        for activation in sorted({*_ACTIVATION_ALIASES, *activation_names()}):
            diffs = []
            for dtype in (np.float32, np.float64):
                est = make(activation).set_params(**{k: 0 for k in make(activation).get_params()
                                                     if k.endswith("random_state")})
                Xd = X.astype(dtype)
                est.fit(Xd, y)
                outputs = _run(to_onnx(est, Xd[:1], options={"zipmap": False} if "Classifier" in label else None),
                               Xd)
                want = est.predict_proba(Xd) if "Classifier" in label else est.predict(Xd)
                diffs.append(float(np.abs(outputs[-1] - want).max()))
            print(f"| {label} | {activation} | {diffs[0]:.2e} | {diffs[1]:.2e} |")


if __name__ == "__main__":
    main()
