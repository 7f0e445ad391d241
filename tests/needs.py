"""What a test needs from the machine: where it is missing the test skips, but under CI (`CI` set)
it fails, so that a CI run cannot pass while hiding a test it did not run."""

import os
import shutil

import pytest


def unavailable(reason: str):
    """Skip for a reason of this machine; with CI set, fail instead."""
    if os.environ.get("CI"):
        pytest.fail(f"CI must run this test, but {reason}", pytrace=False)
    pytest.skip(reason)


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if path is None:
        unavailable("Debian's chromium is not installed (bin/ensure-chromium installs it as root)")
    return path
