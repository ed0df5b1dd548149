"""A worker process started by ``tune(workers=N)``: ``python -m lrtune.study._child JOB ERROR``.

Reads the job the parent wrote (its ``sys.path`` first, so the objective's modules import as
they did there), opens the study and works on it. An error that stops the worker is pickled to
ERROR for the parent to raise; exit status 0 means the study is done, 130 or 143 that Ctrl-C or
SIGTERM stopped it (its running trial marked lost).
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import cloudpickle

from lrtune.exceptions import LrtuneError
from lrtune.study._processes import open_job
from lrtune.study._worker import interrupt_on_sigterm, run_worker


def main(job_path: str, error_path: str) -> int:
    interrupt_on_sigterm()
    logging.basicConfig(level=logging.WARNING, format="lrtune worker %(process)d: %(message)s")
    try:  # an error opening the study goes to the parent too: a restart would only repeat it
        run_worker(*open_job(Path(job_path).read_bytes()))
    except KeyboardInterrupt:  # Ctrl-C reaches the whole process group: the parent reports it
        return 130
    except SystemExit as stop:  # SIGTERM, forwarded by the parent: the trial is marked lost
        return stop.code if isinstance(stop.code, int) else 1
    except Exception as err:  # noqa: BLE001 - any failure of the objective goes back to the parent
        try:
            data = cloudpickle.dumps(err)
        except Exception:  # noqa: BLE001 - an exception that does not pickle: keep its message
            data = cloudpickle.dumps(LrtuneError(f"{type(err).__name__}: {err}"))
        Path(error_path).write_bytes(data)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
