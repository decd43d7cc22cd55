"""kfactor: Knowledge Factorization for Keras 3 (TensorFlow backend).

Factorize a frozen multi-task teacher into one common factor and one factor
network per task, with the InfoMax-Bottleneck objective of Yang, Ye and Wang,
"Factorizing Knowledge in Neural Networks" (ECCV 2022).

`import kfactor` checks Keras's backend and nothing else: the names below
load (with TensorFlow) on first use, and no process-wide setting changes
unless you call `configure_cpu()` or run the `kfactor` command. The
subpackages hold the rest: `objective`, `layers`, `zoo`, `training`,
`factors`, `data`, `serving`, and the experiment lab, `kfactor.lab`, which
the core never imports.
"""

import importlib
import typing

from kfactor._lazy import submodule
from kfactor.backend import configure_cpu
from kfactor.backend import ensure_tensorflow_backend
from kfactor.backend import is_kfactor_command
from kfactor.backend import quiet_tensorflow_start_up
from kfactor.version import __version__

ensure_tensorflow_backend()
if is_kfactor_command():
    configure_cpu()
    with quiet_tensorflow_start_up():
        import tensorflow  # noqa: F401

#: Public name -> the module that defines it (loaded on first use).
_HOMES = {
    "CommonCollapseMonitor": "kfactor.training.callbacks",
    "CommonFactor": "kfactor.layers.factor_layers",
    "FactorFormatError": "kfactor.factors.manifest",
    "FactorLoss": "kfactor.objective.losses",
    "Factorizer": "kfactor.training.factorizer",
    "FusedAdam": "kfactor.training.optimizers",
    "NonFiniteError": "kfactor.validation",
    "SavedFactor": "kfactor.factors.saved_factor",
    "TaskFactor": "kfactor.layers.factor_layers",
    "UntrustedFactorError": "kfactor.factors.graph_check",
    "assemble": "kfactor.factors.assembly",
    "distributed_fit": "kfactor.training.distribute",
    "export_for_serving": "kfactor.factors.export",
    "imb_objective": "kfactor.objective.imb",
    "load_factors": "kfactor.factors.plugins",
    "publish_factors": "kfactor.factors.publish",
}

if typing.TYPE_CHECKING:  # static analysers see plain imports
    from kfactor.factors.assembly import assemble
    from kfactor.factors.export import export_for_serving
    from kfactor.factors.graph_check import UntrustedFactorError
    from kfactor.factors.manifest import FactorFormatError
    from kfactor.factors.plugins import load_factors
    from kfactor.factors.publish import publish_factors
    from kfactor.factors.saved_factor import SavedFactor
    from kfactor.layers.factor_layers import CommonFactor
    from kfactor.layers.factor_layers import TaskFactor
    from kfactor.objective.imb import imb_objective
    from kfactor.objective.losses import FactorLoss
    from kfactor.training.callbacks import CommonCollapseMonitor
    from kfactor.training.distribute import distributed_fit
    from kfactor.training.factorizer import Factorizer
    from kfactor.training.optimizers import FusedAdam
    from kfactor.validation import NonFiniteError


def __getattr__(name):
    """Loads a public name, or a subpackage (`kfactor.zoo`), on first use."""
    if name in _HOMES:
        value = getattr(importlib.import_module(_HOMES[name]), name)
        globals()[name] = value
        return value
    return submodule(__name__, name)


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "CommonCollapseMonitor",
    "CommonFactor",
    "FactorFormatError",
    "FactorLoss",
    "Factorizer",
    "FusedAdam",
    "NonFiniteError",
    "SavedFactor",
    "TaskFactor",
    "UntrustedFactorError",
    "__version__",
    "assemble",
    "configure_cpu",
    "distributed_fit",
    "export_for_serving",
    "imb_objective",
    "load_factors",
    "publish_factors",
]
