"""PyTorch reference worker: the steps of `torch_kf_step.py`, as items.

    /path/to/torch/python -m benchmarks.worker_torch '{"script":
        "../shared/benchmarks/torch_kf_step.py", "threads": 2,
        "batch_size": 128, "items": [{"kind": "factorize", "width": "full"}]}'

It imports the reference script as a module and times its own trainers and
networks (`KFTrainer.step`, `TeacherTrainer.step`, `AssembledNetwork` and
the 5 `FactorNetwork`s under `torch.inference_mode`) on the script's
synthetic batches, cycled. Item kinds: `factorize/{width}`,
`teacher/{width}`, `assembled/{width}/5`, `standalone/{width}/5`.
Needs only PyTorch and the standard library (no TensorFlow).
"""

import functools
import importlib.util
import os
import platform

import torch

from benchmarks import protocol

ENV_VARIABLES = (
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "OMP_NUM_THREADS",
    "LD_PRELOAD",
)
NUM_BATCHES = 4
LEARNING_RATE = 1e-4
WEIGHT_DECAY = 1e-4  # the dSprites config's


def load_reference(path):
    """The reference script imported as module `torch_kf_step`."""
    spec = importlib.util.spec_from_file_location("torch_kf_step", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class Reference:
    """The reference's models at each width, built on first use."""

    def __init__(self, module, batch_size):
        self.ref = module
        self.batch_size = batch_size

    @functools.cache
    def batches(self):
        return self.ref.make_batches(NUM_BATCHES, self.batch_size, 0)

    @functools.cache
    def student(self, width):
        """Teacher (frozen), student and projection for the KF step."""
        ref = self.ref
        widths = ref.WIDTHS[width]
        return (
            ref.Teacher(widths),
            ref.KFStudent(widths),
            ref.projection_mlp(ref.LATENT, ref.LATENT),
        )

    def factorize(self, width):
        teacher, student, projection = self.student(width)
        trainer = self.ref.KFTrainer(
            teacher, student, projection, lr=LEARNING_RATE, wd=WEIGHT_DECAY
        )
        return trainer.step

    def teacher(self, width):
        teacher = self.ref.Teacher(self.ref.WIDTHS[width])
        trainer = self.ref.TeacherTrainer(
            teacher, lr=LEARNING_RATE, wd=WEIGHT_DECAY
        )
        return trainer.step

    def networks(self, width):
        """The assembled 5-task network and the 5 factor networks."""
        _, student, _ = self.student(width)
        ref, tasks = self.ref, range(len(self.ref.TASK_CLASSES))
        assembled = ref.AssembledNetwork(
            student.ckn, list(student.tsn), list(student.head)
        ).eval()
        separate = [
            ref.FactorNetwork(student.ckn, student.tsn[k], student.head[k])
            for k in tasks
        ]
        return assembled, [network.eval() for network in separate]

    def assembled(self, width):
        assembled, _ = self.networks(width)
        return self._inference(lambda x: assembled(x))

    def standalone(self, width):
        _, separate = self.networks(width)
        return self._inference(lambda x: [net(x) for net in separate])

    @functools.cache
    def macs(self, width):
        """The reference's own MAC counts per image (forward hooks)."""
        ref = self.ref
        teacher, student, projection = self.student(width)
        assembled, separate = self.networks(width)
        ref._ALL_MODULES[:] = [teacher, student, projection]
        image = self.batches()[0][0][:1]
        projection.eval()
        counts = {
            "teacher": ref.count_macs(lambda: teacher(image)),
            "factorize_forward": ref.count_macs(
                lambda: (
                    student.forward_train(image),
                    projection(teacher(image)[0]),
                )
            ),
            "assembled": ref.count_macs(lambda: assembled(image)),
            "standalone": ref.count_macs(
                lambda: [net(image) for net in separate]
            ),
        }
        projection.train()
        return counts

    def _inference(self, forward):
        def call(images, labels):
            with torch.inference_mode():
                return forward(images)

        return call


def step_loop(step, batches):
    """`run(calls)`: `calls` calls of `step(images, labels)`."""

    def run(calls):
        for index in range(calls):
            step(*batches[index % len(batches)])

    return run


def build_items(reference, specs):
    """Items named like the TensorFlow worker's (without the mode)."""
    items = []
    for spec in specs:
        kind, width = spec["kind"], spec["width"]
        step = getattr(reference, kind)(width)
        name = f"{kind}/{width}"
        if kind in ("assembled", "standalone"):
            name += f"/{len(reference.ref.TASK_CLASSES)}"
        meta = {
            "batch_size": reference.batch_size,
            "reference_macs_per_image": reference.macs(width),
        }
        run = step_loop(step, reference.batches())
        items.append(protocol.Item(name, run, reference.batch_size, meta=meta))
    return items


def worker_info(script):
    return {
        "framework": "pytorch",
        "torch": torch.__version__,
        "python": platform.python_version(),
        "threads": torch.get_num_threads(),
        "interop_threads": torch.get_num_interop_threads(),
        "mkldnn": torch.backends.mkldnn.is_available(),
        "script": os.path.abspath(script),
        "env": {name: os.environ.get(name) for name in ENV_VARIABLES},
    }


def main():
    stream = protocol.protocol_stdout()
    config = protocol.parse_config()
    torch.set_num_threads(config.get("threads") or os.cpu_count())
    torch.manual_seed(0)
    module = load_reference(config["script"])
    reference = Reference(module, config["batch_size"])
    items = build_items(reference, config["items"])
    protocol.serve(items, worker_info(config["script"]), stream)


if __name__ == "__main__":
    main()
