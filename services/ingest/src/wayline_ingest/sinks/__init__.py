"""Where spooled events go: one small interface, several implementations (the services over gRPC,
NATS JetStream)."""

from wayline_ingest.sinks.base import DeliveryFailure, PermanentDeliveryError, Sink, TransientDeliveryError

__all__ = ["DeliveryFailure", "PermanentDeliveryError", "Sink", "TransientDeliveryError"]
