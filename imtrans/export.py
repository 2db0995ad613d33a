"""Export the inference generator of a checkpoint as TorchScript and ONNX, and check the files.

Usage (``key=value`` arguments, like ``imtrans.translate``)::

    python -m imtrans.export ckpt=outputs/cyclegan_shapes/<date>              # every direction
    imtrans export ckpt=run/checkpoints/last.ckpt direction=a2b formats=torchscript
    imtrans export ckpt=run out=shipped/ size=256 atol=1e-4

Keys
    ``ckpt``       a checkpoint or a run directory; required
    ``out``        output folder (default ``<run dir>/export``)
    ``direction``  ``a2b``, ``b2a`` or ``all`` (default: every direction of the method)
    ``formats``    comma-separated, among ``torchscript`` and ``onnx`` (default both; ONNX is skipped
                   with a one-line notice when the ``onnx`` package is missing: ``pip install 'imtrans[onnx]'``)
    ``size``       side of the square example input used to trace and check (default: the training
                   crop size, rounded up to what the generator needs)
    ``batch``      batch size of the check input (default 2)
    ``ema``        ``auto`` (default) exports the generator EMA weights when the checkpoint has them,
                   ``true`` requires them, ``false`` exports the raw generator
    ``atol``       largest max-abs difference accepted between the exported file and PyTorch (1e-4)
    ``opset``      ONNX opset (default 17)
    ``seed``       seeds the check input and style codes (default 0)

What is exported
    One file per direction and format: ``generator_<direction>.pt`` (TorchScript, ``torch.jit.load``)
    and ``generator_<direction>.onnx``, holding only the generator modules that direction uses,
    in eval mode (dropout off, running statistics). Inputs: ``image`` N x C x H x W in [-1, 1]
    and, for multimodal methods, ``style`` N x style_dim (draw it from N(0, I) for random
    styles); output N x C' x H x W in [-1, 1]. H and W must be multiples of ``size_multiple``;
    batch, height and width are dynamic. ``export.json`` records these facts per file.
    pix2pix's paper-style test-time dropout is not exported (the export is the eval-mode network).

The check
    Every written file is loaded back and run on seeded example inputs (batch ``batch`` at
    ``size`` x ``size``, and batch 1 at ``size`` x (``size`` + ``size_multiple``)) and compared with the PyTorch module; the largest absolute
    difference and the tolerance are printed. ONNX files are run with ``onnxruntime`` when it is
    installed, else only validated with ``onnx.checker``. Exit status 1 when a check fails,
    2 for a wrong command line.
"""

from __future__ import annotations

import importlib.util
import json
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from imtrans import inference as inf
from imtrans.methods.base import TranslationModule

FORMATS = ("torchscript", "onnx")
ONNX_MISSING = (
    "ONNX export needs the 'onnx' package, which is not installed: pip install 'imtrans[onnx]' "
    "(onnx, onnxruntime); skipped"
)

SPEC = {
    "ckpt": (str, ...),
    "out": (str, None),
    "direction": (str, "all"),
    "formats": (str, "torchscript,onnx"),
    "size": (int, None),
    "batch": (int, 2),
    "ema": (str, "auto"),
    "atol": (float, 1e-4),
    "opset": (int, 17),
    "seed": (int, 0),
}


class InferenceGenerator(nn.Module):
    """``forward(image[, style])``: one direction of a method's ``generate``, owning only the
    generator modules that direction uses (the method itself is held outside the module tree)."""

    def __init__(self, model: TranslationModule, direction: str, modules: dict[str, nn.Module]):
        super().__init__()
        self.generators = nn.ModuleDict(modules)
        object.__setattr__(self, "_generate", model.generate)  # a plain attribute, not a submodule
        self.direction = direction

    def forward(self, image: torch.Tensor, style: torch.Tensor | None = None) -> torch.Tensor:
        return self._generate(image, self.direction, style)


