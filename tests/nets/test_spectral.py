"""imtrans.nets.spectral.spectral_norm: torch's spectral norm (same state, same values eager)
with a forward that compiles."""

import pytest
import torch
from torch import nn

from imtrans.callbacks.speed import _has_spectral_norm
from imtrans.nets.spectral import spectral_norm


def _pair(make, seed=0):
    torch.manual_seed(seed)
    theirs = nn.utils.spectral_norm(make())
    torch.manual_seed(seed)
    ours = spectral_norm(make())
    return theirs, ours


def _gan_like_step(m, x, y):
    """Two training forwards before one backward (a discriminator on real and fake), then a
    third forward and backward (the generator's update)."""
    (m(x).sum() - m(y).square().mean()).backward()
    m(x).mean().backward()


@pytest.mark.parametrize(
    "make",
    [
        lambda: nn.Conv2d(6, 10, 4, 2, 1),
        lambda: nn.Linear(12, 3, bias=False),
        lambda: nn.ConvTranspose2d(6, 4, 3),
    ],
    ids=["conv", "linear", "conv_transpose"],
)
def test_same_state_and_values_as_torch_eager(make):
    theirs, ours = _pair(make)
    sd_t, sd_o = theirs.state_dict(), ours.state_dict()
    assert list(sd_t) == list(sd_o)
    assert {k for k in sd_o if "weight" in k} == {"weight_orig", "weight_u", "weight_v"}
    assert all(torch.equal(sd_t[k], sd_o[k]) for k in sd_t)  # the same random draws at construction
    assert sd_o._metadata[""]["spectral_norm"] == {"weight.version": 1}  # torch's version metadata
    shape = (2, 6, 9, 9) if not isinstance(ours, nn.Linear) else (2, 12)
    x, y = torch.randn(shape), torch.randn(shape)
    for m in (theirs, ours):
        _gan_like_step(m, x, y)
    # bit for bit: three power iterations moved u and v the same way
    assert all(torch.equal(theirs.state_dict()[k], ours.state_dict()[k]) for k in sd_t)
    assert torch.equal(theirs.weight_orig.grad, ours.weight_orig.grad)
    theirs.eval(), ours.eval()
    assert torch.equal(theirs(x), ours(x))  # eval: the stored u and v, no iteration
    assert torch.equal(theirs.weight_u, ours.weight_u)


def test_checkpoints_cross_load_and_torch_helpers_apply():
    theirs, ours = _pair(lambda: nn.Conv2d(3, 5, 3), seed=1)
    x = torch.randn(1, 3, 8, 8)
    theirs(x), ours(x)
    torch.manual_seed(2)
    fresh = spectral_norm(nn.Conv2d(3, 5, 3))
    fresh.load_state_dict(theirs.state_dict(), strict=True)
    theirs.eval(), fresh.eval()
    assert torch.equal(theirs(x), fresh(x))
    # a state dict without torch's version metadata (hand-made, or another library's) loads too
    plain = {k: v.clone() for k, v in ours.state_dict().items()}
    fresh.load_state_dict(plain, strict=True)
    nn.utils.remove_spectral_norm(fresh)
    assert sorted(fresh.state_dict()) == ["bias", "weight"]
    assert not fresh._forward_pre_hooks and not fresh._forward_hooks  # ours went with torch's
    with pytest.raises(RuntimeError, match="two spectral_norm hooks"):
        spectral_norm(theirs)


def test_compile_keeps_ours_and_leaves_torchs_hook_eager():
    theirs, ours = _pair(lambda: nn.Conv2d(3, 5, 3))
    assert _has_spectral_norm(nn.Sequential(theirs)) and not _has_spectral_norm(nn.Sequential(ours))


def test_compiled_forward_runs_twice_before_backward_with_the_same_values():
    """What torch's hook cannot do compiled (module docstring): two training forwards before
    one backward. u and v move exactly as eager (the same opaque operator); the outputs and
    the gradient differ only by float order (sigma as a matrix product, fused division)."""
    torch.manual_seed(0)

    def make():
        return nn.Sequential(
            spectral_norm(nn.Conv2d(4, 8, 3)), nn.LeakyReLU(0.2), spectral_norm(nn.Conv2d(8, 1, 3))
        )

    eager = make()
    compiled = make()
    compiled.load_state_dict(eager.state_dict())
    torch._dynamo.reset()
    compiled.compile(backend="aot_eager")
    x, y = torch.randn(2, 4, 10, 10), torch.randn(2, 4, 10, 10)
    for m in (eager, compiled):
        _gan_like_step(m, x, y)
    for k, v in eager.state_dict().items():
        assert torch.equal(v, compiled.state_dict()[k]), k
    for (name, a), b in zip(eager.named_parameters(), compiled.parameters()):
        torch.testing.assert_close(b.grad, a.grad, rtol=1e-5, atol=1e-6, msg=name)
    # after a compiled call the module keeps no normalised copy of the weight
    assert compiled[0].weight.grad_fn is None and eager[0].weight.grad_fn is not None
