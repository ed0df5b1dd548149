"""A tiny character-level transformer on text the Python interpreter ships, AdamW + warm-up +
cosine.

The text is CPython's own help topics (``pydoc_data.topics``): English prose and code examples,
present in every standard installation, so nothing is downloaded.
"""

from __future__ import annotations

import torch
from torch import nn

from lrtune.schedules import Cosine, Schedule, with_warmup
from lrtune.tasks._base import Task
from lrtune.tasks._data import Split

CONTEXT = 32
TRAIN_CHARS = 60_000
VAL_CHARS = 12_000


def shipped_text() -> str:
    from pydoc_data.topics import topics

    return "\n".join(topics[key] for key in sorted(topics))


class CharTransformer(nn.Module):
    """Pre-norm causal transformer over characters."""

    mask: torch.Tensor  # a buffer, registered in __init__

    def __init__(self, vocab: int, dim: int = 64, layers: int = 2, heads: int = 4) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab, dim)
        self.position = nn.Parameter(torch.zeros(CONTEXT, dim))
        nn.init.normal_(self.position, std=0.02)
        layer = nn.TransformerEncoderLayer(dim, heads, 2 * dim, dropout=0.0, batch_first=True,
                                           norm_first=True)
        self.blocks = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(dim)
        self.head = nn.Linear(dim, vocab)
        self.register_buffer("mask", nn.Transformer.generate_square_subsequent_mask(CONTEXT),
                             persistent=False)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        h = self.embed(tokens) + self.position[: tokens.shape[1]]
        h = self.blocks(h, mask=self.mask[: tokens.shape[1], : tokens.shape[1]], is_causal=True)
        return self.head(self.norm(h))


class CharLM(Task):
    name = "charlm"
    description = "tiny character transformer on CPython's help text, AdamW, warm-up + cosine"
    steps = 300
    batch_size = 32
    optimizer = "adamw"
    weight_decay = 1e-2
    grad_clip = 1.0

    def load_data(self) -> Split:
        text = shipped_text()[: TRAIN_CHARS + VAL_CHARS]
        self.vocab = sorted(set(text))
        lookup = {c: i for i, c in enumerate(self.vocab)}
        ids = torch.tensor([lookup[c] for c in text], dtype=torch.long)
        train = ids[:TRAIN_CHARS].unfold(0, CONTEXT + 1, 4)  # overlapping windows for training
        val = ids[TRAIN_CHARS:].unfold(0, CONTEXT + 1, CONTEXT + 1)
        return Split(train[:, :-1], train[:, 1:], val[:, :-1], val[:, 1:])

    def build_model(self) -> nn.Module:
        _ = self.data  # the vocabulary size comes from the data
        return CharTransformer(len(self.vocab))

    def schedule(self, steps: int) -> Schedule:
        return with_warmup(Cosine(total_steps=steps, min_factor=0.1), max(1, steps // 10))

    def forward_loss(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        logits = model(x)
        return nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))
