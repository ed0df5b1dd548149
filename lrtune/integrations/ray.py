"""Ray Tune: lrtune's strategies as a search algorithm, for sweeps already driven by a ``Tuner``.

::

    searcher = LrtuneSearcher(steps=2000, budget=2.0, strategy="auto", space=space, seed=0)
    Tuner(searcher.trainable(objective),
          tune_config=TuneConfig(search_alg=searcher, num_samples=-1,
                                 reuse_actors=True)).fit()  # one process for many trials
    searcher.best.lr  # the strategy's answer, as lrtune.tune's study.best

Each suggested config holds the trial's parameters (``lr``, ``optimizer``, ...), its length
``steps`` and ``trial_number``. ``trainable(objective)`` runs an ordinary lrtune objective on it
exactly as ``lrtune.tune`` would (the compressed schedule, the study's seed, the run monitor):
a diverging run is stopped by the trial's own ``report`` within a few steps and reported as
diverged, which tells ``auto`` where the cliff is. It reports one result, the ``loss`` (``inf``
when the run blew up) and lrtune's verdict. A trial lost to a dead worker or node is Ray Tune's
to restart (``RunConfig(failure_config=FailureConfig(max_failures=...))``): the searcher hears
only how it finally ended. The searcher keeps the study in memory, so ``auto``'s short runs and
cliff handling see every result; ``TuneConfig(max_concurrent_trials=N)`` runs N at once, which
``auto`` handles as N workers. An objective that breaks its contract (returns no number), or
fails the same way in every trial, ends ``Tuner.fit`` with the error ``lrtune.tune`` raises.
The space sets every parameter of a trial: ``Tuner(param_space=...)`` is refused.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

from lrtune.study._ray import RAY_HINT

try:
    from ray import tune as ray_tune
    from ray.tune.search import Searcher
except ImportError as err:  # an optional dependency: say how to get it
    raise ImportError(f"The Ray integration needs Ray Tune. {RAY_HINT}") from err

from lrtune._validation import check_float, check_int, fail
from lrtune.exceptions import ObjectiveError, ObjectiveFailedError
from lrtune.records import TrialRecord, TrialState
from lrtune.space import Space
from lrtune.strategies import FINISHED, Proposal, Strategy, make_strategy
from lrtune.strategies._base import answer_of
from lrtune.study import Study
from lrtune.study._heartbeat import WorkerId
from lrtune.study._runner import run_trial, stop_on_repeated_failure
from lrtune.study._tune import MAX_BUDGET
from lrtune.trial import Trial

SETTINGS = ("steps", "trial_number", "lrtune_tag")  # config keys that are not the trial's params
RESULTS = ("lrtune_state", "lrtune_record", "lrtune_contract")  # what a trial reports beside
# the metric


class LrtuneSearcher(Searcher):
    """A Ray Tune ``Searcher`` that asks an lrtune strategy (``auto`` by default) what to train.

    The arguments mean what they mean for :func:`lrtune.tune`. The study lives in this object
    (``study``; ``best`` is its answer); Tune is told FINISHED when the budget is spent.
    """

    def __init__(self, *, steps: int, budget: float = 2.0, strategy: str | Strategy = "auto",
                 space: Space | None = None, seed: int = 0, metric: str = "loss") -> None:
        owner = "LrtuneSearcher()"
        check_int(steps, "steps", owner)
        check_float(budget, "budget", owner, low=0.0, high=MAX_BUDGET)
        check_int(seed, "seed", owner, minimum=0)
        if space is not None and not isinstance(space, Space):
            raise fail("space", owner, "an lrtune.Space", space)
        if not isinstance(metric, str) or not metric or metric in RESULTS:
            raise fail("metric", owner, f"a non-empty str other than {', '.join(RESULTS)}",
                       metric)
        chosen = make_strategy(strategy)
        if budget < chosen.min_budget:  # Tune would end at once, without a trial
            raise fail("budget", owner, f"at least {chosen.min_budget:g} full runs for the "
                       f"{chosen.name!r} strategy to run one trial", budget)
        super().__init__(metric=metric, mode="min")
        self.study = Study.open(storage=None, study_name=None, space=space or Space(),
                                steps=steps, budget=budget, strategy=chosen, seed=seed)
        self._running: dict[str, int] = {}  # Ray Tune's trial id -> the study's trial id
        # why the sweep must stop, raised at Tune's next suggest(): Tune takes an error raised in
        # on_trial_complete for the trial's own and goes on
        self._stop: Exception | None = None
        self._me = WorkerId.of_this_process().as_attr()

    @property
    def best(self) -> TrialRecord | None:
        """The strategy's answer: the trial whose LR (and params) to use."""
        return self.study.best

    # Ray types suggest() as dict | None, but documents Searcher.FINISHED (a str) as an answer
    def suggest(self, trial_id: str) -> dict[str, Any] | str | None:
        if self._stop is not None:
            raise self._stop
        context = self.study.context()
        proposal = answer_of(self.study.strategy, context)  # the budget applied, as in workers
        if not isinstance(proposal, Proposal):  # WAIT, or FINISHED while trials still run (one
            # that stops early gives steps back): ask again later; done once nothing runs
            return Searcher.FINISHED if proposal is FINISHED and not self._running else None
        study_id, number = self.study.start_trial(proposal.params, proposal.steps, proposal.tag,
                                                  self._me)
        self._running[trial_id] = study_id
        return {**proposal.params, "steps": proposal.steps, "trial_number": number,
                "lrtune_tag": proposal.tag}

    def set_search_properties(self, metric: str | None, mode: str | None,
                              config: dict[str, Any], **spec: Any) -> bool:
        """Tune passes a ``Tuner(param_space=...)`` here, which a trial cannot use: its
        parameters are the space's (an lrtune objective gets no others)."""
        if config:
            raise fail("param_space", "Tuner() with an LrtuneSearcher", "empty: the searcher's "
                       "Space sets every parameter of a trial; give the objective its constants "
                       "itself (a closure, functools.partial)", config)
        return True

    def on_trial_complete(self, trial_id: str, result: dict[str, Any] | None = None,
                          error: bool = False) -> None:
        """Record how the trial ended. Where ``lrtune.tune`` would stop (an objective that broke
        its contract, or that fails the same way every time), the next ``suggest`` raises why,
        which ends ``Tuner.fit``."""
        study_id = self._running.pop(trial_id, None)
        if study_id is None:
            return
        if error:
            error_text = "the Ray Tune trial raised an error (see its log)"
            self.study.finish_trial(study_id, TrialState.FAILED, None, steps_done=1,
                                    error=error_text)
        elif not result or "lrtune_state" not in result:
            # ended by Tune before it reported (a time budget, a stop): no verdict on its config
            self.study.finish_trial(study_id, TrialState.LOST, None, steps_done=1,
                                    error="lost: Ray Tune ended it before it reported")
            return
        else:
            state = TrialState(result["lrtune_state"])
            value = result[self.metric] if state is TrialState.COMPLETED else None
            record = json.loads(result["lrtune_record"])
            self.study.finish_trial(study_id, state, value, **record)
            if result.get("lrtune_contract"):
                self._stop = ObjectiveError(result["lrtune_contract"])
                return
            if state is not TrialState.FAILED:
                return
            error_text = record["error"]
        try:  # the worker's exception stays there: its description stands in as the cause
            stop_on_repeated_failure(self.study, RuntimeError(error_text))
        except ObjectiveFailedError as err:
            self._stop = err

    def trainable(self, objective: Callable[[Trial], float]) -> Callable[[dict[str, Any]], None]:
        """A Ray Tune function trainable that runs the lrtune ``objective`` on a suggested
        config."""
        study = self.study
        settings = dict(space=study.space, steps=study.steps, budget=study.budget,
                        strategy=study.strategy, seed=study.seed)
        metric = self.metric

        def train(config: dict[str, Any]) -> None:
            ray_tune.report(_run(objective, config, settings, metric))

        return train


