"""Every augmentation: random affine transforms (exact special cases, geometry, statistics, one
call for the whole batch, reproducibility, errors), the crops and Compose, stroke thickness and
slashed zeros."""

import numpy as np
import pytest

from cnnlib import augment
from cnnlib import strokes as S
from cnnlib.augment import (RandomAffine, elastic_displacement, random_affine, sample_affine,
                            warp)


def identity(n):
    return np.tile(np.eye(2), (n, 1, 1)), np.zeros((n, 2))


def digits(rng, n=5, size=28):
    return rng.random((n, 1, size, size)).astype(np.float32)


def test_identity_is_the_centre_crop(rng):
    x = digits(rng)
    A, d = identity(len(x))
    assert np.array_equal(warp(x, A, d, size=24), x[:, :, 2:26, 2:26])
    assert np.array_equal(warp(x, A, d), x)


def test_no_randomness_settings_give_the_centre_crop(rng):
    x = digits(rng)
    out = random_affine(x, rng, size=24, rotation=0, scale=0, shift=0)
    assert np.array_equal(out, x[:, :, 2:26, 2:26])


def test_integer_shift_moves_pixels(rng):
    x = digits(rng, n=2)
    A, d = identity(2)
    d[:, 0] = [1.0, -2.0]   # rows
    d[:, 1] = [3.0, 0.0]    # columns
    out = warp(x, A, d, size=24)
    # Output (i, j) reads source (i + 2 - d_row, j + 2 - d_col): the digit moves by d.
    assert np.all(out[0, 0, :, 0] == 0)                                # source column -1
    assert np.array_equal(out[0, 0, :, 1:], x[0, 0, 1:25, 0:23])
    assert np.array_equal(out[1, 0], x[1, 0, 4:28, 2:26])


def test_half_pixel_shift_averages_neighbours(rng):
    x = digits(rng, n=1)
    A, d = identity(1)
    d[0] = [0.0, 0.5]
    out = warp(x, A, d, size=24)
    assert np.allclose(out[0, 0], (x[0, 0, 2:26, 1:25] + x[0, 0, 2:26, 2:26]) / 2, atol=1e-6)


def test_quarter_turn_rotates_the_array(rng):
    x = digits(rng, n=1, size=9)
    theta = np.pi / 2
    A = np.array([[[np.cos(theta), np.sin(theta)], [-np.sin(theta), np.cos(theta)]]])
    out = warp(x, A, np.zeros((1, 2)))
    # A 90-degree turn about the centre is an exact permutation of the pixels.
    candidates = [np.rot90(x[0, 0], 1), np.rot90(x[0, 0], -1)]
    assert any(np.allclose(out[0, 0], c, atol=1e-6) for c in candidates)


def test_zero_outside_the_source(rng):
    x = np.ones((1, 1, 28, 28), dtype=np.float32)
    A, d = identity(1)
    d[0] = [0.0, 10.0]
    out = warp(x, A, d, size=28)
    assert np.all(out[0, 0, :, :10] == 0) and np.all(out[0, 0, :, 10:] == 1)


def test_scaling_up_spreads_the_ink(rng):
    x = np.zeros((1, 1, 28, 28), dtype=np.float32)
    x[0, 0, 10:18, 10:18] = 1.0
    A = np.eye(2)[None] / 1.25
    out = warp(x, A, np.zeros((1, 2)))
    assert out.sum() == pytest.approx(x.sum() * 1.25 ** 2, rel=0.05)


def test_parameters_stay_in_their_ranges(rng):
    A, d = sample_affine(10_000, rng, rotation=10, scale=0.1, shift=2)
    s = 1 / np.sqrt(np.abs(np.linalg.det(A)))
    theta = np.degrees(np.arctan2(A[:, 0, 1], A[:, 0, 0]))
    assert 0.9 <= s.min() < 0.91 and 1.09 < s.max() <= 1.1
    assert -10 <= theta.min() < -9.9 and 9.9 < theta.max() <= 10
    assert -2 <= d.min() < -1.99 and 1.99 < d.max() <= 2


@pytest.mark.slow
def test_augmented_digits_keep_their_ink_roughly(rng):
    from cnnlib.data import MnistDownloadError, load_mnist
    try:
        x_train = load_mnist(progress=False)[0]
    except MnistDownloadError as error:  # no data on this machine, and no source to fetch it
        pytest.skip(f"MNIST not available: {error}")
    x = x_train[:256, None].astype(np.float32) / 255
    out = random_affine(x, rng, size=24, elastic_alpha=8.0)
    ink_in, ink_out = x.sum(axis=(1, 2, 3)), out.sum(axis=(1, 2, 3))
    assert out.shape == (256, 1, 24, 24) and out.dtype == np.float32
    assert 0.0 <= out.min() and out.max() <= 1.0
    assert np.median(ink_out / ink_in) == pytest.approx(1.0, abs=0.1)


def test_elastic_field_is_smooth_and_scaled(rng):
    field = elastic_displacement(50, 24, rng, alpha=8.0, sigma=3.0)
    assert field.shape == (50, 2, 24, 24)
    # Neighbours move together: adjacent differences are a fraction of the values (for raw
    # uniform noise they would be larger than the values).
    step = np.abs(np.diff(field, axis=-1)).mean()
    assert step < 0.3 * np.abs(field).mean()
    assert 0.2 < np.abs(field).mean() < 1.0 and np.abs(field).max() < 8.0


