"""Staff accounts: signing in, the second factor, lockout, sessions and personal API tokens."""
