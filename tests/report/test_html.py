"""The HTML report: self-contained, every figure in it, every user string escaped."""

import base64
import math
import re
import warnings

import optuna
import pytest

import lrtune
from lrtune.report import render_html, report_data, write_report
from lrtune.report._data import config_text, wall_label
from lrtune.report import _figures
from lrtune.report._figures import figures, plot_basin
from lrtune.report._html import figure_uri


def test_the_report_is_one_self_contained_file_with_every_figure(digits_study, tmp_path):
    study, _ = digits_study
    (path,) = write_report(study, tmp_path / "report.html")
    html = path.read_text()
    figures = re.findall(r'<figure id="fig-([a-z_]+)"[^>]*><img src="data:image/svg\+xml;base64,'
                         r'([A-Za-z0-9+/=]+)"', html)
    assert [name for name, _ in figures] == ["basin", "curves", "schedules", "range_test",
                                             "progress"]
    for _, svg in figures:
        assert base64.b64decode(svg).lstrip().startswith(b"<?xml")
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", html)  # nothing to fetch
    assert "<script" not in html and "default-src 'none'" in html
    assert f"Train with lr = {study.best.lr:.3g}" in html
    assert html.count("<tr") == len(study.trials) + 1


def test_the_header_shows_the_searched_space_and_the_answer_a_configuration_to_copy(
        digits_study):
    study, _ = digits_study
    data = report_data(study)
    html = render_html(data)
    (space,) = re.findall(r'<p class="meta" id="space">(.*?)</p>', html)
    assert space == ("searched: lr <b>0.0001 to 3 (log)</b> &middot; optimizer <b>sgd</b> "
                     "&middot; schedule <b>MultiStep</b> &middot; warmup <b>0</b> &middot; "
                     "weight decay <b>0.0005</b>")
    (config,) = re.findall(r'<pre class="config"[^>]*><code>(.*?)</code></pre>', html)
    assert config == config_text(data.config).replace('"', "&quot;")
    assert html.index('id="config"') < html.index('class="stats"')  # under the sentence


def test_the_trial_table_shows_each_trials_wall_time(digits_study):
    study, _ = digits_study
    html = render_html(report_data(study))
    assert "<th>time</th>" in html
    for t in study.trials:
        assert f'<td class="num">{wall_label(t.wall_time)}</td>' in html


