"""Benchmarks: every scenario runs beside its baseline in the same run, and the ratio is what we compare.

`wayline.common` is imported first so that gRPC's runtime switches (wayline/common/grpc_runtime.py) hold for
the bench's own clients and for the baseline servers it starts, as they do for the services."""

import wayline.common  # noqa: F401 - before anything imports grpc
