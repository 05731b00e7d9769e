"""`wayline.common` first: gRPC's runtime switches (wayline/common/grpc_runtime.py) hold for the servers the
tests start in this process as they do for the services' own processes."""

import wayline.common  # noqa: F401 - before anything imports grpc
