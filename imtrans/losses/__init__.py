"""Loss functions shared by the methods: adversarial objectives, reconstruction helpers."""

from imtrans.losses.adversarial import GANLoss
from imtrans.losses.feature_matching import feature_matching_loss
from imtrans.losses.weighted import weighted_sum

__all__ = ["GANLoss", "feature_matching_loss", "weighted_sum"]
