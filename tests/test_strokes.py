"""Stroke pre-processing: the rasterizer against a loop reference and each method's geometry
(the recorded pen digits are tests/test_pendigits.py)."""

import math

import numpy as np
import pytest

from cnnlib import strokes as S

# A hand-made "7" and "4" in 280x280 box coordinates (y down); the 4 has two strokes.
SEVEN = [[[80, 60], [200, 60], [150, 140], [120, 220]]]
FOUR = [[[160, 50], [80, 160], [210, 160]], [[170, 100], [170, 230]]]


def loop_rasterize(strokes, shape, width, ramp=1.0):
    """Reference: every pixel against every segment, in plain Python loops (float64)."""
    segments = []
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)
        if len(points) == 1:
            segments.append((points[0], points[0]))
        segments += [(points[i], points[i + 1]) for i in range(len(points) - 1)]
    out = np.zeros(shape)
    for r in range(shape[0]):
        for c in range(shape[1]):
            p = np.array([c + 0.5, r + 0.5])
            best = math.inf
            for a, b in segments:
                ab = b - a
                length2 = ab @ ab
                t = 0.0 if length2 == 0 else min(1.0, max(0.0, (p - a) @ ab / length2))
                best = min(best, float(np.linalg.norm(p - a - t * ab)))
            out[r, c] = min(1.0, max(0.0, (width / 2 - best) / ramp + 0.5))
    return out


def ink_box(image, threshold=0.1):
    """(rows, cols) spanned by pixels above threshold."""
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


# ---------------------------------------------------------------------------------------------
# rasterize


def test_single_point_is_a_round_dot_centred_on_the_point():
    image = S.rasterize([[[10.0, 12.0]]], (24, 24), width=4.0)
    x, y = S.center_of_mass(image)
    assert abs(x - 10.0) < 1e-9 and abs(y - 12.0) < 1e-9
    assert image[11, 9] == 1.0 and image[12, 10] == 1.0  # pixels whose centres are 0.7 px away
    assert image[12, 15] == 0.0  # 5.5 px away: outside radius 2 + half a ramp
    # Round: the same coverage at the same distance along the axes and a diagonal.
    assert image[12 - 3, 10] == pytest.approx(image[12 + 2, 10])
    assert image.sum() == pytest.approx(math.pi * 2.0 ** 2, rel=0.05)


def test_horizontal_line_has_the_pen_width_and_anti_aliased_edges():
    image = S.rasterize([[[4.0, 10.0], [20.0, 10.0]]], (24, 24), width=3.0)
    # Away from the caps every column holds exactly the width of ink: 1 + 1 + 0.5 + 0.5.
    np.testing.assert_allclose(image[:, 8:16].sum(axis=0), 3.0, atol=1e-6)
    np.testing.assert_allclose(image[8:12, 10], [0.5, 1.0, 1.0, 0.5], atol=1e-6)
    shifted = S.rasterize([[[4.0, 10.3], [20.0, 10.3]]], (24, 24), width=3.0)
    edges = shifted[:, 10]
    assert ((edges > 0) & (edges < 1)).sum() == 2  # grey levels on both sides, not jaggies
    np.testing.assert_allclose(shifted[:, 8:16].sum(axis=0), 3.0, atol=1e-6)


def test_rasterize_matches_the_loop_reference_on_random_strokes():
    rng = np.random.default_rng(3)
    for _ in range(4):
        strokes = [rng.uniform(-4, 22, size=(rng.integers(1, 12), 2))
                   for _ in range(rng.integers(1, 4))]
        width, ramp = rng.uniform(0.5, 4.0), rng.uniform(0.3, 1.5)
        image = S.rasterize(strokes, (18, 20), width, ramp=ramp)
        assert image.dtype == np.float32 and image.shape == (18, 20)
        assert image.min() >= 0.0 and image.max() <= 1.0
        np.testing.assert_allclose(image, loop_rasterize(strokes, (18, 20), width, ramp),
                                   atol=1e-6)


def test_rasterize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        S.rasterize([[[1, 1]]], (8, 8), width=0)
    with pytest.raises(ValueError, match="shape"):
        S.rasterize([[[1, 1]]], (0, 8), width=1)


def test_resample_thins_dense_strokes_and_keeps_the_ends():
    t = np.linspace(0, 1, 500)
    points = np.stack([100 * t, 50 * np.sin(3 * t)], axis=1)
    thinned = S.resample(points, 5.0)
    assert 20 < len(thinned) < 40
    np.testing.assert_array_equal(thinned[0], points[0])
    np.testing.assert_array_equal(thinned[-1], points[-1])
    steps = np.linalg.norm(np.diff(thinned[:-1], axis=0), axis=1)
    assert steps.min() > 4.0


# ---------------------------------------------------------------------------------------------
# The methods


@pytest.mark.parametrize("method", sorted(S.METHODS))
@pytest.mark.parametrize("drawing", [SEVEN, FOUR, [[[140, 140]]]], ids=["seven", "four", "dot"])
def test_methods_give_the_network_a_24x24_float32_image(method, drawing):
    image = S.preprocess(drawing, (280, 280), method)
    assert image.shape == (24, 24) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.9
    # Not a blob: a digit covers far less than half of the image.
    assert (image > 0.5).mean() < 0.35


