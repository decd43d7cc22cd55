"""The knowledge-distillation baseline: one multi-task student, no factors.

KF claims factor networks match a conventional KD student; this is that
student, trained with the same CE and KD terms as the factorization
(`kfactor.objective.losses.TaskLoss` and `LogitsKD`/`SoftTargetKD`), so the two
differ only by the factorization itself.

(`keras.distillation.Distiller` would be the ecosystem's choice, but in
Keras 3.15 it fails on dict outputs: its loss structure is a `TrackedDict`
that `keras.tree` will not match with the labels' `dict`.) Both baselines
train with the `Factorizer`'s step, `kfactor.training.step.LossTermsModel`:
one `_forward_and_losses`, the loss scaled to each replica's share under
`tf.distribute`. Everything here is `keras.ops`.
"""

import copy
import functools

from kfactor.data.collect import collect_outputs
from kfactor.layers.features import probe_teacher
from kfactor.layers.heads import classification_head
from kfactor.objective import losses as losses_lib
from kfactor.training.code_subspace import check_max_accuracy_drop
from kfactor.training.code_subspace import check_max_examples
from kfactor.training.code_subspace import fit_code_subspace
from kfactor.training.code_subspace import fold_into_code_layer
from kfactor.training.step import LossTermsModel

import keras
import numpy as np
from keras import ops


class _DistilledBaseline(LossTermsModel):
    """What the two baselines share: CE on labels + KD from a frozen teacher.

    Subclasses set `teacher`, `task_names` and call `_init_objective`; the
    KD term is `_kd_loss` (one term over all tasks by default). The step is
    `LossTermsModel`'s, as the `Factorizer`'s.
    """

    def _init_objective(self, kd, label_smoothing):
        self.kd = kd if kd is not None else losses_lib.LogitsKD(0.1)
        self.label_smoothing = label_smoothing
        self.cls = losses_lib.TaskLoss(1.0, label_smoothing=label_smoothing)
        self._init_trackers(["cls_loss", "kd_loss"], self.task_names)

    def _kd_loss(self, outputs, labels):
        return self.kd.compute_loss(outputs, labels)

    def _forward_and_losses(self, data, training):
        images, labels, _ = keras.utils.unpack_x_y_sample_weight(data)
        logits = self(images, training=training)
        teacher_logits = self.teacher(images, training=False)
        outputs = losses_lib.FactorOutputs(
            teacher_logits={
                t: ops.stop_gradient(teacher_logits[t]) for t in self.task_names
            },
            teacher_features=[],
            common_features=[],
            common_code=None,
            task_codes={},
            logits={t: logits[t] for t in self.task_names},
            aux_logits={},
        )
        terms = {
            "cls_loss": self.cls.compute_loss(outputs, labels),
            "kd_loss": self.kd.weight * self._kd_loss(outputs, labels),
        }
        return terms["cls_loss"] + terms["kd_loss"], terms, outputs


@keras.saving.register_keras_serializable(package="kfactor")
class DistilledStudent(_DistilledBaseline):
    """Trains `student` on labels and on a frozen `teacher`'s logits.

    Loss: `sum_task CE(student, labels) + kd.weight * kd(student, teacher)`.
    Calling the model calls the student; `fit` logs `loss`, `cls_loss`,
    `kd_loss` and `<task>_accuracy`.

    Args:
        teacher: Keras model images -> `{task: logits}` (frozen here).
        student: Keras model images -> `{task: logits}` for the same tasks.
        kd: a `kfactor.objective.losses.LogitsKD` or `SoftTargetKD`; the
        reference
            dSprites KD, `LogitsKD(0.1)`, by default.
        label_smoothing: of the students' CE.

    Example:

    >>> teacher = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> student = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS), name="student")
    >>> DistilledStudent(teacher, student).compile()
    """

    def __init__(
        self, teacher, student, kd=None, label_smoothing=0.0, **kwargs
    ):
        super().__init__(**kwargs)
        shape = tuple(teacher.input_shape[1:])
        teacher_tasks = probe_teacher(teacher, shape)
        student_tasks = probe_teacher(student, shape)
        if teacher_tasks != student_tasks:
            raise ValueError(
                "Expected the student to predict the teacher's tasks with "
                f"the same classes. Received: teacher {teacher_tasks}, "
                f"student {student_tasks}."
            )
        teacher.trainable = False
        self.teacher = teacher
        self.student = student
        self.task_names = tuple(teacher_tasks)
        self._init_objective(kd, label_smoothing)

    def call(self, images, training=False):
        return self.student(images, training=training)

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "teacher": serialize(self.teacher),
            "student": serialize(self.student),
            "kd": serialize(self.kd),
            "label_smoothing": self.label_smoothing,
        }

    @classmethod
    def from_config(cls, config):
        # Deep: deserializing consumes the nested configs.
        config = copy.deepcopy(config)
        for key in ("teacher", "student", "kd"):
            config[key] = keras.saving.deserialize_keras_object(config[key])
        return cls(**config)


