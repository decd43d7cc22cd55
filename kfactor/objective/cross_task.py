"""Keeping each task code to its own task: gradient-reversal adversaries.

The bottleneck `beta * KL(q(z_t | x) || N(0, I))` bounds the information in
a *sample* of a task code, whatever task it is about, and barely charges the
code's *mean* for a small signal: position written into the mean at
amplitude 0.02 under sigma = 1 costs ~2e-5 nats, yet a linear probe on the
mean reads it (method reference section 8). Probes and assembled networks
read the mean. `CrossTaskAdversary` targets other-task information there
directly: for each task code, one adversary head a *other* labelled task
tries to predict that task's label from the code mean; a gradient-reversal
layer between code and head makes the encoder work against it (domain-
adversarial training).

#### References

[1]: Yaroslav Ganin, Victor Lempitsky. Unsupervised Domain Adaptation by
     Backpropagation. ICML 2015.
"""

from kfactor.objective.divergences import smoothed_cross_entropy
from kfactor.objective.losses import FactorLoss

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="kfactor")
class GradientReversal(keras.layers.Layer):
    """Identity forward; multiplies the gradient by `-scale` backward.

    Args:
        scale: how strongly the layer's input is pushed against the loss
            after it (0 stops the gradient).

    Example:

    >>> x = tf.constant([1.0, 2.0])
    >>> with tf.GradientTape() as tape:
    ...     tape.watch(x)
    ...     y = tf.reduce_sum(3.0 * GradientReversal(0.5)(x))
    >>> tape.gradient(y, x).numpy().tolist()
    [-1.5, -1.5]
    """

    def __init__(self, scale=1.0, **kwargs):
        super().__init__(**kwargs)
        if not isinstance(scale, (int, float)) or scale < 0:
            raise ValueError(f"Expected scale >= 0. Received: scale={scale!r}")
        self.scale = float(scale)

    def call(self, inputs):
        scale = self.scale

        @ops.custom_gradient
        def reverse(x):
            def grad(*args, upstream=None):
                if upstream is None:
                    (upstream,) = args
                return ops.multiply(upstream, -scale)

            return ops.copy(x), grad

        return reverse(inputs)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {**super().get_config(), "scale": self.scale}


def _frozen_dense(x, layer):
    """`layer(x)` for a Dense layer, with no gradient to its weights."""
    y = ops.matmul(x, ops.stop_gradient(layer.kernel))
    return y + ops.stop_gradient(layer.bias)


def _standardized(codes):
    """Per-dimension batch standardization: the adversary sees the code as
    a whitened probe does, whatever its scale."""
    mean = ops.mean(codes, axis=0, keepdims=True)
    std = ops.sqrt(ops.var(codes, axis=0, keepdims=True) + 1e-6)
    return (codes - mean) / std


def between_class_fraction(codes, labels, num_classes):
    """Mean over code dimensions of the share of each dimension's variance
    that the class means of `labels` explain (eta squared, in [0, 1]).

    Zero when every class of `labels` has the same code mean, the
    condition under which no linear read-out of the code tells the classes
    apart by their means. In a batch of `B` with `K` classes, codes
    independent of the labels score about `(K - 1) / (B - 1)` on average,
    whatever their distribution: only the dependence moves it.
    """
    codes = ops.cast(codes, "float32")
    centred = codes - ops.mean(codes, axis=0, keepdims=True)
    onehot = ops.one_hot(ops.cast(labels, "int32"), num_classes)
    counts = ops.sum(onehot, axis=0)
    class_sums = ops.matmul(ops.transpose(onehot), centred)
    between = ops.sum(
        ops.square(class_sums) / ops.maximum(counts, 1.0)[:, None], axis=0
    )
    total = ops.sum(ops.square(centred), axis=0)
    return ops.mean(between / (total + 1e-6))


def _uniform_cross_entropy(logits):
    """CE of `softmax(logits)` against the uniform distribution: least
    (`log K`) when the prediction says nothing."""
    return -ops.mean(ops.mean(ops.log_softmax(logits, axis=-1), axis=-1))


