"""The InfoMax-Bottleneck objective as small loss objects.

The factorization loss is a weighted sum of `FactorLoss` terms, each computed
from one `FactorOutputs` (everything one forward pass produced) and the labels:

```none
L = w_max * InfoMax + w_min * InfoMin + w_kd * KD + w_cls * CE(Head(z_c + z_t))
    + w_task * CE(TaskHead(z_t))
```

`kfactor.objective.imb.imb_objective(**options)` builds the default list.

The terms are `keras.ops` over `kfactor.objective.divergences`. What stays
TensorFlow and why: `SoftTargetKD`'s KL is TFP's (`tfd.kl_divergence` of
Categoricals from logits; Keras's `KLDivergence` loss takes clipped
probabilities, not logits), and the MI bounds are `kfactor.objective.mi`'s
(thin functions over `tfp.vi`, STYLE #5).
"""

import collections

from kfactor.objective import mi
from kfactor.objective.divergences import batch_moment_kl
from kfactor.objective.divergences import gather_replicas
from kfactor.objective.divergences import smoothed_cross_entropy
from kfactor.objective.divergences import vib_kl

import keras
import tensorflow_probability as tfp
from keras import ops

tfd = tfp.distributions

#: The "classy_vision" smoothing of mmcls's `LabelSmoothLoss(0.1)`.
REFERENCE_LABEL_SMOOTHING = 0.1 / 1.1

FactorOutputs = collections.namedtuple(
    "FactorOutputs",
    [
        "teacher_logits",
        "teacher_features",
        "common_features",
        "common_code",
        "task_codes",
        "logits",
        "aux_logits",
        "teacher_raw_features",
    ],
    defaults=(None,),
)
FactorOutputs.__doc__ = """Everything one factorization forward pass produced.

Fields: `teacher_logits` and `logits`/`aux_logits` are dicts task -> logits
(combined head and auxiliary head); `teacher_features` (projected) and
`common_features` are lists, one entry per InfoMax level; `common_code` is
`z_common`; `task_codes` is a dict task ->
`kfactor.layers.factor_layers.TaskCode`; `teacher_raw_features` are the
teacher's features before the InfoMax projections (frozen, one per level;
`None` where a model has no teacher features).
"""


def _float32(x):
    """Losses, KL and MI bounds run in float32 under mixed precision."""
    return ops.cast(x, "float32")


class FactorLoss:
    """Base class of the factorization loss terms.

    Subclasses implement `compute_loss`, which returns the unweighted term;
    the `Factorizer` multiplies it by `weight`, reports it as `<name>_loss`
    and adds it to the total.

    A term that learns (a regressor, an adversary) or keeps state (a memory
    queue) creates its Keras layers in `build(outputs)`, which the
    `Factorizer` calls once on a probe forward pass, and lists them in
    `layers`: their weights train with the factors and are never saved with
    them. `update_state(outputs)` runs after each *training* step's loss.
    A built term belongs to one `Factorizer`.

    Args:
        weight: the term's weight in the total loss.
    """

    name = "factor"

    def __init__(self, weight=1.0):
        if not isinstance(weight, (int, float)) or weight < 0:
            raise ValueError(
                f"Expected a non-negative number as the weight of "
                f"{type(self).__name__}. Received: weight={weight!r}"
            )
        self.weight = float(weight)

    def compute_loss(self, outputs, labels):
        """Returns the unweighted scalar term.

        Args:
            outputs: a `FactorOutputs`.
            labels: dict task -> integer labels `[batch]`.
        """
        raise NotImplementedError(
            f"{type(self).__name__} must implement compute_loss()."
        )

    def validate(self, factorizer):
        """Raises if this term cannot work with `factorizer`'s factors."""

    @property
    def layers(self):
        """The Keras layers this term owns (made by `build`)."""
        return list(getattr(self, "_layers", []))

    def build(self, outputs):
        """Makes the term's layers from one `FactorOutputs` (probe pass).

        Raises:
            ValueError: if the term was built already (by another
                `Factorizer`).
        """
        if getattr(self, "_built", False):
            raise ValueError(
                f"This {type(self).__name__} is already built for another "
                "Factorizer, and its layers would be shared. Fix: give each "
                "Factorizer its own loss objects (e.g. a fresh "
                "kfactor.imb_objective(...))."
            )
        self._layers = self.make_layers(outputs)
        self._built = True

    def make_layers(self, outputs):
        """Returns the term's built layers (none by default)."""
        return []

    def update_state(self, outputs):
        """Updates the term's state after a training step's loss."""
        del outputs  # a body besides the docstring: autograph can parse it

    def get_config(self):
        return {"weight": self.weight}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        options = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({options})"


