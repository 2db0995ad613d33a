"""The Hydra config tree (a package so that Hydra and pip find it after installation)."""
