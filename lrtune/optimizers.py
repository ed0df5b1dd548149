"""Optimizer registry: a name maps to a torch optimizer, its defaults and the LR range worth
searching.

The ranges are where each family usually trains well across small and medium models (a decade of
margin on both sides); the search space takes them as its default bounds when the user gives none.
"""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import torch

from lrtune._validation import check_choice, check_float, fail


@dataclass(frozen=True)
class OptimizerSpec:
    """How to build one optimizer family and which LRs are worth trying for it."""

    name: str
    cls: type[torch.optim.Optimizer]
    lr_range: tuple[float, float]
    default_lr: float
    defaults: Mapping[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # a read-only copy: a write through a registered spec would change the family for every
        # later optimizer in the process
        object.__setattr__(self, "defaults", MappingProxyType(dict(self.defaults)))

    def __reduce__(self) -> tuple[Any, ...]:
        # a mappingproxy does not pickle: rebuild from a dict (an objective sent to workers may
        # hold a spec)
        return OptimizerSpec, (self.name, self.cls, self.lr_range, self.default_lr,
                               dict(self.defaults))

    def build(
        self,
        params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
        lr: float,
        weight_decay: float = 0.0,
        **options: Any,
    ) -> torch.optim.Optimizer:
        """Build the optimizer; ``options`` override the family's defaults (e.g. ``momentum``)."""
        owner = f"OptimizerSpec('{self.name}').build()"
        # the plain floats, not a NumPy scalar as given: the optimizer's state_dict keeps them,
        # and torch.load(weights_only=True) refuses NumPy scalars
        lr = check_float(lr, "lr", owner, low=0.0)
        weight_decay = check_float(weight_decay, "weight_decay", owner, low=0.0,
                                   low_inclusive=True)
        kwargs = {**self.defaults, **options}
        unknown = set(kwargs) - _accepted_kwargs(self.cls)
        if unknown:
            raise fail(
                "options", owner,
                f"keyword arguments accepted by {self.cls.__name__}", sorted(unknown),
            )
        # torch types the Optimizer base as (params, defaults); the registered subclasses take these
        return self.cls(  # type: ignore[call-arg]
            params, lr=lr, weight_decay=weight_decay, **kwargs)

    def takes(self, option: str) -> bool:
        """Whether the family's optimizer accepts the keyword ``option`` (``momentum``)."""
        return option in _accepted_kwargs(self.cls)


def _accepted_kwargs(cls: type[torch.optim.Optimizer]) -> set[str]:
    return set(inspect.signature(cls.__init__).parameters) - {"self", "params"}


_SPECS = (
    OptimizerSpec("sgd", torch.optim.SGD, (1e-4, 3.0), 0.1, {"momentum": 0.9}),
    OptimizerSpec("sgd-nesterov", torch.optim.SGD, (1e-4, 3.0), 0.1,
                  {"momentum": 0.9, "nesterov": True}),
    OptimizerSpec("sgd-plain", torch.optim.SGD, (1e-3, 10.0), 0.5),
    OptimizerSpec("adagrad", torch.optim.Adagrad, (1e-4, 1.0), 1e-2),
    OptimizerSpec("rmsprop", torch.optim.RMSprop, (1e-6, 1e-1), 1e-3, {"alpha": 0.99}),
    OptimizerSpec("adam", torch.optim.Adam, (1e-6, 1e-1), 1e-3),
    OptimizerSpec("adamw", torch.optim.AdamW, (1e-6, 1e-1), 1e-3),
    OptimizerSpec("nadam", torch.optim.NAdam, (1e-6, 1e-1), 2e-3),
    OptimizerSpec("radam", torch.optim.RAdam, (1e-6, 1e-1), 1e-3),
)

OPTIMIZERS: Mapping[str, OptimizerSpec] = MappingProxyType({s.name: s for s in _SPECS})
"""Every registered optimizer family, by name."""


def get_optimizer_spec(name: str) -> OptimizerSpec:
    """The registered family called ``name`` (the error lists the valid names)."""
    check_choice(name, "name", "get_optimizer_spec()", OPTIMIZERS)
    return OPTIMIZERS[name]


def build_optimizer(
    name: str,
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    lr: float,
    weight_decay: float = 0.0,
    **options: Any,
) -> torch.optim.Optimizer:
    """Build the optimizer family ``name`` over ``params`` with learning rate ``lr``."""
    check_choice(name, "name", "build_optimizer()", OPTIMIZERS)
    return OPTIMIZERS[name].build(params, lr, weight_decay, **options)
