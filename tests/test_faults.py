"""Faults a real user meets: concurrent runs, interrupts mid-write, kills, damaged files, absurd options.

Whatever happens, a run directory is intact or reported as not, in one line naming the file.
"""
import gzip
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from conftest import SHARED_MNIST, idx_bytes, requires_mnist
from test_cli import QUICK, checkpoint_arrays, run_main, tinygan
from tinygan.interrupts import StopOnRequest

pytestmark = requires_mnist
ROOT = Path(__file__).resolve().parents[1]


def one_line_error(code, err, *fragments):
    assert code not in (0, None), err
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    for fragment in fragments:
        assert fragment in err, err


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory):
    """A one-epoch mlp run to damage copies of."""
    run_dir = tmp_path_factory.mktemp("finished") / "run"
    result = tinygan("train", "--arch", "mlp", "--epochs", 1, "--out", run_dir, "--quiet", *QUICK)
    assert result.returncode == 0, result.stderr
    return run_dir


@pytest.fixture
def run_copy(finished_run, tmp_path):
    copy = tmp_path / "run"
    shutil.copytree(finished_run, copy)
    return copy


# --- concurrent runs ------------------------------------------------------------------------------------------

def default_sigint():
    """Give the child Python's own Ctrl-C handling: a shell without job control (CI runs in one, in the
    background) starts its children with SIGINT ignored, and Python then installs no KeyboardInterrupt."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def start_training(run_dir, *extra):
    return subprocess.Popen([sys.executable, "-m", "tinygan", "train", "--arch", "mlp", "--out", str(run_dir),
                             "--quiet", *QUICK, *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            preexec_fn=default_sigint)


def wait_for(path, process, seconds=120):
    deadline = time.monotonic() + seconds
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.05)


def test_two_trainings_into_one_directory_the_second_is_refused(tmp_path):
    run_dir = tmp_path / "run"
    first = start_training(run_dir, "--epochs", "40")
    wait_for(run_dir / "config.json", first)
    second = tinygan("train", "--arch", "mlp", "--out", run_dir, "--epochs", 2, "--quiet", *QUICK)
    one_line_error(second.returncode, second.stderr, f"{run_dir} is in use by another tinygan process (pid "
                                                      f"{first.pid})")
    wait_for(run_dir / "checkpoint.npz", first)
    resumed = tinygan("train", "--resume", run_dir, "--epochs", 50)   # a resume of a run still training too
    one_line_error(resumed.returncode, resumed.stderr, "is in use by another tinygan process")
    assert first.poll() is None, "the first training ended before the second was refused: give it more epochs"
    first.send_signal(signal.SIGINT)   # the refused ones did not disturb it: it stops cleanly, as after Ctrl-C
    _, err = first.communicate(timeout=600)
    assert first.returncode == 130, err
    config = json.loads((run_dir / "config.json").read_text())
    epoch = int(checkpoint_arrays(run_dir)["generator_optimizer/steps"]) // 2   # 2 steps an epoch
    assert config["epochs"] == 40 and 1 <= epoch < 40
    assert tinygan("sample", "--checkpoint", run_dir, "--n", 4, "--out", tmp_path / "x.npy").returncode == 0
    assert tinygan("train", "--resume", run_dir, "--epochs", epoch + 1, "--quiet").returncode == 0   # lock free


def test_a_killed_training_leaves_no_lock_and_its_part_files_are_removed(tmp_path, capsys):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, "--epochs", "200")
    wait_for(run_dir / "checkpoint.npz", process)
    process.kill()   # kill -9: no cleanup runs
    process.communicate()
    leftovers = [run_dir / ".checkpoint.npz.x1.part", run_dir / "samples" / ".epoch_002.png.x2.part"]
    for path in leftovers:
        path.write_bytes(os.urandom(1000))   # what a kill during write_atomically leaves
    code, out, err = run_main(capsys, "train", "--resume", run_dir, "--epochs", 1)   # claims the run, trains nothing
    assert code == 0 and "ask for more with --epochs" in out, err
    assert not any(path.exists() for path in leftovers)


# --- interrupts -------------------------------------------------------------------------------------------------

# A real SIGINT, delivered where an immediate KeyboardInterrupt did harm: in the middle of the checkpoint's write
# (it abandoned the epoch's work), and inside a class being built, as matplotlib's first import builds many at the
# end of epoch 1 (Python 3.11 wraps it in a RuntimeError, and the user got a traceback; CI met this once).
INTERRUPT_INSIDE = """
import os, signal, sys
import numpy as np
from tinygan import cli, images, trainer

