"""The training loop, evaluation with crops, schedules, callbacks and weight averaging (the train
and evaluate commands are in test_cli.py)."""

import numpy as np
import pytest

from cnnlib import architectures, augment, data, train
from cnnlib.optim import SGD

from helpers import fake_digits, make_trainer


# -------------------------------------------------------------------------------- schedules

def test_schedules():
    assert train.Constant()(12345) == 1.0
    cosine = train.Cosine(total=1000)
    assert cosine(0) == 1.0 and cosine(500) == pytest.approx(0.5) and cosine(1000) == 0.0
    assert cosine(2000) == 0.0
    halves = train.make_schedule("step", 1000)
    assert [halves(e) for e in (0, 499, 500, 749, 750)] == [1.0, 1.0, 0.1, 0.1, 0.01]
    with pytest.raises(ValueError, match="unknown schedule 'linear'"):
        train.make_schedule("linear", 10)


# ---------------------------------------------------------------------------------- trainer

def test_step_returns_the_loss_and_records_history():
    trainer = make_trainer(batch_size=20)
    loss = trainer.step()
    assert isinstance(loss, float) and 0 < loss < 20
    history = trainer.history
    assert trainer.examples_seen == 20 and history.examples == [20] and history.loss == [loss]
    assert history.lr == [0.01] and len(history.forward_ms) == len(history.backward_ms) == 1
    assert history.forward_ms[0] > 0 and history.backward_ms[0] > 0


def test_every_epoch_visits_every_example_once_in_a_new_order():
    n = 50
    images = np.zeros((n, 28, 28), dtype=np.uint8)
    images[:, 0, 0] = np.arange(n)  # each image carries its index in one pixel
    seen = []

    def record(x, rng):
        seen.extend(np.rint(x[:, 0, 0, 0] * 255).astype(int))
        return augment.CenterCrop(24)(x)

    trainer = train.Trainer(architectures.seed_net(rng=np.random.default_rng(0)), images,
                            np.zeros(n, dtype=np.int64), batch_size=20, rng=0, augment=record)
    trainer.fit(epochs=2)
    assert trainer.examples_seen == 100 and trainer.epochs_done == 2
    assert len(trainer.history.loss) == 6  # batches of 20, 20, 10 per epoch
    first, second = seen[:n], seen[n:]
    assert sorted(first) == sorted(second) == list(range(n))
    assert first != second and first != list(range(n))


def test_seeded_runs_reproduce_exactly():
    def run():
        trainer = make_trainer(batch_size=10, validate_every=100)
        trainer.fit(epochs=1)
        params = [param.copy() for _, param, _ in trainer.net.parameters()]
        return trainer.history, params

    (history1, params1), (history2, params2) = run(), run()
    assert history1.loss == history2.loss and history1.val_accuracy == history2.val_accuracy
    assert all(np.array_equal(a, b) for a, b in zip(params1, params2))
    other = make_trainer(seed=1, batch_size=10)
    other.fit(epochs=1)
    assert other.history.loss != history1.loss


def test_training_learns_thefake_digits():
    trainer = make_trainer(n=400, batch_size=20, validate_every=None)
    before = trainer.evaluate()
    trainer.fit(epochs=3)
    assert trainer.history.val_accuracy[-1] > max(0.6, before + 0.3)
    assert np.mean(trainer.history.loss[-10:]) < np.mean(trainer.history.loss[:10])


def test_validation_every_n_examples_and_at_the_end():
    trainer = make_trainer(n=200, batch_size=20, validate_every=60)
    trainer.fit(epochs=1)
    assert trainer.history.val_examples == [60, 120, 180, 200]
    assert all(0 <= a <= 1 for a in trainer.history.val_accuracy)
    assert trainer.evaluate(limit=10) in {i / 10 for i in range(11)}


def test_lr_and_momentum_can_change_between_steps():
    trainer = make_trainer(optimizer=SGD(lr=0.01, momentum=0.9))
    trainer.step()
    trainer.optimizer.lr, trainer.optimizer.momentum = 0.002, 0.5
    trainer.step()
    assert trainer.history.lr == [0.01, 0.002]


