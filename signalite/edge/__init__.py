"""The HTTP edge: REST dispatch, CORS, health."""
