"""python -m wayline_decision: settings → logging → serve."""

from wayline.common.server import main
from wayline_decision.service import decision_service
from wayline_decision.settings import DecisionSettings

if __name__ == "__main__":
    main(DecisionSettings, decision_service)