def interrupt():
    os.kill(os.getpid(), signal.SIGINT)
    sum(range(10000))   # Python runs the handler between bytecodes: it lands here

real_savez, real_plot = np.savez, images.plot_losses
def savez_interrupted(stream, **arrays):
    interrupt()
    real_savez(stream, **arrays)
def plot_interrupted(*args):
    class Descriptor:
        def __set_name__(self, owner, name):
            interrupt()
    class Formatter:
        format = Descriptor()
    return real_plot(*args)
if sys.argv[1] == "checkpoint":
    trainer.np.savez = savez_interrupted
else:
    images.plot_losses = plot_interrupted
cli.main(sys.argv[2:])
"""


@pytest.mark.parametrize("where", ["checkpoint", "class-body"])
def test_ctrl_c_inside_a_write_or_an_import_finishes_the_epoch_and_stops_with_its_checkpoint(tmp_path, where):
    run_dir = tmp_path / "run"
    result = subprocess.run([sys.executable, "-c", INTERRUPT_INSIDE, where, "train", "--arch", "mlp",
                             "--epochs", "3", "--out", str(run_dir), "--quiet", *QUICK],
                            capture_output=True, text=True, timeout=600, preexec_fn=default_sigint)
    one_line_error(result.returncode, result.stderr, f"interrupted; the checkpoint of epoch 1 in {run_dir} is intact")
    assert result.returncode == 130
    assert int(checkpoint_arrays(run_dir)["generator_optimizer/steps"]) == 2   # epoch 1's, whole
    assert not list(run_dir.rglob("*.part"))


def send_sigint_to_this_process():
    os.kill(os.getpid(), signal.SIGINT)
    sum(range(10000))   # Python runs the handler between bytecodes: it lands here


def test_a_second_ctrl_c_stops_at_once_and_an_ignored_one_stays_ignored():
    # Python's own handler, as in a terminal: pytest started in the background (`nohup`, `cmd &` in a
    # script) inherits SIGINT ignored, and StopOnRequest rightly leaves that alone.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with StopOnRequest() as stop:
            send_sigint_to_this_process()
            assert stop.requested   # recorded, not raised
            with pytest.raises(KeyboardInterrupt):
                send_sigint_to_this_process()
            with pytest.raises(KeyboardInterrupt):
                stop.stop_if_requested()
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler

        signal.signal(signal.SIGINT, signal.SIG_IGN)   # a run started in the background
        with StopOnRequest() as stop:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            send_sigint_to_this_process()
            stop.stop_if_requested()   # nothing was requested
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_sigint_of_a_real_process_ends_with_130_and_one_line(tmp_path):
    run_dir = tmp_path / "run"
    process = start_training(run_dir, "--epochs", "200")
    wait_for(run_dir / "checkpoint.npz", process)
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=120)
    one_line_error(process.returncode, err, "interrupted; the checkpoint of epoch")
    assert process.returncode == 130
    saved = int(err.split("checkpoint of epoch ")[1].split()[0])
    assert int(checkpoint_arrays(run_dir)["generator_optimizer/steps"]) == 2 * saved   # the promise is true


# --- damaged checkpoints and configs ----------------------------------------------------------------------------

def sample_and_resume(run_dir, capsys):
    """(sample's (code, err), resume's (code, err))."""
    sampled = run_main(capsys, "sample", "--checkpoint", run_dir, "--n", 4, "--out", run_dir.parent / "s.npy")
    resumed = run_main(capsys, "train", "--resume", run_dir, "--epochs", 2, "--quiet")
    return (sampled[0], sampled[2]), (resumed[0], resumed[2])


@settings(max_examples=12, deadline=None)
@given(data=st.data())
def test_truncated_or_bit_flipped_checkpoints_are_named_never_loaded_wrongly(finished_run, tmp_path_factory, data):
    run_dir = tmp_path_factory.mktemp("damaged") / "run"
    shutil.copytree(finished_run, run_dir)
    path = run_dir / "checkpoint.npz"
    original = path.read_bytes()
    if data.draw(st.booleans(), label="truncate"):
        damaged = original[:data.draw(st.integers(0, len(original) - 1), label="keep bytes")]
    else:
        position = data.draw(st.integers(0, len(original) - 1), label="flipped byte")
        damaged = original[:position] + bytes([original[position] ^ 0xFF]) + original[position + 1:]
    path.write_bytes(damaged)
    capsys = _Capture()
    code, out, err = capsys.run("sample", "--checkpoint", run_dir, "--n", 4, "--out", run_dir.parent / "s.npy")
    if code == 0:   # the flip hit a byte nothing reads (a timestamp): the weights must be the original ones
        with np.load(path) as archive, np.load(finished_run / "checkpoint.npz") as reference:
            for key in reference.files:
                np.testing.assert_array_equal(archive[key], reference[key])
    else:
        one_line_error(code, err, str(path))
        assert "allow_pickle" not in err


class _Capture:
    """run_main without pytest's capsys (hypothesis reruns the test body; capsys is function-scoped)."""

    def run(self, *arguments):
        import contextlib
        import io
        from tinygan import cli
        out, err = io.StringIO(), io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            try:
                cli.main([str(a) for a in arguments])
                code = 0
            except SystemExit as exit:
                code = exit.code
        return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("damage, message", [
    (lambda p: p.write_bytes(b""), "is damaged"),
    (lambda p: p.write_bytes(os.urandom(5000)), "is damaged"),
    (lambda p: p.write_bytes(p.read_bytes()[:-3]), "is damaged"),
    (lambda p: np.savez(p, **{k: v for k, v in np.load(p).items() if k != "generator/0.W"}),
     "generator: state does not fit this model: missing ['0.W']"),
    (lambda p: np.savez(p, **{k: v for k, v in np.load(p).items() if k != "meta"}), "lacks its 'meta' entry"),
    (lambda p: np.savez(p, **{k: v for k, v in np.load(p).items() if k != "fixed_noise"}), "'fixed_noise'"),
    (lambda p: np.savez(p, **dict(np.load(p), **{"generator/0.W": np.load(p)["generator/0.W"] * np.nan})),
     "generator/0.W holds NaN or infinite values"),
    (lambda p: np.savez(p, **dict(np.load(p), **{"discriminator/1.W": np.load(p)["discriminator/1.W"] * np.inf})),
     "discriminator/1.W holds NaN or infinite values"),
])
def test_damaged_checkpoints_are_one_line_naming_the_file(run_copy, capsys, damage, message):
    path = run_copy / "checkpoint.npz"
    damage(path)
    for code, err in sample_and_resume(run_copy, capsys):
        one_line_error(code, err, str(path), message)
        assert "allow_pickle" not in err and "interrupted" not in err


