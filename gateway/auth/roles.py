"""Roles and the role matrix: which Haystack ops each role may call.

Three roles, each including the rights of the one below it:

=========  ================================================================================
viewer     about, ops, formats, read, nav, hisRead, defs, libs, filetypes, watchSub,
           watchUnsub, watchPoll, close, and pointWrite *without* a level (the array read)
operator   the viewer's ops plus hisWrite, pointWrite with a level (a write), invokeAction
admin      everything, including the users REST API (op name ``users``)
=========  ================================================================================

The matrix is data (:class:`RoleMatrix`) so that an application with custom ops extends it
instead of patching a function. An op that the matrix does not name is admin-only: a new op is
closed until someone decides who may call it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from types import MappingProxyType
from typing import Final

__all__ = [
    "DEFAULT_MATRIX",
    "USERS_OP",
    "Role",
    "RoleMatrix",
    "is_allowed",
]


class Role(StrEnum):
    """A user's role; the string values are what storage and configuration files hold."""

    ADMIN = "admin"
    OPERATOR = "operator"
    VIEWER = "viewer"

    @property
    def rank(self) -> int:
        """0 for viewer, 1 for operator, 2 for admin."""
        return _RANK[self]

    def includes(self, other: Role) -> bool:
        """Whether this role has every right of ``other``."""
        return self.rank >= other.rank


_RANK: Final = {Role.VIEWER: 0, Role.OPERATOR: 1, Role.ADMIN: 2}

#: The op name under which the users REST API is checked.
USERS_OP: Final = "users"


def _frozen(ops: Mapping[str, Role]) -> Mapping[str, Role]:
    return MappingProxyType(dict(ops))


@dataclass(frozen=True, slots=True)
class RoleMatrix:
    """The least role an op needs, for a call that only reads and for one that writes.

    ``call`` holds every op's requirement; ``write`` holds the stricter requirement of the ops
    whose request can either read or write (pointWrite: no level reads the array). ``default``
    applies to ops named in neither.
    """

    call: Mapping[str, Role] = field(default_factory=dict)
    write: Mapping[str, Role] = field(default_factory=dict)
    default: Role = Role.ADMIN

    def required(self, op: str, *, writes: bool = False) -> Role:
        """The least role that may call ``op``."""
        need = self.call.get(op, self.default)
        if writes:
            stricter = self.write.get(op)
            if stricter is not None and stricter.rank > need.rank:
                need = stricter
        return need

    def allows(self, role: Role, op: str, *, writes: bool = False) -> bool:
        """Whether ``role`` may call ``op`` (``writes``: the request writes, e.g. a level)."""
        return role.includes(self.required(op, writes=writes))

    def with_ops(
        self, call: Mapping[str, Role], write: Mapping[str, Role] | None = None
    ) -> RoleMatrix:
        """A copy with more ops (or changed requirements), for applications with custom ops."""
        return RoleMatrix(
            _frozen({**self.call, **call}),
            _frozen({**self.write, **(write or {})}),
            self.default,
        )


_VIEWER_OPS: Final = (
    "about",
    "ops",
    "formats",
    "read",
    "nav",
    "hisRead",
    "defs",
    "libs",
    "filetypes",
    "watchSub",
    "watchUnsub",
    "watchPoll",
    "close",
    "pointWrite",
)
_OPERATOR_OPS: Final = ("hisWrite", "invokeAction")

#: Issue 4's matrix.
DEFAULT_MATRIX: Final = RoleMatrix(
    call=_frozen(
        dict.fromkeys(_VIEWER_OPS, Role.VIEWER)
        | dict.fromkeys(_OPERATOR_OPS, Role.OPERATOR)
        | {USERS_OP: Role.ADMIN}
    ),
    write=_frozen({"pointWrite": Role.OPERATOR}),
    default=Role.ADMIN,
)


def is_allowed(
    role: Role, op: str, *, writes: bool = False, matrix: RoleMatrix = DEFAULT_MATRIX
) -> bool:
    """Whether ``role`` may call ``op``; ``writes`` is True for a pointWrite with a level."""
    return matrix.allows(role, op, writes=writes)
