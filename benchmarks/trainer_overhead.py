"""How much the training loop (cnnlib.train.Trainer.step) adds to a bare training step.

    .venv/bin/python benchmarks/trainer_overhead.py [--steps 300] [--rounds 4]

Alternates slices of bare steps (forward, loss, backward without the input gradient, SGD) on
pre-cropped batches with slices of Trainer.step() on real MNIST, and prints both rates and
their ratio. Needs the MNIST files (python -m cnnlib data).
"""

import argparse
import time

import numpy as np

from cnnlib import augment, bench, data, train
from cnnlib.architectures import seed_net
from cnnlib.losses import softmax_cross_entropy
from cnnlib.optim import SGD


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300, help="steps per slice")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print("BLAS threads:", bench.set_threads(args.threads))
    split = data.load_mnist_split(progress=False)
    rng = np.random.default_rng(0)
    trainer = train.Trainer(seed_net(rng), split.x_train, split.y_train,
                            optimizer=SGD(0.01, momentum=0.9), batch_size=20, rng=rng,
                            validate_every=None)
    net, optimizer = seed_net(rng), SGD(0.01, momentum=0.9)
    x = augment.RandomCrop(24)(trainer.x_train[:20 * args.steps], rng)
    y = trainer.y_train[:20 * args.steps]
    totals = {"bare step": 0.0, "Trainer.step": 0.0}
    for _ in range(args.rounds):
        start = time.perf_counter()
        for i in range(0, len(x), 20):
            scores = net.forward(x[i:i + 20])
            _, dscores = softmax_cross_entropy(scores, y[i:i + 20])
            net.backward(dscores, input_grad=False)
            optimizer.step(net)
        totals["bare step"] += time.perf_counter() - start
        start = time.perf_counter()
        for _ in range(args.steps):
            trainer.step()
        totals["Trainer.step"] += time.perf_counter() - start
    examples = 20 * args.steps * args.rounds
    for name, seconds in totals.items():
        print(f"{name:<14} {examples / seconds:>9,.0f} examples/s")
    print(f"Trainer.step / bare step: {totals['bare step'] / totals['Trainer.step']:.2f}")


if __name__ == "__main__":
    main()