def test_schedule_sets_the_learning_rate_each_step():
    halve_every_50 = lambda examples_seen: 0.5 ** (examples_seen // 50)  # noqa: E731
    trainer = make_trainer(n=100, batch_size=10, schedule=halve_every_50,
                       optimizer=SGD(lr=0.1, momentum=0.9))
    trainer.run(steps=10)
    assert trainer.history.lr == [0.1] * 5 + [0.05] * 5
    trainer.base_lr = 0.02
    trainer.step()
    assert trainer.history.lr[-1] == pytest.approx(0.02 * 0.25)


def test_callbacks_hear_every_event_and_can_stop_a_run():
    class Recorder(train.Callback):
        def __init__(self):
            self.events = []

        def on_run_start(self, trainer):
            self.events.append("start")

        def on_step(self, trainer, loss):
            self.events.append("step")
            if len(trainer.history.loss) == 7:
                trainer.stop()

        def on_validation(self, trainer, accuracy):
            self.events.append("validation")

        def on_epoch_end(self, trainer):
            self.events.append("epoch")

        def on_run_end(self, trainer):
            self.events.append("end")

    recorder = Recorder()
    trainer = make_trainer(n=100, batch_size=20, validate_every=40, callbacks=[recorder])
    trainer.fit(epochs=3)
    assert trainer.examples_seen == 140
    # examples after each step: 20, 40 (validate), 60, 80 (validate), 100 (epoch ends),
    # 120 (validate), 140 (stop)
    assert recorder.events == (["start"] + ["step"] * 2 + ["validation"] + ["step"] * 2
                               + ["validation", "step", "epoch", "step", "validation", "step"]
                               + ["end"])


def test_progress_bar_counts_examples(capsys):
    bar = train.ProgressBar(every=3)
    trainer = make_trainer(n=100, batch_size=20, callbacks=[bar])
    trainer.fit(epochs=1)
    assert bar.bar is None  # closed at the end
    err = capsys.readouterr().err
    assert "100/100" in err and "val=" in err


def test_trainer_rejects_bad_arguments():
    images, labels = fake_digits(10)
    net = architectures.seed_net(rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="batch_size"):
        train.Trainer(net, images, labels, batch_size=0)
    with pytest.raises(ValueError, match=r"labels of shape \(10,\)"):
        train.Trainer(net, images, labels[:5])
    with pytest.raises(ValueError, match="both x_val and y_val"):
        train.Trainer(net, images, labels, images)
    trainer = train.Trainer(net, images, labels)
    with pytest.raises(ValueError, match="exactly one of"):
        trainer.run()
    with pytest.raises(ValueError, match="no validation set"):
        trainer.evaluate()


def test_a_diverging_run_says_what_to_do():
    trainer = make_trainer()
    trainer.net[-1].params["W"][0, 0] = np.inf  # what a far too large step ends in
    before = [param.copy() for _, param, _ in trainer.net.parameters()]
    with pytest.raises(FloatingPointError, match="learning rate"):
        with np.errstate(all="ignore"):
            trainer.step()
    # Raised before the update: no weight changed, no step recorded (a lower rate can resume).
    after = [param for _, param, _ in trainer.net.parameters()]
    assert all(np.array_equal(a, b) for a, b in zip(before, after))
    assert trainer.examples_seen == 0 and trainer.history.loss == []


def test_fit_function_returns_the_history():
    images, labels = fake_digits(120)
    net = architectures.seed_net(rng=np.random.default_rng(0))
    history = train.fit(net, images[:100], labels[:100], images[100:], labels[100:], epochs=1,
                        schedule="cosine", rng=0)
    assert history.examples[-1] == 100 and len(history.val_accuracy) == 1
    assert history.lr[0] == 0.01 and history.lr[-1] < 0.001
    summary = history.summary()
    assert summary["steps"] == 5 and summary["examples"] == 100


# ------------------------------------------------------------------------------- evaluation

def test_crop_evaluation_is_deterministic_for_a_seed():
    images, labels = fake_digits(200)
    net = architectures.seed_net(rng=np.random.default_rng(0))
    p1 = train.predict_proba(net, images, crops=4, seed=5)
    p2 = train.predict_proba(net, images, crops=4, seed=5)
    p3 = train.predict_proba(net, images, crops=4, seed=6)
    assert p1.shape == (200, 10) and np.allclose(p1.sum(axis=1), 1, atol=1e-5)
    assert np.array_equal(p1, p2) and not np.array_equal(p1, p3)
    centre = train.predict_proba(net, images)
    x = data.to_float(images)[:, :, 2:26, 2:26]
    assert np.array_equal(centre, net.predict_proba(np.ascontiguousarray(x)))
    accuracy = train.evaluate(net, images, labels, crops=4, seed=5)
    assert accuracy == np.mean(p1.argmax(axis=1) == labels)
    with pytest.raises(ValueError, match="crops"):
        train.predict_proba(net, images, crops=0)


# ------------------------------------------------------------------------- real MNIST, CLI

@pytest.mark.slow
def test_a_few_hundred_steps_on_mnist_beat_chance_by_far(mnist):
    rng = np.random.default_rng(0)
    trainer = train.Trainer(architectures.seed_net(rng=rng), mnist.x_train[:6000],
                            mnist.y_train[:6000], mnist.x_val[:1000], mnist.y_val[:1000],
                            rng=rng, validate_every=None)
    trainer.run(steps=300)
    loss = trainer.history.loss
    assert np.mean(loss[-50:]) < 0.6 * np.mean(loss[:50])
    assert trainer.evaluate() > 0.8  # chance is 0.1


def _random_split(n=60, seed=0):
    """Random uint8 'digits' (no real data needed): n training, 20 validation, 20 test."""
    from cnnlib.data import MnistSplit
    rng = np.random.default_rng(seed)

    def digits(k):
        return (rng.integers(0, 256, (k, 28, 28), dtype=np.uint8),
                rng.integers(0, 10, k).astype(np.uint8))

    return MnistSplit(*digits(n), *digits(20), *digits(20))


def test_train_recipe_applies_every_field():
    trainer = train.train_recipe(train.Recipe(epochs=0.5, weight_decay=5e-4, schedule="cosine",
                                              augment="elastic", full_train=True),
                                 _random_split(), progress=False)
    assert trainer.optimizer.weight_decay == 5e-4
    assert isinstance(trainer.schedule, train.Cosine)
    assert trainer.history.lr[-1] < trainer.history.lr[0]
    assert trainer.augment.elastic_alpha == 8 and trainer.augment.rotation == 10
    assert trainer.x_val is None and len(trainer.x_train) == 80      # 60 + the 20 validation


def test_a_step_trains_a_network_loaded_in_eval_mode(rng):
    from cnnlib.architectures import deep_net
    net = deep_net(rng, width=2).eval()                  # as load_model returns it
    split = _random_split()
    trainer = train.Trainer(net, split.x_train, split.y_train, rng=0)
    before = net[1].buffers["running_mean"].copy()
    trainer.step()
    assert net.training and not np.array_equal(net[1].buffers["running_mean"], before)


def test_crop_averaging_is_the_mean_over_successive_crops():
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (40, 28, 28), dtype=np.uint8)
    net = architectures.seed_net(rng=rng)
    got = train.predict_proba(net, images, crops=3, seed=5)
    draws, crop, x = np.random.default_rng(5), augment.RandomCrop(24), data.to_float(images)
    each = [net.predict_proba(np.ascontiguousarray(crop(x, draws))) for _ in range(3)]
    assert not np.allclose(each[0], each[1])               # the crops really differ
    np.testing.assert_allclose(got, np.mean(each, axis=0), rtol=1e-5)


