"""`ArraySplit`: an in-memory train/test split of a multi-task dataset."""

import dataclasses

from kfactor.data.pipeline import array_dataset

import numpy as np

SPLITS = ("train", "test")


@dataclasses.dataclass(frozen=True, eq=False)
class ArraySplit:
    """Train/test images with one integer label per task, kept in memory.

    Images stay in their compact on-disk dtype (uint8); `dataset` casts each
    batch to float32 and multiplies it by `pixel_scale`, so batches are
    float32 in `[0, 1]`.

    Args:
        train_images: array `(N_train, H, W, C)`.
        train_labels: dict `{task: int array (N_train,)}`.
        test_images: array `(N_test, H, W, C)`.
        test_labels: dict `{task: int array (N_test,)}`.
        task_names: tuple of task names, in the dataset's factor order.
        num_classes: dict `{task: number of classes}`.
        pixel_scale: factor mapping stored pixels to `[0, 1]` (1 for binary
            images, 1/255 for 8-bit images).

    Example:

    >>> split = ArraySplit(
    ...     np.zeros((4, 8, 8, 1), np.uint8), {"t": np.array([0, 1, 0, 1])},
    ...     np.zeros((2, 8, 8, 1), np.uint8), {"t": np.array([1, 0])},
    ...     task_names=("t",), num_classes={"t": 2})
    >>> images, labels = next(iter(split.dataset("test", batch_size=2)))
    >>> images.shape, labels["t"].numpy().tolist()
    (TensorShape([2, 8, 8, 1]), [1, 0])
    """

    train_images: np.ndarray
    train_labels: dict
    test_images: np.ndarray
    test_labels: dict
    task_names: tuple
    num_classes: dict
    pixel_scale: float = 1.0

    def __post_init__(self):
        object.__setattr__(self, "task_names", tuple(self.task_names))
        object.__setattr__(self, "num_classes", dict(self.num_classes))
        if set(self.num_classes) != set(self.task_names):
            raise ValueError(
                "Expected `num_classes` keys equal to `task_names`. "
                f"Received: task_names={self.task_names}, "
                f"num_classes={self.num_classes}."
            )
        shapes = set()
        for split in SPLITS:
            images = getattr(self, f"{split}_images")
            labels = getattr(self, f"{split}_labels")
            if not isinstance(images, np.ndarray) or images.ndim != 4:
                raise ValueError(
                    f"Expected `{split}_images` as an array (N, H, W, C). "
                    f"Received: shape={np.shape(images)}."
                )
            shapes.add(images.shape[1:])
            self._check_labels(split, labels, len(images))
        if len(shapes) != 1:
            raise ValueError(
                "Expected train and test images of the same shape. "
                f"Received: {sorted(shapes)}."
            )

    def _check_labels(self, split, labels, num):
        if not isinstance(labels, dict) or set(labels) != set(self.task_names):
            raise ValueError(
                f"Expected `{split}_labels` as a dict with keys "
                f"{self.task_names}. Received: "
                f"{sorted(labels) if isinstance(labels, dict) else labels!r}."
            )
        for task in self.task_names:
            values = np.asarray(labels[task])
            if values.shape != (num,):
                raise ValueError(
                    f"Expected `{split}_labels[{task!r}]` of shape ({num},). "
                    f"Received: shape={values.shape}."
                )
            if values.size and (
                values.min() < 0 or values.max() >= self.num_classes[task]
            ):
                raise ValueError(
                    f"Expected `{split}_labels[{task!r}]` in "
                    f"[0, {self.num_classes[task]}). Received: "
                    f"min={values.min()}, max={values.max()}."
                )

    @property
    def num_train(self):
        """Number of training images."""
        return len(self.train_images)

    @property
    def num_test(self):
        """Number of test images."""
        return len(self.test_images)

    @property
    def image_shape(self):
        """`(H, W, C)` of one image."""
        return tuple(self.train_images.shape[1:])

    def dataset(
        self,
        split="train",
        batch_size=128,
        shuffle=None,
        seed=0,
        repeat=False,
        drop_remainder=False,
    ):
        """Batched `(images float32 [0, 1], {task: int32})` of one split.

        Args:
            split: `"train"` or `"test"`.
            batch_size: images per batch.
            shuffle: whether to reshuffle every epoch; defaults to True for
                `"train"` and False for `"test"`.
            seed: seed of the shuffle.
            repeat: whether to loop forever.
            drop_remainder: whether to drop the last, smaller batch.

        Returns:
            A `tf.data.Dataset` with a known cardinality (unless `repeat`).
        """
        if split not in SPLITS:
            raise ValueError(
                f"Expected split in {SPLITS}. Received: split={split!r}."
            )
        images = getattr(self, f"{split}_images")
        if len(images) == 0:
            raise ValueError(
                f"The {split!r} split is empty. Fix: load it with "
                f"num_{split} > 0."
            )
        labels = getattr(self, f"{split}_labels")
        return array_dataset(
            images,
            {task: labels[task] for task in self.task_names},
            batch_size=batch_size,
            shuffle=(split == "train") if shuffle is None else shuffle,
            seed=seed,
            repeat=repeat,
            pixel_scale=self.pixel_scale,
            drop_remainder=drop_remainder,
            num_classes=self.num_classes,
        )


__all__ = [
    "SPLITS",
    "ArraySplit",
]
