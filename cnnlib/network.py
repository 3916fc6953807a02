"""Sequential: layers applied one after the other, and the backward pass in reverse; and the one
training step every trainer takes (``forward_backward``)."""

import time
from contextlib import contextmanager
from typing import NamedTuple

import numpy as np

from .layers import Layer
from .losses import softmax, softmax_cross_entropy


class Sequential:
    """A stack of layers. ``forward`` runs them in order, ``backward`` in reverse.

    >>> net = Sequential(Linear(784, 100), ReLU(), Linear(100, 10))
    >>> scores = net.forward(x)                    # (N, 10)
    >>> loss, dscores = softmax_cross_entropy(scores, y)
    >>> net.backward(dscores)                      # fills every layer's grads
    """

    def __init__(self, *layers):
        for i, layer in enumerate(layers):
            if not isinstance(layer, Layer):
                raise ValueError(f"Sequential takes layers; argument {i} is "
                                 f"{type(layer).__name__}")
        self.layers = list(layers)
        self.training = True

    def __call__(self, x):
        return self.forward(x)

    def __len__(self):
        return len(self.layers)

    def __getitem__(self, i):
        return self.layers[i]

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self):
        inner = "".join(f"\n  ({i}): {layer!r}" for i, layer in enumerate(self.layers))
        return f"Sequential({inner}\n)"

    def forward(self, x):
        """x: the first layer's input -> the last layer's output (scores, (N, K))."""
        for layer in self.layers:
            x = layer.forward(x)
        return x

    def backward(self, dout, input_grad=True):
        """dout: gradient of the loss w.r.t. the output. Fills every layer's grads; returns dx.

        ``input_grad=False`` skips the gradient w.r.t. the network's input and returns None:
        training never needs it, and for a first Conv2d it is a third of that layer's work.
        """
        if not self.layers:
            return dout if input_grad else None
        for layer in reversed(self.layers[1:]):
            dout = layer.backward(dout)
        return self.layers[0].backward(dout, input_grad=input_grad)

    def parameters(self):
        """Every parameter as ``(name, param, grad)``; names like "0.W" (layer index, key)."""
        return [(f"{i}.{key}", layer.params[key], layer.grads[key])
                for i, layer in enumerate(self.layers) for key in layer.params]

    def num_parameters(self):
        """The number of scalar parameters."""
        return sum(param.size for _, param, _ in self.parameters())

    def train(self, mode=True):
        """Switch every layer to training mode (``mode=False``: evaluation). Returns self."""
        self.training = bool(mode)
        for layer in self.layers:
            layer.train(mode)
        return self

    def eval(self):
        """Switch every layer to evaluation mode. Returns self."""
        return self.train(False)

    @contextmanager
    def evaluating(self):
        """``with net.evaluating():`` runs the block in evaluation mode, then restores the mode
        the network had (training or not), even if the block raises."""
        was_training = self.training
        self.eval()
        try:
            yield self
        finally:
            self.train(was_training)

    def predict_proba(self, x, batch_size=64):
        """Class probabilities for x: (N, ...) -> (N, K), computed batch_size examples at a time.

        Runs in evaluation mode and restores the previous mode afterwards. The default of 64
        examples keeps the reference network's intermediate arrays (~2.5 MB) in the CPU's cache
        (README, "Speed", has the measurements). Float32 sums come out differently in the last
        bit for different batch sizes, so compare results of different batch sizes with a
        tolerance.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        with self.evaluating():
            probs = [softmax(self.forward(x[i:i + batch_size]))
                     for i in range(0, len(x), batch_size)]
        if not probs:
            raise ValueError("predict_proba got no examples (x has length 0)")
        return np.concatenate(probs)

    def predict(self, x, batch_size=64):
        """Predicted class for each example: x: (N, ...) -> (N,) integers.

        The class with the highest score is the class with the highest probability (softmax is
        increasing), so this skips the softmax; otherwise as ``predict_proba``.
        """
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1; got {batch_size}")
        with self.evaluating():
            classes = [self.forward(x[i:i + batch_size]).argmax(axis=1)
                       for i in range(0, len(x), batch_size)]
        if not classes:
            raise ValueError("predict got no examples (x has length 0)")
        return np.concatenate(classes)


class Step(NamedTuple):
    """What ``forward_backward`` returns: the batch's mean loss and how long each pass took."""
    loss: float
    forward_seconds: float
    backward_seconds: float


def forward_backward(net, x, y):
    """One training step's gradient: forward, softmax cross-entropy, backward.

    x: (N, ...) a batch the network takes; y: (N,) integer labels. Afterwards every layer's grads
    hold the gradient of the batch's mean loss, ready for ``optimizer.step(net)``. The gradient
    w.r.t. the images is not computed: training never needs it. When the loss is not finite the
    backward pass is skipped, so the caller can refuse the step before any weight changes.

    The network's mode is left as it is: ``net.train()`` first for an ordinary step.
    Returns Step(loss, forward_seconds, backward_seconds).
    """
    start = time.perf_counter()
    loss, dscores = softmax_cross_entropy(net.forward(x), y)
    middle = time.perf_counter()
    if np.isfinite(loss):
        net.backward(dscores, input_grad=False)
    return Step(loss, middle - start, time.perf_counter() - middle)
