"""Modularity and explicitness (Ridgeway & Mozer), as in disentanglement_lib.

Timing (measured once by hand on 2 CPU cores shared with other jobs):
10,000 train and 5,000 test samples, D=10: 9 s for K=5 dSprites-sized
factors (3, 6, 40, 32, 32 values), 1.7 s for K=5 factors of 4 values,
nearly all of it in the logistic regressions.
"""

from kfactor.lab.disentanglement import _discrete
from kfactor.lab.disentanglement import _parallel
from kfactor.lab.disentanglement import _validation

import numpy as np
from sklearn import linear_model
from sklearn import metrics as sk_metrics


def _modularity(mutual_info):
    """Mean over code dims of `1 - delta_d` (see `modularity_explicitness`)."""
    squared = np.square(mutual_info)
    top = squared.max(axis=1)
    num_factors = squared.shape[1]
    if num_factors == 1:
        delta = np.zeros_like(top)
    else:
        denominator = top * (num_factors - 1.0)
        safe = np.where(denominator > 0, denominator, 1.0)
        delta = (squared.sum(axis=1) - top) / safe
    score = np.where(top > 0, 1.0 - delta, 0.0)
    return float(np.mean(score))


def _macro_roc_auc(labels, probabilities, classes):
    """Mean one-vs-rest ROC-AUC over the classes present in `labels`.

    A class enters the mean when `labels` holds both it and another class;
    `None` if no class qualifies (a constant `labels`).
    """
    scores = []
    for column, value in enumerate(classes):
        positive = labels == value
        if positive.any() and not positive.all():
            scores.append(
                sk_metrics.roc_auc_score(positive, probabilities[:, column])
            )
    return float(np.mean(scores)) if scores else None


def _explicitness(
    train, labels_train, test, labels_test, random_state, max_iter
):
    """`(train AUC, test AUC)` of a logistic regression on one factor."""
    classifier = linear_model.LogisticRegression(
        random_state=random_state, max_iter=max_iter
    )
    classifier.fit(train, labels_train)
    return tuple(
        _macro_roc_auc(
            labels, classifier.predict_proba(codes), classifier.classes_
        )
        for codes, labels in ((train, labels_train), (test, labels_test))
    )


def modularity_explicitness(
    codes_train,
    factors_train,
    codes_test,
    factors_test,
    num_bins=20,
    random_state=0,
    max_iter=1000,
):
    r"""Modularity and explicitness of a representation.

    **Modularity.** With `m_{dk}` the discrete mutual information between
    code dimension `d` (train codes, `num_bins` equal-width bins, as in
    `mig`) and factor `k`, and `theta_d = max_k m_{dk}`:

    $$\delta_d = \frac{\sum_k m_{dk}^2 - \theta_d^2}
        {\theta_d^2 (K - 1)}, \qquad
      \mathrm{modularity} = \frac{1}{D} \sum_{d=1}^{D} (1 - \delta_d),$$

    averaged over **all** code dimensions; a dimension with zero mutual
    information with every factor scores 0.

    **Explicitness.** Codes are standardized with the train mean and std;
    per factor a default (multinomial, lbfgs) `LogisticRegression` is
    fitted on the train codes, and explicitness is the macro one-vs-rest
    ROC-AUC of its `predict_proba`, averaged over factors, on the train and
    the test set.

    The numbers equal disentanglement_lib's `compute_modularity_explicitness`
    on the same arrays. Deviations: factors constant in `factors_train` are
    excluded; a single factor (`K=1`) gives `delta_d = 0` (the reference
    divides by zero); constant code dimensions are only centred, not divided
    by their zero std; the one-vs-rest AUC averages over the training
    classes that occur in the evaluated set (the reference fails when the
    test set lacks a class, or has one unseen in training); `max_iter`
    defaults to 1000 instead of scikit-learn's 100 so that many-valued
    factors converge (where 100 iterations converge, the result is the
    same); a factor that is constant in `factors_test` raises.

    Args:
        codes_train: float array `(N, D)`, samples first.
        factors_train: int array `(N, K)` of discrete factor values.
        codes_test: float array `(M, D)`.
        factors_test: int array `(M, K)`.
        num_bins: number of histogram bins per code dimension.
        random_state: seed passed to the logistic regressions.
        max_iter: iteration limit of the logistic regressions.

    Returns:
        dict with floats `modularity`, `explicitness_train` and
        `explicitness_test`, all in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 4, size=(1000, 2))
    >>> codes = factors + 0.05 * rng.normal(size=(1000, 2))
    >>> scores = metrics.modularity_explicitness(
    ...     codes[:800], factors[:800], codes[800:], factors[800:])
    >>> bool(scores["modularity"] > 0.99)
    True
    >>> bool(scores["explicitness_test"] > 0.95)
    True

    #### References

    [1]: Karl Ridgeway, Michael C. Mozer. Learning Deep Disentangled
         Embeddings With the F-Statistic Loss. In _Neural Information
         Processing Systems_, 2018. https://arxiv.org/abs/1802.05312
    [2]: Francesco Locatello et al. Challenging Common Assumptions in the
         Unsupervised Learning of Disentangled Representations. In
         _International Conference on Machine Learning_, 2019.
         https://arxiv.org/abs/1811.12359
    """
    codes_train, factors_train, codes_test, factors_test, kept = (
        _validation.check_train_test(
            codes_train, factors_train, codes_test, factors_test
        )
    )
    mutual_info = _discrete.discrete_mutual_info(
        codes_train, factors_train, num_bins
    )
    train, test = _validation.standardize(codes_train, codes_test)
    aucs = _parallel.map_fits(
        _explicitness,
        (
            (
                train,
                factors_train[:, k],
                test,
                factors_test[:, k],
                random_state,
                max_iter,
            )
            for k in range(factors_train.shape[1])
        ),
    )
    for k, (_, auc_test) in enumerate(aucs):
        if auc_test is None:
            raise ValueError(
                "Expected every factor that varies in factors_train to vary "
                f"in factors_test too. Received: factor {kept[k]} of "
                "factors_test takes a single one of the values seen in "
                "training, so its test ROC-AUC is undefined. Fix: use a "
                "larger or differently drawn test set."
            )
    explicitness_train, explicitness_test = zip(*aucs)
    return {
        "modularity": _modularity(mutual_info),
        "explicitness_train": float(np.mean(explicitness_train)),
        "explicitness_test": float(np.mean(explicitness_test)),
    }


__all__ = [
    "modularity_explicitness",
]
