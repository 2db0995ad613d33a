"""The ``imtrans`` console script: ``imtrans [run] <hydra overrides>``.

``imtrans translate|export|check|evaluate|import|zoo ...`` run the other entry points.
"""

from __future__ import annotations

import importlib
import sys

SUBCOMMANDS = {
    "run": "imtrans.run",
    "translate": "imtrans.translate",
    "export": "imtrans.export",
    "check": "imtrans.data.check",
    "evaluate": "imtrans.evaluate",
    "import": "imtrans.official.__main__",
    "zoo": "imtrans.official.zoo",
}


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] in SUBCOMMANDS:
        module = SUBCOMMANDS[sys.argv.pop(1)]
    else:
        module = SUBCOMMANDS["run"]
    importlib.import_module(module).main()


if __name__ == "__main__":
    main()
