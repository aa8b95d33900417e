"""The web console in a real headless browser (Debian's chromium and chromedriver, through
selenium) against the real embedded stack, the console mounted on its gateway at /console:

- the dev admin key logs in, sees the spend of a request just made, finds that request and opens
  its attempts, and pauses and resumes a rollout (started through the Assessor's API, as the CLI
  does); it creates a key (its secret shown once) and revokes it, sets a budget and deletes it;
- a viewer key sees the pages but every action is refused (403), with its session and token;
- without a session a page redirects to login; a forged, tampered or expired cookie is refused,
  and so is a POST with a bad CSRF token, from a foreign Origin, or from a foreign page in the
  browser; a session sealed by another process with the same secret (a replica) is honoured.

It saves screenshots of the overview and of a request page into docs/images/. The console also
serves alone (`python -m tierlift.console.main`) against the same ledger."""

from __future__ import annotations

import http.cookiejar
import re
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import grpc
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from tierlift.console._auth import COOKIE, Sessions
from tierlift.core.identity import key_id_of
from tierlift.devstack import Stack, base_env, free_port, wait_for_port
from tierlift.v1 import assessor_pb2, assessor_pb2_grpc, common_pb2, ledger_pb2, ledger_pb2_grpc, router_pb2
from tierlift.v1 import router_pb2_grpc as router_grpc

pytestmark = pytest.mark.integration

CHROMIUM, CHROMEDRIVER = Path("/usr/bin/chromium"), Path("/usr/bin/chromedriver")
IMAGES = Path(__file__).parents[2] / "docs" / "images"
WORKLOAD = "console-e2e"


@pytest.fixture(scope="module")
def browser() -> Iterator[webdriver.Chrome]:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1000"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=webdriver.ChromeService(executable_path=str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def _wait(driver: webdriver.Chrome, css: str, timeout_s: float = 15) -> None:
    WebDriverWait(driver, timeout_s).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))


def _submit(driver: webdriver.Chrome, button: WebElement, then: str = "#done") -> None:
    """Click a form's button and wait for the page it leads to: the page before may hold `then`
    too (an earlier action's note), so first wait for it to be gone."""
    page = driver.find_element(By.TAG_NAME, "html")
    button.click()
    WebDriverWait(driver, 15).until(lambda _: _gone(page))
    _wait(driver, then)


def _gone(element: WebElement) -> bool:
    """Whether `element` left the document. Chromedriver says so with a stale-element error, or
    at times with "Node ... does not belong to the document": both are WebDriverExceptions."""
    try:
        element.is_enabled()
    except WebDriverException:
        return True
    return False


def _text(driver: webdriver.Chrome, css: str) -> str:
    return str(driver.find_element(By.CSS_SELECTOR, css).text)


def _log_in(driver: webdriver.Chrome, stack: Stack, key: str) -> None:
    driver.delete_all_cookies()
    driver.get(stack.console_url)
    assert urllib.parse.urlsplit(driver.current_url).path == "/console/login"  # no session: to login
    driver.find_element(By.ID, "key").send_keys(key)
    driver.find_element(By.CSS_SELECTOR, "#login button").click()
    _wait(driver, "#requests")


def _ask(stack: Stack) -> router_pb2.CompleteResponse:
    request = router_pb2.CompleteRequest(
        tenant="dev", workload=WORKLOAD, messages=[common_pb2.Message(role="user", content="Say hello.")],
        params=common_pb2.GenerationParams(max_tokens=8),
    )  # fmt: skip
    with stack.channel("router", stack.keys["app"]) as channel:
        reply: router_pb2.CompleteResponse = router_grpc.RouterStub(channel).Complete(request, timeout=120)
    with stack.channel("ledger") as channel:  # the ledger takes the attempt events from the bus
        ledger, deadline = ledger_pb2_grpc.LedgerStub(channel), time.monotonic() + 20
        query = ledger_pb2.AttemptQuery(request_id=reply.request_id)
        while len(ledger.ListAttempts(query, timeout=10).attempts) < len(reply.attempts):
            assert time.monotonic() < deadline, "the ledger did not record the request's attempts"
            time.sleep(0.2)
    return reply


def _post(stack: Stack, path: str, cookie: str, fields: dict[str, str], origin: str | None) -> int:
    """A POST outside the browser, with a chosen cookie, form and Origin: its HTTP status."""
    headers = {"Cookie": f"{COOKIE}={cookie}", "Content-Type": "application/x-www-form-urlencoded"}
    if origin:
        headers["Origin"] = origin
    request = urllib.request.Request(f"{stack.console_url.rstrip('/')}{path}", urllib.parse.urlencode(fields).encode(),
                                     headers=headers, method="POST")  # fmt: skip
    return _status(request)


