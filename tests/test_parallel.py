"""Data parallelism: a batch shared by several processes gives the one-process step.

The worker processes are real (``spawn``); each test starts its own and stops them.
"""

import copy

import numpy as np
import pytest

from cnnlib import architectures, serialization, train
from cnnlib.__main__ import main
from cnnlib.architectures import deep_net
from cnnlib.losses import softmax_cross_entropy
from cnnlib.parallel import DataParallel, WorkerError, shares

from helpers import fake_digits, make_trainer


def _batch(n, seed=0):
    rng = np.random.default_rng(seed)
    return rng.random((n, 1, 24, 24), dtype=np.float32), rng.integers(0, 10, n)


def _grads(net):
    return {name: grad.copy() for name, _, grad in net.parameters()}


def _one_process(net, x, y):
    loss, dscores = softmax_cross_entropy(net.train().forward(x), y)
    net.backward(dscores, input_grad=False)
    return loss, _grads(net)


@pytest.mark.parametrize("n, parts, expected", [
    (20, 2, [(0, 10), (10, 20)]),
    (7, 3, [(0, 3), (3, 5), (5, 7)]),
    (1, 2, [(0, 1), (1, 1)]),
])
def test_shares_cover_the_batch_in_order(n, parts, expected):
    assert shares(n, parts) == expected


@pytest.mark.parametrize("n", [20, 21, 64])
def test_two_processes_give_the_one_process_loss_and_gradients(n):
    x, y = _batch(n)
    net = architectures.seed_net(rng=np.random.default_rng(0))
    expected_loss, expected = _one_process(copy.deepcopy(net), x, y)
    with DataParallel(net, workers=2, seed=0) as parallel:
        loss = parallel.forward_backward(x, y)
        assert parallel.local_examples == (n + 1) // 2
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    for name, grad in _grads(net).items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-4, atol=1e-6, err_msg=name)


def test_three_processes_and_a_batch_smaller_than_the_workers():
    x, y = _batch(10)
    net = architectures.seed_net(rng=np.random.default_rng(1))
    with DataParallel(net, workers=3, seed=0) as parallel:
        for size in (10, 2):      # 2 < 3 workers: computed in the main process alone
            expected_loss, expected = _one_process(copy.deepcopy(net), x[:size], y[:size])
            assert parallel.forward_backward(x[:size], y[:size]) == pytest.approx(
                expected_loss, rel=1e-6)
            for name, grad in _grads(net).items():
                np.testing.assert_allclose(grad, expected[name], rtol=1e-4, atol=1e-6)


def test_workers_see_the_weights_as_they_are_at_each_call():
    x, y = _batch(20)
    net = architectures.seed_net(rng=np.random.default_rng(2))
    with DataParallel(net, workers=2, seed=0) as parallel:
        parallel.forward_backward(x, y)
        for _, param, _ in net.parameters():   # change the weights after the workers started
            param *= 0.5
        loss = parallel.forward_backward(x, y)
    expected_loss, expected = _one_process(copy.deepcopy(net), x, y)
    assert loss == pytest.approx(expected_loss, rel=1e-6)
    for name, grad in _grads(net).items():
        np.testing.assert_allclose(grad, expected[name], rtol=1e-4, atol=1e-6)


def test_batch_norm_normalizes_each_share_by_its_own_statistics():
    # What PyTorch's DistributedDataParallel does: the gradient is the mean of the shares'
    # gradients, each computed with batch statistics of that share.
    x, y = _batch(16)
    net = deep_net(rng=np.random.default_rng(0), width=4, dropout=0)
    first = _one_process(copy.deepcopy(net), x[:8], y[:8])
    second = _one_process(copy.deepcopy(net), x[8:], y[8:])
    with DataParallel(net, workers=2, seed=0) as parallel:
        loss = parallel.forward_backward(x, y)
    assert loss == pytest.approx((first[0] + second[0]) / 2, rel=1e-6)
    for name, grad in _grads(net).items():
        np.testing.assert_allclose(grad, (first[1][name] + second[1][name]) / 2,
                                   rtol=1e-4, atol=1e-6, err_msg=name)


