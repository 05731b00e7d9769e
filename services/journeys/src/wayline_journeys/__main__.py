"""python -m wayline_journeys: settings → logging → serve."""

from wayline.common.server import main
from wayline_journeys.service import journeys_service
from wayline_journeys.settings import JourneysSettings

if __name__ == "__main__":
    main(JourneysSettings, journeys_service)
