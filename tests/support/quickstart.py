"""docs/quickstart.md read as steps, and a fresh site built by doing exactly them.

The tests that build a site from the wheel (``tests/e2e/test_wheel_install.py``,
``tests/browser/test_fresh_site.py``) take the quickstart's code blocks from
the page itself and perform them in order, with nothing added:

* a ``console`` block's ``$`` lines are commands. Each one this module knows
  how to perform is performed (``pip install`` into the site's virtual
  environment, ``django-admin startproject``, ``cd``, ``export``,
  ``python manage.py ...``); the server commands of section 7 start servers
  on a free port. A command it does not know fails the test: a quickstart
  step the tests do not perform is a defect;
* a block whose first line names a file (``# mysite/asgi.py``,
  ``{# templates/home.html #}``) is that file, written whole, or added at
  the end of it when the name is followed by ``(add at the end)``; a block
  marked ``(instead of ...)`` is an alternative, checked but not applied;
* any other block is prose-like (an example); a file block or a command
  outside the numbered sections fails the test.

Before the first release the site installs sophie-chat "from a wheel built
from the checkout", the quickstart's own alternative to
``pip install sophie-chat``: :func:`build_wheel` runs its ``pip wheel``
command, :meth:`FreshSite.run` its ``pip install dist/sophie_chat-*.whl``.
"""

from __future__ import annotations

import contextlib
import copy
import glob
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from tests.support.network import free_port
from tests.support.processes import ROOT, ServerProcess, child_env, run_command

QUICKSTART = ROOT / "docs" / "quickstart.md"
README = ROOT / "README.md"
DEPLOYMENT = ROOT / "docs" / "deployment.md"

# The first line of a block that is a file: "# path", "# path (how)", "{# path #}".
_FILE_LINE = re.compile(
    r"^(?:#|\{#)\s*(?P<path>[\w][\w./-]*\.\w+)"
    r"(?:\s*\((?P<how>[^)]*)\))?(?P<rest>[^#]*?)\s*(?:#\})?$"
)
_FENCE = re.compile(r"^```(?P<language>[\w+-]*)\s*$")


class UnknownStep(AssertionError):
    """A quickstart step this module cannot perform: the page and the tests disagree."""


@dataclass(frozen=True)
class Block:
    """A fenced code block of a Markdown page, and the headings it is under."""

    language: str
    text: str
    heading: str
    subheading: str

    @property
    def commands(self) -> list[str]:
        """A console block's commands (its ``$`` lines)."""
        if self.language != "console":
            return []
        return [line[2:].strip() for line in self.text.splitlines() if line.startswith("$ ")]


@dataclass(frozen=True)
class Edit:
    """A file the quickstart writes: whole (``write``) or at its end (``append``)."""

    path: str
    text: str
    how: str

    def apply(self, project: Path) -> None:
        target = project / self.path
        if self.how == "write":
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(self.text)
        elif self.how == "append":
            current = target.read_text()
            target.write_text(f"{current.rstrip()}\n\n{self.text}")
        else:
            raise UnknownStep(f"{self.path}: {self.how!r} is not something to apply")


def read_blocks(path: Path) -> list[Block]:
    """Every fenced block of ``path``, in order."""
    blocks: list[Block] = []
    heading = subheading = ""
    language: str | None = None
    lines: list[str] = []
    for line in path.read_text().splitlines():
        if language is not None:
            if line.startswith("```"):
                blocks.append(Block(language, "\n".join(lines) + "\n", heading, subheading))
                language = None
            else:
                lines.append(line)
            continue
        fence = _FENCE.match(line)
        if fence:
            language, lines = fence["language"], []
        elif line.startswith("## "):
            heading, subheading = line[3:].strip(), ""
        elif line.startswith("### "):
            subheading = line[4:].strip()
    assert language is None, f"{path.name}: a code block is not closed"
    return blocks


def edit_of(block: Block) -> Edit | None:
    """The file a block is, or None for an example."""
    if block.language == "console" or not block.text.strip():
        return None
    match = _FILE_LINE.match(block.text.splitlines()[0])
    if match is None:
        return None
    how = (match["how"] or "").strip()
    rest = match["rest"].strip()
    # "# path: what this part of it is": an excerpt of a file, not the file.
    if rest and (not how or not rest.startswith(":")):
        return None
    if not how:
        return Edit(match["path"], block.text, "write")
    if how.startswith("add at the end"):
        return Edit(match["path"], block.text, "append")
    if how.startswith("instead of"):
        return Edit(match["path"], block.text, "instead")
    raise UnknownStep(f"{match['path']}: ({how}) says neither to write nor to add at the end")


Step = Edit | str


