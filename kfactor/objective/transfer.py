"""InfoMax terms that move the teacher's knowledge into the common factor.

An in-batch contrastive bound cannot reward more than `log B` nats: on
dSprites with `B = 64`, a common code that holds only the labelled tasks
already reaches it (method reference section 8), so nothing pushes the
common factor toward what no task head asks for. The two terms here have a
higher ceiling or none:

- `HintLoss` (FitNets): a learned linear map from each common feature to
  the *standardized* teacher feature at the same level, trained by mean
  squared error. The teacher side is fixed (running standardization, no
  projection to co-adapt), so every teacher direction the common feature
  lacks costs loss: no ceiling.
- `QueueInfoMaxLoss` (CRD-style): InfoNCE with both sides embedded, whose
  negatives are the batch plus a memory queue of `K` earlier teacher
  features, bound up to `log(B + K)`. The queue holds the frozen teacher's
  raw features and re-embeds them each step with the current embedding, so
  its negatives never go stale (CRD's memory bank needs a momentum update
  for that).

Both read `FactorOutputs.teacher_raw_features` and `common_features`: one
pairing a level, as many levels as the `Factorizer`'s `teacher_features`.

#### References

[1]: Adriana Romero et al. FitNets: Hints for Thin Deep Nets. ICLR 2015.
[2]: Yonglong Tian, Dilip Krishnan, Phillip Isola. Contrastive
     Representation Distillation. ICLR 2020.
"""

from kfactor.objective import mi
from kfactor.objective.divergences import gather_replicas
from kfactor.objective.losses import FactorLoss

import keras
from keras import ops


def _float32(x):
    return ops.cast(x, "float32")


def _check_positive(value, argument, kind=(int, float)):
    if not isinstance(value, kind) or isinstance(value, bool) or value <= 0:
        raise ValueError(
            f"Expected {argument} > 0. Received: {argument}={value!r}"
        )


def _teacher_levels(outputs, term):
    features = outputs.teacher_raw_features
    if not features:
        raise ValueError(
            f"{term} pairs teacher and common features, but this model has "
            "no teacher features (FactorOutputs.teacher_raw_features is "
            "empty). Fix: use it with a kfactor.Factorizer."
        )
    return features


@keras.saving.register_keras_serializable(package="kfactor")
class RunningStandardizer(keras.layers.Layer):
    """Standardizes features with running per-dimension mean and variance.

    `update(x)` folds a batch into the statistics (the first batch sets
    them, later ones move them by `1 - momentum`); `call(x)` returns
    `(x - mean) / sqrt(variance + epsilon)`. Under `tf.distribute`, give
    every replica the same (global) batch: the first replica's update is
    kept.

    Example:

    >>> standardizer = RunningStandardizer()
    >>> x = np.array([[0.0, 2.0], [2.0, 6.0]], "float32")
    >>> standardizer.update(x)
    >>> np.round(standardizer(x).numpy(), 3).tolist()
    [[-1.0, -1.0], [1.0, 1.0]]
    """

    def __init__(self, momentum=0.99, epsilon=1e-5, **kwargs):
        # float32 under any policy: a mixed policy would otherwise autocast
        # the statistics to float16 in `call`.
        kwargs.setdefault("dtype", "float32")
        super().__init__(**kwargs)
        if not 0.0 <= momentum < 1.0:
            raise ValueError(
                f"Expected 0 <= momentum < 1. Received: momentum={momentum}"
            )
        self.momentum = momentum
        self.epsilon = epsilon
        self.trainable = False

    def build(self, input_shape):
        dim = (int(input_shape[-1]),)
        options = {"trainable": False, "aggregation": "only_first_replica"}
        self.mean = self.add_weight(
            shape=dim, initializer="zeros", name="mean", **options
        )
        self.variance = self.add_weight(
            shape=dim, initializer="ones", name="variance", **options
        )
        self.updates = self.add_weight(
            shape=(), initializer="zeros", name="updates", **options
        )

    def update(self, x):
        x = _float32(x)
        if not self.built:
            self.build(tuple(x.shape))
        rate = ops.where(self.updates > 0, 1.0 - self.momentum, 1.0)
        self.mean.assign(self.mean + rate * (ops.mean(x, 0) - self.mean))
        self.variance.assign(
            self.variance + rate * (ops.var(x, 0) - self.variance)
        )
        self.updates.assign(self.updates + 1.0)

    def call(self, x):
        return (_float32(x) - self.mean) / ops.sqrt(
            self.variance + self.epsilon
        )

    def get_config(self):
        return {
            **super().get_config(),
            "momentum": self.momentum,
            "epsilon": self.epsilon,
        }


