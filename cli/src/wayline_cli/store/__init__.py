"""`wayline store export|import`: the journey store moved between chDB, a ClickHouse server and a cluster
(ADR 0048)."""

from wayline_cli.store.dump import export_store
from wayline_cli.store.errors import StoreCopyError
from wayline_cli.store.load import import_store
from wayline_cli.store.location import StoreLocation
from wayline_cli.store.manifest import Manifest, TableFile

__all__ = ["Manifest", "StoreCopyError", "StoreLocation", "TableFile", "export_store", "import_store"]
