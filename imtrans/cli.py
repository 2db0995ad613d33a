"""The ``imtrans`` console script: ``imtrans [COMMAND] [arguments]``.

``imtrans run ...`` (or ``imtrans`` followed directly by Hydra overrides or Hydra's own flags,
``imtrans model=cut data=shapes``, ``imtrans --multirun ...``) trains; the other commands run the
other entry points, each with its own ``--help``. ``imtrans --help`` lists them, ``imtrans
--version`` prints the versions that matter in a bug report, and a first word that is neither a
command nor an override (a typo) is refused with the closest command rather than handed to Hydra,
whose grammar error would not say what went wrong.
"""

from __future__ import annotations

import difflib
import importlib
import sys
from importlib import metadata

#: command -> (the module whose ``main()`` runs it, one line for ``imtrans --help``)
SUBCOMMANDS = {
    "run": ("imtrans.run", "train and test a model (Hydra overrides; the default command)"),
    "translate": ("imtrans.translate", "translate your own images with a trained checkpoint"),
    "export": ("imtrans.export", "export a checkpoint's generator (TorchScript, ONNX, safetensors weights)"),
    "check": ("imtrans.data.check", "check a data set before training"),
    "evaluate": ("imtrans.evaluate", "score a checkpoint or folders of images (FID, KID, LPIPS, ...)"),
    "import": ("imtrans.official.__main__", "import an official pretrained checkpoint as an imtrans run"),
    "zoo": ("imtrans.official.zoo", "list, fetch and import the officially published models"),
    "reproduce": ("imtrans.reproduce", "measure a zoo model's published numbers again and compare"),
    "app": ("imtrans.app", "a local web app: translate, sample styles, paint label maps (imtrans[app])"),
}

HELP_FLAGS = ("-h", "--help", "help")
VERSION_FLAGS = ("-V", "--version")


def usage() -> str:
    """The text of ``imtrans --help``: the commands, one line each, and where each one's help is."""
    width = max(len(name) for name in SUBCOMMANDS)
    lines = [
        "usage: imtrans [COMMAND] [arguments]",
        "",
        "commands:",
        *(f"  {name:<{width}}  {text}" for name, (_, text) in SUBCOMMANDS.items()),
        "",
        "imtrans <command> --help    the command's own help (`imtrans run --help` is Hydra's help",
        "                            with the config groups and their options)",
        "imtrans key=value ...       Hydra overrides without a command start a run, as do",
        "                            Hydra's flags: imtrans --multirun ..., imtrans --cfg job",
        "imtrans --version           the versions of imtrans, torch and lightning",
    ]
    return "\n".join(lines)


def version() -> str:
    """``imtrans <version> (torch <version>, lightning <version>)``, read from the installed
    packages' metadata, so that nothing heavy is imported."""

    def of(package: str) -> str:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return "not installed"

    return f"imtrans {of('imtrans')} (torch {of('torch')}, lightning {of('lightning')})"


def is_run_argument(arg: str) -> bool:
    """Whether ``arg`` belongs to a run without ``run`` before it: a Hydra override
    (``key=value``, ``+key=value``, ``~key``) or a flag (``--multirun``, ``-m``, ``--cfg``)."""
    return "=" in arg or arg.startswith(("-", "+", "~"))


def unknown_command(word: str) -> str:
    """The one-line refusal of a first word that is not a command, with the closest one."""
    close = difflib.get_close_matches(word, list(SUBCOMMANDS), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return f"imtrans: unknown command '{word}'; {hint}commands: {', '.join(SUBCOMMANDS)}"


def main() -> None:
    """Dispatch ``sys.argv`` to a command; the command reads the rest of ``sys.argv`` itself."""
    first = sys.argv[1] if len(sys.argv) > 1 else None
    if first in HELP_FLAGS:
        print(usage())
        return
    if first in VERSION_FLAGS:
        print(version())
        return
    if first in SUBCOMMANDS:
        module = SUBCOMMANDS[sys.argv.pop(1)][0]
    elif first is None or is_run_argument(first):
        module = SUBCOMMANDS["run"][0]  # `imtrans` alone, or overrides: a run, as before commands
    else:
        print(unknown_command(first), file=sys.stderr)
        sys.exit(2)
    importlib.import_module(module).main()


if __name__ == "__main__":
    main()
