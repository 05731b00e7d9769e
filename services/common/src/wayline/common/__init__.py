"""The small kit every Wayline service is built from: settings, logging, telemetry, errors, the gRPC server
bootstrap, request context and client channels. Nothing domain-specific lives here."""
