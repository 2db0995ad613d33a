"""``imtrans import METHOD PATH out=DIR [options] [overrides]`` (also ``python -m imtrans.official``).

Imports an official pretrained checkpoint into ``DIR`` as an imtrans run folder
(``config.yaml``, ``checkpoints/last.ckpt``, ``import.json``), which every imtrans tool then
takes as it is: ``imtrans translate ckpt=DIR``, ``imtrans evaluate ckpt=DIR``,
``imtrans export ckpt=DIR``, ``imtrans.load.load_model(DIR)``, and fine-tuning with
``python -m imtrans.run ... model.init_from=DIR``.

    imtrans import cyclegan checkpoints/horse2zebra_pretrained/latest_net_G.pth out=zoo/horse2zebra direction=a2b
    imtrans import munit outputs/edges2shoes_folder/checkpoints/ out=zoo/munit_e2s data=edges2shoes
    imtrans import pix2pixhd checkpoints/label2city_1024p/ out=zoo/label2city

METHOD    one of the formats in imtrans/official/formats/ (run without arguments to list them)
PATH      an official checkpoint file or the official checkpoint folder (the newest snapshot
          is chosen as the official resume chooses it)
out=DIR   where to write the imported run (required)
Other ``key=value`` arguments are the method's importer options (listed per method with
``imtrans import METHOD --help``) or Hydra overrides of the imtrans config (``data=...``,
``model.test_mode=eval``, ...), applied on top of the options read from the files.

Exit status: 0 on success; 2 for a wrong command line or a file that is not a valid official
checkpoint of METHOD (one line naming the file and the first offending key or shape).
"""

from __future__ import annotations

import sys
from pathlib import Path


def _usage() -> str:
    from imtrans.official import available_methods

    return __doc__ + f"\nMETHODs: {', '.join(available_methods())}\n"


def run(argv: list[str]) -> Path:
    """Parse ``argv`` and import; returns the output folder. Raises OfficialFormatError or
    SystemExit(usage) on a wrong command line."""
    from imtrans.official import OfficialFormatError, get_format, import_official

    positional = [a for a in argv if "=" not in a]
    keyed = [a for a in argv if "=" in a]
    if len(positional) != 2:
        raise OfficialFormatError(
            f"usage: imtrans import METHOD PATH out=DIR [options] [overrides] (got {' '.join(argv) or 'nothing'})"
        )
    method, path = positional
    fmt = get_format(method)
    out, options, overrides = None, {}, []
    for arg in keyed:
        key, _, value = arg.partition("=")
        if key == "out":
            out = value
        elif key in fmt.OPTIONS:
            options[key] = value
        else:
            overrides.append(arg)
    if not out:
        raise OfficialFormatError("out=DIR is required: the folder to write the imported run to")
    result = import_official(method, path, out, options=options, overrides=overrides)
    return result


def _report(out: Path) -> str:
    import json

    record = json.loads((out / "import.json").read_text())
    lines = []
    if record["dropped_keys"]:
        files = sorted({k.split(":", 1)[0] for k in record["dropped_keys"]})
        lines.append(
            f"imtrans import: notice: dropped {len(record['dropped_keys'])} legacy key(s) of old official "
            f"files (InstanceNorm statistics / DataParallel prefixes) from {', '.join(files)}"
        )
    lines.append(
        f"imtrans import: {record['method']} from {record['source']} -> {out} "
        f"(networks {', '.join(record['networks_imported'])}"
        + (f"; initialised fresh: {', '.join(record['networks_fresh'])}" if record["networks_fresh"] else "")
        + ")"
    )
    for note in record["notes"]:
        lines.append(f"  {note}")
    inputs = (
        "input=<label maps> inst=<instance maps>"
        if record.get("input_kind") == "labels"
        else "input=<images>"
    )
    arch = " ".join(o for o in record["overrides"] if not o.startswith(("+model.directions", "data=")))
    lines.append(f"  translate: imtrans translate ckpt={out} {inputs}")
    lines.append(f"  fine-tune: python -m imtrans.run {arch} data=<your data> model.init_from={out}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    from imtrans.official import OfficialFormatError, get_format

    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return
    if any(a in ("-h", "--help") for a in argv[1:]):
        try:
            fmt = get_format(argv[0])
        except OfficialFormatError as err:
            print(f"imtrans import: {err}", file=sys.stderr)
            sys.exit(2)
        print((fmt.__doc__ or "").strip())
        for name, text in fmt.OPTIONS.items():
            print(f"  {name}=...  {text}")
        return
    try:
        out = run(argv)
    except OfficialFormatError as err:
        print(f"imtrans import: {err}", file=sys.stderr)
        sys.exit(2)
    print(_report(out))


if __name__ == "__main__":
    main()