@keras.saving.register_keras_serializable(package="kfactor")
class InfoMaxLoss(FactorLoss):
    """Maximises MI between projected teacher and common features.

    `-mean_l bound(cosine_scores(P_l(t_l), c_l) / temperature)` over the
    InfoMax levels, with `bound` one of `kfactor.objective.mi.ESTIMATORS`.

    The default is InfoNCE with temperature 0.1: its loss is lowest
    (`-log B`) when each common code identifies its own image's teacher
    feature, and exactly 0 (the value of zero information) for any collapse
    of either side to a constant. The reference's `"dv"` formula is kept
    for comparison only: minimised, its optimum is the *anti-aligned
    collapse* (a constant common code, the projected teacher its negative:
    about `-1 + 1/B`), which is what the shipped factors of kfactor 0.x
    learned (common-code cosine 0.999).

    Args:
        weight: lambda_feat (1.0 in the reference).
        estimator: `"infonce"` (default), `"dv"` (the reference's variant),
            `"jsd"` or `"nwj"`.
        temperature: divisor of the cosine critic (1.0 in the reference,
            0.1 here: at 1.0 the InfoNCE scores span only [-1, 1] and the
            loss barely separates information from none).
    """

    name = "infomax"

    def __init__(self, weight=1.0, estimator="infonce", temperature=0.1):
        super().__init__(weight)
        self.bound = mi.get_estimator(estimator)
        if temperature <= 0:
            raise ValueError(
                f"Expected temperature > 0. Received: temperature={temperature}"
            )
        self.estimator = estimator
        self.temperature = temperature

    def compute_loss(self, outputs, labels):
        bounds = [
            self.bound(
                mi.cosine_scores(
                    gather_replicas(_float32(teacher)),
                    gather_replicas(_float32(common)),
                    self.temperature,
                )
            )
            for teacher, common in zip(
                outputs.teacher_features, outputs.common_features
            )
        ]
        return -ops.mean(ops.stack(bounds))

    def get_config(self):
        return {
            **super().get_config(),
            "estimator": self.estimator,
            "temperature": self.temperature,
        }


@keras.saving.register_keras_serializable(package="kfactor")
class InfoMinLoss(FactorLoss):
    """Squeezes every task code through a variational bottleneck.

    Summed over tasks. `mode="vib"` is the per-sample KL of the Gaussian
    posterior to N(0, I) (summed over dims, averaged over the batch);
    `mode="batch_moments"` is the reference's batch-statistics variant;
    `mode="auto"` uses VIB for variational factors and batch moments for
    deterministic ones.

    Args:
        weight: beta (1e-3 in the reference).
        mode: `"auto"`, `"vib"` or `"batch_moments"`.
    """

    name = "infomin"
    MODES = ("auto", "vib", "batch_moments")

    def __init__(self, weight=1e-3, mode="auto"):
        super().__init__(weight)
        if mode not in self.MODES:
            raise ValueError(
                f"Expected mode in {self.MODES}. Received: mode={mode!r}"
            )
        self.mode = mode

    def validate(self, factorizer):
        if self.mode != "vib":
            return
        deterministic = [
            task
            for task, factor in factorizer.task_factors.items()
            if not factor.variational
        ]
        if deterministic:
            raise ValueError(
                "InfoMinLoss(mode='vib') needs variational task factors, but "
                f"these are deterministic: {deterministic}. Fix: use "
                "mode='auto' or 'batch_moments', or TaskFactor(variational="
                "True)."
            )

    def _task_kl(self, code):
        if code.log_var is not None and self.mode != "batch_moments":
            return vib_kl(_float32(code.mean), _float32(code.log_var))
        return batch_moment_kl(_float32(code.mean))

    def compute_loss(self, outputs, labels):
        return ops.sum(
            ops.stack([self._task_kl(c) for c in outputs.task_codes.values()])
        )

    def get_config(self):
        return {**super().get_config(), "mode": self.mode}