def test_elastic_changes_the_image_and_is_off_by_default(rng):
    x = digits(np.random.default_rng(1))
    plain = random_affine(x, np.random.default_rng(5))
    again = random_affine(x, np.random.default_rng(5))
    bent = random_affine(x, np.random.default_rng(5), elastic_alpha=8.0)
    assert np.array_equal(plain, again)
    assert not np.allclose(plain, bent)


def test_three_dimensional_input_and_trainer_signature(rng):
    x = digits(rng)[:, 0]
    assert random_affine(x, rng).shape == (5, 24, 24)
    augment = RandomAffine(size=24)
    assert augment(digits(rng), np.random.default_rng(0)).shape == (5, 1, 24, 24)
    assert "rotation=10" in repr(augment)


def test_errors_say_what_is_expected(rng):
    with pytest.raises(ValueError, match="floating images"):
        random_affine(np.zeros((2, 28, 28), dtype=np.uint8), rng)
    with pytest.raises(ValueError, match=r"\(N, H, W\) or \(N, 1, H, W\)"):
        random_affine(np.zeros((2, 3, 28, 28), dtype=np.float32), rng)
    with pytest.raises(ValueError, match="scale < 1"):
        RandomAffine(scale=1.5)
    with pytest.raises(ValueError, match=r"A of shape \(2, 2, 2\)"):
        warp(np.zeros((2, 28, 28)), np.zeros((3, 2, 2)), np.zeros((3, 2)))
    with pytest.raises(ValueError, match="elastic"):
        RandomAffine(elastic_alpha=-1)


def test_random_affine_takes_a_seed_and_refuses_a_negative_gain():
    x = np.random.default_rng(0).random((3, 28, 28), dtype=np.float32)
    np.testing.assert_array_equal(random_affine(x, 5), random_affine(x, np.random.default_rng(5)))
    with pytest.raises(ValueError, match="elastic_alpha >= 0"):
        random_affine(x, 0, elastic_alpha=-1.0)


# ------------------------------------------------------------------------------------ crops

def test_random_crop_takes_a_window_of_each_image():
    x = np.random.default_rng(0).random((30, 1, 28, 28), dtype=np.float32)
    crops = augment.RandomCrop(24)(x, np.random.default_rng(1))
    assert crops.shape == (30, 1, 24, 24) and crops.dtype == np.float32
    corners = set()
    for image, crop in zip(x, crops):
        matches = [(i, j) for i in range(5) for j in range(5)
                   if np.array_equal(image[:, i:i + 24, j:j + 24], crop)]
        assert len(matches) == 1
        corners.add(matches[0])
    assert len(corners) > 10  # corners really vary
    again = augment.RandomCrop(24)(x, np.random.default_rng(1))
    assert np.array_equal(crops, again)


def test_center_crop_and_compose():
    x = np.arange(2 * 28 * 28, dtype=np.float32).reshape(2, 1, 28, 28)
    assert np.array_equal(augment.CenterCrop(24)(x), x[:, :, 2:26, 2:26])
    flip = lambda x, rng: x[..., ::-1]  # noqa: E731
    both = augment.Compose(flip, augment.CenterCrop(24))(x, None)
    assert np.array_equal(both, x[:, :, 2:26, 2:26][..., ::-1])
    with pytest.raises(ValueError, match="H, W >= 30"):
        augment.CenterCrop(30)(x)


def test_random_thickness_thickens_and_thins_within_range():
    line = S.rasterize([[[4.0, 14.0], [24.0, 14.0]]], (28, 28), 3.0)[None, None]
    x = np.repeat(line, 200, axis=0)  # (200, 1, 28, 28)
    rng = np.random.default_rng(0)
    out = augment.RandomThickness(0.75)(x, rng)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    ink = out.sum(axis=(1, 2, 3)) / line.sum()
    assert ink.min() < 0.8 and ink.max() > 1.2  # both thinner and thicker copies
    np.testing.assert_array_equal(augment.RandomThickness(0.0)(x[:3], rng), x[:3])
    with pytest.raises(ValueError, match="amount"):
        augment.RandomThickness(1.5)


def test_slashed_zeros_cross_the_loop_of_some_zeros_only():
    ring = (S.rasterize([np.array([[14 + 6 * np.cos(t), 14 + 8 * np.sin(t)]
                                   for t in np.linspace(0, 2 * np.pi, 40)])], (28, 28), 2.5)
            * 255).astype(np.uint8)
    images = np.repeat(ring[None], 10, axis=0)
    labels = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
    extra, extra_labels = augment.slashed_zeros(images, labels, 0.5, np.random.default_rng(0))
    assert extra.shape == (2, 28, 28) and extra.dtype == np.uint8
    assert extra_labels.tolist() == [0, 0]
    for image in extra:
        added = (image.astype(int) - ring) > 100
        assert added.sum() > 10                       # new ink...
        assert added[12:17, 12:17].any()              # ...through the middle of the loop...
        rows, cols = np.nonzero(added)
        assert np.corrcoef(cols, rows)[0, 1] < -0.8   # ...along a "/" (y grows downwards)
        assert (image >= ring).all()                  # the zero itself is kept
    again, _ = augment.slashed_zeros(images, labels, 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(again, extra)
    assert len(augment.slashed_zeros(images, labels, 0.0, np.random.default_rng(0))[0]) == 0
    with pytest.raises(ValueError, match="fraction"):
        augment.slashed_zeros(images, labels, 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        augment.slashed_zeros(images.astype(np.float32), labels, 0.5, np.random.default_rng(0))
