"""Pictures of a network and its training: filters, activations, curves, confusion, mistakes.

Every ``plot_*`` function draws into a matplotlib figure and returns it. Pass ``fig=None`` (the
default) to get a new pyplot figure, which a notebook shows with ``plt.show()``; pass a
``matplotlib.figure.Figure()`` to draw off-screen, as the training dashboard does from its
training thread (pyplot figures belong to the main thread; a bare ``Figure`` belongs to nobody).
``figure_png(fig)`` turns such a figure into PNG bytes for an ``ipywidgets.Image``.

The numbers behind the pictures come from small pure functions that the tests check directly:
``tile_images`` (a batch of small images -> one mosaic), ``moving_average`` (the smoothed loss
curve), ``activations`` (the output of every layer for one input), ``confusion_matrix`` and
``worst_mistakes``.

What it trades away: mosaics are single images (one ``imshow`` per layer, not one axes per
channel) so a 200-filter layer draws in milliseconds; exact per-pixel values are read from the
arrays, not from the pictures.
"""

import io

import matplotlib
import numpy as np

__all__ = [
    "tile_images", "moving_average", "activations", "confusion_matrix", "worst_mistakes",
    "new_figure", "figure_png",
    "plot_filters", "plot_activations", "plot_loss", "plot_accuracy", "plot_history",
    "plot_confusion", "plot_mistakes",
]

# Background of mosaics (the gaps between tiles); NaN pixels are drawn in this colour.
_GAP_COLOR = "#d9d9d9"


# ------------------------------------------------------------------------------- numbers

