"""Tests of procedural dSprites: grid, renderers, splits, tf.data, sampler."""

import math
import time

from kfactor.lab import datasets as kd
from kfactor.lab.datasets import pipeline as dsprites_pipeline
from kfactor.lab.datasets import render

import numpy as np
import pytest
import tensorflow as tf

SIZES = (3, 6, 40, 32, 32)


def centroid(image):
    rows, cols = np.nonzero(image[..., 0])
    return rows.mean(), cols.mean()


# === Factor grid ===


def test_grid_constants_match_official_dsprites():
    assert kd.DSPRITES_TASKS == (
        "shape",
        "scale",
        "orientation",
        "pos_x",
        "pos_y",
    )
    assert kd.DSPRITES_FACTOR_SIZES == SIZES
    assert kd.DSPRITES_NUM_CLASSES == dict(zip(kd.DSPRITES_TASKS, SIZES))
    assert kd.DSPRITES_NUM_IMAGES == 737_280
    values = kd.DSPRITES_FACTOR_VALUES
    np.testing.assert_allclose(values["scale"], np.linspace(0.5, 1, 6))
    np.testing.assert_allclose(
        values["orientation"], np.linspace(0, 2 * np.pi, 40)
    )
    np.testing.assert_allclose(values["pos_x"], np.linspace(0, 1, 32))


def test_index_factor_round_trip_in_c_order():
    indices = np.arange(kd.DSPRITES_NUM_IMAGES)
    factors = kd.index_to_factors(indices)
    grids = np.meshgrid(*[np.arange(s) for s in SIZES], indexing="ij")
    expected = np.stack([g.reshape(-1) for g in grids], axis=-1)
    np.testing.assert_array_equal(factors, expected)
    np.testing.assert_array_equal(kd.factors_to_index(factors), indices)
    assert kd.index_to_factors(1).tolist() == [0, 0, 0, 0, 1]
    assert kd.index_to_factors(32).tolist() == [0, 0, 0, 1, 0]
    assert kd.index_to_factors(245_760).tolist() == [1, 0, 0, 0, 0]


def test_tf_index_to_factors_matches_numpy():
    indices = np.random.default_rng(0).integers(0, 737_280, 1000)
    got = dsprites_pipeline.tf_index_to_factors(tf.constant(indices)).numpy()
    np.testing.assert_array_equal(got, kd.index_to_factors(indices))


@pytest.mark.parametrize(
    "factors, error",
    [
        ([[3, 0, 0, 0, 0]], ValueError),
        ([[0, 0, 40, 0, 0]], ValueError),
        ([[0, 0, 0, -1, 0]], ValueError),
        ([[0, 0, 0, 0]], ValueError),
        ([[0.0, 0, 0, 0, 0]], TypeError),
    ],
)
def test_bad_factors_raise(factors, error):
    with pytest.raises(error, match="Expected"):
        kd.render_numpy(factors)


def test_bad_indices_raise():
    with pytest.raises(ValueError, match="737280"):
        kd.index_to_factors([737_280])
    with pytest.raises(TypeError, match="integer"):
        kd.index_to_factors([1.5])


# === Renderers ===


def test_images_are_binary_float32_and_never_empty():
    factors = kd.index_to_factors(np.arange(0, 737_280, 997))
    images = kd.render_numpy(factors)
    assert images.shape == (len(factors), 64, 64, 1)
    assert images.dtype == np.float32
    assert set(np.unique(images).tolist()) == {0.0, 1.0}
    assert images.sum(axis=(1, 2, 3)).min() > 20


def test_sprites_stay_inside_the_image():
    factors = [
        [shape, 5, orientation, x, y]
        for shape in range(3)
        for orientation in range(40)
        for x in (0, 31)
        for y in (0, 31)
    ]
    images = kd.render_numpy(factors)[..., 0]
    border = np.concatenate(
        [images[:, 0], images[:, -1], images[:, :, 0], images[:, :, -1]],
        axis=1,
    )
    assert border.max() == 0


