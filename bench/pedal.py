"""`musegen bench pedal`: the box's budget, measured on `musegen pedal` as it runs.

The pedal's full load (drums-lstm and melody-lstm at 120 BPM through the neural synth into
a JACK dummy server) and, as the baseline in the same run, the same pedal with its audio
off (MIDI only): the synth's share is the difference. Per run, from the process itself:
- cold start: from spawning the process to "pedal playing" (the engine started; the first
  bar starts at once);
- CPU: user + system time over `seconds` of steady play (after WARM_S), as a share of one
  core (all its threads together);
- RSS: the largest and median resident set over that window (/proc/PID/status VmRSS);
- the audio output's underruns and notes (its closing line).
Targets (issue 24): <= 25 % of one core, RSS <= 400 MB, cold start <= 5 s. Raspberry Pi 4
estimate: the CPU share scaled by the LINPACK ratio the synth bench uses (bench/synth.py),
a pessimistic yardstick for this mostly compiled, not BLAS, work.
"""

from __future__ import annotations

import os
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.rig.jack_tools import JackServer, free_server_name
from bench.synth import PI4_LINPACK_MFLOPS, linpack_mflops

ROOT = Path(__file__).resolve().parent.parent
WARM_S = 5.0
SAMPLE_S = 0.5
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
CLOSED = re.compile(r"audio out closed: (\d+) notes, (\d+) underruns")
TARGETS = {"cpu_pct_one_core": 25.0, "rss_mb": 400.0, "cold_start_s": 5.0}


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS  # utime, stime


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def measure(jack: JackServer, audio: bool, seconds: float, folder: Path) -> dict[str, Any]:
    data = folder / ("audio" if audio else "midi")
    config = folder / f"pedal-{'audio' if audio else 'midi'}.toml"
    config.write_text(f'[engine]\nmodels = ["drums-lstm", "melody-lstm"]\nbpm = 120\n'
                      f'[audio]\nenabled = {"true" if audio else "false"}\n'
                      f'[midi]\nbackend = "none"\n[data]\ndir = "{data}"\n')
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [sys.executable, "-m", "bridges", "pedal", "--config", str(config), "--data-dir",
         str(data), "--seconds", str(WARM_S + seconds + 2.0)],
        cwd=ROOT, env={**jack.env, "PYTHONPATH": str(ROOT)}, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, text=True)
    lines: list[str] = []
    started = threading.Event()
    cold = [0.0]

    def read() -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            lines.append(line.rstrip())
            if "pedal playing" in line and not started.is_set():
                cold[0] = time.monotonic() - t0
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    if not started.wait(60):
        proc.kill()
        raise RuntimeError("the pedal did not start: " + "\n".join(lines[-5:]))
    time.sleep(WARM_S)
    wall0, cpu0, rss = time.monotonic(), cpu_seconds(proc.pid), []
    while time.monotonic() - wall0 < seconds:
        rss.append(rss_mb(proc.pid))
        time.sleep(SAMPLE_S)
    cpu = (cpu_seconds(proc.pid) - cpu0) / (time.monotonic() - wall0)
    proc.wait(60)
    reader.join(5)
    closed = [m for line in lines if (m := CLOSED.search(line))]
    return {"audio": audio, "cold_start_s": round(cold[0], 2),
            "cpu_pct_one_core": round(100 * cpu, 1), "rss_mb_max": round(max(rss), 1),
            "rss_mb_median": round(statistics.median(rss), 1),
            "notes": int(closed[-1][1]) if closed else None,
            "underruns": int(closed[-1][2]) if closed else None,
            "audio_line": next((line for line in lines if "audio out on" in line), None)}


def run_pedal_bench(seconds: float = 30.0) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp, \
            JackServer(free_server_name("musegen-bench-pedal")) as jack:  # started on entry
        full = measure(jack, True, seconds, Path(tmp))
        midi = measure(jack, False, seconds, Path(tmp))
    ratio = PI4_LINPACK_MFLOPS / linpack_mflops()
    met = {"cpu_pct_one_core": full["cpu_pct_one_core"] <= TARGETS["cpu_pct_one_core"],
           "rss_mb": full["rss_mb_max"] <= TARGETS["rss_mb"],
           "cold_start_s": full["cold_start_s"] <= TARGETS["cold_start_s"]}
    return {
        "target": "pedal", "seconds": seconds, "bpm": 120,
        "parts": ["drums-lstm", "melody-lstm"], "synth": "synth-wavenet",
        "pedal": full, "baseline_midi_only": midi,
        "ratio_cpu_to_midi_only": round(full["cpu_pct_one_core"]
                                        / max(midi["cpu_pct_one_core"], 0.1), 2),
        "targets": TARGETS, "met": met,
        "pi4_estimate": {"linpack_ratio": round(ratio, 3),
                         "cpu_pct_one_core": round(full["cpu_pct_one_core"] / ratio, 0)},
    }
