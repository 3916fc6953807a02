"""Stroke pre-processing: the rasterizer against a loop reference, each method's geometry, the
stroke-file reader and its errors, the classify-strokes command, and the accuracy on real pen
digits (skipped when ../shared/data is not beside the repository)."""

import json
import math
import re
from pathlib import Path

import numpy as np
import pytest

from cnnlib import strokes as S
from cnnlib.__main__ import main

REPO = Path(__file__).resolve().parent.parent
DEV_SET = REPO.parent / "shared" / "data" / "unipen-digits-dev.json"
SHIPPED_MODEL = REPO / "data" / "models" / "seed-net.npz"

# A hand-made "7" and "4" in 280x280 box coordinates (y down); the 4 has two strokes.
SEVEN = [[[80, 60], [200, 60], [150, 140], [120, 220]]]
FOUR = [[[160, 50], [80, 160], [210, 160]], [[170, 100], [170, 230]]]


def loop_rasterize(strokes, shape, width, ramp=1.0):
    """Reference: every pixel against every segment, in plain Python loops (float64)."""
    segments = []
    for stroke in strokes:
        points = np.asarray(stroke, dtype=np.float64)
        if len(points) == 1:
            segments.append((points[0], points[0]))
        segments += [(points[i], points[i + 1]) for i in range(len(points) - 1)]
    out = np.zeros(shape)
    for r in range(shape[0]):
        for c in range(shape[1]):
            p = np.array([c + 0.5, r + 0.5])
            best = math.inf
            for a, b in segments:
                ab = b - a
                length2 = ab @ ab
                t = 0.0 if length2 == 0 else min(1.0, max(0.0, (p - a) @ ab / length2))
                best = min(best, float(np.linalg.norm(p - a - t * ab)))
            out[r, c] = min(1.0, max(0.0, (width / 2 - best) / ramp + 0.5))
    return out


def ink_box(image, threshold=0.1):
    """(rows, cols) spanned by pixels above threshold."""
    rows = np.flatnonzero((image > threshold).any(axis=1))
    cols = np.flatnonzero((image > threshold).any(axis=0))
    return rows[-1] - rows[0] + 1, cols[-1] - cols[0] + 1


# ---------------------------------------------------------------------------------------------
# rasterize


def test_single_point_is_a_round_dot_centred_on_the_point():
    image = S.rasterize([[[10.0, 12.0]]], (24, 24), width=4.0)
    x, y = S.center_of_mass(image)
    assert abs(x - 10.0) < 1e-9 and abs(y - 12.0) < 1e-9
    assert image[11, 9] == 1.0 and image[12, 10] == 1.0  # pixels whose centres are 0.7 px away
    assert image[12, 15] == 0.0  # 5.5 px away: outside radius 2 + half a ramp
    # Round: the same coverage at the same distance along the axes and a diagonal.
    assert image[12 - 3, 10] == pytest.approx(image[12 + 2, 10])
    assert image.sum() == pytest.approx(math.pi * 2.0 ** 2, rel=0.05)


def test_horizontal_line_has_the_pen_width_and_anti_aliased_edges():
    image = S.rasterize([[[4.0, 10.0], [20.0, 10.0]]], (24, 24), width=3.0)
    # Away from the caps every column holds exactly the width of ink: 1 + 1 + 0.5 + 0.5.
    np.testing.assert_allclose(image[:, 8:16].sum(axis=0), 3.0, atol=1e-6)
    np.testing.assert_allclose(image[8:12, 10], [0.5, 1.0, 1.0, 0.5], atol=1e-6)
    shifted = S.rasterize([[[4.0, 10.3], [20.0, 10.3]]], (24, 24), width=3.0)
    edges = shifted[:, 10]
    assert ((edges > 0) & (edges < 1)).sum() == 2  # grey levels on both sides, not jaggies
    np.testing.assert_allclose(shifted[:, 8:16].sum(axis=0), 3.0, atol=1e-6)


