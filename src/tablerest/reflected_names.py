"""How reflection names resources and relations: one URL segment per name, and a relation
per foreign key (and per pure link table), named per resource.

Relations (from foreign keys, named per resource)
    - to-one, on the table holding the foreign key: the key column without its id suffix
      (``id`` in any case after ``_``, ``-`` or a space; ``Id`` after a letter or digit;
      ``ID`` after a lower-case letter or digit): ``ArtistId`` -> ``Artist``,
      ``support_rep_id`` -> ``support_rep``, ``Order Id`` -> ``Order``.
      Fallback: ``<columns>_<target table>`` (``ReportsTo_Employee``).
    - to-many, on the referenced table: the referencing table's name (``Artist`` ->
      ``Album``). Fallback: ``<referencing table>_by_<columns>`` (``Employee_by_ReportsTo``).
    - many-to-many, through a pure link table (every column belongs to exactly one of its two
      foreign keys, and all its columns form its primary key, like ``PlaylistTrack``): the
      other table's name (``Playlist`` -> ``Track``, ``Track`` -> ``Playlist``). Fallback:
      ``<other table>_via_<link table>_<link columns to the other table>``. The link table is
      a resource too, with its own to-one relations, and its referenced tables get a to-many
      to it.

    ``<columns>`` is the foreign key's column names joined with ``_``.
    The fallback is used when there is no preferred name (a key column without an id suffix,
    a composite foreign key, a self-reference), and by *every* relation whose preferred name
    is taken: by a column of the same table, or by another relation of that table wanting the
    same name (two keys to one table, two link tables to one table). So a self-reference
    ``Employee.ReportsTo`` gives ``ReportsTo_Employee`` (to-one) and ``Employee_by_ReportsTo``
    (to-many); ``Message.sender_id`` and ``Message.recipient_id`` to ``User`` give ``sender``
    and ``recipient`` on ``Message``, and ``Message_by_sender_id`` and
    ``Message_by_recipient_id`` on ``User``. A fallback that is still taken gets ``_2``,
    ``_3``, ... in the order to-one, to-many, many-to-many. Relation names go through the same
    path-segment rule as resource names. A relation is served only when every table it touches
    (the link table included) is served.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

from sqlalchemy import Table
from sqlalchemy.sql.schema import Column, ForeignKeyConstraint

from .schema import RelationInfo, RelationKind

_ID_SUFFIX = re.compile(r"(?P<base>.+?)(?:[_ \-][Ii][Dd]|(?<=[A-Za-z0-9])Id|(?<=[a-z0-9])ID)")
_UNSAFE = re.compile(r"[/\\<>\x00-\x1f\x7f]")


def strip_id_suffix(name: str) -> str | None:
    """``ArtistId`` -> ``Artist``, ``artist_id`` -> ``artist``; None without an id suffix."""
    match = _ID_SUFFIX.fullmatch(name)
    return match.group("base") if match else None


def url_segment(name: str) -> str:
    """``name`` made safe as one URL path segment (see the module docstring)."""
    safe = _UNSAFE.sub("_", name)
    return "_" * len(safe) if safe.strip(".") == "" else safe


# -- relations -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Candidate:
    preferred: str | None
    fallback: str
    relation: RelationInfo


def _columns_of(key: ForeignKeyConstraint) -> str:
    return "_".join(column.name for column in key.columns)


def _pairs(key: ForeignKeyConstraint, reverse: bool = False,
           ) -> tuple[tuple[Column[Any], Column[Any]], ...]:
    pairs = [(element.parent, element.column) for element in key.elements]
    return tuple((remote, local) if reverse else (local, remote) for local, remote in pairs)


def _sorted_keys(table: Table, served: Mapping[Table, str]) -> list[ForeignKeyConstraint]:
    """The table's foreign keys to served tables, in column order (sets have no order)."""
    position = {column.name: index for index, column in enumerate(table.columns)}
    keys = [key for key in table.foreign_key_constraints
            if key.referred_table in served and key.elements]
    return sorted(keys, key=lambda key: ([position[c.name] for c in key.columns],
                                         served[key.referred_table]))


def link_keys(table: Table, served: Mapping[Table, str],
              ) -> tuple[ForeignKeyConstraint, ForeignKeyConstraint] | None:
    """The two foreign keys of a pure link table, or None when ``table`` is not one."""
    keys = _sorted_keys(table, served)
    if len(keys) != 2 or len(table.foreign_key_constraints) != 2:
        return None
    first = {column.name for column in keys[0].columns}
    second = {column.name for column in keys[1].columns}
    every = {column.name for column in table.columns}
    key = {column.name for column in table.primary_key.columns}
    if first & second or first | second != every or key != every:
        return None
    return keys[0], keys[1]


def _relation(kind: RelationKind, target: Table,
              pairs: tuple[tuple[Column[Any], Column[Any]], ...],
              secondary: Table | None = None,
              secondary_pairs: tuple[tuple[Column[Any], Column[Any]], ...] = ()) -> RelationInfo:
    return RelationInfo(name="", kind=kind, target=target, pairs=pairs, secondary=secondary,
                        secondary_pairs=secondary_pairs)


def describe_relations(served: Mapping[Table, str]) -> dict[Table, dict[str, RelationInfo]]:
    """Every served table's relations, named by the rule of the module docstring.

    :param served: the tables to serve -> their resource names.
    """
    to_one: dict[Table, list[_Candidate]] = {table: [] for table in served}
    to_many: dict[Table, list[_Candidate]] = {table: [] for table in served}
    many: dict[Table, list[_Candidate]] = {table: [] for table in served}
    for table, name in sorted(served.items(), key=lambda item: item[1]):
        for key in _sorted_keys(table, served):
            target = key.referred_table
            columns = _columns_of(key)
            stripped = strip_id_suffix(columns) if len(key.columns) == 1 else None
            to_one[table].append(_Candidate(
                stripped, f"{columns}_{served[target]}",
                _relation("to_one", target, _pairs(key))))
            to_many[target].append(_Candidate(
                None if target is table else name, f"{name}_by_{columns}",
                _relation("to_many", table, _pairs(key, reverse=True))))
        link = link_keys(table, served)
        if link is None:
            continue
        for near, far in (link, link[::-1]):
            owner, other = near.referred_table, far.referred_table
            many[owner].append(_Candidate(
                None if owner is other else served[other],
                f"{served[other]}_via_{name}_{_columns_of(far)}",
                _relation("many_to_many", other, _pairs(near, reverse=True), table,
                          _pairs(far, reverse=True))))
    return {table: _name_relations([*to_one[table], *to_many[table], *many[table]], table)
            for table in served}


def _name_relations(candidates: Sequence[_Candidate], table: Table) -> dict[str, RelationInfo]:
    columns = {column.name for column in table.columns}
    wanted = Counter(url_segment(c.preferred) for c in candidates if c.preferred is not None)
    chosen: dict[int, str] = {}
    for index, candidate in enumerate(candidates):
        if candidate.preferred is None:
            continue
        preferred = url_segment(candidate.preferred)
        if preferred not in columns and wanted[preferred] == 1:
            chosen[index] = preferred
    taken = columns | set(chosen.values())
    for index, candidate in enumerate(candidates):
        if index in chosen:
            continue
        fallback = url_segment(candidate.fallback)
        name, number = fallback, 1
        while name in taken:
            number += 1
            name = f"{fallback}_{number}"
        chosen[index] = name
        taken.add(name)
    return {chosen[index]: replace(candidate.relation, name=chosen[index])
            for index, candidate in enumerate(candidates)}
