"""The sandbox around every kernel the grader starts: bubblewrap, a private folder, limits per learner.

The grader (:mod:`course.grade`) never runs a learner's notebook in the open. Each kernel is started by
`bubblewrap <https://github.com/containers/bubblewrap>`_ (``bwrap``, Debian package ``bubblewrap``) with:

- a read-only view of the system (``/usr``, ``/etc``), of Python and its venv, and of the course's
  ``lenet/`` (the kernel imports it through ``PYTHONPATH``, as before); nothing else of the machine: not the
  teacher's home, not the submissions, not ``solutions/``;
- one private writable folder per submission (the kernel's working directory and ``HOME``), a private
  ``/tmp`` and ``/dev/shm``; the root of the sandbox is read-only;
- its own PID, IPC, UTS and network namespaces (the kernel talks to the grader over Unix sockets in a
  folder bound into the sandbox; inside there is only a loopback device of its own), a session of its own,
  and ``--die-with-parent``: when the grader's worker goes, everything the learner started goes too;
- a cleared environment (none of the teacher's variables reach the learner's code);
- a non-root uid: as root, bwrap drops to uid 65534 (``nobody``) before the kernel starts; as an ordinary
  user, bwrap uses an unprivileged user namespace (uid 65534 inside, the teacher's uid outside).

Limits per learner (:class:`Limits`), for the learner's whole process tree where the machine allows it:

- memory: as root a cgroup (v1 ``memory``, v2 ``memory.max``); as an ordinary user ``RLIMIT_AS``, per process only;
- processes and threads: as root the cgroup ``pids``; as an ordinary user ``RLIMIT_NPROC`` set inside the
  sandbox's user namespace, where Linux (5.14 and newer) counts only that learner's processes;
- disk: the private folder is a tmpfs of that size, which the grader's worker mounts in a mount namespace of
  its own (as an ordinary user, in a user namespace of its own too: Linux allows it unprivileged), so nothing
  is mounted on the machine and the tmpfs goes with the worker; ``/tmp`` and ``/dev/shm`` are tmpfs of that
  size too. Where even that is refused, the private folder is limited per file only (``RLIMIT_FSIZE``);
- time: the wall-clock ``--timeout`` (the grader) and CPU time per process (``RLIMIT_CPU``), in both modes.

:func:`probe` finds once what this machine offers (a :class:`Mode`), :func:`describe` says it in words for
the table's header, :func:`prepare` makes one submission's :class:`Place` (in the grader's main process, so
that :func:`release` cleans it up whatever happened to the worker), and :class:`Sandbox` starts the kernel
there. ``--no-sandbox`` (:data:`NO_SANDBOX`) runs kernels as the teacher, as before this module existed.
docs/teaching.md ("What the sandbox guarantees") is the teacher's version of this docstring.
"""
from __future__ import annotations

import ctypes
import dataclasses
import os
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import zmq
from jupyter_client.manager import AsyncKernelManager

from .execute import thread_env

#: The uid and gid learners' code runs as inside the sandbox (``nobody``).
NOBODY = 65534
#: How to install bubblewrap, for the message that refuses to grade without it.
INSTALL = "sudo apt-get install bubblewrap   (Fedora: sudo dnf install bubblewrap; Arch: sudo pacman -S bubblewrap)"
#: Marks the kernels of --no-sandbox runs, to end them (and what they started) afterwards.
TOKEN_VARIABLE = "COURSE_GRADE_TOKEN"
DEFAULT_TIMEOUT, DEFAULT_MEMORY_GIB, DEFAULT_DISK_MIB, DEFAULT_PROCESSES = 120, 4.0, 256, 128
#: The largest message the grader takes from a kernel (a cell's output, a figure; larger ones are dropped), and
#: how many it holds unread: a kernel printing without end then costs the grader at most their product.
MAX_MESSAGE, MAX_QUEUED = 16 * 2**20, 16

