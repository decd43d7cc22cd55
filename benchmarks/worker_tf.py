"""kfactor benchmark worker: builds TensorFlow items and serves windows.

    python -m benchmarks.worker_tf '{"items": [{"kind": "factorize",
        "width": "full", "mode": "function", "batch_size": 128}]}'

Item kinds (and their arguments besides `kind`):
`factorize` / `teacher` (`width`, `mode`, `batch_size`), `assembly`
(`width`, `batch_size`), `export` (`width`), `matmul` (`size`), `data`
(`batch_size`), `layer` and `phase` (`width`, `batch_size`), `realistic`
(`batch_size`, `size`) and `infer` (`workload`, `batch_sizes`, `size`). See
`protocol.py` for the request lines.
"""

import os
import platform

# kfactor first: it sets KERAS_BACKEND, and configure_cpu() turns oneDNN on
# (unless the runner set TF_ENABLE_ONEDNN_OPTS, as the oneDNN-off variant
# does) before TensorFlow and Keras are imported by the modules below.
import kfactor

kfactor.configure_cpu()  # oneDNN CPU kernels: before TensorFlow loads
# ruff: noqa: E402

from benchmarks import assembly
from benchmarks import inference
from benchmarks import layers
from benchmarks import phases
from benchmarks import protocol
from benchmarks import realistic
from benchmarks import reference_rates
from benchmarks import serving
from benchmarks import steps

BUILDERS = {
    "factorize": steps.factorize_items,
    "teacher": steps.teacher_items,
    "assembly": assembly.assembly_items,
    "export": serving.export_items,
    "matmul": reference_rates.matmul_items,
    "layer": layers.layer_items,
    "phase": phases.phase_items,
    "data": reference_rates.data_items,
    "realistic": realistic.realistic_items,
    "infer": inference.inference_items,
}
ENV_VARIABLES = (
    "TF_ENABLE_ONEDNN_OPTS",
    "MALLOC_MMAP_THRESHOLD_",
    "MALLOC_TRIM_THRESHOLD_",
    "OMP_NUM_THREADS",
    "TF_NUM_INTRAOP_THREADS",
    "TF_NUM_INTEROP_THREADS",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "LD_PRELOAD",
)


def gpu_info(tf):
    """Names of the GPUs TensorFlow sees (empty on a CPU machine)."""
    gpus = tf.config.list_physical_devices("GPU")
    return [
        tf.config.experimental.get_device_details(gpu).get("device_name", "GPU")
        for gpu in gpus
    ]


def worker_info():
    """Versions, devices and environment of this worker."""
    import keras
    import tensorflow as tf

    tf32 = tf.config.experimental.tensor_float_32_execution_enabled()
    return {
        "framework": "kfactor",
        "kfactor": kfactor.__version__,
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "python": platform.python_version(),
        "gpus": gpu_info(tf),
        "tensor_float_32": tf32,
        "env": {name: os.environ.get(name) for name in ENV_VARIABLES},
    }


def build_items(specs):
    """The items of every spec, in order."""
    items = []
    for spec in specs:
        arguments = {k: v for k, v in spec.items() if k != "kind"}
        items.extend(BUILDERS[spec["kind"]](**arguments))
    return items


def main():
    stream = protocol.protocol_stdout()
    config = protocol.parse_config()
    items = build_items(config["items"])
    protocol.serve(items, worker_info(), stream)


if __name__ == "__main__":
    main()
