"""Operations of the ``kinesisvideo`` control plane; each module exports ``OPERATIONS``."""

from . import channels, storage, streams, tags

MODULES = [channels, streams, tags, storage]
