"""PyTorch reference worker: the steps of `torch_reference.py`, as items.

    python -m benchmarks.worker_torch '{"threads": 2, "batch_size": 128,
        "items": [{"kind": "factorize", "width": "full",
                   "variant": "compile"}]}'

Item kinds: `factorize/{width}/torch_{variant}` and
`teacher/{width}/torch_{variant}` (variants: `torch_reference.VARIANTS`),
`assembled/{width}/5` and `standalone/{width}/5` (eager, inference mode),
the factorization step's cumulative phases
`phase/{width}/torch_{variant}/{phase}` (`torch_reference.PHASES`), the
realistic step `realistic/{size}/torch_{variant}`
(`torch_realistic.STEP_VARIANTS`) and assembled inference
`infer/{workload}/torch_{variant}/{batch}` (`torch_realistic.
INFERENCE_VARIANTS`, and `standalone`: eager, N factor networks).
Needs only PyTorch and the standard library (no TensorFlow).
"""

import os
import platform
import time

import torch

from benchmarks import protocol
from benchmarks import torch_realistic
from benchmarks import torch_reference

ENV_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "OMP_NUM_THREADS",
    "OMP_WAIT_POLICY",
    "LD_PRELOAD",
)
NUM_BATCHES = 4
#: Prefix of the PyTorch step modes in item names (`factorize/full/
#: torch_compile`), so that they never read as kfactor's modes.
MODE_PREFIX = "torch_"
STEPS = {
    "factorize": torch_reference.factorization_step,
    "teacher": torch_reference.teacher_step,
}


def step_loop(step, batches):
    """`run(calls)`: `calls` calls of `step(images, labels)`."""

    def run(calls):
        for index in range(calls):
            step(*batches[index % len(batches)])

    return run


def step_item(spec, batches):
    """A training-step item (`protocol.serve` times its compiling call)."""
    kind, width, variant = spec["kind"], spec["width"], spec["variant"]
    step, batches = STEPS[kind](width, batches, variant)
    meta = {"batch_size": len(batches[0][0]), "variant": variant}
    name = f"{kind}/{width}/{MODE_PREFIX}{variant}"
    run = step_loop(step, batches)
    return protocol.Item(name, run, meta["batch_size"], meta=meta)


def phase_items(spec, batches):
    """The factorization step's phases of one width and variant, one model."""
    width, variant = spec["width"], spec["variant"]
    teacher, student, batches = torch_reference.factorization_models(
        width, batches, variant
    )
    phases = torch_reference.factorization_phases(teacher, student, variant)
    meta = {"batch_size": len(batches[0][0]), "variant": variant}
    return [
        protocol.Item(
            f"phase/{width}/{MODE_PREFIX}{variant}/{phase}",
            step_loop(phases[phase], batches),
            meta["batch_size"],
            meta={**meta, "phase": phase},
        )
        for phase in torch_reference.PHASES
    ]


def inference_item(spec, batches):
    kind, width = spec["kind"], spec["width"]
    forward = torch_reference.inference(width, kind == "assembled")
    count = len(torch_reference.TASK_CLASSES)
    images = [(x, y) for x, y in batches]
    run = step_loop(lambda x, y: forward(x), images)
    return protocol.Item(f"{kind}/{width}/{count}", run, len(batches[0][0]))


def realistic_item(spec, batch_size):
    """The realistic step of one size and variant."""
    size, variant = spec["size"], spec["variant"]
    batches = torch_realistic.random_batches(2, batch_size, size)
    step, batches = torch_realistic.factorization_step(size, batches, variant)
    meta = {"batch_size": batch_size, "variant": variant}
    name = f"realistic/{size}/{MODE_PREFIX}{variant}"
    run = step_loop(step, batches)
    return protocol.Item(name, run, batch_size, meta=meta)


def workload_student(workload, size):
    """`(student, forward(student, assembled), image shape)`."""
    if workload == "demo":
        student = torch_reference.Student(torch_reference.WIDTHS["narrow"])
        return student, torch_reference.inference_forward, (1, 64, 64)
    student = torch_realistic.models(size)[1]
    side = torch_realistic.SIZES[size]["image"]

    def forward(student, assembled):
        return torch_realistic.assembled_forward(
            student, standalone=not assembled
        )

    return student, forward, (3, side, side)


def timed_calls(fn, images, seconds):
    def run(calls):
        for _ in range(calls):
            start = time.perf_counter()
            fn(images)
            seconds.append(time.perf_counter() - start)

    return run


def infer_items(spec):
    """Assembled inference of one workload and variant, at each batch."""
    workload, variant = spec["workload"], spec["variant"]
    size = spec.get("size", "full")
    student, forward, shape = workload_student(workload, size)
    fn = forward(student, variant != "standalone")
    items = []
    for batch_size in spec["batch_sizes"]:
        generator = torch.Generator().manual_seed(0)
        images = torch.rand((batch_size, *shape), generator=generator)
        if shape[0] == 1:
            images = images.round()
        mode = "eager" if variant == "standalone" else variant
        call, images = torch_realistic.inference_variant(
            student, fn, images, mode
        )
        seconds = []
        items.append(
            protocol.Item(
                f"infer/{workload}/{MODE_PREFIX}{variant}/{batch_size}",
                timed_calls(call, images, seconds),
                batch_size,
                meta={"batch_size": batch_size, "variant": variant},
                call_seconds=seconds,
            )
        )
    return items


def build_items(specs, batch_size):
    """Items named like the TensorFlow worker's, one per spec."""
    batches = torch_reference.random_batches(NUM_BATCHES, batch_size)
    items = []
    for spec in specs:
        if spec["kind"] in STEPS:
            items.append(step_item(spec, batches))
        elif spec["kind"] == "phase":
            items.extend(phase_items(spec, batches))
        elif spec["kind"] == "realistic":
            items.append(realistic_item(spec, batch_size))
        elif spec["kind"] == "infer":
            items.extend(infer_items(spec))
        else:
            items.append(inference_item(spec, batches))
    return items


def worker_info():
    return {
        "framework": "pytorch",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "env": {name: os.environ.get(name) for name in ENV_VARIABLES},
    }


def main():
    stream = protocol.protocol_stdout()
    config = protocol.parse_config()
    torch.set_num_threads(config.get("threads") or os.cpu_count())
    torch.manual_seed(0)
    items = build_items(config["items"], config["batch_size"])
    protocol.serve(items, worker_info(), stream)


if __name__ == "__main__":
    main()
