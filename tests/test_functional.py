"""Vectorized forward/backward against the loop versions, the tie rule, and the shape errors."""

import numpy as np
import pytest

from cnnlib import functional as F
from cnnlib import naive

CONV_CASES = [  # (N, C, H, W, F, k, stride, padding)
    (2, 1, 7, 9, 3, 1, 1, 0),
    (2, 3, 8, 6, 2, 3, 1, 1),
    (2, 3, 9, 7, 4, 4, 2, 2),
    (1, 1, 12, 10, 2, 5, 1, 0),
    (2, 3, 10, 11, 2, 5, 2, 1),
    (1, 2, 5, 5, 3, 4, 3, 2),
]


@pytest.mark.parametrize("N, C, H, W, Fo, k, s, p", CONV_CASES)
def test_conv2d_matches_naive(rng, N, C, H, W, Fo, k, s, p):
    x = rng.normal(size=(N, C, H, W))
    w = rng.normal(size=(Fo, C, k, k))
    b = rng.normal(size=Fo)
    out, cache = F.conv2d_forward(x, w, b, s, p)
    out_ref, cache_ref = naive.conv2d_forward(x, w, b, s, p)
    assert out.shape == (N, Fo, F.output_size(H, k, s, p), F.output_size(W, k, s, p))
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-10)
    dout = rng.normal(size=out.shape)
    for got, ref in zip(F.conv2d_backward(dout, cache), naive.conv2d_backward(dout, cache_ref)):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


POOL_CASES = [(2, 2), (3, 2), (3, 1), (2, 1), (3, 3)]


@pytest.mark.parametrize("ties", ["split", "first"])
@pytest.mark.parametrize("k, s", POOL_CASES)
@pytest.mark.parametrize("quantized", [False, True])
def test_maxpool_matches_naive(rng, k, s, ties, quantized):
    x = rng.normal(size=(2, 3, 8, 7))
    if quantized:  # many ties, as after a ReLU or on a digit's flat strokes
        x = np.maximum(np.round(x), 0)
    out, cache = F.maxpool2d_forward(x, k, s)
    out_ref, cache_ref = naive.maxpool2d_forward(x, k, s)
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-10)
    dout = rng.normal(size=out.shape)
    dx = F.maxpool2d_backward(dout, cache, ties)
    dx_ref = naive.maxpool2d_backward(dout, cache_ref, ties)
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=1e-10)
    # Every window hands on exactly its gradient, however it is shared.
    np.testing.assert_allclose(dx.sum(), dout.sum(), atol=1e-10)


@pytest.mark.parametrize("n_tied", [1, 2, 3, 4])
def test_tied_maxima_split_evenly_or_go_to_one(n_tied):
    window = np.zeros(4)
    window[:n_tied] = 5.0
    window[n_tied:] = np.arange(4 - n_tied)  # below the maximum
    x = window.reshape(1, 1, 2, 2)
    out, cache = F.maxpool2d_forward(x, 2)
    dout = np.array([[[[6.0]]]])
    split = F.maxpool2d_backward(dout, cache, "split").ravel()
    np.testing.assert_allclose(split[:n_tied], 6.0 / n_tied)
    np.testing.assert_allclose(split[n_tied:], 0.0)
    first = F.maxpool2d_backward(dout, cache, "first").ravel()
    assert np.count_nonzero(first) == 1 and first[0] == 6.0


def test_tied_window_on_relu_zeros():
    x = np.zeros((1, 1, 2, 2))  # a window a ReLU switched off entirely: four tied zeros
    out, cache = F.maxpool2d_forward(x, 2)
    dx = F.maxpool2d_backward(np.ones((1, 1, 1, 1)), cache)
    np.testing.assert_allclose(dx, 0.25)


def test_overlapping_windows_accumulate():
    x = np.array([[[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]]])
    out, cache = F.maxpool2d_forward(x, 2, 1)  # all four windows contain the centre
    dx = F.maxpool2d_backward(np.ones((1, 1, 2, 2)), cache)
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


def test_unknown_tie_rule():
    out, cache = F.maxpool2d_forward(np.zeros((1, 1, 2, 2)), 2)
    with pytest.raises(ValueError, match="ties must be one of"):
        F.maxpool2d_backward(out, cache, "random")


