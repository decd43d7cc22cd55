"""Benchmark: one assembled 5-task model vs five standalone factor networks.

Builds the dSprites factorization's architecture (SimpleConv64, narrow or
full widths; weights do not change the speed), saves the factors, loads them
back (the deployment path) and times, on the same batches:

- the assembled model `images -> {task: logits}` (common factor run once);
- the five standalone factor networks, each its own compiled function (five
  deployments; one `tf.function` over all five would let Grappler merge the
  shared common factor, which standalone deployments cannot).

Repeats are interleaved; each reports images/s per repeat, the median and
the spread. The FLOP-ideal speed-up is `5 (C + T) / (C + 5 T)` with C, T the
forward FLOPs of the common and a task factor (1.67x when they are equal).

    python benchmarks/assembly.py --widths=narrow --out=benchmarks/results
"""

import argparse
import json
import os
import platform
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# ruff: noqa: E402
import keras
import numpy as np
import tensorflow as tf

import kfactor
from kfactor.artifacts import task_inference_networks
from kfactor.assembly import factor_network

WIDTHS = {"narrow": kfactor.NARROW_WIDTHS, "full": kfactor.FULL_WIDTHS}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--widths", choices=sorted(WIDTHS), default="narrow")
    parser.add_argument("--batch_size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--out", default="benchmarks/results")
    return parser.parse_args(argv)


def build_factorizer(widths):
    def encoder(latent_dim, name):
        return kfactor.simple_conv64(latent_dim, widths=widths, name=name)

    teacher = kfactor.multitask_teacher(
        kfactor.data.DSPRITES_NUM_CLASSES, encoder=encoder(10, "teacher")
    )
    return kfactor.Factorizer(
        teacher,
        common=encoder(10, "common_encoder"),
        tasks={
            t: encoder(None, f"{t}_encoder")
            for t in kfactor.data.DSPRITES_TASKS
        },
    )


def forward_flops(fn, input_specs):
    """Float ops of one forward pass of `fn` on one example (TF profiler)."""
    graph = tf.function(fn).get_concrete_function(*input_specs).graph
    options = tf.compat.v1.profiler.ProfileOptionBuilder.float_operation()
    options["output"] = "none"
    tf.get_logger().setLevel("ERROR")  # the v1 profiler's deprecation notes
    return tf.compat.v1.profiler.profile(graph, options=options).total_float_ops


def factor_flops(factorizer):
    shape = factorizer.image_shape
    image = tf.TensorSpec((1, *shape), "float32")
    code = tf.TensorSpec((1, factorizer.code_dim), "float32")
    task = factorizer.task_names[0]
    net, _ = task_inference_networks(factorizer.task_factors[task], shape)
    common = forward_flops(lambda x: factorizer.common(x), [image])
    per_task = forward_flops(lambda x, z: net([x, z]), [image, code])
    return common, per_task


def time_it(fn, images, iterations):
    """`(images/s by wall clock, images per process-CPU-second)`."""
    fn(images)  # traced and warm
    wall, cpu = time.perf_counter(), time.process_time()
    for _ in range(iterations):
        outputs = fn(images)
    tf.nest.map_structure(lambda t: t.numpy(), outputs)  # wait for the end
    count = len(images) * iterations
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    return count / wall, count / cpu


def spread(values):
    return {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
        "runs": values,
    }


