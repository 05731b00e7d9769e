"""The identity service: identity resolution: profiles, identifiers, merges and rules."""
