"""python -m wayline_journeys: settings → logging → serve."""

from wayline.common.server import run
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings

if __name__ == "__main__":
    settings = JourneysSettings()
    run(journeys_service(settings), settings)
