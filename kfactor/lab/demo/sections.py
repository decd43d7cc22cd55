"""The demo's report sections: what the codes of a factorization hold.

The disentanglement, common-factor and transfer sections of the
factorizer's codes, and the leakage of the single-task baseline's codes
for reference, all read on the demo's seeded splits.
"""

from kfactor.lab import datasets as data_lib
from kfactor.lab.demo.networks import encoder_builder
from kfactor.lab.evaluation.codes import COMMON
from kfactor.lab.evaluation.codes import TEACHER
from kfactor.lab.evaluation.codes import collect_codes
from kfactor.lab.evaluation.codes import factorizer_readers
from kfactor.lab.evaluation.codes import sampled_task_readers
from kfactor.lab.evaluation.common_report import RANDOM_ENCODER
from kfactor.lab.evaluation.common_report import common_factor_report
from kfactor.lab.evaluation.common_report import transfer_report
from kfactor.lab.evaluation.report import disentanglement_report
from kfactor.lab.evaluation.report import excess_leakage
from kfactor.lab.evaluation.report import leakage_section

import numpy as np

#: Leakage probe -> its section's key in the disentanglement report.
LEAKAGE_KEYS = {"linear": "leakage", "knn": "leakage_knn"}


def collect_split_codes(readers, train_ds, test_ds, config):
    """`((codes, factors), (codes, factors))` of the train and test splits,
    at most `config.eval_train_examples` / `eval_test_examples` each."""
    factor_names = data_lib.DSPRITES_TASKS
    # The train dataset repeats: read at most one pass of it.
    train = collect_codes(
        readers,
        train_ds,
        factor_names,
        min(config.eval_train_examples, config.num_train),
    )
    test = collect_codes(
        readers, test_ds, factor_names, config.eval_test_examples
    )
    return train, test


def evaluate_readers(readers, task_names, train_ds, test_ds, config):
    """The disentanglement report of the codes that `readers` read.

    `readers` (see `kfactor.lab.evaluation.codes`) reads the teacher, common and
    each of `task_names` codes.
    """
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    return split_disentanglement(train, test, task_names, config)


def split_disentanglement(train, test, task_names, config):
    """The disentanglement report of `collect_split_codes`' codes."""
    return disentanglement_report(
        *train,
        *test,
        task_names=task_names,
        factor_names=data_lib.DSPRITES_TASKS,
        dci=config.dci,
        random_state=config.seed,
        intrinsic=data_lib.DSPRITES_INTRINSIC_LEAKAGE,
    )


def evaluate_codes(factorizer, train_ds, test_ds, config):
    """The disentanglement report of the factorizer's codes."""
    return evaluate_readers(
        factorizer_readers(factorizer),
        factorizer.task_names,
        train_ds,
        test_ds,
        config,
    )


def random_encoder_reader(config):
    """`images -> code` of a randomly initialized encoder of the common
    encoder's architecture: the floor of the transfer table."""
    encoder = encoder_builder(config)(config.latent_dim, RANDOM_ENCODER)

    def read(images):
        return encoder(images, training=False)

    return read


def probe_mi_fits(section):
    """The probe-MI section's common and teacher rows as fitted transfer
    probes (`transfer_report(fitted=...)`): the same whitened linear
    probes, not fitted twice."""
    fitted = {}
    for row, block in enumerate(section["block_names"]):
        if block in (COMMON, TEACHER):
            fitted[block] = {
                factor: {
                    "accuracy": section["accuracy"][row][k],
                    "chance": chance,
                }
                for k, (factor, chance) in enumerate(
                    zip(section["factor_names"], section["chance"])
                )
            }
    return fitted


