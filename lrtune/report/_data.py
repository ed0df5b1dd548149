"""Report data: everything the figures, the table and the summary show, as plain numbers and text.

Computed from the study alone, with no plotting library involved (Optuna's split between
``_get_*_info`` and drawing), so it is tested without a display and shared by the HTML report,
the PNG figures and ``lrtune show``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from lrtune.diagnostics import standings
from lrtune.diagnostics._direction import reads_as_score, score_hint
from lrtune.exceptions import InvalidParameterError
from lrtune.records import TrialRecord, TrialState
from lrtune.report._schedules import trial_schedule
from lrtune.space import CATEGORICAL, LogRange, Space
from lrtune.strategies import LrEstimate
from lrtune.study import Study
from lrtune.study._study import CONFIG_ATTR

SCHEDULE_POINTS = 300  # LR values drawn per trial: enough for step drops, cheap for long runs
STOPPED = (TrialState.PRUNED, TrialState.FAILED, TrialState.LOST)


@dataclass(frozen=True)
class ReportData:
    """What a report shows; every field is plain data (JSON-ready)."""

    study: dict[str, Any]  # name, strategy, steps, budget, spent, trials, states, space
    recommendation: str  # the answer in one sentence
    config: dict[str, Any] | None  # the best trial's settings, to copy into a training script
    basin: dict[str, Any]  # final loss against LR, per run length; diverged and stopped trials
    curves: list[dict[str, Any]]  # training-loss history of each trial
    schedules: list[dict[str, Any]]  # the LR each trial applied, step by step
    range_test: dict[str, Any] | None  # FinderResult.to_dict() when a range test was stored
    progress: dict[str, Any]  # LR tried and best value against compute spent
    rows: list[dict[str, Any]]  # the trial table


def report_data(study: Study) -> ReportData:
    """Gather the report of ``study`` (reads the study only; changes nothing)."""
    trials = sorted(study.trials, key=lambda t: t.number)
    if any("lr" not in t.params for t in trials):
        raise InvalidParameterError(
            f"The study {study.name!r} has trials without an 'lr' parameter: it was not written "
            "by lrtune, or names its learning rate differently.")
    # checked before the estimate and the log axes meet it: a string choice or an LR of 0
    # (a plain Optuna study's own 'lr') would fail there, deep in numpy or matplotlib
    odd = next((t for t in trials if not _positive(t.lr)), None)
    if odd is not None:
        raise InvalidParameterError(
            f"The study {study.name!r} has a trial (number {odd.number}) whose 'lr' is "
            f"{odd.lr!r}: a report needs a positive number, to place it on a log axis.")
    best = study.best
    estimate = study.estimate
    varying = varying_params(trials)
    return ReportData(
        study=_summary(study, trials, varying),
        recommendation=recommendation(study, trials, best, varying),
        config=recommended_config(best),
        basin={**basin_data(trials, best, study.steps, choice_params(study.space, varying)),
               "estimate": estimate.to_dict() if estimate is not None else None},
        curves=curve_data(trials),
        schedules=schedule_data(study, trials),
        range_test=study.range_test,
        progress=progress_data(trials, best, study.steps, study.budget),
        rows=table_rows(trials, best, varying),
    )


def _positive(value: Any) -> bool:
    return isinstance(value, Real) and not isinstance(value, bool) and 0 < float(value) < math.inf


def varying_params(trials: Sequence[TrialRecord]) -> list[str]:
    """The parameters besides the LR whose values differ between trials."""
    names = sorted({name for t in trials for name in t.params} - {"lr"})
    return [n for n in names if len({repr(t.params.get(n)) for t in trials}) > 1]


def choice_params(space: Space, varying: Sequence[str]) -> list[str]:
    """The ``varying`` parameters the space searches as a list of choices: each setting of them
    is a line of the basin. Not a range (weight decay on a log scale), where every trial has a
    value of its own, nor a parameter of someone else's code, whose kind the space does not say:
    a line per trial would hide the basin behind its legend."""
    choices = {*CATEGORICAL, *(() if isinstance(space.weight_decay, LogRange)
                               else ("weight_decay",))}
    return [name for name in varying if name in choices]


def _settings(trial: TrialRecord, varying: Sequence[str]) -> dict[str, str]:
    return {name: _short(trial.params.get(name)) for name in varying}


def _summary(study: Study, trials: Sequence[TrialRecord], varying: Sequence[str]) -> dict[str, Any]:
    states = {s.value: sum(t.state is s for t in trials) for s in TrialState}
    return {
        "name": study.name,
        "strategy": study.strategy.name,
        "steps": study.steps,
        "budget": study.budget,
        "spent": study.spent,
        "trials": len(trials),
        "states": {k: v for k, v in states.items() if v},
        "space": _searched(study, trials, varying),
    }


def _searched(study: Study, trials: Sequence[TrialRecord],
              varying: Sequence[str]) -> dict[str, str]:
    """The study's space; for a study Optuna created, which stores none, the space its caller
    gave ``load_study``, else what the trials tried: the default space load_study stands in
    then was not searched."""
    if CONFIG_ATTR in study.optuna.user_attrs or study.space != Space.from_description({}):
        return space_summary(study.space.describe())
    return tried_summary(trials, varying)


def space_summary(described: dict[str, Any]) -> dict[str, str]:
    """What the study searched (``Space.describe()``), one short text per dimension; a
    dimension left unset (``None``, e.g. the optimizer's default momentum) is omitted."""
    out = {}
    for name, value in described.items():
        if isinstance(value, dict) and "log_range" in value:
            low, high = value["log_range"]
            out[name] = f"{low:.3g} to {high:.3g} (log)"
        elif any(v is not None for v in value):
            out[name] = " | ".join(_short(_schedule_name(v)) for v in value)
    return out


def tried_summary(trials: Sequence[TrialRecord], varying: Sequence[str]) -> dict[str, str]:
    """What the trials tried, one short text per parameter: the LR's range, and the values of
    each ``varying`` parameter."""
    if not trials:
        return {}
    lrs = [t.lr for t in trials]
    return {"lr": f"{min(lrs):.3g} to {max(lrs):.3g} (tried)",
            **{name: " | ".join(dict.fromkeys(_short(t.params.get(name)) for t in trials))
               for name in varying}}


def _schedule_name(value: Any) -> Any:
    return value["type"] if isinstance(value, dict) and "type" in value else value


def recommended_config(best: TrialRecord | None) -> dict[str, Any] | None:
    """The best trial's LR and settings, JSON-ready (a schedule object as its repr)."""
    if best is None:
        return None
    params = {k: v for k, v in best.params.items() if v is not None}
    return {"lr": float(f"{best.lr:.4g}"),
            **{k: v if isinstance(v, (str, int, float)) else repr(v)
               for k, v in sorted(params.items()) if k != "lr"},
            "steps": best.steps}


def recommendation(study: Study, trials: Sequence[TrialRecord], best: TrialRecord | None,
                   varying: Sequence[str] = ()) -> str:
    """The study's answer, with the evidence behind it, in one sentence (``varying``: the other
    parameters the study searched, given as the best trial set them)."""
    if not trials:
        return "The study has no trials yet."
    spent = f"the search spent {study.spent:.2f} of {budget_label(study.budget)} runs"
    diverged = [t for t in trials if t.diverged]
    cliff = (f"{len(diverged)} of {len(trials)} trials diverged, the lowest at lr = "
             f"{min(t.lr for t in diverged):.3g}" if diverged else "no trial diverged")
    if best is None:  # advice only for what happened: nothing to lower when nothing diverged
        running = sum(t.state is TrialState.RUNNING for t in trials)
        advice = "; ".join(text for text, applies in (
            (f"wait for the trials still running ({running})", running),
            ("lower the LR range", diverged),
            ("read the failed trials' errors in the table",
             any(t.state is TrialState.FAILED for t in trials))) if applies)
        yet = " yet" if running else ""  # else no trial of this study may complete: say so
        return f"No trial has completed{yet} ({cliff}; {spent}){': ' + advice if advice else ''}."
    length = ("a full run" if best.steps >= study.steps
              else f"{best.steps} steps ({length_label(best.steps, study.steps)})")
    settings = ", ".join(f"{k.replace('_', ' ')} {v}" for k, v in _settings(best, varying).items())
    # the answer's own run went wrong (collapsed, stagnant, ...): said with it, not only below
    caution = (f" Its run was {best.verdict}: {best.diagnosis.get('hint', '')}".rstrip(": ")
               if best.diagnosis and best.verdict != "healthy" else "")
    if best.verdict == "stagnant" and reads_as_score(trials):
        hint = score_hint("its objective", "the objective's value")
        caution += f" {hint[0].upper()}{hint[1:]}."
    return (f"Train with lr = {best.lr:.3g}{f' ({settings})' if settings else ''}: trial "
            f"{best.number} reached {best.value:.4g} after {length}; {cliff}; {spent}.{caution}")


def estimate_sentences(basin: dict[str, Any]) -> str:
    """Where the trials place the full-length best LR (``basin["estimate"]``, from
    :attr:`Study.estimate`), the warning when the answer sits at an edge of the range, and the
    note when the best LR's move with the run's length was assumed."""
    data = basin.get("estimate")
    if data is None:
        return ""
    estimate = LrEstimate(**{**data, "wider_range": tuple(data["wider_range"])
                             if data["wider_range"] else None})
    text = []
    if estimate.low is not None:
        text.append(f"The trials place the full-length best LR at {estimate.describe()}.")
    text += [f"{kind.capitalize()}: {notice}." for kind, notice in estimate.notices()]
    return " ".join(text)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    text = str(value)
    return text.split("(", 1)[0] if "(" in text else text  # a schedule's repr: its class name


def budget_label(budget: float) -> str:
    """A study's budget in full runs; ``?`` where none was stored (a study Optuna created)."""
    return f"{budget:g}" if math.isfinite(budget) else "?"


def wall_label(seconds: float | None) -> str:
    """A trial's wall time: ``0.84 s``, ``12.3 s``, ``4 min 05 s``; ``-`` when not recorded."""
    if seconds is None:
        return "-"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes} min {secs:02d} s"


