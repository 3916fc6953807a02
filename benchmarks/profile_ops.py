"""Time every layer's forward and backward of the reference network at one batch size.

    .venv/bin/python benchmarks/profile_ops.py [--batch-size 20] [--repeats 200] [--threads 1]

Prints the best-of-repeats time per call in microseconds, so the slowest operation of a training
step stands out. Best-of (not mean) because the machine is shared and noise only adds time.
"""

import argparse
import time

import numpy as np

from cnnlib.architectures import seed_net
from cnnlib.bench import set_threads
from cnnlib.losses import softmax_cross_entropy
from cnnlib.optim import SGD


def best_time(fn, repeats):
    """Smallest wall-clock time of ``repeats`` calls of fn(), in microseconds."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e6


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=20)
    parser.add_argument("--repeats", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads (default: 1)")
    args = parser.parse_args()
    print("BLAS threads:", set_threads(args.threads))
    rng = np.random.default_rng(0)
    net = seed_net(rng)
    x = rng.random((args.batch_size, 1, 24, 24), dtype=np.float32)
    y = rng.integers(0, 10, args.batch_size)
    inputs, outputs = [], []
    h = x
    for layer in net:
        inputs.append(h)
        h = layer.forward(h)
        outputs.append(h)
    total_f = total_b = 0.0
    print(f"batch {args.batch_size}: best of {args.repeats} calls, microseconds")
    for i, layer in enumerate(net):
        t_f = best_time(lambda: layer.forward(inputs[i]), args.repeats)
        dout = np.empty_like(outputs[i])  # same memory order as the output, as in a real step
        dout[...] = rng.standard_normal(dout.shape)
        if i == 0:  # training never needs the gradient w.r.t. the images
            t_b = best_time(lambda: layer.backward(dout, input_grad=False), args.repeats)
        else:
            t_b = best_time(lambda: layer.backward(dout), args.repeats)
        total_f, total_b = total_f + t_f, total_b + t_b
        print(f"  {i}: {layer!r:<50} forward {t_f:7.1f}  backward {t_b:7.1f}")
    scores = net.forward(x)
    t_loss = best_time(lambda: softmax_cross_entropy(scores, y), args.repeats)
    _, dscores = softmax_cross_entropy(scores, y)
    net.backward(dscores)
    optimizer = SGD(0.01, momentum=0.9)
    t_opt = best_time(lambda: optimizer.step(net), args.repeats)

    def step():
        s = net.forward(x)
        _, d = softmax_cross_entropy(s, y)
        net.backward(d, input_grad=False)
        optimizer.step(net)

    t_step = best_time(step, args.repeats)
    print(f"  layers: forward {total_f:.1f}  backward {total_b:.1f}; loss {t_loss:.1f}; "
          f"SGD step {t_opt:.1f}")
    print(f"  whole training step {t_step:.1f} us = {args.batch_size / t_step * 1e6:,.0f} examples/s")


if __name__ == "__main__":
    main()
