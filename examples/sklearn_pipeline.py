"""
microdl inside a scikit-learn pipeline
======================================

microdl inside scikit-learn: a Pipeline(StandardScaler(), MLPClassifier(solver="rmsprop")) tuned by a grid
search on the digits data set. Run with ``python examples/sklearn_pipeline.py`` (well under a minute).

``microdl.sklearn.MLPClassifier`` takes scikit-learn's parameters (hidden_layer_sizes, alpha, batch_size,
learning_rate_init, max_iter, early_stopping, ...) plus solvers scikit-learn does not have: here RMSprop.
"""

import warnings

from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, train_test_split
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from microdl.sklearn import MLPClassifier

X, y = load_digits(return_X_y=True)
X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.25, random_state=0, stratify=y)

# The network only sees standardised features: the scaler is fitted on each training fold inside the search.
pipeline = Pipeline([
    ("scale", StandardScaler()),
    ("mlp", MLPClassifier(solver="rmsprop", hidden_layer_sizes=(64,), max_iter=30, random_state=0)),
])

# Step parameters are addressed as <step>__<parameter>, as for any scikit-learn estimator.
grid = {
    "mlp__learning_rate_init": [3e-4, 1e-3, 3e-3],
    "mlp__alpha": [1e-4, 1e-2],
}
search = GridSearchCV(pipeline, grid, cv=3, n_jobs=1)

with warnings.catch_warnings():
    # 30 epochs are a budget, not convergence: silence "Maximum iterations reached".
    warnings.simplefilter("ignore", ConvergenceWarning)
    search.fit(X_train, y_train)

print("best parameters:", search.best_params_)
print(f"cross-validated accuracy: {search.best_score_:.3f}")
print(f"held-out accuracy:        {search.score(X_test, y_test):.3f}")

# The refitted pipeline's network is an ordinary fitted estimator with scikit-learn's attributes.
mlp = search.best_estimator_.named_steps["mlp"]
print(f"epochs: {mlp.n_iter_}, final training loss: {mlp.loss_:.4f}, weights: {[W.shape for W in mlp.coefs_]}")
