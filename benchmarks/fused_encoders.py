"""Prototype: the factorizer's N same-architecture encoders as one graph.

The factorization step runs the common encoder and the 5 task encoders
(all SimpleConv64 + BatchNorm, all on the same images) one after the other:
6 x 6 small convolutions, 6 x 6 batch norms, 6 x 7 weights for Adam. Here
the same N encoders run as one computation:

- the first convolution (1 input channel, shared) has N * C outputs;
- the others are grouped convolutions (`groups = N`: a filter of
  `C_in` inputs on `N * C_in` channels, which TensorFlow runs as grouped);
- the last one (2x2 -> 1x1, 4 of 16 taps on pixels) and the final dense
  layers are batched matmuls over the N encoders;
- batch norm over the `N * C` channels is, channel by channel, the N
  encoders' own (training mode: batch statistics, moving averages).

`A/B` (`--what encoders`): `separate` (N `simple_conv64` models, as the
factorizer calls them; kfactor's `FusedBatchNormalization`), the same with
Keras's `BatchNormalization` (`separate+keras_bn`), and `fused` (the same
weights, stacked; batch norm from `tf.nn.moments`, or `+fused_bn` on
`FusedBatchNormV3`; `--xla` also under XLA): forward + backward + Adam of
all N encoders on one batch, in interleaved rounds in one process.
`--what step`: the whole factorization step of the benchmark's factorizer
with kfactor's batch norm, Keras's, and none.

    python -m benchmarks.fused_encoders --rounds 5 --batch_size 128
    python -m benchmarks.fused_encoders --what step --batch_size 64

`check_equal` is the proof that the fused graph computes the same outputs
and gradients as the separate models (benchmarks/tests/test_fused.py).
"""

import argparse
import dataclasses
import time

import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from kfactor.lab import demo

import keras
import numpy as np
import tensorflow as tf

from benchmarks import models
from benchmarks import steps as steps_lib

NUM_ENCODERS = 6  # the common encoder + 5 task encoders
CODE_DIM = 20  # a task code layer's 2 * latent (the common's is 10)
EPSILON = 1e-3  # Keras BatchNormalization's
MOMENTUM = 0.99


def _clone_with(batch_norm_class):
    def clone(layer):
        if isinstance(layer, keras.layers.BatchNormalization):
            return batch_norm_class.from_config(layer.get_config())
        return layer.__class__.from_config(layer.get_config())

    return clone


def with_batch_norm(model, batch_norm_class):
    """A copy of `model` (same weights), its batch norms of the given class.

    `keras.layers.BatchNormalization` (Keras's, from `moments`) or
    `kfactor.layers.normalization.FusedBatchNormalization` (one fused kernel,
    what `simple_conv64(normalization="batch")` builds).
    """
    clone = keras.models.clone_model(
        model, clone_function=_clone_with(batch_norm_class)
    )
    clone.set_weights(model.get_weights())
    return clone


def separate_encoders(
    widths, count=NUM_ENCODERS, code_dim=CODE_DIM, keras_bn=False
):
    """`count` batch-normalized `simple_conv64` encoders, as the demo's.

    `keras_bn`: with Keras's own batch norm instead of kfactor's fused one.
    """
    encoders = []
    for i in range(count):
        model = kfactor.zoo.simple_conv64(
            code_dim, widths=widths, normalization="batch", name=f"enc{i}"
        )
        if keras_bn:
            model = with_batch_norm(model, keras.layers.BatchNormalization)
        encoders.append(model)
    return encoders


def _tensor(variable):
    return tf.convert_to_tensor(variable)


def _convs(model):
    """The convolutions of a `simple_conv64` (`conv1` ... `conv6`)."""
    return [
        layer
        for layer in model.layers
        if layer.name.startswith("conv") and "_" not in layer.name
    ]


