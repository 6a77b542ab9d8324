"""What the browser app may touch, as pure checks: the one folder it serves, safe upload names and sizes, and
the access token a non-loopback address needs.

The page is hostile input: a path it types, a name it uploads and every HTTP request are checked here, on the
server, whatever the page itself shows or disables. Files named on the command line are the user's own choice and
are opened without these checks.
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from MedFusionLib.core.errors import InputError

DEFAULT_MAX_UPLOAD_MB = 1024  # a large CT series as one NIfTI file fits; wslink holds an upload in memory
TOKEN_COOKIE = "medfusion_token"
TOKEN_QUERY = "token"
NAME_MAX = 255


@dataclass(frozen=True)
class WebPolicy:
    """The limits one served page runs under (``medfusion app --root/--token/--max-upload-mb``)."""

    root: Path = field(default_factory=Path.cwd)
    token: str | None = None
    max_upload_bytes: int = DEFAULT_MAX_UPLOAD_MB * 1024 * 1024


def policy_of(app: Any) -> WebPolicy:
    """The app's policy, or the strictest default (the current folder, no token) when none was set."""
    policy = getattr(app, "policy", None)
    return policy if isinstance(policy, WebPolicy) else WebPolicy()


def make_policy(root: str | Path | None, host: str, token: str | None, max_upload_mb: float | None) -> WebPolicy:
    """Check ``--root`` and ``--max-upload-mb`` and choose the token: the given one, a new random one for a
    non-loopback ``host``, none for a loopback one."""
    folder = Path(root if root is not None else Path.cwd()).expanduser()
    max_upload_mb = DEFAULT_MAX_UPLOAD_MB if max_upload_mb is None else max_upload_mb
    if not folder.is_dir():
        raise InputError(f"{folder}: --root must be an existing folder")
    if not max_upload_mb > 0:
        raise InputError(f"--max-upload-mb must be positive, not {max_upload_mb}")
    if token is not None and len(token) < 16:
        raise InputError("--token must be at least 16 characters (leave it out to get a random one)")
    if token is None and not is_loopback(host):
        token = secrets.token_urlsafe(24)
    return WebPolicy(root=folder.resolve(), token=token, max_upload_bytes=int(max_upload_mb * 1024 * 1024))


def is_loopback(host: str) -> bool:
    """True only for addresses of this machine alone (127.0.0.0/8, ::1, ``localhost``); a name is not trusted."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _inside(root: Path, path: Path) -> bool:
    return path == root or root in path.parents


def path_in_root(root: Path, typed: str) -> Path:
    """The existing file or folder ``typed`` names (relative to ``root``), after symlinks, when it lies in
    ``root``; else a one-line error. ``~`` is not expanded: the page names paths under the served folder."""
    text = str(typed).strip()
    if not text:
        raise InputError("type the path of a volume on the server")
    if "\0" in text:
        raise InputError("a path cannot contain a NUL character")
    path = (root / text).resolve()
    if not _inside(root, path):
        raise InputError(f"{text}: outside the folder this app serves ({root}; see medfusion app --root)")
    if not path.exists():
        raise InputError(f"{text}: no such file or folder under {root}")
    return path


def save_folder_in_root(root: Path, typed: str) -> Path:
    """The folder to save into (it may not exist yet), after symlinks, when it lies in ``root``."""
    text = str(typed).strip()
    if not text or "\0" in text:
        raise InputError("type the folder to save into")
    path = (root / text).resolve()
    if not _inside(root, path):
        raise InputError(f"{text}: outside the folder this app serves ({root}; see medfusion app --root)")
    if path.exists() and not path.is_dir():
        raise InputError(f"{text}: not a folder")
    return path


def upload_name(name: object) -> str:
    """A plain file name for an upload, or a one-line error: no folder part, no ``.``/``..``, no control
    characters, at most 255 characters."""
    text = str(name or "")
    if not text or text in (".", "..") or any(c in text for c in "/\\") or len(text) > NAME_MAX:
        raise InputError(f"{text[:60]!r}: not a plain file name")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InputError(f"{text[:60]!r}: a file name cannot hold control characters")
    return text


def check_upload_size(name: str, size: int, policy: WebPolicy) -> None:
    """Refuse an upload over the limit (the session goes on)."""
    if size > policy.max_upload_bytes:
        raise InputError(
            f"{name}: {size / 2**20:.1f} MB is over the upload limit of {policy.max_upload_bytes / 2**20:.0f} MB "
            "(medfusion app --max-upload-mb)"
        )


def refuse_while_running(running: bool) -> None:
    """The server's own check that no job is running (the page's disabled buttons are not a guard)."""
    if running:
        raise InputError("a fusion is running: wait for it or press Cancel first")


def token_matches(expected: str | None, *offered: str | None) -> bool:
    """True when no token is needed or one of ``offered`` equals it (compared in constant time)."""
    if expected is None:
        return True
    return any(o is not None and hmac.compare_digest(o.encode(), expected.encode()) for o in offered)


def token_middleware(token: str):
    """An aiohttp middleware refusing (403) every request, the web socket included, that carries neither the
    token in the query (``?token=``) nor the cookie set when the page was opened with it."""
    from aiohttp import web

    @web.middleware
    async def require_token(request, handler):
        from_query = request.query.get(TOKEN_QUERY)
        if not token_matches(token, from_query, request.cookies.get(TOKEN_COOKIE)):
            return web.Response(status=403, text="medfusion: an access token is needed (open the URL printed at start)")
        opened_with_token = from_query is not None and token_matches(token, from_query)
        try:
            response = await handler(request)
        except web.HTTPRedirection as redirect:  # "/" redirects to the page: the cookie must ride along
            if opened_with_token:
                redirect.headers["Set-Cookie"] = f"{TOKEN_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/"
            raise
        if opened_with_token and isinstance(response, web.Response) and not response.prepared:
            response.set_cookie(TOKEN_COOKIE, token, httponly=True, samesite="Strict", path="/")
        return response

    return require_token


def page_url(host: str, port: int, token: str | None) -> str:
    """The address to open, with the token when one is needed."""
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/" + (f"?{TOKEN_QUERY}={token}" if token else "")


def upload_entry(entry: object, policy: WebPolicy) -> tuple[str, bytes]:
    """The (safe name, content) of one uploaded file as the page sent it (a dict with ``name`` and ``content``,
    bytes or a list of byte chunks), checked for its name and size before anything is joined or written."""
    if not isinstance(entry, dict):
        raise InputError("the upload is not a file")
    name = upload_name(entry.get("name"))
    content = entry.get("content")
    chunks = content if isinstance(content, list) else [content]
    if not all(isinstance(chunk, (bytes, bytearray)) for chunk in chunks):
        raise InputError(f"{name}: the upload holds no file content")
    size = sum(map(len, chunks))
    check_upload_size(name, size, policy)
    return name, b"".join(chunks)