def test_predictions_are_the_networks_own():
    x, _ = _batch(301)
    net = deep_net(rng=np.random.default_rng(0), width=4)
    with DataParallel(net, workers=2, seed=0) as parallel:
        net.train().forward(x[:64])              # new running statistics, after the workers began
        np.testing.assert_array_equal(parallel.predict(x, batch_size=50),
                                      net.predict(x, batch_size=50))
        np.testing.assert_allclose(parallel.predict_proba(x), net.predict_proba(x), rtol=1e-6)
    assert net.training                          # predict restores the mode


def test_dropout_in_the_workers_is_seeded_and_reproducible():
    runs = []
    for _ in range(2):
        net = deep_net(rng=np.random.default_rng(0), width=2, dropout=0.5)
        x, y = _batch(8)
        with DataParallel(net, workers=2, seed=7) as parallel:
            runs.append([parallel.forward_backward(x, y) for _ in range(3)])
    assert runs[0] == runs[1]
    assert len(set(runs[0])) == 3                # fresh masks at every step


def test_a_failing_worker_is_reported_with_its_traceback():
    x, y = _batch(20)
    y[15] = 10                                   # a label only the worker's share holds
    net = architectures.seed_net(rng=np.random.default_rng(0))
    with DataParallel(net, workers=2, seed=0) as parallel:
        with pytest.raises(WorkerError, match=r"worker 1 failed:(.|\n)*labels in \[0, 10\)"):
            parallel.forward_backward(x, y)
        y[15] = 3                                # the worker goes on serving
        parallel.forward_backward(x, y)


def test_after_a_failure_in_any_share_the_next_call_gets_its_own_answers():
    # Every answer of a failed call is read, so none is left for the next call to take.
    x, y = _batch(30)
    net = architectures.seed_net(rng=np.random.default_rng(0))
    with DataParallel(net, workers=3, seed=0) as parallel:
        for bad in (15, 2):                      # worker 1's share, then this process's
            y_bad = y.copy()
            y_bad[bad] = 10
            with pytest.raises((WorkerError, ValueError), match=r"labels in \[0, 10\)"):
                parallel.forward_backward(x, y_bad)
            expected_loss, expected = _one_process(copy.deepcopy(net), x, y)
            assert parallel.forward_backward(x, y) == pytest.approx(expected_loss, rel=1e-6)
            for name, grad in _grads(net).items():
                np.testing.assert_allclose(grad, expected[name], rtol=1e-4, atol=1e-6)


def test_an_interrupted_call_closes_the_pool_and_a_trainer_starts_a_new_one(monkeypatch):
    # Ctrl-C while waiting for an answer leaves it in the pipe: the pool must not be reused.
    trainer = make_trainer(n=200, batch_size=20, workers=2)
    try:
        trainer.run(steps=2)
        parallel = trainer._parallel
        calls = []

        def interrupted(rank, conn):
            calls.append(rank)
            raise KeyboardInterrupt

        monkeypatch.setattr(parallel, "_receive", interrupted)
        with pytest.raises(KeyboardInterrupt):
            trainer.step()
        assert calls and parallel.closed
        assert not any(p.is_alive() for p in parallel._processes)
        trainer.step()                           # a new pool, with answers of its own
        assert trainer._parallel is not parallel and not trainer._parallel.closed
        x, y = trainer.augment(trainer.x_train[:20], np.random.default_rng(0)), \
            trainer.y_train[:20]
        expected_loss, _ = _one_process(copy.deepcopy(trainer.net), x, y)
        assert trainer._parallel.forward_backward(x, y) == pytest.approx(expected_loss, rel=1e-6)
    finally:
        trainer.close()


def test_a_worker_that_cannot_build_the_network_says_why_at_once():
    from cnnlib.layers import ReLU

    class NotebookReLU(ReLU):                    # registered here, unknown in a fresh process
        pass

    serialization.register_layer(NotebookReLU)
    try:
        net = architectures.seed_net()
        net.layers[1] = NotebookReLU()
        with pytest.raises(WorkerError, match="could not build(.|\n)*NotebookReLU"):
            DataParallel(net, workers=2, seed=0)
    finally:
        del serialization.LAYER_TYPES["NotebookReLU"]