#: Runs inside the sandbox, right before the kernel: the last steps bwrap cannot do (``python -I -S -c``).
#: Arguments: uid, gid, the process limit (0: none, the cgroup holds it), then the kernel's command. It sets
#: RLIMIT_NPROC, which Linux counts per user and user namespace: per learner in bwrap's user namespace, for all
#: of uid 65534 as root. As root it then drops to uid/gid for good (and clears every capability). Then
#: no_new_privs, so that no setuid program can give anything back.
LAUNCHER = """\
import ctypes, os, resource, sys
uid, gid, nproc = (int(a) for a in sys.argv[1:4])
libc = ctypes.CDLL(None, use_errno=True)
if nproc > 0:
    resource.setrlimit(resource.RLIMIT_NPROC, (nproc, nproc))
if os.getuid() == 0:
    for cap in range(64):
        libc.prctl(24, cap, 0, 0, 0)  # PR_CAPBSET_DROP: empty the bounding set
    os.setgroups([])
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    header, data = (ctypes.c_uint32 * 2)(0x20080522, 0), (ctypes.c_uint32 * 6)()
    if libc.capset(header, data) != 0:  # no capability left, not even inheritable ones
        raise OSError(ctypes.get_errno(), "capset")
if libc.prctl(38, 1, 0, 0, 0) != 0:  # PR_SET_NO_NEW_PRIVS
    raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")
if 0 in os.getresuid() or 0 in os.getresgid():
    raise PermissionError("the sandbox still runs as root")
os.execv(sys.argv[4], sys.argv[4:])
"""


class Unavailable(RuntimeError):
    """This machine cannot sandbox kernels as asked; the message says why and what to do."""


@dataclasses.dataclass
class Limits:
    """What one learner's kernel, and everything it starts, may use."""

    timeout: float = DEFAULT_TIMEOUT  # seconds of wall time for all cells together
    memory_gib: float = DEFAULT_MEMORY_GIB  # memory of all the learner's processes together (cgroups)
    disk_mib: int = DEFAULT_DISK_MIB  # the private folder (and again /tmp, /dev/shm)
    processes: int = DEFAULT_PROCESSES  # processes and threads together

    @property
    def cpu_seconds(self) -> int:
        """CPU time each process may use: twice the wall time, and a margin for the kernel's start."""
        return int(self.timeout * 2 + 30)


@dataclasses.dataclass(frozen=True)
class Mode:
    """How this machine sandboxes kernels, found once by :func:`probe` (the same for every submission)."""

    bwrap: str = ""  # the bwrap program; "" means no sandbox (--no-sandbox)
    version: str = ""
    root: bool = False  # bwrap runs privileged and drops to uid 65534; else it uses a user namespace
    cgroup: str = ""  # "v1", "v2" or "" (none: rlimits only)
    cgroup_parents: tuple[str, ...] = ()  # v1: the memory and the pids parent; v2: one parent
    tmpfs: bool = False  # the worker can mount the private folder as a tmpfs of --disk MiB (Sandbox.enter)

    @property
    def sandboxed(self) -> bool:
        return bool(self.bwrap)


#: Kernels run as the teacher, with rlimits only (--no-sandbox, and library callers grading trusted notebooks).
NO_SANDBOX = Mode()


@dataclasses.dataclass
class Place:
    """Where one submission runs: its folders on this machine and its cgroups; made by :func:`prepare`."""

    folder: str  # holds home/ and kernel/; in the worker, a tmpfs of --disk MiB when Mode.tmpfs
    home: str  # the kernel's working directory and HOME, at the same path inside the sandbox
    kernel: str  # the connection file and the kernel's sockets, at the same path inside the sandbox
    cgroups: tuple[str, ...] = ()
    token: str = ""  # --no-sandbox: the environment marker of the kernel and what it starts


# ------------------------------------------------------------------------------------ what this machine offers