@pytest.mark.parametrize("shape", [0, 1, 2])
def test_area_grows_with_scale(shape):
    images = kd.render_numpy([[shape, s, 0, 16, 16] for s in range(6)])
    areas = images.sum(axis=(1, 2, 3))
    assert np.all(np.diff(areas) > 0), areas
    # Area ~ scale**2: a 2x larger scale covers ~4x the pixels.
    assert 3.0 < areas[-1] / areas[0] < 5.0


def test_shapes_differ_from_each_other():
    images = kd.render_numpy([[s, 5, 0, 16, 16] for s in range(3)])
    for a, b in ((0, 1), (0, 2), (1, 2)):
        assert (images[a] != images[b]).sum() > 20


def test_orientation_rotates_the_heart():
    images = kd.render_numpy([[2, 5, o, 16, 16] for o in range(40)])
    flat = images.reshape(40, -1)
    # 0 and 2*pi are the same rotation, as in the official grid...
    np.testing.assert_array_equal(flat[0], flat[39])
    # ...and the heart has no rotational symmetry: the 39 others all differ.
    distinct = np.unique(flat[:39], axis=0)
    assert len(distinct) == 39
    # The lobes hold most of the heart's mass: upright they are above the
    # sprite centre, after ~pi/2 (counter-clockwise) on its left, after ~pi
    # below it.
    centre = 12 + 40 * 16 / 31 - 0.5  # pos 16, in pixel-index units
    assert (
        centroid(images[0])[0]
        < centre - 1
        < centre + 1
        < centroid(images[20])[0]
    )
    assert centroid(images[10])[1] < centre - 1
    # Rotation keeps the area (up to pixelation).
    areas = flat.sum(axis=1)
    assert areas.max() / areas.min() < 1.15


def test_square_has_quarter_turn_symmetry():
    images = kd.render_numpy([[0, 5, o, 16, 16] for o in (0, 5, 10)])
    assert (images[0] != images[1]).sum() > 10  # 46 degrees: a diamond
    assert (images[0] != images[2]).sum() < 30  # 92 degrees: ~the same


def test_position_moves_the_centroid_monotonically():
    xs = kd.render_numpy([[1, 3, 7, x, 10] for x in range(32)])
    ys = kd.render_numpy([[1, 3, 7, 10, y] for y in range(32)])
    x_centroids = np.array([centroid(im) for im in xs])
    y_centroids = np.array([centroid(im) for im in ys])
    assert np.all(np.diff(x_centroids[:, 1]) > 0)  # columns move right
    assert np.all(np.diff(y_centroids[:, 0]) > 0)  # rows move down
    assert np.ptp(x_centroids[:, 0]) < 0.5  # the other axis stays put
    assert np.ptp(y_centroids[:, 1]) < 0.5
    assert 30 < x_centroids[-1, 1] - x_centroids[0, 1] < 50


def test_tf_renderer_equals_numpy_renderer():
    rng = np.random.default_rng(1)
    mixed = kd.index_to_factors(rng.integers(0, 737_280, 3000))
    one_shape = kd.index_to_factors(np.arange(500_000, 500_400))
    for factors in (mixed, one_shape):
        expected = kd.render_numpy(factors)
        np.testing.assert_array_equal(kd.render_tf(factors).numpy(), expected)
    graph_fn = tf.function(kd.render_tf)
    np.testing.assert_array_equal(
        graph_fn(tf.constant(mixed[:128])).numpy(),
        kd.render_numpy(mixed[:128]),
    )


def test_renderers_share_float32_tables():
    assert render.COEFS.dtype == np.float32
    assert render.COEFS.shape == (3 * 6 * 40, 4)
    assert render.PIXEL_OFFSETS.shape == (32, 64)


# === Splits ===


def test_split_is_disjoint_seeded_and_sized():
    train, test = kd.dsprites_split(5000, 1000, seed=3)
    assert train.shape == (5000,) and test.shape == (1000,)
    assert len(np.unique(train)) == 5000
    assert len(np.intersect1d(train, test)) == 0
    again = kd.dsprites_split(5000, 1000, seed=3)
    np.testing.assert_array_equal(again[0], train)
    np.testing.assert_array_equal(again[1], test)
    other = kd.dsprites_split(5000, 1000, seed=4)
    assert not np.array_equal(other[0], train)
    assert train.min() >= 0 and test.max() < 737_280


