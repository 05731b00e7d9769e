"""python -m wayline_ingest: settings → logging → serve."""

from wayline.common.server import main
from wayline_ingest.service import ingest_service
from wayline_ingest.settings import IngestSettings

if __name__ == "__main__":
    main(IngestSettings, ingest_service)
