"""Wiring of the InfoMax term: the common layers it reads, the projections.

InfoMax pairs teacher features (`teacher_features`, read by
`kfactor.layers.features.TeacherReader`) with common features
(`common_features`, or the common code), one `ProjectionMLP` a level mapping
the teacher's feature to the common feature's width.
"""

from kfactor.layers.factor_layers import ProjectionMLP
from kfactor.layers.features import feature_model


def common_reader(encoder, teacher_features, common_features):
    """The model images -> (code, [common features]), or `None`.

    `None` when `common_features` is `None`: InfoMax then pairs the one
    teacher feature with the common code.

    Raises:
        ValueError: if `common_features` does not name as many layers as
            `teacher_features` (`"auto"` counts as one).
    """
    levels = 1 if teacher_features == "auto" else len(teacher_features)
    if common_features is None:
        if levels != 1:
            raise ValueError(
                f"teacher_features names {levels} layers, so "
                "common_features must name as many common layers. "
                "Received: common_features=None"
            )
        return None
    if len(common_features) != levels:
        raise ValueError(
            "Expected as many common_features as teacher_features. "
            f"Received: teacher_features={teacher_features}, "
            f"common_features={common_features}"
        )
    return feature_model(encoder, common_features, "common_reader")


def projections(teacher_features, common_features):
    """One built `ProjectionMLP` a level: teacher width -> common width.

    Args:
        teacher_features: list of `[batch, dim_t]` teacher features.
        common_features: list of `[batch, dim_c]` common features.
    """
    layers = []
    for level, (teacher, common) in enumerate(
        zip(teacher_features, common_features)
    ):
        projection = ProjectionMLP(
            int(common.shape[-1]), name=f"infomax_projection_{level}"
        )
        projection.build(tuple(teacher.shape))
        layers.append(projection)
    return layers


__all__ = [
    "common_reader",
    "projections",
]