def test_split_prefixes_are_uniform_subsets():
    # Metrics score the first N test images: each shape must be there.
    _, test = kd.dsprites_split(0, 3000, seed=0)
    shapes = kd.index_to_factors(test[:300])[:, 0]
    assert np.bincount(shapes, minlength=3).min() > 70


def test_split_errors():
    with pytest.raises(ValueError, match="737280"):
        kd.dsprites_split(700_000, 40_000)
    with pytest.raises(ValueError, match="num_test"):
        kd.dsprites_split(10, -1)
    with pytest.raises(TypeError, match="num_train"):
        kd.dsprites_split(1.5, 1)
    train, test = kd.dsprites_split(737_280, 0)
    assert len(train) == 737_280 and len(test) == 0


# === tf.data pipeline ===


def test_dataset_spec_cardinality_and_content():
    indices = np.sort(np.random.default_rng(0).choice(737_280, 300, False))
    ds = kd.dsprites_dataset(indices, batch_size=128, shuffle=False)
    images_spec, labels_spec = ds.element_spec
    assert images_spec.shape.as_list() == [None, 64, 64, 1]
    assert images_spec.dtype == tf.float32
    assert tuple(labels_spec) == kd.DSPRITES_TASKS
    for spec in labels_spec.values():
        assert spec.dtype == tf.int32 and spec.shape.as_list() == [None]
    assert int(ds.cardinality()) == math.ceil(300 / 128)
    batches = list(ds.as_numpy_iterator())
    assert [len(b[0]) for b in batches] == [128, 128, 44]
    images = np.concatenate([b[0] for b in batches])
    labels = np.stack(
        [np.concatenate([b[1][t] for b in batches]) for t in kd.DSPRITES_TASKS],
        axis=-1,
    )
    np.testing.assert_array_equal(labels, kd.index_to_factors(indices))
    assert labels.min() >= 0 and np.all(labels.max(axis=0) < SIZES)
    np.testing.assert_array_equal(
        images, kd.render_numpy(kd.index_to_factors(indices))
    )


def _label_stream(ds, batches):
    return np.concatenate(
        [y["pos_y"] for _, y in ds.take(batches).as_numpy_iterator()]
    )


def test_dataset_shuffle_is_seeded_and_reshuffles_each_epoch():
    indices = np.arange(1000, 1200)
    first = _label_stream(kd.dsprites_dataset(indices, 50, seed=5), 4)
    tf.random.set_seed(123)  # the global seed must not matter
    again = _label_stream(kd.dsprites_dataset(indices, 50, seed=5), 4)
    np.testing.assert_array_equal(first, again)
    other = _label_stream(kd.dsprites_dataset(indices, 50, seed=6), 4)
    assert not np.array_equal(first, other)
    looped = kd.dsprites_dataset(indices, 50, seed=5, repeat=True)
    two_epochs = _label_stream(looped, 8)
    np.testing.assert_array_equal(two_epochs[:200], first)
    assert not np.array_equal(two_epochs[200:], first)
    np.testing.assert_array_equal(np.sort(two_epochs[200:]), np.sort(first))
    assert looped.cardinality() == tf.data.INFINITE_CARDINALITY
    # Keras's fit iterates a finite dataset once per epoch: each new
    # iteration is a new permutation, and a new dataset starts over.
    finite = kd.dsprites_dataset(indices, 50, seed=5)
    epoch0, epoch1 = _label_stream(finite, 4), _label_stream(finite, 4)
    np.testing.assert_array_equal(epoch0, first)
    np.testing.assert_array_equal(epoch1, two_epochs[200:])


