"""AWS credentials and region from the standard sources, in botocore's order, without botocore.

Environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`) first, then the profile
(`AWS_PROFILE`, else `default`) in the shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, else
~/.aws/credentials), then in the config file (`AWS_CONFIG_FILE`, else ~/.aws/config). Role assumption,
SSO and instance metadata are not read: a CI job that uses them exports the resulting keys first
(`aws configure export-credentials --format env`).
"""

from __future__ import annotations

import configparser
import os
from collections.abc import Mapping
from pathlib import Path

from .errors import InvalidInput
from .sigv4 import Credentials


def _read(path: Path) -> configparser.RawConfigParser:
    parser = configparser.RawConfigParser()
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        raise InvalidInput(f"{path}: not an AWS config file ({type(error).__name__})") from None
    return parser


def _files(env: Mapping[str, str]) -> tuple[Path, Path]:
    home = Path(env.get("HOME") or Path.home())
    credentials = env.get("AWS_SHARED_CREDENTIALS_FILE") or str(home / ".aws" / "credentials")
    config = env.get("AWS_CONFIG_FILE") or str(home / ".aws" / "config")
    return Path(credentials).expanduser(), Path(config).expanduser()


def _profile_sections(env: Mapping[str, str], profile: str | None) -> list[dict[str, str]]:
    """The profile's sections: credentials file `[name]`, then config file `[profile name]` (or `[default]`)."""
    name = profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    credentials_file, config_file = _files(env)
    found = []
    parser = _read(credentials_file)
    if parser.has_section(name):
        found.append(dict(parser.items(name)))
    parser = _read(config_file)
    for section in (f"profile {name}", name) if name == "default" else (f"profile {name}",):
        if parser.has_section(section):
            found.append(dict(parser.items(section)))
            break
    return found


def _from_section(section: Mapping[str, str]) -> Credentials | None:
    key, secret = section.get("aws_access_key_id"), section.get("aws_secret_access_key")
    if key and secret:
        return Credentials(
            key.strip(), secret.strip(), (section.get("aws_session_token") or "").strip() or None
        )
    return None


def find_credentials(env: Mapping[str, str] | None = None, profile: str | None = None) -> Credentials | None:
    """The first complete key pair the standard sources give, or None."""
    env = os.environ if env is None else env
    if bool(env.get("AWS_ACCESS_KEY_ID")) != bool(env.get("AWS_SECRET_ACCESS_KEY")):
        raise InvalidInput(
            "partial AWS credentials in the environment: set both AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if env.get("AWS_ACCESS_KEY_ID") and env.get("AWS_SECRET_ACCESS_KEY"):
        return Credentials(
            env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"], env.get("AWS_SESSION_TOKEN") or None
        )
    for section in _profile_sections(env, profile):
        found = _from_section(section)
        if found:
            return found
    return None


def find_region(env: Mapping[str, str] | None = None, profile: str | None = None) -> str | None:
    """`AWS_REGION`, `AWS_DEFAULT_REGION`, then the profile's `region` in the config file."""
    env = os.environ if env is None else env
    if env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION"):
        return env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    _, config_file = _files(env)
    name = profile or env.get("AWS_PROFILE") or env.get("AWS_DEFAULT_PROFILE") or "default"
    parser = _read(config_file)
    for section in (f"profile {name}", name) if name == "default" else (f"profile {name}",):
        if parser.has_section(section) and parser.has_option(section, "region"):
            return parser.get(section, "region").strip()
    return None


def require_credentials(env: Mapping[str, str] | None = None) -> Credentials:
    """Credentials for recording, or a one-line error naming where they were looked for."""
    found = find_credentials(env)
    if found is None:
        raise InvalidInput(
            "no AWS credentials: set AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN), "
            "or AWS_PROFILE with ~/.aws/credentials or ~/.aws/config"
        )
    return found
