#!/usr/bin/python3
"""kubesalt lab probe: write a key into etcd every interval while the cluster changes.

Runs inside a lab node that holds an etcd client certificate (the bootstrap node), during
`lab.sh upgrade` and `lab.sh downgrade` (docs/lab.md). Each tick it puts one key
(<prefix><sequence number>) through etcd's JSON gateway (POST /v3/kv/put) on a member's own
client URL, never the API VIP: the member that took the last write first, else the next one
in the list. A write is acknowledged when a member answers it (0.5 s at most each). When the
stop file appears it reads every key of the prefix back (POST /v3/kv/range) and prints a JSON
report: the writes tried, acknowledged, refused by every member (`unacknowledged`), and
acknowledged but not read back (`lost`). Lab only: not part of kubesalt; the stdlib only (the
node's plain python3).
"""

import argparse
import base64
import http.client
import json
import os
import ssl
import sys
import time
from urllib.parse import urlsplit

PKI = "/etc/kubernetes/pki/etcd"


def b64(text):
    return base64.b64encode(text.encode()).decode()


def prefix_end(prefix):
    """etcd's range end for every key starting with `prefix`."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


class Gateway:
    """POST JSON to etcd members over TLS with a client certificate; one kept-alive
    connection per member."""

    def __init__(self, context, timeout):
        self.context = context
        self.timeout = timeout
        self.connections = {}

    def post(self, endpoint, path, body):
        parts = urlsplit(endpoint)
        connection = self.connections.get(endpoint)
        if connection is None:
            connection = http.client.HTTPSConnection(
                parts.hostname, parts.port, timeout=self.timeout, context=self.context
            )
            self.connections[endpoint] = connection
        try:
            connection.request("POST", path, json.dumps(body), {"Content-Type": "application/json"})
            response = connection.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            connection.close()
            del self.connections[endpoint]
            raise
        if response.status != 200:
            raise OSError(f"{endpoint}{path}: HTTP {response.status} {data[:200]!r}")
        return json.loads(data or b"{}")


class Writer:
    """The writes, the member each went to, and the read-back."""

    def __init__(self, post, endpoints, prefix):
        self.post = post
        self.endpoints = list(endpoints)
        self.prefix = prefix
        self.preferred = 0
        self.tried = 0
        self.acknowledged = []
        self.unacknowledged = []
        self.by_endpoint = {endpoint: 0 for endpoint in self.endpoints}

    def key(self, sequence):
        return f"{self.prefix}{sequence:08d}"

    def write_one(self):
        """Put the next key on the preferred member, else the others in turn."""
        self.tried += 1
        sequence = self.tried
        count = len(self.endpoints)
        for offset in range(count):
            index = (self.preferred + offset) % count
            endpoint = self.endpoints[index]
            try:
                self.post(
                    endpoint, "/v3/kv/put", {"key": b64(self.key(sequence)), "value": b64("1")}
                )
            except (OSError, ValueError):
                continue
            self.preferred = index
            self.by_endpoint[endpoint] += 1
            self.acknowledged.append(sequence)
            return True
        self.unacknowledged.append(sequence)
        return False

    def read_back(self):
        """The sequence numbers of the prefix's keys, from the first member that answers."""
        body = {
            "key": b64(self.prefix),
            "range_end": b64(prefix_end(self.prefix)),
            "keys_only": True,
        }
        errors = []
        for endpoint in self.endpoints:
            try:
                answer = self.post(endpoint, "/v3/kv/range", body)
            except (OSError, ValueError) as err:
                errors.append(f"{endpoint}: {err}")
                continue
            keys = [base64.b64decode(kv["key"]).decode() for kv in answer.get("kvs", [])]
            return {int(key[len(self.prefix) :]) for key in keys}
        raise OSError("no etcd member answered the read-back: " + "; ".join(errors))

    def report(self):
        found = self.read_back()
        return {
            "tried": self.tried,
            "acknowledged": len(self.acknowledged),
            "unacknowledged": self.unacknowledged,
            "lost": sorted(set(self.acknowledged) - found),
            "by_endpoint": self.by_endpoint,
        }


def run(writer, interval, stop_file, clock=time.monotonic, sleep=time.sleep):
    """Write every `interval` seconds until `stop_file` exists."""
    next_tick = clock()
    while not os.path.exists(stop_file):
        writer.write_one()
        next_tick += interval
        delay = next_tick - clock()
        if delay > 0:
            sleep(delay)
        else:
            next_tick = clock()  # a slow write: the next one starts now, none is skipped


def tls_context(pki):
    context = ssl.create_default_context(cafile=os.path.join(pki, "ca.crt"))
    context.load_cert_chain(
        os.path.join(pki, "healthcheck-client.crt"), os.path.join(pki, "healthcheck-client.key")
    )
    return context


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--endpoints", required=True, help="member client URLs, comma-separated")
    parser.add_argument("--prefix", required=True)
    parser.add_argument("--stop-file", required=True)
    parser.add_argument("--interval", type=float, default=0.1)
    parser.add_argument("--pki", default=PKI)
    args = parser.parse_args(argv)
    gateway = Gateway(tls_context(args.pki), timeout=max(args.interval * 5, 0.5))
    writer = Writer(gateway.post, args.endpoints.split(","), args.prefix)
    run(writer, args.interval, args.stop_file)
    print(json.dumps(writer.report()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
