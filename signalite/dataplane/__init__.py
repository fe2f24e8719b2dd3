"""Operations of the HTTPS data plane (``kinesis-video-signaling``, ``kinesis-video-webrtc-storage``)."""

MODULES: list = []
