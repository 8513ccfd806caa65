"""The dashboard and the workbench in a real headless Chromium (Debian's `chromium` and
`chromium-driver`, driven by Selenium). Screenshots go to $STRATA_ARTIFACTS (default:
target/test-artifacts/pages)."""

import json
import os
import random
import re
import shutil
import subprocess
import threading
import time
import urllib.request

import pytest

from conftest import ROOT, cp, start_daemon, stop, strata_bin

webdriver = pytest.importorskip("selenium.webdriver")
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.support.ui import Select, WebDriverWait  # noqa: E402

ARTIFACTS = os.environ.get("STRATA_ARTIFACTS") or os.path.join(ROOT, "target", "test-artifacts", "pages")


def chromium():
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (browser and driver):
        if os.environ.get("STRATA_REQUIRE_CHROMIUM") == "1":
            pytest.fail("chromium and chromedriver are required (apt-get install chromium chromium-driver)")
        pytest.skip("no chromium/chromedriver")
    opts = webdriver.ChromeOptions()
    opts.binary_location = browser
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
              "--window-size=1400,2200"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(driver), options=opts)


@pytest.fixture
def browser():
    d = chromium()
    d.set_page_load_timeout(30)
    yield d
    d.quit()


def shot(d, name):
    os.makedirs(ARTIFACTS, exist_ok=True)
    d.save_screenshot(os.path.join(ARTIFACTS, name + ".png"))


def wait(d, cond, secs=20, what="condition"):
    # The pages redraw parts with innerHTML: an element read mid-redraw is stale; read again.
    ignored = (NoSuchElementException, StaleElementReferenceException)
    return WebDriverWait(d, secs, poll_frequency=0.1, ignored_exceptions=ignored).until(
        lambda _: cond(), message=what
    )


def _fresh(read):
    """Reads an element again when a redraw replaced it between finding and reading."""
    for _ in range(50):
        try:
            return read()
        except StaleElementReferenceException:
            time.sleep(0.05)
    return read()


def text(d, id_):
    return _fresh(lambda: d.find_element(By.ID, id_).text)


def html(d, id_):
    return _fresh(lambda: d.find_element(By.ID, id_).get_attribute("innerHTML"))