@keras.saving.register_keras_serializable(package="kfactor")
class LogitsKD(FactorLoss):
    """MSE between student and teacher logits (the dSprites config's KD).

    One mean over the concatenated logits of all tasks, as the reference:
    every logit weighs the same, so tasks with more classes weigh more.

    Args:
        weight: lambda_kd (0.1 in the reference).
    """

    name = "kd"

    def __init__(self, weight=0.1):
        super().__init__(weight)

    def compute_loss(self, outputs, labels):
        tasks = list(outputs.logits)
        student = ops.concatenate([outputs.logits[t] for t in tasks], axis=-1)
        teacher = ops.concatenate(
            [outputs.teacher_logits[t] for t in tasks], axis=-1
        )
        return ops.mean(ops.square(_float32(student) - _float32(teacher)))


@keras.saving.register_keras_serializable(package="kfactor")
class SoftTargetKD(FactorLoss):
    """Hinton's soft-target KD: `T^2 * KL(p_teacher || p_student)`.

    Per task, with `p = softmax(logits / T)`, averaged over the batch and
    summed over tasks.

    Args:
        weight: lambda_kd.
        temperature: T (10 in the reference CIFAR configs).
    """

    name = "kd"

    def __init__(self, weight=0.1, temperature=4.0):
        super().__init__(weight)
        if temperature <= 0:
            raise ValueError(
                f"Expected temperature > 0. Received: temperature={temperature}"
            )
        self.temperature = temperature

    def compute_loss(self, outputs, labels):
        t = self.temperature
        terms = []
        for task, student in outputs.logits.items():
            teacher = tfd.Categorical(
                logits=_float32(outputs.teacher_logits[task]) / t
            )
            pupil = tfd.Categorical(logits=_float32(student) / t)
            terms.append(ops.mean(tfd.kl_divergence(teacher, pupil)))
        return t * t * ops.sum(ops.stack(terms))

    def get_config(self):
        return {**super().get_config(), "temperature": self.temperature}


@keras.saving.register_keras_serializable(package="kfactor")
class TaskLoss(FactorLoss):
    """Label-smoothed CE of each factor network `Head(z_c + z_t)`.

    Summed over tasks. `imb_objective(factor_head_weight=...)` sets its
    weight (formerly `cls_weight`); it logs as `cls_loss`.

    Args:
        weight: weight of the term (1.0 in the reference).
        label_smoothing: eps of `onehot * (1 - eps) + eps / K`; the default is
            the reference's classy_vision smoothing 0.1 / 1.1.
    """

    name = "cls"
    _logits_field = "logits"

    def __init__(self, weight=1.0, label_smoothing=REFERENCE_LABEL_SMOOTHING):
        super().__init__(weight)
        if not 0.0 <= label_smoothing < 1.0:
            raise ValueError(
                "Expected 0 <= label_smoothing < 1. "
                f"Received: label_smoothing={label_smoothing}"
            )
        self.label_smoothing = label_smoothing

    def compute_loss(self, outputs, labels):
        logits = getattr(outputs, self._logits_field)
        return ops.sum(
            ops.stack(
                [
                    smoothed_cross_entropy(
                        labels[task], logits[task], self.label_smoothing
                    )
                    for task in logits
                ]
            )
        )

    def get_config(self):
        return {**super().get_config(), "label_smoothing": self.label_smoothing}


@keras.saving.register_keras_serializable(package="kfactor")
class AuxTaskLoss(TaskLoss):
    """CE of the auxiliary head on the task code alone, `TaskHead(z_t)`.

    The relevance half of each task's information bottleneck, I(Z_t; Y).
    Same arguments as `TaskLoss`; used only in training.
    `imb_objective(aux_head_weight=...)` sets its weight (formerly
    `task_weight`); it logs as `aux_loss`.
    """

    name = "aux"
    _logits_field = "aux_logits"


def total_loss(losses, outputs, labels):
    """Returns `(total, {"<name>_loss": weighted term})`."""
    terms = {
        f"{loss.name}_loss": loss.weight * loss.compute_loss(outputs, labels)
        for loss in losses
    }
    total = ops.sum(ops.stack(list(terms.values())))
    return total, terms


__all__ = [
    "AuxTaskLoss",
    "FactorLoss",
    "FactorOutputs",
    "InfoMaxLoss",
    "InfoMinLoss",
    "LogitsKD",
    "SoftTargetKD",
    "TaskLoss",
    "total_loss",
]