@keras.saving.register_keras_serializable(package="kfactor")
class SingleTaskNetwork(keras.layers.Layer):
    """`head(code(encoder(images)))`: one task, no common factor.

    The layers of a deterministic `TaskFactor` (a `Dense` code layer of
    `code_dim` units and a head initialised like it), without the auxiliary
    head and without a common code to add.

    Args:
        encoder: Keras model or layer images -> features.
        num_classes: classes of the task.
        code_dim: size of the code.
    """

    def __init__(self, encoder, num_classes, code_dim, **kwargs):
        super().__init__(**kwargs)
        self.encoder = encoder
        self.num_classes = int(num_classes)
        self.code_dim = int(code_dim)
        self.code_layer = keras.layers.Dense(self.code_dim, name="code")
        self.head = classification_head(self.num_classes, name="head")

    def build(self, input_shape):
        if not self.encoder.built:
            self.encoder.build(input_shape)
        features = self.encoder.compute_output_shape(input_shape)
        self.code_layer.build(features)
        self.head.build((input_shape[0], self.code_dim))

    def encode(self, images, training=None):
        """The code: the input of the head."""
        return self.code_layer(self.encoder(images, training=training))

    def call(self, images, training=None):
        return self.head(self.encode(images, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], self.num_classes)

    def get_config(self):
        return {
            **super().get_config(),
            "encoder": keras.saving.serialize_keras_object(self.encoder),
            "num_classes": self.num_classes,
            "code_dim": self.code_dim,
        }

    @classmethod
    def from_config(cls, config):
        # Deep: deserializing consumes the nested configs.
        config = copy.deepcopy(config)
        config["encoder"] = keras.saving.deserialize_keras_object(
            config["encoder"]
        )
        return cls(**config)


