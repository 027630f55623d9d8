#!/usr/bin/env python3
"""Drive the console in tmux at 80×24 over the real engine, as a researcher would, step by step.

    .venv/bin/python scripts/console_walkthrough.py [RUNS_ROOT] [--keep] [--slow=F]

Run by hand (not in CI): it needs tmux and takes minutes on a CPU. Steps: open the quickstart
run's ERM checkpoint → rank → mark the top 3 → zero → readout with control → the layer-matched
control with its p and signature verdict → flipped examples → heat map →
fine-tune 2 epochs from the ERM checkpoint → cancel → resume → open the fine-tuned checkpoint →
readout → export. A quickstart run (smoke profile) is made first when RUNS_ROOT has none.

Prints each step with its time; exits 1 when a step times out or a traceback shows on the
screen (the last screen is printed), 0 when every step passed.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

HERE = Path(__file__).resolve().parent.parent
PY = os.environ.get("PYTHON", str(HERE / ".venv" / "bin" / "python"))
LABCONSOLE = str(Path(PY).with_name("labconsole"))  # the console script beside that Python
SESSION = f"lcwalk{os.getpid()}"
WIDTH, HEIGHT = 80, 24
# --slow=F multiplies every timeout: a machine shared with other work runs the engine F× slower
SLOW = float(next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--slow=")), "1"))


class StepFailed(Exception):
    pass


def tmux(*args: str) -> str:
    return subprocess.run(["tmux", *args], check=True, capture_output=True, text=True).stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def keys(*sequence: str) -> None:
    for key in sequence:
        tmux("send-keys", "-t", SESSION, key)
        time.sleep(0.15)


def escape() -> None:
    """Escape alone: a key that follows it within the console's escape delay (or is read in the
    same chunk, when the console lags) makes it Alt+key, and both are lost."""
    keys("Escape")
    time.sleep(1.0)
    settled()


def type_text(text: str) -> None:
    tmux("send-keys", "-t", SESSION, "-l", text)
    time.sleep(0.2)


def wait(what: str, ok: Callable[[str], bool], timeout: float) -> str:
    timeout *= SLOW
    start = time.monotonic()
    while True:
        shown = screen()
        if "Traceback" in shown:
            raise StepFailed(f"a traceback is on the screen while waiting for {what}")
        if ok(shown):
            return shown
        if time.monotonic() - start > timeout:
            raise StepFailed(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.25)


def settled(quiet: float = 0.4, timeout: float = 15.0) -> str:
    """The screen once it stops changing: a key is drawn before the next look (the console may
    lag behind the keys while the engine loads on the same cores; --slow stretches the quiet)."""
    quiet, timeout = quiet * SLOW, timeout * SLOW
    start = time.monotonic()
    last = screen()
    while time.monotonic() - start < timeout:
        time.sleep(quiet)
        shown = screen()
        if shown == last:
            return shown
        last = shown
    return last


def row_of(label: str, shown: str) -> str:
    return next((line for line in shown.splitlines() if line.strip().startswith(label)), "")


def field_of(label: str, shown: str) -> str:
    """The value shown in form row ``label``: after the label, before the pane border beside it."""
    return row_of(label, shown).split(label, 1)[-1].split("│", 1)[0].strip()


def has(text: str) -> Callable[[str], bool]:
    return lambda shown: text in shown


def matched_verdict(shown: str) -> bool:
    """The layer-matched control's final verdict line is on the screen (it may wrap)."""
    return "20 draws:" in " ".join(shown.split()) and "provisional" not in shown


def dialog(key: str, title: str, timeout: float) -> Callable[[], None]:
    """A step: ``key`` opens the dialog titled ``title``; Escape closes it again."""

    def act() -> None:
        keys(key)
        wait(title, has(title), timeout)
        for _ in range(3):
            escape()
            if title not in settled():
                return
        raise StepFailed(f"Escape did not close {title}")

    return act


def newest(root: Path, pattern: str) -> Path | None:
    found = sorted(root.glob(pattern))
    return found[-1] if found else None


def ensure_quickstart(root: Path) -> Path:
    run = newest(root, "*-quickstart-s0*")
    if run is not None and (run / "checkpoints" / "best.safetensors").exists():
        return run
    print(f"making a quickstart run (smoke profile) in {root} …", flush=True)
    subprocess.run(
        [LABCONSOLE, "run", "presets/quickstart.toml", "--smoke", "--out", str(root), "--quiet"],
        check=True,
        cwd=HERE,
        env={**os.environ, "HF_HUB_OFFLINE": "1"},
    )
    run = newest(root, "*-quickstart-s0*")
    if run is None:
        raise StepFailed("the quickstart run did not produce a run directory")
    return run