def test_workbench_lock_a_prediction_move_sliders_choose_a_persona(s3, tmp_path, browser):
    p, base = start_daemon(s3, tmp_path / "cache")
    d = browser
    try:
        d.get(base + "/workbench")
        wait(d, lambda: text(d, "util") not in ("", "–"), what="the first plan")
        util0 = text(d, "util")
        sat0 = html(d, "saturation")
        assert sat0.startswith("<svg")
        # Part 1: answer the question and guess the factor, lock, then see the planner's
        # answers next to them. An answer must be chosen before it is locked.
        box = d.find_element(By.ID, "prediction")
        box.clear()
        box.send_keys("3")
        d.find_element(By.ID, "lock").click()
        wait(d, lambda: "choose an answer" in text(d, "error"), what="the refusal")
        assert box.is_enabled()
        assert "what limits training" in text(d, "q-audit")
        Select(d.find_element(By.ID, "choice-audit")).select_by_visible_text("storage")
        d.find_element(By.ID, "lock").click()
        assert not box.is_enabled()
        assert not d.find_element(By.ID, "choice-audit").is_enabled()
        wait(d, lambda: "You predicted 3×" in text(d, "audit-result"), what="the audit answer")
        assert text(d, "planner-audit") == "storage", text(d, "audit-result")
        assert "✓" in text(d, "audit-result")
        factor0 = text(d, "wall-factor")
        assert factor0.endswith("×")
        # Part 2's question, locked with the answer the planner will not give for ten epochs.
        assert "NVMe cache" in text(d, "q-sizing")
        Select(d.find_element(By.ID, "choice-sizing")).select_by_visible_text("no")
        d.find_element(By.ID, "lock-sizing").click()
        wait(d, lambda: d.find_elements(By.ID, "planner-sizing"), what="the sizing answer")
        assert text(d, "planner-sizing") == "yes"
        assert "✗" in text(d, "answer-sizing") and "epoch 1" in text(d, "answer-sizing")
        assert text(d, "iterations").startswith("Iterations: 0")
        # Move the download slider to its minimum with the keyboard: the plot and the
        # predicted utilization change.
        d.find_element(By.ID, "download").send_keys(Keys.HOME)
        wait(d, lambda: text(d, "util") != util0, what="utilization after the slider")
        wait(d, lambda: html(d, "saturation") != sat0,
             what="the saturation plot after the slider")
        assert "low" in _fresh(lambda: d.find_element(By.ID, "util").get_attribute("class"))
        wait(d, lambda: text(d, "iterations").startswith("Iterations: 1"), what="one iteration")
        # The I/O wall changes with the layout (one request per raw sample).
        Select(d.find_element(By.ID, "layout")).select_by_value("raw")
        wait(d, lambda: text(d, "wall-factor") != factor0 or
             "raw" in text(d, "plan-text"), what="the audit after the layout")
        shot(d, "workbench-sliders")
        # The checkpoint wall: a longer interval changes the waste, the Young-Daly plot and
        # the question (10 minutes against the interval in use).
        Select(d.find_element(By.ID, "choice-checkpoint")).select_by_visible_text("decrease")
        d.find_element(By.ID, "lock-checkpoint").click()
        wait(d, lambda: d.find_elements(By.ID, "planner-checkpoint"), what="the checkpoint answer")
        assert text(d, "planner-checkpoint") in ("increase", "decrease")
        q0 = text(d, "q-checkpoint")
        waste0 = text(d, "interval-waste")
        yd0 = html(d, "young-daly")
        d.find_element(By.ID, "interval").send_keys(Keys.END)
        wait(d, lambda: text(d, "interval-waste") != waste0, what="waste after the interval")
        assert html(d, "young-daly") != yd0
        wait(d, lambda: text(d, "q-checkpoint") != q0, what="the question after the interval")
        # With the interval at its longest (100 min... 10^4 min), checkpointing every 10
        # minutes instead saves time.
        wait(d, lambda: text(d, "planner-checkpoint") == "decrease", what="the answer after the interval")
        Select(d.find_element(By.ID, "write-bw")).select_by_visible_text("10 GB/s")
        storm0 = text(d, "storm")
        wait(d, lambda: text(d, "storm") != storm0, what="the storm after the write bandwidth")
        # Math peek.
        d.find_element(By.CSS_SELECTOR, "#math summary").click()
        assert "√(2δM)" in text(d, "math-body")
        # The ledger: three answers against the planner's, and a command that plans the same
        # on the command line as the page shows.
        rows = d.find_elements(By.CSS_SELECTOR, "#ledger tr.ledger-row")
        assert len(rows) == 3
        ledger = text(d, "ledger")
        assert ledger.count("✓") == 2 and ledger.count("✗") == 1, ledger
        assert text(d, "strategy-choice")
        util = text(d, "ledger-util")
        command = text(d, "command")
        assert "--download" in command and "--layout raw" in command, command
        scenario = _fresh(lambda: d.find_element(By.ID, "ledger-scenario").get_attribute("textContent"))
        work = tmp_path / "ledger"
        work.mkdir()
        (work / "scenario.toml").write_text(scenario)
        shell = command.replace("strata plan", '"$STRATA" plan', 1)
        out = subprocess.run(["bash", "-c", shell], cwd=work, capture_output=True, text=True,
                             env={**os.environ, "STRATA": strata_bin()}, timeout=120)
        assert out.returncode == 0, out.stderr
        m = re.search(r"predicted accelerator utilization ([0-9.]+%)", out.stdout)
        assert m and m.group(1) == util, (m and m.group(1), util, command)
        shot(d, "workbench-ledger")
        # Personas: Cloud Titan is a scenario (the plan reloads), Mobile Nomad a budget.
        Select(d.find_element(By.ID, "persona")).select_by_value("cloud-titan")
        wait(d, lambda: "Cloud Titan" in text(d, "persona-title"), what="the persona")
        wait(d, lambda: "Titan" in text(d, "scenario-name") or "1024" in text(d, "plan-text"),
             what="the persona's scenario")
        assert d.find_elements(By.CSS_SELECTOR, "#persona-answer li")
        shot(d, "workbench-cloud-titan")
        Select(d.find_element(By.ID, "persona")).select_by_value("mobile-nomad")
        wait(d, lambda: "Nomad" in text(d, "persona-title"), what="mobile nomad")
        assert len(d.find_elements(By.CSS_SELECTOR, "#persona-findings li")) >= 2
        shot(d, "workbench-mobile-nomad")
        # A real probe of this node.
        d.find_element(By.ID, "probe").click()
        wait(d, lambda: d.find_elements(By.ID, "probe-table") and text(d, "probe-table"), secs=90,
             what="the probe's table")
        assert html(d, "probe-plot").startswith("<svg")
        shot(d, "workbench-probe")
        assert text(d, "error") == ""
    finally:
        stop(p)


