"""python -m wayline_decision: settings → logging → serve."""

from wayline.common.server import run
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings

if __name__ == "__main__":
    settings = DecisionSettings()
    run(decision_service(settings), settings)
