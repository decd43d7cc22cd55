"""`imb_objective`: the default list of InfoMax-Bottleneck loss terms.

```none
L = w_max * InfoMax + w_hint * Hint + w_queue * QueueInfoMax
    + w_min * InfoMin + w_kd * KD + w_factor_head * CE(Head(z_c + z_t))
    + w_aux_head * CE(TaskHead(z_t)) + w_adv * CrossTaskAdversary
```

The reference (method reference section 2.2) has the InfoMax, InfoMin,
KD and the two CE terms; the hint, the queue bound and the cross-task
adversary are kfactor's (section 8: what moves the teacher's knowledge into
a common factor that starts at random, and what keeps task codes to their
task). Which of them are on by default was chosen by measurement
(docs/RESULTS.md).

Renamed options: `cls_weight` is now `factor_head_weight` and `task_weight`
`aux_head_weight` (the names say which head's CE they weight). The old
names still work, with a `FutureWarning` (shown by default, also when
`imb_objective` is reached through `Factorizer(**objective_options)`).
"""

import functools
import inspect
import sys
import warnings

from kfactor.objective.cross_task import CrossTaskAdversary
from kfactor.objective.losses import REFERENCE_LABEL_SMOOTHING
from kfactor.objective.losses import AuxTaskLoss
from kfactor.objective.losses import InfoMaxLoss
from kfactor.objective.losses import InfoMinLoss
from kfactor.objective.losses import LogitsKD
from kfactor.objective.losses import SoftTargetKD
from kfactor.objective.losses import TaskLoss
from kfactor.objective.transfer import HintLoss
from kfactor.objective.transfer import QueueInfoMaxLoss

KD_LOSSES = {"mse": LogitsKD, "soft_target": SoftTargetKD}

#: Deprecated `imb_objective` option -> the option that replaces it.
_RENAMED_OPTIONS = {
    "cls_weight": "factor_head_weight",
    "task_weight": "aux_head_weight",
}
_WEIGHTED_HEADS = {
    "factor_head_weight": "the factor networks' head CE, Head(z_c + z_t)",
    "aux_head_weight": "the auxiliary TaskHead(z_t) CE",
}


def _user_stacklevel():
    """`warnings.warn`'s stacklevel, from its caller, of the first frame
    outside kfactor: the warning names the user's line."""
    level, frame = 2, sys._getframe(2)
    while frame is not None:
        module = frame.f_globals.get("__name__", "")
        if module != "kfactor" and not module.startswith("kfactor."):
            break
        level, frame = level + 1, frame.f_back
    return level


def _renamed(kwargs, positional):
    """`kwargs` with the deprecated names of `_RENAMED_OPTIONS` renamed.

    Each old name warns (`FutureWarning`); an old name given with its new
    one is a `ValueError`.
    """
    kwargs = dict(kwargs)
    for old, new in _RENAMED_OPTIONS.items():
        if kwargs.get(old) is None:  # not given (None: its default)
            kwargs.pop(old, None)
            continue
        if new in kwargs or new in positional:
            given = (
                f"{new}={kwargs[new]!r}"
                if new in kwargs
                else f"{new} (positional)"
            )
            raise ValueError(
                f"Expected either {new} or its deprecated alias {old}, not "
                f"both. Received: {old}={kwargs[old]!r} and {given}. Fix: "
                f"pass {new} only."
            )
        warnings.warn(
            f"imb_objective's option {old} is deprecated and will be "
            f"removed: it weights {_WEIGHTED_HEADS[new]}. Pass "
            f"{new}={kwargs[old]!r} instead (same effect).",
            FutureWarning,
            stacklevel=_user_stacklevel(),
        )
        kwargs[new] = kwargs.pop(old)
    return kwargs


def _accepts_renamed_options(function):
    """`function`, also taking `_RENAMED_OPTIONS`' old names as keywords.

    Its signature lists them (keyword-only, default None), so that
    `inspect.signature` (the `Factorizer`'s option check) accepts them.
    """
    signature = inspect.signature(function)
    names = list(signature.parameters)

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        kwargs = _renamed(kwargs, positional=names[: len(args)])
        return function(*args, **kwargs)

    wrapper.__signature__ = signature.replace(
        parameters=[
            *signature.parameters.values(),
            *(
                inspect.Parameter(
                    old, inspect.Parameter.KEYWORD_ONLY, default=None
                )
                for old in _RENAMED_OPTIONS
            ),
        ]
    )
    return wrapper