def test_rasterize_matches_the_loop_reference_on_random_strokes():
    rng = np.random.default_rng(3)
    for _ in range(4):
        strokes = [rng.uniform(-4, 22, size=(rng.integers(1, 12), 2))
                   for _ in range(rng.integers(1, 4))]
        width, ramp = rng.uniform(0.5, 4.0), rng.uniform(0.3, 1.5)
        image = S.rasterize(strokes, (18, 20), width, ramp=ramp)
        assert image.dtype == np.float32 and image.shape == (18, 20)
        assert image.min() >= 0.0 and image.max() <= 1.0
        np.testing.assert_allclose(image, loop_rasterize(strokes, (18, 20), width, ramp),
                                   atol=1e-6)


def test_rasterize_rejects_bad_arguments():
    with pytest.raises(ValueError, match="width"):
        S.rasterize([[[1, 1]]], (8, 8), width=0)
    with pytest.raises(ValueError, match="shape"):
        S.rasterize([[[1, 1]]], (0, 8), width=1)


def test_resample_thins_dense_strokes_and_keeps_the_ends():
    t = np.linspace(0, 1, 500)
    points = np.stack([100 * t, 50 * np.sin(3 * t)], axis=1)
    thinned = S.resample(points, 5.0)
    assert 20 < len(thinned) < 40
    np.testing.assert_array_equal(thinned[0], points[0])
    np.testing.assert_array_equal(thinned[-1], points[-1])
    steps = np.linalg.norm(np.diff(thinned[:-1], axis=0), axis=1)
    assert steps.min() > 4.0


# ---------------------------------------------------------------------------------------------
# The methods


@pytest.mark.parametrize("method", sorted(S.METHODS))
@pytest.mark.parametrize("drawing", [SEVEN, FOUR, [[[140, 140]]]], ids=["seven", "four", "dot"])
def test_methods_give_the_network_a_24x24_float32_image(method, drawing):
    image = S.preprocess(drawing, (280, 280), method)
    assert image.shape == (24, 24) and image.dtype == np.float32
    assert image.min() >= 0.0 and image.max() <= 1.0
    assert image.max() > 0.9
    # Not a blob: a digit covers far less than half of the image.
    assert (image > 0.5).mean() < 0.35


def test_mnist_method_centres_the_centre_of_mass():
    # Lopsided drawings whose ink stays inside the 24x24 crop after the shift (a "7" would lose
    # the end of its tail to the crop, as MNIST 7s do, and its centre of mass with it).
    t = np.linspace(0, 2 * np.pi, 40)
    ring = np.stack([140 + 50 * np.cos(t), 140 + 80 * np.sin(t)], axis=1)
    for drawing in ([ring, [[115, 90], [125, 95]]], [ring, [[150, 200], [165, 180]]]):
        image = S.preprocess(drawing, method="mnist")
        # MNIST's centre of mass is on the centre of pixel (14, 14) of 28x28: (12.5, 12.5) in
        # the centre 24x24 crop, in continuous coordinates.
        x, y = S.center_of_mass(image)
        assert abs(x - 12.5) < 0.1 and abs(y - 12.5) < 0.1, (x, y)


@pytest.mark.parametrize("method", sorted(S.METHODS))
def test_aspect_ratio_is_kept(method):
    # A tall thin ellipse (a "0" twice as tall as wide) and the same lying down.
    t = np.linspace(0, 2 * np.pi, 60)
    tall = [np.stack([140 + 40 * np.cos(t), 140 + 80 * np.sin(t)], axis=1)]
    wide = [np.stack([140 + 80 * np.cos(t), 140 + 40 * np.sin(t)], axis=1)]
    h_tall, w_tall = ink_box(S.preprocess(tall, method=method))
    h_wide, w_wide = ink_box(S.preprocess(wide, method=method))
    assert 18 <= h_tall <= 24 and 18 <= w_wide <= 24
    # Pen width w in the ink box: (h - w) / (wide - w) is about 2 for both.
    assert 1.4 < h_tall / w_tall < 2.2 and 1.4 < w_wide / h_wide < 2.2
    assert abs(h_tall - w_wide) <= 1 and abs(w_tall - h_wide) <= 1


