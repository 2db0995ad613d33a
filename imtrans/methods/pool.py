"""The image history buffer of Shrivastava et al., as CycleGAN uses it for its discriminators."""

from __future__ import annotations

import torch


class ImagePool:
    """Holds up to ``size`` previously generated images.

    ``query(images)`` (N x C x H x W, detached) returns a batch of the same shape. While the
    pool holds fewer than ``size`` images each incoming image is stored and returned; once
    full, each incoming image is, with probability 0.5, swapped with a random stored one
    (the stored one is returned) or returned itself. ``size == 0`` disables the pool.
    Randomness comes from torch's global generator, so it follows the run's seed.
    """

    def __init__(self, size: int):
        self.size = size
        self.images: list[torch.Tensor] = []

    def query(self, images: torch.Tensor) -> torch.Tensor:
        if self.size == 0:
            return images
        out = []
        for image in images.detach():
            image = image.unsqueeze(0)
            if len(self.images) < self.size:
                self.images.append(image)
                out.append(image)
            elif torch.rand(()).item() > 0.5:
                idx = int(torch.randint(0, self.size, ()).item())
                out.append(self.images[idx].clone())
                self.images[idx] = image
            else:
                out.append(image)
        return torch.cat(out, 0)

    def state_dict(self) -> dict:
        return {"size": self.size, "images": [im.cpu() for im in self.images]}

    def load_state_dict(self, state: dict, device: torch.device | None = None) -> None:
        self.size = state["size"]
        self.images = [im.to(device) if device is not None else im for im in state["images"]]
