"""The errors an RPC request raises."""

from __future__ import annotations

from ..messages import ErrorCode, ErrorInfo


class RpcError(Exception):
    """A request failed; ``info`` is the structured ``ErrorInfo`` (``code``, ``message``)."""

    def __init__(self, info: ErrorInfo, endpoint: str = "", method: str = "") -> None:
        self.info = info
        self.endpoint = endpoint
        self.method = method
        where = f"{endpoint} {method}: " if endpoint or method else ""
        super().__init__(f"{where}{info.code.value}: {info.message}")

    @property
    def code(self) -> ErrorCode:
        return self.info.code


class RpcTimeout(RpcError):  # noqa: N818 - the name the API promises
    """No reply within the timeout. The client remains usable."""
