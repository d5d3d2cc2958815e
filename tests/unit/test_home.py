"""HOME from the container's /etc/passwd (issue 15 item 14): the first entry
with the process's uid, "/" without one, as runc and crun."""

from __future__ import annotations

import pytest

from pyrunc.init.process import home_of

PASSWD = (b"root:x:0:0:root:/root:/bin/sh\n"
          b"# not an entry\n"
          b"short:x:7\n"
          b"u:x:1000:1000:a user:/home/u:/bin/sh\n"
          b"again:x:1000:1000::/home/again:/bin/sh\n"
          b"nohome:x:1001:1001:::/bin/sh\n"
          b"bad\xff:x:1002:1002::/home/\xc3\xa9:/bin/sh\n")


@pytest.mark.parametrize("uid, home", [
    (0, "/root"), (1000, "/home/u"), (1001, "/"), (1002, "/home/\u00e9"), (7, "/"), (4242, "/")])
def test_home_of(uid, home):
    assert home_of(PASSWD, uid) == home


def test_home_of_nothing():
    assert home_of(b"", 0) == "/"
