"""Each registered service's settings class, found where the registry's convention puts it: the one
ServiceSettings subclass defined in `<package>.settings` whose `service_name` is the service's name.

The generators and the tests read the services' settings through this, so that a service added to the
registry is documented and checked without being listed again.
"""

from __future__ import annotations

import importlib

from wayline.common.registry import SERVICES, ServiceInfo
from wayline.common.settings import ServiceSettings

__all__ = ["settings_class", "settings_classes"]


def settings_class(service: ServiceInfo) -> type[ServiceSettings]:
    module = importlib.import_module(f"{service.package}.settings")
    found = [
        value
        for value in vars(module).values()
        if isinstance(value, type)
        and issubclass(value, ServiceSettings)
        and value.__module__ == module.__name__
        and value.service_name == service.name
    ]
    if len(found) != 1:
        raise LookupError(f"{module.__name__} defines {len(found)} settings classes of {service.name}, not 1")
    return found[0]


def settings_classes() -> dict[str, type[ServiceSettings]]:
    """Service name → settings class, in the registry's order."""
    return {service.name: settings_class(service) for service in SERVICES}