def _get(stack: Stack, path: str, cookie: str | None) -> tuple[int, str]:
    """A GET without following redirects: (status, Location)."""
    request = urllib.request.Request(f"{stack.console_url.rstrip('/')}{path}")
    if cookie:
        request.add_header("Cookie", f"{COOKIE}={cookie}")

    class _Stay(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: object, **kwargs: object) -> None:
            return None

    try:
        with urllib.request.build_opener(_Stay).open(request, timeout=20) as reply:
            return int(reply.status), ""
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers.get("Location", "")


def _status(request: urllib.request.Request) -> int:
    try:
        with urllib.request.urlopen(request, timeout=20) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as exc:
        return exc.code


def _cookie(driver: webdriver.Chrome) -> str:
    found = driver.get_cookie(COOKIE)
    assert found is not None and found["httpOnly"] and found["sameSite"] == "Strict"
    return str(found["value"])


def _csrf(driver: webdriver.Chrome) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', driver.page_source)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _start_rollout(stack: Stack, workload: str) -> str:
    """A rollout at its shadow stage, started through the Assessor's API as `tierlift rollout start`."""
    spec = assessor_pb2.RolloutSpec(workload=workload, from_model="gemma-3-270m-cpu", to_model="gpt-5-mini")
    with stack.channel("assessor", stack.keys["admin"]) as channel:
        return str(assessor_pb2_grpc.AssessorStub(channel).StartRollout(spec, timeout=30).rollout_id)


