"""``python -m lrtune.cli``: the same as the ``lrtune`` command."""

from lrtune.cli import main

main()
