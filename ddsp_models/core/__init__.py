"""Pure tensor functions: oscillators, upsampling, FIR/IIR filtering, delays, unit conversions.

Audio arguments are ``(..., samples)``; controls are ``(batch, frames, features)``.
Nothing here holds state or learnable weights.
"""

from __future__ import annotations

from .._lazy import lazy_exports
from .scaling import (
    amplitude_to_db,
    db_to_amplitude,
    exp_sigmoid,
    hz_to_midi,
    midi_to_hz,
    octaves_into_range,
    power_to_db,
)
from .upsample import hop_size, upsample_linear, upsample_with_windows

_C = "ddsp_models.core."

#: Functions resolved lazily from their modules (one idea per module).
_LAZY = {
    # oscillators.py: phase accumulation and additive synthesis
    "angular_cumsum": _C + "oscillators",
    "oscillator_bank": _C + "oscillators",
    "harmonic_synthesis": _C + "oscillators",
    "remove_above_nyquist": _C + "oscillators",
    "harmonic_frequencies": _C + "oscillators",
    # filtering.py: FFT convolution and time-varying FIR filtering
    "fft_convolve": _C + "filtering",
    "frequency_impulse_response": _C + "filtering",
    "frequency_filter": _C + "filtering",
    # delay.py: fractional, time-varying delay lines
    "variable_delay": _C + "delay",
    "delay_line_read": _C + "delay",
    # convolution.py: zero-latency partitioned convolution for block rendering
    "partition_ir": _C + "convolution",
    "partitioned_convolve_step": _C + "convolution",
    "convolve_in_blocks": _C + "convolution",
    # noise.py: counter-based noise (the same numbers whatever the block sizes)
    "counter_noise": _C + "noise",
    "deterministic_noise": _C + "noise",
    # iir.py: recursive filters with exact gradients
    "lfilter": _C + "iir",
    "sosfilt": _C + "iir",
    "allpole": _C + "iir",
    "linear_recurrence": _C + "iir",
    "freqz": _C + "iir",
    "sosfreqz": _C + "iir",
    "fir_filter": _C + "iir",
    "linkwitz_riley_crossover": _C + "iir",
    # filter_design.py: coefficient design
    "biquad_coefficients": _C + "filter_design",
    "butterworth_sos": _C + "filter_design",
    "linkwitz_riley_sos": _C + "filter_design",
    "first_order_allpass": _C + "filter_design",
    "second_order_allpass": _C + "filter_design",
    "allpass_coefficient": _C + "filter_design",
    # ballistics.py: attack/release smoothing with exact gradients
    "attack_release": _C + "ballistics",
    "attack_release_block": _C + "ballistics",
    "time_constant_to_alpha": _C + "ballistics",
    "alpha_to_time_constant": _C + "ballistics",
}

__getattr__, __dir__ = lazy_exports(__name__, _LAZY)

__all__ = [
    "amplitude_to_db",
    "db_to_amplitude",
    "exp_sigmoid",
    "hz_to_midi",
    "midi_to_hz",
    "octaves_into_range",
    "power_to_db",
    "hop_size",
    "upsample_linear",
    "upsample_with_windows",
    *_LAZY,
]
