"""What ``Trial.report`` costs on the per-step path, against a bare training step.

    nice -n 10 .venv/bin/python -m benchmarks.report_overhead            # this checkout
    nice -n 10 .venv/bin/python -m benchmarks.report_overhead --no-write # print only

Two figures, one torch thread: ``Trial.report(loss_tensor, step)`` in a tight loop of its own
(read-backs included: one stacked transfer every 16 reports), and the training step of the
digits MLP (batch 32, SGD + momentum) with and without a report after it. Step timings come in
alternating blocks (bare, reported, bare, ...) so machine load hits both alike; the medians
over blocks are shown. The machine's load average is printed with them: on a shared machine
the per-step difference is noisier than the tight loop, which is the figure to compare.
"""

from __future__ import annotations

import argparse
import itertools
import os
import statistics
import time

import torch

import lrtune
from benchmarks.results_md import publish
from lrtune.tasks import get_task
from lrtune.trial import Trial

TIGHT_CALLS = 200_000
BLOCKS, BLOCK_STEPS = 21, 200
SECTION = "## Trial.report on the per-step path"


def _trial() -> Trial:
    space = lrtune.Space(lr=0.05, optimizer="sgd")
    steps = 10**9  # never ends; the read-back interval is the trials' usual 16
    return Trial(0, space.config(0.05), steps, 0, space, full_steps=steps)


def tight_loop_us() -> float:
    """Microseconds per ``report`` call, the loss a tensor that needs grad (as in training)."""
    loss = torch.tensor(1.5, requires_grad=True) * 2
    trial = _trial()
    start = time.process_time()
    for step in range(TIGHT_CALLS):
        trial.report(loss, step)
    return (time.process_time() - start) / TIGHT_CALLS * 1e6


def step_times_us() -> tuple[list[float], list[float]]:
    """Microseconds per bare digits MLP step, and per step followed by a report, block by
    block (alternating)."""
    task = get_task("digits")
    model = task.make_model(0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    batches = itertools.chain.from_iterable(task.train_loader(0) for _ in itertools.count())
    trial, step = _trial(), 0

    def block(report: bool) -> float:
        nonlocal step
        start = time.process_time()
        for _ in range(BLOCK_STEPS):
            loss = task.forward_loss(model, *next(batches))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if report:
                trial.report(loss, step)
            step += 1
        return (time.process_time() - start) / BLOCK_STEPS * 1e6

    block(False)  # warm-up
    bare, reported = [], []
    for _ in range(BLOCKS):
        bare.append(block(False))
        reported.append(block(True))
    return bare, reported


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--no-write", action="store_true", help="print, do not edit RESULTS.md")
    args = parser.parse_args()
    torch.set_num_threads(1)
    tight = tight_loop_us()
    bare_blocks, reported_blocks = step_times_us()
    bare, reported = statistics.median(bare_blocks), statistics.median(reported_blocks)
    # the spread of the difference between neighbouring blocks says what is noise
    low, _, high = statistics.quantiles(
        [r - b for b, r in zip(bare_blocks, reported_blocks, strict=True)], n=4)
    load = os.getloadavg()[0]
    raw = {"tight_us": tight, "bare_step_us": bare_blocks, "reported_step_us": reported_blocks,
           "load_average": load, "cpus": os.cpu_count()}
    text = "\n".join([
        SECTION, "",
        "Command: `nice -n 10 .venv/bin/python -m benchmarks.report_overhead` (one torch thread, "
        f"CPU time; load average {load:.1f} on {os.cpu_count()} CPUs while it ran).", "",
        "| what | time |", "|---|---|",
        f"| `Trial.report(loss, step)` in a tight loop (read-backs included) "
        f"| {tight:.2f} µs a call |",
        f"| digits MLP training step, bare (median of {BLOCKS} blocks of {BLOCK_STEPS}) "
        f"| {bare:.1f} µs |",
        f"| the same step followed by `Trial.report` | {reported:.1f} µs |",
        f"| difference of the medians | {reported - bare:.2f} µs "
        f"({100 * (reported - bare) / bare:.1f}% of the step) |",
        f"| difference between neighbouring blocks, 25th-75th percentile "
        f"| {low:.1f} to {high:.1f} µs |",
        "",
        f"The tight loop is the figure to compare: {tight:.2f} µs is "
        f"{100 * tight / bare:.1f}% of the bare step. The step difference is the same cost "
        "inside training, within the noise the last row shows.",
        "",
    ])
    publish(SECTION, text, "report_overhead.json", raw, write=not args.no_write)


if __name__ == "__main__":
    main()
