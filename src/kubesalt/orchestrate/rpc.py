"""Salt RPC from the master: one LocalClient job per call for a list of minions.

Every call is bounded; the error names each minion that did not answer and each that
failed. A state run is summarised as the IDs that changed (or, with test=True, would
change) and the IDs that failed, each with its comment shortened by `saltout.short_comment`
(a traceback becomes its exception's type and message, not its first 600 characters). Tested against a fake client
(tests/unit/orchestrate/test_orchestrate_rpc.py): `client` only needs LocalClient's `cmd`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kubesalt.bootstrap.saltout import short_comment
from kubesalt.orchestrate.model import StepFailed

# Answers of a minion whose function raised, or that lacks the function.
_ERROR_PREFIXES = ("ERROR", "The minion function caused an exception", "Passed invalid")


@dataclass
class StateRun:
    """One minion's state run: `changed` the IDs that changed (test: would change),
    `failed` (ID, last line of its comment), `sls` every SLS file with a changed ID."""

    changed: list[str] = field(default_factory=list)
    failed: list[tuple[str, str]] = field(default_factory=list)
    sls: set[str] = field(default_factory=set)
    total: int = 0


def summarize_state(result, test: bool = False) -> StateRun:
    """A state run's return as a StateRun. With `test`, a state whose result is None (it
    would change) counts as changed. StepFailed when the run did not render."""
    if not isinstance(result, dict):
        errors = result if isinstance(result, list) else [result]
        raise StepFailed("did not render: " + "; ".join(short_comment(e) for e in errors[:3]))
    run = StateRun()
    ordered = sorted(
        (item for item in result.values() if isinstance(item, dict)),
        key=lambda item: item.get("__run_num__", 0),
    )
    for item in ordered:
        run.total += 1
        ident = item.get("__id__") or item.get("name") or "?"
        if item.get("result") is False:
            run.failed.append((ident, short_comment(item.get("comment"))))
        elif item.get("changes") or (test and item.get("result") is None):
            run.changed.append(ident)
            if item.get("__sls__"):
                run.sls.add(item["__sls__"])
    return run


def _failed(reply) -> bool:
    if not isinstance(reply, dict):
        return False
    ret = reply.get("ret")
    return bool(reply.get("retcode")) or (isinstance(ret, str) and ret.startswith(_ERROR_PREFIXES))


class Rpc:
    """LocalClient calls as the engine needs them."""

    def __init__(self, client, log=None):
        self.client = client
        self.log = log  # called with (minions, fun) before each job: the call trace

    def _job(self, minions, fun, args, kwargs, timeout, **options):
        minions = list(minions)
        if self.log:
            self.log(minions, fun, list(args), dict(kwargs or {}))
        answer = self.client.cmd(
            minions, fun, arg=list(args), kwarg=dict(kwargs or {}), timeout=timeout,
            tgt_type="list", full_return=True, **options,
        )  # fmt: skip
        return answer or {}

    def answers(self, minions, fun, args=(), kwargs=None, timeout=30, **options) -> dict:
        """{minion: return} of the minions that answered in time (no error raised)."""
        answer = self._job(minions, fun, args, kwargs, timeout, **options)
        return {
            m: (r.get("ret") if isinstance(r, dict) else r)
            for m, r in answer.items()
            if m in minions and not _failed(r)
        }

    def call(self, minions, fun, args=(), kwargs=None, timeout=120, what=None) -> dict:
        """{minion: return} of every minion, or StepFailed naming each minion that did not
        answer within `timeout` and each whose call failed."""
        minions = list(minions)
        if not minions:
            return {}
        answer = self._job(minions, fun, args, kwargs, timeout)
        what = what or fun
        silent = [m for m in minions if m not in answer]
        broken = [m for m in minions if m in answer and _failed(answer[m])]
        problems = []
        if silent:
            problems.append(
                f"{what}: no answer from {', '.join(silent)} within {timeout}s; check that "
                f"salt-minion runs there (salt -L {','.join(silent)} test.ping)"
            )
        for minion in broken:
            reply = answer[minion]
            ret = reply.get("ret") if isinstance(reply, dict) else reply
            problems.append(f"{what} on {minion} failed: {short_comment(ret)}")
        if problems:
            raise StepFailed("; ".join(problems), silent + broken)
        return {m: (answer[m].get("ret") if isinstance(answer[m], dict) else answer[m])
                for m in minions}  # fmt: skip

    def ping(self, minions, timeout=5) -> set[str]:
        """The minions that answer test.ping within `timeout`."""
        if not minions:
            return set()
        # A minion that missed the job (not connected yet) is asked with saltutil.find_job
        # after `timeout`; Salt then waits gather_job_timeout (10 s) for that answer too. A
        # ping is instant: 1 s is plenty, and the waits that ping again stay short.
        answers = self.answers(minions, "test.ping", (), None, timeout, gather_job_timeout=1)
        return {m for m, r in answers.items() if r}

    def state(self, minions, sls, saltenv, timeout, test=False, pillar=None, check=True):
        """Apply `sls` (a list; empty: the highstate) on `minions` in one job:
        {minion: StateRun}. StepFailed for silent minions, a run that did not render, and
        failed states (each listed with its minion); without `check`, a run that did not
        render or failed is returned as a StateRun with `failed` set."""
        kwargs = {"saltenv": saltenv}
        if test:
            kwargs["test"] = True
        if pillar:
            kwargs["pillar"] = pillar
        if sls:
            fun, args, what = "state.sls", [",".join(sls)], f"state.sls {','.join(sls)}"
        else:
            fun, args, what = "state.highstate", [], "state.highstate"
        minions = list(minions)
        if not minions:
            return {}
        answer = self._job(minions, fun, args, kwargs, timeout)
        silent = [m for m in minions if m not in answer]
        if silent:
            raise StepFailed(
                f"{what}: no answer from {', '.join(silent)} within {timeout}s; check that "
                f"salt-minion runs there (salt -L {','.join(silent)} test.ping)",
                silent,
            )
        runs, problems, failed_nodes = {}, [], []
        for minion in minions:
            reply = answer[minion]
            result = reply.get("ret") if isinstance(reply, dict) else reply
            try:
                runs[minion] = summarize_state(result, test)
            except StepFailed as err:
                runs[minion] = StateRun(failed=[("render", err.message)])
                problems.append(f"{what} on {minion} {err.message}")
                failed_nodes.append(minion)
                continue
            if runs[minion].failed:
                failed_nodes.append(minion)
                problems.append(
                    f"{what} on {minion}: {len(runs[minion].failed)} state(s) failed: "
                    + "; ".join(f"{i}: {c}" for i, c in runs[minion].failed)
                )
        if problems and check:
            raise StepFailed(" | ".join(problems), failed_nodes)
        return runs