def config_text(config: dict[str, Any]) -> str:
    """The recommended configuration as one line of JSON, to copy."""
    return json.dumps(config)


def length_label(steps: int, full: int) -> str:
    """A run length relative to a full run ``T``: ``T``, ``T/16``, or ``0.4 T``."""
    if steps >= full:
        return "T"
    ratio = full / steps
    if abs(ratio / round(ratio) - 1) < 0.08:
        return f"T/{round(ratio)}"
    return f"{steps / full:.2g} T"


def basin_data(trials: Sequence[TrialRecord], best: TrialRecord | None, full: int,
               choices: Sequence[str] = ()) -> dict[str, Any]:
    """Final value against LR, one series per run length (and setting of the ``choices``,
    see :func:`choice_params`); diverged trials at the LR that blew up."""
    rungs: dict[tuple[int, str], list[dict[str, Any]]] = {}
    for t in trials:
        if t.state is TrialState.COMPLETED and t.value is not None and math.isfinite(t.value):
            setting = ", ".join(f"{k} {v}" for k, v in _settings(t, choices).items())
            rungs.setdefault((t.steps, setting), []).append(
                {"number": t.number, "lr": t.lr, "value": t.value})
    return {
        "rungs": [{"steps": steps, "setting": setting,
                   "points": sorted(points, key=lambda p: p["lr"]),
                   "label": f"{steps} steps ({length_label(steps, full)})"
                            + (f", {setting}" if setting else "")}
                  for (steps, setting), points in sorted(rungs.items())],
        "diverged": [{"number": t.number, "lr": t.lr, "step": _divergence_step(t),
                      "steps": t.steps} for t in trials if t.diverged],
        "stopped": [{"number": t.number, "lr": t.lr, "state": t.state.value} for t in trials
                    if t.state in STOPPED],
        "best": {"number": best.number, "lr": best.lr, "value": best.value} if best else None,
    }


