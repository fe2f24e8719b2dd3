"""WebRTC ingestion (JoinStorageSession, JoinStorageSessionAsViewer): a storage peer records a
channel master's media, relays it to the viewers that join the session and records their audio.

``library``    where recordings live and what is known about each (file layout, JSON sidecars)
``retention``  which recordings the stream's DataRetentionInHours lets go (pure) plus the deleting
``signaling``  the one adapter between a storage peer and the signaling hub
``recorder``   encoded H.264 and Opus frames into one Matroska file, on its own thread (PyAV)
``peer``       the aiortc peer that offers, receives and feeds the recorder
``viewers``    one aiortc connection per joined viewer: the master's frames out, the viewer's audio in
``sessions``   one storage session per channel: start, replace, stop, periodic upkeep

Only ``recorder``, ``peer`` and ``viewers`` import PyAV and aiortc; the sessions load them in a thread the first
time a session starts, so neither the server's start nor ``signalite admin`` pays for them.
"""
