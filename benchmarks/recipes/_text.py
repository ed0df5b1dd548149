"""Text recipes: characters of text the interpreter ships (CPython's help topics, the source of
a standard-library module), a GRU and a one-layer transformer predicting the next character."""

from __future__ import annotations

import functools
import inspect

import torch
from torch import nn

from lrtune.tasks import Split
from lrtune.tasks._charlm import shipped_text

CONTEXT = 16


@functools.cache
def characters(source: str, train_chars: int = 40_000, val_chars: int = 8_000) -> Split:
    """Next-character windows over ``"help"`` (prose) or ``"code"`` (argparse's source)."""
    if source == "help":
        text = shipped_text()
    else:
        import argparse

        text = inspect.getsource(argparse)
    text = text[: train_chars + val_chars]
    lookup = {c: i for i, c in enumerate(sorted(set(text)))}
    ids = torch.tensor([lookup[c] for c in text], dtype=torch.long)
    train = ids[:train_chars].unfold(0, CONTEXT + 1, 3)
    val = ids[train_chars:].unfold(0, CONTEXT + 1, CONTEXT + 1)
    return Split(train[:, :-1], train[:, 1:], val[:, :-1], val[:, 1:])


def vocabulary(split: Split) -> int:
    return int(max(t.max() for t in (split.x_train, split.y_train, split.x_val, split.y_val))) + 1


class CharGRU(nn.Module):
    def __init__(self, vocab: int, dim: int = 32) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.gru = nn.GRU(dim, dim, batch_first=True)
        self.head = nn.Linear(dim, vocab)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.head(self.gru(self.embed(tokens))[0])


class CharTransformer(nn.Module):
    """One post-norm causal transformer layer (torch's default layout, unlike the built-in task)."""

    def __init__(self, vocab: int, dim: int = 32, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(0.02 * torch.randn(CONTEXT, dim))
        self.block = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True)
        self.head = nn.Linear(dim, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(CONTEXT),
                             persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position
        return self.head(self.block(h, src_mask=self.mask, is_causal=True))


def gru(split: Split) -> nn.Module:
    return CharGRU(vocabulary(split))


def transformer(split: Split) -> nn.Module:
    return CharTransformer(vocabulary(split))
