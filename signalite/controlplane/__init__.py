"""Operations of the ``kinesisvideo`` control plane; each module exports ``OPERATIONS``."""

from . import channels

MODULES = [channels]