@keras.saving.register_keras_serializable(package="kfactor")
class CrossTaskAdversary(FactorLoss):
    """Adversaries that read other tasks from each task code's mean.

    For every task code `t` and every other labelled task `u` (except the
    pairs in `exclude`), a linear head learns to predict `u`'s label from
    `mean_t` (the code that assembled networks read). The encoder of `t`
    then works against it, in one of two ways:

    - `mode="confusion"` (the default, chosen by measurement): the heads
      learn on `stop_gradient(mean_t)`, and the encoder minimizes the
      cross-entropy of the (frozen) heads' predictions against the
      uniform distribution, `reversal * CE(uniform, head(mean_t))`: least
      when the code tells the head nothing about `u` (Tzeng et al. 2015).
      Bounded below, so it cannot blow the code up.
    - `mode="reversal"`: domain-adversarial training (Ganin and Lempitsky
      2015): `GradientReversal(reversal)` between code and head, so the
      encoder *maximizes* the heads' cross-entropy. Measured on tiny data
      (tests/objective/test_cross_task.py), it wrecked the factor networks
      and left the other task linearly readable; kept for comparison.
    - `mode="class_means"`: no heads. The encoder minimizes
      `between_class_fraction(mean_t, labels_u)`, the share of each code
      dimension's batch variance that `u`'s class means explain: zero
      exactly when every class of `u` has the same code mean, which is what
      a linear probe on the mean reads. Closed form, so nothing lags behind
      the encoder; its batch noise floor is `(K - 1) / (B - 1)` for `K`
      classes (see `between_class_fraction`).

    The term is the mean over pairs of the heads' cross-entropies, plus the
    encoders' confusion term in `"confusion"` mode; the mean over pairs of
    the between-class fractions in `"class_means"` mode.

    Args:
        weight: the term's weight.
        reversal: the encoders' side: the confusion term's weight, or the
            gradient-reversal scale (unused by `"class_means"`).
        mode: `"confusion"`, `"reversal"` or `"class_means"`.
        exclude: `(code task, label task)` pairs the data forces (a code
            that predicts orientation must know the shape, for instance):
            no adversary for them.

    Example:

    >>> CrossTaskAdversary(exclude=[("orientation", "shape")]).name
    'adversary'
    """

    name = "adversary"
    MODES = ("confusion", "reversal", "class_means")

    def __init__(self, weight=1.0, reversal=1.0, mode="confusion", exclude=()):
        super().__init__(weight)
        if mode not in self.MODES:
            raise ValueError(
                f"Expected mode in {self.MODES}. Received: mode={mode!r}"
            )
        if not isinstance(reversal, (int, float)) or reversal < 0:
            raise ValueError(
                f"Expected reversal >= 0. Received: reversal={reversal!r}"
            )
        self.reversal = float(reversal)
        self.mode = mode
        self.exclude = [tuple(pair) for pair in exclude]
        for pair in self.exclude:
            if len(pair) != 2:
                raise ValueError(
                    "Expected exclude as (code task, label task) pairs. "
                    f"Received: {pair!r}"
                )
        self._pairs = []

    def make_layers(self, outputs):
        excluded = set(self.exclude)
        self._pairs = [
            (code, label)
            for code in outputs.task_codes
            for label in outputs.logits
            if code != label and (code, label) not in excluded
        ]
        if not self._pairs and len(outputs.task_codes) < 2:
            return []  # one task: no other task to keep out (a zero term)
        if not self._pairs:
            raise ValueError(
                "CrossTaskAdversary has no (code task, label task) pair left: "
                f"exclude={self.exclude} covers them all. Fix: drop the term "
                "or exclude fewer pairs."
            )
        layers = [GradientReversal(self.reversal, name="adversary_reversal")]
        for code, label in self._pairs:
            head = keras.layers.Dense(
                int(outputs.logits[label].shape[-1]),
                dtype="float32",
                name=f"adversary_{code}_to_{label}",
            )
            head.build(tuple(outputs.task_codes[code].mean.shape))
            layers.append(head)
        return layers

    def _pair_loss(self, reversal, head, code, labels):
        if self.mode == "class_means":
            return between_class_fraction(
                code, labels, int(head.kernel.shape[-1])
            )
        if self.mode == "reversal":
            return smoothed_cross_entropy(labels, head(reversal(code)), 0.0)
        fit = smoothed_cross_entropy(labels, head(ops.stop_gradient(code)), 0.0)
        confusion = _uniform_cross_entropy(_frozen_dense(code, head))
        return fit + self.reversal * confusion

    def compute_loss(self, outputs, labels):
        if not self._pairs:
            return ops.zeros(())
        reversal, *heads = self.layers
        losses = [
            self._pair_loss(
                reversal,
                head,
                ops.cast(outputs.task_codes[code].mean, "float32"),
                labels[label],
            )
            for (code, label), head in zip(self._pairs, heads)
        ]
        return ops.mean(ops.stack(losses))

    def get_config(self):
        return {
            **super().get_config(),
            "reversal": self.reversal,
            "mode": self.mode,
            "exclude": [list(pair) for pair in self.exclude],
        }


__all__ = [
    "CrossTaskAdversary",
    "GradientReversal",
]