@keras.saving.register_keras_serializable(package="kfactor")
class HintLoss(FactorLoss):
    """FitNets hint: regress each standardized teacher feature on the common
    feature of its level.

    `mean_l mean((W_l c_l + b_l - standardize(t_l))^2)`, with `W_l` a
    trainable linear map (common width -> teacher width) and `t_l` the
    frozen teacher's raw feature, standardized by running statistics
    (`RunningStandardizer`, updated after each training step). The loss is
    1 per dimension for a common feature that knows nothing of the teacher,
    and 0 when it determines the teacher feature linearly: every teacher
    direction counts, with no `log B` ceiling.

    Args:
        weight: the term's weight.
        momentum: of the running standardization.

    Example:

    >>> [loss.name for loss in imb_objective()][:2]
    ['infomax', 'hint']
    """

    name = "hint"

    def __init__(self, weight=1.0, momentum=0.99):
        super().__init__(weight)
        self.momentum = momentum

    def make_layers(self, outputs):
        teacher = _teacher_levels(outputs, type(self).__name__)
        layers = []
        for level, (t, c) in enumerate(zip(teacher, outputs.common_features)):
            regressor = keras.layers.Dense(
                int(t.shape[-1]),
                dtype="float32",
                name=f"hint_regressor_{level}",
            )
            regressor.build(tuple(c.shape))
            standardizer = RunningStandardizer(
                self.momentum, name=f"hint_standardizer_{level}"
            )
            standardizer.build(tuple(t.shape))
            layers += [regressor, standardizer]
        return layers

    def _pairs(self, outputs):
        layers = self.layers
        return zip(
            layers[0::2],
            layers[1::2],
            outputs.teacher_raw_features,
            outputs.common_features,
        )

    def compute_loss(self, outputs, labels):
        errors = [
            ops.mean(
                ops.square(
                    regressor(_float32(common))
                    - ops.stop_gradient(standardizer(teacher))
                )
            )
            for regressor, standardizer, teacher, common in self._pairs(outputs)
        ]
        return ops.mean(ops.stack(errors))

    def update_state(self, outputs):
        for _, standardizer, teacher, _ in self._pairs(outputs):
            standardizer.update(gather_replicas(_float32(teacher)))

    def get_config(self):
        return {**super().get_config(), "momentum": self.momentum}


@keras.saving.register_keras_serializable(package="kfactor")
class FeatureQueue(keras.layers.Layer):
    """A first-in first-out memory of the last `size` feature rows.

    `push(x)` puts the rows of `x` in front and drops the oldest; `valid`
    says which of the `size` rows hold a pushed feature yet. Under
    `tf.distribute`, push the same (global) batch on every replica.

    Example:

    >>> queue = FeatureQueue(3)
    >>> queue.push(np.array([[1.0], [2.0]], "float32"))
    >>> queue.features.numpy().ravel().tolist(), queue.valid().numpy().tolist()
    ([1.0, 2.0, 0.0], [True, True, False])
    """

    def __init__(self, size, **kwargs):
        super().__init__(**kwargs)
        _check_positive(size, "size", int)
        self.size = size
        self.trainable = False

    def build(self, input_shape):
        options = {"trainable": False, "aggregation": "only_first_replica"}
        self.features = self.add_weight(
            shape=(self.size, int(input_shape[-1])),
            initializer="zeros",
            name="features",
            **options,
        )
        self.filled = self.add_weight(
            shape=(), initializer="zeros", name="filled", **options
        )

    def push(self, x):
        x = _float32(x)
        if not self.built:
            self.build(tuple(x.shape))
        rows = ops.concatenate([x, self.features], axis=0)[: self.size]
        self.features.assign(rows)
        added = ops.cast(ops.shape(x)[0], "float32")
        self.filled.assign(ops.minimum(self.filled + added, float(self.size)))

    def valid(self):
        return ops.arange(self.size, dtype="float32") < self.filled

    def get_config(self):
        return {**super().get_config(), "size": self.size}


