"""``lrtune report`` and ``lrtune show``, run for real; bad input: one line, no traceback."""

import json
import sys
from pathlib import Path

import optuna
import pytest
from typer.testing import CliRunner

import lrtune
from lrtune.cli import app, main
from lrtune.report import report_data
from lrtune.report._data import wall_label

runner = CliRunner()


def test_report_writes_the_html_and_the_figures(digits_study, tmp_path):
    _, url = digits_study
    out = tmp_path / "r.html"
    result = runner.invoke(app, ["report", "digits", "--storage", url, "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert result.output.strip() == str(out) and "<figure" in out.read_text()
    result = runner.invoke(app, ["report", "digits", "--storage", url, "--format", "png",
                                 "-o", str(tmp_path / "figs")])
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == [
        "basin.png", "curves.png", "progress.png", "range_test.png", "schedules.png"]


def test_show_prints_every_trial_and_the_recommendation(digits_study):
    study, url = digits_study
    result = runner.invoke(app, ["show", "digits", "--storage", url])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].startswith("digits: strategy auto, 600 steps per full run")
    assert lines[-1] == " ".join(lines[-1].split())  # the sentence, unwrapped
    assert lines[-1].startswith(f"Train with lr = {study.best.lr:.3g}")
    for t in study.trials:
        assert any(line.split()[:2] in ([str(t.number), t.tag], ["*", str(t.number)])
                   and wall_label(t.wall_time) in line for line in lines)


def test_show_names_the_searched_space_and_prints_the_configuration_to_copy(digits_study):
    study, url = digits_study
    lines = runner.invoke(app, ["show", "digits", "--storage", url]).output.splitlines()
    assert lines[1] == ("searched: lr 0.0001 to 3 (log), optimizer sgd, schedule MultiStep, "
                        "warmup 0, weight decay 0.0005")
    (config,) = [line for line in lines if line.startswith("recommended configuration: ")]
    assert json.loads(config.split(": ", 1)[1]) == report_data(study).config


def test_a_missing_study_or_storage_is_one_line_and_creates_nothing(digits_study, tmp_path,
                                                                    monkeypatch, capsys):
    _, url = digits_study
    cases = {
        ("show", "nope", "--storage", url): "error: No study named 'nope' in",
        ("report", "digits", "--storage", "sqlite:///missing.db"): "error: No storage at",
        ("report", "digits", "--storage", "not a url"): "error: 'not a url' is not a storage URL",
        ("report", "digits", "--storage", url, "--format", "pdf"): "error: The 'format' parameter",
    }
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("LRTUNE_DEBUG", raising=False)
    for args, message in cases.items():
        monkeypatch.setattr(sys, "argv", ["lrtune", *args])
        with pytest.raises(SystemExit) as exit_:
            main()
        err = capsys.readouterr().err
        assert exit_.value.code == 2, err
        assert "Traceback" not in err
        assert " ".join(err.split()).startswith(message)  # (rich wraps it at 80 columns)
    assert list(tmp_path.iterdir()) == []  # no empty database left behind


def _tiny_study(url, name):
    lrtune.tune(lambda trial: abs(trial.lr - 0.01), steps=8, budget=1.0, strategy="grid",
                storage=url, study_name=name, space=lrtune.Space(lr=(1e-3, 1e-1), optimizer="sgd"))


def test_a_long_non_ascii_study_name_makes_a_file_name_the_file_system_takes(tmp_path,
                                                                             monkeypatch):
    """100 characters of 3 bytes each passed the 255-byte limit on a file name: 100 bytes now."""
    url = f"sqlite:///{tmp_path}/u.db"
    name = "学习率" * 40
    _tiny_study(url, name)
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(app, ["report", name, "--storage", url])
    assert result.exit_code == 0, result.output
    (written,) = tmp_path.glob("*.html")
    assert written.stem == "学习率" * 11 and len(written.name.encode()) <= 255


def _fails(monkeypatch, capsys, *args):
    """Run ``lrtune`` as its entry point does: (exit status, stderr in one line)."""
    monkeypatch.setattr(sys, "argv", ["lrtune", *args])
    monkeypatch.delenv("LRTUNE_DEBUG", raising=False)
    with pytest.raises(SystemExit) as exit_:
        main()
    return exit_.value.code, " ".join(capsys.readouterr().err.split())


def test_an_output_that_cannot_be_written_is_one_line(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    _tiny_study(url, "s")
    (tmp_path / "taken").write_text("")
    code, err = _fails(monkeypatch, capsys, "report", "s", "--storage", url,
                       "--format", "png", "-o", str(tmp_path / "taken"))
    assert code == 2 and err.startswith("error: The 'path' parameter of write_report() must be "
                                        "the folder for the png figures, not a file.")
    too_long = tmp_path / ("x" * 300 + ".html")  # no file system holds that name
    code, err = _fails(monkeypatch, capsys, "report", "s", "--storage", url, "-o", str(too_long))
    assert code == 2 and err == f"error: Cannot write {too_long}: File name too long."
    assert (tmp_path / "taken").is_file() and not list(tmp_path.glob("*.html"))  # nothing written


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs Linux's /dev/full")
def test_a_disk_that_refuses_the_write_is_one_line(tmp_path, monkeypatch, capsys):
    url = f"sqlite:///{tmp_path}/s.db"
    _tiny_study(url, "s")
    code, err = _fails(monkeypatch, capsys, "report", "s", "--storage", url, "-o", "/dev/full")
    assert code == 2 and err == "error: Cannot write /dev/full: No space left on device."


def test_show_says_when_a_study_stored_no_budget(tmp_path):
    url = f"sqlite:///{tmp_path}/plain.db"
    plain = optuna.create_study(study_name="plain", storage=url)
    plain.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True), n_trials=2)
    result = runner.invoke(app, ["show", "plain", "--storage", url])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines()[0].endswith("compute 2.00 of ? runs") \
        and "nan" not in result.output
