"""Loss functions shared by the methods: adversarial objectives, reconstruction helpers."""

from imtrans.losses.adversarial import GANLoss
from imtrans.losses.weighted import weighted_sum

__all__ = ["GANLoss", "weighted_sum"]
