"""The progress display's rate column: items per second over the run, resumed work left out."""

from __future__ import annotations

import pytest

from biforget.console import Tracker, make_progress


def rate_text(tracker: Tracker, task: int | None) -> str:
    progress = tracker._display
    assert progress is not None and task is not None
    rate = next(c for c in progress.columns if type(c).__name__ == "RateColumn")
    found = next(t for t in progress.tasks if t.id == task)
    return str(rate.render(found))  # type: ignore[union-attr]


def test_rate_is_the_mean_over_the_run_without_resumed_work(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    progress = make_progress()
    monkeypatch.setattr(progress, "get_time", lambda: clock[0])
    tracker = Tracker(progress)
    task = tracker.start("rewrite", total=100, unit="facts")
    tracker.skip(task, 40)
    assert rate_text(tracker, task) == ""
    clock[0] = 110.0
    # Six facts in one burst after ten seconds: 0.6 facts/s, not the burst's rate.
    tracker.advance(task, 6)
    assert rate_text(tracker, task) == "0.6 facts/s"
    clock[0] = 310.0
    tracker.advance(task, 1)
    assert rate_text(tracker, task) == "0.0333 facts/s"
    clock[0] = 310.5
    tracker.advance(task, 50)
    assert rate_text(tracker, task) == "0.271 facts/s"
    tracker.close()