def test_an_admin_sees_a_request_and_its_spend_and_pauses_and_resumes_a_rollout(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    reply = _ask(stack)
    _log_in(browser, stack, stack.keys["admin"])
    assert int(_text(browser, "#requests")) >= 1
    assert stack.keys["admin"] not in browser.page_source  # the key is never rendered back
    time.sleep(0.5)  # Chart.js draws without animation; give the canvas a frame
    IMAGES.mkdir(parents=True, exist_ok=True)
    browser.save_screenshot(str(IMAGES / "console-overview.png"))

    browser.get(f"{stack.console_url}spend?tenant=dev&workload={WORKLOAD}")
    _wait(browser, "#spend-total")
    assert Decimal(_text(browser, "#spend-total")) == Decimal(reply.total_cost_usd)
    assert any(a.model in _text(browser, "#lines") for a in reply.attempts)

    browser.get(f"{stack.console_url}requests")  # search by workload and outcome (htmx swaps the results)
    browser.find_element(By.CSS_SELECTOR, "#search input[name=workload]").send_keys(WORKLOAD)
    browser.find_element(By.CSS_SELECTOR, "#search select[name=outcome] option[value=answered]").click()
    browser.find_element(By.CSS_SELECTOR, "#search button").click()
    WebDriverWait(browser, 15).until(ec.url_contains(f"workload={WORKLOAD}"))  # a shareable URL
    _wait(browser, f"#found a[href$='{reply.request_id}']")
    assert {row.text.split()[3] for row in browser.find_elements(By.CSS_SELECTOR, "#found tr.found")} == {WORKLOAD}
    browser.find_element(By.CSS_SELECTOR, f"#found a[href$='{reply.request_id}']").click()
    _wait(browser, "#attempts")
    assert _text(browser, "#request-id") == reply.request_id
    rows = browser.find_elements(By.CSS_SELECTOR, "#attempts tr.attempt")
    assert len(rows) == len(reply.attempts)
    assert reply.attempts[0].model in rows[0].text
    assert f"{reply.attempts[0].confidence:.3f}" in rows[0].text  # as the router scored it
    assert Decimal(_text(browser, "#request-cost")) == Decimal(reply.total_cost_usd)
    browser.save_screenshot(str(IMAGES / "console-request.png"))

    rollout_id = _start_rollout(stack, "console-canary")
    browser.get(f"{stack.console_url}rollouts?id={rollout_id}")
    _wait(browser, "#status")
    assert _text(browser, "#status") == "running"
    for action, status in (("pause", "paused"), ("resume", "running")):
        browser.find_element(By.ID, "reason").send_keys(f"console test: {action}")
        _submit(browser, browser.find_element(By.ID, action))
        assert _text(browser, "#status") == status
    history = _text(browser, "#history")
    assert "console test: pause" in history and "console test: resume" in history
    with stack.channel("assessor", stack.keys["admin"]) as channel:
        report = assessor_pb2_grpc.AssessorStub(channel).GetRollout(
            assessor_pb2.RolloutQuery(rollout_id=rollout_id), timeout=30
        )
    assert [h.status for h in report.history][-2:] == ["paused", "running"]
    assert (
        key_id_of(stack.keys["admin"]) in report.history[-1].actor
    )  # audited under the admin's own key, as from the CLI


def test_a_viewer_sees_pages_and_every_action_is_refused(stack: Stack, browser: webdriver.Chrome) -> None:
    with stack.channel("ledger") as channel:
        created = ledger_pb2_grpc.LedgerStub(channel).CreateKey(
            ledger_pb2.KeyRequest(tenant="dev", role="viewer", description="console test"), timeout=10
        )
    with stack.channel("ledger", created.secret) as channel:  # Ledger.ListRequests keeps a viewer to its tenant
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        assert {r.tenant for r in ledger.ListRequests(ledger_pb2.RequestQuery(), timeout=10).requests} <= {"dev"}
        with pytest.raises(grpc.RpcError) as refused:
            ledger.ListRequests(ledger_pb2.RequestQuery(tenant="acme"), timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED
    _log_in(browser, stack, created.secret)
    for page, marker in (("", "#requests"), ("spend", "#lines"), ("requests", "#search"), ("quality", "#quality"),
                         ("rollouts", "#note"), ("keys", "#budgets")):  # fmt: skip
        browser.get(f"{stack.console_url}{page}")
        _wait(browser, marker)
        assert not browser.find_elements(By.ID, "spend")  # no money for a viewer
    cookie, csrf = _cookie(browser), _csrf(browser)
    origin = stack.console_url.split("/console")[0]
    actions = ("/rollouts/any-1/pause", "/rollouts/any-1/abort", "/keys/create", f"/keys/{created.key.key_id}/revoke",
               "/budgets/set", "/budgets/delete")  # fmt: skip
    for action in actions:
        assert _post(stack, action, cookie, {"csrf": csrf, "tenant": "dev", "role": "admin"}, origin) == 403, action
    assert _get(stack, "/spend.csv", cookie)[0] == 403  # money


def test_no_forged_or_expired_session_and_no_cross_site_post_gets_through(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    assert _get(stack, "/spend", None) == (303, "/console/login")
    _log_in(browser, stack, stack.keys["admin"])
    cookie, csrf = _cookie(browser), _csrf(browser)
    assert _get(stack, "/spend", cookie)[0] == 200
    tampered = cookie[:20] + ("A" if cookie[20] != "A" else "B") + cookie[21:]
    assert _get(stack, "/spend", tampered)[0] == 303  # the sealed session changed: it does not open
    assert _get(stack, "/spend", "forged.9999999999.AAAA")[0] == 303
    admin = (stack.keys["admin"], "admin", key_id_of(stack.keys["admin"]))
    replica = Sessions(stack.console_secret, 60)  # another replica: the same secret, nothing shared
    assert _get(stack, "/spend", replica.open(*admin)[1])[0] == 200
    expired = replica.open(*admin, now=time.time() - 61)[1]  # rightly sealed, expired
    assert _get(stack, "/spend", expired)[0] == 303

    rollout_id = _start_rollout(stack, "console-guard")
    origin = stack.console_url.split("/console")[0]
    abort = f"/rollouts/{rollout_id}/abort"
    assert _post(stack, abort, cookie, {"csrf": "not-the-token"}, origin) == 403
    assert _post(stack, abort, cookie, {"csrf": csrf}, "https://evil.example") == 403
    assert _post(stack, abort, cookie, {"csrf": csrf}, None) == 403  # neither Origin nor Referer
    # a foreign page in the same browser: SameSite=Strict keeps the cookie home, the console refuses
    form = (f"<form method=post action='{stack.console_url}rollouts/{rollout_id}/abort'>"
            f"<input name=csrf value='{csrf}'></form><script>document.forms[0].submit()</script>")  # fmt: skip
    browser.get("data:text/html," + urllib.parse.quote(form))
    _wait(browser, "#error")
    assert "refused" in _text(browser, "#error") or "no session" in _text(browser, "#error")
    with stack.channel("assessor", stack.keys["admin"]) as channel:
        state = assessor_pb2_grpc.AssessorStub(channel).GetRollout(
            assessor_pb2.RolloutQuery(rollout_id=rollout_id), timeout=30
        )
    assert state.state.status == "running"  # nothing got through


def test_an_admin_creates_and_revokes_a_key_and_sets_and_deletes_a_budget(
    stack: Stack, browser: webdriver.Chrome
) -> None:
    _log_in(browser, stack, stack.keys["admin"])
    browser.get(f"{stack.console_url}keys")
    form = browser.find_element(By.ID, "create-key")
    form.find_element(By.CSS_SELECTOR, "select[name=role] option[value=viewer]").click()
    form.find_element(By.NAME, "tenant").send_keys("dev")
    form.find_element(By.NAME, "description").send_keys("made in the console")
    form.find_element(By.CSS_SELECTOR, "button").click()
    _wait(browser, "#secret")
    secret = _text(browser, "#secret")
    key_id = key_id_of(secret)
    with stack.channel("ledger", secret) as channel:  # the new key works, as a viewer
        assert ledger_pb2_grpc.LedgerStub(channel).ListBudgets(ledger_pb2.BudgetQuery(), timeout=10) is not None
    browser.get(f"{stack.console_url}keys")  # shown once: not on the next page
    assert secret not in browser.page_source
    _submit(browser, browser.find_element(By.ID, f"revoke-{key_id}"))
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        assert next(k for k in ledger.ListKeys(ledger_pb2.KeyQuery(), timeout=10).keys if k.key_id == key_id).revoked_at

    form = browser.find_element(By.ID, "set-budget")
    for name, value in (("tenant", "dev"), ("workload", "console-budget"), ("limit_usd", "2.50")):
        form.find_element(By.NAME, name).send_keys(value)
    _submit(browser, form.find_element(By.CSS_SELECTOR, "button"))
    assert "console-budget" in _text(browser, "#budgets")
    with stack.channel("ledger") as channel:
        ledger = ledger_pb2_grpc.LedgerStub(channel)
        budget = next(b for b in ledger.ListBudgets(ledger_pb2.BudgetQuery(), timeout=10).budgets
                      if b.workload == "console-budget")  # fmt: skip
        assert Decimal(budget.limit_usd) == Decimal("2.50") and budget.period == "day"
        audit = [e.action for e in ledger.ListAudit(ledger_pb2.AuditQuery(limit=50), timeout=10).entries]
        assert {"key.created", "key.revoked", "budget.set"} <= set(audit)  # audited as from the CLI
    row = next(r for r in browser.find_elements(By.CSS_SELECTOR, "#budgets tr") if "console-budget" in r.text)
    _submit(browser, row.find_element(By.CSS_SELECTOR, "button"))
    assert "console-budget" not in _text(browser, "#budgets")


def test_the_console_serves_alone(stack: Stack, tmp_path: Path) -> None:
    """`python -m tierlift.console.main`: the same console on its own port, reading the same ledger;
    given the gateway's secret, a session it opens is honoured by the gateway's console too."""
    port, secret = free_port(), stack.console_secret  # the gateway's secret: this console is a second replica
    env = {**base_env(), "TIERLIFT_HTTP_LISTEN": f"127.0.0.1:{port}", "TIERLIFT_LEDGER_ADDR": stack.addrs["ledger"],
           "TIERLIFT_ASSESSOR_ADDR": stack.addrs["assessor"], "TIERLIFT_CONSOLE_SECRET": secret}  # fmt: skip
    log = (tmp_path / "console.log").open("wb")
    proc = subprocess.Popen([sys.executable, "-m", "tierlift.console.main"], env=env, stdout=log, stderr=log)
    try:
        wait_for_port(port, 30, proc, "console")
        origin = f"http://127.0.0.1:{port}"
        jar = http.cookiejar.CookieJar()
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))
        form = urllib.parse.urlencode({"key": stack.keys["admin"]}).encode()
        login = urllib.request.Request(f"{origin}/console/login", form, headers={"Origin": origin}, method="POST")
        with opener.open(login, timeout=20) as page:  # redirected to the overview
            assert page.url == f"{origin}/console/" and 'id="requests"' in page.read().decode()
        with opener.open(f"{origin}/", timeout=20) as page:
            assert page.url == f"{origin}/console/"
        [cookie] = [c.value for c in jar if c.name == COOKIE and c.value]
        assert _get(stack, "/spend", cookie)[0] == 200  # the gateway's console, with the same secret, opens it
    finally:
        proc.terminate()
        assert proc.wait(20) == 0
