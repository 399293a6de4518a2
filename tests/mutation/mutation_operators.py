"""Mutation operators for the bugs this project is most likely to have, which Cosmic Ray's own cannot make.

Cosmic Ray mutates operators, numbers and booleans. The service's guarantees also rest on things it does
not touch: the lookups of a Django ``filter`` (``claimed_at__lt`` read as ``__gt`` makes a fresh claim
look stale), the conditions of a compare-and-set (a dropped ``label_requested_at=…`` lets an outdated
worker overwrite a newer label request) and the shipment state machine (one extra state in
``TRANSITIONS`` makes a move towards a second label legal). These operators make exactly those changes,
one at a time, so ``make mutation`` asks the tests about them too.

They work on parso trees, as Cosmic Ray's operators do, and are registered under the provider name
``wemasy`` by :func:`register` (see ``tests/mutation/mutation.py``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import parso.python.tree as tree
from cosmic_ray.operators.operator import Example, Operator

Position = tuple[tuple[int, int], tuple[int, int]]

#: Calls whose keyword arguments are conditions or the columns a conditional update writes.
_GUARDED_CALLS = frozenset({"filter", "exclude", "get", "Q", "update", "move"})
_LOOKUP = re.compile(r"^(?P<field>\w+?)__(?P<op>lt|lte|gt|gte)$")
_FLIPPED = {"lt": "gt", "lte": "gte", "gt": "lt", "gte": "lte"}
_BOUNDARY = {"lt": "lte", "lte": "lt", "gt": "gte", "gte": "gt"}
_STATE_CLASS = "ShipmentState"


def _called_name(trailer: Any) -> str | None:
    """The name of the function a ``( … )`` trailer calls: ``filter`` in ``qs.filter(…)``, ``Q`` in ``Q(…)``."""
    if trailer.type != "trailer" or trailer.children[0].type != "operator" or trailer.children[0].value != "(":
        return None
    before = trailer.get_previous_sibling()
    if before is None:
        return None
    if before.type == "name":
        return str(before.value)
    if before.type == "trailer" and len(before.children) == 2 and before.children[0].value == ".":
        return str(before.children[1].value)
    return None


def _keyword_arguments(arglist: Any) -> list[Any]:
    return [child for child in arglist.children if child.type == "argument" and child.children[0].type == "name"]


class DropGuardCondition(Operator):
    """Drop one keyword argument of a ``filter``/``exclude``/``get``/``Q``/``update``/``move`` call.

    For a condition this widens the compare-and-set (``filter(pk=…, state=…)`` → ``filter(pk=…)``); for an
    update it forgets to write a column (``update(status=RUNNING, claimed_at=now)`` → no claim time).
    Only calls with at least two keyword arguments are mutated: an empty ``filter()`` is not a plausible slip.
    """

    def mutation_positions(self, node: Any) -> Iterator[Position]:
        if node.type == "arglist" and _called_name(node.parent) in _GUARDED_CALLS:
            keywords = _keyword_arguments(node)
            if len(keywords) >= 2:
                for argument in keywords:
                    yield (argument.start_pos, argument.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        target = _keyword_arguments(node)[index]
        children = list(node.children)
        at = children.index(target)
        # Take the comma after the argument with it, or the one before when it is the last one.
        if at + 1 < len(children) and children[at + 1].type == "operator" and children[at + 1].value == ",":
            del children[at : at + 2]
            if at < len(children):
                children[at].get_first_leaf().prefix = target.get_first_leaf().prefix
        else:
            del children[at - 1 : at + 1]
        node.children = children
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example("qs.filter(pk=1, state=s)", "qs.filter(state=s)"),
            Example("qs.filter(pk=1, state=s)", "qs.filter(pk=1)", occurrence=1),
        )


class FlipLookup(Operator):
    """Turn a Django range lookup around (``__lt`` ↔ ``__gt``) or move its boundary (``__lt`` ↔ ``__lte``).

    A staleness test read the wrong way round treats a claim taken a second ago as abandoned; a boundary
    moved by one decides the exact instant differently.
    """

    def mutation_positions(self, node: Any) -> Iterator[Position]:
        if node.type == "argument" and node.children[0].type == "name" and _LOOKUP.match(node.children[0].value):
            name = node.children[0]
            yield (name.start_pos, name.end_pos)
            yield (name.start_pos, name.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        name = node.children[0]
        match = _LOOKUP.match(name.value)
        assert match is not None
        table = _FLIPPED if index == 0 else _BOUNDARY
        node.children[0] = tree.Name(f"{match['field']}__{table[match['op']]}", name.start_pos, name.prefix)
        return node

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example("qs.filter(at__lt=t)", "qs.filter(at__gt=t)"),
            Example("qs.filter(at__lt=t)", "qs.filter(at__lte=t)", occurrence=1),
        )


def _states_in(node: Any) -> list[str] | None:
    """The ``ShipmentState`` members of a ``frozenset({ShipmentState.A, …})`` call, or None if it is not one."""
    if node.type != "atom_expr" or len(node.children) != 2:
        return None
    func, call = node.children
    if func.type != "name" or func.value != "frozenset" or _called_name(call) != "frozenset":
        return None
    inner = call.children[1:-1]
    if not inner:
        return []
    if len(inner) != 1 or inner[0].type != "atom" or inner[0].children[0].value != "{":
        return None
    body = inner[0].children[1]
    if body.type == "atom_expr":
        elements = [body]
    elif hasattr(body, "children"):
        elements = [c for c in body.children if c.type == "atom_expr"]
    else:  # a one-element set of a leaf, such as frozenset({"MC"}): no ShipmentState in it
        return None
    members = [_state_member(element) for element in elements]
    if not members or any(member is None for member in members):
        return None
    return [member for member in members if member is not None]


def _state_member(node: Any) -> str | None:
    if node.type == "atom_expr" and len(node.children) == 2 and node.children[0].type == "name":
        owner, attribute = node.children
        if owner.value == _STATE_CLASS and attribute.type == "trailer" and attribute.children[0].value == ".":
            return str(attribute.children[1].value)
    return None


def _all_states(node: Any) -> list[str]:
    """Every ``ShipmentState.X`` named anywhere in the module, in order of first mention."""
    seen: dict[str, None] = {}

    def walk(current: Any) -> None:
        member = _state_member(current)
        if member is not None and member.isupper():  # members, not ``ShipmentState.choices``
            seen.setdefault(member)
        for child in getattr(current, "children", ()):
            walk(child)

    walk(node.get_root_node())
    return list(seen)


def _entry_key(node: Any) -> str | None:
    """``A`` when ``node`` is the value of ``ShipmentState.A: node`` in a dict display."""
    previous = node.get_previous_sibling()
    if previous is not None and previous.type == "operator" and previous.value == ":":
        return _state_member(previous.get_previous_sibling())
    return None


def _state_set(members: list[str], prefix: str) -> Any:
    if not members:
        code = "frozenset()"
    else:
        code = "frozenset({" + ", ".join(f"{_STATE_CLASS}.{member}" for member in members) + "})"
    new = parso_expression(code)
    new.get_first_leaf().prefix = prefix
    return new


def parso_expression(code: str) -> Any:
    """The parso node of one expression (``parso.parse`` wraps it in a module and a statement)."""
    import parso

    node = parso.parse(code).children[0]
    return node.children[0] if node.type == "simple_stmt" else node


class AllowExtraState(Operator):
    """Add one more ``ShipmentState`` to a set of states, e.g. a transition ``LABELLED → LABEL_QUEUED``.

    In ``TRANSITIONS`` that makes a forbidden move legal; in ``IN_FLIGHT_STATES`` it counts a finished
    order as still in a batch. The entry's own state is never added (a move to itself is never asked for).
    """

    def _candidates(self, node: Any) -> list[str]:
        members = _states_in(node)
        if members is None:
            return []
        own = _entry_key(node)
        return [state for state in _all_states(node) if state not in members and state != own]

    def mutation_positions(self, node: Any) -> Iterator[Position]:
        for _ in self._candidates(node):
            yield (node.start_pos, node.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        members = _states_in(node) or []
        return _state_set([*members, self._candidates(node)[index]], node.get_first_leaf().prefix)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (
            Example(
                "T = {ShipmentState.A: frozenset(), ShipmentState.B: frozenset({ShipmentState.A})}",
                "T = {ShipmentState.A: frozenset({ShipmentState.B}), ShipmentState.B: frozenset({ShipmentState.A})}",
            ),
        )


class DropState(Operator):
    """Remove one ``ShipmentState`` from a set of states, e.g. forbid ``LABELLING → LABEL_QUEUED``."""

    def mutation_positions(self, node: Any) -> Iterator[Position]:
        for _ in _states_in(node) or []:
            yield (node.start_pos, node.end_pos)

    def mutate(self, node: Any, index: int) -> Any:
        members = _states_in(node) or []
        return _state_set(members[:index] + members[index + 1 :], node.get_first_leaf().prefix)

    @classmethod
    def examples(cls) -> tuple[Example, ...]:
        return (Example("S = frozenset({ShipmentState.A, ShipmentState.B})", "S = frozenset({ShipmentState.B})"),)


class Provider:
    """A Cosmic Ray operator provider (the interface of ``cosmic_ray.operators.provider.OperatorProvider``)."""

    _OPERATORS: dict[str, type[Operator]] = {
        cls.__name__: cls for cls in (DropGuardCondition, FlipLookup, AllowExtraState, DropState)
    }

    def __iter__(self) -> Iterator[str]:
        return iter(self._OPERATORS)

    def __getitem__(self, name: str) -> type[Operator]:
        return self._OPERATORS[name]


PROVIDER_NAME = "wemasy"


def register() -> None:
    """Make the operators known to Cosmic Ray in this process, next to its core ones.

    Cosmic Ray finds providers through the ``cosmic_ray.operator_providers`` entry point; declaring one
    would put test tooling into the service's package metadata, so the runner adds this provider to the
    loaded table instead (the local distributor runs every mutant from this process).
    """
    from cosmic_ray import plugins

    plugins.OPERATOR_PROVIDERS.setdefault(PROVIDER_NAME, Provider())
