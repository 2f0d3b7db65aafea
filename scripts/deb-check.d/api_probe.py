"""Ask the agent's API over loopback, as Home Assistant does: ``api_probe.py PORT TOKEN METHOD PATH [JSON]``.

Prints the response body (JSON) on stdout; exits 0 on 2xx, 3 on 401, 1 otherwise. Run inside a deb-check
chroot with the chroot's python3 (the agent's own dependencies are not needed for the client side).
"""

from __future__ import annotations

import sys
import urllib.error
import urllib.request


def main(argv: list[str]) -> int:
    port, token, method, path = argv[:4]
    body = argv[4].encode() if len(argv) > 4 else None
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    if body is not None:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310 - loopback only
            print(response.read().decode())
            return 0
    except urllib.error.HTTPError as error:
        body_text = error.read().decode()
        print(body_text)
        if error.code == 401:
            return 3
        print(f"{method} {path}: HTTP {error.code}: {body_text}", file=sys.stderr)
        return 1
    except OSError as error:
        print(f"{method} {path}: {error}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
