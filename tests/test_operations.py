"""Every operation three ways: loops (naive) == as derived (functional) == fast, on stride,
padding, ties and overlapping windows; and the argument checks at the layer boundary."""

import numpy as np
import pytest

from cnnlib import fast, functional, naive
from cnnlib.functional import output_size
from cnnlib.layers import Conv2d, Linear, MaxPool2d


@pytest.fixture(params=[functional, fast], ids=["functional", "fast"])
def impl(request):
    """Each vectorized implementation in turn: the derived one and the fast one."""
    return request.param

CONV_CASES = [  # (N, C, H, W, F, k, stride, padding)
    (2, 1, 7, 9, 3, 1, 1, 0),
    (2, 3, 8, 6, 2, 3, 1, 1),
    (2, 3, 9, 7, 4, 4, 2, 2),
    (1, 1, 12, 10, 2, 5, 1, 0),
    (2, 3, 10, 11, 2, 5, 2, 1),
    (1, 2, 5, 5, 3, 4, 3, 2),
]


@pytest.mark.parametrize("N, C, H, W, Fo, k, s, p", CONV_CASES)
def test_conv2d_matches_the_loops(impl, rng, N, C, H, W, Fo, k, s, p):
    x = rng.normal(size=(N, C, H, W))
    w = rng.normal(size=(Fo, C, k, k))
    b = rng.normal(size=Fo)
    out, cache = impl.conv2d_forward(x, w, b, s, p)
    out_ref, cache_ref = naive.conv2d_forward(x, w, b, s, p)
    assert out.shape == (N, Fo, output_size(H, k, s, p), output_size(W, k, s, p))
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-10)
    dout = rng.normal(size=out.shape)
    for got, ref in zip(impl.conv2d_backward(dout, cache), naive.conv2d_backward(dout, cache_ref)):
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


POOL_CASES = [(2, 2), (3, 2), (3, 1), (2, 1), (3, 3)]


@pytest.mark.parametrize("ties", ["split", "first"])
@pytest.mark.parametrize("k, s", POOL_CASES)
@pytest.mark.parametrize("quantized", [False, True])
def test_maxpool_matches_the_loops(impl, rng, k, s, ties, quantized):
    x = rng.normal(size=(2, 3, 8, 7))
    if quantized:  # many ties, as after a ReLU or on a digit's flat strokes
        x = np.maximum(np.round(x), 0)
    out, cache = impl.maxpool2d_forward(x, k, s)
    out_ref, cache_ref = naive.maxpool2d_forward(x, k, s)
    np.testing.assert_allclose(out, out_ref, rtol=0, atol=1e-10)
    dout = rng.normal(size=out.shape)
    dx = impl.maxpool2d_backward(dout, cache, ties)
    dx_ref = naive.maxpool2d_backward(dout, cache_ref, ties)
    np.testing.assert_allclose(dx, dx_ref, rtol=0, atol=1e-10)
    # Every window hands on exactly its gradient, however it is shared.
    np.testing.assert_allclose(dx.sum(), dout.sum(), atol=1e-10)


@pytest.mark.parametrize("n_tied", [1, 2, 3, 4])
def test_tied_maxima_split_evenly_or_go_to_one(impl, n_tied):
    window = np.zeros(4)
    window[:n_tied] = 5.0
    window[n_tied:] = np.arange(4 - n_tied)  # below the maximum
    x = window.reshape(1, 1, 2, 2)
    out, cache = impl.maxpool2d_forward(x, 2)
    dout = np.array([[[[6.0]]]])
    split = impl.maxpool2d_backward(dout, cache, "split").ravel()
    np.testing.assert_allclose(split[:n_tied], 6.0 / n_tied)
    np.testing.assert_allclose(split[n_tied:], 0.0)
    first = impl.maxpool2d_backward(dout, cache, "first").ravel()
    assert np.count_nonzero(first) == 1 and first[0] == 6.0


def test_tied_window_on_relu_zeros(impl):
    x = np.zeros((1, 1, 2, 2))  # a window a ReLU switched off entirely: four tied zeros
    out, cache = impl.maxpool2d_forward(x, 2)
    dx = impl.maxpool2d_backward(np.ones((1, 1, 1, 1)), cache)
    np.testing.assert_allclose(dx, 0.25)


