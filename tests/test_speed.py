"""The speed switches (``trainer.compile``, ``trainer.channels_last``, ``trainer.optimizer_impl``)
change nothing but speed: every method's losses over a few iterations equal the plain run's
within float tolerance, its checkpoint has the plain run's keys, shapes and dtypes (a compiled
run's loads into an uncompiled module), and under channels_last one iteration's gradients equal
the plain ones."""

from __future__ import annotations

from unittest import mock

import hydra
import lightning as L
import pytest
import torch

from imtrans.callbacks.speed import SpeedSwitches, _to_channels_last, split_trainer_config
from imtrans.errors import ConfigError
from imtrans.run import train
from tests.helpers import METHODS, compose_config, method_overrides, module_and_batch, train_one_step

ITERS = 3


class Losses(L.Callback):
    """The logged ``train/*`` loss terms of every iteration."""

    def __init__(self):
        self.per_iter: list[dict[str, float]] = []
        self.optimizer_flags: dict | None = None

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        self.per_iter.append(
            {k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("train/")}
        )
        group = trainer.optimizers[0].param_groups[0]
        self.optimizer_flags = {k: group.get(k) for k in ("fused", "foreach")}


def _run(method: str, tmp_path, extra: list[str]):
    overrides = method_overrides(
        method, tmp_path, ITERS, ["metrics=none", "callbacks.sample_grid=null", *extra]
    )
    cfg = compose_config(overrides, tmp_path / "out")
    losses = Losses()
    train(cfg, extra_callbacks=[losses])
    _run.optimizer_flags = losses.optimizer_flags  # what the last run's optimizers used
    state = torch.load(tmp_path / "out" / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    return losses.per_iter, state


def _assert_same_run(plain, other, *, rtol: float):
    """Same losses at every iteration; same checkpoint keys, shapes and dtypes, the same
    integer entries (iteration counters). Float weights are not compared one by one: Adam's
    first steps are about +-lr whatever a gradient's size, so a weight whose gradient is float
    noise (a conv bias before InstanceNorm, which cancels it) ends up to 2 lr apart under any
    change of rounding; ``test_channels_last_same_gradients`` compares gradients instead."""
    (losses0, ckpt0), (losses1, ckpt1) = plain, other
    assert len(losses0) == len(losses1) == ITERS
    for it, (a, b) in enumerate(zip(losses0, losses1)):
        assert a.keys() == b.keys()
        for k in a:
            assert b[k] == pytest.approx(a[k], rel=rtol, abs=1e-5), f"iteration {it + 1}: {k}"
    s0, s1 = ckpt0["state_dict"], ckpt1["state_dict"]
    assert list(s0) == list(s1)  # same keys, same order: no _orig_mod., nothing added
    for k in s0:
        assert (s1[k].shape, s1[k].dtype) == (s0[k].shape, s0[k].dtype), k
        if not s0[k].is_floating_point():
            assert torch.equal(s1[k], s0[k]), k


@pytest.fixture(scope="module")
def plain_runs(tmp_path_factory):
    cache = {}

    def get(method):
        if method not in cache:
            # the reference: torch's own Adam (a loop over the tensors), not the default fused one
            cache[method] = _run(
                method, tmp_path_factory.mktemp(f"plain_{method}"), ["trainer.optimizer_impl=null"]
            )
            assert _run.optimizer_flags == {"fused": None, "foreach": None}
        return cache[method]

    return get


@pytest.mark.parametrize("method", METHODS)
def test_channels_last_changes_nothing_but_speed(method, plain_runs, tmp_path):
    _assert_same_run(plain_runs(method), _run(method, tmp_path, ["trainer.channels_last=true"]), rtol=1e-3)


def _gradients(method: str, tmp_path, channels_last: bool) -> dict[str, torch.Tensor]:
    """The gradients that one training_step leaves (its last update's networks), with the
    optimizer steps skipped, so that every update sees the same weights."""
    module, batch = module_and_batch(method, tmp_path)
    if channels_last:
        SpeedSwitches(channels_last=True).setup(None, module, "fit")
        _to_channels_last(batch)
        convs = [p for p in module.parameters() if p.dim() == 4 and p.shape[2] * p.shape[3] > 1]
        assert convs and all(p.is_contiguous(memory_format=torch.channels_last) for p in convs)
    torch.manual_seed(1)
    with mock.patch.object(torch.optim.Adam, "step"):
        train_one_step(module, batch)
    return {n: p.grad.contiguous() for n, p in module.named_parameters() if p.grad is not None}


@pytest.mark.parametrize("method", METHODS)
def test_channels_last_same_gradients(method, tmp_path):
    plain, cl = _gradients(method, tmp_path, False), _gradients(method, tmp_path, True)
    assert plain and plain.keys() == cl.keys()
    # a conv bias before InstanceNorm has an exact gradient of 0 and a computed one of float
    # noise (1e-7 of the other gradients): its tolerance comes from the largest gradient
    noise = 1e-5 * max(g.abs().max().item() for g in plain.values())
    for name, g in plain.items():
        assert (cl[name] - g).abs().max().item() <= 1e-4 * g.abs().max().item() + noise, name


@pytest.mark.parametrize("method", METHODS)
def test_fused_adam_changes_nothing_but_speed(method, plain_runs, tmp_path):
    fused = _run(method, tmp_path, ["trainer.optimizer_impl=fused"])
    assert _run.optimizer_flags == {"fused": True, "foreach": False}
    _assert_same_run(plain_runs(method), fused, rtol=1e-4)


def test_default_optimizer_impl_is_fused_where_torch_has_the_kernel():
    """``optimizer_impl: auto`` (the default): fused Adam for float parameters on the CPU; torch's
    default for an optimizer without a fused kernel and under 16-mixed (Lightning refuses to clip
    the gradients of an optimizer that unscales them itself)."""
    args, switches = split_trainer_config(compose_config(["metrics=none"]).trainer)
    assert switches is not None and switches.optimizer_impl == "auto"

    def flags(opt, precision_plugin=None):
        trainer = mock.Mock(optimizers=[opt], precision_plugin=precision_plugin or mock.Mock(scaler=None))
        switches.on_train_start(trainer, None)
        return {k: opt.param_groups[0].get(k) for k in ("fused", "foreach")}

    w = [torch.nn.Parameter(torch.ones(3))]
    assert flags(torch.optim.Adam(w)) == {"fused": True, "foreach": False}
    assert flags(torch.optim.AdamW(w)) == {"fused": True, "foreach": False}
    assert flags(torch.optim.Adam(w), mock.Mock(scaler=torch.amp.GradScaler("cpu"))) == {
        "fused": None,
        "foreach": None,
    }
    assert flags(torch.optim.RMSprop(w))["fused"] is None  # no fused kernel: torch's default


def test_foreach_adam_changes_nothing_but_speed(plain_runs, tmp_path):
    _assert_same_run(
        plain_runs("munit"), _run("munit", tmp_path, ["trainer.optimizer_impl=foreach"]), rtol=1e-4
    )


@pytest.mark.parametrize("method", ["cyclegan", "munit", "ugatit", "stargan_v2", "drit"])
def test_compiled_run_same_losses_and_plain_checkpoint(method, plain_runs, tmp_path):
    """Compiled after the first iteration (``aot_eager``: dynamo and AOT autograd, no generated
    code, so that the test takes seconds): iterations 2 and 3 run compiled. MUNIT calls its
    networks through ``encode``/``decode``: the encoders and decoders are what gets compiled;
    U-GAT-IT's discriminators have spectral norm (compiled since imtrans.nets.spectral), StarGAN v2's R1 penalty
    differentiates a compiled D with create_graph=True, DRIT backpropagates twice through one
    graph (retain_graph=True)."""
    torch._dynamo.reset()
    compiled = _run(method, tmp_path, ["trainer.compile=true", "trainer.compile_backend=aot_eager"])
    _assert_same_run(plain_runs(method), compiled, rtol=1e-4)
    # the checkpoint loads strictly into an uncompiled module
    cfg = compose_config(method_overrides(method, tmp_path, ITERS))
    module = hydra.utils.instantiate(cfg.model)
    if any(k.startswith("ema.") for k in compiled[1]["state_dict"]):  # StarGAN v2's own EMA
        module.enable_ema()
    module.load_state_dict(compiled[1]["state_dict"], strict=True)


def test_compile_finds_the_networks_each_method_calls(tmp_path):
    overrides = method_overrides("munit", tmp_path, 2, ["metrics=none", "callbacks.sample_grid=null"])
    cfg = compose_config(overrides, tmp_path / "out")
    switches = SpeedSwitches(compile=True, compile_backend="aot_eager")
    torch._dynamo.reset()
    train(cfg, extra_callbacks=[switches])
    # gen.encode / gen.decode call these; the EMA copies and the augmentation are left out
    assert sorted(switches.compiled) == sorted(
        [f"{g}.{part}" for g in ("gen_a", "gen_b") for part in ("enc_style", "enc_content", "dec", "mlp")]
        + ["dis_a", "dis_b"]
    )


def test_compile_takes_the_spectral_norm_discriminators(tmp_path):
    """U-GAT-IT's four discriminators are spectral-normalised everywhere: with
    imtrans.nets.spectral they compile like any network (torch's hook kept them eager)."""
    overrides = method_overrides("ugatit", tmp_path, 2, ["metrics=none", "callbacks.sample_grid=null"])
    switches = SpeedSwitches(compile=True, compile_backend="aot_eager")
    torch._dynamo.reset()
    train(compose_config(overrides, tmp_path / "out"), extra_callbacks=[switches])
    assert sorted(switches.compiled) == ["disGA", "disGB", "disLA", "disLB", "genA2B", "genB2A"]
    assert switches.eager == []


def test_trainer_keys_are_taken_out_of_lightnings_arguments():
    cfg = compose_config(["trainer=cpu", "trainer.channels_last=true"])
    args, switches = split_trainer_config(dict(cfg.trainer))
    assert (
        "channels_last" not in args
        and "compile" not in args
        and args["_target_"] == "lightning.pytorch.Trainer"
    )
    assert switches.channels_last and not switches.compile
    # the default (optimizer_impl: auto) is a speed switch; with every switch off, none is added
    assert split_trainer_config(dict(compose_config(["trainer=cpu"]).trainer))[1].optimizer_impl == "auto"
    off = compose_config(["trainer=cpu", "trainer.optimizer_impl=null"])
    assert split_trainer_config(dict(off.trainer))[1] is None


def test_unknown_optimizer_impl_is_a_config_error():
    with pytest.raises(ConfigError, match="trainer.optimizer_impl='fast'"):
        SpeedSwitches(optimizer_impl="fast")


def test_compile_finds_networks_first_called_in_later_iterations(tmp_path):
    """DRIT's first iterations update the content discriminator alone (d_iter 3): the networks
    of its full update are compiled after the iteration that first calls them."""
    overrides = method_overrides("drit", tmp_path, 3, ["metrics=none", "callbacks.sample_grid=null"])
    switches = SpeedSwitches(compile=True, compile_backend="aot_eager")
    torch._dynamo.reset()
    train(compose_config(overrides, tmp_path / "out"), extra_callbacks=[switches])
    assert switches.compiled[:4] == ["enc_c.conv_a", "enc_c.conv_share", "enc_c.conv_b", "disContent"]
    assert {"gen.dec_share", "enc_a.branch_a", "disA", "disB2"} <= set(switches.compiled)
