"""The learner's own operations (cnnlib.learner): saved from their source, loaded back, plugged in."""

import numpy as np
import pytest

from cnnlib.exercises import check_linear_backward, check_softmax_cross_entropy
from cnnlib.layers import Linear
from cnnlib.learner import load_functions, save_functions
from cnnlib.ops import ops


def linear_forward(x, W, b):
    """x: (N, D), W: (M, D), b: (M,) -> out: (N, M), cache."""
    ### BEGIN SOLUTION
    return x @ W.T + b, (x, W)
    ### END SOLUTION


def linear_backward(dout, cache, input_grad=True):
    x, W = cache
    return (dout @ W if input_grad else None), dout.T @ x, dout.sum(axis=0)


def _helper(scores):
    return scores - scores.max(axis=1, keepdims=True)


def softmax_cross_entropy(scores, y):
    shifted = _helper(scores)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    rows = np.arange(len(y))
    dscores = np.exp(log_p)
    dscores[rows, y] -= 1
    return float(-log_p[rows, y].mean()), dscores / len(y)


def test_saved_functions_load_back_and_run_the_layers(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    line = save_functions("my_ops_02.py", linear_forward, linear_backward)
    assert line == "saved linear_forward, linear_backward to my_ops_02.py"
    text = (tmp_path / "my_ops_02.py").read_text()
    assert "import numpy as np" in text and "BEGIN SOLUTION" not in text
    assert list(tmp_path.iterdir()) == [tmp_path / "my_ops_02.py"]  # no temporary file left
    mine = load_functions()
    assert mine.linear_forward is not linear_forward
    assert check_linear_backward(mine.linear_forward, mine.linear_backward).endswith(
        "match the numerical gradients)")
    layer = Linear(5, 3, rng=np.random.default_rng(0), dtype=np.float64)
    x = np.random.default_rng(1).normal(size=(4, 5))
    expected = layer.forward(x)
    with ops.plug(mine):
        assert ops.linear_forward is mine.linear_forward
        np.testing.assert_array_equal(layer.forward(x), expected)
    assert not ops.plugged()


def test_a_helper_must_be_saved_too(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ValueError, match="softmax_cross_entropy uses _helper, which would not be "
                                         "in my_ops_02.py: pass it to save_functions too"):
        save_functions("my_ops_02.py", softmax_cross_entropy)
    assert not (tmp_path / "my_ops_02.py").exists()
    save_functions("my_ops_02.py", _helper, softmax_cross_entropy)
    assert check_softmax_cross_entropy(load_functions().softmax_cross_entropy)


def test_later_files_add_to_earlier_ones(tmp_path):
    save_functions(tmp_path / "my_ops_02.py", linear_forward, linear_backward)
    save_functions(tmp_path / "my_ops_03.py", _helper, softmax_cross_entropy)
    assert sorted(vars(load_functions(tmp_path))) == \
        ["_helper", "linear_backward", "linear_forward", "softmax_cross_entropy"]


def test_nothing_saved_yet_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match="run the last cell of notebooks 02 to 06 first"):
        load_functions(tmp_path)
