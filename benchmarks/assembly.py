"""Assembled N-task inference vs N standalone factor networks, N = 1..5.

The factors of an untrained dSprites factorization are saved and loaded back
(the deployment path). For the first N tasks it times, on the same batch:

- `assembled/{width}/{N}`: one model `images -> {task: logits}` from
  `kfactor.assemble` (the common factor runs once);
- `standalone/{width}/{N}`: N factor networks, each its own `tf.function`
  (N deployments; one `tf.function` over all N would let Grappler merge
  the shared common factor, which separate deployments cannot).

The FLOP-ideal speed-up is `N (C + T) / (C + N T)`, with C and T the
forward MACs of the common factor and of one task's factor network minus
C; the items carry both MAC counts (from the in-memory factorizer) and
their parameter bytes (N standalone networks hold the common factor N
times).
"""

import kfactor
from kfactor.factors.assembly import factor_network

import tensorflow as tf

from benchmarks import flops
from benchmarks import models
from benchmarks.protocol import Item


def inference_loop(fns, images):
    """`run(calls)`: `calls` batches through every function of `fns`."""

    def run(calls):
        for _ in range(calls):
            outputs = [fn(images) for fn in fns]
        tf.nest.map_structure(lambda t: t.numpy(), outputs)  # waits

    return run


def inference_function(model):
    """`model`'s inference call as a `tf.function`."""
    return tf.function(lambda x: model(x, training=False))


def assembly_macs(factorizer, tasks):
    """Forward MACs per image: assembled, and N standalone networks."""
    shape = factorizer.image_shape
    assembled = kfactor.assemble(factorizer, tasks=tasks, verify=False)
    standalone = [factorizer.factor_network(t) for t in tasks]
    return {
        "assembled": flops.forward_macs(assembled, shape),
        "standalone": sum(flops.forward_macs(n, shape) for n in standalone),
        "common": flops.forward_macs(factorizer.common, shape),
    }


def assembly_items(width, batch_size, counts=(1, 2, 3, 4, 5)):
    """`assembled/...` and `standalone/...` items for each N in `counts`."""
    factorizer, factors = models.factorizer_and_factors(width)
    images = models.random_images(batch_size)
    items = []
    for count in counts:
        tasks = list(factorizer.task_names[:count])
        assembled = kfactor.assemble(factors, tasks=tasks)
        networks = [factor_network(factors, t) for t in tasks]
        macs = assembly_macs(factorizer, tasks)
        meta = {
            "tasks": tasks,
            "batch_size": batch_size,
            "forward_macs_per_image": macs,
            "flop_ideal_speedup": macs["standalone"] / macs["assembled"],
            "parameter_bytes": {
                "assembled": models.parameter_bytes(assembled),
                "standalone": sum(map(models.parameter_bytes, networks)),
            },
        }
        run = inference_loop([inference_function(assembled)], images)
        items.append(
            Item(f"assembled/{width}/{count}", run, batch_size, meta=meta)
        )
        fns = [inference_function(n) for n in networks]
        run = inference_loop(fns, images)
        items.append(
            Item(f"standalone/{width}/{count}", run, batch_size, meta=meta)
        )
    return items
