"""``w2v2 serve`` under load (loopback only, bounded): 50 concurrent uploads of 5-30 s files against
the default limits (16 pending, batches of 8). Every request is answered 200 or 503 (with
Retry-After), none is lost or a connection error; every 200 carries the transcript that
``w2v2 transcribe`` gives for its file (so no answer went to the wrong request, and batching did not
change a result); the server's peak resident memory stays under a bound."""

import asyncio

import pytest

from decode_testkit import tiny_ctc_model
from serve_testkit import Server, load_client, offline, same_transcript

N, LOW, HIGH = 50, 5.0, 30.0
PEAK_RSS_MIB = 1024  # measured 523 MiB: torch, the app, batches of 8 uploads of up to 30 s


@pytest.mark.slow
def test_fifty_concurrent_uploads(tmp_path):
    client = load_client()
    model = tiny_ctc_model(tmp_path)
    paths = client.synthesize(tmp_path / "audio", N, LOW, HIGH, seed=0)
    with Server(model, tmp_path / "server.log", tmp_path / "tmpdir") as server:
        outcomes = asyncio.run(client.fire(server.url, paths, timeout=300))
        peak = client.peak_rss_mib(server.proc.pid)
        assert server.alive()
    assert [o.error for o in outcomes if o.status == 0] == []  # no connection error, no timeout
    assert {o.status for o in outcomes} <= {200, 503}, [(o.status, o.body) for o in outcomes if o.status not in (200, 503)]
    ok = [o for o in outcomes if o.status == 200]
    busy = [o for o in outcomes if o.status == 503]
    assert len(ok) >= 16 and len(ok) + len(busy) == N  # at least the first 16 admitted were served
    assert all(int(o.retry_after) >= 1 and "busy" in o.body["detail"] for o in busy)
    reference = offline(model, [o.path for o in ok])
    for o in ok:
        assert same_transcript(o.body, reference[o.path]), o.path
    assert max(o.body["timing"]["batch"] for o in ok) > 1  # concurrent requests were batched
    assert peak < PEAK_RSS_MIB, f"server peak RSS {peak:.0f} MiB"
    assert list((tmp_path / "tmpdir").iterdir()) == []
