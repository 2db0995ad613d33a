"""Export the inference generator of a checkpoint as TorchScript and ONNX (and its weights as
safetensors), and check the files.

Usage (``key=value`` arguments, like ``imtrans.translate``)::

    python -m imtrans.export ckpt=outputs/cyclegan_shapes/<date>              # every direction
    imtrans export ckpt=run/checkpoints/last.ckpt direction=a2b formats=torchscript
    imtrans export ckpt=run out=shipped/ size=256 atol=1e-4

Keys
    ``ckpt``       a checkpoint or a run directory; required
    ``out``        output folder (default ``<run dir>/export``)
    ``direction``  the tasks to export, comma-separated (``a2b``, ``b2a``, a target domain's name or
                   index), or ``all`` (default: every task the model declares)
    ``formats``    comma-separated, among ``torchscript``, ``onnx`` and ``safetensors`` (default
                   ``torchscript,onnx``; ONNX is skipped with a one-line notice when the ``onnx``
                   package is missing: ``pip install 'imtrans[onnx]'``)
    ``size``       side of the square example input used to trace and check (default: the training
                   crop size, rounded up to what the generator needs; a model of a fixed size uses it)
    ``batch``      batch size of the check input (default 2)
    ``ema``        ``auto`` (default) exports the generator EMA weights when the checkpoint has them,
                   ``true`` requires them, ``false`` exports the raw generator
    ``atol``       largest max-abs difference accepted between the exported file and PyTorch (1e-4)
    ``opset``      ONNX opset (default 17)
    ``seed``       seeds the check input and style codes (default 0)
    ``trust``      read a checkpoint holding Python objects other than tensors with full unpickling,
                   which runs any code in it (default false: refused, see :mod:`imtrans.load`)

What is exported
    What the model takes is read from its declaration, ``module.inference_spec()``
    (:mod:`imtrans.methods.spec`). One file per task, mode and format:
    ``generator_<task>.pt`` (TorchScript, ``torch.jit.load``) and ``generator_<task>.onnx``, and for
    methods that take reference images ``generator_<task>_reference.pt|.onnx``; each holds only the
    generator modules that task uses, in eval mode (dropout off, running statistics). Inputs, in
    order: ``image`` N x C x H x W in [-1, 1], or for label-map methods ``label`` (int64 N x H x W
    class ids) and ``inst`` (int64 N x H x W instance ids, when the model uses instance maps); then
    ``style`` for methods with a style code (N x style_dim, draw it from N(0, I); pix2pixHD's
    instance features: N x feat_num x H x W) or, in the reference files, ``reference`` (N x C' x
    s x s images of the target domain at the training size s). Output N x C' x H x W in [-1, 1].
    H and W must be multiples of ``size_multiple``; batch, height and width are dynamic, except
    for a model that declares a fixed size (full U-GAT-IT: that size only). ``export.json``
    records these facts per file. pix2pix's paper-style test-time dropout is not exported (the
    export is the eval-mode network); pix2pixHD's reference path (per-instance encoding) is not
    exported.

    ``safetensors``: one file, ``model.safetensors``, with the inference weights alone (what
    ``translate`` uses: the generator modules, their EMA weights when the run kept them, and the
    method's own buffers; no optimizer, no discriminator, nothing pickled) and, in its header
    (``__metadata__``), the run config as JSON, the method and the domain names. ``translate``,
    ``evaluate`` and ``imtrans.load.load_model`` take it as ``ckpt=``, and reading it runs no
    code: the way to share a model. Its check loads it back and compares every tensor.

The check
    Every written file is loaded back and run on seeded example inputs (batch ``batch`` at
    ``size`` x ``size``, and batch 1 at ``size`` x (``size`` + ``size_multiple``)) and compared with the PyTorch module; the largest absolute
    difference and the tolerance are printed. ONNX files are run with ``onnxruntime`` when it is
    installed, else only validated with ``onnx.checker``. Exit status 1 when a check fails,
    2 for a wrong command line.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import sys
import warnings
from pathlib import Path

import torch
from torch import nn

from imtrans import inference as inf
from imtrans.methods.base import TranslationModule
from imtrans.methods.spec import InferenceSpec, Task

FORMATS = ("torchscript", "onnx", "safetensors")
DEFAULT_FORMATS = ("torchscript", "onnx")
SAFETENSORS_FILE = "model.safetensors"
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
    "trust": (bool, False),
}


class InferenceGenerator(nn.Module):
    """``forward(*inputs)``: one task of a method's ``translate`` in one mode, owning only the
    generator modules that task uses (the method itself is held outside the module tree).

    ``inputs`` are named by ``names`` (:func:`input_names`): ``image`` (or ``label`` [+ ``inst``])
    then ``style`` or ``reference``."""

    def __init__(self, model: TranslationModule, task: Task, names: list[str], modules: dict[str, nn.Module]):
        super().__init__()
        self.generators = nn.ModuleDict(modules)
        object.__setattr__(self, "_model", model)  # a plain attribute, not a submodule
        self.task, self.names = task, list(names)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        given = dict(zip(self.names, inputs))
        x = given["image"] if "image" in given else {"label": given["label"], "inst": given.get("inst")}
        return self._model.translate(
            x, **self.task.call, style=given.get("style"), reference=given.get("reference")
        )


@contextlib.contextmanager
def eval_networks(model: TranslationModule):
    """The generators in eval mode, and the method's own inference mode (pix2pix's paper-style
    test-time dropout) replaced by it: an exported network is deterministic."""
    for m in model.generator_modules().values():
        m.eval()
    model.generators_in_inference_mode = contextlib.nullcontext  # shadows the method
    try:
        yield
    finally:
        del model.generators_in_inference_mode


def modes(spec: InferenceSpec) -> list[str]:
    """``plain`` (and ``reference`` for methods that take reference images): one file each.
    Per-pixel styles (pix2pixHD's instance features) encode references instance by instance, a
    loop over the ids of the map that a traced graph cannot hold: no reference file there."""
    per_pixel = spec.style is not None and spec.style.per_pixel
    return ["plain", "reference"] if spec.reference and not per_pixel else ["plain"]


def input_names(spec: InferenceSpec, mode: str) -> list[str]:
    names = ["label", "inst"] if spec.input_kind == "labels" and spec.instance_maps else None
    names = names or (["label"] if spec.input_kind == "labels" else ["image"])
    if mode == "reference":
        return [*names, "reference"]
    return [*names, "style"] if spec.style is not None else names


def input_shapes(spec: InferenceSpec, task: Task, mode: str, ref_side: int) -> dict[str, list]:
    """What export.json records of each input (``N``, ``H``, ``W`` are dynamic)."""
    fixed = spec.fixed_size
    h, w = (fixed, fixed) if fixed else ("H", "W")
    shapes = {
        "image": ["N", task.in_channels, h, w],
        "label": ["N", h, w],
        "inst": ["N", h, w],
        "reference": ["N", task.out_channels, ref_side, ref_side],
    }
    if spec.style is not None:
        shapes["style"] = ["N", spec.style.dim, h, w] if spec.style.per_pixel else ["N", spec.style.dim]
    return {n: shapes[n] for n in input_names(spec, mode)}


def used_generators(
    model: TranslationModule, wrapper_inputs: tuple, task: Task, names: list[str]
) -> dict[str, nn.Module]:
    """The ``generator_modules()`` entries whose layers run for ``task`` on the example inputs."""
    fired: set[str] = set()
    handles = []
    for name, module in model.generator_modules().items():
        for sub in module.modules():
            handles.append(sub.register_forward_hook(lambda *_, n=name: fired.add(n)))
    try:
        with torch.no_grad():
            InferenceGenerator(model, task, names, {})(*wrapper_inputs)
    finally:
        for h in handles:
            h.remove()
    return {n: m for n, m in model.generator_modules().items() if n in fired}


def example_inputs(
    model: TranslationModule,
    task: Task,
    mode: str,
    size: int,
    batch: int,
    seed: int,
    width: int | None = None,
    ref_side: int | None = None,
) -> tuple[torch.Tensor, ...]:
    """Seeded inputs in the order of :func:`input_names`, on the model's device: images in
    [-1, 1], label ids in [0, label_nc), instance ids, N(0, I) style codes, reference images."""
    spec = model.inference_spec()
    g = torch.Generator().manual_seed(seed)
    h, w = size, width or size
    out = []
    for name in input_names(spec, mode):
        if name == "image":
            t = torch.rand(batch, task.in_channels, h, w, generator=g) * 2 - 1
        elif name == "label":
            t = torch.randint(0, spec.label_nc or 1, (batch, h, w), generator=g)
        elif name == "inst":
            t = torch.randint(0, 4, (batch, h, w), generator=g)
        elif name == "style":
            shape = (batch, spec.style.dim, h, w) if spec.style.per_pixel else (batch, spec.style.dim)
            t = torch.randn(*shape, generator=g)
        else:  # reference
            side = ref_side or size
            t = torch.rand(batch, task.out_channels, side, side, generator=g) * 2 - 1
        out.append(t.to(model.device))
    return tuple(out)


def export_torchscript(wrapper: InferenceGenerator, example: tuple, path: Path) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript deprecation notices
        traced = torch.jit.trace(wrapper, example, check_trace=False)
    traced.save(str(path))


def onnx_available() -> bool:
    return importlib.util.find_spec("onnx") is not None


def export_onnx(
    wrapper: InferenceGenerator, example: tuple, path: Path, opset: int, dynamic_size: bool = True
) -> None:
    """ONNX through torch's exporter: the torch.export-based one when ``onnxscript`` is installed,
    else the TorchScript-based one (which needs only ``onnx``). Batch (and, unless the model has
    a fixed size, height and width) are dynamic."""
    names = wrapper.names
    spatial = {2: "height", 3: "width"} if dynamic_size else {}
    axes = {"output": {0: "batch", **spatial}}
    for name, t in zip(names, example):
        if name in ("image", "label", "inst"):
            axes[name] = {0: "batch", **({1: "height", 2: "width"} if t.dim() == 3 and dynamic_size else {})}
            if t.dim() == 4:
                axes[name].update(spatial)
        else:
            axes[name] = {0: "batch"}
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


def export_safetensors(model: TranslationModule, ema: bool, path: Path, atol: float, log) -> dict:
    """Write the inference weights as ``path`` (:func:`imtrans.load.save_inference_weights`) and
    check them: the module rebuilt from the file alone must hold the same tensors."""
    from imtrans.load import inference_state, load_model, save_inference_weights

    save_inference_weights(model, path, ema)
    ours, theirs = inference_state(model), inference_state(load_model(path))
    if ours.keys() != theirs.keys():
        worst = float("inf")
    else:  # exact copies: 0 (bool and integer buffers compared as numbers too)
        diffs = [(ours[k].cpu().double() - theirs[k].double()).abs().max() for k in ours if ours[k].numel()]
        worst = max((float(d) for d in diffs), default=0.0)
    ok = worst <= atol
    log(
        f"  {path}: {len(ours)} tensors, {sum(v.numel() for v in ours.values()):,} values; max |reloaded - "
        f"pytorch| = {worst:.3g} (tolerance {atol:g}) {'ok' if ok else 'FAILED'}"
    )
    return {
        "file": path.name,
        "format": "safetensors",
        "task": None,
        "direction": None,
        "mode": None,
        "tasks": list(model.inference_spec().task_names),
        "modules": list(model.generator_modules()),
        "ema": ema,
        "max_abs_diff": worst,
        "atol": atol,
        "ok": ok,
        "ran": True,
    }


def export(
    ckpt: str | Path,
    out: str | Path | None = None,
    direction: str = "all",
    formats: str | list[str] = DEFAULT_FORMATS,
    size: int | None = None,
    batch: int = 2,
    ema: str = "auto",
    atol: float = 1e-4,
    opset: int = 17,
    seed: int = 0,
    trust: bool = False,
    log=print,
) -> dict:
    """Export and check; returns the ``export.json`` content (``files``: one entry per file)."""
    formats = [f.strip() for f in formats.split(",")] if isinstance(formats, str) else list(formats)
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise inf.UsageError(f"formats={','.join(formats)}: choose among {', '.join(FORMATS)}")
    model, used_ema = inf.load_for_inference(ckpt, ema=ema, trust=trust)
    spec = model.inference_spec()
    ckpt_path = inf.resolve_checkpoint(ckpt)
    run_dir = ckpt_path.parent.parent if ckpt_path.parent.name == "checkpoints" else ckpt_path.parent
    out = Path(out) if out is not None else run_dir / "export"
    if direction in (None, "all"):
        tasks = list(spec.tasks)
    else:
        tasks = []
        for name in str(direction).split(","):
            try:
                tasks.append(spec.task(name))
            except ValueError:
                raise inf.UsageError(
                    f"direction={name}: {type(model).__name__} translates {', '.join(spec.task_names)}"
                ) from None
    if not tasks:
        raise inf.UsageError(f"{type(model).__name__} declares nothing to translate (no tasks)")
    out.mkdir(parents=True, exist_ok=True)
    multiple = int(spec.size_multiple)
    if spec.fixed_size is not None:
        if size is not None and size != spec.fixed_size:
            log(
                f"imtrans export: size={size} ignored: the model takes {spec.fixed_size}x{spec.fixed_size} only"
            )
        side = spec.fixed_size
    else:
        # at least two cells at the bottleneck: instance norm needs more than one value
        side = max(size or inf.train_size(model) or 64, 2 * multiple)
        side = -(-side // multiple) * multiple
    ref_side = spec.fixed_size or inf.train_size(model) or side
    if "onnx" in formats and not onnx_available():
        log(f"imtrans export: {ONNX_MISSING}")
        formats = [f for f in formats if f != "onnx"]
    info = {
        "method": type(model).__name__,
        "checkpoint": str(ckpt_path),
        "ema": used_ema,
        "multimodal": bool(spec.samples),
        "input_kind": spec.input_kind,
        "size_multiple": multiple,
        "fixed_size": spec.fixed_size,
        "value_range": [-1, 1],
        "files": [],
    }
    log(
        f"imtrans export: {type(model).__name__} from {ckpt_path} "
        f"({'EMA' if used_ema else 'raw'} generator weights), check input {batch}x{side}x{side}"
    )
    # the traced shape, then batch 1 at a wider size (batch, height and width are dynamic); a
    # model of a fixed size is checked at that size only
    wider = None if spec.fixed_size is not None else side + multiple
    if "safetensors" in formats:
        info["files"].append(export_safetensors(model, used_ema, out / SAFETENSORS_FILE, atol, log))
        formats = [f for f in formats if f != "safetensors"]
    with eval_networks(model):
        for task in tasks if formats else []:
            for mode in modes(spec):
                names = input_names(spec, mode)
                examples = [
                    example_inputs(model, task, mode, side, batch, seed, ref_side=ref_side),
                    example_inputs(model, task, mode, side, 1, seed + 1, width=wider, ref_side=ref_side),
                ]
                modules = used_generators(model, examples[0], task, names)
                wrapper = InferenceGenerator(model, task, names, modules).eval()
                stem = f"generator_{task.name}" + ("_reference" if mode == "reference" else "")
                for fmt in formats:
                    path = out / f"{stem}.{'pt' if fmt == 'torchscript' else 'onnx'}"
                    if fmt == "torchscript":
                        export_torchscript(wrapper, examples[0], path)
                    else:
                        export_onnx(wrapper, examples[0], path, opset, dynamic_size=spec.fixed_size is None)
                    result = check(wrapper, path, fmt, examples, atol)
                    entry = {
                        "file": path.name,
                        "format": fmt,
                        "task": task.name,
                        "direction": task.name,
                        "call": task.call,
                        "mode": mode,
                        "modules": list(wrapper.generators.keys()),
                        "inputs": input_shapes(spec, task, mode, ref_side),
                        "output": ["N", task.out_channels, "H", "W"],
                        **result,
                    }
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
