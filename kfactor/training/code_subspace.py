"""Keeping a task code's mean to the directions its factor network reads.

A variational task code is trained through samples `mean + sigma * eps`,
and its bottleneck charges what a *sample* carries. A direction in which
the mean varies by a few hundredths under a sigma near 1 costs almost no
KL, is drowned in noise for the head, and still holds whatever the encoder
wrote there. An assembled network reads the mean, and so does any probe
or downstream model: on the demo's codes, such faint directions held most
of what a whitened linear probe reads of other tasks (docs/GUIDE.md).

`project_task_codes` removes them after training. For each task it takes
the principal directions of the code mean on training images (the mean's
covariance, largest first) and keeps the fewest on which the factor
network is as accurate on those images, within `max_accuracy_drop`, as on
the whole code; the mean along every other direction is set to its
training average. The projection is affine, so it is folded into the mean
half of the factor's code layer: saving, assembling and exporting see an
ordinary `TaskFactor`, and nothing is added to the graph. The choice reads
the task's own labels on training images only, never other tasks' labels
or test images.
"""

from typing import NamedTuple

from kfactor.data.collect import collect_outputs

import numpy as np


class CodeSubspace(NamedTuple):
    """The directions of a task code's mean that `project_task_codes` keeps.

    Attributes:
        center: float `(D,)`, the mean code over the fitting images.
        basis: float `(k, D)`, orthonormal rows: the kept directions.
        variances: float `(D,)`, the variance of the mean along every
            principal direction, largest first (the first `k` are kept).
        full_accuracy: the factor network's accuracy on the fitting images
            from the whole code.
        accuracy: its accuracy there from the projected code.
    """

    center: np.ndarray
    basis: np.ndarray
    variances: np.ndarray
    full_accuracy: float
    accuracy: float

    @property
    def kept(self):
        """The number of kept directions."""
        return int(self.basis.shape[0])

    @property
    def variance_share(self):
        """The share of the mean's variance along the kept directions."""
        total = float(np.sum(self.variances))
        return (
            float(np.sum(self.variances[: self.kept]) / total) if total else 1.0
        )

    def project(self, codes):
        """`center + (codes - center) B^T B`: the codes with the dropped
        directions at their training average."""
        codes = np.asarray(codes, dtype="float64")
        offsets = (codes - self.center) @ self.basis.T
        return self.center + offsets @ self.basis

    def summary(self):
        """A JSON-ready record of the projection."""
        return {
            "kept": self.kept,
            "dim": int(self.center.shape[0]),
            "variance_share": self.variance_share,
            "train_accuracy_full": float(self.full_accuracy),
            "train_accuracy_projected": float(self.accuracy),
        }


def check_max_accuracy_drop(max_accuracy_drop):
    """Raises `ValueError` unless `max_accuracy_drop` is a number in
    `[0, 1)` (shared with `kfactor.lab.baselines`)."""
    if not isinstance(max_accuracy_drop, (int, float)) or not (
        0.0 <= max_accuracy_drop < 1.0
    ):
        raise ValueError(
            "Expected max_accuracy_drop, the training accuracy a factor "
            "network may lose to the projection, in [0, 1). Received: "
            f"max_accuracy_drop={max_accuracy_drop!r}"
        )


def check_max_examples(max_examples):
    """Raises `ValueError` unless `max_examples` is a positive int."""
    if not isinstance(max_examples, int) or max_examples < 1:
        raise ValueError(
            "Expected max_examples as a positive int. Received: "
            f"max_examples={max_examples!r}"
        )


def principal_directions(codes):
    """`(center, variances, directions)` of `codes` `(N, D)`: the mean, and
    the eigenvalues (descending) and unit eigenvectors (rows) of their
    covariance."""
    codes = np.asarray(codes, dtype="float64")
    center = codes.mean(axis=0)
    covariance = np.cov(codes - center, rowvar=False).reshape(
        codes.shape[1], codes.shape[1]
    )
    variances, vectors = np.linalg.eigh(covariance)
    order = np.argsort(variances)[::-1]
    return center, np.maximum(variances[order], 0.0), vectors[:, order].T


