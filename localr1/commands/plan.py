"""`localr1 plan`: what fits this machine (or a hardware profile), why, and how fast it will run.

Nothing here imports llama_cpp at import time: measuring this CPU's speed imports the engine lazily.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

from localr1.commands.options import add_workers_option, number
from localr1.errors import ConfigError
from localr1.hardware import CPUSpeed, HardwareProfile, cached_speed, load_profile, probe, save_speed, with_speed
from localr1.plaintext import plain
from localr1.plan import Config, Plan, Wishes, plan_model

KV_TYPES = ("f16", "q8_0", "q4_0")
GIGABYTES = number(0.0, 1_000_000.0, what="a number of GB from 0 to 1000000")
TOKENS_PER_S = number(0.0, 1_000_000.0, what="a number of tokens/s from 0 to 1000000")


def add_plan_parser(subparsers: Any) -> None:
    """Register `plan` on an argparse subparsers object."""
    p = subparsers.add_parser(
        "plan", help="choose the variant, context, KV cache and GPU split that fit this machine, and explain why",
        description="Plan how to run a model: the best variant that fits with a useful context, predicted memory "
                    "per device and speed, and every alternative with the reason it lost.",
    )
    p.add_argument("model", nargs="?", help="a model name from models.toml, a .gguf file or a folder of GGUFs "
                                            "(default: the model in your settings)")
    p.add_argument("--ctx", type=int, help="plan exactly this context size")
    p.add_argument("--min-ctx", type=int, help="the least context worth having (default: 8192 for R1 models)")
    p.add_argument("--max-ctx", type=int, default=32768, help="the most context to plan (default: 32768)")
    p.add_argument("--min-tps", type=TOKENS_PER_S, help="the least decode speed wanted, in tokens/s")
    p.add_argument("--prefer", choices=("quality", "speed"), default="quality", help="what wins a trade-off")
    p.add_argument("--max-memory", type=GIGABYTES, metavar="GB", help="use at most this much RAM")
    p.add_argument("--reserve", type=GIGABYTES, metavar="GB", help="RAM left free for other programs (default: 5%%)")
    p.add_argument("--quant", help="use this variant type (e.g. Q4_K_M); the planner fills in the rest")
    p.add_argument("--kv-type", choices=KV_TYPES, help="KV cache type (q8_0 and q4_0 imply flash attention)")
    p.add_argument("--gpu-layers", type=int, help="layers to offload (llama.cpp's count, the output head included)")
    p.add_argument("--hardware", metavar="FILE|PROFILE",
                   help="plan for a hardware profile (a JSON file or a shipped profile name) instead of this machine")
    p.add_argument("--measure", action="store_true", help="measure this CPU's speed again (about a minute)")
    p.add_argument("--save-hardware", type=Path, metavar="FILE", help="write this machine's profile as JSON")
    add_workers_option(p)
    p.add_argument("--json", action="store_true", help="print the plan as JSON")
    p.add_argument("--all-profiles", action="store_true", help="plan every R1 distill on every shipped profile")
    p.add_argument("--markdown", action="store_true", help="with --all-profiles: print docs/plans.md")
    p.set_defaults(handler=plan_command)


def _wishes(args: argparse.Namespace) -> Wishes:
    for name in ("ctx", "min_ctx", "max_ctx"):
        value = getattr(args, name)
        if value is not None and not 256 <= value <= 1_048_576:
            raise ConfigError(f"--{name.replace('_', '-')} {value} is out of range (256 to 1048576)")
    if args.min_ctx is not None and args.min_ctx > args.max_ctx:
        raise ConfigError(f"--min-ctx {args.min_ctx} is above --max-ctx {args.max_ctx}: "
                          "raise --max-ctx or lower --min-ctx")
    if args.gpu_layers is not None and args.gpu_layers < 0:
        raise ConfigError(f"--gpu-layers {args.gpu_layers} must be 0 or more")
    for name in ("max_memory", "reserve", "min_tps"):
        value = getattr(args, name)
        if value is not None and value < 0:
            raise ConfigError(f"--{name.replace('_', '-')} must not be negative")
    gb = 1e9
    return Wishes(
        context=args.ctx, min_context=args.min_ctx, max_context=args.max_ctx, min_tokens_per_s=args.min_tps,
        prefer=args.prefer, memory_ceiling=int(args.max_memory * gb) if args.max_memory is not None else None,
        reserve=int(args.reserve * gb) if args.reserve is not None else None, quant=args.quant,
        kv_type=args.kv_type, gpu_layers=args.gpu_layers,
    )


def measured_speed(profile: HardwareProfile, *, force: bool, console: Console) -> CPUSpeed:
    """This CPU's speed from the cache, or measured now (once) with a progress line."""
    from localr1.engine.params import default_threads

    threads = default_threads()
    speed = None if force else cached_speed(profile, threads)
    if speed is not None:
        return speed
    from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn

    from localr1.interrupts import terminate_as_interrupt
    from localr1.planner.calibrate import measure_cpu_speed

    with terminate_as_interrupt(), Progress(TextColumn("measuring this CPU: {task.description}"), BarColumn(),
                                            TimeElapsedColumn(), console=console, transient=True) as progress:
        task = progress.add_task("starting", total=1.0)
        speed = measure_cpu_speed(threads=threads,
                                  progress=lambda what, done: progress.update(task, description=what, completed=done))
    path = save_speed(profile, speed)
    console.print(Text(f"measured this CPU once; cached in {path} (--measure measures again)"), style="dim")
    return speed


