"""The small kit every Wayline service is built from: settings, logging, telemetry, errors, the gRPC server
bootstrap, request context and client channels. Nothing domain-specific lives here.

Importing it sets gRPC's runtime switches (grpc_runtime.py), which gRPC reads when it is first imported."""

from wayline.common import grpc_runtime as _grpc_runtime

_grpc_runtime.configure()