@pytest.mark.parametrize("method", sorted(S.METHODS))
def test_translation_does_not_change_the_image(method):
    base = S.preprocess(FOUR, method=method)
    moved = S.preprocess(S.transform(FOUR, 1.0, (-37.0, 23.0)), method=method)
    np.testing.assert_allclose(moved, base, atol=1e-5)


def test_uniform_scale_does_not_change_the_mnist_image():
    base = S.preprocess(SEVEN, method="mnist")
    smaller = S.preprocess(S.transform(SEVEN, 0.4, (30.0, 50.0)), method="mnist")
    np.testing.assert_allclose(smaller, base, atol=1e-5)
    # The same drawing in other units and another box size.
    other = S.preprocess(S.transform(SEVEN, 10.0, (0.0, 0.0)), (2800, 2800), method="mnist")
    np.testing.assert_allclose(other, base, atol=1e-5)


def test_original_method_keeps_the_pen_thin_for_small_drawings():
    big = S.preprocess(SEVEN, method="original")
    small = S.preprocess(S.transform(SEVEN, 0.5, (70.0, 70.0)), method="original")
    # The demo's crop includes the full-size pen's margin, so a small drawing comes out a bit
    # smaller; but its pen is scaled down with it: ink per row of height stays about the same.
    (h_big, _), (h_small, _) = ink_box(big), ink_box(small)
    assert h_small <= h_big
    assert small.sum() / h_small == pytest.approx(big.sum() / h_big, rel=0.15)


def test_fit_to_box_scales_the_larger_side_to_60_percent_and_centres():
    fitted = S.fit_to_box([np.array([[0.0, 0.0], [5.0, 20.0]]), np.array([[1.0, 7.0]])])
    x_min, y_min, x_max, y_max = S.bounding_box(fitted)
    assert y_max - y_min == pytest.approx(168.0)
    assert x_max - x_min == pytest.approx(42.0)
    assert (x_min + x_max) / 2 == pytest.approx(140.0)
    assert (y_min + y_max) / 2 == pytest.approx(140.0)
    np.testing.assert_allclose(S.fit_to_box([[[3.0, 4.0]]])[0], [[140.0, 140.0]])


def test_preprocess_rejects_empty_and_bad_drawings():
    with pytest.raises(ValueError, match="nothing drawn"):
        S.preprocess([])
    with pytest.raises(ValueError, match="stroke 1: a stroke needs at least one point"):
        S.preprocess([[[1, 2]], []])
    with pytest.raises(ValueError, match="stroke 0, point 1: coordinates must be finite"):
        S.preprocess([[[1, 2], [float("nan"), 3]]])
    with pytest.raises(ValueError, match="point 0: expected \\[x, y\\]"):
        S.preprocess([[["a", 2]]])
    with pytest.raises(ValueError, match="unknown pre-processing method 'blur'"):
        S.preprocess(SEVEN, method="blur")


def test_random_thickness_thickens_and_thins_within_range():
    line = S.rasterize([[[4.0, 14.0], [24.0, 14.0]]], (28, 28), 3.0)[None, None]
    x = np.repeat(line, 200, axis=0)  # (200, 1, 28, 28)
    rng = np.random.default_rng(0)
    out = S.RandomThickness(0.75)(x, rng)
    assert out.shape == x.shape and out.dtype == np.float32
    assert out.min() >= 0.0 and out.max() <= 1.0
    ink = out.sum(axis=(1, 2, 3)) / line.sum()
    assert ink.min() < 0.8 and ink.max() > 1.2  # both thinner and thicker copies
    np.testing.assert_array_equal(S.RandomThickness(0.0)(x[:3], rng), x[:3])
    with pytest.raises(ValueError, match="amount"):
        S.RandomThickness(1.5)


