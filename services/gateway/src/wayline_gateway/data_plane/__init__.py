"""The gateway's data plane in nginx + Lua (ADR 105): the public gRPC calls passed to the services without
the Python hop, while the Python gateway keeps what is not per call (keys, quotas' limits, AdminService, the
HTTP collector) and answers every call the data plane cannot answer exactly as it would."""
