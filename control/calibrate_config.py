"""Pass/fail thresholds of the calibration routines, in the network file's ``calibration:``
section (validated with the rest of the file: a bad value is rejected naming the field, the
value and what was expected). Every field has a default, so the section is optional::

    calibration:
      min_hom_visibility: 0.8
      max_phase_residual_rad: 0.35
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CalibrationThresholds(BaseModel):
    """What each calibration must reach to pass (add a field per new threshold)."""

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