def test_labels_outside_the_classes_and_float_pixels_outside_0_1_are_refused():
    split = _random_split()
    net = architectures.seed_net(rng=np.random.default_rng(0))
    y = split.y_train.copy()
    y[7] = 10
    with pytest.raises(ValueError, match=r"y_train\[7\] is 10"):
        train.Trainer(net, split.x_train, y)
    with pytest.raises(ValueError, match=r"y_val: labels are class indices 0..9"):
        train.Trainer(net, split.x_train, split.y_train, split.x_val, -1 - split.y_val.astype(int))
    with pytest.raises(ValueError, match="in \\[0, 1\\].*Divide 0..255 pixels by 255"):
        train.Trainer(net, split.x_train[:, None].astype(np.float32), split.y_train)


def test_a_non_finite_loss_does_not_count_its_batch_as_seen():
    split = _random_split()
    net = architectures.seed_net(rng=np.random.default_rng(0))
    trainer = train.Trainer(net, split.x_train, split.y_train, rng=0)
    trainer.step()
    net[-1].params["b"][0] = np.inf
    with pytest.raises(FloatingPointError), np.errstate(invalid="ignore"):
        trainer.step()
    assert trainer.examples_seen == 20 and trainer._position == 20


def test_a_progress_bar_reused_by_two_fits_expects_each_one_s_length(tmp_path):
    import io
    split = _random_split(n=40)
    bar = train.ProgressBar(file=io.StringIO())
    trainer = train.Trainer(architectures.seed_net(rng=np.random.default_rng(0)), split.x_train,
                            split.y_train, callbacks=[bar], rng=0)
    trainer.fit(1)
    assert bar.total == 40
    trainer.fit(3)
    assert bar.total == 120


def test_callbacks_read_the_planned_length_of_each_run():
    class Plan(train.Callback):
        planned = []

        def on_run_start(self, trainer):
            self.planned.append(trainer.planned_examples)

    trainer = make_trainer(n=40, callbacks=[Plan()])
    trainer.fit(1.5)
    trainer.run(examples=30)
    trainer.run(steps=2)
    assert Plan.planned == [60, 30, None] and trainer.planned_examples is None


