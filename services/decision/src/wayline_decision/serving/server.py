"""The model server: the loaded versions and every tenant's routing table, read by each decision.

Readers take one reference to the tables and route from it without a lock: a change builds a tenant's new
table beside the old one and publishes the new mapping in one assignment (copy-on-write). A decision that
took a route keeps that version to its end, even when a swap lands meanwhile; the version is freed once the
last such decision has finished. Writers (deployments, the poller) serialise among themselves, and a table
only ever moves to a newer traffic generation, so a slow writer cannot put an older traffic back.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from types import MappingProxyType

from wayline_decision.errors import ModelNotFound, NoModelDeployed
from wayline_decision.packages import MODEL_ID_PATTERN
from wayline_decision.serving.route import Route
from wayline_decision.serving.routing import Deployment, TenantRoutes

__all__ = ["ModelServer"]

ModelExists = Callable[[str, str], bool]  # (tenant, model id) → whether the registry holds it


class ModelServer:
    """Implements the ModelRouter protocol (serving/route.py)."""

    def __init__(self, model_exists: ModelExists) -> None:
        self._model_exists = model_exists  # read on the error path only
        self._tables: Mapping[str, TenantRoutes] = MappingProxyType({})
        self._write = threading.Lock()

    def route(self, tenant: str, model_id: str | None, channel: int, placement: str, person_id: str) -> Route:
        table = self._tables.get(tenant)
        if model_id:
            deployment = table.deployments.get(model_id) if table is not None else None
            if deployment is None:
                if not MODEL_ID_PATTERN.fullmatch(model_id) or not self._model_exists(tenant, model_id):
                    raise ModelNotFound(f"models/{model_id}")
                raise NoModelDeployed(
                    f"models/{model_id} is registered but not deployed: deploy a version first"
                )
            return deployment.route(person_id)
        deployment = table.serving(channel, placement) if table is not None else None
        if deployment is None:
            raise NoModelDeployed(
                f"no deployed model serves channel {channel} and placement {placement!r}: deploy a model "
                "whose manifest names them (or names none)"
            )
        return deployment.route(person_id)

    def deployment(self, tenant: str, model_id: str) -> Deployment | None:
        table = self._tables.get(tenant)
        return table.deployments.get(model_id) if table is not None else None

    def deployments(self) -> dict[tuple[str, str], Deployment]:
        """(tenant, model id) → what is installed, a snapshot."""
        return {
            (tenant, model_id): deployment
            for tenant, table in self._tables.items()
            for model_id, deployment in table.deployments.items()
        }

    def install(self, tenant: str, deployment: Deployment) -> bool:
        """Make `deployment` serve its model, unless what is installed is newer (a later generation, or the
        same generation more completely loaded). Whether it was installed."""
        model_id = deployment.traffic.model_id
        with self._write:
            tables = self._tables
            table = tables.get(tenant)
            current = table.deployments.get(model_id) if table is not None else None
            if current is not None:
                newer = deployment.traffic.generation > current.traffic.generation
                same = deployment.traffic.generation == current.traffic.generation
                if not (newer or (same and deployment.complete and not current.complete)):
                    return False
            deployments = dict(table.deployments) if table is not None else {}
            deployments[model_id] = deployment
            self._tables = MappingProxyType({**tables, tenant: TenantRoutes(MappingProxyType(deployments))})
            return True
