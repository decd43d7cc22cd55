"""The realistic workload's settings, shared by both frameworks (no imports).

`realistic.py` (TensorFlow) and `torch_realistic.py` (PyTorch) read these,
so the TensorFlow side, and the whole benchmark suite, runs without torch
installed.
"""

TASK_CLASSES = {"label": 10, "group": 5, "parity": 2}
#: Architectures of a size: the reference's, and a tiny one for tests.
SIZES = {
    "full": {
        "wrn": (28, 2),
        "resnet": ((64, 128, 256, 512), (2, 2, 2, 2)),
        "mobilenet": (0.5, 1280, None),
        "image": 32,
    },
    "tiny": {
        "wrn": (10, 1),
        "resnet": ((8, 8, 16, 16), (1, 1, 1, 1)),
        "mobilenet": (0.25, 32, ((1, 16, 1, 1), (6, 24, 2, 2))),
        "image": 16,
    },
}
#: `kfactor.zoo.cifar.MOBILENET_V2_CIFAR_STAGES`, repeated here so that the
#: PyTorch worker never loads TensorFlow (a test checks they agree).
MOBILENET_V2_STAGES = (
    (1, 16, 1, 1),
    (6, 24, 2, 1),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
STEP_VARIANTS = (
    "eager",
    "channels_last",
    "compile",
    "compile_channels_last",
    "eager_foreach",
    "channels_last_foreach",
)
INFERENCE_VARIANTS = ("eager", "channels_last", "inductor", "inductor_frozen")
LABEL_SMOOTHING = 0.1 / 1.1
TEMPERATURE = 0.1
KD_WEIGHT = 0.1
KD_TEMPERATURE = 10.0
BETA = 1e-3
LEARNING_RATE = 1e-3
WEIGHT_DECAY = 1e-4