def fit_code_subspace(head, z_common, means, labels, max_accuracy_drop=0.001):
    """The smallest principal subspace of `means` on which the factor
    network is as accurate, within `max_accuracy_drop`, as on the whole
    code.

    Args:
        head: the factor network's head, codes `(N, D)` -> logits.
        z_common: float `(N, D)`, the common codes of the fitting images.
        means: float `(N, D)`, the task code means of the same images.
        labels: int `(N,)`, the task's labels of the same images.
        max_accuracy_drop: in `[0, 1)`.

    Returns:
        A `CodeSubspace`.
    """
    check_max_accuracy_drop(max_accuracy_drop)
    z_common = np.asarray(z_common, dtype="float32")
    labels = np.asarray(labels).reshape(-1)
    center, variances, directions = principal_directions(means)
    full = float(np.mean(_predictions(head, z_common, means) == labels))
    for kept in range(1, directions.shape[0] + 1):
        subspace = CodeSubspace(center, directions[:kept], variances, full, 0.0)
        projected = _predictions(head, z_common, subspace.project(means))
        accuracy = float(np.mean(projected == labels))
        if accuracy >= full - max_accuracy_drop - 1e-9:  # float slack
            break
    return subspace._replace(accuracy=accuracy)


def _predictions(head, z_common, codes):
    logits = head(z_common + np.asarray(codes, dtype="float32"))
    return np.argmax(np.asarray(logits), axis=-1)


def fold_into_code_layer(factor, subspace):
    """Makes `factor`'s code mean the projected one (`subspace.project`).

    The mean is `h W + b`, the first `code_dim` outputs of the code layer;
    the new kernel is `W P` and the new bias `c + (b - c) P`, with
    `P = B^T B`. The log-variance half is left as it is.
    """
    dim = factor.code_dim
    if subspace.center.shape != (dim,) or subspace.basis.shape[1] != dim:
        raise ValueError(
            f"Expected a subspace of the {dim}-dim code of task factor "
            f"'{factor.name}'. Received: center {subspace.center.shape}, "
            f"basis {subspace.basis.shape}."
        )
    projection = subspace.basis.T @ subspace.basis
    kernel = np.asarray(factor.code_layer.kernel, dtype="float64")
    bias = np.asarray(factor.code_layer.bias, dtype="float64")
    kernel[:, :dim] = kernel[:, :dim] @ projection
    bias[:dim] = subspace.center + (bias[:dim] - subspace.center) @ projection
    factor.code_layer.kernel.assign(kernel.astype("float32"))
    factor.code_layer.bias.assign(bias.astype("float32"))


def project_task_codes(
    factorizer, dataset, max_examples=10000, max_accuracy_drop=0.001, tasks=None
):
    """Keeps each task code's mean to the directions its factor network
    reads (see the module docstring), in place.

    Args:
        factorizer: a trained `kfactor.Factorizer` (or any object with
            `common` and a `task_factors` dict).
        dataset: batched `(images, {task: labels})` of training images,
            at most `max_examples` of them read; a task's labels are the
            only ones its projection reads.
        max_examples: how many images the directions are fitted on.
        max_accuracy_drop: the accuracy on those images that each factor
            network may lose to the projection.
        tasks: the task factors to project (default: all).

    Returns:
        `{task: CodeSubspace}`, the kept directions of each projected task.

    Example:

    >>> subspaces = project_task_codes(factorizer, train_ds)  # doctest: +SKIP
    >>> subspaces["shape"].kept                                # doctest: +SKIP
    2
    """
    check_max_accuracy_drop(max_accuracy_drop)
    check_max_examples(max_examples)
    factors = factorizer.task_factors
    tasks = list(factors) if tasks is None else list(tasks)
    unknown = sorted(set(tasks) - set(factors))
    if unknown:
        raise ValueError(
            f"Expected tasks among the factorizer's {sorted(factors)}. "
            f"Received: {unknown}."
        )
    readers = {"common": _common_reader(factorizer.common)}
    readers.update({task: _mean_reader(factors[task]) for task in tasks})
    codes, labels = collect_outputs(readers, dataset, max_examples)
    missing = [
        t for t in tasks if not isinstance(labels, dict) or t not in labels
    ]
    if missing:
        raise ValueError(
            "Expected the dataset's labels as a dict holding the tasks "
            f"{missing}. Received: labels without them. Fix: pass the "
            "training dataset the factorizer was fitted on, "
            "`(images, {task: labels})`."
        )
    subspaces = {}
    for task in tasks:
        subspaces[task] = fit_code_subspace(
            factors[task].head,
            codes["common"],
            codes[task],
            labels[task],
            max_accuracy_drop,
        )
        fold_into_code_layer(factors[task], subspaces[task])
    return subspaces


def _common_reader(common):
    def read(images):
        return common(images, training=False)

    return read


def _mean_reader(factor):
    def read(images):
        return factor.encode(images, training=False).mean

    return read


__all__ = [
    "CodeSubspace",
    "fit_code_subspace",
    "fold_into_code_layer",
    "principal_directions",
    "project_task_codes",
]
