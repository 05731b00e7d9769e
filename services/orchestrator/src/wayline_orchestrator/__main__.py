"""python -m wayline_orchestrator: settings → logging → serve."""

from wayline.common.server import run
from wayline_orchestrator.service import orchestrator_service
from wayline_orchestrator.settings import OrchestratorSettings

if __name__ == "__main__":
    settings = OrchestratorSettings()
    run(orchestrator_service(settings), settings)
