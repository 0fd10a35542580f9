"""Exercises: write the backward passes of Dense, Conv2D, BatchNorm and BCEWithLogits yourself.

    python -m tinygan exercises start my_exercises    # copies of the four, backward bodies removed
    python -m tinygan exercises grade my_exercises    # the engine's property checks, case by case

``start`` copies each class's source out of the engine, so the copies never
drift from it: the forward pass, the docstring with the formulas, the
constructor; only the body of ``backward`` is gone (and Conv2D's second,
readable backward, which would give the answer away, and its Winograd branch,
which a backward written for the columns could not follow: tinygan/winograd.py).
A comment in its place names what forward left on the object for backward to use.

``grade`` imports your files and runs the checks the engine's own tests run
(tests/test_exercises.py grades the engine's classes with these same cases):
central differences in float64 for the input and every parameter, over
several shapes and settings, and the layer contract (gradients add up over
two backward passes, ``requires_grad`` and ``needs_input_grad`` are obeyed).
Each case prints ok or what failed; the reference solutions stay where they
are, in tinygan/layers and tinygan/losses.py.
"""
from __future__ import annotations

import ast
import importlib.util
import inspect
import re
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np

from . import backend
from .gradcheck import GradientCheckError, check_layer_gradients, check_loss_gradient

EXERCISES = {   # file -> (module the class lives in, class name)
    "dense.py": ("tinygan.layers.dense", "Dense"),
    "conv2d.py": ("tinygan.layers.conv2d", "Conv2D"),
    "batchnorm.py": ("tinygan.layers.batchnorm", "BatchNorm"),
    "bce.py": ("tinygan.losses", "BCEWithLogits"),
}


class ExerciseError(ValueError):
    """A problem with the exercise directory, told in one line."""


# ---------------------------------------------------------------- start: the copies

def _assigned_attributes(function: ast.FunctionDef) -> list[str]:
    """The names X of every ``self.X = ...`` in a function, in order, once each."""
    names = []
    for node in ast.walk(function):
        targets = node.targets if isinstance(node, ast.Assign) else []
        for target in targets:
            for element in (target.elts if isinstance(target, ast.Tuple) else [target]):
                if (isinstance(element, ast.Attribute) and isinstance(element.value, ast.Name)
                        and element.value.id == "self" and element.attr not in names):
                    names.append(element.attr)
    return names


def _absolute_import(node: ast.ImportFrom, package: str) -> str:
    module = importlib.util.resolve_name("." * node.level + (node.module or ""), package)
    return ast.unparse(ast.ImportFrom(module=module, names=node.names, level=0)) + "\n"


def exercise_source(module_name: str, class_name: str) -> str:
    """The module's source with only ``class_name`` kept, its backward emptied, imports made absolute."""
    module = importlib.import_module(module_name)
    source = inspect.getsource(module)
    lines = source.splitlines(keepends=True)
    tree = ast.parse(source)
    package = module_name.rpartition(".")[0]

    def text(node):
        first = min([node.lineno] + [decorator.lineno for decorator in getattr(node, "decorator_list", [])])
        return "".join(lines[first - 1:node.end_lineno])

    out = [f'"""Exercise: write {class_name}.backward. Grade it with `python -m tinygan exercises grade DIR`.\n\n'
           f'A copy of {module_name} with the body of backward removed; the solution is in that module.\n"""\n']
    for node in tree.body:
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and node is tree.body[0]:
            continue   # the module docstring, replaced above
        if isinstance(node, ast.ImportFrom) and node.level > 0:
            out.append(_absolute_import(node, package))
        elif isinstance(node, ast.ClassDef):
            if node.name == class_name:
                out.append("\n\n" + _class_with_empty_backward(node, lines))
        elif isinstance(node, (ast.FunctionDef, ast.Assign)):
            out.append("\n\n" + text(node))
        else:
            out.append(text(node))
    return "".join(out)


