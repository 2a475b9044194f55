"""Compile a kernel once per machine into a cache, atomically, so that no build can hang or half-exist.

Why just in time rather than at install time: the kernel is compiled with ``-march=native`` for the CPU
that runs it (its speed comes from that CPU's vector instructions), so a binary made on one machine is not
one to ship to another; the wheel stays pure Python and every machine builds its own, once.

How a build stays safe when processes are killed, run side by side, or share a cache:

1. **Named after everything the binary depends on.** The name hashes the source, the compiler flags, the
   torch version, the Python ABI and the CPU (model and instruction-set flags). A cache shared by several
   machines holds one build per CPU, and a build is never loaded on a CPU it was not made for (the
   sidecar ``NAME.json`` repeats the identity, and a file whose sidecar disagrees is not loaded).
2. **Built in a private folder, published by one rename.** The compiler runs in a child process inside
   ``.NAME.build.HOST.PID.*`` in the cache; only a finished, importable library is moved to ``NAME.so``
   with ``os.replace``. A build killed at any point leaves at most that folder, which a later build
   removes once its owner is dead. No lock file of torch's is ever shared between processes.
3. **One builder at a time, never a stale lock.** Builders take an advisory ``flock`` on ``NAME.lock``,
   which the operating system releases when the holder dies, however it dies. A second process waits
   for the first and loads its library; the wait and the build are bounded (``L2O_KERNEL_BUILD_TIMEOUT``,
   default 600 s), after which the caller goes on without the kernel and says why.

The cache: ``$L2O_KERNEL_CACHE``, else ``$TORCH_EXTENSIONS_DIR/l2o``, else ``~/.cache/torch_extensions/l2o``.
"""

from __future__ import annotations

import hashlib
import importlib.machinery
import importlib.util
import json
import os
import platform
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

_CHILD = Path(__file__).with_name("_compile.py")
_EXT = importlib.machinery.EXTENSION_SUFFIXES[0]  # e.g. .cpython-311-x86_64-linux-gnu.so
STALE_SECONDS = 24 * 3600  # a private build folder this old is removed whoever made it


class BuildError(RuntimeError):
    """A kernel could not be compiled or loaded; the message says why."""


def cache_dir() -> Path:
    if os.environ.get("L2O_KERNEL_CACHE"):
        return Path(os.environ["L2O_KERNEL_CACHE"])
    base = os.environ.get("TORCH_EXTENSIONS_DIR") or Path.home() / ".cache" / "torch_extensions"
    return Path(base) / "l2o"


def build_timeout() -> float:
    value = os.environ.get("L2O_KERNEL_BUILD_TIMEOUT", "600")
    try:
        seconds = float(value)
    except ValueError:
        raise BuildError(f"L2O_KERNEL_BUILD_TIMEOUT must be a number of seconds, got {value!r}") from None
    return seconds if seconds > 0 else 600.0


def cpu_identity() -> dict[str, str]:
    """What a ``-march=native`` binary depends on: the CPU's vendor, model and instruction-set flags."""
    out = {"machine": platform.machine(), "processor": platform.processor()}
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return out
    first = text.split("\n\n", 1)[0]
    for line in first.splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key in ("vendor_id", "cpu family", "model", "model name", "CPU implementer", "CPU part"):
            out[key] = value.strip()
        elif key in ("flags", "Features"):  # x86 / Arm instruction-set extensions
            out["flags"] = hashlib.sha256(" ".join(sorted(value.split())).encode()).hexdigest()[:16]
    return out


@dataclass(frozen=True)
class Spec:
    """One kernel: its base name, C++ source and compiler/linker flags."""

    stem: str
    source: Path
    flags: tuple[str, ...]
    ldflags: tuple[str, ...] = ()

    def identity(self) -> dict:
        import torch

        return {
            "kernel": self.stem,
            "source_sha256": hashlib.sha256(self.source.read_bytes()).hexdigest(),
            "flags": list(self.flags),
            "ldflags": list(self.ldflags),
            "torch": torch.__version__,
            "python": sys.implementation.cache_tag,
            "extension": _EXT,
            "cpu": cpu_identity(),
        }

    def name(self, identity: dict | None = None) -> str:
        identity = identity if identity is not None else self.identity()
        digest = hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:12]
        return f"{self.stem}_{digest}"


