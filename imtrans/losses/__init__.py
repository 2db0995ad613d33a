"""Loss functions shared by the methods: adversarial objectives, PatchNCE, reconstruction helpers."""

from imtrans.losses.adversarial import GANLoss
from imtrans.losses.contrastive import patch_nce_loss
from imtrans.losses.feature_matching import feature_matching_loss
from imtrans.losses.weighted import weighted_sum

__all__ = ["GANLoss", "feature_matching_loss", "patch_nce_loss", "weighted_sum"]
