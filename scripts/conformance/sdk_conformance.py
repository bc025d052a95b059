"""Conformance: the official OpenAI and Anthropic SDKs, unmodified calls, against the Hyperbatch emulator."""
import io
import json
import sys
import time

import anthropic
import openai

BASE = sys.argv[1]  # e.g. http://127.0.0.1:8080
passed = 0
failed = 0


def check(name, fn):
    global passed, failed
    try:
        fn()
        passed += 1
        print(f"PASS {name}")
    except Exception as e:  # noqa: BLE001
        failed += 1
        print(f"FAIL {name}: {e!r}")


oa = openai.OpenAI(base_url=BASE + "/v1", api_key="sk-test")
an = anthropic.Anthropic(base_url=BASE, api_key="sk-ant-test")


def upload(n, prefix):
    lines = [json.dumps({"custom_id": f"{prefix}-{i}", "method": "POST", "url": "/v1/chat/completions",
                         "body": {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"q{i}"}]}})
             for i in range(n)]
    return oa.files.create(file=("in.jsonl", io.BytesIO("\n".join(lines).encode())), purpose="batch")


def openai_full():
    f = upload(50, "r")
    assert f.purpose == "batch" and f.bytes > 0
    b = oa.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h",
                          metadata={"hb_tag": "shard-1"})
    assert b.status == "validating", b.status
    for _ in range(200):
        b = oa.batches.retrieve(b.id)
        if b.status in ("completed", "failed", "expired", "cancelled"):
            break
        time.sleep(0.05)
    assert b.status == "completed", b.status
    assert b.request_counts.total == 50 and b.request_counts.completed == 50
    text = oa.files.content(b.output_file_id).text
    rows = [json.loads(x) for x in text.splitlines() if x]
    ids = [r["custom_id"] for r in rows]
    assert sorted(ids) == sorted(f"r-{i}" for i in range(50))
    for r in rows:
        content = r["response"]["body"]["choices"][0]["message"]["content"]
        assert content.startswith("echo " + r["custom_id"] + " "), content


def openai_cancel_and_list():
    f = upload(2000, "c")
    b = oa.batches.create(input_file_id=f.id, endpoint="/v1/chat/completions", completion_window="24h")
    c = oa.batches.cancel(b.id)
    assert c.status in ("cancelling", "cancelled"), c.status
    seen = [x.id for x in oa.batches.list(limit=1)]
    assert b.id in seen, seen


def openai_errors():
    try:
        oa.batches.retrieve("batch_missing")
        raise AssertionError("no error")
    except openai.NotFoundError:
        pass


def anthropic_full():
    reqs = [{"custom_id": f"a{i}", "params": {"model": "claude-x", "max_tokens": 16,
                                              "messages": [{"role": "user", "content": f"hi {i}"}]}} for i in range(30)]
    b = an.messages.batches.create(requests=reqs)
    assert b.processing_status == "in_progress"
    for _ in range(200):
        b = an.messages.batches.retrieve(b.id)
        if b.processing_status == "ended":
            break
        time.sleep(0.05)
    assert b.processing_status == "ended"
    assert b.request_counts.succeeded == 30
    got = {}
    for r in an.messages.batches.results(b.id):
        assert r.result.type == "succeeded"
        got[r.custom_id] = r.result.message.content[0].text
    assert set(got) == {f"a{i}" for i in range(30)}
    assert all(v.startswith("echo " + k + " ") for k, v in got.items())


def anthropic_cancel_list():
    reqs = [{"custom_id": f"c{i}", "params": {"model": "claude-x", "max_tokens": 16,
                                              "messages": [{"role": "user", "content": "x"}]}} for i in range(5000)]
    b = an.messages.batches.create(requests=reqs)
    c = an.messages.batches.cancel(b.id)
    assert c.processing_status in ("canceling", "ended"), c.processing_status
    ids = [x.id for x in an.messages.batches.list(limit=2)]
    assert b.id in ids, ids
    try:
        an.messages.batches.create(requests=[{"custom_id": "bad id", "params": {"model": "m", "max_tokens": 1, "messages": []}}])
        raise AssertionError("no error")
    except anthropic.BadRequestError:
        pass


check("openai upload/create/poll/download", openai_full)
check("openai cancel + list", openai_cancel_and_list)
check("openai 404", openai_errors)
check("anthropic create/poll/results", anthropic_full)
check("anthropic cancel + list + 400", anthropic_cancel_list)
print(f"{passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