@dataclass
class Quickstart:
    """docs/quickstart.md as steps: section 1, sections 2 to 6, and one list per server."""

    install: list[str] = field(default_factory=list)
    setup: list[Step] = field(default_factory=list)
    alternatives: list[Edit] = field(default_factory=list)
    servers: dict[str, list[Step]] = field(default_factory=dict)

    @classmethod
    def read(cls, path: Path = QUICKSTART) -> Quickstart:
        quickstart = cls()
        for block in read_blocks(path):
            number = block.heading.split(".", 1)[0]
            edit = edit_of(block)
            steps: list[Step] = [edit] if edit is not None else list(block.commands)
            if not steps:
                continue
            if edit is not None and edit.how == "instead":
                quickstart.alternatives.append(edit)
            elif number == "1":
                if edit is not None:
                    raise UnknownStep(f"section {block.heading!r} writes {edit.path}")
                quickstart.install.extend(block.commands)
            elif number in {"2", "3", "4", "5", "6"}:
                quickstart.setup.extend(steps)
            elif number == "7":
                if not block.subheading:
                    raise UnknownStep(f"a step of {block.heading!r} is under no server's heading")
                quickstart.servers.setdefault(block.subheading, []).extend(steps)
            else:
                raise UnknownStep(f"a step under {block.heading!r}, outside the numbered steps")
        return quickstart

    def server(self, kind: str) -> list[Step]:
        """The steps of the server whose heading names ``kind`` (runserver, uvicorn, daphne)."""
        for heading, steps in self.servers.items():
            names = heading.replace("`", "").lower()
            if kind == "runserver" and "runserver" in names:
                return steps
            if kind != "runserver" and "runserver" not in names and kind in names:
                return steps
        raise UnknownStep(f"the quickstart has no section for {kind}: {list(self.servers)}")


# Installing before the first release, as the quickstart says.

_WHEEL_BUILD = re.compile(r"^pip wheel --no-deps --wheel-dir (?P<out>\S+) /path/to/sophie-chat$")
_WHEEL_INSTALL = re.compile(r"^pip install (?P<pattern>\S+\.whl)$")


def build_wheel(work: Path) -> Path:
    """The wheel, built by the quickstart's own ``pip wheel`` command from this checkout."""
    [command] = [c for c in Quickstart.read().install if _WHEEL_BUILD.match(c)]
    out = work / _WHEEL_BUILD.match(command)["out"]
    argv = [sys.executable, "-m", *shlex.split(command)]
    argv[-1] = str(ROOT)
    argv[argv.index("--wheel-dir") + 1] = str(out)
    # With hatchling at hand no build environment needs downloading; the build is the same.
    with contextlib.suppress(ImportError):
        import hatchling  # noqa: F401

        argv.insert(-1, "--no-build-isolation")
    run_command(argv, cwd=work, env=child_env(), timeout=300)
    [built] = out.glob("sophie_chat-*.whl")
    return built


