"""The official FastCUT training iteration: taesungp/contrastive-unpaired-translation (checked against
b3ac297, 2023-09-05), ``train.py --model cut --CUT_mode FastCUT``.

The same code path as ``cut`` (see its docstring); ``--CUT_mode FastCUT`` makes the official
``modify_commandline_options`` set lambda_NCE 10, no identity NCE and flip-equivariance
(imtrans's ``model=cut model.mode=fastcut``). The flip is drawn per iteration with
``np.random.random() < 0.5`` inside the official ``forward``, so a step is either flipped or not,
as in training.
"""

from __future__ import annotations

from pathlib import Path

from experiments.official import OfficialStep


def build(checkout: Path, batch: dict, *, size: int, device: str) -> OfficialStep:
    from experiments.official.cut import build_cut

    return build_cut(checkout, batch, size=size, device=device, mode="FastCUT")
