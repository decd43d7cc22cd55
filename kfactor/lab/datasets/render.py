"""Vectorized dSprites renderers: one geometry, a NumPy and a TensorFlow path.

Every image is rendered analytically: each pixel centre is mapped back into
the sprite's own frame (inverse translation, rotation and scale) and tested
against the shape's implicit inequality, for a whole batch at once:

- square: `max(|x|, |y|) <= 1`;
- ellipse: `x**2 + y**2 <= 1` (the frame is stretched 2:1 beforehand);
- heart: `(x**2 + y**2 - 1)**3 - x**2 * y**3 <= 0`, the classic heart
  curve, point down at orientation 0.

Geometry (pixels of the 64x64 image, chosen by eye to look like dSprites;
the official generator is unpublished, so images are close to but not
pixel-identical with the official ones):

- the sprite centre moves from pixel 12 to 52 as `pos_x`/`pos_y` goes from 0
  to 1 (x = column, left to right; y = row, top to bottom), so a sprite of
  scale 1 in any orientation stays inside the image;
- at scale 1 the square is 16 px wide, the ellipse 21 x 11 px (long axis
  horizontal at orientation 0) and the heart about 18 x 18 px; `scale` in
  `[0.5, 1]` multiplies these sizes;
- `orientation` rotates counter-clockwise as displayed (rows growing
  downwards), about the centre of the sprite's bounding box.

Both renderers read the same float32 lookup tables (built once here with
NumPy in float64, then rounded) and run the same sequence of float32
multiplications, additions and comparisons, with no transcendental
functions at render time, so they produce bit-identical images.
"""

from kfactor.lab.datasets.grid import DSPRITES_FACTOR_SIZES
from kfactor.lab.datasets.grid import DSPRITES_FACTOR_VALUES
from kfactor.lab.datasets.grid import check_factors

import numpy as np
import tensorflow as tf

IMAGE_SIZE = 64
OBSERVATION_SHAPE = (IMAGE_SIZE, IMAGE_SIZE, 1)

# Sprite centre in pixels: CENTRE_MIN + CENTRE_RANGE * position value.
CENTRE_MIN = 12.0
CENTRE_RANGE = 40.0
# Half-extents (x, y) in pixels at scale 1 of each shape's unit frame, and
# the offset (in unit-frame coordinates) of the point the sprite rotates
# about. The heart curve spans y in [-1, 1.236], centred at y = 0.118.
SHAPE_HALF_EXTENTS = ((8.0, 8.0), (10.5, 5.5), (8.0, 8.0))
SHAPE_OFFSETS = ((0.0, 0.0), (0.0, 0.0), (0.0, 0.118))


def _build_tables():
    """Builds the float32 lookup tables shared by both renderers."""
    num_shapes, num_scales, num_orient, num_x, num_y = DSPRITES_FACTOR_SIZES
    scale = DSPRITES_FACTOR_VALUES["scale"][None, :, None]
    theta = DSPRITES_FACTOR_VALUES["orientation"][None, None, :]
    half = np.asarray(SHAPE_HALF_EXTENTS, np.float64)
    sx = half[:, 0, None, None] * scale
    sy = half[:, 1, None, None] * scale
    cos = np.cos(theta)
    sin = np.sin(theta)
    # Sprite frame (x right, y up) from pixel offsets (u right, v down):
    #   x = (cos * u - sin * v) / sx,   y = (-sin * u - cos * v) / sy.
    coefs = np.stack(
        np.broadcast_arrays(cos / sx, -sin / sx, -sin / sy, -cos / sy),
        axis=-1,
    )
    coefs = coefs.reshape(num_shapes * num_scales * num_orient, 4)
    if num_x != num_y:
        raise ValueError("The renderer expects as many x as y positions.")
    centres = CENTRE_MIN + CENTRE_RANGE * DSPRITES_FACTOR_VALUES["pos_x"]
    pixels = np.arange(IMAGE_SIZE, dtype=np.float64) + 0.5
    offsets = pixels[None, :] - centres[:, None]
    return (
        coefs.astype(np.float32),
        np.asarray(SHAPE_OFFSETS, np.float32),
        offsets.astype(np.float32),
    )


# COEFS[(shape * 6 + scale) * 40 + orientation] = (a_x, b_x, a_y, b_y);
# SHAPE_SHIFT[shape] = (o_x, o_y); PIXEL_OFFSETS[position] = pixel centre
# minus sprite centre, for the 64 columns (or rows).
COEFS, SHAPE_SHIFT, PIXEL_OFFSETS = _build_tables()
_ONE = np.float32(1.0)
_NUMPY_CHUNK = 32
_ZERO = np.float32(0.0)


def _square(lx, ly, abs_fn, maximum_fn):
    return maximum_fn(abs_fn(lx), abs_fn(ly)) <= _ONE


def _ellipse(lx, ly, abs_fn, maximum_fn):
    return lx * lx + ly * ly <= _ONE


def _heart(lx, ly, abs_fn, maximum_fn):
    x2 = lx * lx
    y2 = ly * ly
    q = x2 + y2 - _ONE
    return q * q * q - x2 * (y2 * ly) <= _ZERO