def _class_with_empty_backward(node: ast.ClassDef, lines: list[str]) -> str:
    methods = {item.name: item for item in node.body if isinstance(item, ast.FunctionDef)}
    cached = [name for method in ("forward", "_forward_readable") if method in methods
              for name in _assigned_attributes(methods[method])]
    cached = list(dict.fromkeys(name for name in cached if not name.startswith("_") and name != "winograd"))
    backward = methods["backward"]
    # (first, last) line of each part left out: the other backwards, and forward's Winograd branch
    dropped = [(item.lineno, item.end_lineno) for item in node.body if isinstance(item, ast.FunctionDef)
               and (item.name.startswith("_backward") or item.name == "_winograd")]
    dropped += [(item.lineno, item.end_lineno) for item in methods["forward"].body
                if isinstance(item, ast.If) and "winograd" in ast.unparse(item)]
    result, skip_until = [], 0
    for number in range(node.lineno, node.end_lineno + 1):   # 1-based line numbers
        if number <= skip_until:
            continue
        for first, last in dropped:
            if first == number:
                skip_until = last
        if number <= skip_until:
            continue
        if number == backward.body[0].lineno:
            result.append(_stub(backward, lines, cached))
            skip_until = backward.end_lineno
            continue
        result.append(lines[number - 1])
    return re.sub(r"\n{3,}", "\n\n", "".join(result))   # no double gap where a method was dropped


def _stub(backward: ast.FunctionDef, lines: list[str], cached: list[str]) -> str:
    indent = " " * backward.body[0].col_offset
    first = backward.body[0]
    keep = ""
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant):    # a docstring stays
        keep = "".join(lines[first.lineno - 1:first.end_lineno])
        first = backward.body[1] if len(backward.body) > 1 else None
    if first is not None and "check_dout" in ast.unparse(first):                   # the contract's first line stays
        keep += "".join(lines[first.lineno - 1:first.end_lineno])
    name = ast.unparse(backward.args.args[0]) if backward.args.args else "self"
    return (keep
            + f"{indent}# Exercise: your code here. What forward left on {name}: "
            + ", ".join(f"{name}.{attribute}" for attribute in cached) + ".\n"
            + (f"{indent}# Add parameter gradients into self.grads (only if self.requires_grad); return dL/d(input)\n"
               f"{indent}# (None if self.needs_input_grad is False). The contract: tinygan/layers/layer.py.\n"
               if "dout" in ast.unparse(backward.args) else
               f"{indent}# Return dL/d(logits) of the mean loss, the logits' shape.\n")
            + f"{indent}raise NotImplementedError(\"not written yet\")\n")


def start(directory, force=False) -> list[Path]:
    """Write the four exercise files into ``directory``; refuse to overwrite a student's work."""
    directory = Path(directory)
    targets = [directory / name for name in EXERCISES]
    existing = [str(path) for path in targets if path.exists()]
    if existing and not force:
        raise ExerciseError(f"{', '.join(existing)} already exist: your work is kept; grade it with "
                            f"`python -m tinygan exercises grade {directory}`, or pass --force to start over")
    directory.mkdir(parents=True, exist_ok=True)
    for path, (module_name, class_name) in zip(targets, EXERCISES.values()):
        path.write_text(exercise_source(module_name, class_name))
    return targets


# ---------------------------------------------------------------- grade: the cases

@dataclass
class Case:
    exercise: str               # file name in EXERCISES
    name: str
    run: Callable[[type], None]  # takes the class under test; raises on failure


def _float64(make):
    with backend.default_dtype(np.float64):
        return make()


def _input(shape, seed=0):
    return backend.to_device(np.random.default_rng(seed).standard_normal(shape))


def _forwarded(make, cls, shape):
    """(layer, x, dy): a float64 layer of the class under test, after one forward of x; dy shaped like its output."""
    layer = _float64(lambda: make(cls))
    x = _input(shape)
    return layer, x, _input(layer.forward(x).shape, seed=1)


def _gradients(make, shape, training=True, prepare=None):
    def run(cls):
        layer = _float64(lambda: make(cls))
        if prepare:
            prepare(layer)
        check_layer_gradients(layer, _input(shape), training=training)
    return run


def _grads_add_up(make, shape):
    """Two backward passes (two forwards) of the same batch give twice the gradients of one."""
    def run(cls):
        layer, x, dy = _forwarded(make, cls, shape)
        layer.zero_grad()
        layer.backward(dy)
        once = {key: backend.as_numpy(grad).copy() for key, grad in layer.grads.items()}
        layer.forward(x)
        layer.backward(dy)
        for key, grad in layer.grads.items():
            if not np.allclose(backend.as_numpy(grad), 2 * once[key], rtol=1e-12, atol=1e-14):
                raise GradientCheckError(f"two backward passes should add their gradients, but grads[{key!r}] is "
                                         f"not twice one pass's: backward must add into grads (+=), not assign")
    return run


