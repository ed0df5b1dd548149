"""What a run was diagnosed as: a status, the evidence behind it, and a hint a person can act on."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any


class Status(str, enum.Enum):
    """The verdict on a run, ordered from most to least severe in :data:`SEVERITY`."""

    DIVERGED = "diverged"
    COLLAPSED = "collapsed"  # finite, but ended no better than the untrained model
    EXPLODING_GRADIENTS = "exploding_gradients"
    OVERFITTING = "overfitting"  # the held-out loss rose while the training loss fell
    OSCILLATING = "oscillating"
    VANISHING_GRADIENTS = "vanishing_gradients"
    STAGNANT = "stagnant"
    HEALTHY = "healthy"
    INCONCLUSIVE = "inconclusive"


SEVERITY: tuple[Status, ...] = tuple(Status)


@dataclass(frozen=True)
class Finding:
    """One thing seen in a run: what, at which step, the numbers, and what to do about it."""

    status: Status
    step: int | None
    evidence: str
    hint: str
    values: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        return f"{self.status.value}: {self.evidence}"


@dataclass(frozen=True)
class Diagnosis:
    """Every finding on a run; ``status`` is the most severe one's."""

    findings: tuple[Finding, ...]

    @property
    def primary(self) -> Finding:
        return min(self.findings, key=lambda f: SEVERITY.index(f.status))

    @property
    def status(self) -> Status:
        return self.primary.status

    @property
    def hint(self) -> str:
        return self.primary.hint

    @property
    def diverged(self) -> bool:
        return self.status is Status.DIVERGED

    def to_dict(self) -> dict[str, Any]:
        """Plain data (for study storage and JSON reports)."""
        return {
            "status": self.status.value,
            "hint": self.hint,
            "findings": [
                {"status": f.status.value, "step": f.step, "evidence": f.evidence,
                 "hint": f.hint, "values": f.values}
                for f in self.findings
            ],
        }

    def __str__(self) -> str:
        return f"{self.primary} ({self.hint})"