def probe(no_sandbox: bool = False) -> Mode:
    """What this machine offers for sandboxing kernels; raises :class:`Unavailable` (with the fix) when bwrap
    is missing or cannot start a sandbox, unless ``no_sandbox``."""
    if no_sandbox:
        return NO_SANDBOX
    if not sys.platform.startswith("linux"):
        raise Unavailable("the grader's sandbox (bubblewrap) needs Linux. Grade on a Linux machine, or pass "
                          "--no-sandbox to run learners' code as you, with your files within its reach.")
    bwrap = shutil.which("bwrap") or ("/usr/bin/bwrap" if os.access("/usr/bin/bwrap", os.X_OK) else "")
    if not bwrap:
        raise Unavailable(f"bubblewrap (bwrap) is not installed, and the grader runs learners' code only inside "
                          f"it. Install it: {INSTALL}\nOr pass --no-sandbox to run learners' code as you, "
                          "with your files within its reach.")
    root = os.geteuid() == 0
    version = subprocess.run([bwrap, "--version"], capture_output=True, text=True).stdout.split()[-1:]
    mode = Mode(bwrap=bwrap, version=version[0] if version else "", root=root)
    trial = subprocess.run([*_bwrap_base(mode), "--", "/bin/true" if os.path.exists("/bin/true") else "/usr/bin/true"],
                           capture_output=True, text=True, timeout=60)
    if trial.returncode != 0:
        why = " ".join(trial.stderr.split()) or f"exit status {trial.returncode}"
        hint = ("" if root else " As an ordinary user bwrap needs unprivileged user namespaces: on Debian 10 and "
                "older `sudo sysctl kernel.unprivileged_userns_clone=1`; on Ubuntu 23.10 and newer an AppArmor "
                "profile for bwrap or `sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0`. Or grade as root.")
        raise Unavailable(f"bubblewrap cannot start a sandbox on this machine ({why}).{hint} Or pass --no-sandbox "
                          "to run learners' code as you, with your files within its reach.")
    cgroup, parents = _probe_cgroups() if root else ("", ())
    return dataclasses.replace(mode, cgroup=cgroup, cgroup_parents=parents, tmpfs=_probe_tmpfs())


def _mounts() -> list[tuple[str, str, set[str]]]:
    """(mount point, file system type, super options) of every mount, from /proc/self/mountinfo."""
    found = []
    try:
        lines = Path("/proc/self/mountinfo").read_text().splitlines()
    except OSError:
        return found
    for line in lines:
        left, _, right = line.partition(" - ")
        fields, more = left.split(), right.split()
        if len(fields) >= 5 and len(more) >= 3:
            point = fields[4].replace("\\040", " ")
            found.append((point, more[0], set(more[2].split(","))))
    return found


def _own_cgroup(controller: str) -> str:
    """This process's cgroup path in the hierarchy of ``controller`` ("" for the v2 hierarchy)."""
    for line in Path("/proc/self/cgroup").read_text().splitlines():
        _, names, path = line.split(":", 2)
        if controller in names.split(",") or (not controller and not names):
            return path
    raise LookupError(controller)


def _probe_cgroups() -> tuple[str, tuple[str, ...]]:
    """("v1", (memory parent, pids parent)), ("v2", (parent,)) or ("", ()) when cgroups cannot be used here."""
    mounts = _mounts()
    try:
        v1 = {}
        for controller in ("memory", "pids"):
            point = next(p for p, kind, opts in mounts if kind == "cgroup" and controller in opts)
            v1[controller] = os.path.join(point, _own_cgroup(controller).lstrip("/"))
        for parent in v1.values():
            trial = Path(parent, f"course-grade-probe-{uuid.uuid4().hex[:8]}")
            trial.mkdir()
            trial.rmdir()
        return "v1", (v1["memory"], v1["pids"])
    except (StopIteration, LookupError, OSError, ValueError):
        pass
    try:
        point = next(p for p, kind, _ in mounts if kind == "cgroup2")
        if not {"memory", "pids"} <= set(Path(point, "cgroup.controllers").read_text().split()):
            return "", ()
        parent = Path(point, "course-grade")
        enabled = set(Path(point, "cgroup.subtree_control").read_text().split())
        if not {"memory", "pids"} <= enabled:
            Path(point, "cgroup.subtree_control").write_text("+memory +pids")
        parent.mkdir(exist_ok=True)
        Path(parent, "cgroup.subtree_control").write_text("+memory +pids")
        trial = Path(parent, f"probe-{uuid.uuid4().hex[:8]}")
        trial.mkdir()
        ok = Path(trial, "memory.max").exists() and Path(trial, "pids.max").exists()
        trial.rmdir()
        return ("v2", (str(parent),)) if ok else ("", ())
    except (StopIteration, LookupError, OSError, ValueError):
        return "", ()