def tile_images(images, ncols=None, pad=1, normalize="each"):
    """Arrange a batch of small images in one mosaic, ``pad`` NaN pixels between tiles.

    images: (N, H, W). ncols: tiles per row (default: ceil(sqrt(N))).
    normalize: "each" scales every tile to [0, 1] by its own min and max (filters: the pattern
    matters, not the scale), "all" scales all tiles by the batch's min and max (activations:
    compare channels), None keeps the values.
    Returns float64 (rows * (H + pad) - pad, ncols * (W + pad) - pad) with NaN in the gaps and in
    unused tiles; a constant tile becomes 0.5 (it has no pattern to show).
    """
    images = np.asarray(images, dtype=np.float64)
    if images.ndim != 3 or images.shape[0] == 0:
        raise ValueError(f"tile_images expects images of shape (N, H, W) with N >= 1; "
                         f"got {images.shape}")
    if normalize not in ("each", "all", None):
        raise ValueError(f"tile_images normalize must be 'each', 'all' or None; got {normalize!r}")
    if pad < 0:
        raise ValueError(f"tile_images pad must be >= 0; got {pad}")
    n, h, w = images.shape
    ncols = int(np.ceil(np.sqrt(n))) if ncols is None else int(ncols)
    if ncols < 1:
        raise ValueError(f"tile_images ncols must be >= 1; got {ncols}")
    nrows = -(-n // ncols)
    if normalize is not None:
        axes = (1, 2) if normalize == "each" else (0, 1, 2)
        low = images.min(axis=axes, keepdims=True)
        span = images.max(axis=axes, keepdims=True) - low
        images = np.where(span > 0, (images - low) / np.where(span > 0, span, 1), 0.5)
    mosaic = np.full((nrows * (h + pad) - pad, ncols * (w + pad) - pad), np.nan)
    for i, image in enumerate(images):
        r, c = divmod(i, ncols)
        mosaic[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = image
    return mosaic


def moving_average(values, window=100):
    """Trailing mean over the last ``window`` values: (T,) -> float64 (T,).

    Entry t is mean(values[max(0, t - window + 1) : t + 1]): the first entries average what
    exists so far, as the original demo's loss window did.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1:
        raise ValueError(f"moving_average expects a 1-D sequence; got shape {values.shape}")
    if int(window) < 1:
        raise ValueError(f"moving_average window must be >= 1; got {window}")
    window = int(window)
    cumsum = np.concatenate([[0.0], np.cumsum(values)])
    t = np.arange(1, len(values) + 1)
    start = np.maximum(t - window, 0)
    return (cumsum[t] - cumsum[start]) / (t - start)


def activations(net, x):
    """The output of every layer of ``net`` (a Sequential) for input ``x``.

    x: (N, ...) as the first layer expects, e.g. (1, 1, 24, 24). Runs in evaluation mode and
    restores the previous mode. Returns a list of (name, output) with name like
    "1: ReLU" and output the layer's output array; the first entry is ("input", x).
    """
    with net.evaluating():
        out = [("input", x)]
        for i, layer in enumerate(net):
            x = layer.forward(x)
            out.append((f"{i}: {type(layer).__name__}", x))
    return out


def confusion_matrix(y_true, y_pred, num_classes=10):
    """Counts of (true class, predicted class): (N,), (N,) integers -> int64 (K, K).

    Row i holds the examples whose label is i; column j those predicted as j; the diagonal holds
    the correct answers, so ``cm.trace() / cm.sum()`` is the accuracy.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if y_true.shape != y_pred.shape or y_true.ndim != 1:
        raise ValueError(f"confusion_matrix expects two label arrays of one shape (N,); got "
                         f"{y_true.shape} and {y_pred.shape}")
    for name, y in (("y_true", y_true), ("y_pred", y_pred)):
        if y.size and (y.dtype.kind not in "iu" or y.min() < 0 or y.max() >= num_classes):
            raise ValueError(f"confusion_matrix expects {name} to hold integers in "
                             f"[0, {num_classes}); got {y.dtype.name} values from {y.min()} "
                             f"to {y.max()}")
    flat = y_true.astype(np.int64) * num_classes + y_pred.astype(np.int64)
    return np.bincount(flat, minlength=num_classes * num_classes).reshape(num_classes, num_classes)


def worst_mistakes(probs, y, k=16):
    """The k most confident wrong answers: indices into ``probs``, most confident first.

    probs: (N, K) class probabilities; y: (N,) labels. A mistake is an example whose most
    probable class is not its label; it ranks by the probability given to that wrong class
    (ties: lower index first). Returns int64 (min(k, number of mistakes),).
    """
    probs, y = np.asarray(probs), np.asarray(y)
    if probs.ndim != 2 or y.shape != (len(probs),):
        raise ValueError(f"worst_mistakes expects probs (N, K) and labels (N,); got "
                         f"{probs.shape} and {y.shape}")
    predicted = probs.argmax(axis=1)
    wrong = np.flatnonzero(predicted != y)
    confidence = probs[wrong, predicted[wrong]]
    order = np.argsort(-confidence, kind="stable")
    return wrong[order[:k]].astype(np.int64)


# ------------------------------------------------------------------------------- figures

def new_figure(figsize, fig=None):
    """``fig`` cleared and resized to ``figsize`` (inches), or a new pyplot figure when None."""
    if fig is None:
        import matplotlib.pyplot as plt  # only here: off-screen users never touch pyplot
        return plt.figure(figsize=figsize)
    fig.clear()
    fig.set_size_inches(figsize)
    return fig


def figure_png(fig, dpi=80):
    """Render a figure to PNG bytes (for ``ipywidgets.Image(value=..., format="png")``)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return buffer.getvalue()


def _gray():
    return matplotlib.colormaps["gray"].with_extremes(bad=_GAP_COLOR)


def _show_mosaic(ax, mosaic, title=None):
    ax.imshow(mosaic, cmap=_gray(), vmin=0, vmax=1, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9, loc="left")


def plot_filters(W, fig=None, title=None):
    """The kernels of a Conv2d as one mosaic: column f holds filter f, one kernel per input
    channel from top to bottom.

    W: (F, C, k, k), e.g. ``net[0].params["W"]`` (10, 1, 5, 5), or ``net[3].params["W"]``
    (20, 10, 5, 5): 10 rows by 20 columns. Single-channel kernels fill two rows when there are
    more than six (bigger tiles). Each kernel is scaled by its own min and max (black = most
    negative, white = most positive). Returns the figure, one axes.
    """
    W = np.asarray(W)
    if W.ndim != 4:
        raise ValueError(f"plot_filters expects conv weights W of shape (F, C, k, k); got {W.shape}")
    F, C, kh, kw = W.shape
    if C == 1:
        mosaic = tile_images(W[:, 0], ncols=F if F <= 6 else -(-F // 2))
    else:
        mosaic = tile_images(W.transpose(1, 0, 2, 3).reshape(C * F, kh, kw), ncols=F)
    height = 0.5 + 6.0 * mosaic.shape[0] / mosaic.shape[1]
    fig = new_figure((6.0, min(max(height, 1.3), 8.0)), fig)
    ax = fig.add_subplot()
    title = title or (f"{F} filters of {C} channel{'s' if C > 1 else ''}, {kh}x{kw}"
                      + ("  (columns: filters, rows: input channels)" if C > 1 else ""))
    _show_mosaic(ax, mosaic, title)
    fig.tight_layout()
    return fig


def plot_activations(net, x, fig=None, label=None):
    """One digit through every layer: the input, each layer's channels as a mosaic, vectors as
    strips, and the class probabilities as bars.

    x: one example (1, C, H, W) (or (C, H, W), (H, W) for one channel). Returns the figure with
    one axes per layer plus the input and the probabilities (len(net) + 2 axes).
    """
    from ..losses import softmax

    x = np.asarray(x)
    if x.ndim == 2:
        x = x[None, None]
    elif x.ndim == 3:
        x = x[None]
    if x.ndim != 4 or x.shape[0] != 1:
        raise ValueError(f"plot_activations shows one example: x of shape (1, C, H, W), (C, H, W) "
                         f"or (H, W); got {x.shape}")
    outputs = activations(net, x)
    probs = softmax(outputs[-1][1].astype(np.float64))[0]
    fig = new_figure((7.0, 0.9 * len(outputs) + 1.6), fig)
    axes = fig.subplots(len(outputs) + 1, 1, gridspec_kw={
        "hspace": 0.9, "height_ratios": [1] * len(outputs) + [1.6],
        "top": 0.96, "bottom": 0.05, "left": 0.04, "right": 0.98})
    for ax, (name, out) in zip(axes, outputs):
        out = out[0]
        shape = "x".join(str(d) for d in out.shape)
        if out.ndim == 3:
            _show_mosaic(ax, tile_images(out, ncols=out.shape[0], normalize="all"),
                         f"{name}  ({shape})")
            ax.set_anchor("W")
        else:  # a vector: one strip, aspect stretched so it stays readable
            _show_mosaic(ax, tile_images(out[None, None, :], normalize="all"),
                         f"{name}  ({shape})")
            ax.set_aspect("auto")
    ax = axes[-1]
    guess = int(probs.argmax())
    colors = ["tab:blue"] * len(probs)
    colors[guess] = "tab:orange"
    ax.bar(np.arange(len(probs)), probs, color=colors)
    ax.set_ylim(0, 1)
    ax.set_xticks(np.arange(len(probs)))
    heading = f"softmax: {guess} ({probs[guess]:.1%})"
    if label is not None:
        heading += f", label {label}"
    ax.set_title(heading, fontsize=9, loc="left")
    return fig


def plot_loss(ax, examples, losses, window=100):
    """Mini-batch loss (faint) and its ``window``-step trailing mean (bold) against examples seen.

    examples, losses: (T,) per training step. Draws into the given axes and returns it.
    """
    examples, losses = np.asarray(examples), np.asarray(losses, dtype=np.float64)
    if examples.shape != losses.shape:
        raise ValueError(f"plot_loss expects examples and losses of one shape; got "
                         f"{examples.shape} and {losses.shape}")
    if len(losses):
        ax.plot(examples, losses, color="tab:blue", alpha=0.25, linewidth=0.8, label="mini-batch")
        ax.plot(examples, moving_average(losses, window), color="tab:blue", linewidth=1.8,
                label=f"mean of last {window}")
        ax.legend(loc="upper right", fontsize=8)
    ax.set_xlabel("examples seen")
    ax.set_ylabel("loss")
    ax.set_title("training loss", fontsize=10)
    ax.grid(alpha=0.3)
    return ax


def plot_accuracy(ax, examples, accuracies, label="validation"):
    """Accuracy (fraction correct) against examples seen, as points joined by lines.

    examples, accuracies: (E,) one entry per evaluation. Draws into the axes and returns it.
    """
    examples, accuracies = np.asarray(examples), np.asarray(accuracies, dtype=np.float64)
    if examples.shape != accuracies.shape:
        raise ValueError(f"plot_accuracy expects examples and accuracies of one shape; got "
                         f"{examples.shape} and {accuracies.shape}")
    if len(accuracies):
        ax.plot(examples, accuracies, "o-", color="tab:green", markersize=3, label=label)
        ax.set_title(f"{label} accuracy: {accuracies[-1]:.2%}", fontsize=10)
        ax.legend(loc="lower right", fontsize=8)
    else:
        ax.set_title(f"{label} accuracy: not measured yet", fontsize=10)
    ax.set_xlabel("examples seen")
    ax.set_ylabel("accuracy")
    ax.grid(alpha=0.3)
    return ax


def plot_history(loss_examples, losses, val_examples, val_accuracies, fig=None, window=100):
    """Loss curve (left) and validation accuracy (right) side by side; returns the figure."""
    fig = new_figure((10.0, 3.4), fig)
    ax_loss, ax_acc = fig.subplots(1, 2)
    plot_loss(ax_loss, loss_examples, losses, window)
    plot_accuracy(ax_acc, val_examples, val_accuracies)
    # Fixed margins, not tight_layout: this figure is redrawn live and tight_layout draws twice.
    fig.subplots_adjust(left=0.07, right=0.985, bottom=0.15, top=0.9, wspace=0.22)
    return fig


def plot_confusion(cm, fig=None, title=None):
    """A confusion matrix (K, K) of counts as a heat map with the count written in each cell.

    Rows are the true classes, columns the predicted ones; colours use a log scale so the few
    mistakes show beside the thousands of correct answers. Returns the figure, one axes (plus
    its colour bar).
    """
    from matplotlib.colors import LogNorm

    cm = np.asarray(cm)
    if cm.ndim != 2 or cm.shape[0] != cm.shape[1]:
        raise ValueError(f"plot_confusion expects a square (K, K) matrix; got {cm.shape}")
    K = cm.shape[0]
    fig = new_figure((5.6, 4.8), fig)
    ax = fig.add_subplot()
    shown = np.ma.masked_equal(cm, 0)
    image = ax.imshow(shown, cmap="Blues", norm=LogNorm(vmin=1, vmax=max(int(cm.max()), 2)))
    fig.colorbar(image, ax=ax, shrink=0.85, label="examples")
    threshold = np.sqrt(max(int(cm.max()), 1))
    for i in range(K):
        for j in range(K):
            if cm[i, j]:
                color = "white" if cm[i, j] > threshold else "black"
                ax.text(j, i, str(int(cm[i, j])), ha="center", va="center", fontsize=7,
                        color=color)
    ax.set_xticks(np.arange(K))
    ax.set_yticks(np.arange(K))
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(cm) / max(cm.sum(), 1)
    ax.set_title(title or f"confusion matrix, accuracy {accuracy:.2%}", fontsize=10)
    fig.tight_layout()
    return fig


def plot_mistakes(images, y, probs, indices, fig=None, ncols=8):
    """The given examples (e.g. ``worst_mistakes``) with label, guess and probabilities.

    images: (N, H, W) or (N, 1, H, W); y: (N,) labels; probs: (N, K); indices: which to show.
    Each tile's title reads "7 → 2 96%": label, predicted class and its probability; below it
    "p(7) 3%", the probability given to the right answer. Returns the figure, one axes per
    shown example.
    """
    images, y, probs = np.asarray(images), np.asarray(y), np.asarray(probs)
    if images.ndim == 4 and images.shape[1] == 1:
        images = images[:, 0]
    if images.ndim != 3 or len(images) != len(y) or len(probs) != len(y):
        raise ValueError(f"plot_mistakes expects images (N, H, W), labels (N,) and probs (N, K) "
                         f"of one N; got {images.shape}, {y.shape} and {probs.shape}")
    indices = np.asarray(indices, dtype=np.int64)
    n = len(indices)
    ncols = max(1, min(ncols, n))
    nrows = max(1, -(-n // ncols))
    fig = new_figure((1.25 * ncols + 0.2, 1.55 * nrows + 0.2), fig)
    if n == 0:
        ax = fig.add_subplot()
        ax.axis("off")
        ax.set_title("no mistakes", fontsize=10)
        return fig
    axes = fig.subplots(nrows, ncols, squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, i in zip(axes.flat, indices):
        guess = int(probs[i].argmax())
        ax.imshow(images[i], cmap="gray", interpolation="nearest")
        ax.set_title(f"{int(y[i])} → {guess} {probs[i, guess]:.0%}", fontsize=9,
                     color="tab:red" if guess != y[i] else "black")
        ax.text(0.5, -0.08, f"p({int(y[i])}) {probs[i, int(y[i])]:.0%}", fontsize=8,
                ha="center", va="top", transform=ax.transAxes)
    fig.tight_layout()
    return fig
