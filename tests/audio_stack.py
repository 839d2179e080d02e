"""A private PulseAudio daemon with a null sink, so audio tests play and record real streams.

What plays on the null sink comes back on its monitor source, so an
``AudioPlayback`` and an ``AudioCapture`` in the same test form a loop:
PortAudio -> ALSA ``pulse`` plugin (Debian ``libasound2-plugins``) ->
``pulseaudio`` (Debian ``pulseaudio``) -> null sink -> monitor -> back.

The daemon runs as the current user (root is fine with ``--system=false``),
without systemd, D-Bus or a home directory of its own: every path it uses is in
a fresh temporary directory, and the clients in this process find it through
``PULSE_SERVER``. A null sink that nobody listens to renders in 2 s blocks, so
a new recording would wait up to 2 s for its first samples; a loopback from
the monitor to a second, discarded null sink keeps a 10 ms listener on it for
the daemon's life. :meth:`VirtualAudioStack.start` only returns once a real
PortAudio recording receives samples through the whole chain, and otherwise
raises :class:`AudioStackUnavailable` saying which part failed and why.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

SINK = "runanywhere_sink"
DEVICE = "pulse"
"""The PortAudio (ALSA) device that talks to the daemon: opens the default sink / source."""

_CLIENT_ENV = ("PULSE_SERVER", "PULSE_CLIENTCONFIG", "PULSE_SINK", "PULSE_SOURCE")


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM the daemon when the test process dies (no orphan if pytest is killed)."""
    with contextlib.suppress(OSError, AttributeError):  # not Linux: no such call, nothing to do
        ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class AudioStackUnavailable(RuntimeError):
    """The virtual audio stack cannot run here; the message says what is missing or failed."""


