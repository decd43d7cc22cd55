"""Separated Attribute Predictability (SAP), as in disentanglement_lib.

Timing (measured once by hand on 2 CPU cores shared with other jobs):
10,000 train and 5,000 test samples, D=10, 50 one-dimensional linear SVMs:
2.0 s for K=5 dSprites-sized factors (3, 6, 40, 32, 32 values), 0.5 s for
K=5 factors of 4 values.
"""

from kfactor.lab.disentanglement import _parallel
from kfactor.lab.disentanglement import _validation

import numpy as np
from sklearn import svm


def _score_matrix(
    codes_train, factors_train, codes_test, factors_test, random_state=0
):
    """Test accuracy of a one-dimensional linear SVM per (code dim, factor).

    Args:
        codes_train: float array `(N, D)`.
        factors_train: int array `(N, K)`.
        codes_test: float array `(M, D)`.
        factors_test: int array `(M, K)`.
        random_state: seed of the SVM solver.

    Returns:
        float64 array `(D, K)` of test accuracies. Factors constant in the
        training set are removed (so `K` may be smaller than the input's).
    """
    codes_train, factors_train, codes_test, factors_test, _ = (
        _validation.check_train_test(
            codes_train, factors_train, codes_test, factors_test
        )
    )
    num_codes = codes_train.shape[1]
    num_factors = factors_train.shape[1]
    cells = [(d, k) for d in range(num_codes) for k in range(num_factors)]
    accuracies = _parallel.map_fits(
        _svm_accuracy,
        (
            (
                codes_train[:, d : d + 1],
                factors_train[:, k],
                codes_test[:, d : d + 1],
                factors_test[:, k],
                random_state,
            )
            for d, k in cells
        ),
    )
    return np.reshape(accuracies, (num_codes, num_factors))


def _svm_accuracy(train, labels_train, test, labels_test, random_state):
    """Test accuracy of SAP's linear SVM on one code dimension."""
    classifier = svm.LinearSVC(
        C=0.01,
        class_weight="balanced",
        dual="auto",
        random_state=random_state,
    )
    classifier.fit(train, labels_train)
    return float(np.mean(classifier.predict(test) == labels_test))


def sap(codes_train, factors_train, codes_test, factors_test, random_state=0):
    r"""Separated Attribute Predictability score of a representation.

    For every code dimension `d` and factor `k`, a linear SVM
    (`LinearSVC(C=0.01, class_weight="balanced")`, as in disentanglement_lib
    for discrete factors) is trained on the single code dimension to
    predict the factor; `S_{dk}` is its accuracy on the test set. SAP is the
    gap between the two best dimensions, averaged over factors:

    $$\mathrm{SAP} = \frac{1}{K} \sum_{k=1}^{K}
        \big( S_{(1)k} - S_{(2)k} \big),$$

    with `S_{(1)k} >= S_{(2)k}` the largest two entries of column `k`.
    Because a useless dimension still scores about the class-balanced chance
    accuracy, a perfect representation of a factor with `C` balanced values
    scores at most about `1 - 1/C` for that factor (0.5 for a binary one).

    Deviations from the reference: factors constant in `factors_train` are
    excluded; `D >= 2` is required. The SVM is built with `dual="auto"`
    (scikit-learn's default since 1.5; older versions, which the reference
    ran on, defaulted to `dual=True`; both solve the same problem, to the
    solver tolerance).

    Args:
        codes_train: float array `(N, D)`, samples first, `D >= 2`.
        factors_train: int array `(N, K)` of discrete factor values.
        codes_test: float array `(M, D)`.
        factors_test: int array `(M, K)`.
        random_state: seed of the SVM solver.

    Returns:
        The SAP score, a float in `[0, 1]`.

    Example:

    >>> import numpy as np
    >>> from kfactor.lab import disentanglement as metrics
    >>> rng = np.random.default_rng(0)
    >>> factors = rng.integers(0, 2, size=(1000, 2))
    >>> codes = factors + 0.05 * rng.normal(size=(1000, 2))
    >>> score = metrics.sap(codes[:800], factors[:800], codes[800:],
    ...                     factors[800:])
    >>> bool(score > 0.4)
    True

    #### References

    [1]: Abhishek Kumar, Prasanna Sattigeri, Avinash Balakrishnan.
         Variational Inference of Disentangled Latent Concepts from
         Unlabeled Observations. In _International Conference on Learning
         Representations_, 2018. https://arxiv.org/abs/1711.00848
    [2]: Francesco Locatello et al. Challenging Common Assumptions in the
         Unsupervised Learning of Disentangled Representations. In
         _International Conference on Machine Learning_, 2019.
         https://arxiv.org/abs/1811.12359
    """
    codes_train = _validation.check_codes(codes_train, "codes_train")
    _validation.check_min_code_dims(codes_train, 2, "SAP")
    scores = _score_matrix(
        codes_train, factors_train, codes_test, factors_test, random_state
    )
    top_two = np.sort(scores, axis=0)[::-1][:2]
    return float(np.mean(top_two[0] - top_two[1]))


__all__ = [
    "sap",
]
