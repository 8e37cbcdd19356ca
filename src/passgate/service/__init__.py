"""Use cases (sign up, sign in, add a passkey, sessions) over the storage protocols."""