@pytest.mark.parametrize("edit, message", [
    (lambda text: text[:-10], "is not valid JSON"),
    (lambda text: "", "is not valid JSON"),
    (lambda text: "[1, 2]", "holds list"),
    (lambda text: json.dumps({k: v for k, v in json.loads(text).items() if k != "z_dim"}), "lacks the setting 'z_dim'"),
    (lambda text: json.dumps(dict(json.loads(text), z_dim="100")), "'z_dim' is '100', expected int"),
    (lambda text: json.dumps(dict(json.loads(text), quiet=1)), "'quiet' is 1, expected bool"),
    (lambda text: json.dumps(dict(json.loads(text), arch="gan")), "'arch' is 'gan', expected one of"),
    (lambda text: json.dumps(dict(json.loads(text), lr=float("nan"))), "'lr' is nan, expected a finite number"),
])
def test_damaged_or_edited_configs_are_one_line_naming_the_file(run_copy, capsys, edit, message):
    path = run_copy / "config.json"
    path.write_text(edit(path.read_text()))
    for code, err in sample_and_resume(run_copy, capsys):
        one_line_error(code, err, str(path), message)


def test_resume_records_the_new_epoch_count(run_copy, capsys):
    assert run_main(capsys, "train", "--resume", run_copy, "--epochs", 2, "--quiet")[0] == 0
    assert json.loads((run_copy / "config.json").read_text())["epochs"] == 2


