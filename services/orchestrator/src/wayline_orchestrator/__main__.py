"""python -m wayline_orchestrator: settings → logging → serve."""

from wayline.common.server import main
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

if __name__ == "__main__":
    main(OrchestratorSettings, orchestrator_service)
