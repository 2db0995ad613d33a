"""The ``imtrans`` console script: ``imtrans [run] <hydra overrides>``.

Further subcommands (translate, evaluate, export, check) register in ``SUBCOMMANDS``.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {"run": "imtrans.run"}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        module = SUBCOMMANDS[sys.argv.pop(1)]
    else:
        module = SUBCOMMANDS["run"]
    importlib.import_module(module).main()


if __name__ == "__main__":
    main()