# ------------------------------------------------------------------------ weight averaging

def test_weight_average_is_the_mean_of_the_weights_after_each_step_past_start():
    snapshots = []

    class Snapshot(train.Callback):
        def on_step(self, trainer, loss):
            if trainer.examples_seen > 100:
                snapshots.append({name: p.astype(np.float64) for name, p, _ in
                                  trainer.net.parameters()})

    average = train.WeightAverage(start=100)
    trainer = make_trainer(n=200, batch_size=20, callbacks=[average, Snapshot()])
    trainer.run(steps=12)                           # 240 examples: steps 6..12 are past 100
    assert average.steps == len(snapshots) == 7
    end_point = {name: p.copy() for name, p, _ in trainer.net.parameters()}
    average.apply(trainer.net)
    for name, param, _ in trainer.net.parameters():
        expected = np.mean([snapshot[name] for snapshot in snapshots], axis=0)
        np.testing.assert_allclose(param, expected, rtol=1e-5, atol=1e-7, err_msg=name)
        assert not np.allclose(param, end_point[name])    # the mean is not the last step


def test_weight_average_refuses_what_it_cannot_do(rng):
    from cnnlib.architectures import deep_net
    with pytest.raises(ValueError, match="no step has been averaged yet"):
        train.WeightAverage(start=1000).apply(architectures.seed_net())
    with pytest.raises(ValueError, match="start must be >= 0"):
        train.WeightAverage(start=-1)
    split = _random_split()
    trainer = train.Trainer(deep_net(rng, width=2), split.x_train, split.y_train, rng=0,
                            callbacks=[train.WeightAverage()])
    with pytest.raises(ValueError, match=r"running statistics \(BatchNorm2d"):
        trainer.run(steps=1)
    with pytest.raises(ValueError, match="average_last is a fraction"):
        train.train_recipe(train.Recipe(average_last=1.5), split, progress=False)


@pytest.mark.parametrize("fraction, steps", [(0.3, 3), (0.55, 6), (1.0, 10)])
def test_recipe_averages_the_last_fraction_of_the_steps(fraction, steps):
    # 200 examples, 10 steps of 20: the last 30% are steps 8-10 (examples 160..200).
    trainer = train.train_recipe(train.Recipe(epochs=1, average_last=fraction, full_train=True),
                                 _random_split(n=180), progress=False)
    assert trainer.weight_average.steps == steps


def test_recipe_averaging_on_all_training_digits_keeps_the_average():
    split = _random_split(n=100)
    snapshots = []

    class LastWeights(train.Callback):
        def on_step(self, trainer, loss):
            snapshots.append([p.copy() for _, p, _ in trainer.net.parameters()])

    trainer = train.train_recipe(train.Recipe(epochs=1, average_last=0.5, full_train=True),
                                 split, progress=False, callbacks=[LastWeights()])
    expected = [np.mean([s[i] for s in snapshots[-3:]], axis=0, dtype=np.float64)
                for i in range(len(snapshots[0]))]
    for (name, param, _), mean in zip(trainer.net.parameters(), expected):
        np.testing.assert_allclose(param, mean, rtol=1e-5, atol=1e-7, err_msg=name)


def test_a_recipe_stopped_before_averaging_began_keeps_its_end_point():
    class StopEarly(train.Callback):
        def on_step(self, trainer, loss):
            if trainer.examples_seen >= 40:
                trainer.stop()

    trainer = train.train_recipe(train.Recipe(epochs=1, average_last=0.5),
                                 _random_split(n=200), progress=False, callbacks=[StopEarly()])
    assert trainer.examples_seen == 40 and trainer.weight_average.steps == 0   # from 100 on


def test_recipe_average_last_ends_with_the_averaged_weights_and_validates_both():
    recipe = train.Recipe(epochs=1, average_last=0.5, validate_every=10**6)
    split = _random_split(n=100)
    trainer = train.train_recipe(recipe, split, progress=False)
    plain = train.train_recipe(train.Recipe(epochs=1, validate_every=10**6), split,
                               progress=False)
    assert trainer.weight_average.steps == 3          # 5 steps of 20; the last 50 examples
    history = trainer.history
    assert history.val_examples == [100, 100]         # the end point's, then the average's
    assert history.loss == plain.history.loss         # averaging does not change the run
    assert history.val_accuracy[0] == plain.history.val_accuracy[0]
    for (name, averaged, _), (_, end, _) in zip(trainer.net.parameters(),
                                                plain.net.parameters()):
        assert not np.array_equal(averaged, end), name