def _requires_grad_off(make, shape):
    def run(cls):
        layer, x, dy = _forwarded(make, cls, shape)
        expected = layer.backward(dy)
        layer.zero_grad()
        layer.requires_grad = False
        layer.forward(x)
        dx = layer.backward(dy)
        touched = [key for key, grad in layer.grads.items() if np.any(backend.as_numpy(grad) != 0)]
        if touched:
            raise GradientCheckError(f"with requires_grad = False, backward must leave grads alone, but it "
                                     f"changed {', '.join(touched)}")
        if dx is None or not np.allclose(backend.as_numpy(dx), backend.as_numpy(expected), rtol=1e-12):
            raise GradientCheckError("with requires_grad = False, backward must still return dL/dx, unchanged")
    return run


def _no_input_grad(make, shape):
    def run(cls):
        layer, _, dy = _forwarded(make, cls, shape)
        layer.needs_input_grad = False
        dx = layer.backward(dy)
        if dx is not None:
            raise GradientCheckError("with needs_input_grad = False, backward should skip dL/dx and return None")
        if not any(np.any(backend.as_numpy(grad) != 0) for grad in layer.grads.values()):
            raise GradientCheckError("with needs_input_grad = False, the parameter gradients are still needed")
    return run


def _loss_gradient(logits_shape, targets, scale=3.0):
    def run(cls):
        rng = np.random.default_rng(7)
        logits = backend.to_device(rng.standard_normal(logits_shape) * scale)
        goal = targets(rng, logits_shape)
        check_loss_gradient(cls(), logits, goal if np.isscalar(goal) else backend.to_device(goal))
    return run


def _random_running_statistics(layer):
    rng = np.random.default_rng(3)
    layer.buffers["running_mean"] = backend.to_device(rng.standard_normal(layer.num_features))
    layer.buffers["running_var"] = backend.to_device(rng.uniform(0.5, 2.0, layer.num_features))


def _cases() -> list[Case]:
    def built(*args, **kwargs):   # a maker: the class under test in, a layer out
        return lambda cls: cls(*args, **kwargs)

    cases = [
        Case("dense.py", "Dense(5, 3) on a batch of 4", _gradients(built(5, 3), (4, 5))),
        Case("dense.py", "Dense(7, 1, bias=False) on a batch of 1", _gradients(built(7, 1, bias=False), (1, 7))),
        Case("dense.py", "Dense(3, 8) on a batch of 16", _gradients(built(3, 8), (16, 3))),
        Case("dense.py", "Dense: two backward passes add up", _grads_add_up(built(4, 2), (3, 4))),
        Case("dense.py", "Dense: requires_grad = False", _requires_grad_off(built(4, 2), (3, 4))),
        Case("dense.py", "Dense: needs_input_grad = False", _no_input_grad(built(4, 2), (3, 4))),
        Case("conv2d.py", "Conv2D(1, 2, 3) on 2 x 1 x 5 x 5", _gradients(built(1, 2, 3), (2, 1, 5, 5))),
        Case("conv2d.py", "Conv2D(3, 4, 5, stride=2, padding=2) on 2 x 3 x 8 x 8",
             _gradients(built(3, 4, 5, stride=2, padding=2), (2, 3, 8, 8))),
        Case("conv2d.py", "Conv2D(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False) on 1 x 2 x 7 x 6",
             _gradients(built(2, 3, (3, 2), stride=(2, 1), padding=(1, 0), bias=False), (1, 2, 7, 6))),
        Case("conv2d.py", "Conv2D(2, 2, 3, stride=2) on 3 x 2 x 6 x 6 (a row and a column left over)",
             _gradients(built(2, 2, 3, stride=2), (3, 2, 6, 6))),
        Case("conv2d.py", "Conv2D: two backward passes add up", _grads_add_up(built(2, 3, 3, padding=1), (2, 2, 4, 4))),
        Case("conv2d.py", "Conv2D: requires_grad = False", _requires_grad_off(built(2, 3, 3), (2, 2, 4, 4))),
        Case("conv2d.py", "Conv2D: needs_input_grad = False", _no_input_grad(built(2, 3, 3), (2, 2, 4, 4))),
        Case("batchnorm.py", "BatchNorm(3) on (8, 3), training", _gradients(built(3), (8, 3))),
        Case("batchnorm.py", "BatchNorm(4) on (2, 4, 3, 3), training", _gradients(built(4), (2, 4, 3, 3))),
        Case("batchnorm.py", "BatchNorm(3, affine=False) on (5, 3), training",
             _gradients(built(3, affine=False), (5, 3))),
        Case("batchnorm.py", "BatchNorm(2) on (4, 2, 2, 2), eval mode (running statistics)",
             _gradients(built(2), (4, 2, 2, 2), training=False, prepare=_random_running_statistics)),
        Case("batchnorm.py", "BatchNorm: two backward passes add up", _grads_add_up(built(3), (6, 3))),
        Case("batchnorm.py", "BatchNorm: requires_grad = False", _requires_grad_off(built(3), (6, 3))),
        Case("bce.py", "BCEWithLogits on (8, 1), targets 0 and 1",
             _loss_gradient((8, 1), lambda rng, shape: rng.integers(0, 2, shape).astype(float))),
        Case("bce.py", "BCEWithLogits with soft targets (label smoothing)",
             _loss_gradient((6, 1), lambda rng, shape: rng.uniform(0, 1, shape))),
        Case("bce.py", "BCEWithLogits with a scalar target 1.0 (the generator's loss)",
             _loss_gradient((5, 1), lambda rng, shape: 1.0)),
        Case("bce.py", "BCEWithLogits at logits near +-40 (where a sigmoid rounds to 0 or 1)",
             _loss_gradient((6, 1), lambda rng, shape: rng.integers(0, 2, shape).astype(float), scale=40.0)),
    ]
    return cases