def test_a_dead_worker_is_reported_and_closes_the_pool():
    x, y = _batch(20)
    parallel = DataParallel(architectures.seed_net(rng=np.random.default_rng(0)), workers=2, seed=0)
    parallel.forward_backward(x, y)
    process = parallel._processes[0]
    process.kill()
    process.join()
    with pytest.raises(WorkerError, match="worker process 1 died"):
        parallel.forward_backward(x, y)
    assert parallel.closed
    with pytest.raises(RuntimeError, match="closed"):
        parallel.forward_backward(x, y)


def test_close_stops_the_workers_and_is_idempotent():
    parallel = DataParallel(architectures.seed_net(), workers=3, seed=0)
    processes = list(parallel._processes)
    assert len(processes) == 2 and all(p.is_alive() for p in processes)
    parallel.close()
    parallel.close()
    assert parallel.closed and not any(p.is_alive() for p in processes)


def test_bad_arguments_are_refused():
    net = architectures.seed_net()
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        DataParallel(net, workers=0)
    with pytest.raises(ValueError, match="takes a cnnlib Sequential"):
        DataParallel([net], workers=2)
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        make_trainer(workers=1.5)
    one = DataParallel(net, workers=1)          # no processes: plain calls
    x, y = _batch(4)
    with pytest.raises(ValueError, match="differ in length"):
        one.forward_backward(x, y[:3])
    assert one.forward_backward(x, y) > 0 and not one._processes


def test_a_trainer_with_workers_reproduces_and_tracks_the_one_process_run():
    runs = []
    for workers in (2, 2, 1):
        trainer = make_trainer(n=200, batch_size=20, workers=workers, validate_every=100)
        trainer.run(steps=15)
        runs.append((trainer.net, trainer.history))
        trainer.close()
        assert trainer._parallel is None or trainer._parallel.closed
    (two, history), (again, _), (one, _) = runs
    for (name, p2, _), (_, p2b, _), (_, p1, _) in zip(two.parameters(), again.parameters(),
                                                      one.parameters()):
        np.testing.assert_array_equal(p2, p2b, err_msg=name)     # same workers: same bits
        np.testing.assert_allclose(p2, p1, rtol=1e-3, atol=1e-4, err_msg=name)
    assert len(history.val_accuracy) == 3 and len(history.forward_ms) == 15
    assert all(ms > 0 for ms in history.forward_ms + history.backward_ms)


def test_bench_with_cores_runs_cnnlib_in_processes(capsys):
    assert main(["bench", "--seconds", "0.05", "--rounds", "1", "--no-torch", "--cores", "2",
                 "--batch-sizes", "20"]) == 0
    text = capsys.readouterr().out
    assert "cnnlib: 2 processes sharing every batch" in text
    assert "training, batch 20 (examples/s)" in text and "inference" in text
    with pytest.raises(SystemExit):
        main(["bench", "--cores", "2", "--threads", "2"])


def test_fake_digits_train_in_parallel():
    images, labels = fake_digits(300)
    net = architectures.seed_net(rng=np.random.default_rng(0))
    trainer = train.Trainer(net, images[:200], labels[:200], images[200:], labels[200:],
                            rng=0, workers=2)
    try:
        trainer.run(steps=200)
        assert trainer.evaluate() > 0.8          # chance is 0.1
    finally:
        trainer.close()


def test_a_script_without_a_main_guard_gets_told_what_to_do(tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    import cnnlib

    # The script imports the cnnlib under test, not whichever one is installed.
    env = {**os.environ, "PYTHONPATH": str(Path(cnnlib.__file__).resolve().parent.parent)}
    script = tmp_path / "unguarded.py"
    script.write_text("from cnnlib import architectures\n"
                      "from cnnlib.parallel import DataParallel\n"
                      "DataParallel(architectures.seed_net(), workers=2).close()\n")
    run = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                         timeout=120, env=env)
    assert run.returncode != 0
    assert "died while starting" in run.stderr and '__name__ == "__main__"' in run.stderr
