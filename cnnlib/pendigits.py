"""The recorded pen digits: reading stroke files, the writer split, and scoring a network on them.

The course measures its stroke pre-processing (``cnnlib.strokes``) on real pen digits: 600 digits
of 24 writers from UNIPEN, shipped with cnnlib in ``cnnlib/pen_digits/`` (its README gives the
credit and the licence, CC BY 4.0), with 7,804 more digits of 123 other writers. A stroke file is a
JSON list of records ``{"label": 0-9, "strokes": [[[x, y], ...], ...], "writer": ...}`` in any
units, y down, optionally gzip-compressed (``.gz``)::

    records = load_pen_digits("dev")                     # or load_strokes("my-digits.json")
    tuning, held_out = split_by_writer(records)          # TUNING_WRITERS: 12 of the 24 writers
    probabilities = classify_records(net, held_out)      # (N, 10), through the pad's pipeline
    score(probabilities, held_out)["accuracy"]

``records_to_images`` replays each record the way a person would draw it in the 280x280 drawing
box (``strokes.fit_to_box``) and then runs exactly the pad's pre-processing.

What it trades away: the whole file is read into memory (fine for thousands of digits); no
pressure or timing information is kept.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import zlib
from pathlib import Path

import numpy as np

from .strokes import DEFAULT_METHOD, IMAGE_SIZE, METHODS, REJECT_BELOW, as_strokes, fit_to_box

__all__ = ["load_strokes", "load_pen_digits", "PEN_DIGIT_SETS", "records_to_images", "TUNING_WRITERS", "split_by_writer",
           "classify_records", "score"]


def load_strokes(path) -> list[dict]:
    """Read a stroke file: a JSON list of ``{"label": int (optional), "strokes": [[[x, y], ...],
    ...]}`` records in any units, y down; extra keys (such as "writer") are kept.

    Returns a list of dicts, one per record, with "strokes" as a list of float64 (n_i, 2) arrays
    and "label" an int in 0..9 or None when absent. Raises FileNotFoundError for a missing file
    and ValueError naming the path and the record index for anything malformed (not JSON, no
    records, a point that is not two finite numbers, a label outside 0-9...).
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"stroke file {path} does not exist (or is not a file)")
    raw_bytes = path.read_bytes()
    if path.suffix == ".gz":
        try:
            raw_bytes = gzip.decompress(raw_bytes)
        except (OSError, EOFError, zlib.error) as error:
            raise ValueError(f"stroke file {path} is not a readable gzip file ({error})") from None
    return _parse_records(raw_bytes, path)


def _parse_records(raw_bytes, path) -> list[dict]:
    """The records of a stroke file's bytes (see ``load_strokes``); ``path`` names it in errors."""
    try:
        text = raw_bytes.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ValueError(f"stroke file {path} is not UTF-8 text ({error.reason} at byte "
                         f"{error.start}); expected a JSON list of stroke records") from None
    if not text.strip():
        raise ValueError(f"stroke file {path} is empty; expected a JSON list of records "
                         '{"label": 0-9, "strokes": [[[x, y], ...], ...]}')
    try:
        data = json.loads(text, parse_int=_parse_int)
    except json.JSONDecodeError as error:
        raise ValueError(f"stroke file {path} is not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError(f"stroke file {path} nests its lists deeper than Python's JSON reader "
                         "can follow; expected records of strokes of [x, y] points") from None
    if not isinstance(data, list):
        raise ValueError(f"stroke file {path}: expected a JSON list of records; "
                         f"got a JSON {type(data).__name__}")
    if not data:
        raise ValueError(f"stroke file {path} holds no records (an empty list)")
    records = []
    for index, raw in enumerate(data):
        what = f"stroke file {path}, record {index}"
        if not isinstance(raw, dict) or "strokes" not in raw:
            raise ValueError(f"{what}: expected an object with a \"strokes\" key; got {raw!r:.80}")
        label = raw.get("label")
        if label is not None and (isinstance(label, bool) or not isinstance(label, int)
                                  or not 0 <= label <= 9):
            raise ValueError(f"{what}: label must be an integer 0-9 (or absent); got {label!r}")
        record = dict(raw)
        record["label"] = label
        record["strokes"] = as_strokes(raw["strokes"], what)
        records.append(record)
    return records


PEN_DIGITS = Path(__file__).resolve().parent / "pen_digits"
"""The real pen digits that come with cnnlib (package data; README.md there gives the credit)."""

PEN_DIGIT_SETS = {
    # name: (file, SHA-256 of the uncompressed JSON, as published with the data)
    "dev": ("unipen-digits-dev.json.gz",
            "d9aa17393e7e0eb58d47f262bacec427141b1c83e18577eaf80b67c035c86f00"),
    "train": ("unipen-digits-train.json.gz",
              "a3b9de1ee78a7059a0c6f42dd94e39bb5545012b59dbd7763701b62d8b9fcfee"),
}


