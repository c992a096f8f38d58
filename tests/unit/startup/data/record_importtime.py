"""Record real `-X importtime` output from the interpreters on this machine.

Run once with `python record_importtime.py`; the tests read the files it writes and assert
exact figures from them, so rerunning it means updating those figures. Each recording runs
SAMPLE_PROGRAM, which writes program output and a warning to stderr between imports and
imports one module from a thread.
"""

import os
import subprocess
import tempfile
from pathlib import Path

PYENV = Path(os.environ.get("PYENV_ROOT", str(Path.home() / ".pyenv"))) / "versions"
INTERPRETERS = {
    "3.8": PYENV / "3.8.18/bin/python3.8",
    "3.9": PYENV / "3.9.18/bin/python3.9",
    "3.10": PYENV / "3.10.13/bin/python3.10",
    "3.11": PYENV / "3.11.7/bin/python3.11",
    "3.12": PYENV / "3.12.1/bin/python3.12",
    "3.13": PYENV / "3.13.0/bin/python3.13",
}
SAMPLE_PROGRAM = """
import sys, threading, warnings
sys.stderr.write("program output on stderr\\n")
import json
warnings.warn("sample warning from the recorded program")
worker = threading.Thread(target=lambda: __import__("csv"))
worker.start()
worker.join()
import json.decoder
import email.parser
"""
# The first process imports csv, then replaces itself with a second interpreter, as a pex
# launcher does; both processes inherit PYTHONPROFILEIMPORTTIME, so the header repeats.
EXEC_PROGRAM = """
import os, sys
import csv
os.execv(sys.executable, [sys.executable, "-c", "import json"])
"""

# Two threads import slow modules at the same time, so their importtime lines interleave.
THREADS_PROGRAM = """
import threading
threads = [threading.Thread(target=__import__, args=(name,)) for name in ("a_mod", "b_mod")]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
import json
"""
THREAD_MODULES = {
    "a_mod.py": "import time\ntime.sleep(0.05)\nimport a_child\n",
    "a_child.py": "VALUE = 1\n",
    "b_mod.py": "import time\ntime.sleep(0.02)\nimport b_child\ntime.sleep(0.05)\n",
    "b_child.py": "import time\ntime.sleep(0.04)\n",
}


def record(python: Path, option: str, program: str, out: Path, env_level: str = "") -> None:
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPROFILEIMPORTTIME"}
    args = [str(python), "-c", program]
    if env_level:
        env["PYTHONPROFILEIMPORTTIME"] = env_level
    else:
        args[1:1] = ["-X", option]
    completed = subprocess.run(args, env=env, stderr=subprocess.PIPE, check=True)
    out.write_bytes(completed.stderr)


def main() -> None:
    data_dir = Path(__file__).parent
    for version, python in INTERPRETERS.items():
        record(python, "importtime", SAMPLE_PROGRAM, data_dir / f"importtime-{version}.txt")
    # 3.13 accepts -X importtime=2 but reports the same as importtime=1; the cached-import
    # lines of importtime=2 arrived in 3.14.
    record(INTERPRETERS["3.13"], "importtime=2", SAMPLE_PROGRAM, data_dir / "importtime2-3.13.txt")
    record(INTERPRETERS["3.11"], "", EXEC_PROGRAM, data_dir / "importtime-exec-3.11.txt", "1")
    with tempfile.TemporaryDirectory() as modules_dir:
        for name, source in THREAD_MODULES.items():
            Path(modules_dir, name).write_text(source)
        os.environ["PYTHONPATH"] = modules_dir
        record(INTERPRETERS["3.12"], "importtime", THREADS_PROGRAM,
               data_dir / "importtime-threads-3.12.txt")


if __name__ == "__main__":
    main()
