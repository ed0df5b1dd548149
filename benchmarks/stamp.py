"""The line each generated section of RESULTS.md carries: what code and machine produced it."""

from __future__ import annotations

import platform
import subprocess
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parent.parent


def commit() -> str:
    """The checked-out commit, with ``+dirty`` when tracked files differ from it (RESULTS.md
    aside: it is the output, and the sections of one session are published one after another)."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True,
                              check=False).stdout.strip()

    head = git("rev-parse", "--short=10", "HEAD") or "unknown"
    return head + ("+dirty" if git("status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":!benchmarks/RESULTS.md") else "")


def cpu_model() -> str:
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def stamp() -> str:
    """``Produced at commit ..., torch ..., N torch thread(s), CPU ...``."""
    threads = torch.get_num_threads()
    return (f"Produced at commit `{commit()}`, torch {torch.__version__}, {threads} torch "
            f"thread{'s' if threads != 1 else ''}, CPU: {cpu_model()}.")
