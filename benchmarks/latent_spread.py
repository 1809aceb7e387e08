"""How far apart MAESN's per-task latents end up: mean ``|mu|`` and sigma of the latent tables, and the
learned step size, after one benchmark cell's meta-training, for several ``kl_coef``.

The cell is the one ``benchmarks/adaptation.py`` runs with the settings of ``--folder``'s
``config.json`` (``kl_coef`` replaced); the model is caught where the cell draws its exploration
figure. Seed 0 of the quick tier's default setting::

    python benchmarks/latent_spread.py \\
        --folder benchmarks/results/paper/PointNav2D-v0_quick_ppo_latentlr0.01 --kl-coefs 0.1 0.02
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

import maesn_sb3.benchmark.cells as cells
from maesn_sb3.benchmark import Config


def spread(config: Config, seed: int) -> dict[str, float]:
    """Meta-train the cell of MAESN with ``seed`` and measure its latent tables."""
    caught: dict[str, Any] = {}

    def catch(model: Any, *args: Any, **kwargs: Any) -> dict:
        caught["model"] = model
        return {}

    cells._exploration_figure, draw = catch, cells._exploration_figure
    try:
        rows, _ = cells.run_cell(config, "maesn", seed, figure_dir=Path("unused"))
    finally:
        cells._exploration_figure = draw
    latents = caught["model"].latents
    return {
        "mean_norm": float(latents.means.detach().norm(dim=1).mean()),
        "sigma": float(latents.log_stds.detach().exp().mean()),
        "step_size": float(latents.step_size_mean.detach().abs().mean()),
        "success_iter_last": float(
            np.mean([r["success"] for r in rows if r["iteration"] == config.adapt_iterations])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--folder", type=Path, required=True, help="a benchmark folder with config.json")
    parser.add_argument("--kl-coefs", type=float, nargs="+", default=[0.1, 0.02])
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    saved = json.loads((args.folder / "config.json").read_text())
    print("| kl_coef | mean abs(mu) | mean sigma | step size | mean success, last iteration |")
    print("|---|---|---|---|---|")
    for kl_coef in args.kl_coefs:
        # a folder written before outer_kwargs existed has none (Config's default)
        outer_kwargs = {**saved.get("outer_kwargs", {}), "kl_coef": kl_coef}
        # the folder's record of its resolved arguments is not this kl_coef's: left out
        config = Config(**{**saved, "outer_kwargs": outer_kwargs, "resolved_kwargs": {}})
        r = spread(config, args.seed)
        print(f"| {kl_coef} | " + " | ".join(f"{value:.2f}" for value in r.values()) + " |")


if __name__ == "__main__":
    main()