def test_overlapping_windows_accumulate(impl):
    x = np.array([[[[0.0, 0.0, 0.0], [0.0, 9.0, 0.0], [0.0, 0.0, 0.0]]]])
    out, cache = impl.maxpool2d_forward(x, 2, 1)  # all four windows contain the centre
    dx = impl.maxpool2d_backward(np.ones((1, 1, 2, 2)), cache)
    assert dx[0, 0, 1, 1] == 4.0 and dx.sum() == 4.0


def test_layers_check_their_arguments_before_the_math():
    conv = Conv2d(3, 4, 5, dtype=np.float64)
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got \(28, 28\)"):
        conv(np.zeros((28, 28)))
    with pytest.raises(ValueError, match=r"3 input channels expects x of shape \(N, 3, H, W\); "
                                         r"got \(2, 1, 28, 28\)"):
        conv(np.zeros((2, 1, 28, 28)))
    with pytest.raises(ValueError, match=r"kernel 5x5 is larger than the padded input.*4x4"):
        conv(np.zeros((2, 3, 4, 4)))
    Conv2d(3, 4, 5, padding=1, dtype=np.float64)(np.zeros((2, 3, 4, 4)))  # 6x6 once padded: fine
    with pytest.raises(ValueError, match=r"\(N, 10\); got \(2, 9\)"):
        Linear(10, 3, dtype=np.float64)(np.zeros((2, 9)))
    with pytest.raises(ValueError, match=r"\(N, C, H, W\); got \(2, 8, 8\)"):
        MaxPool2d(2)(np.zeros((2, 8, 8)))
    with pytest.raises(ValueError, match="larger than the input"):
        MaxPool2d(2)(np.zeros((1, 1, 1, 4)))
    with pytest.raises(ValueError, match="ties must be one of"):
        MaxPool2d(2, ties="random")


def channels_last(x):
    """The same NCHW array, stored channels-last in memory, as our convolutions return it."""
    return np.ascontiguousarray(x.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)


@pytest.mark.parametrize("N, C, H, W, Fo, k, s, p", CONV_CASES)
def test_conv2d_gives_the_same_numbers_for_any_memory_layout(impl, rng, N, C, H, W, Fo, k, s, p):
    x = rng.normal(size=(N, C, H, W))
    w, b = rng.normal(size=(Fo, C, k, k)), rng.normal(size=Fo)
    out, cache = impl.conv2d_forward(x, w, b, s, p)
    out_cl, cache_cl = impl.conv2d_forward(channels_last(x), w, b, s, p)
    np.testing.assert_allclose(out_cl, out, rtol=0, atol=1e-12)
    dout = rng.normal(size=out.shape)
    for dout_layout in (dout, channels_last(dout)):
        for got, ref in zip(impl.conv2d_backward(dout_layout, cache_cl), impl.conv2d_backward(dout, cache)):
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("ties", ["split", "first"])
@pytest.mark.parametrize("k, s", POOL_CASES)
def test_maxpool_on_channels_last_relu_output_matches_naive(impl, rng, k, s, ties):
    # What the pooling layers really see in training: a ReLU of a convolution, channels-last in
    # memory, float32, with many tied zeros.
    x = channels_last(np.maximum(np.round(rng.normal(size=(3, 4, 9, 8))), 0)).astype(np.float32)
    out, cache = impl.maxpool2d_forward(x, k, s)
    out_ref, cache_ref = naive.maxpool2d_forward(x.astype(np.float64), k, s)
    np.testing.assert_array_equal(out, out_ref)
    assert out.dtype == np.float32
    dout = rng.normal(size=out.shape).astype(np.float32)
    dx = impl.maxpool2d_backward(dout, cache, ties)
    dx_ref = naive.maxpool2d_backward(dout.astype(np.float64), cache_ref, ties)
    assert dx.dtype == np.float32 and dx.shape == x.shape
    np.testing.assert_allclose(dx, dx_ref, rtol=1e-6, atol=1e-6)


