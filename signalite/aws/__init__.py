"""AWS protocol pieces: SigV4, the model-driven wire layer, errors, ARNs and keys."""
