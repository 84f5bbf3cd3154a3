"""A node controller served over ZeroMQ, and the orchestrator's proxy for it.

`node_methods` turns a `NodeController` into RPC methods with validated arguments; the
`RemoteNode` proxy offers the orchestrator the very same methods, so `Orchestrator` runs a
network of node processes exactly as it runs nodes in its own process.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from drivers.qubit_program import Herald, ProgramResult, QubitProgram
from sequences.attempt_loop import AnyLoop
from sequences.pauli_frame import PauliFrame

from .node import NodeController, Pair
from .rpc import RpcClient, RpcServer


class _Args(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class PeerArgs(_Args):
    peer: str = Field(min_length=1)


class PairArgs(_Args):
    pair_id: str = Field(min_length=1)


class HeraldArgs(_Args):
    peer: str = Field(min_length=1)
    pair_id: str = Field(min_length=1)


class ArmArgs(_Args):
    loop: AnyLoop


class TwoPairArgs(_Args):
    pair_a: str = Field(min_length=1)
    pair_b: str = Field(min_length=1)


class TeleportOutArgs(_Args):
    input_qubit: int = Field(ge=0, le=64)
    pair_id: str = Field(min_length=1)


class FrameArgs(_Args):
    pair_id: str = Field(min_length=1)
    x: int = Field(ge=0, le=1)
    z: int = Field(ge=0, le=1)


class RenameArgs(FrameArgs):
    new_id: str = Field(min_length=1)
    peer: str = Field(min_length=1)


class AxisArgs(_Args):
    qubit: int = Field(ge=0, le=64)
    theta: float = Field(ge=-10, le=10)
    phi: float = Field(ge=-10, le=10)


class MeasurePairArgs(_Args):
    pair_id: str = Field(min_length=1)
    basis: str = Field(pattern="^[XYZ]$")


class WaitArgs(_Args):
    seconds: float = Field(ge=0, le=3600)
    defer: bool = False


class TeleportInputArgs(_Args):
    input_qubit: int = Field(ge=0, le=64)
    theta: float = Field(ge=-10, le=10)
    phi: float = Field(ge=-10, le=10)
    pair_id: str = Field(min_length=1)


#: operations a program sent over RPC may hold (the driver validates their arguments)
PROGRAM_OPERATIONS = (
    "INIT",
    "ROT",
    "GATE",
    "MEAS",
    "WAIT",
    "ENT",
    "SEND",
    "RECV",
    "PAULI",
    "AGE",
    "PROBE",
)


class ProgramArgs(_Args):
    """A real-time program as its operation lists (``QubitProgram.ops``)."""

    ops: list[list[Any]] = Field(min_length=1, max_length=64)

    @field_validator("ops")
    @classmethod
    def _known_operations(cls, ops: list[list[Any]]) -> list[list[Any]]:
        for index, op in enumerate(ops, 1):
            if not op or op[0] not in PROGRAM_OPERATIONS:
                raise ValueError(
                    f"operation {index} {op!r}: expected [kind, args...] with kind one of "
                    f"{', '.join(PROGRAM_OPERATIONS)}"
                )
        return ops

    def program(self) -> QubitProgram:
        """The operations as tuples again (bit expressions included)."""
        return QubitProgram(
            [tuple(tuple(a) if isinstance(a, list) else a for a in op) for op in self.ops]
        )


class BatchArgs(_Args):
    """Programs of consecutive shots (each as ``ProgramArgs.ops``) from ``first_shot``."""

    programs: list[ProgramArgs] = Field(min_length=1, max_length=64)
    first_shot: int | None = Field(default=None, ge=0, lt=2**31)

    def batch(self) -> list[QubitProgram]:
        return [p.program() for p in self.programs]


def result_to_dict(result: ProgramResult) -> dict[str, Any]:
    return {
        "readouts": list(result.readouts),
        "time_s": result.time_s,
        "heralds": [[h.bell_state, h.attempts, h.time_s] for h in result.heralds],
        "aborted": result.aborted,
        "probes": list(result.probes),
    }


def result_from_dict(d: dict[str, Any]) -> ProgramResult:
    return ProgramResult(
        readouts=tuple(int(r) for r in d["readouts"]),
        time_s=float(d["time_s"]),
        heralds=tuple(Herald(b, int(n), float(t)) for b, n, t in d["heralds"]),
        aborted=d["aborted"],
        probes=tuple(None if p is None else float(p) for p in d.get("probes", ())),
    )


def _wire(program: QubitProgram) -> dict[str, Any]:
    return {"ops": [list(op) for op in program.ops]}


def pair_to_dict(pair: Pair | None) -> dict[str, Any] | None:
    if pair is None:
        return None
    return {
        "pair_id": pair.pair_id,
        "peer": pair.peer,
        "qubit": pair.qubit,
        "x": pair.frame.x,
        "z": pair.frame.z,
        "created_s": pair.created_s,
        "attempts": pair.attempts,
    }


def pair_from_dict(d: dict[str, Any] | None) -> Pair | None:
    if d is None:
        return None
    return Pair(
        pair_id=d["pair_id"],
        peer=d["peer"],
        qubit=d["qubit"],
        frame=PauliFrame(d["x"], d["z"]),
        created_s=d["created_s"],
        attempts=d["attempts"],
    )


def node_methods(node: NodeController) -> dict[str, tuple[type[BaseModel] | None, Any]]:
    """The RPC methods of one node controller (names as the controller's methods)."""
    return {
        "prepare": (None, node.prepare),
        "qubit_count": (None, node.qubit_count),
        "now_s": (None, node.now_s),
        "last_step_s": (None, node.last_step_s),
        "arm": (ArmArgs, lambda a: node.arm(a.loop)),
        "load_loop": (ArmArgs, lambda a: node.load_loop(a.loop)),
        "start_programs": (
            BatchArgs,
            lambda a: node.start_programs(a.batch(), _required_shot(a.first_shot)),
        ),
        "program_results": (
            BatchArgs,
            lambda a: [result_to_dict(r) for r in node.program_results(a.batch())],
        ),
        "run_shot_programs": (
            BatchArgs,
            lambda a: [
                result_to_dict(r)
                for r in node.run_shot_programs(a.batch(), _required_shot(a.first_shot))
            ],
        ),
        "collect_herald": (
            HeraldArgs,
            lambda a: pair_to_dict(node.collect_herald(a.peer, a.pair_id)),
        ),
        "new_pair_id": (PeerArgs, lambda a: node.new_pair_id(a.peer)),
        "pair": (PairArgs, lambda a: pair_to_dict(node.pair(a.pair_id))),
        "free_qubit": (None, node.free_qubit),
        "move_to_memory": (PairArgs, lambda a: pair_to_dict(node.move_to_memory(a.pair_id))),
        "release": (PairArgs, lambda a: node.release(a.pair_id)),
        "bell_measurement": (
            TwoPairArgs,
            lambda a: list(node.bell_measurement(a.pair_a, a.pair_b)),
        ),
        "teleport_out": (
            TeleportOutArgs,
            lambda a: list(node.teleport_out(a.input_qubit, a.pair_id)),
        ),
        "teleport_input": (
            TeleportInputArgs,
            lambda a: list(node.teleport_input(a.input_qubit, a.theta, a.phi, a.pair_id)),
        ),
        "correct": (
            FrameArgs,
            lambda a: pair_to_dict(node.correct(a.pair_id, PauliFrame(a.x, a.z))),
        ),
        "rename": (
            RenameArgs,
            lambda a: pair_to_dict(node.rename(a.pair_id, a.new_id, a.peer, PauliFrame(a.x, a.z))),
        ),
        "prepare_input": (AxisArgs, lambda a: node.prepare_input(a.qubit, a.theta, a.phi)),
        "measure_pair": (MeasurePairArgs, lambda a: node.measure_pair(a.pair_id, a.basis)),
        "measure_along": (AxisArgs, lambda a: node.measure_along(a.qubit, a.theta, a.phi)),
        "discard_pair": (PairArgs, lambda a: node.pairs.pop(a.pair_id, None) and None),
        "wait": (WaitArgs, lambda a: node.wait(a.seconds, a.defer)),
        "safe_state": (None, node.safe_state),
    }


def _required_shot(shot: int | None) -> int:
    if shot is None:
        raise ValueError("shot: missing; a shot program needs the shot it belongs to")
    return shot


def serve_node(
    node: NodeController,
    endpoint: str,
    backend: str = "simulated",
    security: Any = None,
    spin_us: float = 0.0,
) -> RpcServer:
    """An RPC server for ``node`` (not started); ``security`` a ``control.security.Security``,
    ``spin_us`` how long its loop polls for the next request (``RpcServer``)."""
    return RpcServer(
        node.name,
        endpoint,
        node_methods(node),
        backend=backend,
        security=security,  # type: ignore[arg-type]
        spin_us=spin_us,
    )


class RemoteNode:
    """A node controller in another process, with the methods the orchestrator uses."""

    def __init__(
        self, name: str, endpoint: str, timeout_s: float = 10.0, security: Any = None
    ) -> None:
        self.name = name
        self.client = RpcClient(
            endpoint, name=f"orchestrator->{name}", timeout_s=timeout_s, security=security
        )

    def _call(self, method: str, **args: Any) -> Any:
        return self.client.call(method, **args)

    def prepare(self) -> None:
        self._call("prepare")

    def qubit_count(self) -> int:
        return int(self._call("qubit_count"))

    def now_s(self) -> float:
        return float(self._call("now_s"))

    def last_step_s(self) -> float:
        return float(self._call("last_step_s"))

    def arm(self, loop: AnyLoop) -> None:
        self._call("arm", loop=loop.model_dump())

    def collect_herald(self, peer: str, pair_id: str) -> Pair | None:
        return pair_from_dict(self._call("collect_herald", peer=peer, pair_id=pair_id))

    def load_loop(self, loop: AnyLoop) -> None:
        self._call("load_loop", loop=loop.model_dump())

    def start_programs(self, programs: list[QubitProgram], first_shot: int) -> None:
        self._call("start_programs", programs=[_wire(p) for p in programs], first_shot=first_shot)

    def program_results(self, programs: list[QubitProgram]) -> list[ProgramResult]:
        results = self._call("program_results", programs=[_wire(p) for p in programs])
        return [result_from_dict(r) for r in results]

    def run_shot_programs(
        self, programs: list[QubitProgram], first_shot: int
    ) -> list[ProgramResult]:
        results = self._call(
            "run_shot_programs", programs=[_wire(p) for p in programs], first_shot=first_shot
        )
        return [result_from_dict(r) for r in results]

    def new_pair_id(self, peer: str) -> str:
        return str(self._call("new_pair_id", peer=peer))

    def pair(self, pair_id: str) -> Pair:
        return pair_from_dict(self._call("pair", pair_id=pair_id))  # type: ignore[return-value]

    def free_qubit(self) -> int | None:
        return self._call("free_qubit")

    def move_to_memory(self, pair_id: str) -> Pair:
        return pair_from_dict(self._call("move_to_memory", pair_id=pair_id))  # type: ignore[return-value]

    def release(self, pair_id: str) -> None:
        self._call("release", pair_id=pair_id)

    def bell_measurement(self, pair_a: str, pair_b: str) -> tuple[int, int]:
        a, b = self._call("bell_measurement", pair_a=pair_a, pair_b=pair_b)
        return int(a), int(b)

    def teleport_out(self, input_qubit: int, pair_id: str) -> tuple[int, int]:
        a, b = self._call("teleport_out", input_qubit=input_qubit, pair_id=pair_id)
        return int(a), int(b)

    def teleport_input(
        self, input_qubit: int, theta: float, phi: float, pair_id: str
    ) -> tuple[int, int]:
        a, b = self._call(
            "teleport_input", input_qubit=input_qubit, theta=theta, phi=phi, pair_id=pair_id
        )
        return int(a), int(b)

    def correct(self, pair_id: str, frame: PauliFrame) -> Pair:
        result = self._call("correct", pair_id=pair_id, x=frame.x, z=frame.z)
        return pair_from_dict(result)  # type: ignore[return-value]

    def rename(self, pair_id: str, new_id: str, peer: str, frame: PauliFrame) -> Pair:
        result = self._call(
            "rename", pair_id=pair_id, new_id=new_id, peer=peer, x=frame.x, z=frame.z
        )
        return pair_from_dict(result)  # type: ignore[return-value]

    def prepare_input(self, qubit: int, theta: float, phi: float) -> None:
        self._call("prepare_input", qubit=qubit, theta=theta, phi=phi)

    def measure_pair(self, pair_id: str, basis: str) -> int:
        return int(self._call("measure_pair", pair_id=pair_id, basis=basis))

    def measure_along(self, qubit: int, theta: float, phi: float) -> int:
        return int(self._call("measure_along", qubit=qubit, theta=theta, phi=phi))

    def discard_pair(self, pair_id: str) -> None:
        self._call("discard_pair", pair_id=pair_id)

    def wait(self, seconds: float, defer: bool = False) -> None:
        if seconds > 0:
            self._call("wait", seconds=seconds, defer=defer)

    def safe_state(self) -> dict[str, str]:
        return dict(self._call("safe_state"))

    def close(self) -> None:
        self.client.close()