def used_generators(model: TranslationModule, direction: str, example: tuple) -> dict[str, nn.Module]:
    """The ``generator_modules()`` entries whose layers run when translating ``direction``."""
    fired: set[str] = set()
    handles = []
    for name, module in model.generator_modules().items():
        for sub in module.modules():
            handles.append(sub.register_forward_hook(lambda *_, n=name: fired.add(n)))
    try:
        with torch.no_grad():
            model.generate(example[0], direction, example[1] if len(example) > 1 else None)
    finally:
        for h in handles:
            h.remove()
    return {n: m for n, m in model.generator_modules().items() if n in fired}


def example_inputs(
    model: TranslationModule, direction: str, size: int, batch: int, seed: int, width: int | None = None
) -> tuple[torch.Tensor, ...]:
    """A seeded input (and style code for multimodal methods) on the model's device."""
    src_nc, _ = inf.channels(model, direction)
    g = torch.Generator().manual_seed(seed)
    x = (torch.rand(batch, src_nc, size, width or size, generator=g) * 2 - 1).to(model.device)
    if not model.is_multimodal:
        return (x,)
    torch.manual_seed(seed)
    style_dim = inf.sample_styles(model, 1, direction).shape[1]
    return x, torch.randn(batch, style_dim, generator=g).to(model.device)


def build(model: TranslationModule, direction: str, size: int, seed: int = 0) -> InferenceGenerator:
    """The eval-mode wrapper of one direction."""
    for m in model.generator_modules().values():
        m.eval()
    example = example_inputs(model, direction, size, 1, seed)
    return InferenceGenerator(model, direction, used_generators(model, direction, example)).eval()


def export_torchscript(wrapper: InferenceGenerator, example: tuple, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation notices
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    traced.save(str(path))


def onnx_available() -> bool:
    return importlib.util.find_spec("onnx") is not None


def export_onnx(wrapper: InferenceGenerator, example: tuple, path: Path, opset: int) -> None:
    """ONNX through torch's exporter: the torch.export-based one when ``onnxscript`` is installed,
    else the TorchScript-based one (which needs only ``onnx``)."""
    names = ["image", "style"][: len(example)]
    axes = {"image": {0: "batch", 2: "height", 3: "width"}, "output": {0: "batch", 2: "height", 3: "width"}}
    if len(example) > 1:
        axes["style"] = {0: "batch"}
    dynamo = importlib.util.find_spec("onnxscript") is not None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            input_names=names,
            output_names=["output"],
            dynamic_axes=axes,
            opset_version=opset,
            dynamo=dynamo,
        )


def run_exported(path: Path, fmt: str, example: tuple) -> torch.Tensor | None:
    """Outputs of an exported file (None when ONNX cannot be run here: no onnxruntime)."""
    if fmt == "torchscript":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # "torch.jit.load is deprecated"
            loaded = torch.jit.load(str(path), map_location=example[0].device)
        with torch.no_grad():
            return loaded(*example)
    import onnx

    onnx.checker.check_model(onnx.load(str(path)))
    if importlib.util.find_spec("onnxruntime") is None:
        return None
    import onnxruntime

    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    feeds = {n: t.detach().cpu().numpy() for n, t in zip(names, example)}
    return torch.from_numpy(session.run(None, feeds)[0])


def check(wrapper: InferenceGenerator, path: Path, fmt: str, examples: list[tuple], atol: float) -> dict:
    """Largest |exported - PyTorch| over ``examples``; ``{"max_abs_diff", "atol", "ok", "ran"}``."""
    worst, ran = 0.0, True
    for example in examples:
        with torch.no_grad():
            expected = wrapper(*example).cpu()
        got = run_exported(path, fmt, example)
        if got is None:
            ran = False
            break
        if got.shape != expected.shape:
            return {"max_abs_diff": float("inf"), "atol": atol, "ok": False, "ran": True}
        worst = max(worst, float((got.cpu() - expected).abs().max()))
    return {
        "max_abs_diff": worst if ran else None,
        "atol": atol,
        "ok": (worst <= atol) if ran else True,
        "ran": ran,
    }


