"""Where a run happens and in which number format: ``--device`` and ``--precision``.

- :func:`resolve_device`: ``"auto"`` is CUDA when a GPU is visible, else Apple's MPS,
  else the CPU; an explicit ``"cuda"`` or ``"mps"`` that is not there is an error that
  says so (never a silent fall-back to the CPU).
- :class:`MixedPrecision`: the forward pass and the loss under ``torch.autocast`` in
  bfloat16 or float16 while the parameters, gradients and optimizer state stay float32.
  float16 has 5 exponent bits, so small gradients underflow to zero; it therefore uses a
  ``torch.amp.GradScaler``: the loss is multiplied by a large scale before ``backward``,
  the gradients are divided by it before anything reads them, and a step whose scaled
  gradients overflowed is skipped while the scale is halved. bfloat16 has float32's
  exponent range and needs no scaler.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from descend._validation import InvalidParameterError, OneOf, validate

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def _mps_available() -> bool:
    mps = getattr(torch.backends, "mps", None)
    return bool(mps is not None and mps.is_available())


def resolve_device(device: str | torch.device) -> torch.device:
    """The ``torch.device`` for ``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:N"`` or ``"mps"``.

    Raises:
        InvalidParameterError: an unknown name, or a device that this machine does not have.
    """
    if isinstance(device, torch.device):
        return device
    kind = device.split(":")[0]
    validate("device", {"device": kind}, {"device": OneOf(DEVICES)})
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if _mps_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        raise InvalidParameterError(
            f"device {device!r} was asked for, but torch sees no CUDA GPU "
            f"(torch {torch.__version__}, built with CUDA {torch.version.cuda}); "
            "use --device cpu or auto."
        )
    if kind == "mps" and not _mps_available():
        raise InvalidParameterError(
            "device 'mps' was asked for, but Apple's Metal backend is not available here; "
            "use --device cpu or auto."
        )
    return torch.device(device)


class MixedPrecision:
    """Autocast and, for float16, gradient scaling around one training step.

    Used by ``fit`` at four points: the forward pass and loss under :meth:`autocast`,
    :meth:`backward`, :meth:`unscale` before the gradients are read (norm, clipping,
    the non-finite check), and :meth:`step` in place of ``optimizer.step()``.

    Raises:
        InvalidParameterError: an unknown precision, or one the device cannot run:
            float16 needs CUDA (or MPS); bfloat16 needs a CPU, MPS, or a GPU that has it.
    """

    def __init__(self, device: torch.device, precision: str = "fp32") -> None:
        validate("fit", {"precision": precision}, {"precision": OneOf(PRECISIONS)})
        self.device, self.precision = device, precision
        self.dtype = _DTYPES.get(precision)
        if precision == "fp16" and device.type == "cpu":
            raise InvalidParameterError(
                "precision 'fp16' needs a GPU (CUDA or MPS); on the CPU use 'bf16' or 'fp32'."
            )
        if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
            raise InvalidParameterError(
                f"precision 'bf16' is not supported by {torch.cuda.get_device_name(device)}; "
                "use 'fp16' or 'fp32'."
            )
        self.scaler = torch.amp.GradScaler(device.type) if precision == "fp16" else None

    @contextlib.contextmanager
    def autocast(self) -> Iterator[None]:
        """The forward pass and the loss in the reduced precision (nothing for fp32)."""
        if self.dtype is None:
            yield
            return
        with torch.autocast(self.device.type, dtype=self.dtype):
            yield

    def backward(self, loss: torch.Tensor) -> None:
        """``loss.backward()``, of the scaled loss under float16."""
        (loss if self.scaler is None else self.scaler.scale(loss)).backward()

    def unscale(self, optimizer: torch.optim.Optimizer) -> None:
        """Divide the gradients by the scale, so that what reads them sees true gradients."""
        if self.scaler is not None:
            self.scaler.unscale_(optimizer)

    def step(self, optimizer: torch.optim.Optimizer) -> None:
        """``optimizer.step()``; under float16 the scaler's step and scale update."""
        if self.scaler is None:
            optimizer.step()
        else:
            self.scaler.step(optimizer)
            self.scaler.update()

    def overflowed(self) -> bool:
        """Under float16, after :meth:`unscale`: the scale was too large for these gradients.

        The step is skipped and the scale halved (the scaler's own remedy), instead of
        treating the gradients as diverged.
        """
        if self.scaler is None:
            return False
        self.scaler.update()  # sees the inf found by unscale_, halves the scale
        return True
