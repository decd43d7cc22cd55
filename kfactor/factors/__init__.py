"""The factor artefact: format, save, load, plugins, assembly, export.

It knows networks (`FactorNetworks`), not trainers: nothing here imports
`kfactor.training`.
"""

from kfactor.factors import assembly
from kfactor.factors import checks
from kfactor.factors import export
from kfactor.factors import folding
from kfactor.factors import graph_check
from kfactor.factors import manifest
from kfactor.factors import networks
from kfactor.factors import plugins
from kfactor.factors import publish
from kfactor.factors import saved_factor
from kfactor.factors import saving
from kfactor.factors.assembly import assemble
from kfactor.factors.assembly import check_assembly
from kfactor.factors.export import check_export
from kfactor.factors.export import export_for_serving
from kfactor.factors.folding import fold_batch_norm
from kfactor.factors.graph_check import UntrustedFactorError
from kfactor.factors.manifest import FactorFormatError
from kfactor.factors.networks import FactorNetworks
from kfactor.factors.plugins import load_factors
from kfactor.factors.publish import publish_factors
from kfactor.factors.saved_factor import SavedFactor
from kfactor.factors.saving import save_factors

__all__ = [
    "FactorFormatError",
    "FactorNetworks",
    "SavedFactor",
    "UntrustedFactorError",
    "assemble",
    "assembly",
    "check_assembly",
    "check_export",
    "checks",
    "export",
    "export_for_serving",
    "fold_batch_norm",
    "folding",
    "graph_check",
    "load_factors",
    "manifest",
    "networks",
    "plugins",
    "publish",
    "publish_factors",
    "save_factors",
    "saved_factor",
    "saving",
]
