"""imtrans: image-to-image translation methods, configs and evaluation in one place."""

from imtrans.resolvers import register as _register_resolvers

__version__ = "0.1.0"

_register_resolvers()