def focus_choice(label: str, timeout: float = 60) -> None:
    """Tab until the Choice in the form row ``label`` has the focus (it then shows ◂▸ ⏎, once it
    has options: Setup's checkpoints come once the engine has listed the runs); each look waits
    for the screen to settle, so a slow redraw never makes it Tab past the field."""
    start = time.monotonic()
    while time.monotonic() - start < timeout * SLOW:
        keys("Tab")
        if "◂▸" in row_of(label, settled()):
            return
    raise StepFailed(f"could not focus the {label} field (or it has one option only)")


def step_choice(label: str, wanted: str, tries: int = 12) -> None:
    """With the Choice of row ``label`` focused, step right until it shows ``wanted``."""
    for _ in range(tries):
        row = row_of(label, settled())
        if re.search(rf"{re.escape(label)}\s+{re.escape(wanted)}\s", row + " "):
            return
        keys("Right")
    raise StepFailed(f"{label} never showed {wanted!r}")


def type_into(label: str, text: str) -> None:
    """Replace the text of the focused Input in row ``label`` with ``text``: its first character
    must show in that row before the rest is typed (a stray key elsewhere is a binding)."""
    keys("C-u")
    type_text(text[0])
    wait(f"{text[0]!r} in the {label} field", lambda s: field_of(label, s) == text[0], 10)
    type_text(text[1:])
    wait(f"the {label} field to hold {text}", lambda s: text[-24:] in row_of(label, s), 15)