def test_cached_dataset_matches_rendered_dataset():
    indices = np.random.default_rng(2).choice(737_280, 150, replace=False)
    live = kd.dsprites_dataset(indices, batch_size=64, seed=1)
    cached = kd.dsprites_dataset(indices, batch_size=64, seed=1, cache=True)
    assert cached.element_spec == live.element_spec
    assert int(cached.cardinality()) == 3
    for (xa, ya), (xb, yb) in zip(live, cached):
        np.testing.assert_array_equal(xa.numpy(), xb.numpy())
        for task in kd.DSPRITES_TASKS:
            np.testing.assert_array_equal(ya[task].numpy(), yb[task].numpy())


def test_dataset_argument_errors():
    with pytest.raises(ValueError, match="1-D integer"):
        kd.dsprites_dataset(np.zeros((2, 2), np.int64))
    with pytest.raises(ValueError, match="grid indices"):
        kd.dsprites_dataset(np.array([737_280]))
    with pytest.raises(ValueError, match="batch_size"):
        kd.dsprites_dataset(np.arange(4), batch_size=0)


def test_pipeline_throughput_floor():
    train, _ = kd.dsprites_split(20_000, 0, seed=0)
    iterator = iter(kd.dsprites_dataset(train, batch_size=128, repeat=True))
    for _ in range(5):
        next(iterator)
    start = time.perf_counter()
    count = sum(int(next(iterator)[0].shape[0]) for _ in range(40))
    rate = count / (time.perf_counter() - start)
    assert rate > 2_000, f"{rate:.0f} images/s"


# === Ground-truth sampler ===


def test_sampler_protocol():
    data = kd.ProceduralDSprites(seed=0)
    assert data.factor_sizes == SIZES and isinstance(data.factor_sizes, tuple)
    assert data.num_factors == 5 and data.num_images == 737_280
    assert data.observation_shape == (64, 64, 1)
    assert data.factor_names == kd.DSPRITES_TASKS
    factors = data.sample_factors(6000, np.random.RandomState(0))
    assert factors.shape == (6000, 5)
    assert np.issubdtype(factors.dtype, np.integer)
    assert factors.min() >= 0 and np.all(
        factors.max(axis=0) == np.array(SIZES) - 1
    )
    np.testing.assert_array_equal(
        factors, data.sample_factors(6000, np.random.RandomState(0))
    )
    shape_freq = np.bincount(factors[:, 0]) / len(factors)
    np.testing.assert_allclose(shape_freq, 1 / 3, atol=0.03)
    generator_draw = data.sample_factors(7, np.random.default_rng(0))
    assert generator_draw.shape == (7, 5)
    assert data.sample_factors(0, np.random.RandomState(0)).shape == (0, 5)
    observations = data.sample_observations_from_factors(
        factors[:16], np.random.RandomState(1)
    )
    assert observations.shape == (16, 64, 64, 1)
    assert observations.dtype == np.float32
    np.testing.assert_array_equal(observations, data.render(factors[:16]))
    drawn = data.sample_observations(3, np.random.RandomState(0))
    assert drawn.shape == (3, 64, 64, 1)
    np.testing.assert_array_equal(
        data.factors_to_index(data.index_to_factors([5, 77])), [5, 77]
    )
    with pytest.raises(TypeError, match="random_state"):
        data.sample_factors(3, random_state=0)


def test_procedural_dsprites_split_and_dataset_use_its_seed():
    data = kd.ProceduralDSprites(seed=9)
    train, test = data.split(100, 20)
    np.testing.assert_array_equal(train, kd.dsprites_split(100, 20, seed=9)[0])
    images, labels = next(iter(data.dataset(test, batch_size=20)))
    assert images.shape == (20, 64, 64, 1)
    assert sorted(labels) == sorted(kd.DSPRITES_TASKS)
    assert "seed=9" in repr(data)


def test_public_surface_is_explicit_and_sorted():
    names = kd.__all__
    assert all(hasattr(kd, name) for name in names)
    constants = [n for n in names if n.isupper()]
    classes = [n for n in names if n[0].isupper() and not n.isupper()]
    functions = [n for n in names if n[0].islower()]
    assert names == sorted(constants) + sorted(classes) + sorted(functions)