def find_python(version: str) -> str | None:
    """An interpreter of Python ``version`` ("3.11") that runs, or None.

    pyenv's shims answer only for its global version, so its versions'
    folders are looked in too (as the Makefile does).
    """
    pyenv = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv"))
    candidates = [
        shutil.which(f"python{version}"),
        *sorted(glob.glob(str(pyenv / "versions" / f"{version}*" / "bin" / f"python{version}"))),
        f"/usr/bin/python{version}",
    ]
    for candidate in candidates:
        if not candidate or not os.access(candidate, os.X_OK):
            continue
        probe = subprocess.run(
            [candidate, "-c", "import sys, venv; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
            check=False,
        )
        if probe.returncode == 0 and probe.stdout.strip() == version:
            return candidate
    return None


@dataclass(frozen=True)
class SiteServer:
    """A server of a fresh site, running."""

    name: str
    process: ServerProcess
    url: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws/chat/"

    @property
    def http_url(self) -> str:
        return self.url


class FreshSite:
    """A folder where the quickstart is done, step by step, in a virtual environment of its own.

    ``python`` makes the virtual environment; ``pins`` are added to the
    install of sophie-chat (the Django version under test); ``env`` is the
    shell's environment (the model's ``OPENAI_BASE_URL``, say) and
    ``exports`` the values of the quickstart's ``export NAME=...`` lines.
    """

    def __init__(
        self,
        work: Path,
        *,
        python: str,
        wheel: Path,
        pins: list[str],
        env: dict[str, str],
        exports: dict[str, str],
    ) -> None:
        self.work = work
        self.cwd = work
        self.wheel = wheel
        self.pins = pins
        self.env = child_env(**env)
        self.exports = exports
        self.venv = work / "venv"
        # No PYTHONPATH, no DJANGO_SETTINGS_MODULE: only what the venv holds is importable.
        run_command([python, "-m", "venv", "--without-pip", str(self.venv)], cwd=work, env=self.env)
        self.env["PATH"] = f"{self.venv / 'bin'}{os.pathsep}{self.env.get('PATH', '')}"
        self.env["VIRTUAL_ENV"] = str(self.venv)

    @property
    def python(self) -> str:
        return str(self.venv / "bin" / "python")

    @property
    def project(self) -> Path:
        return self.cwd

    def pip_install(self, *requirements: str) -> None:
        # This environment's pip installs into the site's (ensurepip would only add time).
        run_command(
            [sys.executable, "-m", "pip", "--python", self.python, "install", "--quiet",
             *requirements],
            cwd=self.cwd,
            env=self.env,
            timeout=600,
        )

    def manage(self, *args: str) -> str:
        return run_command([self.python, "manage.py", *args], cwd=self.cwd, env=self.env)

    # The quickstart's steps.

    def install(self, quickstart: Quickstart) -> None:
        """Section 1, with the wheel where it says ``pip install sophie-chat``.

        The section's alternatives (a checkout, the wheel's build, which
        :func:`build_wheel` ran) are left; every other command is done.
        """
        assert any(_WHEEL_INSTALL.match(c) for c in quickstart.install), (
            "the quickstart no longer says how to install a wheel built from a checkout"
        )
        for command in quickstart.install:
            if command == "pip install sophie-chat":
                self.pip_install(str(self.wheel), *self.pins)
            elif _WHEEL_INSTALL.match(command) or command.startswith(
                ("pip install /path/to/", "pip wheel ")
            ):
                continue
            else:
                self.run(command)

    def do(self, steps: list[Step]) -> None:
        for step in steps:
            if isinstance(step, Edit):
                step.apply(self.project)
            elif not _is_server(step):
                self.run(step)

    def run(self, command: str) -> None:
        """One command of the quickstart, as a person would type it in the site's shell."""
        argv = shlex.split(command)
        if argv[:2] == ["pip", "install"] and len(argv) > 2:
            self.pip_install(*argv[2:])
        elif argv[:2] == ["django-admin", "startproject"] and len(argv) == 3:
            run_command(
                [str(self.venv / "bin" / "django-admin"), *argv[1:]], cwd=self.cwd, env=self.env
            )
        elif argv[0] == "cd" and len(argv) == 2:
            self.cwd = self.cwd / argv[1]
            assert self.cwd.is_dir(), f"$ {command}: no such folder"
        elif argv[0] == "export" and len(argv) == 2 and "=" in argv[1]:
            name = argv[1].split("=", 1)[0]
            if name not in self.exports:
                raise UnknownStep(f"$ {command}: the test has no value for {name}")
            self.env[name] = self.exports[name]
        elif argv[:2] == ["python", "manage.py"] and not _is_server(command):
            self.manage(*argv[2:])
        else:
            raise UnknownStep(f"the quickstart says `{command}`, which this test cannot do")

    def copy(self, name: str) -> FreshSite:
        """A copy of the project folder (same venv, same environment), for one server's steps."""
        other = copy.copy(self)
        other.env = dict(self.env)
        other.cwd = self.work / name / self.cwd.name
        shutil.copytree(self.cwd, other.cwd)
        return other

    def serve(self, steps: list[Step], *, name: str) -> SiteServer:
        """Do a server's steps; its last is the server, started on a free port and healthy."""
        self.do(steps)
        [command] = [s for s in steps if isinstance(s, str) and _is_server(s)]
        port = free_port()
        argv = _on_port(shlex.split(command), port)
        argv[0] = self.python if argv[0] == "python" else str(self.venv / "bin" / argv[0])
        process = ServerProcess(
            f"{name} (a fresh mysite)",
            argv,
            env=self.env,
            cwd=self.cwd,
            log_path=self.work / f"{name}.log",
        )
        server = SiteServer(name, process, f"http://127.0.0.1:{port}")
        try:
            process.wait_until_healthy(f"{server.url}/chat/health/")
        except BaseException:
            process.stop()
            raise
        return server


def _on_port(argv: list[str], port: int) -> list[str]:
    """A server command as written, listening on 127.0.0.1:``port`` instead."""
    if argv[:3] == ["python", "manage.py", "runserver"]:
        if len(argv) > 3:
            raise UnknownStep(f"runserver with arguments: {shlex.join(argv)}")
        return [*argv, f"127.0.0.1:{port}"]
    if argv[0] == "uvicorn":
        return _with_options(argv, {("--host",): "127.0.0.1", ("--port",): str(port)})
    if argv[0] == "daphne":
        return _with_options(argv, {("-b", "--bind"): "127.0.0.1", ("-p", "--port"): str(port)})
    raise UnknownStep(f"the quickstart starts a server with `{shlex.join(argv)}`")


def _with_options(argv: list[str], values: dict[tuple[str, ...], str]) -> list[str]:
    """``argv`` with each option's value replaced (or the option added before the app)."""
    argv = list(argv)
    for names, value in values.items():
        found = [i for i, arg in enumerate(argv) if arg in names]
        if found:
            argv[found[0] + 1] = value
        else:
            argv[1:1] = [names[0], value]
    return argv


def _is_server(command: str) -> bool:
    argv = shlex.split(command)
    return argv[:3] == ["python", "manage.py", "runserver"] or argv[:1] in (["uvicorn"], ["daphne"])
