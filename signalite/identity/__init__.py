"""Identity: IAM users, roles and policies, STS temporary credentials, accounts."""
