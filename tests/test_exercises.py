"""The exercises: the grader's cases hold for the engine's own classes, and it tells right from wrong."""
import ast
import importlib
import inspect
import subprocess
import sys

import numpy as np
import pytest

from tinygan import backend, exercises


@pytest.mark.parametrize("case", exercises.CASES, ids=lambda case: case.name)
def test_the_engine_passes_every_case_the_students_get(path, case):
    module_name, class_name = exercises.EXERCISES[case.exercise]
    cls = getattr(importlib.import_module(module_name), class_name)
    with backend.default_dtype(np.float64):
        assert exercises._verdict(case, cls) is None


def solution_body(module_name, class_name):
    """The engine's own backward body (Conv2D's readable one), with the docstring and check_dout line left out."""
    node = next(n for n in ast.parse(inspect.getsource(importlib.import_module(module_name))).body
                if isinstance(n, ast.ClassDef) and n.name == class_name)
    methods = {m.name: m for m in node.body if isinstance(m, ast.FunctionDef)}
    method = methods.get("_backward_readable", methods["backward"])
    body = [statement for statement in method.body
            if not (isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant))
            and "check_dout" not in ast.unparse(statement)]
    return "\n".join("        " + line for statement in body for line in ast.unparse(statement).splitlines())


def solve(directory, file_name, body=None):
    """Put a backward body where the copy's NotImplementedError is."""
    module_name, class_name = exercises.EXERCISES[file_name]
    path = directory / file_name
    source = path.read_text()
    stub = '        raise NotImplementedError("not written yet")'
    assert source.count(stub) == 1
    path.write_text(source.replace(stub, body or solution_body(module_name, class_name)))


def grade(directory, *arguments):
    return subprocess.run([sys.executable, "-m", "tinygan", "exercises", "grade", str(directory), *arguments],
                          capture_output=True, text=True, timeout=300)


def test_start_copies_the_classes_without_their_backward_and_keeps_a_students_work(tmp_path):
    exercises.start(tmp_path)
    conv = (tmp_path / "conv2d.py").read_text()
    assert "def _backward_readable" not in conv and "dY @ col.T" not in conv   # no solution left in the copy
    assert "What forward left on self: self.readable, self.image_size, self.col." in conv
    assert "from tinygan.kernels import col2im, im2col, matmul, output_size" in conv
    assert "class SoftmaxCrossEntropy" not in (tmp_path / "bce.py").read_text()
    (tmp_path / "dense.py").write_text("# my work")
    with pytest.raises(exercises.ExerciseError, match="already exist: your work is kept"):
        exercises.start(tmp_path)
    assert (tmp_path / "dense.py").read_text() == "# my work"


def test_the_grader_passes_solved_copies_and_names_each_failing_case(tmp_path):
    exercises.start(tmp_path)
    result = grade(tmp_path)
    assert result.returncode == 1
    assert "FAIL Dense(5, 3) on a batch of 4: backward is not written yet" in result.stdout
    assert "0 of 23 cases pass" in result.stdout

    for file_name in exercises.EXERCISES:
        solve(tmp_path, file_name)
    result = grade(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "23 of 23 cases pass: every backward is right" in result.stdout


def test_the_grader_catches_the_usual_mistakes(tmp_path):
    exercises.start(tmp_path)
    # Assigning instead of adding: one backward is right, two are not.
    solve(tmp_path, "dense.py", "        self.grads['W'] = self.x.T @ dout\n        self.grads['b'] = dout.sum(axis=0)\n"
                                "        return dout @ self.params['W'].T")
    # The sum instead of the mean: off by the batch size.
    solve(tmp_path, "bce.py", "        from tinygan.layers.activations import stable_sigmoid\n"
                              "        return stable_sigmoid(self.logits) - self.targets")
    # BatchNorm's backward without the terms through the mean and the variance.
    solve(tmp_path, "batchnorm.py", "        gamma, _ = self._affine(dout)\n"
                                    "        return (gamma * self.inverse_std)[None, :] * dout if dout.ndim == 2 else "
                                    "(gamma * self.inverse_std)[None, :, None, None] * dout")
    result = grade(tmp_path, "--only", "dense", "--only", "bce", "--only", "batchnorm")
    lines = result.stdout.splitlines()
    assert result.returncode == 1
    assert "ok   Dense(5, 3) on a batch of 4" in lines
    assert any(line.startswith("FAIL Dense: two backward passes add up: two backward passes should add their "
                               "gradients") for line in lines), result.stdout
    assert any(line.startswith("FAIL Dense: requires_grad = False: with requires_grad = False, backward must "
                               "leave grads alone") for line in lines), result.stdout
    assert any(line.startswith("FAIL BCEWithLogits on (8, 1), targets 0 and 1: BCEWithLogits gradient of the "
                               "logits") and "worst element" in line for line in lines), result.stdout
    assert any(line.startswith("FAIL BatchNorm(3) on (8, 3), training: BatchNorm gradient of the input")
               for line in lines), result.stdout
    assert "ok   BatchNorm(2) on (4, 2, 2, 2), eval mode (running statistics)" not in lines   # grads never filled
    assert "Traceback" not in result.stdout + result.stderr


def test_a_broken_file_is_one_line_and_the_others_are_still_graded(tmp_path):
    exercises.start(tmp_path)
    (tmp_path / "dense.py").write_text("class Dense(:\n")
    solve(tmp_path, "bce.py")
    result = grade(tmp_path, "--only", "dense", "--only", "bce")
    assert "FAIL Dense: " in result.stdout and "does not import" in result.stdout
    assert result.stdout.count("ok   BCEWithLogits") == 4
    assert "Traceback" not in result.stdout + result.stderr