@_accepts_renamed_options
def imb_objective(
    infomax_weight=1.0,
    infomax_estimator="infonce",
    infomax_temperature=0.1,
    hint_weight=10.0,
    queue_weight=0.0,
    queue_size=4096,
    beta=1e-3,
    infomin_mode="auto",
    kd="mse",
    kd_weight=0.1,
    kd_temperature=4.0,
    factor_head_weight=1.0,
    aux_head_weight=1.0,
    label_smoothing=REFERENCE_LABEL_SMOOTHING,
    adversary_weight=3.0,
    adversary_reversal=1.0,
    adversary_mode="confusion",
    adversary_exclude=(),
):
    """Builds the InfoMax-Bottleneck objective, one `FactorLoss` per term.

    A term whose weight is 0 is left out.

    Args:
        infomax_weight: lambda_feat of `InfoMaxLoss` (in-batch bound).
        infomax_estimator: its bound (`kfactor.objective.mi.ESTIMATORS`).
        infomax_temperature: its critic's temperature.
        hint_weight: weight of `HintLoss`, the regression of each
            standardized teacher feature on the common feature. 10 by
            default: from a random start, it is what moved the teacher's
            knowledge of factors no task asked for into `z_common`
            (docs/RESULTS.md).
        queue_weight: weight of `QueueInfoMaxLoss`, InfoNCE against a queue
            of `queue_size` earlier teacher features.
        queue_size: K of the queue.
        beta: `InfoMinLoss`'s weight (the bottleneck).
        infomin_mode: `InfoMinLoss`'s mode.
        kd: `"mse"` (`LogitsKD`) or `"soft_target"` (`SoftTargetKD`).
        kd_weight: lambda_kd.
        kd_temperature: T of the soft-target KD.
        factor_head_weight: weight of the factor networks' head CE,
            `Head(z_c + z_t)` (`TaskLoss`, the `cls` term). Formerly
            `cls_weight` (deprecated alias: warns).
        aux_head_weight: weight of the auxiliary heads' CE, `TaskHead(z_t)`
            on the task code alone (`AuxTaskLoss`, the `aux` term). Formerly
            `task_weight` (deprecated alias: warns).
        label_smoothing: of both CE terms.
        adversary_weight: weight of `CrossTaskAdversary` (3 by default:
            from scratch it lowered every leakage cell's worst case and
            raised the factor networks' accuracy, docs/RESULTS.md; it adds
            nothing with one task).
        adversary_reversal: its encoders' side (confusion weight or
            gradient-reversal scale).
        adversary_mode: `"confusion"` or `"reversal"`.
        adversary_exclude: its `(code task, label task)` pairs left out.

    Example:

    >>> [loss.name for loss in imb_objective(beta=0.0)]
    ['infomax', 'hint', 'kd', 'cls', 'aux', 'adversary']
    """
    if kd not in KD_LOSSES:
        raise ValueError(
            f"Expected kd in {sorted(KD_LOSSES)}. Received: {kd!r}"
        )
    kd_loss = (
        LogitsKD(kd_weight)
        if kd == "mse"
        else SoftTargetKD(kd_weight, temperature=kd_temperature)
    )
    losses = [
        InfoMaxLoss(
            infomax_weight,
            estimator=infomax_estimator,
            temperature=infomax_temperature,
        ),
        HintLoss(hint_weight),
        QueueInfoMaxLoss(queue_weight, queue_size=queue_size),
        InfoMinLoss(beta, mode=infomin_mode),
        kd_loss,
        TaskLoss(factor_head_weight, label_smoothing=label_smoothing),
        AuxTaskLoss(aux_head_weight, label_smoothing=label_smoothing),
        CrossTaskAdversary(
            adversary_weight,
            reversal=adversary_reversal,
            mode=adversary_mode,
            exclude=adversary_exclude,
        ),
    ]
    return [loss for loss in losses if loss.weight > 0]


__all__ = [
    "KD_LOSSES",
    "imb_objective",
]