def hardware_for(args: argparse.Namespace, console: Console) -> HardwareProfile:
    """The profile to plan for: a file or shipped profile, or this machine probed (speed measured once)."""
    if args.hardware:
        return load_profile(args.hardware)
    profile = probe()
    return with_speed(profile, measured_speed(profile, force=args.measure, console=console))


def _gb(n: int) -> str:
    return f"{n / 1e9:.2f}"


def _memory(c: Config) -> str:
    return " + ".join(f"{d.device} {_gb(d.total)}" for d in c.memory.devices if d.total)


def _speed(c: Config) -> str:
    return f"{c.speed.decode_tps:.1f}" if c.speed else "?"


def _kld(c: Config) -> str:
    return f"{c.variant.kld:.4f}" if c.variant.kld is not None else "unknown"


def render_plan(plan: Plan, console: Console) -> None:
    """The chosen plan, its memory per device, and the alternatives (plain text for every name)."""
    c = plan.config
    console.print(plain(f"Plan for {plan.model} on {plan.hardware}", style="bold"))
    summary = Table(show_header=False, box=None, pad_edge=False)
    rows = [
        ("variant", c.variant.label),
        ("quality", f"mean KLD {_kld(c)} vs F16, {c.variant.kld_source}"),
        *([("accuracy", f"task accuracy {c.variant.accuracy.describe()} (measured, quality.json)")]
          if c.variant.accuracy else []),
        ("context", f"{c.context} tokens"),
        ("KV cache", f"{c.kv_type}, flash attention {'on' if c.flash_attention else 'off'}"),
        ("GPU layers", f"{c.n_gpu_layers} (split {', '.join(map(str, c.gpu_layers))})" if c.gpu_layers else "none"),
        ("threads", str(plan.threads)),
    ]
    if c.speed:
        rows.append(("speed", f"{c.speed.decode_tps:.1f} tokens/s decoding ({c.speed.decode_tps_full:.1f} with the "
                              f"context full), {c.speed.prompt_tps:.0f} tokens/s reading a prompt"))
    for label, value in rows:
        summary.add_row(Text(label, style="bold"), plain(value))
    console.print(summary)
    memory = Table("device", "weights", "KV cache", "compute", "runtime", "total", "budget",
                   title="predicted memory (GB)")
    budgets = [plan.budget.ram, *plan.budget.gpus]
    names = ["", *plan.gpu_names]
    for d, budget, name in zip(c.memory.devices, budgets, names, strict=False):
        label = f"{d.device} ({name})" if name else d.device
        memory.add_row(plain(label), _gb(d.weights), _gb(d.kv_cache), _gb(d.compute), _gb(d.overhead),
                       _gb(d.total), _gb(budget))
    console.print(memory)
    for note in plan.notes:
        console.print(plain(f"note: {note}"))
    if plan.alternatives:
        alt = Table("variant", "context", "KV", "memory GB", "tokens/s", "mean KLD", "accuracy %", "why not",
                    title="alternatives")
        for a in plan.alternatives:
            ac = a.config
            accuracy = a.variant.accuracy
            alt.add_row(plain(a.variant.label), str(ac.context) if ac else "-", ac.kv_type if ac else "-",
                        plain(_memory(ac)) if ac else "-", _speed(ac) if ac else "-",
                        f"{a.variant.kld:.4f}" if a.variant.kld is not None else "-",
                        f"{accuracy.value * 100:.1f}" if accuracy else "-", plain(a.reason))
        console.print(alt)


def plan_command(args: argparse.Namespace) -> int:
    """Print the plan for one model, or for every distill on every shipped profile."""
    console = Console(stderr=args.json)
    if args.all_profiles:
        from localr1.plan_docs import render_markdown, render_tables

        if args.markdown:
            sys.stdout.write(render_markdown())
        else:
            render_tables(Console())
        return 0
    if args.markdown:
        raise ConfigError("--markdown goes with --all-profiles")
    hardware = hardware_for(args, console)
    if args.save_hardware:
        args.save_hardware.write_text(json.dumps(hardware.to_json(), indent=2) + "\n", encoding="utf-8")
    if args.workers:
        from localr1.planner.remote import remote_devices, with_workers

        hardware = with_workers(hardware, remote_devices(args.workers))
    if args.model is None:
        from localr1.settings import load_settings

        args.model = load_settings().model
    plan = plan_model(args.model, hardware, _wishes(args))
    if args.json:
        print(json.dumps(plan.to_json(), indent=2))
    else:
        render_plan(plan, console)
    return 0
