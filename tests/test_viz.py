"""cnnlib.ui.viz: the numbers behind the pictures exactly, the figures by their structure.

Runs headless (Agg). Figures are checked by axes count and the shape of the image data they
show, never by pixels.
"""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402

from cnnlib.ui import viz  # noqa: E402
from cnnlib.architectures import seed_net  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


# ------------------------------------------------------------------------------- numbers

def test_tile_images_layout_and_gaps():
    images = np.arange(5 * 2 * 3, dtype=np.float64).reshape(5, 2, 3)
    mosaic = viz.tile_images(images, ncols=3, pad=1, normalize=None)
    assert mosaic.shape == (2 * 2 + 1, 3 * 3 + 2)
    np.testing.assert_array_equal(mosaic[0:2, 0:3], images[0])
    np.testing.assert_array_equal(mosaic[0:2, 4:7], images[1])
    np.testing.assert_array_equal(mosaic[3:5, 4:7], images[4])
    assert np.isnan(mosaic[2]).all()          # gap row
    assert np.isnan(mosaic[:, 3]).all()       # gap column
    assert np.isnan(mosaic[3:5, 8:11]).all()  # the unused sixth tile


def test_tile_images_normalization():
    images = np.stack([np.array([[0.0, 2.0]]), np.array([[10.0, 30.0]]), np.full((1, 2), 7.0)])
    each = viz.tile_images(images, ncols=3, pad=0, normalize="each")
    np.testing.assert_allclose(each, [[0, 1, 0, 1, 0.5, 0.5]])
    every = viz.tile_images(images, ncols=3, pad=0, normalize="all")
    np.testing.assert_allclose(every, [[0, 2 / 30, 1 / 3, 1, 7 / 30, 7 / 30]])
    assert viz.tile_images(images).shape == (2 * 1 + 1, 2 * 2 + 1)  # default ncols = ceil(sqrt 3)


@pytest.mark.parametrize("bad, message", [
    (dict(images=np.zeros((2, 3))), "shape \\(N, H, W\\)"),
    (dict(images=np.zeros((0, 3, 3))), "N >= 1"),
    (dict(images=np.zeros((2, 3, 3)), normalize="max"), "normalize"),
    (dict(images=np.zeros((2, 3, 3)), ncols=0), "ncols"),
])
def test_tile_images_rejects_bad_input(bad, message):
    with pytest.raises(ValueError, match=message):
        viz.tile_images(**bad)


def test_moving_average_matches_loop():
    values = np.random.default_rng(0).normal(size=37)
    window = 5
    expected = [values[max(0, t - window + 1):t + 1].mean() for t in range(len(values))]
    np.testing.assert_allclose(viz.moving_average(values, window), expected)
    np.testing.assert_allclose(viz.moving_average(values, 1), values)
    assert viz.moving_average([], 3).shape == (0,)
    with pytest.raises(ValueError, match="window"):
        viz.moving_average(values, 0)


