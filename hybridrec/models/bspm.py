"""BSPM, blurring-sharpening process models (Choi et al. 2023, https://arxiv.org/abs/2211.09324).

A training-free graph filter like GF-CF, followed by a *sharpening* process: the filtered
scores are run backwards through the heat equation on the item-item graph, which undoes
part of the over-smoothing that makes every user's list drift towards popular items.
"""

from __future__ import annotations

import torch

from .gfcf import GFCF

SOLVERS = ("euler", "rk4")


class BSPM(GFCF):
    r"""GF-CF's filter as the blurred start, then a sharpening ODE on the item graph.

    With :math:`\tilde P = \tilde R^\top \tilde R` (GF-CF's normalised item-item filter) and
    GF-CF's scores as the start,

    .. math::
        x(0) = r_u \tilde P + \beta\, r_u D_I^{-1/2} V_k V_k^\top D_I^{1/2}, \qquad
        \frac{dx}{dt} = -\,x \tilde P, \qquad s_u = x(T)

    integrated from 0 to ``sharpen_time`` :math:`T` in ``sharpen_steps`` steps of the
    ``solver`` (``"euler"``: :math:`x \leftarrow x - h\,x\tilde P`; ``"rk4"``: the classic
    Runge-Kutta step, which for this linear ODE is the degree-4 Taylor polynomial of
    :math:`e^{-h\tilde P}`). Each step multiplies a batch by :math:`\tilde P` as two sparse
    products (1 for Euler, 4 for RK4); the item-item matrix is never formed. ``sharpen_time=0``
    is GF-CF. The defaults are the paper's Gowalla setting (BSPM-LM with RK4).

    Args:
        n_factors: singular vectors ``k`` of the ideal low-pass filter (default 448).
        alpha: weight :math:`\beta` of the ideal low-pass term (default 0.2).
        sharpen_time: :math:`T` (default 2.5).
        sharpen_steps: solver steps (default 1).
        solver: ``"rk4"`` (default) or ``"euler"``.
        svd, svd_iters, seed, device: as for :class:`~hybridrec.models.gfcf.GFCF`.
    """

    name = "bspm"

    def __init__(self, n_factors: int = 448, alpha: float = 0.2, sharpen_time: float = 2.5,
                 sharpen_steps: int = 1, solver: str = "rk4", **kwargs):
        super().__init__(n_factors=n_factors, alpha=alpha, **kwargs)
        if solver not in SOLVERS:
            raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
        if not float(sharpen_time) >= 0 or int(sharpen_steps) < 1:
            raise ValueError(f"need sharpen_time >= 0 and sharpen_steps >= 1, got {sharpen_time}, {sharpen_steps}")
        self.sharpen_time, self.sharpen_steps, self.solver = float(sharpen_time), int(sharpen_steps), solver

    def settings(self):
        return {**super().settings(), "sharpen_time": self.sharpen_time, "sharpen_steps": self.sharpen_steps,
                "solver": self.solver}

    def _filter(self, x: torch.Tensor) -> torch.Tensor:
        """:math:`x \\tilde P` for a batch ``[B, n_items]``, as two sparse products."""
        return (self._r_norm_t @ (self._r_norm @ x.T.contiguous())).T

    def _score_rows(self, rows: torch.Tensor) -> torch.Tensor:
        x = super()._score_rows(rows)  # GF-CF: the blurred scores
        if self.sharpen_time == 0:
            return x
        h = self.sharpen_time / self.sharpen_steps
        for _ in range(self.sharpen_steps):
            if self.solver == "euler":
                x = x - h * self._filter(x)
            else:
                k1 = -self._filter(x)
                k2 = -self._filter(x + h / 2 * k1)
                k3 = -self._filter(x + h / 2 * k2)
                k4 = -self._filter(x + h * k3)
                x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return x
