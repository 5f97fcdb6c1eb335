"""proto-plus messages (google-cloud-* libraries) to and from the API's own JSON."""

from __future__ import annotations

import json
from typing import Any


def to_json(message: Any) -> dict[str, Any]:
    return json.loads(
        type(message).to_json(
            message, use_integers_for_enums=False, preserving_proto_field_name=False
        )
    )


def from_json(cls: Any, data: dict[str, Any]) -> Any:
    return cls.from_json(json.dumps(data))