def test_conv2d_keeps_float32(impl, rng):
    x = rng.normal(size=(2, 3, 8, 8)).astype(np.float32)
    w = rng.normal(size=(4, 3, 3, 3)).astype(np.float32)
    out, cache = impl.conv2d_forward(x, w, np.zeros(4, np.float32), 1, 1)
    assert out.dtype == np.float32
    assert all(g.dtype == np.float32 for g in impl.conv2d_backward(np.ones_like(out), cache))


def test_conv2d_backward_without_input_grad(impl, rng):
    x, w, b = rng.normal(size=(2, 1, 6, 6)), rng.normal(size=(3, 1, 3, 3)), rng.normal(size=3)
    out, cache = impl.conv2d_forward(x, w, b)
    dout = rng.normal(size=out.shape)
    dx, dW, db = impl.conv2d_backward(dout, cache, input_grad=False)
    _, dW_full, db_full = impl.conv2d_backward(dout, cache)
    assert dx is None
    np.testing.assert_array_equal(dW, dW_full)
    np.testing.assert_array_equal(db, db_full)


@pytest.mark.parametrize("ties", ["split", "first"])
@pytest.mark.parametrize("k, shape", [(2, (2, 3, 8, 6)), (3, (2, 3, 9, 6)), (2, (2, 3, 9, 7))])
@pytest.mark.parametrize("layout", ["NCHW", "channels-last"])
def test_maxpool_with_windows_that_tile_the_input_matches_naive(impl, rng, k, shape, ties, layout):
    # stride = k: the backward pass views the input as whole windows instead of gathering taps;
    # exact tilings and ones with a leftover row and column, many ties (zeros after a ReLU).
    x = np.maximum(np.round(rng.normal(size=shape)), 0)
    if layout == "channels-last":
        x = channels_last(x)
    out, cache = impl.maxpool2d_forward(x, k, k)
    out_ref, cache_ref = naive.maxpool2d_forward(x, k, k)
    np.testing.assert_array_equal(out, out_ref)
    dout = rng.normal(size=out.shape)
    dx = impl.maxpool2d_backward(dout, cache, ties)
    np.testing.assert_allclose(dx, naive.maxpool2d_backward(dout, cache_ref, ties), rtol=0, atol=1e-12)
    np.testing.assert_allclose(dx.sum(), dout.sum(), atol=1e-10)


# ---- the operations without loops: the derived version is the reference for the fast one

def test_linear_and_activations_agree(rng):
    x, W, b = rng.normal(size=(5, 7)), rng.normal(size=(3, 7)), rng.normal(size=3)
    out, cache = functional.linear_forward(x, W, b)
    out_fast, cache_fast = fast.linear_forward(x, W, b)
    np.testing.assert_allclose(out_fast, out, rtol=0, atol=1e-12)
    np.testing.assert_allclose(out, x @ W.T + b, rtol=0, atol=1e-12)
    dout = rng.normal(size=out.shape)
    for got, ref in zip(fast.linear_backward(dout, cache_fast), functional.linear_backward(dout, cache)):
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    assert functional.linear_backward(dout, cache, input_grad=False)[0] is None
    for name in ("relu", "tanh", "flatten"):
        x4 = rng.normal(size=(2, 3, 4, 4))
        out, cache = getattr(functional, f"{name}_forward")(x4)
        out_fast, cache_fast = getattr(fast, f"{name}_forward")(x4)
        np.testing.assert_array_equal(out_fast, out)
        dout = rng.normal(size=out.shape)
        np.testing.assert_array_equal(getattr(fast, f"{name}_backward")(dout, cache_fast),
                                      getattr(functional, f"{name}_backward")(dout, cache))


def test_im2col_and_col2im_are_adjoint(rng):
    # <im2col(x), c> == <x, col2im(c)> for every x and c: col2im is im2col's transpose, which is
    # exactly what makes it the backward pass of the copy.
    for k, s, p in [(3, 1, 0), (3, 2, 1), (4, 3, 2), (2, 1, 0)]:
        x = rng.normal(size=(2, 3, 9, 8))
        cols = functional.im2col(x, k, s, p)
        c = rng.normal(size=cols.shape)
        lhs = np.sum(cols * c)
        rhs = np.sum(x * functional.col2im(c, x.shape, k, s, p))
        assert abs(lhs - rhs) < 1e-10 * max(1.0, abs(lhs))


