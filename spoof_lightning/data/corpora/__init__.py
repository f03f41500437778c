"""The corpus loaders, one module per corpus family, each registered by name with
:func:`spoof_lightning.data.protocols.corpus`. Every module here is imported, so a new file
registers its corpus with no other edit (see :mod:`spoof_lightning.data.protocols`)."""

import importlib
import pkgutil

for _module in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_module.name}")