def test_png_and_svg_write_the_figures_alone(digits_study, tmp_path):
    study, _ = digits_study
    pngs = write_report(study, tmp_path / "figs", format="png")
    assert [p.name for p in pngs] == ["basin.png", "curves.png", "schedules.png",
                                      "range_test.png", "progress.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in pngs)
    svgs = write_report(study, tmp_path / "svgs", format="svg")
    assert len(svgs) == 5 and all(p.suffix == ".svg" for p in svgs)


def test_every_user_string_is_escaped(hostile_study):
    evil = hostile_study.name  # "<script>alert('x')</script>"
    data = report_data(hostile_study)
    assert any(evil in r["error"] for r in data.rows)  # the hostile strings are in the data...
    assert any(evil in r["settings"] for r in data.rows)
    html = render_html(data)
    assert "<script" not in html.lower() and "<img src=x" not in html  # ...and inert in the page
    escaped = "&lt;script&gt;alert(&#x27;x&#x27;)&lt;/script&gt;"
    assert html.count(escaped) >= 4  # title, heading, parameter name, tag, error
    assert "&amp; &lt;img src=x onerror=alert(1)&gt;" in html


def test_a_study_without_trials_or_written_by_plain_optuna_code(tmp_path):
    url = f"sqlite:///{tmp_path}/plain.db"
    optuna.create_study(study_name="empty", storage=url)
    empty = report_data(lrtune.load_study("empty", url))
    assert empty.recommendation == "The study has no trials yet."
    assert "No trials yet." in render_html(empty)
    plain = optuna.create_study(study_name="plain", storage=url)
    plain.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    with pytest.raises(lrtune.InvalidParameterError, match="without an 'lr' parameter"):
        report_data(lrtune.load_study("plain", url))


def test_a_study_whose_loss_never_moved_draws_without_a_warning(tmp_path):
    """Equal low and high limits made matplotlib warn from inside lrtune."""
    def flat(trial):
        for step in range(trial.steps):
            trial.report(1.0, step)
        return 1.0

    study = lrtune.tune(flat, steps=32, budget=2.0, strategy="grid",
                        space=lrtune.Space(lr=(1e-3, 1e-1), optimizer="sgd"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        write_report(study, tmp_path / "flat.html")
    assert (tmp_path / "flat.html").stat().st_size > 0


def test_control_and_bidi_characters_in_user_strings_are_shown_not_obeyed(tmp_path):
    url = f"sqlite:///{tmp_path}/odd.db"
    name = "nul\x00esc\x1b[31mrlo\u202eend"

    def objective(trial):
        if trial.lr > 0.1:
            raise RuntimeError("bad\x00\u202eevil\u2066")
        for step in range(trial.steps):
            trial.report(1.0 / (step + 1), step)
        return abs(trial.lr - 0.01)

    lrtune.tune(objective, steps=10, budget=4.0, strategy="grid", storage=url, study_name=name,
                space=lrtune.Space(lr=(1e-3, 1.0), optimizer="sgd"))
    optuna.load_study(study_name=name, storage=url).add_trial(optuna.trial.create_trial(
        params={"lr": 0.01, "choice\u202e": 1.0},  # a parameter name from other code
        distributions={"lr": optuna.distributions.FloatDistribution(1e-4, 3.0, log=True),
                       "choice\u202e": optuna.distributions.FloatDistribution(0.0, 2.0)},
        value=0.5, user_attrs={"lrtune:steps": 10, "lrtune:state": "completed",
                               "lrtune:tag": "tag\x00", "lrtune:steps_done": 10}))
    html = render_html(report_data(lrtune.load_study(name, url)))
    for char in "\x00\x1b\u202e\u2066":
        assert char not in html
    assert html.count(r"nul\x00esc\x1b[31mrlo\u202eend") >= 2  # title and heading
    assert r"RuntimeError: bad\x00\u202eevil\u2066" in html
    assert r"choice\u202e" in html and r"tag\x00" in html


def _grid_study(storage=None, name=None):
    def objective(trial):
        for step in range(trial.steps):
            trial.report(1.0 / (step + 1), step)
        return abs(trial.lr - 0.01)

    return lrtune.tune(objective, steps=8, budget=1.0, strategy="grid", storage=storage,
                       study_name=name, space=lrtune.Space(lr=(1e-3, 1e-1), optimizer="sgd"))


def test_a_path_that_cannot_take_the_output_is_refused_before_anything_is_written(tmp_path):
    study = _grid_study()
    (tmp_path / "folder").mkdir()
    (tmp_path / "file").write_text("kept")
    cases = {
        (tmp_path / "folder", "html"): "must be the HTML file to write, not a folder",
        (tmp_path / "file", "png"): "must be the folder for the png figures, not a file",
        (tmp_path / "file" / "r.html", "html"): f"must be a path under folders only "
                                                f"\\('{tmp_path / 'file'}' is a file\\)",
        (tmp_path / "file" / "figs", "svg"): "must be a path under folders only",
        (tmp_path / ("x" * 300 + ".html"), "html"): r"must be a path the file system takes "
                                                    r"\(File name too long\)",
    }
    for (path, format), message in cases.items():
        with pytest.raises(lrtune.InvalidParameterError,
                           match=r"The 'path' parameter of write_report\(\) " + message):
            write_report(study, path, format=format)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file", "folder"]
    assert (tmp_path / "file").read_text() == "kept" and not any((tmp_path / "folder").iterdir())
    (written,) = write_report(study, tmp_path / "new" / "deeper" / "r.html")  # made as needed
    assert written.read_text().startswith("<!doctype html>")


def test_dollar_signs_in_a_choice_are_drawn_as_text(tmp_path):
    """Between two '$' matplotlib reads mathtext: an unknown command failed the whole report."""
    url = f"sqlite:///{tmp_path}/dollars.db"
    plain = optuna.create_study(study_name="dollars", storage=url)  # its own 'optimizer' choice
    plain.optimize(lambda t: t.suggest_float("lr", 1e-4, 1.0, log=True)
                   * len(t.suggest_categorical("optimizer", [r"$\foo$", "sgd"])), n_trials=8)
    study = lrtune.load_study("dollars", url)
    legend = plot_basin(report_data(study).basin).axes[0].get_legend().get_texts()
    assert r"1 steps (T), optimizer \$\foo\$" in [t.get_text() for t in legend]  # as written
    write_report(study, tmp_path / "dollars.html")


def test_a_study_of_many_trials_draws_each_trials_lines_into_one_picture(monkeypatch):
    """A path per trial made the report of a 4000-trial study 13 MB; drawn as one picture, the
    per-trial figures stay the same size however many trials there are."""
    def objective(trial):
        for step in range(trial.steps):
            trial.report((math.log10(trial.lr) + 2) ** 2 + 1.0 / (step + 1), step)
        return (math.log10(trial.lr) + 2) ** 2

    data = report_data(lrtune.tune(objective, steps=50, budget=30, strategy="random",
                                   space=lrtune.Space(lr=(1e-4, 1.0), optimizer="sgd",
                                                      schedule="cosine")))
    drawn = {}
    for threshold in (len(data.rows) + 1, len(data.rows)):  # the real one is too slow to reach
        monkeypatch.setattr(_figures, "RASTER_FROM", threshold)
        drawn[threshold <= len(data.rows)] = figures(data)

    def paths(fig):
        return base64.b64decode(figure_uri(fig).split(",", 1)[1]).count(b"<path")

    for name in _figures.PER_TRIAL:
        for rasterized, figs in drawn.items():
            artists = [*figs[name].axes[0].lines, *figs[name].axes[0].collections]
            assert artists and {a.get_rasterized() for a in artists} == {rasterized}
        assert paths(drawn[True][name]) <= paths(drawn[False][name]) - len(data.rows)  # one each