def test_activations_follow_every_layer_and_keep_mode():
    net = seed_net(rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((1, 1, 24, 24), dtype=np.float32)
    outputs = viz.activations(net, x)
    assert [name for name, _ in outputs] == [
        "input", "0: Conv2d", "1: ReLU", "2: MaxPool2d", "3: Conv2d", "4: ReLU",
        "5: MaxPool2d", "6: Flatten", "7: Linear"]
    assert [out.shape for _, out in outputs] == [
        (1, 1, 24, 24), (1, 10, 20, 20), (1, 10, 20, 20), (1, 10, 10, 10), (1, 20, 6, 6),
        (1, 20, 6, 6), (1, 20, 3, 3), (1, 180), (1, 10)]
    np.testing.assert_array_equal(outputs[-1][1], net.forward(x))
    assert net.training  # restored


def test_confusion_matrix_counts():
    y_true = np.array([0, 0, 1, 2, 2, 2])
    y_pred = np.array([0, 1, 1, 2, 0, 2])
    cm = viz.confusion_matrix(y_true, y_pred, num_classes=3)
    np.testing.assert_array_equal(cm, [[1, 1, 0], [0, 1, 0], [1, 0, 2]])
    assert cm.dtype == np.int64 and cm.sum() == 6
    with pytest.raises(ValueError, match="\\[0, 3\\)"):
        viz.confusion_matrix(y_true, y_pred + 1, num_classes=3)
    with pytest.raises(ValueError, match="one shape"):
        viz.confusion_matrix(y_true, y_pred[:3])


def test_worst_mistakes_ranks_confident_wrong_answers():
    probs = np.array([
        [0.9, 0.1],   # right
        [0.3, 0.7],   # wrong (label 0), confidence 0.7
        [0.05, 0.95],  # wrong, 0.95
        [0.6, 0.4],   # wrong (label 1), 0.6
        [0.2, 0.8],   # right
    ])
    y = np.array([0, 0, 0, 1, 1])
    np.testing.assert_array_equal(viz.worst_mistakes(probs, y, k=10), [2, 1, 3])
    np.testing.assert_array_equal(viz.worst_mistakes(probs, y, k=2), [2, 1])
    assert viz.worst_mistakes(probs[[0, 4]], y[[0, 4]]).shape == (0,)


# ------------------------------------------------------------------------------- figures

def _images(ax):
    return [image.get_array() for image in ax.get_images()]


def test_plot_filters_first_and_second_layer():
    net = seed_net(rng=np.random.default_rng(0))
    fig = viz.plot_filters(net[0].params["W"])
    assert len(fig.axes) == 1
    (image,) = _images(fig.axes[0])
    assert image.shape == (2 * 6 - 1, 5 * 6 - 1)     # ten 5x5 kernels in two rows of five
    fig = viz.plot_filters(net[3].params["W"])
    (image,) = _images(fig.axes[0])
    assert image.shape == (10 * 6 - 1, 20 * 6 - 1)   # columns: 20 filters, rows: 10 channels
    W = np.random.default_rng(2).normal(size=(3, 2, 2, 2))
    (image,) = _images(viz.plot_filters(W).axes[0])
    tile = np.asarray(image[3:5, 6:8])                # row 1 (channel 1), column 2 (filter 2)
    expected = (W[2, 1] - W[2, 1].min()) / np.ptp(W[2, 1])
    np.testing.assert_allclose(tile, expected)
    with pytest.raises(ValueError, match="\\(F, C, k, k\\)"):
        viz.plot_filters(net[7].params["W"])


def test_plot_activations_one_row_per_layer():
    net = seed_net(rng=np.random.default_rng(0))
    x = np.random.default_rng(1).random((24, 24), dtype=np.float32)
    fig = viz.plot_activations(net, x, label=3)
    assert len(fig.axes) == len(net) + 2             # input, every layer, probabilities
    assert _images(fig.axes[0])[0].shape == (24, 24)
    assert _images(fig.axes[1])[0].shape == (20, 10 * 21 - 1)  # conv1: ten 20x20 maps
    assert _images(fig.axes[7])[0].shape == (1, 180)           # flatten: one strip
    bars = fig.axes[-1].patches
    assert len(bars) == 10
    np.testing.assert_allclose(sum(bar.get_height() for bar in bars), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="one example"):
        viz.plot_activations(net, np.zeros((2, 1, 24, 24), np.float32))


def test_plot_history_draws_raw_and_smoothed_loss():
    examples = np.arange(1, 31) * 20
    losses = np.linspace(2.3, 0.5, 30)
    fig = viz.plot_history(examples, losses, [200, 400, 600], [0.5, 0.7, 0.8], window=10)
    ax_loss, ax_acc = fig.axes
    raw, smooth = ax_loss.get_lines()
    np.testing.assert_array_equal(raw.get_ydata(), losses)
    np.testing.assert_allclose(smooth.get_ydata(), viz.moving_average(losses, 10))
    (acc,) = ax_acc.get_lines()
    np.testing.assert_array_equal(acc.get_xdata(), [200, 400, 600])
    assert ax_acc.get_title() == "validation accuracy: 80.00%"


def test_plot_history_empty_is_fine():
    fig = viz.plot_history([], [], [], [])
    assert len(fig.axes) == 2 and not fig.axes[0].get_lines()
    assert "not measured yet" in fig.axes[1].get_title()


def test_plot_confusion_writes_every_nonzero_count():
    cm = np.array([[50, 2, 0], [0, 40, 1], [3, 0, 60]])
    fig = viz.plot_confusion(cm)
    ax = fig.axes[0]
    assert len(fig.axes) == 2                         # matrix and colour bar
    assert _images(ax)[0].shape == (3, 3)
    assert sorted(text.get_text() for text in ax.texts) == sorted(
        str(v) for v in cm.ravel() if v)
    assert ax.get_title() == f"confusion matrix, accuracy {150 / 156:.2%}"


def test_plot_mistakes_titles_name_label_guess_and_probability():
    images = np.zeros((4, 1, 24, 24), np.float32)
    y = np.array([7, 1, 2, 3])
    probs = np.full((4, 10), 0.01)
    probs[0, 2], probs[0, 7] = 0.9, 0.02
    probs[2, 5] = 0.5
    fig = viz.plot_mistakes(images, y, probs, [0, 2], ncols=8)
    shown = [ax for ax in fig.axes if ax.get_images()]
    assert len(shown) == 2
    assert shown[0].get_title() == "7 → 2 90%"
    assert shown[0].texts[0].get_text() == "p(7) 2%"
    assert shown[1].get_title() == "2 → 5 50%"
    empty = viz.plot_mistakes(images, y, probs, [])
    assert empty.axes[0].get_title() == "no mistakes"


def test_offscreen_figure_renders_png_without_pyplot():
    fig = Figure()
    assert viz.plot_confusion(np.eye(3, dtype=np.int64) * 5, fig=fig) is fig
    png = viz.figure_png(fig)
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert plt.get_fignums() == []                   # nothing registered with pyplot
    viz.plot_history([20], [2.3], [], [], fig=fig)   # reusing the figure clears it first
    assert len(fig.axes) == 2
