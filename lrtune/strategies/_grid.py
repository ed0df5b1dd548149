"""Grid search: log-spaced LRs (crossed with every choice of the space), full-length runs."""

from __future__ import annotations

from lrtune.strategies._base import Answer, Context, Strategy, full_run_count, next_untried


class GridStrategy(Strategy):
    name = "grid"

    def ask(self, context: Context) -> Answer:
        space = context.space
        combos = space.choices()
        per_combo = max(1, full_run_count(context) // len(combos))
        lr = space.lr_range
        # points at the centres of equal log-width cells: never the extremes of the range;
        # built one by one, as far as the first untried (a large budget allocates nothing)
        candidates = ({**base, "lr": float(lr.value((i + 0.5) / per_combo))}
                      for base in (space.config(lr.low, **combo) for combo in combos)
                      for i in range(per_combo))
        return next_untried(context, candidates, context.full_steps, "grid")
