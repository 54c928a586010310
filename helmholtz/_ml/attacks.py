"""L-infinity adversarial attacks on image classifiers: FGSM and PGD, batched on the device.

Inputs are float images in ``[0, 1]`` and ``eps`` is in the same units (a
perturbation of ``2/255`` is ``eps=2/255``). Both attacks maximise the
cross-entropy of the true labels and keep the adversarial images in
``[0, 1]`` and within ``eps`` of the originals:

* **FGSM** (Goodfellow et al. 2015): one step, ``x + eps * sign(grad)``.
* **PGD** (Madry et al. 2018): ``steps`` steps of ``step_size`` (default
  ``eps / 4``, 10 steps) from a uniform random start in the ``eps`` ball,
  projected back after each step. The random start comes from a seeded
  generator, so a run is reproducible.

The gradient is taken with respect to the input only; a model that puts an
exact JPEG round trip in front of itself (the defence studied in "One Bit
Matters") is attacked through its straight-through gradient (BPDA). The
tests check both attacks against the Adversarial Robustness Toolbox on the
same model.
"""

from __future__ import annotations

from typing import Any, Callable

from .._extras import require

__all__ = ["ATTACKS", "fgsm", "pgd", "attack", "accuracy"]

#: The attacks :func:`attack` knows.
ATTACKS = ("fgsm", "pgd")


def _input_gradient(model: Callable[[Any], Any], x: Any, y: Any) -> Any:
    torch = require("torch", purpose="adversarial attacks")
    from torch.nn import functional as F

    x = x.detach().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x).float(), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def _check(x: Any, eps: float) -> None:
    if not 0 <= eps <= 1:
        raise ValueError(f"eps must be in [0, 1] (units of the [0, 1] pixel range; 8/255 is 0.0314); got {eps!r}")
    if not x.is_floating_point():
        raise TypeError(f"images must be float in [0, 1]; got {x.dtype}")


def fgsm(model: Callable[[Any], Any], x: Any, y: Any, eps: float) -> Any:
    """The fast gradient sign attack: ``clip(x + eps * sign(d loss / d x), 0, 1)``."""
    _check(x, eps)
    if eps == 0:
        return x.detach()
    return (x.detach() + eps * _input_gradient(model, x, y).sign()).clamp_(0, 1)


def pgd(
    model: Callable[[Any], Any],
    x: Any,
    y: Any,
    eps: float,
    *,
    steps: int = 10,
    step_size: float | None = None,
    random_start: bool = True,
    generator: Any = None,
) -> Any:
    """Projected gradient descent in the L-infinity ball of radius ``eps`` around ``x``.

    Parameters
    ----------
    model : callable
        Images -> logits.
    x, y : torch.Tensor
        Float images in ``[0, 1]`` and their labels.
    eps : float
        Radius of the ball, in ``[0, 1]`` pixel units.
    steps : int
        Gradient-sign steps (10).
    step_size : float, optional
        Default ``eps / 4``.
    random_start : bool
        Start from a point drawn uniformly in the ball (clipped to ``[0, 1]``).
    generator : torch.Generator, optional
        Source of the random start, on ``x``'s device.
    """
    torch = require("torch", purpose="adversarial attacks")
    _check(x, eps)
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be an int >= 1; got {steps!r}")
    if eps == 0:
        return x.detach()
    alpha = eps / 4 if step_size is None else float(step_size)
    x0 = x.detach()
    adv = x0.clone()
    if random_start:
        noise = torch.rand(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator) * (2 * eps) - eps
        adv = (adv + noise).clamp_(0, 1)
    for _ in range(steps):
        adv = adv + alpha * _input_gradient(model, adv, y).sign()
        adv = torch.min(torch.max(adv, x0 - eps), x0 + eps).clamp_(0, 1)
    return adv.detach()


def attack(name: str, model: Callable[[Any], Any], x: Any, y: Any, eps: float, *, generator: Any = None) -> Any:
    """Run the attack called ``name`` (see :data:`ATTACKS`) with its defaults."""
    if name == "fgsm":
        return fgsm(model, x, y, eps)
    if name == "pgd":
        return pgd(model, x, y, eps, generator=generator)
    raise ValueError(f"attack must be one of {', '.join(ATTACKS)}; got {name!r}")


def accuracy(model: Callable[[Any], Any], x: Any, y: Any) -> Any:
    """Correct predictions on ``(x, y)`` as a device tensor (no read-back)."""
    torch = require("torch", purpose="adversarial attacks")
    with torch.no_grad():
        return (model(x).argmax(1) == y).sum()
