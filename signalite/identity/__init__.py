"""Identity: AWS's IAM and STS model (users, roles, keys, session tokens) and its policy language."""