def test_mnist_method_centres_the_centre_of_mass():
    # Lopsided drawings whose ink stays inside the 24x24 crop after the shift (a "7" would lose
    # the end of its tail to the crop, as MNIST 7s do, and its centre of mass with it).
    t = np.linspace(0, 2 * np.pi, 40)
    ring = np.stack([140 + 50 * np.cos(t), 140 + 80 * np.sin(t)], axis=1)
    for drawing in ([ring, [[115, 90], [125, 95]]], [ring, [[150, 200], [165, 180]]]):
        image = S.preprocess(drawing, method="mnist")
        # MNIST's centre of mass is on the centre of pixel (14, 14) of 28x28: (12.5, 12.5) in
        # the centre 24x24 crop, in continuous coordinates.
        x, y = S.center_of_mass(image)
        assert abs(x - 12.5) < 0.1 and abs(y - 12.5) < 0.1, (x, y)


@pytest.mark.parametrize("method", sorted(S.METHODS))
def test_aspect_ratio_is_kept(method):
    # A tall thin ellipse (a "0" twice as tall as wide) and the same lying down.
    t = np.linspace(0, 2 * np.pi, 60)
    tall = [np.stack([140 + 40 * np.cos(t), 140 + 80 * np.sin(t)], axis=1)]
    wide = [np.stack([140 + 80 * np.cos(t), 140 + 40 * np.sin(t)], axis=1)]
    h_tall, w_tall = ink_box(S.preprocess(tall, method=method))
    h_wide, w_wide = ink_box(S.preprocess(wide, method=method))
    assert 18 <= h_tall <= 24 and 18 <= w_wide <= 24
    # Pen width w in the ink box: (h - w) / (wide - w) is about 2 for both.
    assert 1.4 < h_tall / w_tall < 2.2 and 1.4 < w_wide / h_wide < 2.2
    assert abs(h_tall - w_wide) <= 1 and abs(w_tall - h_wide) <= 1


@pytest.mark.parametrize("method", sorted(S.METHODS))
def test_translation_does_not_change_the_image(method):
    base = S.preprocess(FOUR, method=method)
    moved = S.preprocess(S.transform(FOUR, 1.0, (-37.0, 23.0)), method=method)
    np.testing.assert_allclose(moved, base, atol=1e-5)


def test_uniform_scale_does_not_change_the_mnist_image():
    base = S.preprocess(SEVEN, method="mnist")
    smaller = S.preprocess(S.transform(SEVEN, 0.4, (30.0, 50.0)), method="mnist")
    np.testing.assert_allclose(smaller, base, atol=1e-5)
    # The same drawing in other units and another box size.
    other = S.preprocess(S.transform(SEVEN, 10.0, (0.0, 0.0)), (2800, 2800), method="mnist")
    np.testing.assert_allclose(other, base, atol=1e-5)


def test_original_method_keeps_the_pen_thin_for_small_drawings():
    big = S.preprocess(SEVEN, method="original")
    small = S.preprocess(S.transform(SEVEN, 0.5, (70.0, 70.0)), method="original")
    # The demo's crop includes the full-size pen's margin, so a small drawing comes out a bit
    # smaller; but its pen is scaled down with it: ink per row of height stays about the same.
    (h_big, _), (h_small, _) = ink_box(big), ink_box(small)
    assert h_small <= h_big
    assert small.sum() / h_small == pytest.approx(big.sum() / h_big, rel=0.15)


def test_fit_to_box_scales_the_larger_side_to_60_percent_and_centres():
    fitted = S.fit_to_box([np.array([[0.0, 0.0], [5.0, 20.0]]), np.array([[1.0, 7.0]])])
    x_min, y_min, x_max, y_max = S.bounding_box(fitted)
    assert y_max - y_min == pytest.approx(168.0)
    assert x_max - x_min == pytest.approx(42.0)
    assert (x_min + x_max) / 2 == pytest.approx(140.0)
    assert (y_min + y_max) / 2 == pytest.approx(140.0)
    np.testing.assert_allclose(S.fit_to_box([[[3.0, 4.0]]])[0], [[140.0, 140.0]])


def test_fit_to_box_draws_a_drawing_too_small_to_scale_as_a_dot():
    # 168 / 1e-310 overflows to inf, and inf x 0 gave NaN points that as_strokes blamed on the
    # input; a drawing this small is a click: centred, unscaled, a dot like a single point.
    fitted = S.fit_to_box([[[0.0, 0.0], [1e-310, 0.0]]])
    np.testing.assert_allclose(fitted[0], [[140.0, 140.0], [140.0, 140.0]])
    for method in S.METHODS:
        image = S.preprocess(fitted, method=method)
        assert np.isfinite(image).all() and image.max() > 0
    # The other end: a span past 1.8e308 overflowed x_max - x_min; it is scaled like any other.
    np.testing.assert_allclose(S.fit_to_box([[[-1e308, 0.0], [1e308, 10.0]]])[0],
                               [[56.0, 140.0], [224.0, 140.0]])


def test_preprocess_rejects_empty_and_bad_drawings():
    with pytest.raises(ValueError, match="nothing drawn"):
        S.preprocess([])
    with pytest.raises(ValueError, match="stroke 1: a stroke needs at least one point"):
        S.preprocess([[[1, 2]], []])
    with pytest.raises(ValueError, match="stroke 0, point 1: coordinates must be finite"):
        S.preprocess([[[1, 2], [float("nan"), 3]]])
    with pytest.raises(ValueError, match="point 0: expected \\[x, y\\]"):
        S.preprocess([[["a", 2]]])
    with pytest.raises(ValueError, match="unknown pre-processing method 'blur'"):
        S.preprocess(SEVEN, method="blur")
