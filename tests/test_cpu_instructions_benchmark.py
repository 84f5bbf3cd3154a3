"""The instruction-count benchmark: its arguments, how it reads callgrind's count, and the
counted run itself (run here without valgrind: it must teleport, and only through
``operator.call``, which is what callgrind's collection is toggled on)."""

from __future__ import annotations

import operator
import subprocess

import pytest

from benchmarks import cpu_instructions


def test_unknown_way_and_bad_counts_are_refused() -> None:
    with pytest.raises(ValueError, match=r"way 'fast'.*\['batched', 'single', 'stepwise'\]"):
        cpu_instructions.instructions_per_teleportation("fast")
    with pytest.raises(ValueError, match="shots 0, warmup 64: expected at least 1 each"):
        cpu_instructions.instructions_per_teleportation("batched", shots=0)


def test_missing_valgrind_is_a_clear_error(mocker) -> None:
    mocker.patch.object(cpu_instructions.shutil, "which", return_value=None)
    with pytest.raises(RuntimeError, match="valgrind is not installed"):
        cpu_instructions.instructions_per_teleportation("batched")


def test_the_count_is_read_from_callgrind_and_divided_by_the_shots(mocker) -> None:
    mocker.patch.object(cpu_instructions, "valgrind_available", return_value=True)
    run = mocker.patch.object(
        cpu_instructions.subprocess,
        "run",
        return_value=subprocess.CompletedProcess([], 0, b"", b"==1== Collected : 1234000\n"),
    )
    assert cpu_instructions.instructions_per_teleportation("stepwise", shots=100) == 12340.0
    command = run.call_args.args[0]
    assert command[:5] == [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        "--toggle-collect=_operator_call",
        cpu_instructions.sys.executable,
    ]
    assert command[-4:] == ["--counted-run", "stepwise", "100", "64"]
    assert run.call_args.kwargs["env"]["PYTHONHASHSEED"] == "0"


def test_a_failed_counted_run_says_so(mocker) -> None:
    mocker.patch.object(cpu_instructions, "valgrind_available", return_value=True)
    mocker.patch.object(
        cpu_instructions.subprocess,
        "run",
        return_value=subprocess.CompletedProcess([], 1, b"", b"Traceback: boom"),
    )
    with pytest.raises(RuntimeError, match=r"counted run of 'single' failed \(exit 1\).*boom"):
        cpu_instructions.instructions_per_teleportation("single")


@pytest.mark.parametrize("way", sorted(cpu_instructions.WAYS))
def test_the_counted_run_teleports_its_shots_inside_operator_call(way, mocker) -> None:
    from control.chain_shots import ChainShotsMixin

    calls = mocker.spy(operator, "call")
    batches = mocker.spy(ChainShotsMixin, "teleport_batch")
    cpu_instructions.main(["--counted-run", way, "3", "2"])
    assert calls.call_count == 1  # the counted shots, and only they
    shots = [item[0] for call in batches.call_args_list for item in call.args[4]]
    assert shots == [0, 1, 2, 3, 4]  # 2 warm-up shots, then the 3 counted ones


def test_unexpected_arguments_are_refused(capsys) -> None:
    assert cpu_instructions.main(["--fast"]) == 2
    assert "unexpected arguments ['--fast']" in capsys.readouterr().out