def _divergence_step(trial: TrialRecord) -> int | None:
    for finding in (trial.diagnosis or {}).get("findings", ()):
        if finding.get("status") == "diverged":
            return finding.get("step")
    return trial.steps_done - 1 if trial.steps_done else None


def curve_data(trials: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """Each trial's training-loss history (``None``: a non-finite loss)."""
    return [{"number": t.number, "lr": t.lr, "state": t.state.value, "steps": t.steps,
             "points": [list(p) for p in t.history]} for t in trials if t.history]


def schedule_data(study: Study, trials: Sequence[TrialRecord]) -> list[dict[str, Any]]:
    """The LR each trial applied at each step it trained (and the rest of its plan)."""
    out = []
    for t in trials:
        schedule = trial_schedule(study.space, t.params, t.steps)
        if schedule is None:
            continue
        steps = np.unique(np.linspace(0, t.steps - 1, min(t.steps, SCHEDULE_POINTS)).round()
                          .astype(int))
        out.append({"number": t.number, "lr": t.lr, "steps": t.steps, "steps_done": t.steps_done,
                    "state": t.state.value, "step": steps.tolist(),
                    "value": [schedule.lr_at(int(s), t.lr) for s in steps]})
    return out


def progress_data(trials: Sequence[TrialRecord], best: TrialRecord | None, full: int,
                  budget: float) -> dict[str, Any]:
    """The LR each trial tried and the best value so far, against compute spent (in full runs)."""
    points, best_so_far, spent, low = [], [], 0.0, math.inf
    for t in trials:
        if t.state is TrialState.LOST:
            continue
        spent += t.steps_done / full
        points.append({"number": t.number, "spent": spent, "lr": t.lr, "state": t.state.value,
                       "value": t.value, "steps": t.steps})
        if t.state is TrialState.COMPLETED and t.value is not None and t.value < low:
            low = t.value
            best_so_far.append([spent, low])
    return {"points": points, "best_so_far": best_so_far, "budget": budget,
            "best_lr": best.lr if best else None}


def table_rows(trials: Sequence[TrialRecord], best: TrialRecord | None,
               varying: Sequence[str] = ()) -> list[dict[str, Any]]:
    """One row per trial: what it tried (the LR, and the ``varying`` parameters as its
    ``settings``), how long, how it ended, what was seen, what to do."""
    rows = []
    placed = standings(trials)
    for t in trials:
        findings = (t.diagnosis or {}).get("findings") or [{}]
        primary = next((f for f in findings if f.get("status") == t.verdict), findings[0])
        rows.append({
            "number": t.number, "tag": t.tag, "lr": t.lr,
            "settings": _settings(t, varying), "steps": t.steps,
            "steps_done": t.steps_done, "state": t.state.value, "value": t.value,
            "verdict": t.verdict, "evidence": primary.get("evidence", ""),
            "standing": str(placed[t.number]) if placed[t.number] is not None else "",
            "hint": (t.diagnosis or {}).get("hint", ""), "error": t.error or "",
            "wall_time": t.wall_time, "best": best is not None and t.number == best.number,
        })
    return rows
