"""Learning-rate schedules of the official code bases, as torch schedulers.

Manual optimisation means Lightning never steps a scheduler: ``TranslationModule`` steps
them once per epoch or once per iteration, as ``scheduler_interval`` says.
"""

from __future__ import annotations

from torch.optim import Optimizer
from torch.optim.lr_scheduler import LambdaLR


class LinearDecay(LambdaLR):
    """Constant for ``n_epochs`` epochs, then linear towards 0 over ``n_epochs_decay`` epochs.

    junyanz's ``linear`` policy (CycleGAN, pix2pix, BicycleGAN): after epoch index e
    (0-based), the factor is ``1 - max(0, e + epoch_count - n_epochs) / (n_epochs_decay + 1)``.
    Stepped once per epoch.
    """

    def __init__(
        self, optimizer: Optimizer, n_epochs: int = 100, n_epochs_decay: int = 100, epoch_count: int = 1
    ):
        self.n_epochs, self.n_epochs_decay, self.epoch_count = n_epochs, n_epochs_decay, epoch_count
        super().__init__(optimizer, self.factor)

    def factor(self, epoch: int) -> float:
        return 1.0 - max(0, epoch + self.epoch_count - self.n_epochs) / float(self.n_epochs_decay + 1)

    def state_dict(self):
        # LambdaLR would try to pickle the bound method; the factor is a pure function of
        # the three numbers, which are saved instead.
        state = {k: v for k, v in self.__dict__.items() if k not in ("optimizer", "lr_lambdas")}
        return state

    def load_state_dict(self, state_dict):
        self.__dict__.update(state_dict)
