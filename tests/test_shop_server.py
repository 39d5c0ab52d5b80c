"""The shop served for real: `python -m fieldnotes.shop serve` under uvicorn on 127.0.0.1, the chat
page in headless Chromium, and a purchase typed into it ending as a paid order in the database."""

import httpx
import pytest

from fieldnotes.shop.nlu import save_nlu, trained_nlu
from fieldnotes.shop.server import running_server
from fieldnotes.shop.store import Store

PRODUCTS, SEED = 240, 1
SCRIPT = ["chào shop", "tìm balo", "chọn số 1", "thêm 1 cái", "thanh toán",
          "tên mình là Trần Văn An sđt 0912345678", "địa chỉ 12 Lê Lợi Quận 1 TP HCM", "xác nhận"]


@pytest.fixture(scope="module")
def nlu_file(tmp_path_factory):
    return save_nlu(trained_nlu(1500, 1), tmp_path_factory.mktemp("nlu") / "nlu.pkl")


@pytest.mark.slow
def test_two_workers_serve_one_conversation_from_the_database(tmp_path, nlu_file):
    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with running_server(url, workers=2, products=PRODUCTS, seed=SEED, nlu_path=nlu_file, views=("folded",)) as server:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            sid = client.post("/sessions").json()["session_id"]
            replies = []
            for i, text in enumerate(SCRIPT, 1):
                client.headers["Connection"] = "close"  # a new connection per turn: any worker may serve it
                replies.append(client.post("/chat", json={"session_id": sid, "message_id": i, "text": text}).json())
            assert replies[-1]["order"]["status"] == "paid" and client.get("/audit").json() == dict.fromkeys(
                client.get("/audit").json(), 0)
    store = Store(url)
    (order,) = store.orders_of(sid)
    assert order["status"] == "paid" and order["address"].lower().startswith("12 lê lợi")
    store.close()


@pytest.mark.slow
def test_a_purchase_typed_into_the_chat_page_is_paid_in_the_database(tmp_path, nlu_file):
    from playwright.sync_api import sync_playwright

    url = f"sqlite:///{tmp_path / 'shop.db'}"
    with running_server(url, products=PRODUCTS, seed=SEED, nlu_path=nlu_file) as server, sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox"])
        try:
            page = browser.new_page()
            off_machine = []
            page.on("request", lambda r: r.url.startswith(server.url) or off_machine.append(r.url))
            page.goto(server.url)
            page.wait_for_selector("#text:not([disabled])")
            for n, text in enumerate(SCRIPT, 1):
                page.fill("#text", text)
                page.click("#send")
                page.wait_for_function(f"document.querySelectorAll('.msg.assistant').length > {n}")
            page.wait_for_selector("#order[data-status='paid']")
            sid = page.get_attribute("#messages", "data-session")
            assert off_machine == [] and page.locator(".msg.error").count() == 0
        finally:
            browser.close()
    store = Store(url)
    (order,) = store.orders_of(sid)
    assert order["status"] == "paid" and order["name"] == "Trần Văn An" and order["phone"] == "0912345678"
    assert store.audit() == dict.fromkeys(store.audit(), 0)
    store.close()


def test_serve_refuses_views_it_does_not_index(tmp_path):
    from fieldnotes.shop.server import serve
    with pytest.raises(ValueError, match="views"):
        serve(f"sqlite:///{tmp_path / 'shop.db'}", 8000, views=("latin",))


#: A notebook stand-in: starts the server, prints its pid, then waits to be killed.
KERNEL = """
import sys, time
from fieldnotes.shop.server import running_server
with running_server(sys.argv[1], products=60, seed=1, nlu_path=sys.argv[2], env={"TMPDIR": sys.argv[3]}) as server:
    print(server.process.pid, flush=True)
    time.sleep(600)
"""


@pytest.mark.slow
def test_the_server_stops_when_the_kernel_that_started_it_is_killed(tmp_path, nlu_file):
    import signal
    import subprocess
    import sys

    from processes import wait_gone

    scratch = tmp_path / "tmp"  # the server's TMPDIR: a server given its parser needs no folder there
    scratch.mkdir()
    kernel = subprocess.Popen([sys.executable, "-c", KERNEL, f"sqlite:///{tmp_path / 'shop.db'}", str(nlu_file),
                               str(scratch)], stdout=subprocess.PIPE, text=True)
    try:
        supervisor = int(kernel.stdout.readline())
        kernel.send_signal(signal.SIGKILL)  # no finally block runs in the kernel
        kernel.wait(timeout=10)
        assert wait_gone(supervisor, 30), "serve outlived the killed kernel that started it"
        assert list(scratch.iterdir()) == []
    finally:
        kernel.kill()
        kernel.wait(timeout=10)
