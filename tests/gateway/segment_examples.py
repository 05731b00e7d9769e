"""The example payloads of Segment's HTTP Tracking API documentation, one per call, with the user id made
the test's own (so timelines are the test's alone)."""

from __future__ import annotations

from typing import Any

__all__ = ["batch_example", "examples"]


def examples(user_id: str) -> dict[str, dict[str, Any]]:
    """Endpoint name → its documented example body."""
    return {
        "identify": {
            "userId": user_id,
            "traits": {"email": "peter@example.com", "name": "Peter Gibbons", "industry": "Technology"},
            "context": {"ip": "24.5.68.47"},
            "timestamp": "2012-12-02T00:30:08.276Z",
        },
        "track": {
            "userId": user_id,
            "event": "Item Purchased",
            "properties": {"name": "Leap to Conclusions Mat", "revenue": 14.99},
            "context": {"ip": "24.5.68.47"},
            "timestamp": "2012-12-02T00:30:12.984Z",
        },
        "page": {
            "userId": user_id,
            "name": "Tracking HTTP API",
            "category": "Docs",
            "timestamp": "2012-12-02T00:31:29.738Z",
        },
        "screen": {"userId": user_id, "name": "Tracking HTTP API", "timestamp": "2012-12-02T00:31:29.738Z"},
        "group": {
            "userId": user_id,
            "groupId": "8e9df332ac",
            "traits": {"name": "Initech", "industry": "Technology", "employees": 329, "plan": "Enterprise"},
        },
        "alias": {"previousId": "39239-239239-239239-23923", "userId": user_id},
    }


def batch_example(user_id: str, other_user_id: str) -> dict[str, Any]:
    """The documented /v1/batch body: two users, a batch-level context."""
    return {
        "batch": [
            {
                "type": "identify",
                "userId": user_id,
                "traits": {
                    "email": "pgibbons@example.com",
                    "name": "Peter Gibbons",
                    "industry": "Technology",
                },
                "timestamp": "2012-12-01T23:35:58.776Z",
            },
            {
                "type": "track",
                "userId": user_id,
                "event": "Song Played",
                "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
                "timestamp": "2012-12-01T23:37:18.273Z",
            },
            {
                "type": "track",
                "userId": other_user_id,
                "event": "Song Played",
                "properties": {"name": "Fallin for You", "artist": "Dierks Bentley"},
                "timestamp": "2012-12-01T23:39:35.101Z",
            },
        ],
        "context": {"device": {"type": "phone", "name": "Apple iPhone 6"}},
    }