@pytest.mark.parametrize("mode", ["training", "evaluation"])
@pytest.mark.parametrize("shape", [(4, 3, 5, 6), (6, 4)])
def test_batchnorm_fast_matches_derived(rng, mode, shape):
    x = rng.normal(2.0, 3.0, size=shape)
    C = shape[1]
    gamma, beta = rng.normal(size=C), rng.normal(size=C)
    stats = {} if mode == "training" else {"mean": rng.normal(size=C), "var": rng.random(C) + 0.5}
    out, cache = functional.batchnorm_forward(x, gamma, beta, **stats)
    layouts = [x] + ([channels_last(x)] if x.ndim == 4 else [])
    for x_layout in layouts:
        out_fast, cache_fast = fast.batchnorm_forward(x_layout.copy(), gamma, beta, **stats)
        np.testing.assert_allclose(out_fast, out, rtol=0, atol=1e-12)
        for key in ("mean", "var", "m"):
            np.testing.assert_allclose(cache_fast[key], cache[key], rtol=1e-12)
        dout = rng.normal(size=out.shape)
        for got, ref in zip(fast.batchnorm_backward(dout, cache_fast),
                            functional.batchnorm_backward(dout, cache)):
            np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


def test_batchnorm_derived_gradient_is_the_numerical_one(rng):
    from cnnlib.gradcheck import numerical_gradient_array, rel_error

    x, gamma, beta = rng.normal(size=(3, 2, 3, 3)), rng.normal(size=2), rng.normal(size=2)
    out, cache = functional.batchnorm_forward(x, gamma, beta)
    dout = rng.normal(size=out.shape)
    dx, dgamma, dbeta = functional.batchnorm_backward(dout, cache)
    f = lambda: functional.batchnorm_forward(x, gamma, beta)[0]  # noqa: E731
    assert rel_error(dx, numerical_gradient_array(f, x, dout)) < 1e-7
    assert rel_error(dgamma, numerical_gradient_array(f, gamma, dout)) < 1e-7
    assert rel_error(dbeta, numerical_gradient_array(f, beta, dout)) < 1e-7


def test_dropout_and_loss_agree(rng):
    x = rng.normal(size=(4, 6)).astype(np.float32)
    out, mask = functional.dropout_forward(x, 0.3, np.random.default_rng(1))
    out_fast, mask_fast = fast.dropout_forward(x, 0.3, np.random.default_rng(1))
    np.testing.assert_array_equal(out_fast, out)
    dout = rng.normal(size=x.shape).astype(np.float32)
    np.testing.assert_array_equal(fast.dropout_backward(dout, mask_fast),
                                  functional.dropout_backward(dout, mask))
    scores, y = rng.normal(size=(5, 10)), rng.integers(0, 10, size=5)
    loss, dscores = functional.softmax_cross_entropy(scores, y)
    p = np.exp(scores) / np.exp(scores).sum(axis=1, keepdims=True)
    assert loss == pytest.approx(-np.mean(np.log(p[np.arange(5), y])), rel=1e-12)
    np.testing.assert_allclose(dscores, (p - np.eye(10)[y]) / 5, rtol=0, atol=1e-12)


def test_every_implementation_has_the_same_signatures():
    import inspect

    from cnnlib.ops import OPERATIONS

    for name in OPERATIONS:
        derived = inspect.signature(getattr(functional, name))
        assert inspect.signature(getattr(fast, name)) == derived, name
        if hasattr(naive, name):
            assert inspect.signature(getattr(naive, name)) == derived, name


def test_naive_conv_backward_without_input_grad(rng):
    x, w, b = rng.normal(size=(1, 2, 5, 5)), rng.normal(size=(3, 2, 3, 3)), rng.normal(size=3)
    out, cache = naive.conv2d_forward(x, w, b)
    dout = rng.normal(size=out.shape)
    dx, dW, db = naive.conv2d_backward(dout, cache, input_grad=False)
    assert dx is None
    np.testing.assert_array_equal(dW, naive.conv2d_backward(dout, cache)[1])
