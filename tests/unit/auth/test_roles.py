"""The role matrix of issue 4, op by op for each role."""

from __future__ import annotations

import pytest

from gateway.auth.roles import DEFAULT_MATRIX, Role, RoleMatrix, is_allowed
from gateway.auth.users import is_allowed as reexported

V, OP, A = Role.VIEWER, Role.OPERATOR, Role.ADMIN

# (op, writes, roles allowed)
MATRIX = [
    ("about", False, {V, OP, A}),
    ("ops", False, {V, OP, A}),
    ("formats", False, {V, OP, A}),
    ("read", False, {V, OP, A}),
    ("nav", False, {V, OP, A}),
    ("hisRead", False, {V, OP, A}),
    ("defs", False, {V, OP, A}),
    ("libs", False, {V, OP, A}),
    ("filetypes", False, {V, OP, A}),
    ("watchSub", False, {V, OP, A}),
    ("watchUnsub", False, {V, OP, A}),
    ("watchPoll", False, {V, OP, A}),
    ("close", False, {V, OP, A}),
    ("pointWrite", False, {V, OP, A}),  # the array read: no level
    ("pointWrite", True, {OP, A}),  # a write
    ("hisWrite", True, {OP, A}),
    ("hisWrite", False, {OP, A}),  # hisWrite always writes, whatever the flag says
    ("invokeAction", True, {OP, A}),
    ("invokeAction", False, {OP, A}),
    ("users", False, {A}),
    ("users", True, {A}),
    ("eval", False, {A}),  # not in the matrix: admin only
    ("commit", True, {A}),
    ("READ", False, {A}),  # op names are case-sensitive
]


@pytest.mark.parametrize(("op", "writes", "allowed"), MATRIX)
@pytest.mark.parametrize("role", list(Role))
def test_role_matrix(role: Role, op: str, writes: bool, allowed: set[Role]) -> None:
    assert is_allowed(role, op, writes=writes) is (role in allowed)
    assert reexported(role, op, writes=writes) is (role in allowed)


def test_role_values_and_order() -> None:
    assert [r.value for r in Role] == ["admin", "operator", "viewer"]
    assert Role("operator") is Role.OPERATOR
    assert A.includes(OP) and OP.includes(V) and not V.includes(OP)
    assert A.rank > OP.rank > V.rank


def test_custom_ops_extend_the_matrix() -> None:
    matrix = DEFAULT_MATRIX.with_ops({"alarms": V, "ackAlarm": OP}, write={"alarms": OP})
    assert is_allowed(V, "alarms", matrix=matrix)
    assert not is_allowed(V, "alarms", writes=True, matrix=matrix)
    assert not is_allowed(V, "ackAlarm", matrix=matrix)
    assert is_allowed(OP, "ackAlarm", matrix=matrix)
    assert is_allowed(V, "read", matrix=matrix)  # the standard ops are kept
    assert not is_allowed(V, "alarms")  # and the default matrix is unchanged
    assert RoleMatrix(default=V).allows(V, "anything")
