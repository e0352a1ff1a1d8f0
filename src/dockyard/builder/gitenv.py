"""git's environment for a source: the checked transports and pinning (outbound/git.py), the
token as an HTTP header, the SSH deploy key, all through the environment and files in a private
directory (never the command line, where `ps` shows them, nor the URL, which logs show)."""

from __future__ import annotations

import base64
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

TOKEN_USERS = {"github": "x-access-token", "gitlab": "oauth2", "bitbucket": "x-token-auth", "gitea": "dockyard",
               "git": "dockyard"}


def git_environment(source: Mapping[str, Any], home: Path, base: Mapping[str, str],
                    own: Callable[[Path], None] = lambda path: None) -> dict[str, str]:
    """The environment for git commands on `source` ({provider, config, token?, ssh_key?, host?});
    files go in `home` (a directory only this build reads), each handed to `own` (the build user)."""
    env = {**base, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1", "GIT_CONFIG_GLOBAL": os.devnull,
           "GIT_PROTOCOL_FROM_USER": "0"}
    config = [tuple(kv) for kv in source.get("config", []) if kv[0] != "safe.directory"]
    safe = [kv[1] for kv in source.get("config", []) if kv[0] == "safe.directory"]
    if safe:  # git honours safe.directory only in the global or system configuration
        global_config = home / "gitconfig"
        global_config.write_text("".join(f"[safe]\n\tdirectory = {d}\n" for d in safe))
        own(global_config)
        env["GIT_CONFIG_GLOBAL"] = str(global_config)
    if source.get("token"):
        user = TOKEN_USERS.get(source.get("provider", "git"), "dockyard")
        basic = base64.b64encode(f"{user}:{source['token']}".encode()).decode()
        config.append(("http.extraHeader", f"Authorization: Basic {basic}"))
    if source.get("ssh_key"):
        key = home / "deploy_key"
        key.write_text(source["ssh_key"].rstrip("\n") + "\n")
        key.chmod(0o600)
        own(key)
        # The host key is taken on first use, per build (no known_hosts is kept between builds);
        # HostKeyAlias names it after the host, as git connects to the checked address.
        alias = f" -o HostKeyAlias={source['host']}" if source.get("host") else ""
        env["GIT_SSH_COMMAND"] = (f"ssh -i {key} -o IdentitiesOnly=yes -o BatchMode=yes -o StrictHostKeyChecking=accept-new "
                                  f"-o UserKnownHostsFile={home / 'known_hosts'}{alias}")
    env["GIT_CONFIG_COUNT"] = str(len(config))
    for i, (name, value) in enumerate(config):
        env[f"GIT_CONFIG_KEY_{i}"], env[f"GIT_CONFIG_VALUE_{i}"] = name, value
    return env
