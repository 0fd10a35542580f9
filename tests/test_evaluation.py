"""tinygan eval on real data: the shipped classifier, sets with known verdicts, the command line and its errors."""
import csv
import json
import re

import numpy as np
import pytest

from conftest import SHARED_MNIST, requires_mnist
from test_cli import QUICK, run_main
from tinygan import classifier, compare, data, evaluation

pytestmark = requires_mnist
N = 1000    # evaluation.COMPARABLE_IMAGES: the fewest whose figures tell GANs apart, and the quickest


@pytest.fixture(scope="module")
def mnist():
    return data.load("mnist", SHARED_MNIST)


@pytest.fixture(scope="module")
def evaluator():
    return evaluation.Evaluator("mnist", SHARED_MNIST)


def test_shipped_classifier_reaches_its_accuracy(mnist):
    model = classifier.Classifier.load("mnist")
    assert classifier.weights_path("mnist").stat().st_size < 2 * 2**20
    accuracy = model.accuracy(mnist.test_images, mnist.test_labels)
    assert accuracy >= 0.99
    assert accuracy == pytest.approx(model.meta["test_accuracy"], abs=1e-4)   # what the file says it reached


def test_the_classifier_command_trains_and_writes_a_loadable_file(tmp_path, capsys):
    out = tmp_path / "classifier.npz"
    code, text, err = run_main(capsys, "classifier", "--data-dir", SHARED_MNIST, "--epochs", 1, "--limit", 1024,
                               "--seed", 3, "--out", out)
    assert code == 0, err
    assert "epoch 1/1" in text and f"wrote {out}" in text
    loaded = classifier.Classifier.load("mnist", out)
    assert loaded.meta["seed"] == 3 and loaded.meta["limit"] == 1024 and 0 <= loaded.meta["test_accuracy"] <= 1
    out.write_bytes(out.read_bytes()[:100])
    with pytest.raises(classifier.ClassifierError, match="is not a readable classifier"):
        classifier.Classifier.load("mnist", out)


def test_shifted_moves_each_image_and_fills_the_border_black():
    images = np.arange(2 * 25, dtype=np.float32).reshape(2, 1, 5, 5)

    class Corners:   # the first image moved down-right by 2, the second up-left by 2
        def integers(self, low, high, n):
            return np.array([0, 4])

    moved = classifier.shifted(images, Corners(), max_shift=2)
    np.testing.assert_array_equal(moved[0, 0, 2:, 2:], images[0, 0, :3, :3])
    np.testing.assert_array_equal(moved[1, 0, :3, :3], images[1, 0, 2:, 2:])
    assert (moved[0, 0, :2] == -1).all() and (moved[1, 0, :, 3:] == -1).all()


def blurred(images):
    """A 5x5 box blur of float images (n, 1, 28, 28)."""
    padded = np.pad(images, ((0, 0), (0, 0), (2, 2), (2, 2)), mode="edge")
    return sum(padded[:, :, i:i + 28, j:j + 28] for i in range(5) for j in range(5)) / 25


def test_real_images_score_near_the_floor_and_damaged_ones_far_from_it(evaluator, mnist):
    rng = np.random.default_rng(0)
    real = evaluator.reference(N)
    assert real["n"] == N
    # FID is biased upwards at small n: about 0.6 between real sets of 10,000, 2 to 5 at 1,000
    assert real["fid"] < 6 and real["precision"] > 0.7 and real["recall"] > 0.7
    assert real["class_entropy_bits"] > 3.25 and real["rarest_class_share"] > 0.07 and real["confidence"] > 0.95
    assert 0.8 < real["nearest_train_ratio"] < 1.2   # the nearest *other* training image: like a test image

    test = evaluator.evaluate(mnist.test_images[:N])   # unseen real digits: as good as the floor
    assert test["fid"] < 6 and abs(test["nearest_train_ratio"] - 1) < 0.1

    copies = evaluator.evaluate(mnist.train_images[:N])   # copies of training images
    assert copies["nearest_train_ratio"] < 0.01 and copies["fid"] < 6

    sevens = evaluator.evaluate(mnist.train_images[mnist.train_labels == 7][:N])   # mode collapse
    assert sevens["class_entropy_bits"] < 0.1 and sevens["rarest_class_share"] == 0.0
    assert sevens["fid"] > 20 * real["fid"] and sevens["recall"] < 0.3

    pixels = mnist.train_images[N:2 * N].reshape(N, -1)
    shuffled = np.take_along_axis(pixels, rng.permuted(np.tile(np.arange(784), (N, 1)), axis=1), axis=1)
    noise = evaluator.evaluate(shuffled.reshape(N, 1, 28, 28))
    # precision stays well above 0: the k-NN balls of the real outliers are wide (Kynkaanniemi et al.'s caveat)
    assert noise["fid"] > 50 * real["fid"] and noise["recall"] < 0.05 and noise["precision"] < 0.5
    assert noise["kid"] > 10 * real["kid"] and noise["confidence"] < 0.8

    blur = evaluator.evaluate(blurred(mnist.train_images[N:2 * N]))
    assert real["fid"] * 5 < blur["fid"] < noise["fid"] and blur["recall"] < 0.1


