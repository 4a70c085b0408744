"""Delivery of alert notifications to channels (issue #13): Alertmanager's v2 API, signed
webhooks, the topic. `service.AlertDelivery` is the worker's consumer; `channels` the directory of
channels it delivers to; `http` the posting to Alertmanager and webhooks; `payloads` what is sent."""

from streams.alerts.delivery.http import alertmanager_endpoint
from streams.alerts.delivery.service import AlertDelivery, dead_letter_envelope

__all__ = ["AlertDelivery", "alertmanager_endpoint", "dead_letter_envelope"]