def test_slashed_zeros_cross_the_loop_of_some_zeros_only():
    ring = (S.rasterize([np.array([[14 + 6 * np.cos(t), 14 + 8 * np.sin(t)]
                                   for t in np.linspace(0, 2 * np.pi, 40)])], (28, 28), 2.5)
            * 255).astype(np.uint8)
    images = np.repeat(ring[None], 10, axis=0)
    labels = np.array([0, 0, 0, 0, 1, 2, 3, 4, 5, 6])
    extra, extra_labels = S.slashed_zeros(images, labels, 0.5, np.random.default_rng(0))
    assert extra.shape == (2, 28, 28) and extra.dtype == np.uint8
    assert extra_labels.tolist() == [0, 0]
    for image in extra:
        added = (image.astype(int) - ring) > 100
        assert added.sum() > 10                       # new ink...
        assert added[12:17, 12:17].any()              # ...through the middle of the loop...
        rows, cols = np.nonzero(added)
        assert np.corrcoef(cols, rows)[0, 1] < -0.8   # ...along a "/" (y grows downwards)
        assert (image >= ring).all()                  # the zero itself is kept
    again, _ = S.slashed_zeros(images, labels, 0.5, np.random.default_rng(0))
    np.testing.assert_array_equal(again, extra)
    assert len(S.slashed_zeros(images, labels, 0.0, np.random.default_rng(0))[0]) == 0
    with pytest.raises(ValueError, match="fraction"):
        S.slashed_zeros(images, labels, 1.5, np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8"):
        S.slashed_zeros(images.astype(np.float32), labels, 0.5, np.random.default_rng(0))


# ---------------------------------------------------------------------------------------------
# The stroke file reader


def write_json(path, data):
    path.write_text(json.dumps(data) if not isinstance(data, str) else data)
    return path


def test_load_strokes_reads_records_and_keeps_extra_keys(tmp_path):
    path = write_json(tmp_path / "digits.json", [
        {"label": 7, "strokes": SEVEN, "writer": "me"},
        {"strokes": FOUR},
    ])
    records = S.load_strokes(path)
    assert [r["label"] for r in records] == [7, None]
    assert records[0]["writer"] == "me"
    assert [len(r["strokes"]) for r in records] == [1, 2]
    assert records[1]["strokes"][1].shape == (2, 2) and records[1]["strokes"][1].dtype == np.float64


@pytest.mark.parametrize("content, message", [
    ("", "is empty"),
    ("[]", "holds no records"),
    ("{\"label\": 1}", "expected a JSON list"),
    ("[{\"label\": 1, \"strokes\": [[[1, 2]]]}, oops", "not valid JSON"),
    ([{"label": 1, "strokes": SEVEN}, {"label": 3}], "record 1: expected an object with a"),
    ([{"label": 10, "strokes": SEVEN}], "record 0: label must be an integer 0-9"),
    ([{"label": -1, "strokes": SEVEN}], "record 0: label must be an integer 0-9"),
    ([{"label": "3", "strokes": SEVEN}], "record 0: label must be an integer 0-9"),
    ([{"label": True, "strokes": SEVEN}], "record 0: label must be an integer 0-9"),
    ([{"strokes": SEVEN}, {"strokes": [[[1, 2], [3, "x"]]]}], "record 1, stroke 0, point 1"),
    ("[{\"strokes\": [[[1, NaN]]]}]", "record 0, stroke 0, point 0: coordinates must be finite"),
    ([{"strokes": [[[1, 2, 3]]]}], "record 0, stroke 0, point 0: expected \\[x, y\\]"),
    ([{"strokes": []}], "record 0: nothing drawn"),
    ([{"strokes": [[[1, 2]], []]}], "record 0, stroke 1: a stroke needs at least one point"),
])
def test_load_strokes_names_the_bad_record(tmp_path, content, message):
    path = write_json(tmp_path / "bad.json", content)
    with pytest.raises(ValueError, match=message) as info:
        S.load_strokes(path)
    assert str(path) in str(info.value)


def test_load_strokes_binary_file_names_the_path(tmp_path):
    path = tmp_path / "strokes.json"
    path.write_bytes(b"\xff\xfe[{}]")  # UTF-16 or anything else that is not UTF-8
    with pytest.raises(ValueError, match="is not UTF-8 text") as info:
        S.load_strokes(path)
    assert str(path) in str(info.value)


def test_load_strokes_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        S.load_strokes(tmp_path / "nope.json")


def test_score_counts_accuracy_per_digit_strokes_and_rejections():
    records = [{"label": 1, "strokes": [0]}, {"label": 1, "strokes": [0, 0]},
               {"label": 2, "strokes": [0]}, {"label": None, "strokes": [0]}]
    probabilities = np.array([[0, 0.9, 0.1], [0, 0.2, 0.8], [0.1, 0.3, 0.6], [1.0, 0, 0]])
    result = S.score(probabilities, records)
    assert result["accuracy"] == pytest.approx(2 / 3)
    assert result["per_digit"] == {1: (1, 2), 2: (1, 1)}
    assert result["multi_stroke"] == (0, 1) and result["single_stroke"] == (2, 2)
    assert result["rejection_rate"] == pytest.approx(1 / 4)  # only 0.6 is below 2/3


# ---------------------------------------------------------------------------------------------
# The classify-strokes command


@pytest.fixture
def model_path(tmp_path):
    """The shipped network if present, else an untrained one saved in the model format."""
    if SHIPPED_MODEL.is_file():
        return SHIPPED_MODEL
    from cnnlib.models import save_model, seed_net
    path = tmp_path / "untrained.npz"
    save_model(seed_net(rng=np.random.default_rng(0)), path)
    return path


def test_classify_strokes_prints_accuracy_and_writes_predictions(tmp_path, capsys, model_path):
    stroke_file = write_json(tmp_path / "two.json", [{"label": 7, "strokes": SEVEN},
                                                     {"label": 4, "strokes": FOUR}])
    out = tmp_path / "predictions.csv"
    code = main(["classify-strokes", str(stroke_file), "--model", str(model_path),
                 "--out", str(out)])
    printed = capsys.readouterr().out
    assert code == 0
    assert re.search(r"^accuracy: [01]\.\d{4}$", printed, re.M), printed
    assert re.search(r"^  7: [01]\.\d{4} \(\d/1\)$", printed, re.M), printed
    assert re.search(r"^rejected \(top probability < 2/3\): [01]\.\d{4}$", printed, re.M)
    lines = out.read_text().splitlines()
    assert lines[0] == "index,label,prediction,probability" and len(lines) == 3
    assert lines[1].startswith("0,7,")

    json_out = tmp_path / "predictions.json"
    assert main(["classify-strokes", str(stroke_file), "--model", str(model_path),
                 "--method", "original", "--out", str(json_out)]) == 0
    rows = json.loads(json_out.read_text())
    assert [row["label"] for row in rows] == [7, 4]
    assert all(0 <= row["prediction"] <= 9 and 0 < row["probability"] <= 1 for row in rows)


def test_classify_strokes_without_labels_prints_no_accuracy(tmp_path, capsys, model_path):
    stroke_file = write_json(tmp_path / "unlabelled.json", [{"strokes": SEVEN}])
    assert main(["classify-strokes", str(stroke_file), "--model", str(model_path)]) == 0
    printed = capsys.readouterr().out
    assert "accuracy" not in printed and "rejected" in printed


def test_classify_strokes_missing_model_is_a_clear_error(tmp_path, capsys):
    stroke_file = write_json(tmp_path / "one.json", [{"label": 7, "strokes": SEVEN}])
    missing = tmp_path / "no-such-model.npz"
    assert main(["classify-strokes", str(stroke_file), "--model", str(missing)]) == 1
    assert f"model file {missing} does not exist" in capsys.readouterr().err


def test_classify_strokes_bad_file_names_the_record(tmp_path, capsys, model_path):
    stroke_file = write_json(tmp_path / "bad.json", [{"label": 7, "strokes": SEVEN},
                                                     {"label": 12, "strokes": SEVEN}])
    assert main(["classify-strokes", str(stroke_file), "--model", str(model_path)]) == 1
    assert "record 1: label must be an integer 0-9" in capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# Real pen digits


@pytest.fixture(scope="module")
def dev_records():
    if not DEV_SET.is_file():
        pytest.skip(f"the real pen digits are not at {DEV_SET} (shared/data beside the repo)")
    return S.load_strokes(DEV_SET)


def test_writer_split_is_half_and_half(dev_records):
    tuning, held_out = S.split_by_writer(dev_records)
    assert len({r["writer"] for r in tuning}) == 12 == len({r["writer"] for r in held_out})
    assert len(tuning) + len(held_out) == 600
    assert {r["writer"] for r in tuning} == S.TUNING_WRITERS


@pytest.mark.slow
def test_default_method_recognizes_real_pen_digits(dev_records):
    from cnnlib.models import load_model
    net = load_model(SHIPPED_MODEL)
    assert S.DEFAULT_METHOD == "original"               # chosen on the tuning writers (README)
    tuning, held_out = S.split_by_writer(dev_records)
    held_out_score = S.score(S.classify_records(net, held_out), held_out)
    all_score = S.score(S.classify_records(net, dev_records), dev_records)
    # Floors a point or so below the measured values (97.0% of all, 96.98% held out; README),
    # so that a worse pre-processing (no margin, another pen) fails.
    assert held_out_score["accuracy"] >= HELD_OUT_FLOOR
    assert all_score["accuracy"] >= ALL_FLOOR
    assert all_score["rejection_rate"] <= 0.06


HELD_OUT_FLOOR = 0.955
ALL_FLOOR = 0.96


@pytest.mark.parametrize("method", sorted(S.METHODS))
def test_classify_strokes_prints_and_writes_the_library_answer(tmp_path, capsys, method):
    from cnnlib import models
    seven = [[[80, 60], [200, 60], [150, 140], [120, 220]]]
    four = [[[160, 50], [80, 160], [210, 160]], [[170, 100], [170, 230]]]
    path = tmp_path / "digits.json"
    path.write_text(json.dumps([{"label": 7, "strokes": seven}, {"label": 1, "strokes": four}]))
    model = models.save_model(models.seed_net(rng=np.random.default_rng(0)), tmp_path / "m.npz")
    out = tmp_path / "predictions.json"
    assert main(["classify-strokes", str(path), "--model", str(model), "--method", method,
                 "--out", str(out)]) == 0
    records = S.load_strokes(path)
    probs = S.classify_records(models.load_model(model), records, method)
    rows = json.loads(out.read_text())
    assert [r["prediction"] for r in rows] == probs.argmax(axis=1).tolist()
    assert [r["probability"] for r in rows] == [round(float(p), 6) for p in probs.max(axis=1)]
    assert f"accuracy: {S.score(probs, records)['accuracy']:.4f}\n" in capsys.readouterr().out


@pytest.mark.parametrize("height", [200, 240, 276])
def test_a_tall_straight_one_stays_visible(height):
    # The crop of a straight "1" is so thin that the demo's geometry squeezed it below a pixel.
    image = S.preprocess([[[140, 140 - height / 2], [140, 140 + height / 2]]], method="original")
    assert image.sum() >= 15 and image.max() == pytest.approx(1.0)
    tall_box = S.preprocess([[[140, 10], [140, 550]]], box_size=(280, 560), method="original")
    assert tall_box.sum() >= 15


def test_bad_drawings_and_options_are_clear_errors():
    with pytest.raises(ValueError, match="no ink inside the 280 x 280 box.*fit_to_box"):
        S.preprocess([[[1200, 1000], [1300, 1200]]], method="original")
    for options, words in (({"width": 20, "box": 20}, "0 < width < box"),
                           ({"box": -16}, "0 < width < box"),
                           ({"blur": float("nan")}, "blur is a Gaussian sigma")):
        with pytest.raises(ValueError, match=words):
            S.preprocess_mnist([[[10, 10], [50, 90]]], **options)
    with pytest.raises(ValueError, match="too large to be a number of pixels"):
        S.as_strokes([[[10 ** 400, 1], [2, 3]]])
    with pytest.raises(ValueError, match="two whole numbers"):
        S.rasterize([[[1, 1], [5, 5]]], (24, 24, 1), 2.0)