def test_model_images_accepts_the_documented_forms_and_refuses_the_rest():
    uint8 = np.random.default_rng(0).integers(0, 256, (3, 28, 28), dtype=np.uint8)
    expected = data.scale_pixels(uint8)
    for form in (uint8, uint8[:, None], expected, expected.astype(np.float64)):
        np.testing.assert_array_equal(evaluation.as_model_images(form), expected)
    refusals = [(uint8[:, :27], r"shape \(3, 27, 28\)"), (uint8.astype(np.int64), "int64"),
                (expected * 2, "floats from"), (np.full((3, 28, 28), np.nan), "NaN"),
                (np.zeros((3, 3, 28, 28), np.uint8), r"\(n, 1, 28, 28\)")]
    for array, message in refusals:
        with pytest.raises(evaluation.EvaluationError, match=message):
            evaluation.as_model_images(array)


def test_eval_of_a_npy_file_prints_the_table_and_writes_json(tmp_path, capsys, mnist):
    source = tmp_path / "samples.npy"
    np.save(source, data.to_uint8(mnist.test_images[:N]))
    code, out, err = run_main(capsys, "eval", source, "--data-dir", SHARED_MNIST, "--json", tmp_path / "r.json")
    assert code == 0, err
    assert "FID" in out and "real training images (n=1,000)" in out and "evaluated 1,000 images" in out
    record = json.loads((tmp_path / "r.json").read_text())
    assert set(evaluation.KEYS) <= set(record) and record["n"] == N and record["dataset"] == "mnist"
    assert len(record["class_histogram"]) == 10 and record["fid"] < 6
    assert record["reference"]["n"] == N and "numpy" in record["versions"]


def test_fewer_than_a_thousand_images_are_measured_with_a_warning(tmp_path, capsys, mnist):
    source = tmp_path / "few.npy"
    np.save(source, data.to_uint8(mnist.test_images[:evaluation.MIN_IMAGES]))
    code, out, err = run_main(capsys, "eval", source, "--data-dir", SHARED_MNIST)
    assert code == 0 and "evaluated 200 images" in out
    assert err.strip() == evaluation.few_images_warning(200) and "at least 1,000" in err


def test_eval_of_a_run_directory_writes_eval_json_inside(tmp_path, capsys):
    run_dir = tmp_path / "run"
    code, _, err = run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--out", run_dir, "--quiet", *QUICK)
    assert code == 0, err
    code, out, err = run_main(capsys, "eval", run_dir, "--n", evaluation.MIN_IMAGES)
    assert code == 0, err
    record = json.loads((run_dir / "eval.json").read_text())
    assert record["n"] == evaluation.MIN_IMAGES and record["which"] == "last" and record["fid"] > record["reference"]["fid"]
    assert "epoch 1 (last)" in out