def main() -> int:
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    keep = "--keep" in sys.argv
    if shutil.which("tmux") is None:
        print("tmux is not installed", file=sys.stderr)
        return 2
    root = Path(args[0]).resolve() if args else Path(tempfile.mkdtemp(prefix="lcwalk-")) / "runs"
    root.mkdir(parents=True, exist_ok=True)
    timings: list[tuple[str, float]] = []
    started = time.monotonic()
    try:
        erm = ensure_quickstart(root)
        smoke_run = "smoke_profile = true" in (erm / "config.toml").read_text(encoding="utf-8")
        timings.append(("quickstart run ready", time.monotonic() - started))
        # PYTHONPATH: the console of this checkout, whichever one the virtualenv was installed from
        command = (
            f"cd {shlex.quote(str(HERE))} && HF_HUB_OFFLINE=1 PYTHONPATH={shlex.quote(str(HERE))} "
            f"{shlex.quote(LABCONSOLE)} console --runs-root {shlex.quote(str(root))}; sleep 30"
        )
        tmux("new-session", "-d", "-s", SESSION, "-x", str(WIDTH), "-y", str(HEIGHT), command)

        def step(name: str, action: Callable[[], None]) -> None:
            t0 = time.monotonic()
            action()
            timings.append((name, time.monotonic() - t0))
            print(f"  ✓ {name}: {timings[-1][1]:.1f} s", flush=True)

        def open_checkpoint(path: str) -> Callable[[], None]:
            def act() -> None:
                keys("1")
                wait("Setup", has("Checkpoint"), 30)
                escape()
                for attempt in range(3):  # a lagging redraw can still make a Tab overshoot: again
                    focus_choice("Checkpoint")
                    keys("Tab")  # the "or file" field below it
                    settled()
                    try:
                        type_into("or file", path)
                        break
                    except StepFailed:
                        if attempt == 2:
                            raise
                escape()
                keys("o")
                # the status line names the model it opened: the previous session's line names
                # another one (an open that fails says ✗)
                label = "/".join(path.split("/")[-3::2]).removesuffix(".safetensors")  # <run>/<name>
                opened = f"session ready on {label}"
                shown = wait("the session to open", lambda s: opened in " ".join(s.split()) or "✗" in s, 240)
                if "✗" in shown:
                    raise StepFailed("the session did not open")

            return act

        def console_up() -> None:
            wait("the first screen", has("Setup"), 60)

        step("console up", console_up)
        step("open the quickstart ERM checkpoint", open_checkpoint(str(erm / "checkpoints" / "best.safetensors")))

        def rank() -> None:
            keys("2")
            time.sleep(1.0)
            wait("a ranking", lambda s: "neurons by gradient" in s and "Esc stops waiting" not in s, 240)

        step("rank (gradient, global, k=10)", rank)

        def mark_top3() -> None:
            keys("f", "m", "Down", "m", "Down", "m")
            keys("3")
            wait("3 marked neurons", has("Marked: 3 neurons"), 30)

        step("mark the top 3", mark_top3)

        def readout() -> None:
            escape()
            keys("a")
            wait("the readout with its control", has("as many random neurons"), 300)  # its note

        step("zero + readout with random control", readout)

        def matched_control() -> None:
            escape()
            keys("Tab", "Tab", "Tab", "Tab")  # mode, σ, seeds, control: the control's Select
            settled()
            keys("Enter")  # its list opens on the current choice, "+ random control"
            settled()
            keys("Down", "Enter")
            wait("+ matched (p) chosen", lambda s: "+ matched (p)" in row_of("zero", s), 15)
            escape()
            keys("a")
            # provisional numbers over the first draws, then the verdict over all 20
            wait("the matched control's verdict", matched_verdict, 600)

        step("+ matched (p): layer-matched control, 20 draws, signature verdict", matched_control)

        step("f: flipped examples", dialog("f", "Flipped examples", 30))
        step("tracing heat map", dialog("m", "Tracing heat map", 600))

        def finetune_and_cancel() -> None:
            keys("4")
            wait("Train", has("Preset"), 30)
            escape()
            focus_choice("Stages")
            step_choice("Stages", "fine-tune")
            focus_choice("Profile")
            # the profile the quickstart run was made with: a smoke checkpoint fits only smoke
            step_choice("Profile", "smoke" if smoke_run else "full")
            keys("Tab")  # Epochs
            settled()
            type_into("Epochs", "2")
            escape()
            keys("g")
            wait("fine-tuning to stream", lambda s: "finetune" in s and "epoch" in s, 300)
            keys("c")
            wait("the cancelled run", lambda s: "cancelled" in s, 300)

        step("fine-tune 2 epochs from the ERM checkpoint, then cancel", finetune_and_cancel)
        candidates = [p for p in sorted(root.iterdir()) if p.is_dir() and p != erm and "console-session" not in p.name]
        tuned = candidates[-1] if candidates else None

        def resume() -> None:
            keys("6")
            wait("Runs", has("runs in"), 60)
            # the newest run is the first row, highlighted: the cancelled fine-tuning
            wait("the cancelled run in the list", has("cancelled"), 30)
            keys("u")
            wait("the resumed run to finish", has("done: resume"), 900)

        step("resume the cancelled fine-tuning", resume)
        best = tuned / "checkpoints" / "finetune-best.safetensors" if tuned else None
        if best is None or not best.exists():
            raise StepFailed(f"no finetune-best checkpoint in {tuned}")
        step("open the fine-tuned checkpoint", open_checkpoint(str(best)))

        def readout_again() -> None:
            keys("2")
            # the new session re-ranks: wait until that ranking is in, not the last session's
            time.sleep(1.0)
            wait("a ranking", lambda s: "neurons by gradient" in s and "Esc stops waiting" not in s, 240)
            keys("f", "m", "3")
            wait("a marked neuron", has("Marked: 1 neuron"), 30)
            escape()
            keys("a")
            # with the control chosen before: the layer-matched one, done once its verdict is in
            wait("the readout", matched_verdict, 600)

        step("readout on the fine-tuned model", readout_again)

        def export() -> None:
            keys("e")
            wait("the session report", has("report of this session written"), 300)

        step("export the session report", export)
        keys("q")
        record = newest(root, "*console-session*")
        if record is None or not (record / "report.html").exists():
            raise StepFailed("no session record with a report.html under the runs folder")
        lines = [json.loads(x) for x in (record / "readouts.jsonl").read_text().splitlines() if x.strip()]
        kinds = [line["type"] for line in lines]
        print(f"  session record {record.name}: {', '.join(kinds)}; report.html written")
        if kinds.count("readout") != 1 or not str(lines[-1].get("checkpoint", "")).endswith(
            "finetune-best.safetensors"
        ):
            raise StepFailed(f"the session record holds {kinds}, expected the fine-tuned model's readout")
    except (StepFailed, subprocess.CalledProcessError) as exc:
        print(f"FAILED: {exc}", file=sys.stderr)
        with contextlib.suppress(subprocess.CalledProcessError):
            print(screen(), file=sys.stderr)
        return 1
    finally:
        if not keep:
            subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        total = time.monotonic() - started
        print("timings: " + ", ".join(f"{name} {t:.1f} s" for name, t in timings) + f"; total {total:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