CASES = _cases()


def load_class(path: Path, class_name: str):
    """Import a student's file by path and return its class; one-line errors for the usual faults."""
    if not path.is_file():
        raise ExerciseError(f"{path} does not exist: make the exercises with "
                            f"`python -m tinygan exercises start {path.parent}`")
    spec = importlib.util.spec_from_file_location(f"tinygan_exercise_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except Exception as error:   # a syntax error or a typo in the student's file: say where, go on grading
        where = traceback.extract_tb(error.__traceback__)[-1] if error.__traceback__ else None
        line = f" (line {where.lineno})" if where and where.filename == str(path) else ""
        raise ExerciseError(f"{path} does not import{line}: {type(error).__name__}: {error}") from None
    if not hasattr(module, class_name):
        raise ExerciseError(f"{path} has no class {class_name}")
    return getattr(module, class_name)


def grade(directory, only=None, out=print) -> tuple[int, int]:
    """Run every case on the student's classes; print one line each; return (passed, total)."""
    directory = Path(directory)
    passed = total = 0
    for file_name, (_, class_name) in EXERCISES.items():
        if only and Path(file_name).stem not in only:
            continue
        cases = [case for case in CASES if case.exercise == file_name]
        total += len(cases)
        try:
            cls = load_class(directory / file_name, class_name)
        except ExerciseError as error:
            out(f"FAIL {class_name}: {error}")
            continue
        for case in cases:
            with backend.default_dtype(np.float64):
                verdict = _verdict(case, cls)
            passed += verdict is None
            out(f"ok   {case.name}" if verdict is None else f"FAIL {case.name}: {verdict}")
    return passed, total


def _verdict(case, cls):
    """None when the case passes, else one line saying why."""
    try:
        case.run(cls)
    except NotImplementedError:
        return "backward is not written yet"
    except GradientCheckError as error:
        return str(error)
    except Exception as error:   # the student's code raised: name the error and the line of their file
        frames = [frame for frame in traceback.extract_tb(error.__traceback__)
                  if "tinygan_exercise" in frame.filename or Path(frame.filename).parent.name != "tinygan"]
        where = next((f" at {Path(frame.filename).name}:{frame.lineno}" for frame in reversed(frames)
                      if not frame.filename.startswith(str(Path(__file__).parent))), "")
        return f"{type(error).__name__}{where}: {error}"
    return None

