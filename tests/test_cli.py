"""The ``imtrans`` command line: ``--help`` lists the commands and each command has its own help,
``--version`` is imtrans's, a mistyped command is refused with a suggestion while overrides and
Hydra flags still start a run; messages are cut between words; ``zoo show`` and the package's
comments hold nothing that only the developers have."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import numpy as np
import pytest
import torch

from imtrans import cli
from imtrans.errors import shorten
from imtrans.official import OfficialFormatError, read_file, zoo

PACKAGE = Path(cli.__file__).parent
COMMANDS = list(cli.SUBCOMMANDS)


def _main(monkeypatch, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["imtrans", *args])
    cli.main()


# ----------------------------------------------------------------------------- help, version
@pytest.mark.parametrize("flag", ["--help", "-h", "help"])
def test_help_lists_every_command(flag, monkeypatch, capsys):
    _main(monkeypatch, flag)
    out = capsys.readouterr().out
    for name in COMMANDS:
        assert re.search(rf"^  {name}\s+\w", out, re.MULTILINE), name
    assert "imtrans <command> --help" in out and "imtrans run --help" in out


@pytest.mark.parametrize("command", [c for c in COMMANDS if c != "run"])
def test_every_command_answers_help(command, monkeypatch, capsys):
    """Each command prints its own usage (not the list, not a run) and exits 0."""
    try:
        _main(monkeypatch, command, "--help")
    except SystemExit as stop:
        assert stop.code in (0, None)
    out = capsys.readouterr().out
    assert len(out.splitlines()) > 5 and "commands:" not in out


@pytest.mark.parametrize("flag", ["--version", "-V"])
def test_version(flag, monkeypatch, capsys):
    _main(monkeypatch, flag)
    out = capsys.readouterr().out
    assert (
        out == f"imtrans {metadata.version('imtrans')} (torch {metadata.version('torch')}, "
        f"lightning {metadata.version('lightning')})\n"
    )


# ----------------------------------------------------------------------------- dispatch
def test_mistyped_command_is_refused_with_a_suggestion(monkeypatch, capsys):
    with pytest.raises(SystemExit) as stop:
        _main(monkeypatch, "tranlsate", "ckpt=run")
    err = capsys.readouterr().err
    assert stop.value.code == 2 and err.count("\n") == 1
    assert err.startswith("imtrans: unknown command 'tranlsate'; did you mean 'translate'? ")
    assert err.rstrip().endswith("commands: " + ", ".join(COMMANDS))


@pytest.mark.parametrize(
    "args, module",
    [
        ([], "imtrans.run"),
        (["model=cut", "data=shapes"], "imtrans.run"),
        (["hydra.run.dir=out"], "imtrans.run"),
        (["+trainer.max_time=1"], "imtrans.run"),
        (["~logger"], "imtrans.run"),
        (["--multirun", "model=cut,pix2pix"], "imtrans.run"),
        (["-m", "seed=1,2"], "imtrans.run"),
        (["--cfg", "job"], "imtrans.run"),
        (["run", "model=cut"], "imtrans.run"),
        (["translate", "ckpt=run"], "imtrans.translate"),
        (["import", "cyclegan", "x.pth"], "imtrans.official.__main__"),
    ],
)
def test_overrides_and_flags_still_start_a_run(args, module, monkeypatch):
    """A first argument that is an override or a flag goes to the run, the command word removed
    from ``sys.argv`` only when there is one."""
    called = []

    class Module:
        @staticmethod
        def main():
            called.append(list(sys.argv))

    monkeypatch.setattr(cli.importlib, "import_module", lambda name: called.append(name) or Module)
    _main(monkeypatch, *args)
    rest = args[1:] if args and args[0] in COMMANDS else args
    assert called == [module, ["imtrans", *rest]]


def test_console_script_exit_status():
    """The real process: one line on stderr, exit status 2, no Hydra grammar error."""
    done = subprocess.run(
        [sys.executable, "-m", "imtrans.cli", "evalute"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.strip().splitlines() == [
        "imtrans: unknown command 'evalute'; did you mean 'evaluate'? commands: " + ", ".join(COMMANDS)
    ]


# ----------------------------------------------------------------------------- messages
def _cut_mid_word(text: str, result: str) -> bool:
    """Whether ``result`` (a shortened ``text``) ends between two word characters of ``text``."""
    kept = result.removesuffix("…")
    return len(kept) < len(text) and bool(re.match(r"\w\w", kept[-1:] + text[len(kept)]))


def test_shorten_never_cuts_mid_word():
    rng = random.Random(0)
    words = ["a", "checkpoint", "weights_only", "/very/long/path/to/latest_net_G.pth", "(x,", "y:", "—", "12"]
    for _ in range(300):
        text = " ".join(rng.choice(words) for _ in range(rng.randint(1, 30)))
        for width in (1, 5, 17, 40, 120):
            result = shorten(text, width)
            if len(text) <= width or " " not in text:  # short, or one word kept whole
                assert result == text
                continue
            assert result.endswith("…") and text.startswith(result[:-1]), (text, width, result)
            assert not _cut_mid_word(text, result), (text, width, result)
            first = text.split(" ")[0]
            assert len(result) <= max(width, len(first) + 1), (text, width, result)
    assert shorten("line one\n  line two", 120) == "line one line two"


def test_unreadable_file_messages_are_whole(tmp_path):
    """A text file is named as one; PyTorch's refusal of a pickled object keeps its sentence."""
    text = tmp_path / "iter.txt"
    text.write_text("1\n0\n")
    with pytest.raises(
        OfficialFormatError, match=r"iter\.txt: not a readable PyTorch checkpoint \(a text file\)$"
    ):
        read_file(text)
    numpy_object = tmp_path / "np.pth"
    torch.save({"x": np.float64(1.0)}, numpy_object)
    with pytest.raises(OfficialFormatError) as err:
        read_file(numpy_object)
    message = str(err.value)
    assert "Unsupported global: GLOBAL numpy" in message and message.endswith("by default.)")
    assert "weights_only" not in message and "\n" not in message


# ----------------------------------------------------------------------------- what users see
#: words of notes meant for the developers, never in `imtrans zoo show`
DEVELOPER_WORDS = re.compile(
    r"fixture|\btodo\b|fixme|pytest|tests/|\bwe\b|\.\./shared|shared/|OFFICIAL_CHECKPOINTS"
    r"|issue ?#?\d|not checked|checked here|verified here|read here|search tool",
    re.IGNORECASE,
)


def test_zoo_show_holds_no_developer_notes():
    for entry in zoo.load_zoo():
        text = zoo.show(entry, zoo.make_plan(entry, {}))
        assert not DEVELOPER_WORDS.search(text), (entry["name"], DEVELOPER_WORDS.search(text))
        assert "reported_note" not in text and "dev_notes" not in text
        assert f"name: {entry['name']}" in text and f"imtrans import {entry['method']} " in text


#: files of the developers' checkout beside the repository, which users of the package lack
OUTSIDE = re.compile(
    r"\.\./shared|\bshared/|\b(?:DESIGN|ENVIRONMENT|REFERENCE\w*|SHAPES_NOTES|OFFICIAL_CHECKPOINTS)(?:\.md)?\b"
)


def test_package_points_to_no_file_outside_the_repository():
    found = [
        f"{path.relative_to(PACKAGE.parent)}:{n}: {line.strip()}"
        for path in sorted(PACKAGE.rglob("*"))
        if path.suffix in (".py", ".yaml", ".yml")
        for n, line in enumerate(path.read_text().splitlines(), 1)
        if OUTSIDE.search(line)
    ]
    assert not found, "\n".join(found)
