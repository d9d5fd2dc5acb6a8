"""Diffusion on the EPD (note §1.10, §2.4): schedule, Eq. 14 (q_sample), the used form of Eq. 16, denoiser.

Eq. 16 as printed is garbled. Following DiffIR, the denoiser predicts Ẑ_0 (x0-parameterisation,
``clip_denoised=False``) and a reverse step is the DDPM posterior mean

    Z_{k-1} = coef1[k]·Ẑ_0 + coef2[k]·Z_k   (+ σ[k]·ε' when "insert noise" is on and k > 0),

with coef1 = β√ᾱ_prev/(1−ᾱ), coef2 = (1−ᾱ_prev)√α/(1−ᾱ), σ² = β(1−ᾱ_prev)/(1−ᾱ). At k = 0 the step
returns Ẑ_0 exactly. ``parameterization="eps"`` reads the output as ε and converts it to Ẑ_0 first,
which is the textbook eps form of Eq. 16. Indices are k = t − 1 ∈ {0..T−1}.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn


def make_beta_schedule(kind: str, timesteps: int, start: float, end: float) -> Tensor:
    """``sqrt_linear`` (DiffIR's "linear"): linspace(√start, √end, T)²; ``linear``: linspace(start, end, T).

    T = 1 uses β = ``end`` alone, so that Z_T is (almost) pure noise as for every other T.
    """
    if timesteps == 1:
        return torch.tensor([end], dtype=torch.float64)
    if kind == "sqrt_linear":
        return torch.linspace(start ** 0.5, end ** 0.5, timesteps, dtype=torch.float64) ** 2
    if kind == "linear":
        return torch.linspace(start, end, timesteps, dtype=torch.float64)
    raise ValueError(f"unknown beta schedule {kind!r}; use sqrt_linear or linear")


def schedule_constants(betas: Tensor) -> dict[str, Tensor]:
    """Every per-step constant of §1.10 in float64 (the table the tests check)."""
    alphas = 1 - betas
    abar = torch.cumprod(alphas, 0)
    abar_prev = torch.cat([abar.new_ones(1), abar[:-1]])
    one_minus_abar = torch.cat([betas[:1], (1 - abar)[1:]])  # exact at k = 0, so coef1[0] is exactly 1
    post_var = betas * (1 - abar_prev) / one_minus_abar
    return {
        "betas": betas, "alphas": alphas, "alphas_cumprod": abar, "alphas_cumprod_prev": abar_prev,
        "sqrt_alphas_cumprod": abar.sqrt(), "sqrt_one_minus_alphas_cumprod": (1 - abar).sqrt(),
        "posterior_variance": post_var, "sigma": post_var.clamp(min=0).sqrt(),
        "coef1": betas * abar_prev.sqrt() / one_minus_abar,
        "coef2": (1 - abar_prev) * alphas.sqrt() / one_minus_abar,
    }


class Denoiser(nn.Module):
    """ε_θ(Concat(Z_t, t, c)): Linear(2C+1, C) – LReLU – Linear(C, C) – LReLU, read as Ẑ_0 (DiffIR ResMLP)."""

    def __init__(self, epd_dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(2 * epd_dim + 1, epd_dim), nn.LeakyReLU(0.1),
                                 nn.Linear(epd_dim, epd_dim), nn.LeakyReLU(0.1))

    def forward(self, z_t: Tensor, t: Tensor, cond: Tensor) -> Tensor:
        return self.net(torch.cat([z_t, t.to(z_t.dtype).view(-1, 1).expand(z_t.shape[0], 1), cond], dim=-1))


@dataclass
class ChainResult:
    z_hat: Tensor
    trajectory: list[Tensor]   # Z_T, Z_{T-1}, …, Z_0 (= z_hat), for Fig. 7-style t-SNE


class EPDDiffusion(nn.Module):
    """The T-step diffusion of the EPD with fp32 schedule buffers (non-persistent: rebuilt from config)."""

    def __init__(self, timesteps: int = 4, linear_start: float = 0.1, linear_end: float = 0.99,
                 schedule: str = "sqrt_linear", parameterization: str = "x0") -> None:
        super().__init__()
        if parameterization not in ("x0", "eps"):
            raise ValueError(f"diffusion.parameterization must be x0 or eps, got {parameterization!r}")
        self.timesteps = timesteps
        self.parameterization = parameterization
        for name, value in schedule_constants(make_beta_schedule(schedule, timesteps, linear_start,
                                                                 linear_end)).items():
            self.register_buffer(name, value.float(), persistent=False)

    def time_input(self, k: int, batch: int, device) -> Tensor:
        """The scalar time input τ_k = k / (10·T) (DiffIR)."""
        return torch.full((batch,), k / (10 * self.timesteps), device=device)

    def q_sample(self, z0: Tensor, k: int, noise: Tensor) -> Tensor:
        """Eq. 14: Z_t = √ᾱ_t Z + √(1−ᾱ_t) ε at index k = t − 1."""
        return self.sqrt_alphas_cumprod[k] * z0 + self.sqrt_one_minus_alphas_cumprod[k] * noise

    def predict_start(self, z_k: Tensor, k: int, output: Tensor) -> Tensor:
        if self.parameterization == "x0":
            return output
        return (z_k - self.sqrt_one_minus_alphas_cumprod[k] * output) / self.sqrt_alphas_cumprod[k]

    def p_step(self, z_k: Tensor, z0_hat: Tensor, k: int, noise: Tensor | None = None) -> Tensor:
        """Used form of Eq. 16: posterior mean from Ẑ_0, plus σ_k·ε' ("insert noise") when noise is given."""
        out = self.coef1[k] * z0_hat + self.coef2[k] * z_k
        if noise is not None and k > 0:
            out = out + self.sigma[k] * noise
        return out

    def reverse(self, denoiser: nn.Module, z_start: Tensor, cond: Tensor, *, insert_noise: bool,
                generator: torch.Generator | None = None) -> ChainResult:
        """Run k = T−1 … 0 from Z_T = z_start with gradients flowing through every step (fp32)."""
        with torch.autocast(device_type=z_start.device.type, enabled=False):
            z = z_start.float()
            cond = cond.float()
            trajectory = [z]
            for k in reversed(range(self.timesteps)):
                out = denoiser(z, self.time_input(k, z.shape[0], z.device), cond)
                z0_hat = self.predict_start(z, k, out)
                noise = None
                if insert_noise and k > 0:
                    noise = torch.randn(z.shape, generator=generator, device=z.device) if generator is not None \
                        else torch.randn_like(z)
                z = self.p_step(z, z0_hat, k, noise)
                trajectory.append(z)
        return ChainResult(z, trajectory)

    def training_start(self, z: Tensor, mode: str = "q_sample") -> Tensor:
        """Training chain start: Eq. 14 at t = T from the teacher Z (DiffIR), or pure noise."""
        noise = torch.randn_like(z.float())
        if mode == "q_sample":
            return self.q_sample(z.float(), self.timesteps - 1, noise)
        if mode == "pure_noise":
            return noise
        raise ValueError(f"diffusion.train_chain_start must be q_sample or pure_noise, got {mode!r}")
