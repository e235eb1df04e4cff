"""An aiosmtpd handler that counts, for CI's run of examples/email_backlog
against a real SMTP server (Debian's python3-aiosmtpd):

    SMTP_COUNTER_OUT=stats.json PYTHONPATH=.ci \
        /usr/bin/python3 -m aiosmtpd -n -l 127.0.0.1:PORT -c smtp_counter.Counter

It accepts every message, rejects recipients whose mailbox starts with
"nobody" (550, as the example's in-process sink does), takes 1 to 5 ms per
message, and after every event writes to SMTP_COUNTER_OUT how often each
Message-ID arrived and the most sessions open at once. A session counts from
EHLO/HELO until its QUIT, and both hooks run before the client gets the
reply, so the count is never below what the client had open.

    /usr/bin/python3 .ci/smtp_counter.py check stats.json COUNT LIMIT [PER_DOMAIN]

checks that run: every email 0..COUNT except the rejected ones (every
hundredth) arrived exactly once, nothing else arrived, and the most sessions
at once was at most LIMIT (and above 1, so the limit was actually reached
for); with PER_DOMAIN, the same for the most sessions of one recipient
domain at once.
"""

import asyncio
import json
import os
import re
import sys

MESSAGE_ID = re.compile(rb"^Message-ID:\s*<(\d+)@", re.MULTILINE | re.IGNORECASE)


class Counter:
    def __init__(self):
        self.out = os.environ["SMTP_COUNTER_OUT"]
        self.sessions = 0
        self.max_sessions = 0
        self.domains = {}  # domain -> [open now, most at once]
        self.messages = {}
        self._save()

    def _save(self):
        tmp = self.out + ".tmp"
        with open(tmp, "w") as f:
            json.dump(
                {
                    "sessions": self.sessions,
                    "max_sessions": self.max_sessions,
                    "max_per_domain": max((m for _, m in self.domains.values()), default=0),
                    "messages": self.messages,
                },
                f,
            )
        os.replace(tmp, self.out)

    def _open(self, session):
        if not getattr(session, "counted", False):
            session.counted = True
            self.sessions += 1
            self.max_sessions = max(self.max_sessions, self.sessions)
            self._save()

    async def handle_EHLO(self, server, session, envelope, hostname, responses):
        session.host_name = hostname
        self._open(session)
        return responses

    async def handle_HELO(self, server, session, envelope, hostname):
        session.host_name = hostname
        self._open(session)
        return "250 {}".format(server.hostname)

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if not hasattr(session, "domain"):
            session.domain = address.rpartition("@")[2].lower()
            load = self.domains.setdefault(session.domain, [0, 0])
            load[0] += 1
            load[1] = max(load[1], load[0])
        if address.lower().startswith("nobody"):
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        match = MESSAGE_ID.search(envelope.content)
        key = match.group(1).decode() if match else "none"
        await asyncio.sleep((1 + hash(key) % 5) / 1000)
        self.messages[key] = self.messages.get(key, 0) + 1
        self._save()
        return "250 OK queued"

    async def handle_QUIT(self, server, session, envelope):
        if getattr(session, "counted", False):
            session.counted = False
            self.sessions -= 1
            if hasattr(session, "domain"):
                self.domains[session.domain][0] -= 1
            self._save()
        return "221 bye"


def check(path, count, limit, per_domain=None):
    with open(path) as f:
        stats = json.load(f)
    messages = stats["messages"]
    expected = {str(i) for i in range(count) if i % 100 != 0}
    missing = sorted(expected - messages.keys(), key=int)
    extra = sorted(messages.keys() - expected)
    twice = sorted(k for k, n in messages.items() if n > 1)
    peak = stats["max_sessions"]
    domain_peak = stats["max_per_domain"]
    print(
        f"aiosmtpd: {len(messages)} messages, {len(missing)} missing, "
        f"{len(extra)} unexpected, {len(twice)} more than once; "
        f"most sessions at once {peak} (limit {limit}), "
        f"per domain {domain_peak} (limit {per_domain}), open at the end {stats['sessions']}"
    )
    ok = not missing and not extra and not twice and 1 < peak <= limit
    if per_domain is not None:
        ok = ok and 1 < domain_peak <= per_domain
    if not ok:
        print(f"FAIL: missing {missing[:10]} extra {extra[:10]} twice {twice[:10]}")
    return ok


if __name__ == "__main__":
    if len(sys.argv) not in (5, 6) or sys.argv[1] != "check":
        sys.exit(__doc__)
    limits = [int(a) for a in sys.argv[3:]]
    sys.exit(0 if check(sys.argv[2], *limits) else 1)