@pytest.mark.parametrize("make, arguments, message", [
    (lambda d: np.save(d / "x.npy", np.zeros((N, 32, 32), np.uint8)), ["x.npy"], r"shape \(1000, 32, 32\)"),
    (lambda d: np.save(d / "x.npy", np.zeros((N, 28, 28), np.int32)), ["x.npy"], "int32"),
    (lambda d: np.save(d / "x.npy", np.full((N, 28, 28), 3.0)), ["x.npy"], r"floats from 3 to 3"),
    (lambda d: np.save(d / "x.npy", np.zeros((10, 28, 28), np.uint8)), ["x.npy"], "at least 1,000"),
    (lambda d: (d / "x.npy").write_bytes(b"not an array"), ["x.npy"], "not a readable .npy"),
    (lambda d: (d / "x.txt").write_text("1"), ["x.txt"], "run directory or a .npy file"),
    (lambda d: np.save(d / "x.npy", np.zeros((N, 28, 28), np.uint8)), ["x.npy", "--data-dir", "."], "lacks"),
    (lambda d: (d / "run").mkdir(), ["run"], "holds no config.json"),
])
def test_eval_bad_input_is_one_line(tmp_path, capsys, monkeypatch, make, arguments, message):
    monkeypatch.chdir(tmp_path)
    make(tmp_path)
    code, out, err = run_main(capsys, "eval", *arguments)
    assert code not in (0, None)
    assert "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert re.search(message, err), err


def test_train_measures_quality_keeps_the_best_generator_and_compare_reads_it(tmp_path, capsys):
    runs = []
    for lr in ("2e-4", "1e-3"):
        run_dir = tmp_path / f"lr{lr}"
        code, out, err = run_main(capsys, "train", *QUICK, "--arch", "mlp", "--epochs", 3, "--eval-every", 2,
                                  "--eval-samples", evaluation.MIN_IMAGES, "--lr", lr, "--out", run_dir)
        assert code == 0, err
        runs.append(run_dir)
        with open(run_dir / "metrics.csv") as stream:
            rows = list(csv.DictReader(stream))
        assert [row["fid"] != "" for row in rows] == [False, True, True]   # every 2nd epoch and the last
        measured = [row for row in rows if row["fid"]]
        for row in measured:
            assert float(row["fid"]) > 0 and 0 <= float(row["precision"]) <= 1 and float(row["eval_seconds"]) > 0
        best = min(measured, key=lambda row: float(row["fid"]))
        assert f"best FID {float(best['fid']):.2f} at epoch {best['epoch']}" in out
        assert (run_dir / "quality.png").stat().st_size > 0
        with np.load(run_dir / "best.npz") as archive:
            assert json.loads(str(archive["meta"]))["epoch"] == int(best["epoch"])

        code, out, err = run_main(capsys, "sample", "--checkpoint", run_dir, "--which", "best", "--n", 16,
                                  "--out", tmp_path / "best.npy")
        assert code == 0 and f"from epoch {best['epoch']} (best)" in out, err

    code, out, err = run_main(capsys, "compare", *runs, "--out", tmp_path / "compared")
    assert code == 0, err
    header = out.splitlines()[0]
    assert "| run | lr |" in header and "best FID" in header and "batch_size" not in header   # only what differs
    assert "| lr2e-4 | 0.0002 |" in out and "| lr1e-3 | 0.001 |" in out
    for name in ("compare.md", "compare.csv", "fid_vs_epoch.png", "fid_vs_time.png"):
        assert (tmp_path / "compared" / name).stat().st_size > 0
    with open(tmp_path / "compared" / "compare.csv") as stream:
        rows = list(csv.DictReader(stream))
    assert [row["lr"] for row in rows] == ["0.0002", "0.001"] and all(row["best_fid"] for row in rows)


def test_fid_plots_use_a_log_axis_labelled_in_plain_numbers():
    # Matplotlib's default log labels read 10^2 and 4 x 10^1; an FID axis should read 100 and 40.
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, ax = plt.subplots()
    ax.plot([1, 2, 3], [180.0, 90.0, 40.0])
    compare.log_y_axis(ax)
    figure.canvas.draw()
    labels = {tick.get_text() for tick in ax.get_yticklabels() + ax.get_yticklabels(minor=True)} - {""}
    plt.close(figure)
    assert ax.get_yscale() == "log"
    assert {"40", "100"} <= labels and not any("10^" in label or "times" in label for label in labels), labels


def test_sample_which_best_without_measurements_is_one_line(tmp_path, capsys):
    run_dir = tmp_path / "run"
    assert run_main(capsys, "train", "--arch", "mlp", "--epochs", 1, "--quiet", "--out", run_dir, *QUICK)[0] == 0
    code, _, err = run_main(capsys, "sample", "--checkpoint", run_dir, "--which", "best", "--out", tmp_path / "x.npy")
    assert code == 1 and "no best.npz" in err and "--which last" in err