# Inside tests in each shape's unit frame, indexed by the shape class. They
# use operators plus two injected functions, so the NumPy and TensorFlow
# renderers share the exact same float32 arithmetic.
_INSIDE_TESTS = (_square, _ellipse, _heart)


def _sprite_frame(coefs, shift, u, v):
    """Pixel grid in each sprite's unit frame: `(lx, ly)`, each `(N, H, W)`.

    `coefs` `(N, 4)`, `shift` `(N, 2)`, `u` (columns) and `v` (rows)
    `(N, 64)`; the maps are separable, so only the final sums are full-size.
    """
    x_cols = coefs[:, 0:1] * u
    x_rows = coefs[:, 1:2] * v + shift[:, 0:1]
    y_cols = coefs[:, 2:3] * u
    y_rows = coefs[:, 3:4] * v + shift[:, 1:2]
    lx = x_cols[:, None, :] + x_rows[:, :, None]
    ly = y_cols[:, None, :] + y_rows[:, :, None]
    return lx, ly


def _flat_pose(shape, scale, orientation):
    num_scales, num_orient = DSPRITES_FACTOR_SIZES[1:3]
    return (shape * num_scales + scale) * num_orient + orientation


def render_numpy(factors):
    """Renders dSprites images with NumPy (vectorized over the batch).

    Args:
        factors: int array-like of shape `(N, 5)` (or `(5,)`): classes of
            `(shape, scale, orientation, pos_x, pos_y)`.

    Returns:
        float32 array of shape `(N, 64, 64, 1)` with values in `{0, 1}`.

    Example:

    >>> images = render_numpy([[2, 5, 0, 16, 16]])
    >>> images.shape, images.dtype.name, sorted(np.unique(images).tolist())
    ((1, 64, 64, 1), 'float32', [0.0, 1.0])
    """
    factors = check_factors(factors).reshape(-1, len(DSPRITES_FACTOR_SIZES))
    images = np.empty((len(factors), IMAGE_SIZE, IMAGE_SIZE, 1), np.float32)
    # Small chunks keep the float32 temporaries in the CPU cache (a batch of
    # 128 full-size temporaries is ~4x slower than four chunks of 32).
    for start in range(0, len(factors), _NUMPY_CHUNK):
        chunk = factors[start : start + _NUMPY_CHUNK]
        for shape, inside in enumerate(_INSIDE_TESTS):
            rows = np.flatnonzero(chunk[:, 0] == shape)
            if rows.size == 0:
                continue
            _, scale, orientation, pos_x, pos_y = chunk[rows].T
            lx, ly = _sprite_frame(
                COEFS[_flat_pose(shape, scale, orientation)],
                np.broadcast_to(SHAPE_SHIFT[shape], (rows.size, 2)),
                PIXEL_OFFSETS[pos_x],
                PIXEL_OFFSETS[pos_y],
            )
            images[start + rows, :, :, 0] = inside(lx, ly, np.abs, np.maximum)
    return images


def render_tf(factors):
    """Renders dSprites images with pure TensorFlow ops (no `py_function`).

    Same math and tables as `render_numpy`, so the images are identical;
    use it inside `tf.data` (`map` after `batch`) to render on the fly.

    Args:
        factors: int tensor of shape `(N, 5)`: classes of
            `(shape, scale, orientation, pos_x, pos_y)`. Values are not
            range-checked (out-of-range classes are an error of `tf.gather`).

    Returns:
        float32 tensor of shape `(N, 64, 64, 1)` with values in `{0, 1}`.

    Example:

    >>> images = render_tf(tf.constant([[2, 5, 0, 16, 16]]))
    >>> images.shape
    TensorShape([1, 64, 64, 1])
    """
    factors = tf.cast(tf.convert_to_tensor(factors), tf.int32)
    coef_table = tf.constant(COEFS)
    pixel_table = tf.constant(PIXEL_OFFSETS)
    num_shapes = len(_INSIDE_TESTS)
    rows = tf.dynamic_partition(
        tf.range(tf.shape(factors)[0]), factors[:, 0], num_shapes
    )
    masks = []
    for shape, inside in enumerate(_INSIDE_TESTS):
        _, scale, orientation, pos_x, pos_y = tf.unstack(
            tf.gather(factors, rows[shape]), axis=-1
        )
        lx, ly = _sprite_frame(
            tf.gather(coef_table, _flat_pose(shape, scale, orientation)),
            tf.broadcast_to(SHAPE_SHIFT[shape], [tf.size(rows[shape]), 2]),
            tf.gather(pixel_table, pos_x),
            tf.gather(pixel_table, pos_y),
        )
        masks.append(tf.cast(inside(lx, ly, tf.abs, tf.maximum), tf.float32))
    return tf.dynamic_stitch(rows, masks)[..., None]


__all__ = [
    "CENTRE_MIN",
    "CENTRE_RANGE",
    "IMAGE_SIZE",
    "OBSERVATION_SHAPE",
    "SHAPE_HALF_EXTENTS",
    "SHAPE_OFFSETS",
    "render_numpy",
    "render_tf",
]
