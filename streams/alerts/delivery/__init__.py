"""Delivery of alert notifications to channels (issue #13): Alertmanager's v2 API, signed
webhooks, the topic. `service.AlertDelivery` is the worker's consumer; `payloads` what is sent."""

from streams.alerts.delivery.service import AlertDelivery, alertmanager_endpoint, dead_letter_envelope

__all__ = ["AlertDelivery", "alertmanager_endpoint", "dead_letter_envelope"]
