"""Where a study keeps the LR range test run before it: one JSON user attr on the study.

The report draws the range test only when a study carries one, so whoever runs ``find`` for a
study (the Lightning integration, a user's script) stores its result here.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lrtune.finder import FinderResult
    from lrtune.study import Study

RANGE_TEST_ATTR = "lrtune:finder"


def store_range_test(study: Study, result: FinderResult) -> None:
    """Keep ``result`` with ``study`` so its report shows the range-test curve and band."""
    study.optuna.set_user_attr(RANGE_TEST_ATTR, result.to_dict())


def stored_range_test(study: Study) -> dict[str, Any] | None:
    """The range test stored with ``study`` (``FinderResult.to_dict()`` data), if any."""
    data = study.optuna.user_attrs.get(RANGE_TEST_ATTR)
    return data if isinstance(data, dict) and data.get("lr") else None