class FusedEncoders:
    """N encoders' weights stacked: one graph runs them all.

    Built from separate encoders (same weights), so that both can be
    compared; `split_weights()` gives each encoder's weights back, which is
    what saving each factor on its own would need.
    """

    def __init__(self, encoders, fused_bn=False):
        self.count = len(encoders)
        self.fused_bn = fused_bn
        per_layer = zip(*[_layers(m) for m in encoders])
        self.kernels, self.gammas, self.betas = [], [], []
        self.moving_means, self.moving_vars = [], []
        for convs in per_layer:
            kernels = [_tensor(c.kernel) for c, _ in convs]
            self.kernels.append(tf.Variable(tf.concat(kernels, axis=-1)))
            norms = [n for _, n in convs]
            for name, store in (
                ("gamma", self.gammas),
                ("beta", self.betas),
            ):
                stacked = tf.concat(
                    [_tensor(getattr(n, name)) for n in norms], 0
                )
                store.append(tf.Variable(stacked))
            for name, store in (
                ("moving_mean", self.moving_means),
                ("moving_variance", self.moving_vars),
            ):
                stacked = tf.concat(
                    [_tensor(getattr(n, name)) for n in norms], 0
                )
                store.append(tf.Variable(stacked, trainable=False))
        denses = [m.get_layer("latent") for m in encoders]
        kernels = [_tensor(d.kernel) for d in denses]
        self.dense_kernel = tf.Variable(tf.stack(kernels))
        self.dense_bias = tf.Variable(
            tf.stack([_tensor(d.bias) for d in denses])
        )

    @property
    def trainable_variables(self):
        return [
            *self.kernels,
            *self.gammas,
            *self.betas,
            self.dense_kernel,
            self.dense_bias,
        ]

    def _normalize(self, x, index, training):
        gamma, beta = self.gammas[index], self.betas[index]
        mean_var = self.moving_means[index], self.moving_vars[index]
        if self.fused_bn and training and x.shape.rank == 4:
            y, mean, var = tf.compat.v1.nn.fused_batch_norm(
                x, gamma, beta, epsilon=EPSILON, is_training=True
            )
            count = tf.cast(tf.size(x) // tf.shape(x)[-1], "float32")
            var = var * (count - 1.0) / count  # the op's is Bessel-corrected
        else:
            axes = list(range(x.shape.rank - 1))
            mean, var = tf.nn.moments(x, axes)
            y = tf.nn.batch_normalization(x, mean, var, beta, gamma, EPSILON)
        if training:
            for moving, value in zip(mean_var, (mean, var)):
                moving.assign(MOMENTUM * moving + (1 - MOMENTUM) * value)
        return tf.nn.relu(y)

    def _last_conv(self, x, kernel):
        """2x2 -> 1x1 grouped k=4 s=2 convolution: N batched matmuls."""
        batch, n = tf.shape(x)[0], self.count
        c_in, c_out = kernel.shape[2], kernel.shape[3] // n
        x = tf.reshape(x, [batch, 2, 2, n, c_in])
        x = tf.reshape(tf.transpose(x, [3, 0, 1, 2, 4]), [n, batch, 4 * c_in])
        taps = tf.reshape(kernel[1:3, 1:3], [2, 2, c_in, n, c_out])
        taps = tf.reshape(tf.transpose(taps, [3, 0, 1, 2, 4]), [n, -1, c_out])
        return tf.matmul(x, taps)  # [n, batch, c_out]

    def __call__(self, images, training=True):
        """`[N, batch, code_dim]`: every encoder's output."""
        x = images * 2.0 - 1.0
        last = len(self.kernels) - 1
        for index, kernel in enumerate(self.kernels):
            if index < last:
                x = tf.nn.conv2d(x, kernel, 2, "SAME")
                x = self._normalize(x, index, training)
            else:
                x = self._last_conv(x, kernel)
                n, b, c = self.count, tf.shape(x)[1], x.shape[-1]
                x = tf.reshape(tf.transpose(x, [1, 0, 2]), [b, n * c])
                x = self._normalize(x, index, training)
                x = tf.transpose(tf.reshape(x, [b, n, c]), [1, 0, 2])
        return tf.matmul(x, self.dense_kernel) + self.dense_bias[:, None]

    def split_weights(self):
        """Each encoder's `[kernel, gamma, beta, mean, var] x 6 + dense`."""
        n = self.count
        parts = [
            [tf.split(v, n, axis=-1) for v in self.kernels],
            [tf.split(v, n) for v in self.gammas],
            [tf.split(v, n) for v in self.betas],
            [tf.split(v, n) for v in self.moving_means],
            [tf.split(v, n) for v in self.moving_vars],
        ]
        weights = []
        for e in range(n):
            layers = []
            for layer in range(len(self.kernels)):
                layers += [p[layer][e] for p in parts]
            layers += [self.dense_kernel[e], self.dense_bias[e]]
            weights.append([w.numpy() for w in layers])
        return weights


def _layers(model):
    """`[(conv, batch_norm)] x 6` of a batch-normalized `simple_conv64`."""
    return [
        (conv, model.get_layer(f"{conv.name}_bn")) for conv in _convs(model)
    ]


def separate_forward(encoders, images, training=True):
    return tf.stack([m(images, training=training) for m in encoders])


def loss_of(codes):
    """A stand-in loss touching every code."""
    return tf.reduce_mean(tf.square(codes))


def train_step(forward, variables, optimizer, jit_compile=False):
    """`step(images)`: forward, backward and Adam of all N encoders."""

    @tf.function(jit_compile=jit_compile)
    def step(images):
        with tf.GradientTape() as tape:
            loss = loss_of(forward(images))
        grads = tape.gradient(loss, variables)
        optimizer.apply(grads, variables)
        return loss

    return step


def check_equal(widths, batch_size=16, atol=1e-4):
    """Max |difference| of outputs and gradients, fused vs separate."""
    encoders = separate_encoders(widths)
    images = tf.constant(
        np.random.default_rng(0).integers(0, 2, (batch_size, 64, 64, 1)),
        "float32",
    )
    fused = FusedEncoders(encoders)
    with tf.GradientTape(persistent=True) as tape:
        a = separate_forward(encoders, images)
        b = fused(images)
        loss_a, loss_b = loss_of(a), loss_of(b)
    variables = [m.trainable_variables for m in encoders]
    grads_a = tape.gradient(loss_a, variables)
    grads_b = tape.gradient(loss_b, fused.trainable_variables)
    stacked = restack_gradients(grads_a, len(fused.kernels))
    diffs = [float(tf.reduce_max(tf.abs(a - b)))]
    diffs += [
        float(tf.reduce_max(tf.abs(x - y))) for x, y in zip(stacked, grads_b)
    ]
    return float(loss_a), float(loss_b), max(diffs)


def restack_gradients(per_encoder, num_convs):
    """Separate encoders' gradients in `FusedEncoders` variable order.

    Each encoder's trainable variables: `[kernel, gamma, beta] x convs,
    dense kernel, dense bias`.
    """
    kernels = [
        tf.concat([g[3 * i] for g in per_encoder], -1) for i in range(num_convs)
    ]
    gammas = [
        tf.concat([g[3 * i + 1] for g in per_encoder], 0)
        for i in range(num_convs)
    ]
    betas = [
        tf.concat([g[3 * i + 2] for g in per_encoder], 0)
        for i in range(num_convs)
    ]
    dense = [tf.stack([g[-2] for g in per_encoder])]
    dense += [tf.stack([g[-1] for g in per_encoder])]
    return [*kernels, *gammas, *betas, *dense]


def _separate_step(encoders):
    variables = [v for m in encoders for v in m.trainable_variables]
    return train_step(
        lambda x: separate_forward(encoders, x),
        variables,
        keras.optimizers.Adam(1e-4),
    )


def variants(widths, xla=False):
    """name -> training step of the same N encoders."""
    encoders = separate_encoders(widths)
    steps = {
        "separate": _separate_step(encoders),
        "separate+keras_bn": _separate_step(
            separate_encoders(widths, keras_bn=True)
        ),
    }
    fused_variants = [("fused", False, False), ("fused+fused_bn", True, False)]
    if xla:
        fused_variants.append(("fused+xla", False, True))
    for name, fused_bn, xla in fused_variants:
        fused = FusedEncoders(encoders, fused_bn=fused_bn)
        steps[name] = train_step(
            fused,
            fused.trainable_variables,
            keras.optimizers.Adam(1e-4),
            jit_compile=xla,
        )
    return steps


def measure(widths, batch_size, rounds, seconds, xla=False):
    """Interleaved rounds (direction alternating): images/s per variant."""
    images = tf.constant(
        np.random.default_rng(0).integers(0, 2, (batch_size, 64, 64, 1)),
        "float32",
    )
    steps = variants(widths, xla)
    for step in steps.values():
        float(step(images))  # trace
        float(step(images))
    rates = {name: [] for name in steps}
    for r in range(rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for name in order:
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                loss = steps[name](images)
                calls += 1
            float(loss)
            elapsed = time.perf_counter() - start
            rates[name].append(calls * batch_size / elapsed)
    return rates


# === The factorization step itself: Keras BN vs the one-kernel BN ===


def factorizers(width):
    """name -> the benchmark's factorizer (`models.py`), BN variants.

    `fused_kernel_bn` is what kfactor trains (`FusedBatchNormalization`);
    `keras_bn` the same factorizer (same teacher and weights) with Keras's
    `BatchNormalization` in the teacher, common and task encoders; `no_bn`
    the encoders without batch norm (`normalization=None`, the reference's).
    """
    config = models.demo_config(width)
    base = models.build_factorizer(width)
    stock = keras.layers.BatchNormalization
    teacher = with_batch_norm(base.teacher, stock)
    tasks = {
        task: kfactor.TaskFactor(
            with_batch_norm(factor.encoder, stock),
            variational=True,
            initial_log_var=config.initial_log_var,
            name=f"task_{task}",
        )
        for task, factor in base.task_factors.items()
    }
    common = with_batch_norm(base.common.encoder, stock)
    keras_bn = kfactor.Factorizer(
        teacher, common=common, tasks=tasks, beta=config.beta
    )
    plain = dataclasses.replace(config, normalization=None)
    no_bn = demo.build_factorizer(demo.build_teacher(plain), plain)
    return {"keras_bn": keras_bn, "fused_kernel_bn": base, "no_bn": no_bn}


def factorization_rates(width, batch_size, rounds, seconds):
    """Interleaved rounds of each factorizer's `train_function`, images/s."""
    batches = models.cached_batches(batch_size)
    steps = {}
    for name, factorizer in factorizers(width).items():
        factorizer.compile(optimizer=keras.optimizers.Adam(1e-4))
        steps_lib.build_optimizer(factorizer)
        factorizer.make_train_function()
        steps[name] = factorizer
        for batch in batches[:2]:
            factorizer.train_function([batch])  # trace, warm up
    rates = {name: [] for name in steps}
    for r in range(rounds):
        order = list(steps) if r % 2 == 0 else list(steps)[::-1]
        for name in order:
            calls, start = 0, time.perf_counter()
            while time.perf_counter() - start < seconds:
                logs = steps[name].train_function([batches[calls % 4]])
                calls += 1
            float(logs["loss"])
            rates[name].append(
                calls * batch_size / (time.perf_counter() - start)
            )
    return rates


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", default="narrow")
    parser.add_argument("--batch_size", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument(
        "--xla", action="store_true", help="also the fused form under XLA"
    )
    parser.add_argument(
        "--what",
        choices=("encoders", "step"),
        default="encoders",
        help="the N encoders alone, or the whole factorization step "
        "(Keras BN / fused-kernel BN / no BN)",
    )
    args = parser.parse_args(argv)
    if args.what == "step":
        rates = factorization_rates(
            args.widths, args.batch_size, args.rounds, args.seconds
        )
        print_rates(rates, "keras_bn", args)
        return
    widths = models.WIDTHS[args.widths]
    print("fused vs separate (loss, loss, max |diff|):", check_equal(widths))
    rates = measure(
        widths, args.batch_size, args.rounds, args.seconds, args.xla
    )
    print_rates(rates, "separate", args)


def print_rates(rates, baseline, args):
    """Median images/s and per-round ratio to `baseline` of each variant."""
    base = rates[baseline]
    print(f"{args.widths}, batch {args.batch_size}, {args.rounds} rounds")
    for name, values in rates.items():
        ratios = [v / b for v, b in zip(values, base)]
        print(
            f"{name:>16}: {np.median(values):8.0f} images/s, "
            f"x{np.median(ratios):.2f} {baseline} "
            f"[{min(ratios):.2f}, {max(ratios):.2f}]"
        )


if __name__ == "__main__":
    main()
