"""mmmixer models: importing this module registers the backbones in ``mmmixer.registry.MODELS``."""
from .backbones import *  # noqa: F401,F403