def export(
    ckpt: str | Path,
    out: str | Path | None = None,
    direction: str = "all",
    formats: str | list[str] = FORMATS,
    size: int | None = None,
    batch: int = 2,
    ema: str = "auto",
    atol: float = 1e-4,
    opset: int = 17,
    seed: int = 0,
    log=print,
) -> dict:
    """Export and check; returns the ``export.json`` content (``files``: one entry per file)."""
    formats = [f.strip() for f in formats.split(",")] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise inf.UsageError(f"formats={','.join(formats)}: choose among {', '.join(FORMATS)}")
    model, used_ema = inf.load_for_inference(ckpt, ema=ema)
    if getattr(model, "input_kind", "image") != "image":
        # The exported graph takes images; a label-map input (one-hot encoding of int ids,
        # instance boundaries) needs its own wrapper, not written yet.
        raise inf.UsageError(
            f"{type(model).__name__} translates {model.input_kind}, not images: export does not support it yet "
            "(imtrans translate does)"
        )
    ckpt_path = inf.resolve_checkpoint(ckpt)
    run_dir = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    out = Path(out) if out is not None else run_dir / "export"
    out.mkdir(parents=True, exist_ok=True)
    directions = list(model.directions) if direction == "all" else [direction]
    for d in directions:
        if d not in model.directions:
            raise inf.UsageError(
                f"direction={d}: {type(model).__name__} translates {', '.join(model.directions)}"
            )
    multiple = inf.size_multiple(model)
    side = size or inf.train_size(model) or multiple
    side = -(-side // multiple) * multiple
    if "onnx" in formats and not onnx_available():
        log(f"imtrans export: {ONNX_MISSING}")
        formats = [f for f in formats if f != "onnx"]
    info = {
        "method": type(model).__name__,
        "checkpoint": str(ckpt_path),
        "ema": used_ema,
        "multimodal": bool(model.is_multimodal),
        "size_multiple": multiple,
        "value_range": [-1, 1],
        "files": [],
    }
    log(
        f"imtrans export: {type(model).__name__} from {ckpt_path} "
        f"({'EMA' if used_ema else 'raw'} generator weights), check input {batch}x{side}x{side}"
    )
    for d in directions:
        wrapper = build(model, d, side, seed)
        # the traced shape, then batch 1 at a wider size: batch, height and width are dynamic
        examples = [
            example_inputs(model, d, side, batch, seed),
            example_inputs(model, d, side, 1, seed + 1, width=side + multiple),
        ]
        src_nc, tgt_nc = inf.channels(model, d)
        for fmt in formats:
            path = out / f"generator_{d}.{'pt' if fmt == 'torchscript' else 'onnx'}"
            if fmt == "torchscript":
                export_torchscript(wrapper, examples[0], path)
            else:
                export_onnx(wrapper, examples[0], path, opset)
            result = check(wrapper, path, fmt, examples, atol)
            entry = {
                "file": path.name,
                "format": fmt,
                "direction": d,
                "modules": list(wrapper.generators.keys()),
                "inputs": {"image": ["N", src_nc, "H", "W"]},
                "output": ["N", tgt_nc, "H", "W"],
                **result,
            }
            if model.is_multimodal:
                entry["inputs"]["style"] = ["N", int(examples[0][1].shape[1])]
            info["files"].append(entry)
            if result["ran"]:
                verdict = "ok" if result["ok"] else "FAILED"
                log(
                    f"  {path}: max |exported - pytorch| = {result['max_abs_diff']:.3g} "
                    f"(tolerance {atol:g}) {verdict}"
                )
            else:
                log(f"  {path}: valid ONNX (onnx.checker); not run: onnxruntime is not installed")
    (out / "export.json").write_text(json.dumps(info, indent=2) + "\n")
    return info


def main() -> None:
    if any(a in ("-h", "--help", "help") for a in sys.argv[1:]):
        print(__doc__)
        return
    try:
        args = inf.parse_key_values(sys.argv[1:], SPEC)
        info = export(**args)
    except (ValueError, FileNotFoundError) as err:  # UsageError, a wrong checkpoint
        print(f"imtrans export: {err}", file=sys.stderr)
        sys.exit(2)
    if not all(f["ok"] for f in info["files"]):
        sys.exit(1)


if __name__ == "__main__":
    main()
