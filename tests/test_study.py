"""`tinygan study`: every study's commands are valid train commands; studies run, resume and summarise."""
import os
import re
import signal
import subprocess
import sys
import time

import pytest

from conftest import SHARED_MNIST, requires_mnist
from test_cli import run_main
from tinygan import classifier, cli, study


def tinygan(*arguments):
    return subprocess.run([sys.executable, "-m", "tinygan", *map(str, arguments)], capture_output=True, text=True,
                          timeout=600)


@pytest.mark.parametrize("name", list(study.STUDIES))
@pytest.mark.parametrize("profile", list(study.PROFILES))
def test_every_study_plans_train_commands_that_train_accepts(name, profile, tmp_path):
    plans = study.plans(name, 2, profile, tmp_path, ["--data-dir", str(tmp_path)])
    assert len(plans) == 2 * len(study.STUDIES[name].settings)
    assert len({plan.directory for plan in plans}) == len(plans)
    for plan in plans:
        command = study.next_command(plan)
        assert command[0] == "train" and "--eval-every" in command
        with cli.train.make_context("train", command[1:]) as context:   # click parses it as `train` would
            assert context.params["seed"] == plan.seed and context.params["epochs"] == plan.epochs
            # the report's batch, learning rate and pixels, said in the command, whatever tinygan's own defaults
            arch, setting = context.params["arch"], study.STUDIES[name].settings[plan.label]
            report_001 = arch.startswith("mlp-001")
            assert context.params["batch_size"] == int(study.option_value(setting, "--batch-size",
                                                                          128 if report_001 else 64))
            assert context.params["lr"] == float(study.option_value(setting, "--lr", 2e-4))
            assert context.params["pixel_range"] == study.option_value(setting, "--pixel-range",
                                                                       "0,1" if report_001 else "-1,1")


def test_print_commands_prints_one_train_line_per_run(tmp_path):
    result = tinygan("study", "kernel-size", "--seeds", 2, "--print-commands", "--out", tmp_path)
    lines = result.stdout.splitlines()
    assert result.returncode == 0 and len(lines) == 6
    assert all(" -m tinygan train --arch dcgan --kernel-size " in line for line in lines)
    assert sum("--seed 1 " in line for line in lines) == 3
    assert all(f"--out {tmp_path}/kernel-size/kernel-" in line for line in lines)


def test_collect_before_any_run_says_what_is_missing(tmp_path):
    result = tinygan("study", "noise", "--collect", "--out", tmp_path)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "3 run(s) have not finished an epoch" in result.stderr


