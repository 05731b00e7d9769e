"""The `wayline` command: run the suite on one machine and show it working.

`wayline.common` first: gRPC's runtime switches (wayline/common/grpc_runtime.py) hold for the command's
own calls and for every process it starts."""

import wayline.common  # noqa: F401 - before anything imports grpc