def run(args):
    keras.utils.set_random_seed(0)
    factorizer = build_factorizer(WIDTHS[args.widths])
    with tempfile.TemporaryDirectory() as directory:
        factorizer.save_factors(os.path.join(directory, "factors"))
        factors = kfactor.load_factors(os.path.join(directory, "factors"))
    tasks = list(factorizer.task_names)
    assembled = kfactor.assemble(factors)
    networks = [factor_network(factors, t) for t in tasks]
    assembled_fn = tf.function(lambda x: assembled(x, training=False))
    network_fns = [
        tf.function(lambda x, n=n: n(x, training=False)) for n in networks
    ]

    def standalone_fn(images):
        return [fn(images) for fn in network_fns]

    shape = (args.batch_size, *factorizer.image_shape)
    images = tf.constant(
        np.random.default_rng(0).uniform(size=shape), "float32"
    )
    fns = {"assembled": assembled_fn, "standalone": standalone_fn}
    rates = {name: [] for name in fns}
    cpu_rates = {name: [] for name in fns}
    for repeat in range(args.repeats):  # interleaved, order alternating
        for name in sorted(fns, reverse=bool(repeat % 2)):
            wall, cpu = time_it(fns[name], images, args.iterations)
            rates[name].append(wall)
            cpu_rates[name].append(cpu)
    speedups = [a / s for a, s in zip(rates["assembled"], rates["standalone"])]
    cpu_speedups = [
        a / s for a, s in zip(cpu_rates["assembled"], cpu_rates["standalone"])
    ]
    common, per_task = factor_flops(factorizer)
    n = len(tasks)
    ideal = n * (common + per_task) / (common + n * per_task)
    params_assembled = assembled.count_params()
    params_standalone = sum(net.count_params() for net in networks)
    return {
        "config": vars(args),
        "device": _device(),
        "tasks": tasks,
        "parameters": {
            "assembled": params_assembled,
            "standalone_total": params_standalone,
            "ratio": params_standalone / params_assembled,
        },
        "flops_per_image": {
            "common": common,
            "task": per_task,
            "assembled": common + n * per_task,
            "standalone_total": n * (common + per_task),
            "ideal_speedup": ideal,
        },
        "images_per_second": {k: spread(v) for k, v in rates.items()},
        "speedup": spread(speedups),
        "images_per_cpu_second": {k: spread(v) for k, v in cpu_rates.items()},
        "cpu_speedup": spread(cpu_speedups),
        "speedup_over_ideal": statistics.median(speedups) / ideal,
    }


def _device():
    gpus = tf.config.list_physical_devices("GPU")
    if gpus:
        return tf.config.experimental.get_device_details(gpus[0]).get(
            "device_name", "GPU"
        )
    cpu = platform.processor() or platform.machine()
    return f"CPU ({cpu}, {os.cpu_count()} cores)"


def format_table(result):
    rates, params = result["images_per_second"], result["parameters"]
    flops = result["flops_per_image"]
    rows = [
        "| | assembled (1 model) | 5 standalone networks | ratio |",
        "|---|---|---|---|",
        f"| parameters | {params['assembled']:,} | "
        f"{params['standalone_total']:,} | {params['ratio']:.2f}x |",
        f"| MFLOP / image | {flops['assembled'] / 1e6:.1f} | "
        f"{flops['standalone_total'] / 1e6:.1f} | "
        f"{flops['ideal_speedup']:.2f}x (ideal) |",
    ]
    a, s, r = rates["assembled"], rates["standalone"], result["speedup"]
    rows.append(
        f"| images/s (median [min, max]) | {a['median']:,.0f} "
        f"[{a['min']:,.0f}, {a['max']:,.0f}] | {s['median']:,.0f} "
        f"[{s['min']:,.0f}, {s['max']:,.0f}] | {r['median']:.2f}x "
        f"[{r['min']:.2f}, {r['max']:.2f}] |"
    )
    a, s = result["images_per_cpu_second"], result["cpu_speedup"]
    rows.append(
        f"| images per CPU-second (median) | "
        f"{a['assembled']['median']:,.0f} | {a['standalone']['median']:,.0f} "
        f"| {s['median']:.2f}x [{s['min']:.2f}, {s['max']:.2f}] |"
    )
    return "\n".join(rows)


def main(argv=None):
    args = parse_args(argv)
    result = run(args)
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, f"assembly_{args.widths}.json")
    with open(path, "w") as f:
        json.dump(result, f, indent=2, sort_keys=True)
    print(f"{result['device']}, batch {args.batch_size}, {args.widths} widths")
    print(format_table(result))
    print(f"speed-up / FLOP-ideal: {result['speedup_over_ideal']:.2f}")
    print(f"Wrote {path}")
    return result


if __name__ == "__main__":
    main()