def _run(objective: Callable[[Trial], float], config: dict[str, Any], settings: dict[str, Any],
         metric: str) -> dict[str, Any]:
    """Train one suggested config as a worker of lrtune would; the result Ray Tune gets."""
    here = Study.open(storage=None, study_name=None, **settings)  # the record of this one trial
    params = {k: v for k, v in config.items() if k not in SETTINGS}
    proposal = Proposal(params, config["steps"], config["lrtune_tag"])
    trial_id, _ = here.start_trial(params, proposal.steps, proposal.tag,
                                   WorkerId.of_this_process().as_attr())
    contract = ""  # why the objective broke its contract: the searcher stops the sweep with it
    try:
        # never None: only another worker can take a trial from this one, and none shares
        # ``here``
        record = run_trial(here, objective, proposal, trial_id, config["trial_number"])
    except ObjectiveError as err:  # recorded as FAILED first; reported, not raised, so that
        # the searcher gets the record
        record, contract = here.record(trial_id), str(err)
    assert record is not None
    loss = record.value if record.state is TrialState.COMPLETED else math.inf
    # the record as one JSON string: Ray Tune flattens nested dicts into "a/b" keys
    return {metric: loss, "lrtune_state": record.state.value, "lrtune_contract": contract,
            "lrtune_record": json.dumps({
                "steps_done": record.steps_done, "diagnosis": record.diagnosis,
                "error": record.error, "history": [list(point) for point in record.history],
                "wall_time": record.wall_time})}
