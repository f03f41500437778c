"""Markdown tables of a bench/gpu_check.py report (its JSON records)."""

from __future__ import annotations

import math
from typing import Any

PRECISIONS = ("32-true", "16-mixed", "bf16-mixed")
# The seed recipes (conf/experiment/<name>.yaml) and how the tables name them.
RECIPES = {
    "aasist_la19": "AASIST",
    "aasist_l_la19": "AASIST-L",
    "rawnet2_la19": "RawNet2",
    "se_res2net50_cqt_la19": "SE-Res2Net50 (CQT)",
    "res_tssdnet_la19": "Res-TSSDNet",
    "inc_tssdnet_la19": "Inc-TSSDNet",
    "ssl_aasist_la21": "SSL-AASIST (random XLS-R 300M)",
}


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def num(value: Any, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.1e}"
    return str(value)


def problem(record: dict[str, Any]) -> str | None:
    if "skipped" in record:
        return f"skipped ({record['skipped']})"
    if "error" in record:
        return f"error: {record['error'][:80]}"
    return None


def of(report: dict[str, Any], part: str) -> list[dict[str, Any]]:
    return [r for r in report["records"] if r.get("part") == part]


def header(report: dict[str, Any]) -> str:
    env = next(iter(of(report, "env")), {})
    keys = ("gpu", "date_utc", "torch", "lightning", "python", "driver", "cuda", "cudnn")
    facts = ", ".join(f"{k} {env[k]}" for k in keys if k in env)
    text = f"# GPU check\n\n{facts or 'environment not recorded'}\n"
    if "bf16_matmul_tflops" in env:
        text += (
            f"\nMeasured ceilings: bf16 matrix product {env['bf16_matmul_tflops']} TFLOP/s, "
            f"device copy {env['copy_tb_per_s']} TB/s. Defaults: matmul TF32 "
            f"{env.get('default_matmul_tf32')}, cuDNN TF32 {env.get('default_cudnn_tf32')}.\n"
        )
    rows = [[p, s.get("status", ""), num(s.get("seconds"))] for p, s in report["parts"].items()]
    return text + "\n" + table(["part", "status", "seconds"], rows)


def throughput_table(report: dict[str, Any]) -> str:
    by_recipe: dict[str, dict[str, dict[str, Any]]] = {}
    for r in of(report, "throughput"):
        by_recipe.setdefault(r["recipe"], {})[r.get("precision", "?")] = r
    rows = []
    for recipe, cases in by_recipe.items():
        any_case = next((c for c in cases.values() if "batch_size" in c), {})
        cells = []
        for precision in PRECISIONS:
            case = cases.get(precision)
            if case is None:
                cells.append("-")
            elif problem(case):
                cells.append(problem(case))
            else:
                cells.append(
                    f"{num(case['samples_per_s'])} /s, {num(case.get('peak_allocated_gib'), 2)} GiB"
                )
        fp32, bf16 = cases.get("32-true", {}), cases.get("bf16-mixed", {})
        speedup = (
            num(bf16["samples_per_s"] / fp32["samples_per_s"], 2)
            if fp32.get("samples_per_s") and "samples_per_s" in bf16
            else "-"
        )
        size = f"{any_case.get('batch_size', '?')} x {any_case.get('crop', '?')}"
        params = num(next(iter(cases.values())).get("params"))
        rows.append([RECIPES.get(recipe, recipe), params, size, *cells, speedup])
    head = ["recipe", "params", "batch x samples", *PRECISIONS, "bf16 / fp32"]
    return "\n## Training throughput and peak memory at the recipe batch\n\n" + table(head, rows)


def small_gpu_table(report: dict[str, Any]) -> str:
    rows = []
    for r in of(report, "small_gpu"):
        if problem(r):
            rows.append([r["experiment"], problem(r), "", "", "", "", ""])
            continue
        rows.append(
            [
                r["experiment"],
                r["precision"],
                f"{r['micro_batch']} x {r['accumulation']}",
                num(r["trainable_params"]),
                num(r.get("peak_allocated_gib"), 2),
                num(r.get("peak_reserved_gib"), 2),
                {True: "yes", False: "NO"}.get(r.get("fits_4gib"), "-"),
            ]
        )
    head = [
        "experiment",
        "precision",
        "micro x accum",
        "trainable",
        "peak alloc GiB",
        "peak reserved GiB",
        "<= 4 GiB",
    ]
    return "\n## trainer=small_gpu, effective batch 32\n\n" + table(head, rows)


def agreement_table(report: dict[str, Any]) -> str:
    rows = []
    for r in of(report, "agreement"):
        if problem(r):
            rows.append([r.get("variant"), r.get("mode"), problem(r)] + [""] * 6)
            continue
        rows.append(
            [
                r["variant"],
                r["mode"],
                num(r.get("max_abs_logit_diff"), 4),
                num(r.get("rel_logit_error"), 4),
                num(r.get("max_abs_score_diff"), 4),
                num(r.get("eer_fp32_percent", r.get("eer_percent")), 2),
                num(r.get("eer_percent"), 2),
                num(r.get("eer_change_pp"), 3),
                f"{r['decisions_flipped']}/{r['utterances']}" if "utterances" in r else "-",
            ]
        )
    head = [
        "model",
        "mode vs fp32",
        "max abs d logit",
        "rel. error",
        "max abs d score",
        "EER fp32 %",
        "EER %",
        "d EER (pp)",
        "decisions flipped",
    ]
    return "\n## Official checkpoints: TF32 / bf16 / fp16 against fp32\n\n" + table(head, rows)


def simple_table(report: dict[str, Any], part: str, title: str, keys: list[str]) -> str:
    records = of(report, part)
    if not records:
        return ""
    rows = [[num(r.get(k), 3) for k in keys] + [problem(r) or r.get("note", "")] for r in records]
    return f"\n## {title}\n\n" + table([*keys, "note"], rows)


def markdown(report: dict[str, Any]) -> str:
    parts = [
        header(report),
        throughput_table(report),
        small_gpu_table(report),
        agreement_table(report),
        simple_table(
            report,
            "official",
            "Official AASIST training loop (fp32) against train.py (bf16-mixed), batch 24",
            [
                "official_fp32_samples_per_s",
                "official_fp32_cudnn_nondeterministic_samples_per_s",
                "ours_bf16-mixed_samples_per_s",
                "ours_32-true_samples_per_s",
                "ratio_ours_bf16_vs_official_fp32",
            ],
        ),
        simple_table(
            report,
            "feeding",
            "Data feeding: train.py reading flac (AASIST, bf16-mixed, batch 24)",
            ["num_workers", "samples_per_s", "step_ms", "host_wait_fraction", "gpu_idle_fraction"],
        ),
        simple_table(
            report,
            "loss_curve",
            "Loss curves: the same AASIST run per precision",
            [
                "precision",
                "steps",
                "first_loss",
                "last10_mean",
                "mean_abs_diff_vs_fp32",
                "max_abs_diff_vs_fp32",
            ],
        ),
        simple_table(
            report,
            "compile",
            "torch.compile (trainer.compile=true), AASIST",
            [
                "compiled",
                "precision",
                "samples_per_s",
                "first_step_s",
                "max_abs_loss_diff",
                "max_abs_eval_logit_diff_fp32",
            ],
        ),
    ]
    return "".join(parts)
