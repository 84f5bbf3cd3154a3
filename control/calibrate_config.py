"""The network file's ``calibration:`` section: which optical link steps run, with how many
attempts, and the pass/fail thresholds of the calibration routines. Validated with the rest
of the file (a bad value is rejected naming the field, the value and what was expected).
Every field has a default, so the section is optional::

    calibration:
      min_hom_visibility: 0.8
      max_phase_residual_rad: 0.35
      hom:                       # the two-photon (HOM) visibility step
        enabled: false
        note: needs ~1.5e9 attempts per offset on this lab
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class OpticalStepConfig(BaseModel):
    """Whether one optical link step is planned, and its attempts (None: the run's
    ``CalibrationSettings``). ``note`` says why it is off; the summary quotes it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(True, description="plan this step on every link")
    attempts: int | None = Field(
        None,
        ge=1_000,
        le=10**12,
        description="attempts per measurement (per offset point for HOM); None: the default",
    )
    note: str = Field("", max_length=500, description="why it is off (shown in the summary)")


class CalibrationThresholds(BaseModel):
    """What each calibration must reach to pass (add a field per new threshold), and which
    optical link steps are planned."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_channel_delay_residual_ps: float = Field(
        20.0,
        gt=0,
        le=1e6,
        description="largest |t_- - t_+| left after the channel-delay compensation, ps",
    )
    min_hom_visibility: float = Field(
        0.8, ge=0, le=1, description="smallest two-photon interference visibility that passes"
    )
    min_phase_contrast: float = Field(
        0.3, ge=0, le=1, description="smallest parity-fringe contrast of heralded pairs"
    )
    max_phase_residual_rad: float = Field(
        0.35,
        gt=0,
        le=3.2,
        description="largest interferometer phase left after compensation, rad",
    )
    channel_delays: OpticalStepConfig = Field(
        OpticalStepConfig(), description="the channel-delay step (single clicks of one node)"
    )
    hom: OpticalStepConfig = Field(
        OpticalStepConfig(),
        description="the two-photon visibility step (coincidences of both nodes' photons)",
    )
