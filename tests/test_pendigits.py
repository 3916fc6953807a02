"""The recorded pen digits: the stroke-file reader and its errors, scoring, the classify-strokes
command, the shipped pen digits (their hashes) and the accuracy on them."""

import json
import re
from pathlib import Path

import numpy as np
import pytest

from cnnlib import architectures, serialization
from cnnlib import pendigits as P
from cnnlib import strokes as S
from cnnlib.__main__ import main
from cnnlib.paths import shipped_model

REPO = Path(__file__).resolve().parent.parent
SHIPPED_MODEL = shipped_model("seed-net.npz")

# A hand-made "7" and "4" in 280x280 box coordinates (y down); the 4 has two strokes.
SEVEN = [[[80, 60], [200, 60], [150, 140], [120, 220]]]
FOUR = [[[160, 50], [80, 160], [210, 160]], [[170, 100], [170, 230]]]


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
    records = P.load_strokes(path)
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
    # Integers past Python's 4,300-digit limit for int(): the record is named all the same.
    ('[{"strokes": [[[1, 2]]]}, {"label": 1' + "0" * 5000 + ', "strokes": [[[1, 2]]]}]',
     "record 1: label must be an integer 0-9 .* got an integer of 5,001 digits"),
    ('[{"strokes": [[[1, 2], [3, ' + "9" * 5000 + ']]]}]',
     "record 0, stroke 0, point 1: expected \\[x, y\\], two numbers"),
    ("[" * 100_000, "nests its lists deeper"),
])
def test_load_strokes_names_the_bad_record(tmp_path, content, message):
    path = write_json(tmp_path / "bad.json", content)
    with pytest.raises(ValueError, match=message) as info:
        P.load_strokes(path)
    assert str(path) in str(info.value)


def test_load_strokes_binary_file_names_the_path(tmp_path):
    path = tmp_path / "strokes.json"
    path.write_bytes(b"\xff\xfe[{}]")  # UTF-16 or anything else that is not UTF-8
    with pytest.raises(ValueError, match="is not UTF-8 text") as info:
        P.load_strokes(path)
    assert str(path) in str(info.value)


def test_load_strokes_missing_file_names_the_path(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.json"):
        P.load_strokes(tmp_path / "nope.json")


def test_score_counts_accuracy_per_digit_strokes_and_rejections():
    records = [{"label": 1, "strokes": [0]}, {"label": 1, "strokes": [0, 0]},
               {"label": 2, "strokes": [0]}, {"label": None, "strokes": [0]}]
    probabilities = np.array([[0, 0.9, 0.1], [0, 0.2, 0.8], [0.1, 0.3, 0.6], [1.0, 0, 0]])
    result = P.score(probabilities, records)
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
    from cnnlib.architectures import seed_net
    from cnnlib.serialization import save_model
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


def test_writer_split_is_half_and_half(dev_records):
    tuning, held_out = P.split_by_writer(dev_records)
    assert len({r["writer"] for r in tuning}) == 12 == len({r["writer"] for r in held_out})
    assert len(tuning) + len(held_out) == 600
    assert {r["writer"] for r in tuning} == P.TUNING_WRITERS


@pytest.mark.slow
def test_default_method_recognizes_real_pen_digits(dev_records):
    from cnnlib.serialization import load_model
    net = load_model(SHIPPED_MODEL)
    assert S.DEFAULT_METHOD == "original"               # chosen on the tuning writers (README)
    tuning, held_out = P.split_by_writer(dev_records)
    held_out_score = P.score(P.classify_records(net, held_out), held_out)
    all_score = P.score(P.classify_records(net, dev_records), dev_records)
    # Floors a point or so below the measured values (97.0% of all, 96.98% held out; README),
    # so that a worse pre-processing (no margin, another pen) fails.
    assert held_out_score["accuracy"] >= HELD_OUT_FLOOR
    assert all_score["accuracy"] >= ALL_FLOOR
    assert all_score["rejection_rate"] <= 0.06


HELD_OUT_FLOOR = 0.955
ALL_FLOOR = 0.96


@pytest.mark.parametrize("method", sorted(S.METHODS))
def test_classify_strokes_prints_and_writes_the_library_answer(tmp_path, capsys, method):
    seven = [[[80, 60], [200, 60], [150, 140], [120, 220]]]
    four = [[[160, 50], [80, 160], [210, 160]], [[170, 100], [170, 230]]]
    path = tmp_path / "digits.json"
    path.write_text(json.dumps([{"label": 7, "strokes": seven}, {"label": 1, "strokes": four}]))
    model = serialization.save_model(architectures.seed_net(rng=np.random.default_rng(0)), tmp_path / "m.npz")
    out = tmp_path / "predictions.json"
    assert main(["classify-strokes", str(path), "--model", str(model), "--method", method,
                 "--out", str(out)]) == 0
    records = P.load_strokes(path)
    probs = P.classify_records(serialization.load_model(model), records, method)
    rows = json.loads(out.read_text())
    assert [r["prediction"] for r in rows] == probs.argmax(axis=1).tolist()
    assert [r["probability"] for r in rows] == [round(float(p), 6) for p in probs.max(axis=1)]
    assert f"accuracy: {P.score(probs, records)['accuracy']:.4f}\n" in capsys.readouterr().out


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


def test_the_shipped_pen_digits_are_verified_before_use(tmp_path, monkeypatch):
    dev, train = P.load_pen_digits("dev"), P.load_pen_digits("train")
    assert (len(dev), len({r["writer"] for r in dev})) == (600, 24)
    assert (len(train), len({r["writer"] for r in train})) == (7804, 123)
    assert not {r["writer"] for r in dev} & {r["writer"] for r in train}
    import gzip
    damaged = tmp_path / "unipen-digits-dev.json.gz"
    raw = gzip.decompress((P.PEN_DIGITS / "unipen-digits-dev.json.gz").read_bytes())
    damaged.write_bytes(gzip.compress(raw.replace(b'"label":3', b'"label":8', 1)))
    monkeypatch.setattr(P, "PEN_DIGITS", tmp_path)
    with pytest.raises(ValueError, match="are damaged: SHA-256"):
        P.load_pen_digits("dev")
    with pytest.raises(ValueError, match="no pen-digit set 'test'"):
        P.load_pen_digits("test")


def test_load_strokes_reads_gzip_files(tmp_path):
    import gzip
    path = tmp_path / "digits.json.gz"
    path.write_bytes(gzip.compress(b'[{"label": 1, "strokes": [[[0, 0], [0, 10]]]}]'))
    assert P.load_strokes(path)[0]["label"] == 1
    path.write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="not a readable gzip file"):
        P.load_strokes(path)