@keras.saving.register_keras_serializable(package="kfactor")
class SingleTaskNetworks(_DistilledBaseline):
    """Independently trained single-task networks: the "knows only task k"
    reference of the disentanglement claim.

    One network per task (`SingleTaskNetwork`), each the architecture of a
    deterministic task factor (`encoder -> linear code -> linear head`) with
    the same code size, trained on its own task's labels and the
    teacher's logits for that task only. They share nothing (no common
    factor, no weight), so whatever a network's code holds about *other*
    factors it picked up incidentally; a factorization's task codes should
    hold less. Training them all in one model is the same as training each
    alone (disjoint variables, per-variable Adam) at a fraction of the cost
    (one teacher pass a batch).

    `fit` logs `loss`, `cls_loss`, `kd_loss` and `<task>_accuracy`; calling
    the model gives `{task: logits}`; `code(task, images)` the codes.

    Args:
        teacher: Keras model images -> `{task: logits}` (frozen here).
        encoders: dict task -> Keras model images -> features (use the same
            encoder architecture as the factorization's task factors).
        code_dim: size of each network's code (the task codes' size).
        kd: a `kfactor.objective.losses.LogitsKD` or `SoftTargetKD` (per task);
            `LogitsKD(0.1)` by default, as the factorization.
        label_smoothing: of the CE.

    Example:

    >>> teacher = multitask_teacher({"shape": 3},
    ...     encoder=simple_conv64(widths=NARROW_WIDTHS))
    >>> networks = SingleTaskNetworks(
    ...     teacher, {"shape": simple_conv64(None, widths=NARROW_WIDTHS)}, 10)
    >>> networks.task_names
    ('shape',)
    """

    def __init__(
        self,
        teacher,
        encoders,
        code_dim,
        kd=None,
        label_smoothing=losses_lib.REFERENCE_LABEL_SMOOTHING,
        **kwargs,
    ):
        super().__init__(**kwargs)
        shape = tuple(teacher.input_shape[1:])
        teacher_tasks = probe_teacher(teacher, shape)
        unknown = sorted(set(encoders) - set(teacher_tasks))
        if not encoders or unknown:
            raise ValueError(
                "Expected encoders as a non-empty dict keyed by teacher "
                f"tasks {sorted(teacher_tasks)}. Received keys: "
                f"{sorted(encoders)}."
            )
        teacher.trainable = False
        self.teacher = teacher
        self.image_shape = shape
        self.code_dim = int(code_dim)
        self.task_names = tuple(encoders)
        self.networks = {
            task: SingleTaskNetwork(
                encoder,
                teacher_tasks[task],
                self.code_dim,
                name=f"single_{task}",
            )
            for task, encoder in encoders.items()
        }
        for network in self.networks.values():
            network.build((None, *shape))
        self._init_objective(kd, label_smoothing)
        self.built = True

    def code(self, task, images):
        """The code of `task`'s network (the input of its head)."""
        return self.networks[task].encode(images, training=False)

    def call(self, images, training=False):
        return {
            task: network(images, training=training)
            for task, network in self.networks.items()
        }

    def _kd_loss(self, outputs, labels):
        # Per task, so that no network's KD depends on another's logits.
        return ops.sum(
            ops.stack(
                [
                    self.kd.compute_loss(
                        outputs._replace(
                            logits={t: outputs.logits[t]},
                            teacher_logits={t: outputs.teacher_logits[t]},
                        ),
                        labels,
                    )
                    for t in self.task_names
                ]
            )
        )

    def get_config(self):
        serialize = keras.saving.serialize_keras_object
        return {
            **super().get_config(),
            "teacher": serialize(self.teacher),
            "encoders": {
                t: serialize(n.encoder) for t, n in self.networks.items()
            },
            "code_dim": self.code_dim,
            "kd": serialize(self.kd),
            "label_smoothing": self.label_smoothing,
        }

    @classmethod
    def from_config(cls, config):
        # Deep: deserializing consumes the nested configs.
        config = copy.deepcopy(config)
        deserialize = keras.saving.deserialize_keras_object
        for key in ("teacher", "kd"):
            config[key] = deserialize(config[key])
        config["encoders"] = {
            t: deserialize(e) for t, e in config["encoders"].items()
        }
        return cls(**config)


def project_single_task_codes(
    networks, dataset, max_examples=10000, max_accuracy_drop=0.001
):
    """`kfactor.training.project_task_codes` for `SingleTaskNetworks`, in
    place: each network's code keeps the fewest principal directions on
    which its head is as accurate, within `max_accuracy_drop`, as on the
    whole code (the head reads the code alone: no common code is added).

    The single-task reference of a projected factorization's leakage must
    be projected the same way, or the comparison favours the factors.

    Args:
        networks: trained `SingleTaskNetworks`.
        dataset: batched `(images, {task: labels})` of training images; a
            task's labels are the only ones its projection reads.
        max_examples: how many images the directions are fitted on.
        max_accuracy_drop: in `[0, 1)`.

    Returns:
        `{task: kfactor.training.CodeSubspace}`.
    """
    check_max_accuracy_drop(max_accuracy_drop)
    check_max_examples(max_examples)
    tasks = networks.task_names
    readers = {task: functools.partial(networks.code, task) for task in tasks}
    codes, labels = collect_outputs(readers, dataset, max_examples)
    labelled = labels if isinstance(labels, dict) else {}
    missing = [t for t in tasks if t not in labelled]
    if missing:
        raise ValueError(
            "Expected the dataset's labels as a dict holding the tasks "
            f"{missing}. Received: labels without them. Fix: pass the "
            "training dataset `(images, {task: labels})`."
        )
    subspaces = {
        task: fit_code_subspace(
            networks.networks[task].head,
            np.zeros_like(codes[task], dtype="float32"),
            codes[task],
            labels[task],
            max_accuracy_drop,
        )
        for task in tasks
    }
    for task, subspace in subspaces.items():  # only once all are fitted
        fold_into_code_layer(networks.networks[task], subspace)
    return subspaces


__all__ = [
    "DistilledStudent",
    "SingleTaskNetwork",
    "SingleTaskNetworks",
    "project_single_task_codes",
]