def _import(name: str, path: Path) -> ModuleType:
    import torch  # noqa: F401 - the library links against libtorch, which must be loaded first

    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def find(spec: Spec, identity: dict | None = None) -> tuple[Path, str | None]:
    """Where ``spec``'s build lives in the cache, and why it cannot be loaded (None: it can). ``identity``:
    ``spec.identity()``, if the caller has it already."""
    identity = identity if identity is not None else spec.identity()
    name = spec.name(identity)
    path = cache_dir() / (name + _EXT)
    if not path.is_file():
        return path, "not built yet"
    sidecar = path.with_name(name + ".json")
    try:
        doc = json.loads(sidecar.read_text())
        saved, digest = doc["identity"], doc["library_sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        return path, f"{sidecar.name} is missing or unreadable"
    if saved != identity:
        differ = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
        return path, f"built for another machine or version (differs in: {', '.join(differ)})"
    if _sha256(path) != digest:  # checked before loading: a truncated library can crash the loader
        return path, "damaged (its checksum differs from the one recorded when it was built)"
    return path, None


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(cache: Path, name: str) -> None:
    """Remove private build folders whose builder is dead (on this host) or that are a day old."""
    host = socket.gethostname()
    for d in cache.glob(f".{name}.build.*"):
        parts = d.name[len(f".{name}.build."):].split(".")
        try:
            mine, pid = parts[0] == host, int(parts[1])
            old = time.time() - d.stat().st_mtime > STALE_SECONDS
        except (IndexError, ValueError, OSError):
            continue
        if old or (mine and not _alive(pid)):
            shutil.rmtree(d, ignore_errors=True)


class _Lock:
    """An exclusive ``flock`` on ``path``, waited for at most ``timeout`` seconds; released by the OS if the
    holder dies. Where flock is unavailable (another OS, some network file systems) it is skipped: builds
    are private and published atomically, so two at once are only wasteful, never wrong."""

    def __init__(self, path: Path, timeout: float, say):
        self.path, self.timeout, self.say, self.fd = path, timeout, say, None

    def __enter__(self) -> "_Lock":
        try:
            import fcntl
        except ImportError:
            return self
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline, told = time.monotonic() + self.timeout, False
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not told:
                    holder = os.pread(self.fd, 200, 0).decode(errors="replace").strip() or "another process"
                    self.say(f"waiting for {holder}, which is building the same kernel")
                    told = True
                if time.monotonic() > deadline:
                    self.say(f"gave up waiting after {self.timeout:.0f} s; building privately")
                    os.close(self.fd)
                    self.fd = None
                    return self
                time.sleep(0.1)
            except OSError:  # no locking on this file system
                os.close(self.fd)
                self.fd = None
                return self
        os.ftruncate(self.fd, 0)
        os.pwrite(self.fd, f"pid {os.getpid()} on {socket.gethostname()}".encode(), 0)
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor releases the flock
            self.fd = None


def _compile(spec: Spec, name: str, identity: dict, path: Path, timeout: float, say) -> None:
    """Compile in a private folder with a child process, then publish ``path`` (and its sidecar) atomically."""
    from l2o.checkpoint import atomic_write_text

    cache = path.parent
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}.build.{socket.gethostname()}.{os.getpid()}.", dir=cache))
    try:
        env = dict(os.environ)
        # ninja (a dependency of l2o) lives beside the interpreter in a virtual environment that is not activated
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        cmd = [sys.executable, str(_CHILD), str(tmp), name, str(spec.source), json.dumps(list(spec.flags)),
               json.dumps(list(spec.ldflags)), str(os.getpid())]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                env=env, start_new_session=True)
        try:
            output, _ = proc.communicate(timeout=timeout)
        except BaseException as e:  # a timeout, or this process interrupted: the compiler goes too
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError, AttributeError):  # AttributeError: no process groups
                proc.kill()
            proc.communicate()
            if isinstance(e, subprocess.TimeoutExpired):
                raise BuildError(f"the build did not finish within {timeout:.0f} s (L2O_KERNEL_BUILD_TIMEOUT)") from None
            raise
        text = output.decode(errors="replace").strip()
        if proc.returncode != 0:
            tail = "\n".join(text.splitlines()[-15:])
            raise BuildError(f"the compiler failed (exit {proc.returncode}): {tail}")
        built = sorted(tmp.glob(f"{name}*.so")) + sorted(tmp.glob(f"{name}*.pyd"))
        if not built:
            raise BuildError(f"the build reported success but left no library in {tmp}")
        sidecar = path.with_name(name + ".json")
        doc = {"identity": identity, "library_sha256": _sha256(built[0])}
        atomic_write_text(sidecar, json.dumps(doc, indent=1, sort_keys=True) + "\n")
        os.chmod(sidecar, 0o644)  # a cache may be shared
        os.replace(built[0], path)  # the one step that publishes the build
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def obtain(spec: Spec, *, say=None) -> tuple[ModuleType, dict]:
    """Load ``spec``'s build from the cache, building it first if needed; raise BuildError if it cannot be had.

    Returns the module and facts about how it was obtained: name, path, built (now, by this process) and seconds.
    """
    say = say or (lambda msg: print(f"l2o: {msg}", file=sys.stderr, flush=True))
    t0 = time.perf_counter()
    identity = spec.identity()
    name = spec.name(identity)
    path, why = find(spec, identity)
    facts = {"name": name, "path": str(path), "built": False}
    if why is None:
        try:
            module = _import(name, path)
            return module, {**facts, "seconds": time.perf_counter() - t0}
        except ImportError as e:
            why = f"it does not load ({e})"
    if why != "not built yet":
        say(f"the cached kernel {path.name} is not used: {why}; building it again")
        if why.startswith(("damaged", "it does not load")):  # set it aside (kept for a post-mortem)
            os.replace(path, path.with_name(path.name + f".bad.{os.getpid()}"))
    cache = path.parent
    try:
        cache.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise BuildError(f"cannot create the kernel cache {cache}: {e} (set L2O_KERNEL_CACHE)") from e
    timeout = build_timeout()
    with _Lock(cache / f"{name}.lock", timeout, say):
        _clean_stale(cache, name)
        if find(spec, identity)[1] is None:  # another process built it while this one waited
            module = _import(name, path)
            return module, {**facts, "seconds": time.perf_counter() - t0}
        say(f"compiling the fused LSTM kernel for this CPU (once per machine, 30-60 s) into {cache}")
        _compile(spec, name, identity, path, timeout, say)
    module = _import(name, path)
    seconds = time.perf_counter() - t0
    say(f"kernel {name} built in {seconds:.0f} s")
    return module, {**facts, "built": True, "seconds": seconds}