def evaluate_factorization(
    factorizer, teacher_accuracy, train_ds, test_ds, config
):
    """`(disentanglement report, common_factor report, transfer report)`.

    The transfer report probes the frozen common code, the teacher latent
    and a randomly initialized encoder on every factor (see
    `kfactor.lab.evaluation.common_report.transfer_report`).
    """
    readers = {
        **factorizer_readers(factorizer),
        RANDOM_ENCODER: random_encoder_reader(config),
    }
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    disentanglement = split_disentanglement(
        train, test, factorizer.task_names, config
    )
    heads = {
        task: numpy_head(factor.head)
        for task, factor in factorizer.task_factors.items()
    }
    common = common_factor_report(
        *train,
        *test,
        factor_names=data_lib.DSPRITES_TASKS,
        heads=heads,
        teacher_accuracy=teacher_accuracy,
        random_state=config.seed,
        probes=disentanglement["transfer"],
    )
    transfer = transfer_report(
        *train,
        *test,
        factor_names=data_lib.DSPRITES_TASKS,
        task_names=factorizer.task_names,
        random_state=config.seed,
        fitted=probe_mi_fits(disentanglement["probe_mi"]),
    )
    disentanglement.update(
        sampled_leakage(factorizer, train_ds, test_ds, config)
    )
    return disentanglement, common, transfer


def sampled_leakage(factorizer, train_ds, test_ds, config):
    """`{"leakage_sampled": ..., "leakage_knn_sampled": ...}`: the leakage
    probes on sampled task codes (`sampled_task_readers`), empty for
    deterministic task factors."""
    readers = sampled_task_readers(factorizer, seed=config.seed)
    if not readers:
        return {}
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    sections = leakage_sections(train, test, list(readers), config)
    return {
        f"{LEAKAGE_KEYS[probe]}_sampled": section
        for probe, section in sections.items()
    }


def code_reader(networks, task):
    """`images -> code` of one single-task network (a named function, not
    a lambda in a loop: each reader keeps its own `task`)."""

    def read(images):
        return networks.code(task, images)

    return read


def numpy_head(head):
    """A Keras head as a numpy function `codes -> logits`."""

    def logits(codes):
        return np.asarray(head(codes))

    return logits


def leakage_sections(train, test, blocks, config):
    """`{probe: leakage_section}` of the `blocks` codes, both probes.

    Args:
        train, test: `(codes, factors)` from `collect_split_codes`.
        blocks: the code names to probe (task codes).
        config: the run's `DemoConfig` (the probes' seed).
    """
    (train_codes, train_factors), (test_codes, test_factors) = train, test
    return {
        probe: leakage_section(
            {b: train_codes[b] for b in blocks},
            train_factors,
            {b: test_codes[b] for b in blocks},
            test_factors,
            data_lib.DSPRITES_TASKS,
            probe=probe,
            intrinsic=data_lib.DSPRITES_INTRINSIC_LEAKAGE,
            random_state=config.seed,
        )
        for probe in LEAKAGE_KEYS
    }


def single_task_leakage(networks, kf_report, train_ds, test_ds, config):
    """The single-task networks' leakage (both probes) and KF's excess.

    Same probes, same images as the factorization's `leakage` and
    `leakage_knn` sections; `excess` is KF - single-task, cell by cell
    (negative: the task codes hold less of that factor than a network that
    only ever saw its own task).
    """
    readers = {
        task: code_reader(networks, task) for task in networks.task_names
    }
    train, test = collect_split_codes(readers, train_ds, test_ds, config)
    sections = leakage_sections(train, test, networks.task_names, config)
    for probe, key in LEAKAGE_KEYS.items():
        single = sections[probe]
        excess = excess_leakage(
            kf_report[key], single, data_lib.DSPRITES_INTRINSIC_LEAKAGE
        )
        single["excess"] = excess["excess"]
        single["max_nonintrinsic_excess"] = excess["max_nonintrinsic_excess"]
        single["nonintrinsic_cells_kf_below_single_task"] = excess[
            "nonintrinsic_cells_below_reference"
        ]
        single["nonintrinsic_cells"] = excess["nonintrinsic_cells"]
    return sections


__all__ = [
    "LEAKAGE_KEYS",
    "code_reader",
    "collect_split_codes",
    "evaluate_codes",
    "evaluate_factorization",
    "evaluate_readers",
    "leakage_sections",
    "numpy_head",
    "probe_mi_fits",
    "random_encoder_reader",
    "sampled_leakage",
    "single_task_leakage",
    "split_disentanglement",
]