def load_pen_digits(name: str = "dev") -> list[dict]:
    """The shipped UNIPEN digits, checked against their SHA-256 before use.

    name: "dev" (600 digits, 24 writers: development and the tests) or "train" (7,804 digits, 123
    other writers). Returns the records as ``load_strokes`` does, each with its "writer".
    """
    if name not in PEN_DIGIT_SETS:
        raise ValueError(f"no pen-digit set {name!r}; choose one of {', '.join(PEN_DIGIT_SETS)}")
    file_name, expected = PEN_DIGIT_SETS[name]
    path = PEN_DIGITS / file_name
    if not path.is_file():
        raise FileNotFoundError(f"the pen digits {path} are missing from this cnnlib; reinstall "
                                "it (pip install -e . from the repository)")
    raw_bytes = gzip.decompress(path.read_bytes())
    digest = hashlib.sha256(raw_bytes).hexdigest()
    if digest != expected:
        raise ValueError(f"the pen digits {path} are damaged: SHA-256 {digest}, expected "
                         f"{expected}; restore the file (git checkout -- {file_name})")
    return _parse_records(raw_bytes, path)


class _LongInteger(str):
    """A JSON integer too long for ``int`` (Python refuses more than 4,300 digits), kept as its
    digits so that the check of the record it sits in names the file and the record."""

    def __repr__(self):
        return f"an integer of {len(self.lstrip('-')):,} digits"


def _parse_int(digits: str):
    try:
        return int(digits)
    except ValueError:
        return _LongInteger(digits)


def records_to_images(records, method: str = DEFAULT_METHOD, box_size: float = 280,
                      **options) -> np.ndarray:
    """Replay recorded digits through the widget's pipeline: ``fit_to_box`` then the method.

    records: dicts with "strokes" (as from ``load_strokes``). ``options`` go to the method's
    function (e.g. ``width=2.5`` for "mnist") for tuning; without them this is ``preprocess``.
    Returns float32 (N, 1, 24, 24), ready for ``net.predict_proba``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown pre-processing method {method!r}; "
                         f"expected one of {sorted(METHODS)}")
    function = METHODS[method]
    images = np.empty((len(records), 1, IMAGE_SIZE, IMAGE_SIZE), dtype=np.float32)
    for i, record in enumerate(records):
        fitted = fit_to_box(record["strokes"], box_size)
        images[i, 0] = function(fitted, (box_size, box_size), **options)
    return images


# ---------------------------------------------------------------------------------------------
# The writer split of the real pen digits (load_pen_digits("dev"))

TUNING_WRITERS = frozenset({
    "aga/AnnZchrl", "apa/JeanHale", "apb/Diane_Figueira", "app/BryanMacDonald", "art/writer01",
    "ced/AYML3525", "ibm/r01-04", "ibm/r02-04", "ibm/r03-12", "imp/ostrowski", "pri/150",
    "syn/lvh",
})
"""The 12 writers whose digits the pre-processing was tuned on: the dev set's 24 writers sorted
by name, every other one starting with the first. The other 12 are held out: never looked at
while tuning, only measured."""


def split_by_writer(records) -> tuple[list[dict], list[dict]]:
    """(tuning records, held-out records) by ``TUNING_WRITERS``; records need a "writer" key."""
    tuning, held_out = [], []
    for index, record in enumerate(records):
        if "writer" not in record:
            raise ValueError(f"record {index} has no \"writer\"; split_by_writer needs one")
        (tuning if record["writer"] in TUNING_WRITERS else held_out).append(record)
    return tuning, held_out


# ---------------------------------------------------------------------------------------------
# Classifying recorded digits and scoring the result


def classify_records(net, records, method: str = DEFAULT_METHOD, box_size: float = 280,
                     **options) -> np.ndarray:
    """Class probabilities (N, 10) for recorded digits, through exactly the widget's pipeline.

    net: anything with ``predict_proba(x: (N, 1, 24, 24)) -> (N, 10)`` (a ``Sequential``).
    records, method, box_size, options: as in ``records_to_images``.
    """
    return net.predict_proba(records_to_images(records, method, box_size, **options))


def score(probabilities: np.ndarray, records) -> dict:
    """Accuracy figures of predictions on recorded digits.

    probabilities: (N, 10) from ``classify_records``; records: the N records (labels may be None).
    Returns a dict:
        n: number of digits; labelled: how many have a label
        accuracy: fraction right among the labelled digits (None without labels)
        per_digit: {digit: (right, count)} for the labelled digits
        multi_stroke / single_stroke: (right, count) over labelled digits of 2+ strokes / 1 stroke
        rejection_rate: fraction of all digits whose top probability is below ``REJECT_BELOW``
            (the original demo answers "?" for those)
    Rejected digits still count in the accuracy with their top guess.
    """
    probabilities = np.asarray(probabilities)
    if probabilities.ndim != 2 or len(probabilities) != len(records):
        raise ValueError(f"score expects probabilities (N, K) for N = {len(records)} records; "
                         f"got shape {probabilities.shape}")
    predictions = probabilities.argmax(axis=1)
    labels = np.array([-1 if r.get("label") is None else r["label"] for r in records])
    n_strokes = np.array([len(r["strokes"]) for r in records])
    labelled = labels >= 0
    right = (predictions == labels) & labelled

    def tally(mask):
        return int(right[mask].sum()), int((mask & labelled).sum())

    return {
        "n": len(records),
        "labelled": int(labelled.sum()),
        "accuracy": float(right.sum() / labelled.sum()) if labelled.any() else None,
        "per_digit": {d: tally(labels == d) for d in range(10) if (labels == d).any()},
        "multi_stroke": tally(n_strokes > 1),
        "single_stroke": tally(n_strokes == 1),
        "rejection_rate": float((probabilities.max(axis=1) < REJECT_BELOW).mean()),
    }