def test_dashboard_shows_rates_change_while_data_flows(s3_link, tmp_path, browser):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(6):
        (src / f"f{i}.bin").write_bytes(os.urandom(24 << 20))
    cp(s3_link, str(src) + "/", "s3://strata-test/data/dash/")
    p, base = start_daemon(s3_link, tmp_path / "cache")
    boto3 = pytest.importorskip("boto3")
    from botocore.config import Config

    c = boto3.client("s3", endpoint_url=base, aws_access_key_id="x", aws_secret_access_key="x",
                     region_name="us-east-1", config=Config(s3={"addressing_style": "path"}))
    stop_flag = threading.Event()
    errors = []

    def load():
        rng = random.Random(1)
        while not stop_flag.is_set():
            try:
                k = f"dash/f{rng.randrange(6)}.bin"
                c.get_object(Bucket="train", Key=k)["Body"].read()
            except Exception as e:  # noqa: BLE001 - reported below
                errors.append(e)
                return

    def report(done):
        body = json.dumps({"kind": "train", "wait_secs": 2.0, "compute_secs": 6.0,
                           "drain_done": done, "drain_total": 100, "requests": 130,
                           "bytes_read": 130 << 23}).encode()
        urllib.request.urlopen(urllib.request.Request(base + "/api/jobs/rank0", data=body,
                                                      method="POST"))

    d = browser
    threads = [threading.Thread(target=load) for _ in range(3)]
    try:
        report(10)
        d.get(base + "/dashboard")
        for t in threads:
            t.start()
        wait(d, lambda: text(d, "status").startswith("live"), what="the dashboard going live")
        seen = set()
        nonzero = False
        deadline = time.time() + 20
        while time.time() < deadline and not (len(seen) >= 3 and nonzero):
            values = (text(d, "rate-upstream"), text(d, "rate-nvme"), text(d, "rate-dram"))
            seen.add(values)
            nonzero |= any(not v.startswith("0 B") for v in values)
            time.sleep(0.5)
        assert nonzero, seen
        assert len(seen) >= 3, f"the rates did not change: {seen}"
        assert d.find_element(By.ID, "flow-upstream") is not None
        wait(d, lambda: d.find_elements(By.CSS_SELECTOR, "tr.job"), what="the job's waterfall")
        assert "AU 75.0%" in text(d, "jobs")
        assert "130 reads, 1.02 GiB" in text(d, "jobs"), text(d, "jobs")
        report(60)
        wait(d, lambda: "60 B of 100 B" in text(d, "drains"), what="the drain's progress")
        shot(d, "dashboard")
    finally:
        stop_flag.set()
        for t in threads:
            if t.is_alive():
                t.join()
        stop(p)
    assert not errors, errors


def test_pages_with_a_token(s3, tmp_path, browser):
    token = "page-token-0123456789abcdef"
    p, base = start_daemon(s3, tmp_path / "cache", token=token)
    d = browser
    try:
        d.get(base + "/workbench")
        assert "token" in d.find_element(By.TAG_NAME, "body").text
        d.get(base + "/workbench?token=" + token)
        wait(d, lambda: text(d, "util") not in ("", "–"), what="the plan with a token")
        assert "token" not in d.current_url, "the token is taken out of the address bar"
    finally:
        stop(p)
