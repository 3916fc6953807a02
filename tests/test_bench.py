"""The bench command: it runs, prints its table, and its PyTorch twin is the same network.

Nothing here looks at a speed: timings on a shared machine mean nothing in a test.
"""

import numpy as np
import pytest

from cnnlib import bench
from cnnlib.__main__ import main
from cnnlib.losses import softmax_cross_entropy
from cnnlib.architectures import seed_net


def test_bench_command_prints_machine_and_table(capsys):
    assert main(["bench", "--seconds", "0.05", "--rounds", "1", "--no-torch"]) == 0
    text = capsys.readouterr().out
    for expected in ["BLAS threads:", "machine:", "numpy", "PyTorch: skipped", "CPU time",
                     "training, batch 20 (examples/s)", "training, batch 64 (examples/s)",
                     "inference, 64/batch (images/s)"]:
        assert expected in text, expected


def test_compare_alternates_and_counts_every_task():
    rng = np.random.default_rng(0)
    x, y = bench._random_data(rng, 100)
    calls = []

    class Recorder(bench.CnnlibRunner):
        def train(self, batch_size, seconds):
            calls.append((self.name, batch_size))
            return super().train(batch_size, seconds)

    first, second = Recorder(seed_net(rng), x, y), Recorder(seed_net(rng), x, y)
    second.name = "other"
    rates, cpu_rates = bench.compare([first, second], batch_sizes=(5,), seconds=0.02, rounds=2,
                                     inference=False)
    assert set(rates) == set(cpu_rates) == {("train 5", "cnnlib"), ("train 5", "other")}
    assert all(rate > 0 for rate in rates.values())
    timed = calls[2:]  # after one warm-up call each
    assert [name for name, _ in timed] == ["cnnlib", "other", "other", "cnnlib"]
    table = bench.format_table(rates, ["cnnlib", "other"], batch_sizes=(5,), inference=False)
    assert "cnnlib/other" in table and "training, batch 5" in table


def test_torch_twin_computes_the_same_loss_and_gradients():
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    net = seed_net(rng)
    x, y = bench._random_data(rng, 8)
    twin = bench.TorchRunner(net, x, y).model
    scores = net.forward(x)
    loss, dscores = softmax_cross_entropy(scores, y)
    net.backward(dscores)
    torch_loss = torch.nn.functional.cross_entropy(twin(torch.from_numpy(x)), torch.from_numpy(y))
    torch_loss.backward()
    assert abs(loss - torch_loss.item()) < 1e-5
    torch_grads = [p.grad.numpy() for p in twin.parameters()]
    ours = [grad for _, _, grad in net.parameters()]
    assert len(torch_grads) == len(ours) == 6
    for got, expected in zip(ours, torch_grads):
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-6)


def test_a_batch_counts_the_images_it_computed():
    # Batches larger than the runner's images used to be cut to them but counted in full
    # (batch 16,000 on the 2,000-image pool was reported as 8 times faster than it ran).
    rng = np.random.default_rng(0)
    x, y = bench._random_data(rng, 6)
    examples, _ = bench.CnnlibRunner(seed_net(rng), x, y).train(batch_size=10, seconds=0.0)
    assert examples == 6


def test_bench_makes_the_pool_as_large_as_the_largest_batch(monkeypatch):
    monkeypatch.setattr(bench, "POOL", 4)
    sizes, batches = [], []
    real_random_data, real_train = bench._random_data, bench.CnnlibRunner.train

    def random_data(rng, n):
        sizes.append(n)
        return real_random_data(rng, n)

    def train(self, batch_size, seconds):
        batches.append(len(self._batch(batch_size)[0]))
        return real_train(self, batch_size, seconds)

    monkeypatch.setattr(bench, "_random_data", random_data)
    monkeypatch.setattr(bench.CnnlibRunner, "train", train)
    bench.main(seconds=0.01, rounds=1, batch_sizes=(3, 7), use_torch=False, inference=False,
               out=lambda line: None)
    assert sizes[0] == 7 and set(batches) == {3, 7}
