"""spoof-lightning: a PyTorch Lightning + Hydra framework for audio anti-spoofing."""

from spoof_lightning.resolvers import register as _register_resolvers

_register_resolvers()
