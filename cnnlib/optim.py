"""Optimizers: update every parameter in place from its gradient.

    optimizer = SGD(lr=0.01, momentum=0.9, weight_decay=1e-3)
    ...
    net.backward(dscores)
    optimizer.step(net)          # anything with parameters() -> [(name, param, grad), ...]

Weight decay applies to parameters named "W" only — convolution and linear weights, and batch
norm's scale gamma (BatchNorm2d's "W") — never to biases ("b", batch norm's shift too), as in
the original demo, which had no batch norm.
"""

import numpy as np


class Optimizer:
    """Keeps per-parameter state (velocity, moments) by parameter name."""

    def __init__(self, lr):
        if not lr > 0:
            raise ValueError(f"learning rate must be > 0; got {lr!r}")
        self.lr = lr
        self.state = {}

    def step(self, model):
        """Update every parameter of ``model`` in place from its current gradient."""
        for name, param, grad in model.parameters():
            self.update(name, param, grad)

    def update(self, name, param, grad):
        raise NotImplementedError

    def _decay(self, name, param, grad, weight_decay):
        """grad + weight_decay * param for weights: the gradient of the L2 penalty (wd/2)||W||^2."""
        if weight_decay and name.endswith("W"):
            return grad + weight_decay * param
        return grad


class SGD(Optimizer):
    """Stochastic gradient descent with momentum and L2 weight decay.

        g = dL/dw + weight_decay * w          (weights only)
        v = momentum * v - lr * g
        w = w + v
    """

    def __init__(self, lr, momentum=0.0, weight_decay=0.0):
        super().__init__(lr)
        if not 0 <= momentum < 1:
            raise ValueError(f"momentum must be in [0, 1); got {momentum!r}")
        if weight_decay < 0:
            raise ValueError(f"weight_decay must be >= 0; got {weight_decay!r}")
        self.momentum, self.weight_decay = momentum, weight_decay

    def update(self, name, param, grad):
        g = self._decay(name, param, grad, self.weight_decay)
        if self.momentum == 0:
            param -= self.lr * g
            return
        v = self.state.get(name)
        if v is None:
            v = self.state[name] = np.zeros_like(param)
        v *= self.momentum
        v -= self.lr * g
        param += v


class Adam(Optimizer):
    """Adam (Kingma and Ba, 2015): per-parameter steps from running moments of the gradient.

        m = beta1 * m + (1 - beta1) * g,   v = beta2 * v + (1 - beta2) * g^2
        w = w - lr * m_hat / (sqrt(v_hat) + eps),  m_hat = m / (1 - beta1^t), v_hat likewise
    """

    def __init__(self, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(lr)
        beta1, beta2 = betas
        if not (0 <= beta1 < 1 and 0 <= beta2 < 1):
            raise ValueError(f"Adam betas must be in [0, 1); got {betas!r}")
        self.beta1, self.beta2, self.eps, self.weight_decay = beta1, beta2, eps, weight_decay

    def update(self, name, param, grad):
        g = self._decay(name, param, grad, self.weight_decay)
        if name not in self.state:
            self.state[name] = {"t": 0, "m": np.zeros_like(param), "v": np.zeros_like(param)}
        s = self.state[name]
        s["t"] += 1
        s["m"] *= self.beta1
        s["m"] += (1 - self.beta1) * g
        s["v"] *= self.beta2
        s["v"] += (1 - self.beta2) * g * g
        m_hat = s["m"] / (1 - self.beta1 ** s["t"])
        v_hat = s["v"] / (1 - self.beta2 ** s["t"])
        param -= self.lr * m_hat / (np.sqrt(v_hat) + self.eps)