def ctrl_c_able():
    """A process group of its own with SIGINT's default action, as a terminal's foreground job has."""
    os.setpgrp()
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@requires_mnist
def test_a_study_runs_end_to_end_resumes_after_ctrl_c_and_summarises(tmp_path):
    arguments = ["study", "vanilla-vs-dcgan", "--profile", "tiny", "--data-dir", SHARED_MNIST, "--out", tmp_path]
    # Ctrl-C during the second run, as a terminal sends it: to the study and its train process alike
    process = subprocess.Popen([sys.executable, "-m", "tinygan", *map(str, arguments)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, preexec_fn=ctrl_c_able)
    for line in process.stdout:
        if line.startswith("finished vanilla-vs-dcgan/mlp seed 0"):
            break
    # at the dcgan run's start, when its config is written: its one epoch is two steps, and a Ctrl-C that
    # comes after the second has begun lets the epoch finish (tinygan/interrupts.py), so a fixed pause
    # after the first run raced with the second one's speed
    config = tmp_path / "vanilla-vs-dcgan" / "dcgan" / "seed-0" / "config.json"
    deadline = time.monotonic() + 120
    while not config.is_file() and time.monotonic() < deadline:
        time.sleep(0.01)
    os.killpg(process.pid, signal.SIGINT)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 130, err
    assert err.strip().splitlines()[-1] == ("interrupted: the same command again skips the finished runs and "
                                            "resumes the others")
    result = tinygan(*arguments, "--jobs", 2)
    assert result.returncode == 0, result.stderr
    assert "1 of 2 runs already finished: skipped" in result.stdout

    text = (tmp_path / "vanilla-vs-dcgan" / "study.md").read_text()
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert [line.split("|")[1].strip() for line in table] == ["`mlp`", "`dcgan`"]
    assert all(re.match(r"\d+\.\d\d$", line.split("|")[3].strip()) for line in table)   # a FID each
    assert "run with `--seeds 3` to tell" in text and "Lowest mean FID" in result.stdout
    for name in ("study.csv", "fid_vs_epoch.png", "fid_vs_time.png", "samples.png"):
        assert (tmp_path / "vanilla-vs-dcgan" / name).is_file()
    assert len(list((tmp_path / "vanilla-vs-dcgan").glob("*/seed-0/checkpoint.npz"))) == 2

    again = tinygan(*arguments)
    assert again.returncode == 0 and "2 of 2 runs already finished: skipped" in again.stdout

    # A run that stopped early is resumed, not restarted: a plan for 2 epochs over the 1-epoch run
    plan = study.plans("vanilla-vs-dcgan", 1, "tiny", tmp_path)[0]
    plan.options[plan.options.index("--epochs") + 1] = "2"
    assert study.next_command(plan) == ["train", "--resume", str(plan.directory), "--epochs", "2"]


def test_the_verdict_names_the_settings_the_seeds_cannot_tell_apart():
    def row(setting, fid, std):
        return {"setting": setting, "fid": fid, "fid_std": std}
    text = study._verdict([row("a", 10.0, 1.0), row("b", 11.0, 1.0), row("c", 20.0, 1.0)], seeds=3)
    assert text.startswith("Lowest mean FID: `a` (10.00).") and "`b`" in text and "`c`" not in text
    assert "more than one combined" in study._verdict([row("a", 10.0, 0.1), row("b", 20.0, 0.1)], seeds=3)
    assert "--seeds 3" in study._verdict([row("a", 10.0, None), row("b", 20.0, None)], seeds=1)
    assert "one setting" in study._verdict([row("a", 10.0, 1.0)], seeds=3)


def test_several_seeds_give_mean_plus_minus_std_cells():
    assert study._cell(12.3456, 0.789, "{:.2f}") == "12.35 ± 0.79"
    assert study._cell(12.3456, None, "{:.2f}") == "12.35" and study._cell(None, None, "{:.2f}") == "-"
    assert study._mean_std([1.0, 3.0]) == (2.0, 2 ** 0.5) and study._mean_std([None]) == (None, None)


@pytest.fixture
def data_root(tmp_path):
    """One --data-dir for every dataset, each in its own subfolder. There is no Fashion-MNIST copy here, so
    MNIST's files stand in for it (the format is the same), with a briefly trained classifier of its own,
    kept for this test only."""
    root = tmp_path / "data"
    root.mkdir()
    for name in ("mnist", "fashion-mnist"):
        (root / name).symlink_to(SHARED_MNIST, target_is_directory=True)
    weights = classifier.weights_path("fashion-mnist")
    assert not weights.exists()
    trained = classifier.train("fashion-mnist", root, epochs=1, limit=512, log=lambda *_: None)
    classifier.save(trained, weights)
    yield root
    weights.unlink()


OTHER_STUDIES = [name for name in study.STUDIES if name != "vanilla-vs-dcgan"]   # the test above runs that one
TRAINED = {}   # a train command (without --out) -> the directory it trained, for the runs that studies share


@requires_mnist
@pytest.mark.parametrize("name", OTHER_STUDIES)
def test_every_study_trains_measures_and_summarises_on_the_tiny_profile(name, tmp_path, capsys, request):
    """Each run's train command, run in this process (the study runner itself is tested above), then the
    summary from the run directories: a measured row per setting, and every figure. A command that an
    earlier study ran already (the plain dcgan is in five) is linked to, not trained again: a seeded run
    is the same run."""
    root = request.getfixturevalue("data_root") if name == "datasets" else SHARED_MNIST
    plans = study.plans(name, 1, "tiny", tmp_path, ["--data-dir", str(root)])
    for plan in plans:
        command = study.next_command(plan)
        assert command[-2] == "--out"
        if tuple(command[:-2]) in TRAINED:
            plan.directory.parent.mkdir(parents=True, exist_ok=True)
            plan.directory.symlink_to(TRAINED[tuple(command[:-2])], target_is_directory=True)
        else:
            code, _, err = run_main(capsys, *command)
            assert code == 0, f"{plan.label}: {err}"
            TRAINED[tuple(command[:-2])] = plan.directory
        assert study.next_command(plan) is None
    code, out, err = run_main(capsys, "study", name, "--profile", "tiny", "--collect", "--out", tmp_path)
    assert code == 0, err
    table = [line.split("|") for line in out.splitlines() if line.startswith("| `")]
    assert [row[1].strip() for row in table] == [f"`{label}`" for label in study.STUDIES[name].settings]
    assert all(re.match(r"\d+\.\d\d$", row[3].strip()) for row in table), out   # a FID each
    for figure in ("study.md", "study.csv", "fid_vs_epoch.png", "samples.png"):
        assert (tmp_path / name / figure).stat().st_size > 0