_libc = ctypes.CDLL(None, use_errno=True)
MS_NOSUID, MS_NODEV, MS_REC, MS_PRIVATE = 2, 4, 0x4000, 1 << 18
CLONE_NEWNS, CLONE_NEWUSER = 0x00020000, 0x10000000


def private_tmpfs(folder: str, mib: int) -> None:
    """Mount a tmpfs of ``mib`` MiB on ``folder``, seen only by this process and those it starts.

    This process moves into a mount namespace of its own first (and, unless it is root, into a user namespace
    of its own, keeping its uid, which lets an ordinary user mount there): nothing is mounted on the machine,
    and the tmpfs is gone when the last process that sees it ends. The process must have one thread only.
    """
    uid, gid = os.getuid(), os.getgid()
    if _libc.unshare(CLONE_NEWNS | (0 if uid == 0 else CLONE_NEWUSER)) != 0:
        raise OSError(ctypes.get_errno(), "cannot make a mount namespace (unshare)")
    if uid != 0:
        Path("/proc/self/setgroups").write_text("deny")
        Path("/proc/self/uid_map").write_text(f"{uid} {uid} 1")
        Path("/proc/self/gid_map").write_text(f"{gid} {gid} 1")
    if _libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "cannot make the mounts private")
    options = f"size={mib}m,mode=0700".encode()
    if _libc.mount(b"tmpfs", folder.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
        raise OSError(ctypes.get_errno(), f"cannot mount a tmpfs on {folder}")


def die_with_parent() -> None:
    """Have this process killed when its parent ends (PR_SET_PDEATHSIG), or now if it has already ended."""
    parent = os.getppid()
    _libc.prctl(1, signal.SIGKILL, 0, 0, 0)  # PR_SET_PDEATHSIG
    if os.getppid() != parent:
        os._exit(1)


def _probe_tmpfs() -> bool:
    """Whether :func:`private_tmpfs` works here, tried in a child process."""
    folder = tempfile.mkdtemp(prefix="course-grade-probe-")
    try:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            code = 1
            try:
                private_tmpfs(folder, 1)
                code = 0
            finally:
                os._exit(code)
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
    finally:
        os.rmdir(folder)


def describe(mode: Mode, limits: Limits) -> list[str]:
    """The table's header: how learners' code ran, and which limits held, in plain words."""
    memory, disk = f"{limits.memory_gib:g} GiB", f"{limits.disk_mib} MiB"
    time_limit = f"{limits.timeout:g} s for all cells, {limits.cpu_seconds} s of CPU per process"
    if not mode.sandboxed:
        who = "root" if os.geteuid() == 0 else f"uid {os.geteuid()}"
        processes = ("not enforced for root" if os.geteuid() == 0
                     else f"{limits.processes} beyond those of your account")
        return [f"NO SANDBOX (--no-sandbox): learners' code ran as you ({who}), with your files, the course and "
                "the other submissions within its reach, and with the network.",
                f"Limits, per process only: memory {memory}, files {disk} each, processes {processes}; {time_limit}."]
    seen = "seeing only the system, Python, the course's lenet/ (read-only) and a folder of its own"
    if mode.root:
        who = (f"Sandbox: bubblewrap {mode.version}; learners' code ran as uid {NOBODY} (nobody), without network, "
               f"{seen}.")
    else:
        who = (f"Sandbox: bubblewrap {mode.version} in an unprivileged user namespace; learners' code ran as your uid "
               f"({os.geteuid()}) outside it ({NOBODY} inside), without network, {seen}.")
    if mode.cgroup:
        held = (f"memory {memory} and processes {limits.processes} (threads included) for all of a learner's "
                f"processes together (cgroup {mode.cgroup})")
    else:
        held = (f"processes {limits.processes} per learner (threads included; RLIMIT_NPROC in its user namespace)"
                if not mode.root else f"processes {limits.processes} for uid {NOBODY}, shared by the notebooks "
                "graded at once (no cgroups)")
        held += f"; memory {memory} per process only (no cgroups: several processes together can use more)"
    if mode.tmpfs:
        held += f"; disk {disk} for its folder, as much for /tmp and /dev/shm (tmpfs)"
    else:
        held += f"; disk {disk} for /tmp and /dev/shm (tmpfs), its folder only {disk} per file (no tmpfs here)"
    return [who, f"Limits per learner: {held}; {time_limit}."]


# ------------------------------------------------------------------------------------------ one submission

def prepare(mode: Mode, limits: Limits) -> Place:
    """Make the folders (and cgroups) of one submission; :func:`release` undoes it. Runs in the grader's main
    process, before the worker that grades the submission starts."""
    folder = tempfile.mkdtemp(prefix="course-grade-", dir=_short_temp())
    place = Place(folder, os.path.join(folder, "home"), os.path.join(folder, "kernel"))
    try:
        _make_folders(mode, place)
        if not mode.sandboxed:
            place.token = uuid.uuid4().hex
        if mode.cgroup:
            place.cgroups = _make_cgroups(mode, limits, os.path.basename(folder))
    except BaseException:
        release(place)
        raise
    return place


def _make_folders(mode: Mode, place: Place) -> None:
    for path in (place.home, place.kernel):
        os.mkdir(path, 0o700)
        if mode.sandboxed and mode.root:
            os.chown(path, NOBODY, NOBODY)


def _short_temp() -> str:
    """The temporary folder, or /tmp when its path is so long that the kernel's Unix sockets in it would pass
    the 107 bytes a socket's path may have."""
    folder = os.path.realpath(tempfile.gettempdir())
    return folder if len(folder) <= 64 or not os.access("/tmp", os.W_OK) else "/tmp"


def _make_cgroups(mode: Mode, limits: Limits, name: str) -> tuple[str, ...]:
    memory = str(int(limits.memory_gib * 2**30))
    made: list[str] = []
    try:
        if mode.cgroup == "v1":
            memory_parent, pids_parent = mode.cgroup_parents
            made.append(os.path.join(memory_parent, name))
            os.mkdir(made[-1])
            Path(made[-1], "memory.limit_in_bytes").write_text(memory)
            try:  # with swap accounting, swap counts too
                Path(made[-1], "memory.memsw.limit_in_bytes").write_text(memory)
            except OSError:
                pass
            made.append(os.path.join(pids_parent, name))
            os.mkdir(made[-1])
            Path(made[-1], "pids.max").write_text(str(limits.processes))
        else:
            made.append(os.path.join(mode.cgroup_parents[0], name))
            os.mkdir(made[-1])
            Path(made[-1], "memory.max").write_text(memory)
            if Path(made[-1], "memory.swap.max").exists():
                Path(made[-1], "memory.swap.max").write_text("0")
            Path(made[-1], "pids.max").write_text(str(limits.processes))
    except BaseException:
        _remove_cgroups(tuple(made))
        raise
    return tuple(made)


def _remove_cgroups(cgroups: tuple[str, ...]) -> None:
    """Kill every process in ``cgroups`` (none may fork meanwhile), then remove them."""
    for group in cgroups:
        pids_max = Path(group, "pids.max")
        if pids_max.exists():
            try:
                pids_max.write_text("0")
            except OSError:
                pass
    for _ in range(100):
        alive = False
        for group in cgroups:
            try:
                pids = Path(group, "cgroup.procs").read_text().split()
            except OSError:
                continue
            for pid in pids:
                alive = True
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except (OSError, ValueError):
                    pass
        remaining = []
        for group in cgroups:
            try:
                os.rmdir(group)
            except FileNotFoundError:
                pass
            except OSError:
                remaining.append(group)
        cgroups = tuple(remaining)
        if not cgroups:
            return
        time.sleep(0.02 if alive else 0.1)


def release(place: Place) -> None:
    """End everything the submission started and remove its folders and cgroups (never raises)."""
    try:
        _remove_cgroups(place.cgroups)
    except Exception:  # noqa: BLE001 - cleaning up must go on
        pass
    if place.token:
        end_processes(TOKEN_VARIABLE, place.token)
    shutil.rmtree(place.folder, ignore_errors=True)


def end_processes(variable: str, token: str) -> None:
    """Kill every process whose environment has ``variable=token`` (kernels run with --no-sandbox run as the
    teacher, so /proc shows their environment; a process that cleared its environment escapes this)."""
    needle = f"{variable}={token}".encode()
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if needle in (proc / "environ").read_bytes().split(b"\0"):
                os.kill(int(proc.name), signal.SIGKILL)
        except (OSError, ValueError):
            continue


def out_of_memory(place: Place) -> bool:
    """Whether the kernel's cgroup killed a process for want of memory."""
    for group in place.cgroups:
        for name in ("memory.oom_control", "memory.events"):
            try:
                lines = Path(group, name).read_text().splitlines()
            except OSError:
                continue
            for line in lines:
                key, _, value = line.partition(" ")
                if key == "oom_kill" and value.strip().isdigit() and int(value) > 0:
                    return True
    return False


# --------------------------------------------------------------------------------------------- the kernel

def _bwrap_base(mode: Mode) -> list[str]:
    """bwrap with its namespaces and the system, read-only: what :func:`probe` tries and every kernel uses."""
    argv = [mode.bwrap, "--unshare-pid", "--unshare-ipc", "--unshare-net", "--unshare-uts", "--unshare-cgroup-try",
            "--hostname", "grader", "--die-with-parent", "--new-session"]
    if mode.root:  # the launcher needs these to drop to uid 65534, and then has none
        argv += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID", "--cap-add", "CAP_SETPCAP"]
    else:
        argv += ["--unshare-user", "--uid", str(NOBODY), "--gid", str(NOBODY), "--disable-userns"]
    for name in ("usr", "bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        path = f"/{name}"
        if os.path.islink(path):
            argv += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            argv += ["--ro-bind", path, path]
    return argv + ["--ro-bind", "/etc", "/etc", "--proc", "/proc", "--dev", "/dev"]


def _read_only_paths(course_root: Path, more: list[str]) -> list[tuple[str, str]]:
    """(source, destination) of what the kernel reads: Python, its venv, the course's lenet/, ``more``."""
    wanted = [sys.prefix, sys.exec_prefix, sys.base_prefix, sys.base_exec_prefix,
              os.path.dirname(os.path.dirname(os.path.realpath(sys.executable))), str(course_root / "lenet"), *more]
    pairs: list[tuple[str, str]] = []
    for dest in dict.fromkeys(os.path.abspath(p) for p in wanted):
        if any(dest == d or dest.startswith(d.rstrip("/") + "/") for d in ("/usr", "/etc", "/bin", "/lib", "/sbin")):
            continue
        pairs.append((os.path.realpath(dest), dest))
    pairs.sort(key=lambda pair: pair[1].count("/"))
    kept: list[tuple[str, str]] = []
    for src, dest in pairs:  # a path inside another one already bound comes with it
        if not any(dest.startswith(d.rstrip("/") + "/") for _, d in kept):
            kept.append((src, dest))
    return kept


@dataclasses.dataclass(frozen=True)
class Sandbox:
    """One submission's kernel: how to start it (in :class:`Mode`, at :class:`Place`, within :class:`Limits`).

    The kernel imports ``lenet`` from ``course_root`` (read-only, through ``PYTHONPATH``), and the modules
    :meth:`importing` adds (a course's own checks module).
    """

    mode: Mode
    place: Place
    limits: Limits
    course_root: Path
    imports: tuple[tuple[str, str], ...] = ()  # (folder on PYTHONPATH, file or package read-only in it)

    def enter(self) -> None:
        """In the worker, before anything else (it must have one thread): make the private folder a tmpfs of
        --disk MiB that only this worker and its kernel see (:func:`private_tmpfs`), where the mode allows."""
        if self.mode.sandboxed and self.mode.tmpfs:
            private_tmpfs(self.place.folder, self.limits.disk_mib)
            _make_folders(self.mode, self.place)

    def importing(self, module: str, root: Path) -> Sandbox:
        """This sandbox, with the top-level package (or file) of ``module`` importable from ``root`` too."""
        top = module.split(".")[0]
        for path in (root / top, root / f"{top}.py"):
            if path.exists() and (str(root), str(path)) not in self.imports:
                return dataclasses.replace(self, imports=((str(root), str(path)), *self.imports))
        return self

    def kernel_manager(self, env: dict[str, str]) -> AsyncKernelManager:
        """A kernel manager whose kernel starts inside the sandbox with ``env`` (inside it, nothing else), talking
        over Unix sockets in the place's kernel folder (without the sandbox too: no TCP port is opened)."""
        return _SandboxedKernelManager(wrap=lambda cmd: self.command(cmd, env), kernel_name="python3",
                                       transport="ipc", ip=os.path.join(self.place.kernel, "kernel"),
                                       connection_file=os.path.join(self.place.kernel, "kernel.json"))

    def launch_env(self, env: dict[str, str]) -> dict[str, str]:
        """The environment of the process that starts the kernel: bwrap's own (it clears it), else ``env``."""
        return {"PATH": os.environ.get("PATH", "/usr/bin:/bin")} if self.mode.sandboxed else env

    def environment(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The kernel's whole environment: in the sandbox only what it needs; without, the teacher's and more."""
        python_path = os.pathsep.join(dict.fromkeys([*(folder for folder, _ in self.imports), str(self.course_root)]))
        own = {"HOME": self.place.home, "PYTHONPATH": python_path, "MPLBACKEND": "Agg",
               "PYDEVD_DISABLE_FILE_VALIDATION": "1", **thread_env(1), **(extra or {})}
        if not self.mode.sandboxed:
            return {**os.environ, **own, TOKEN_VARIABLE: self.place.token}
        path = os.pathsep.join([os.path.join(sys.prefix, "bin"), "/usr/local/bin", "/usr/bin", "/bin"])
        return {"PATH": path, "LANG": "C.UTF-8", "TMPDIR": "/tmp", **own}

    def command(self, kernel_cmd: list[str], env: dict[str, str]) -> list[str]:
        """``kernel_cmd`` wrapped in bwrap (see the module docstring), then in :data:`LAUNCHER`."""
        if not self.mode.sandboxed:
            return kernel_cmd
        disk = str(self.limits.disk_mib * 2**20)
        argv = _bwrap_base(self.mode)
        argv += ["--perms", "1777", "--size", disk, "--tmpfs", "/tmp",
                 "--perms", "1777", "--size", disk, "--tmpfs", "/dev/shm"]
        made = {"/", "/tmp", "/dev", "/proc", "/etc", "/usr"}

        def parents(dest: str) -> None:  # bwrap would make missing folders 0700 as root: unreadable to nobody
            for parent in map(str, reversed(Path(dest).parents)):
                if parent not in made:
                    argv.extend(["--perms", "0755", "--dir", parent])
                    made.add(parent)

        for src, dest in _read_only_paths(self.course_root, [path for _, path in self.imports]):
            parents(dest)
            argv += ["--ro-bind", src, dest]
            made.add(dest)
        for path in (self.place.home, self.place.kernel):
            parents(path)
            argv += ["--bind", path, path]
            made.add(path)
        argv += ["--remount-ro", "/", "--chdir", self.place.home, "--clearenv"]
        for key, value in env.items():
            argv += ["--setenv", key, value]
        nproc = 0 if self.mode.cgroup else self.limits.processes  # see LAUNCHER
        return [*argv, "--", sys.executable, "-I", "-S", "-c", LAUNCHER, str(NOBODY), str(NOBODY), str(nproc),
                *kernel_cmd]

    def popen_kwargs(self) -> dict[str, Any]:
        """Arguments for starting the kernel's process: join the cgroups, set the rlimits, in the child."""
        procs = [os.path.join(group, "cgroup.procs") for group in self.place.cgroups]
        disk = self.limits.disk_mib * 2**20
        limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_CPU, self.limits.cpu_seconds),
                  (resource.RLIMIT_FSIZE, disk)]
        if not self.mode.cgroup:
            limits.append((resource.RLIMIT_AS, int(self.limits.memory_gib * 2**30)))
        if not self.mode.sandboxed and os.geteuid() != 0:  # the teacher's uid: count what it runs already
            limits.append((resource.RLIMIT_NPROC, _tasks_of(os.getuid()) + self.limits.processes))
        return {"preexec_fn": _PreExec(procs, limits)}


class _PreExec:
    """Runs in the kernel's process between fork and exec: join the cgroups, then set the rlimits."""

    def __init__(self, procs: list[str], limits: list[tuple[int, int]]) -> None:
        self.procs, self.limits = procs, limits

    def __call__(self) -> None:
        pid = str(os.getpid())
        for path in self.procs:
            with open(path, "w") as f:
                f.write(pid)
        for kind, value in self.limits:
            _, hard = resource.getrlimit(kind)
            top = value + 5 if kind == resource.RLIMIT_CPU else value  # past the soft CPU limit: SIGXCPU, then kill
            if hard != resource.RLIM_INFINITY:
                value, top = min(value, hard), min(top, hard)
            resource.setrlimit(kind, (value, top))


def _tasks_of(uid: int) -> int:
    """How many processes and threads ``uid`` runs now (what RLIMIT_NPROC counts)."""
    count = 0
    for proc in Path("/proc").glob("[0-9]*"):
        try:
            if proc.stat().st_uid == uid:
                count += len(os.listdir(proc / "task"))
        except OSError:
            continue
    return count


class _SandboxedKernelManager(AsyncKernelManager):
    """A kernel manager whose kernel command is wrapped (in bwrap) and whose connection file the kernel can read."""

    def __init__(self, wrap: Callable[[list[str]], list[str]], **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wrap = wrap

    def client(self, **kwargs: Any) -> Any:
        """The client, whose sockets drop messages over :data:`MAX_MESSAGE` and queue at most :data:`MAX_QUEUED`."""
        kc = super().client(**kwargs)
        kc.context.setsockopt(zmq.MAXMSGSIZE, MAX_MESSAGE)
        kc.context.setsockopt(zmq.RCVHWM, MAX_QUEUED)
        return kc

    def format_kernel_cmd(self, extra_arguments: list[str] | None = None) -> list[str]:
        os.chmod(self.connection_file, 0o644)  # its folder is the kernel's own (0700): nobody else can read it
        return self._wrap(super().format_kernel_cmd(extra_arguments))