# --- options and paths --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("arguments, message", [
    (["--lr", "nan"], "Invalid value for '--lr': 'nan' is not a finite number"),
    (["--lr", "inf"], "Invalid value for '--lr'"),
    (["--beta1", "nan"], "Invalid value for '--beta1': 'nan' is not a finite number"),
    (["--label-flip", "nan"], "Invalid value for '--label-flip'"),
    (["--z-dim", "1000000000"], "Invalid value for '--z-dim': 1000000000 would need 186,920 GiB"),
    (["--seed", "-5"], "Invalid value for '--seed'"),
    (["--kernel-size", "1001"], "Invalid value for '--kernel-size'"),
])
def test_absurd_options_are_refused_at_the_option(tmp_path, capsys, arguments, message):
    code, _, err = run_main(capsys, "train", "--out", tmp_path / "run", *QUICK, *arguments)
    one_line_error(code, err, message)
    assert code == 2 and not (tmp_path / "run").exists()


@pytest.mark.parametrize("out, message", [
    ("/sys/tinygan-run", "cannot write the run directory /sys/tinygan-run"),
    ("FILE/run", "cannot write the run directory"),
])
def test_unwritable_run_directories_are_one_line(tmp_path, capsys, out, message):
    (tmp_path / "FILE").write_text("a regular file")
    out = out.replace("FILE", str(tmp_path / "FILE"))
    code, _, err = run_main(capsys, "train", "--out", out, *QUICK)
    one_line_error(code, err, message, "choose another --out")


def test_info_says_a_named_incomplete_directory_will_be_refused(tmp_path):
    result = tinygan("info", "--data-dir", tmp_path / "nonexistent")
    assert result.returncode == 0 and "train` will refuse it" in result.stdout and "download" not in result.stdout


def test_images_of_the_wrong_size_are_refused_before_a_run_directory_exists(tmp_path, capsys):
    data_dir = tmp_path / "data"
    shutil.copytree(SHARED_MNIST, data_dir)
    with gzip.open(data_dir / "train-images-idx3-ubyte.gz", "wb") as stream:
        stream.write(idx_bytes(np.zeros((60000, 32, 32), np.uint8), 0x803))
    code, _, err = run_main(capsys, "train", "--out", tmp_path / "run", *QUICK, "--data-dir", data_dir)
    one_line_error(code, err, "the train images are 1x32x32 (channels x height x width); tinygan's mnist networks take 1x28x28")
    assert not (tmp_path / "run").exists()


def test_an_idx_header_with_huge_dimensions_does_not_overflow(tmp_path):
    from tinygan import data
    path = tmp_path / "huge.gz"
    with gzip.open(path, "wb") as stream:
        stream.write(idx_bytes(np.zeros(10, np.uint8), 0x803, shape=(2**32 - 1, 2**32 - 1, 2**32 - 1)))
    with pytest.raises(data.DataError, match="its header promises 79228162458924105385300197375"):
        data.read_idx(path, 0x803)


PEAK_MEMORY = """
import resource, sys
from tinygan import cli
try:
    cli.main(sys.argv[1:])
finally:
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024)
"""


def test_sample_memory_does_not_grow_with_n(finished_run, tmp_path):
    peaks = {}
    for n in (1000, 60000):
        result = subprocess.run([sys.executable, "-c", PEAK_MEMORY, "sample", "--checkpoint", str(finished_run),
                                 "--n", str(n), "--out", str(tmp_path / f"{n}.npy")],
                                capture_output=True, text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        peaks[n] = int(result.stdout.split()[-1])   # MB
    assert np.load(tmp_path / "60000.npy").shape == (60000, 28, 28)
    assert peaks[60000] - peaks[1000] < 60   # MB; all in memory at once it was 1,600 MB more


def test_the_best_generator_still_samples_when_the_checkpoint_is_damaged(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run_main(capsys, "train", *QUICK, "--arch", "mlp", "--epochs", 1, "--eval-every", 1,
                    "--eval-samples", 200, "--quiet", "--out", run_dir)[0] == 0
    (run_dir / "checkpoint.npz").write_bytes(b"")
    code, out, err = run_main(capsys, "sample", "--checkpoint", run_dir, "--which", "best", "--n", 8,
                              "--out", tmp_path / "best.npy")
    assert code == 0 and "from epoch 1 (best)" in out, err
    code, _, err = run_main(capsys, "sample", "--checkpoint", run_dir, "--out", tmp_path / "last.npy")
    one_line_error(code, err, "checkpoint.npz is damaged")