class VirtualAudioStack:
    """Start with :meth:`start`, end with :meth:`stop`; ``device`` is the name to pass to capture/playback."""

    device = DEVICE

    def __init__(self, sink_rate: int = 48000) -> None:
        self.sink_rate = sink_rate
        self.root: Path | None = None
        self.process: subprocess.Popen[bytes] | None = None
        self._saved_env: dict[str, str | None] = {}

    @property
    def log_path(self) -> Path:
        assert self.root is not None
        return self.root / "pulseaudio.log"

    def log_tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def start(self, timeout_s: float = 30.0) -> None:
        binary = shutil.which("pulseaudio")
        if binary is None:
            raise AudioStackUnavailable(
                "the `pulseaudio` binary is not on PATH (Debian package `pulseaudio`, listed in "
                "scripts/debian-packages.txt and installed by scripts/install.sh)"
            )
        if not glob.glob("/usr/lib/*/alsa-lib/libasound_module_pcm_pulse.so") + glob.glob(
            "/usr/lib/alsa-lib/libasound_module_pcm_pulse.so"
        ):
            raise AudioStackUnavailable(
                "the ALSA `pulse` plugin (libasound_module_pcm_pulse.so, Debian package `libasound2-plugins`) "
                "is missing, so PortAudio cannot reach PulseAudio"
            )
        # Short path: a unix socket path must stay under 108 bytes.
        base = tempfile.gettempdir() if len(tempfile.gettempdir()) < 40 else "/tmp"
        self.root = root = Path(tempfile.mkdtemp(prefix="ra-pulse-", dir=base))
        for name in ("runtime", "state", "home", "config"):
            (root / name).mkdir(mode=0o700)
        sock = root / "runtime" / "native"
        script = root / "default.pa"
        script.write_text(
            f"load-module module-null-sink sink_name={SINK} rate={self.sink_rate} channels=1\n"
            f"load-module module-null-sink sink_name={SINK}_discard rate={self.sink_rate} channels=1\n"
            f"load-module module-loopback source={SINK}.monitor sink={SINK}_discard latency_msec=10"
            " source_dont_move=true sink_dont_move=true\n"
            f"set-default-sink {SINK}\n"
            f"set-default-source {SINK}.monitor\n"
            f"load-module module-native-protocol-unix socket={sock} auth-anonymous=1\n"
        )
        client_conf = root / "client.conf"
        client_conf.write_text("autospawn = no\n")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PULSE_") and k not in ("DISPLAY",)}
        env.update(
            HOME=str(root / "home"),
            XDG_RUNTIME_DIR=str(root / "runtime"),
            XDG_CONFIG_HOME=str(root / "config"),
            PULSE_RUNTIME_PATH=str(root / "runtime"),
            PULSE_STATE_PATH=str(root / "state"),
        )
        command = [
            binary,
            "--daemonize=no",
            "--system=false",
            "--exit-idle-time=-1",
            "--use-pid-file=false",
            "--realtime=no",
            "--high-priority=no",
            "--log-target=stderr",
            "-n",  # no default script: only what default.pa loads
            "-F",
            str(script),
        ]
        with open(self.log_path, "wb") as log:
            try:
                self.process = subprocess.Popen(
                    command,
                    env=env,
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=log,
                    start_new_session=True,
                    preexec_fn=_die_with_parent,
                )
            except OSError as exc:
                raise AudioStackUnavailable(f"cannot run {binary}: {exc}") from exc
        try:
            self._wait_for_socket(sock, timeout_s)
            self._point_clients_here(sock, client_conf)
            self._probe(timeout_s)
        except BaseException:
            self.stop()
            raise

    def _wait_for_socket(self, sock: Path, timeout_s: float) -> None:
        assert self.process is not None
        deadline = time.monotonic() + timeout_s
        while True:
            code = self.process.poll()
            if code is not None:
                raise AudioStackUnavailable(f"pulseaudio exited with code {code} at start-up:\n{self.log_tail()}")
            if sock.exists():
                with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                    try:
                        s.connect(str(sock))
                        return
                    except OSError:
                        pass
            if time.monotonic() > deadline:
                raise AudioStackUnavailable(
                    f"pulseaudio did not open {sock} within {timeout_s:.0f} s:\n{self.log_tail()}"
                )
            time.sleep(0.05)

    def _point_clients_here(self, sock: Path, client_conf: Path) -> None:
        for key in _CLIENT_ENV:
            self._saved_env[key] = os.environ.get(key)
            os.environ.pop(key, None)
        os.environ["PULSE_SERVER"] = f"unix:{sock}"
        os.environ["PULSE_CLIENTCONFIG"] = str(client_conf)

    def _probe(self, timeout_s: float) -> None:
        """Record through PortAudio until samples arrive: proves sounddevice, ALSA, the plugin and the daemon."""
        from runanywhere.core.errors import BackendNotAvailableError
        from runanywhere.media.devices import sounddevice

        try:
            sd: Any = sounddevice()
        except BackendNotAvailableError as exc:
            raise AudioStackUnavailable(str(exc)) from exc
        names = [str(d["name"]) for d in sd.query_devices()]
        if DEVICE not in names:
            # PortAudio lists devices once, when it starts; imported before the daemon ran, it found
            # no working `pulse` device. No stream is open yet in this process: restart PortAudio.
            sd._terminate()
            sd._initialize()
            names = [str(d["name"]) for d in sd.query_devices()]
        if DEVICE not in names:
            raise AudioStackUnavailable(
                f"PortAudio lists no ALSA {DEVICE!r} device (it lists {names}); the ALSA pulse plugin "
                "(Debian `libasound2-plugins`) provides it"
            )
        got = threading.Event()
        frames = [0]

        def callback(indata: Any, n: int, time_info: Any, status: Any) -> None:
            frames[0] += n
            if frames[0] >= 1600:
                got.set()

        try:
            with sd.InputStream(device=DEVICE, samplerate=16000, channels=1, dtype="float32", callback=callback):
                ok = got.wait(timeout_s)
        except sd.PortAudioError as exc:
            raise AudioStackUnavailable(f"PortAudio cannot record from {DEVICE!r}: {exc}\n{self.log_tail()}") from exc
        if not ok:
            raise AudioStackUnavailable(
                f"a recording from {DEVICE!r} got {frames[0]} samples in {timeout_s:.0f} s\n{self.log_tail()}"
            )

    def stop(self) -> None:
        process, self.process = self.process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()
        if self.root is not None:
            shutil.rmtree(self.root, ignore_errors=True)
            self.root = None
