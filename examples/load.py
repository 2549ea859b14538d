"""Drive the example service: predictions (drifting after a while), delayed labels, LLM streams, errors.

    python examples/load.py --url http://127.0.0.1:8000 --seconds 60
    python examples/load.py --error-rate 0.07 --slow-rate 0.03    # with the service's DEMO_FAULTS=1

Inputs drift gradually from ``--drift-after`` of the run on (a unit change upstream reaching more
and more rows); labels arrive 1-5 s after their prediction; 2 % of requests are malformed (the
service answers 422 without an inference); ``--error-rate`` / ``--slow-rate`` ask the service
for failures and slow calls inside the inference. Bounded in requests and time; only talks to the
URL given (loopback by default).
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import sys
import time
import urllib.error
import urllib.request
from typing import Any

from sklearn.datasets import load_breast_cancer, load_diabetes
from sklearn.model_selection import train_test_split


def _post(url: str, body: dict[str, Any], timeout: float = 10.0, fault: str | None = None) -> tuple[int, bytes]:
    headers = {"Content-Type": "application/json"}
    if fault:
        headers["X-Demo-Fault"] = fault
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()
    except (http.client.HTTPException, OSError) as exc:
        # A stream cut off mid-way (a generation that failed after its first tokens), a timeout.
        return 0, repr(exc).encode()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--url", default="http://127.0.0.1:8000")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--max-requests", type=int, default=5000)
    parser.add_argument("--drift-after", type=float, default=0.5, help="fraction of the run before inputs drift")
    parser.add_argument("--drift-ramp", type=float, default=0.25,
                        help="fraction of the run over which the drift grows to full strength")
    parser.add_argument("--rps", type=float, default=20.0)
    parser.add_argument("--error-rate", type=float, default=0.0, help="share of requests that fail in the model")
    parser.add_argument("--slow-rate", type=float, default=0.0, help="share of requests slowed to 0.6-1 s")
    args = parser.parse_args(argv)

    data = load_breast_cancer()
    _, x_serve, _, y_serve = train_test_split(data.data, data.target, test_size=0.3, random_state=0)
    names = [str(c) for c in data.target_names]
    diabetes = load_diabetes()
    _, xd_serve, _, yd_serve = train_test_split(diabetes.data, diabetes.target, test_size=0.3, random_state=0)
    rng = random.Random(42)
    start = time.monotonic()
    sent = errors = rejected = outcomes = generations = generation_failures = estimates = 0
    by_variant: dict[str, int] = {}
    pending: list[tuple[float, str, str | float]] = []
    while sent < args.max_requests and time.monotonic() - start < args.seconds:
        i = rng.randrange(len(x_serve))
        row = [float(v) for v in x_serve[i]]
        into_drift = (time.monotonic() - start - args.seconds * args.drift_after) / max(
            args.seconds * args.drift_ramp, 1e-9)
        if rng.random() < min(max(into_drift, 0.0), 1.0):  # a unit change upstream, reaching more rows
            row = [v * 1.8 if j < 10 else v for j, v in enumerate(row)]
        if rng.random() < 0.02:
            row = row[:-1]  # a malformed request: the service answers 422
        draw = rng.random()
        fault = "error" if draw < args.error_rate else "slow" if draw < args.error_rate + args.slow_rate else None
        status, body = _post(f"{args.url}/predict", {"features": row}, fault=fault)
        sent += 1
        if status == 200:
            answer = json.loads(body)
            variant = answer.get("variant") or "main"
            by_variant[variant] = by_variant.get(variant, 0) + 1
            pending.append((time.monotonic() + rng.uniform(1, 5), answer["id"], names[int(y_serve[i])]))
        else:
            errors += 1
            rejected += 400 <= status < 500  # refused before the model ran: no inference recorded
        if rng.random() < 0.2:  # the regression model: disease progression, its measurement later
            j = rng.randrange(len(xd_serve))
            status, body = _post(f"{args.url}/estimate", {"features": [float(v) for v in xd_serve[j]]})
            if status == 200:
                estimates += 1
                pending.append((time.monotonic() + rng.uniform(1, 5), json.loads(body)["id"], float(yd_serve[j])))
        pending.sort(key=lambda p: p[0])
        now = time.monotonic()
        while pending and pending[0][0] <= now:  # labels arrive a few seconds later
            _, pid, actual = pending.pop(0)
            if isinstance(actual, float):
                _post(f"{args.url}/estimate/outcome", {"id": pid, "actual": actual})
            else:
                _post(f"{args.url}/outcome", {"id": pid, "actual": actual})
            outcomes += 1
        if rng.random() < 0.1:
            status, _ = _post(f"{args.url}/generate", {"prompt": "tell me about drift",
                                                       "max_tokens": rng.randint(4, 32)})
            generations += 1
            generation_failures += status != 200
        # Paced on a schedule, not by sleeping after each request: a slow answer is caught up on, so
        # --rps is the rate sent whenever the service keeps up. When it does not, the rate printed says so.
        time.sleep(max(0.0, start + sent / args.rps - time.monotonic()))
    elapsed = time.monotonic() - start
    print(json.dumps({"predictions": sent, "errors": errors, "rejected": rejected, "outcomes": outcomes,
                      "generations": generations, "generation_failures": generation_failures,
                      "estimates": estimates, "answered_by_variant": by_variant,
                      "seconds": round(elapsed, 1), "rps": round(sent / elapsed, 2) if elapsed else 0.0}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
