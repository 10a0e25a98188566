"""Do both apps answer the same? Differences are reported, since a ratio means little without."""

from __future__ import annotations

from typing import Any

from .client import Answer, Endpoint

# Headers whose presence (not value) must match between the apps, per method.
_HEADERS = {"GET": ("Content-Type", "ETag"), "POST": ("Content-Type", "Location")}


def differences(endpoint: Endpoint, floor: Answer, tablerest: Answer, most: int = 3) -> list[str]:
    """Where ``tablerest``'s answer to ``endpoint`` differs from the floor's, briefly.

    GET bodies must be equal; a POST creates a new row each time, so only the shape of its
    body (keys and value types) is compared.
    """
    found: list[str] = []
    for name in _HEADERS.get(endpoint.method, ()):
        ours, theirs = floor.headers.get(name), tablerest.headers.get(name)
        if (ours is None) != (theirs is None) or (name == "Content-Type" and ours != theirs):
            found.append(f"header {name}: floor {ours!r}, tablerest {theirs!r}")
    floor_body, tablerest_body = floor.json(), tablerest.json()
    if endpoint.method != "GET":
        floor_body, tablerest_body = _shape(floor_body), _shape(tablerest_body)
    _diff("body", floor_body, tablerest_body, found)
    return found[:most]


def _shape(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: _shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_shape(item) for item in value]
    return type(value).__name__


def _diff(where: str, floor: Any, tablerest: Any, found: list[str]) -> None:
    if isinstance(floor, dict) and isinstance(tablerest, dict):
        if list(floor) != list(tablerest):
            found.append(f"{where} keys: floor {list(floor)}, tablerest {list(tablerest)}")
        for key in floor.keys() & tablerest.keys():
            _diff(f"{where}.{key}", floor[key], tablerest[key], found)
    elif isinstance(floor, list) and isinstance(tablerest, list):
        if len(floor) != len(tablerest):
            found.append(f"{where}: floor has {len(floor)} items, tablerest {len(tablerest)}")
        for index, (ours, theirs) in enumerate(zip(floor, tablerest, strict=False)):
            _diff(f"{where}[{index}]", ours, theirs, found)
    elif floor != tablerest or type(floor) is not type(tablerest):
        found.append(f"{where}: floor {floor!r}, tablerest {tablerest!r}")
