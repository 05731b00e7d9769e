"""python -m wayline_gateway: settings → logging → serve."""

from wayline.common.server import main
from wayline_gateway.service import gateway_service
from wayline_gateway.settings import GatewaySettings

if __name__ == "__main__":
    main(GatewaySettings, gateway_service, server_settings=GatewaySettings.grpc_server_settings)
