"""UNIT v2 checkpoints of mingyuliutw/UNIT (``UNIT_Trainer``, also in NVlabs/MUNIT).

The files are those of MUNIT (:mod:`imtrans.official.formats.munit`, whose reading logic is
shared): ``gen_%08d.pt`` = ``{'a': gen_a.state_dict(), 'b': gen_b.state_dict()}`` of two
``VAEGen``, ``dis_%08d.pt`` the same for the ``MsImageDis`` pair, ``optimizer.pt`` (not
imported: fresh optimizers). The file number (``iterations + 1``) is recorded as
``Imported.iteration``. Key names are ours (identity rules); their order differs.

PATH is the snapshot folder ``outputs/<name>/checkpoints/`` (newest ``gen_*.pt`` by
lexicographic sort as the official resume picks it, with ``dis_*.pt`` of the same number
when present), a ``gen_%08d.pt`` file, or any file holding ``{'a', 'b'}`` VAEGen dicts such
as the published ``unit_gta2city.pt`` (gen only; the discriminators are then fresh).

PyTorch 0.3 files (``unit_gta2city.pt``) carry InstanceNorm ``running_mean/var`` in ``enc``
and in the decoder's residual blocks ``dec.model.0``; our InstanceNorm layers have none, so
they are dropped, as mingyuliutw/UNIT's ``pytorch03_to_pytorch04`` drops them (the copy in
NVlabs/MUNIT never runs its UNIT branch).

Architecture options read from the shapes, as Hydra overrides of ``conf/model/unit.yaml``:
``gen.dim``, ``n_downsample``, ``n_res`` (the encoder's layout), the input channels of each
domain (``data.input_nc`` / ``data.output_nc``), the discriminator's ``dim``, ``n_layer``,
``num_scales`` and its norm where it leaves tensors. ``gen.mlp_dim`` and ``gen.style_dim`` of
the UNIT configs are unused by VAEGen. Not in any tensor, hence the preset's values (relu,
reflect, as the official configs): ``gen.activ``, ``gen.pad_type``, ``dis.activ``,
``dis.pad_type``. Inference decodes the noise-free hidden code, as the official ``test.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import torch

from imtrans.official import Imported, OfficialFormatError
from imtrans.official.formats.munit import content_encoder_options, read_two_domain

OPTIONS: dict[str, str] = {}


def vae_gen_options(sd: Mapping[str, torch.Tensor], file: Path, what: str) -> dict:
    """Options of an official ``VAEGen``: its encoder ``enc`` is MUNIT's content encoder
    (``enc.model.0.conv.weight`` dim x input_dim x 7 x 7); the decoder mirrors it."""
    if any(k.startswith(("enc_style.", "enc_content.", "mlp.")) for k in sd):
        raise OfficialFormatError(
            f"{file} [{what!r}]: holds MUNIT generators (AdaINGen: 'enc_style.*'/'enc_content.*' keys), "
            "not UNIT's VAEGen; import it with METHOD munit"
        )
    return content_encoder_options(sd, "enc", file, what)


def _unit_overrides(gen: dict) -> list[str]:
    return [f"model.generator.{k}={gen[k]}" for k in ("dim", "n_downsample", "n_res")]


def read(path: Path) -> Imported:
    return read_two_domain(path, "unit", vae_gen_options, _unit_overrides)
