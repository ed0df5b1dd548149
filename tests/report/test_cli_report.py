"""``lrtune report`` and ``lrtune show``, run for real; bad input: one line, no traceback."""

import json
import sys

import pytest
from typer.testing import CliRunner

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
