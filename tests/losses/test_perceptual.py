"""MUNIT's domain-invariant perceptual loss: weight loading from the hub cache (a random-weight
file under a temporary TORCH_HOME; nothing is downloaded), the official VGG topology, the formula."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from imtrans.losses.perceptual import (
    VGG16_FILE,
    DomainInvariantPerceptualLoss,
    MissingWeightsError,
    VGG19PerceptualLoss,
    load_vgg16_relu5_3,
    vgg16_features,
    vgg16_weights_path,
    without_loss_networks,
)


@pytest.fixture
def vgg_file(tmp_path, monkeypatch):
    """Random VGG16 ``features.*`` weights where torchvision's file would be cached."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in vgg16_features().state_dict().items()}
    path = tmp_path / "hub" / "checkpoints" / VGG16_FILE
    path.parent.mkdir(parents=True)
    torch.save(state, path)
    return path, state


def test_missing_weights_fail_with_one_line_naming_the_file(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    expected = tmp_path / "hub" / "checkpoints" / VGG16_FILE
    assert vgg16_weights_path() == expected
    with pytest.raises(FileNotFoundError) as err:
        load_vgg16_relu5_3(download=False)
    message = str(err.value)
    assert str(expected) in message and "\n" not in message
    with pytest.raises(FileNotFoundError, match="elsewhere.pth"):
        load_vgg16_relu5_3(tmp_path / "elsewhere.pth", download=True)  # a given path is never fetched


def test_modules_built_for_inference_need_no_loss_weights(tmp_path, monkeypatch):
    """What imtrans.load_model relies on: no VGG file needed, and a clear error if called."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))  # no weight file there
    with pytest.raises(MissingWeightsError):
        VGG19PerceptualLoss()
    with without_loss_networks():
        losses = [DomainInvariantPerceptualLoss(), VGG19PerceptualLoss()]
    x = torch.zeros(1, 3, 32, 32)
    for loss in losses:
        loss.to(torch.float64)  # moving the module still works
        with pytest.raises(RuntimeError, match="built for inference"):
            loss(x, x)
    with pytest.raises(MissingWeightsError):  # the switch ends with the block
        DomainInvariantPerceptualLoss()


def test_official_topology_and_frozen_weights(vgg_file):
    path, state = vgg_file
    net = load_vgg16_relu5_3()
    convs = [m for m in net if isinstance(m, torch.nn.Conv2d)]
    pools = [m for m in net if isinstance(m, torch.nn.MaxPool2d)]
    assert len(convs) == 13 and len(pools) == 3  # no pool between relu4_3 and conv5_1
    assert torch.equal(convs[-1].weight, state["features.28.weight"])
    assert not any(p.requires_grad for p in net.parameters())
    assert net(torch.zeros(1, 3, 32, 32)).shape == (1, 512, 4, 4)


def test_loss_formula_and_gradient(vgg_file):
    loss_fn = DomainInvariantPerceptualLoss()
    assert not list(loss_fn.state_dict())  # the VGG stays out of checkpoints
    torch.manual_seed(1)
    img = (torch.rand(2, 3, 32, 32) * 2 - 1).requires_grad_()
    target = torch.rand(2, 3, 32, 32) * 2 - 1
    loss = loss_fn(img, target)
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def feats(x):
        return F.instance_norm(loss_fn.vgg(((x + 1) / 2 - mean) / std), eps=1e-5)

    assert torch.allclose(loss, ((feats(img) - feats(target)) ** 2).mean(), rtol=1e-5)
    loss.backward()
    assert img.grad is not None and img.grad.abs().sum() > 0
    # an image compared with itself costs nothing
    assert loss_fn(target, target).item() == 0