@keras.saving.register_keras_serializable(package="kfactor")
class QueueInfoMaxLoss(FactorLoss):
    """InfoNCE against the batch and a queue of earlier teacher features.

    Per level, the common feature and the teacher feature are each embedded
    (a linear map to `embed_dim`, then L2-normalized), and the critic is
    their cosine over `temperature`. Negatives are the other images of the
    (global) batch and the `queue_size` most recent teacher features of
    earlier batches, re-embedded each step (`FeatureQueue`); the loss is
    minus `kfactor.objective.mi.info_nce_with_memory`, whose ceiling is
    `log(B + K)` nats (`K` the filled part of the queue) instead of InfoNCE's
    `log B`.

    Args:
        weight: the term's weight.
        queue_size: K, the negatives kept from earlier batches.
        embed_dim: width of both embeddings (128 in CRD).
        temperature: of the cosine critic (0.07 in CRD).

    Example:

    >>> loss = QueueInfoMaxLoss(queue_size=4096)
    >>> loss.name
    'queue_infomax'
    """

    name = "queue_infomax"

    def __init__(
        self, weight=1.0, queue_size=4096, embed_dim=128, temperature=0.07
    ):
        super().__init__(weight)
        _check_positive(queue_size, "queue_size", int)
        _check_positive(embed_dim, "embed_dim", int)
        _check_positive(temperature, "temperature")
        self.queue_size = queue_size
        self.embed_dim = embed_dim
        self.temperature = float(temperature)

    def make_layers(self, outputs):
        teacher = _teacher_levels(outputs, type(self).__name__)
        layers = []
        for level, (t, c) in enumerate(zip(teacher, outputs.common_features)):
            embed_common = keras.layers.Dense(
                self.embed_dim, dtype="float32", name=f"crd_common_{level}"
            )
            embed_common.build(tuple(c.shape))
            embed_teacher = keras.layers.Dense(
                self.embed_dim, dtype="float32", name=f"crd_teacher_{level}"
            )
            embed_teacher.build(tuple(t.shape))
            queue = FeatureQueue(self.queue_size, name=f"crd_queue_{level}")
            queue.build(tuple(t.shape))
            layers += [embed_common, embed_teacher, queue]
        return layers

    def _levels(self, outputs):
        layers = self.layers
        return zip(
            layers[0::3],
            layers[1::3],
            layers[2::3],
            outputs.teacher_raw_features,
            outputs.common_features,
        )

    def _bound(self, embed_common, embed_teacher, queue, teacher, common):
        common = mi.l2_normalize(
            embed_common(gather_replicas(_float32(common)))
        )
        teacher = mi.l2_normalize(
            embed_teacher(gather_replicas(_float32(teacher)))
        )
        memory = mi.l2_normalize(embed_teacher(queue.features))
        scale = 1.0 / self.temperature
        return mi.info_nce_with_memory(
            scale * ops.matmul(common, ops.transpose(teacher)),
            scale * ops.matmul(common, ops.transpose(memory)),
            memory_valid=queue.valid(),
        )

    def compute_loss(self, outputs, labels):
        bounds = [self._bound(*level) for level in self._levels(outputs)]
        return -ops.mean(ops.stack(bounds))

    def update_state(self, outputs):
        for _, _, queue, teacher, _ in self._levels(outputs):
            queue.push(gather_replicas(_float32(teacher)))

    def get_config(self):
        return {
            **super().get_config(),
            "queue_size": self.queue_size,
            "embed_dim": self.embed_dim,
            "temperature": self.temperature,
        }


__all__ = [
    "FeatureQueue",
    "HintLoss",
    "QueueInfoMaxLoss",
    "RunningStandardizer",
]
