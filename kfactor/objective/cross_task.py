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
            raise ValueError(
                f"Expected scale >= 0. Received: scale={scale!r}"
            )
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


def _adversary_head(classes, hidden_units, name):
    if not hidden_units:
        return keras.layers.Dense(classes, dtype="float32", name=name)
    return keras.Sequential(
        [
            keras.layers.Dense(hidden_units, activation="relu"),
            keras.layers.Dense(classes),
        ],
        name=name,
    )


@keras.saving.register_keras_serializable(package="kfactor")
class CrossTaskAdversary(FactorLoss):
    """Adversaries that read other tasks from each task code's mean.

    For every task code `t` and every other labelled task `u` (except the
    pairs in `exclude`), a head predicts `u`'s label from
    `GradientReversal(reversal)(mean_t)`. The term is the mean over pairs
    of the heads' cross-entropies: minimizing it trains the heads, and the
    reversed gradient trains each task encoder to leave the other tasks out
    of its code's mean (the code that assembled networks read).

    Args:
        weight: the term's weight.
        reversal: the gradient-reversal scale (the encoders' side).
        hidden_units: 0 for linear adversaries (what a linear probe reads),
            or the width of a one-hidden-layer MLP adversary.
        exclude: `(code task, label task)` pairs the data forces (a code
            that predicts orientation must know the shape, for instance):
            no adversary for them.

    Example:

    >>> CrossTaskAdversary(exclude=[("orientation", "shape")]).name
    'adversary'
    """

    name = "adversary"

    def __init__(self, weight=1.0, reversal=1.0, hidden_units=0, exclude=()):
        super().__init__(weight)
        if not isinstance(hidden_units, int) or hidden_units < 0:
            raise ValueError(
                "Expected hidden_units as an int >= 0. Received: "
                f"hidden_units={hidden_units!r}"
            )
        self.reversal = float(reversal)
        self.hidden_units = hidden_units
        self.exclude = [tuple(pair) for pair in exclude]
        for pair in self.exclude:
            if len(pair) != 2:
                raise ValueError(
                    "Expected exclude as (code task, label task) pairs. "
                    f"Received: {pair!r}"
                )
        self._pairs = []

    def validate(self, factorizer):
        if len(factorizer.task_names) < 2:
            raise ValueError(
                "CrossTaskAdversary needs at least two tasks (an adversary "
                "reads another task from each task code). Received tasks: "
                f"{list(factorizer.task_names)}. Fix: drop the term."
            )

    def make_layers(self, outputs):
        excluded = set(self.exclude)
        self._pairs = [
            (code, label)
            for code in outputs.task_codes
            for label in outputs.logits
            if code != label and (code, label) not in excluded
        ]
        layers = [GradientReversal(self.reversal, name="adversary_reversal")]
        for code, label in self._pairs:
            head = _adversary_head(
                int(outputs.logits[label].shape[-1]),
                self.hidden_units,
                f"adversary_{code}_to_{label}",
            )
            head.build(tuple(outputs.task_codes[code].mean.shape))
            layers.append(head)
        return layers

    def compute_loss(self, outputs, labels):
        reversal, *heads = self.layers
        losses = [
            smoothed_cross_entropy(
                labels[label],
                head(reversal(ops.cast(outputs.task_codes[code].mean, "float32"))),
                0.0,
            )
            for (code, label), head in zip(self._pairs, heads)
        ]
        return ops.mean(ops.stack(losses))

    def get_config(self):
        return {
            **super().get_config(),
            "reversal": self.reversal,
            "hidden_units": self.hidden_units,
            "exclude": [list(pair) for pair in self.exclude],
        }


__all__ = [
    "CrossTaskAdversary",
    "GradientReversal",
]