def test_shape_errors_name_expected_and_received():
    w, b = np.zeros((4, 3, 5, 5)), np.zeros(4)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got \(28, 28\)"):
        F.conv2d_forward(np.zeros((28, 28)), w, b)
    with pytest.raises(ValueError, match=r"3 input channels expects x of shape \(N, 3, H, W\); "
                                         r"got \(2, 1, 28, 28\)"):
        F.conv2d_forward(np.zeros((2, 1, 28, 28)), w, b)
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input.*4x4"):
        F.conv2d_forward(np.zeros((2, 3, 4, 4)), w, b)
    F.conv2d_forward(np.zeros((2, 3, 4, 4)), w, b, padding=1)  # 6x6 once padded: fine
    with pytest.raises(ValueError, match=r"\(N, 10\); got \(2, 9\)"):
        F.linear_forward(np.zeros((2, 9)), np.zeros((3, 10)), np.zeros(3))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got \(2, 8, 8\)"):
        F.maxpool2d_forward(np.zeros((2, 8, 8)), 2)
    with pytest.raises(ValueError, match="larger than the input"):
        F.maxpool2d_forward(np.zeros((1, 1, 1, 4)), 2)


def channels_last(x):
    """The same NCHW array, stored channels-last in memory, as our convolutions return it."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("N, C, H, W, Fo, k, s, p", CONV_CASES)
def test_conv2d_gives_the_same_numbers_for_any_memory_layout(rng, N, C, H, W, Fo, k, s, p):
    x = rng.normal(size=(N, C, H, W))
    w, b = rng.normal(size=(Fo, C, k, k)), rng.normal(size=Fo)
    out, cache = F.conv2d_forward(x, w, b, s, p)
    out_cl, cache_cl = F.conv2d_forward(channels_last(x), w, b, s, p)
    np.testing.assert_allclose(out_cl, out, rtol=0, atol=1e-12)
    dout = rng.normal(size=out.shape)
    for dout_layout in (dout, channels_last(dout)):
        for got, ref in zip(F.conv2d_backward(dout_layout, cache_cl), F.conv2d_backward(dout, cache)):
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties", ["split", "first"])
@pytest.mark.parametrize("k, s", POOL_CASES)
def test_maxpool_on_channels_last_relu_output_matches_naive(rng, k, s, ties):
    # What the pooling layers really see in training: a ReLU of a convolution, channels-last in
    # memory, float32, with many tied zeros.
    x = channels_last(np.maximum(np.round(rng.normal(size=(3, 4, 9, 8))), 0)).astype(np.float32)
    out, cache = F.maxpool2d_forward(x, k, s)
    out_ref, cache_ref = naive.maxpool2d_forward(x.astype(np.float64), k, s)
    np.testing.assert_array_equal(out, out_ref)
    assert out.dtype == np.float32
    dout = rng.normal(size=out.shape).astype(np.float32)
    dx = F.maxpool2d_backward(dout, cache, ties)
    dx_ref = naive.maxpool2d_backward(dout.astype(np.float64), cache_ref, ties)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


def test_conv2d_keeps_float32(rng):
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    out, cache = F.conv2d_forward(x, w, np.zeros(4, np.float32), 1, 1)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in F.conv2d_backward(np.ones_like(out), cache))


def test_conv2d_backward_without_input_grad(rng):
    x, w, b = rng.normal(size=(2, 1, 6, 6)), rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3)
    out, cache = F.conv2d_forward(x, w, b)
    dout = rng.normal(size=out.shape)
    dx, dW, db = F.conv2d_backward(dout, cache, input_grad=False)
    _, dW_full, db_full = F.conv2d_backward(dout, cache)
    assert dx is None
    np.testing.assert_array_equal(dW, dW_full)
    np.testing.assert_array_equal(db, db_full)


@pytest.mark.parametrize("ties", ["split", "first"])
@pytest.mark.parametrize("k, shape", [(2, (2, 3, 8, 6)), (3, (2, 3, 9, 6)), (2, (2, 3, 9, 7))])
@pytest.mark.parametrize("layout", ["NCHW", "channels-last"])
def test_maxpool_with_windows_that_tile_the_input_matches_naive(rng, k, shape, ties, layout):
    # stride = k: the backward pass views the input as whole windows instead of gathering taps;
    # exact tilings and ones with a leftover row and column, many ties (zeros after a ReLU).
    x = np.maximum(np.round(rng.normal(size=shape)), 0)
    if layout == "channels-last":
        x = channels_last(x)
    out, cache = F.maxpool2d_forward(x, k, k)
    out_ref, cache_ref = naive.maxpool2d_forward(x, k, k)
    np.testing.assert_array_equal(out, out_ref)
    dout = rng.normal(size=out.shape)
    dx = F.maxpool2d_backward(dout, cache, ties)
    np.testing.assert_allclose(dx, naive.maxpool2d_backward(dout, cache_ref, ties), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx.sum(), dout.sum(), atol=1e-10)
