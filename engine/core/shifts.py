"""Derived datasets: a registered dataset changed by one fixed, seeded transform.

A derived dataset is named `<base>~<shift>` or `<base>~<shift>:<severity>`, for example
`mnist5k~permuted` (every image's pixels scrambled by one fixed permutation),
`mnist5k~randlabels` (the labels shuffled once), or `uci_digits~rotate:30`. Because such a name
is an ordinary dataset name, a derived source or target goes through specs, sweeps, the job
manager, pretraining and the result store like any other: the lessons on negative transfer
(a mismatched source) and domain shift (a transformed target) are plain sweeps.

Every transform is deterministic: the same name always gives the same tensors (randomness comes
from `SHIFT_SEED`, never from a run's seed), so stored results stay valid. Severities are
written in one canonical form (`rotate:30`, not `rotate:30.0`), so one dataset has one name.

A leaf module: it imports only `engine.core.datatypes`. `engine.core.datasets` resolves the names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Callable, Optional

import torch
import torch.nn.functional as F

from engine.core.datatypes import DatasetData, DatasetError

SEPARATOR = "~"  # between the base dataset's name and the shift
SHIFT_SEED = 1234  # every seeded transform draws from this; a run's seed never changes the data


@dataclass(frozen=True)
class ShiftKind:
    name: str  # as written in a dataset name
    title: str  # what the learner reads
    description: str  # one sentence for the page, with {severity} and {unit} filled in
    unit: str  # of the severity ("°", "σ", "" ...); empty when the shift takes none
    max_severity: Optional[float]  # None: the shift takes no severity
    apply: Callable[[DatasetData, float], DatasetData]
    changes_labels: bool = False  # True when the labels, not the images, change
    format_severity: Callable[[float], str] = "{:g}".format  # how the page writes a severity


def _rotate(data: DatasetData, degrees: float) -> DatasetData:
    """Every image turned by the same angle about its centre (bilinear, zeros outside)."""
    x = data.x  # (N, C, H, W)
    theta = math.radians(degrees)
    cos, sin = math.cos(theta), math.sin(theta)
    matrix = torch.tensor([[cos, -sin, 0.0], [sin, cos, 0.0]], dtype=x.dtype)
    grid = F.affine_grid(matrix.expand(x.shape[0], 2, 3), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return replace(data, x=out.clamp(0.0, 1.0).contiguous())


def _invert(data: DatasetData, fraction: float) -> DatasetData:
    """A fixed, seeded share of the images drawn with dark ink on a light background (1 - x).

    Blending every image halfway towards its negative would turn them all grey and destroy the
    digit; inverting a share of them keeps every image readable and shifts the domain."""
    n = data.x.shape[0]
    gen = torch.Generator().manual_seed(SHIFT_SEED)
    chosen = torch.randperm(n, generator=gen)[:int(round(fraction * n))]
    x = data.x.clone()
    x[chosen] = 1.0 - x[chosen]
    return replace(data, x=x)


def _noise(data: DatasetData, sigma: float) -> DatasetData:
    """Gaussian pixel noise of standard deviation sigma (pixels in [0, 1]), clipped to [0, 1]."""
    gen = torch.Generator().manual_seed(SHIFT_SEED)
    noise = torch.randn(data.x.shape, generator=gen, dtype=data.x.dtype)
    return replace(data, x=(data.x + sigma * noise).clamp(0.0, 1.0))


def gaussian_kernel(sigma: float) -> torch.Tensor:
    """A normalised 1-D Gaussian of standard deviation sigma pixels, radius ceil(3 sigma)."""
    radius = max(1, math.ceil(3 * sigma))
    t = torch.arange(-radius, radius + 1, dtype=torch.float32)
    k = torch.exp(-0.5 * (t / sigma) ** 2)
    return k / k.sum()


def _blur(data: DatasetData, sigma: float) -> DatasetData:
    """Gaussian blur of standard deviation sigma pixels (separable; zeros beyond the border)."""
    x = data.x  # (N, C, H, W)
    channels = x.shape[1]
    k = gaussian_kernel(sigma).to(x.dtype)
    r = (len(k) - 1) // 2
    out = F.conv2d(x, k.view(1, 1, 1, -1).expand(channels, 1, 1, -1), padding=(0, r), groups=channels)
    out = F.conv2d(out, k.view(1, 1, -1, 1).expand(channels, 1, -1, 1), padding=(r, 0), groups=channels)
    return replace(data, x=out.clamp(0.0, 1.0).contiguous())


def pixel_permutation(height: int, width: int) -> torch.Tensor:
    """The one fixed permutation of H * W pixel positions that `permuted` applies."""
    return torch.randperm(height * width, generator=torch.Generator().manual_seed(SHIFT_SEED))


def _permute(data: DatasetData, _: float) -> DatasetData:
    """Every image's pixels moved by the same fixed permutation: nothing is lost (a network that
    knew the permutation could undo it), but no neighbourhood stays together."""
    n, c, h, w = data.x.shape
    perm = pixel_permutation(h, w)
    x = data.x.reshape(n, c, h * w)[:, :, perm].reshape(n, c, h, w)
    return replace(data, x=x.contiguous())


def _random_labels(data: DatasetData, _: float) -> DatasetData:
    """The labels shuffled once among the images: each class keeps its size, but a label says
    nothing about its image any more."""
    perm = torch.randperm(data.y.shape[0], generator=torch.Generator().manual_seed(SHIFT_SEED))
    return replace(data, y=data.y[perm].clone())


SHIFTS: dict[str, ShiftKind] = {s.name: s for s in (
    ShiftKind("rotate", "Rotation", "every image turned by {severity}{unit}", "°", 180.0, _rotate),
    ShiftKind("invert", "Inversion", "{severity} of the images inverted (dark ink on light "
              "paper)", "", 1.0, _invert, format_severity="{:.0%}".format),
    ShiftKind("noise", "Noise", "Gaussian pixel noise of standard deviation {severity}", "", 1.0,
              _noise),
    ShiftKind("blur", "Blur", "Gaussian blur of standard deviation {severity} pixels", "", 4.0,
              _blur),
    ShiftKind("permuted", "Scrambled pixels", "every image's pixels scrambled by one fixed "
              "permutation", "", None, _permute),
    ShiftKind("randlabels", "Random labels", "labels shuffled at random among the images", "",
              None, _random_labels, changes_labels=True),
)}

# The shifts with a severity: the domain-shift lesson's choices.
SEVERITY_SHIFTS = tuple(name for name, s in SHIFTS.items() if s.max_severity is not None)


@dataclass(frozen=True)
class Shift:
    kind: str  # key in SHIFTS
    severity: Optional[float]  # None for shifts that take none

    @property
    def name(self) -> str:
        """The canonical spelling: 'rotate:30', 'noise:0.3', 'permuted'."""
        return self.kind if self.severity is None else f"{self.kind}:{self.severity:g}"

    def describe(self) -> str:
        info = SHIFTS[self.kind]
        severity = "" if self.severity is None else info.format_severity(self.severity)
        return info.description.format(severity=severity, unit=info.unit)

    def apply(self, data: DatasetData, name: str) -> DatasetData:
        info = SHIFTS[self.kind]
        out = info.apply(data, self.severity if self.severity is not None else 0.0)
        return replace(out, name=name, title=f"{data.title}, {self.describe()}",
                       preprocessing=dict(data.preprocessing, shift=self.describe()))


def parse_shift(text: str) -> Shift:
    """'rotate:30' -> Shift('rotate', 30.0); raises DatasetError naming what is wrong."""
    kind, sep, value = text.partition(":")
    if kind not in SHIFTS:
        raise DatasetError(f"unknown shift '{kind}'; choose one of: {', '.join(SHIFTS)}")
    info = SHIFTS[kind]
    if info.max_severity is None:
        if sep:
            raise DatasetError(f"the shift '{kind}' takes no severity; write it as '{kind}'")
        return Shift(kind, None)
    if not sep:
        raise DatasetError(f"the shift '{kind}' needs a severity, e.g. '{kind}:{info.max_severity / 2:g}'")
    try:
        severity = float(value)
    except ValueError:
        raise DatasetError(f"the severity of '{kind}' must be a number, got '{value}'") from None
    if not (math.isfinite(severity) and 0 < severity <= info.max_severity):
        raise DatasetError(f"the severity of '{kind}' must be above 0 and at most "
                           f"{info.max_severity:g}, got '{value}'")
    shift = Shift(kind, severity)
    if shift.name != text:
        raise DatasetError(f"write the shift '{text}' as '{shift.name}'")
    return shift


def split_name(name: str) -> tuple[str, Optional[Shift]]:
    """'uci_digits~rotate:30' -> ('uci_digits', Shift('rotate', 30.0)); a plain name -> (name,
    None). One shift per name: a base that is itself derived is refused."""
    base, sep, shift = name.partition(SEPARATOR)
    if not sep:
        return name, None
    if not base:
        raise DatasetError(f"'{name}' names no dataset before '{SEPARATOR}'")
    if SEPARATOR in shift:
        raise DatasetError(f"'{name}' applies more than one shift; use one")
    return base, parse_shift(shift)


def shifted_name(base: str, kind: str, severity: Optional[float] = None) -> str:
    """The canonical derived name; severity 0 (or None for a shift that needs one) is the base
    dataset itself. Raises DatasetError for an invalid shift or severity."""
    if SHIFTS.get(kind) is not None and SHIFTS[kind].max_severity is not None and not severity:
        return base
    shift = Shift(kind, None if severity is None else float(severity))
    parse_shift(shift.name)  # validates kind and range
    return f"{base}{SEPARATOR}{shift.name}"
