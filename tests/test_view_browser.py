"""The viewer's page in a real headless Chromium (Debian's, driven by Playwright).

Opens the page, filters, sorts by a metric, opens a pair, moves the slider,
zooms, steps with the keyboard and reloads a shared URL. A screenshot of each
view is saved under $GGT_TEST_ARTIFACTS (default: test-artifacts/).

Without /usr/bin/chromium the test is skipped, unless GGT_REQUIRE_BROWSER=1
(CI sets it, after installing chromium), where it fails instead.
"""

from __future__ import annotations

import os
import re
import shutil
import urllib.parse

import pytest
from viewserver import get_json, serving

from ggt_dataset.view.viewer import Viewer

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--no-first-run", "--disable-sync"]
ARTIFACTS = os.environ.get("GGT_TEST_ARTIFACTS", os.path.join(os.path.dirname(__file__), "..", "test-artifacts"))

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        if os.environ.get("GGT_REQUIRE_BROWSER"):
            pytest.fail(f"GGT_REQUIRE_BROWSER is set but {CHROMIUM} is missing (apt-get install chromium)")
        pytest.skip("no chromium here (apt-get install chromium); CI installs it")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def site(eval_set, identity_preds, tmp_path_factory):
    from ggt_dataset.eval import score

    out = str(tmp_path_factory.mktemp("browser-report") / "identity")
    score(identity_preds, eval_set, out=out, metrics=["psnr"])
    with serving(Viewer.open(eval_set, report=out)) as url:
        yield url


def shot(page, name: str) -> None:
    os.makedirs(ARTIFACTS, exist_ok=True)
    page.screenshot(path=os.path.join(ARTIFACTS, f"view-{name}.png"))


def params(page) -> dict[str, str]:
    return dict(urllib.parse.parse_qsl(urllib.parse.urlsplit(page.url).query))


def test_browse_filter_sort_open_slide_zoom(browser, site):
    # bypass_csp: the page forbids eval(); Playwright's wait_for_function needs it.
    page = browser.new_page(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(site)
    page.wait_for_selector(".card img")
    # A first visit with a report opens on the scored split, worst first, and says so in the URL.
    assert params(page) == {"split": "test", "sort": "psnr"} and page.input_value("#sort") == "psnr"
    _, truth = get_json(f"{site}/api/rows?split=test&sort=psnr&per=200")
    shown = [float(re.search(r"psnr ↑ ([-\d.]+)", t).group(1))
             for t in page.locator(".card .cap").all_inner_texts()]
    assert len(shown) == truth["total"] == 18 and shown == sorted(shown)
    assert shown[0] == pytest.approx(truth["rows"][0]["values"]["psnr"], abs=1e-3)
    assert page.locator(".card >> nth=0").locator(".thumb .role").all_inner_texts() == ["LQ", "output", "HQ"]
    shot(page, "grid")

    # Filter: the category chip; the URL carries it beside the split.
    page.click("#labels .group[data-column=category] .chip[data-value=rain]")
    page.wait_for_function("document.body.dataset.loaded.includes('category=rain')")
    assert params(page)["category"] == "rain" and params(page)["split"] == "test"
    cats = page.locator(".card .cap").all_inner_texts()
    assert len(cats) == 3 and all("rain · test" in c for c in cats)
    page.click("#labels .group[data-column=category] .chip[data-value=rain]")     # category off again
    page.wait_for_function("!document.body.dataset.loaded.includes('category=')")

    # The sort menu: dataset order, then worst first again.
    page.select_option("#sort", "")
    page.wait_for_function("!document.body.dataset.loaded.includes('sort=')")
    page.select_option("#sort", "psnr")
    page.wait_for_function("document.body.dataset.loaded.includes('sort=psnr')")
    assert len(page.locator(".card").all()) == 18
    shot(page, "sorted")

    # Open the worst pair: the slider view shows the prediction against HQ.
    page.click(".card >> nth=0")
    first = truth["rows"][0]["key"]
    page.wait_for_function(f"document.body.dataset.pair === {first!r}")
    assert params(page)["pair"] == first
    for sel in ("#img-left", "#img-right"):
        assert page.eval_on_selector(sel, "i => i.complete && i.naturalWidth") > 0
    assert page.input_value("#left") == "pred" and page.input_value("#right") == "hq"
    assert page.text_content("#tag-left") == "output" and page.text_content("#tag-right") == "HQ"
    assert page.locator("#meta th").first.text_content() == "psnr ↑"      # the scores lead the table

    # Move the slider: the left image is clipped at the new position.
    page.fill("#slider", "20")
    page.dispatch_event("#slider", "input")
    assert page.eval_on_selector("#img-left", "i => i.style.clipPath") == "inset(0px 80% 0px 0px)"
    page.keyboard.press("]")
    assert page.evaluate("document.body.dataset.slider") == "25"

    # Zoom with the wheel over the image, then side by side: every pane has the same transform.
    before = float(page.evaluate("document.body.dataset.zoom"))
    box = page.locator("#compare").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.wheel(0, -400)
    page.wait_for_function(f"Number(document.body.dataset.zoom) > {before}")
    zoomed = page.evaluate("document.body.dataset.zoom")
    page.keyboard.press("Control+=")                 # the browser's shortcut, not ours
    assert page.evaluate("document.body.dataset.zoom") == zoomed
    assert "v=" in page.eval_on_selector("#img-left", "i => i.src")   # cache-busting version token
    page.keyboard.press("s")
    page.wait_for_function("document.querySelectorAll('#side .pane img').length === 3")
    page.wait_for_function("[...document.querySelectorAll('#side .pane img')].every(i => i.complete)")
    assert page.evaluate("document.body.dataset.zoom") == zoomed          # switching mode keeps the zoom
    page.keyboard.press("+")
    transforms = page.eval_on_selector_all("#side .frame", "fs => fs.map(f => f.style.transform)")
    assert len(transforms) == 3 and len(set(transforms)) == 1 and "scale(" in transforms[0]
    shot(page, "detail-side")
    page.keyboard.press("s")
    page.wait_for_function(f"document.body.dataset.pair === {first!r} && !document.getElementById('compare').hidden")
    shot(page, "detail-slider")

    # Keyboard: next pair in the sorted list, then Esc back to the grid.
    page.keyboard.press("ArrowRight")
    second = truth["rows"][1]["key"]
    page.wait_for_function(f"document.body.dataset.pair === {second!r}")
    assert params(page)["pair"] == second
    shared = page.url
    for _ in range(12):                              # Tab stays inside the open pair
        page.keyboard.press("Tab")
        assert page.evaluate("document.getElementById('detail').contains(document.activeElement)")
    page.keyboard.press("Escape")
    page.wait_for_function("document.getElementById('detail').hidden")
    assert "pair" not in params(page)

    # The shared URL opens the same pair, filters and sort in a fresh page.
    other = browser.new_page(viewport={"width": 1280, "height": 860}, bypass_csp=True)
    other.goto(shared)
    other.wait_for_function(f"document.body.dataset.pair === {second!r}")
    assert other.input_value("#sort") == "psnr"
    assert other.text_content("#position") == "2 of 18"
    other.close()
    assert not errors, errors
    page.close()


def test_bad_filter_error_is_next_to_its_input(browser, site):
    page = browser.new_page(bypass_csp=True)
    page.goto(f"{site}/?where=nonsense")
    page.wait_for_selector(".field-error[data-for=where]:not([hidden])")
    assert "nonsense" in page.text_content(".field-error[data-for=where]")
    assert page.get_attribute("#where", "aria-invalid") == "true" and page.is_hidden("#error")
    shot(page, "bad-where")
    page.fill("#where", "psnr>0")                                  # fixed: the message goes
    page.press("#where", "Enter")
    # loaded is unset until the first good answer: a predicate that throws would end the wait
    page.wait_for_function("(document.body.dataset.loaded || '').includes('where=psnr')")
    assert page.is_hidden(".field-error[data-for=where]") and page.get_attribute("#where", "aria-invalid") is None
    page.goto(f"{site}/?category=nowhere")
    page.wait_for_selector(".group[data-column=category] .field-error:not([hidden])")
    assert "nowhere" in page.text_content(".group[data-column=category] .field-error")
    page.close()


def test_stretched_aspect_is_said(browser, odd_build):
    with serving(Viewer.open(odd_build)) as url:
        page = browser.new_page(bypass_csp=True)
        page.goto(f"{url}/?pair=test:rain/a")
        page.wait_for_function("document.body.dataset.pair === 'test:rain/a'")
        assert "LQ 64×32 is drawn stretched into HQ's 48×48 box" in page.text_content("#meta")
        page.goto(f"{url}/?pair=test:rain/b")
        page.wait_for_function("document.body.dataset.pair === 'test:rain/b'")
        assert "stretched" not in page.text_content("#meta")
        page.close()


@pytest.fixture(scope="module")
def compared(eval_set, two_reports):
    with serving(Viewer.open(eval_set, report=two_reports)) as url:
        yield url


def test_two_submissions_side_by_side(browser, compared):
    """LQ | identity | classical | HQ in the grid and the detail, one zoom for all, sorted by margin."""
    margin = "psnr:identity-vs-classical"
    page = browser.new_page(viewport={"width": 1400, "height": 900}, bypass_csp=True)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(compared)
    page.wait_for_selector(".card img")
    # The first view: the pairs where identity beats classical most, and the menu says so.
    assert params(page) == {"split": "test", "sort": f"-{margin}"}
    assert page.eval_on_selector("#sort", "s => s.selectedOptions[0].text") == "psnr: identity beats classical most"
    assert page.locator(".card >> nth=0").locator(".thumb .role").all_inner_texts() == [
        "LQ", "identity", "classical", "HQ"]
    _, truth = get_json(f"{compared}/api/rows?split=test&sort=-{margin}&per=200")
    shown = [float(re.search(rf"{re.escape(margin)} ↑ ([-\d.]+)", t).group(1))
             for t in page.locator(".card .cap").all_inner_texts()]
    assert len(shown) == 18 and shown == sorted(shown, reverse=True)
    assert shown[0] == pytest.approx(truth["rows"][0]["values"][margin], abs=1e-3)
    page.wait_for_function("[...document.querySelectorAll('.card img')].slice(0, 8).every(i => i.complete && i.naturalWidth)")
    shot(page, "compare-grid")

    # The other way round: where classical beats identity most.
    page.select_option("#sort", margin)
    page.wait_for_function(f"document.body.dataset.loaded.includes('sort={urllib.parse.quote(margin)}')")
    assert page.eval_on_selector("#sort", "s => s.selectedOptions[0].text") == "psnr: classical beats identity most"
    first = page.locator(".card >> nth=0").get_attribute("data-key")
    assert first == truth["rows"][-1]["key"]

    # The detail opens side by side: four panes, one transform after zooming, a margin in the table.
    page.click(".card >> nth=0")
    page.wait_for_function(f"document.body.dataset.pair === {first!r}")
    page.wait_for_function("[...document.querySelectorAll('#side .pane img')].every(i => i.complete && i.naturalWidth)")
    assert page.locator("#side .pane .tag").all_inner_texts() == ["LQ", "identity", "classical", "HQ"]
    assert page.input_value("#mode") == "side" and "mode" not in params(page)
    page.keyboard.press("+")
    box = page.locator("#side .pane >> nth=2").bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    page.mouse.down()
    page.mouse.move(box["x"] + box["width"] / 2 + 30, box["y"] + box["height"] / 2 + 10)
    page.mouse.up()
    transforms = page.eval_on_selector_all("#side .frame", "fs => fs.map(f => f.style.transform)")
    assert len(transforms) == 4 and len(set(transforms)) == 1 and "scale(" in transforms[0]
    assert page.locator("#meta th").first.text_content() == "psnr: identity over classical ↑"
    shot(page, "compare-detail-side")

    # The slider: identity against classical.
    page.keyboard.press("s")
    page.wait_for_function("!document.getElementById('compare').hidden")
    assert params(page)["mode"] == "slider"
    assert (page.input_value("#left"), page.input_value("#right")) == ("pred:identity", "pred:classical")
    assert (page.text_content("#tag-left"), page.text_content("#tag-right")) == ("identity", "classical")
    shot(page, "compare-detail-slider")
    assert not errors, errors
    page.close()


def test_a_label_is_shown_as_text(browser, eval_set, two_reports, tmp_path):
    """A report's label is the submitter's text: the page shows it, never runs it."""
    import json

    label = '<img src=x onerror="document.body.dataset.owned=1">'
    copies = []
    for i, report in enumerate(two_reports):
        copy = tmp_path / f"r{i}"
        shutil.copytree(report, copy)
        s = json.loads((copy / "summary.json").read_text())
        s["label"] = f"{label}{i}"
        (copy / "summary.json").write_text(json.dumps(s))
        copies.append(str(copy))
    with serving(Viewer.open(eval_set, report=copies)) as url:
        page = browser.new_page(bypass_csp=True)
        page.goto(url)
        page.wait_for_selector(".card img")
        assert page.locator(".card >> nth=0").locator(".thumb .role").all_inner_texts()[1] == f"{label}0"
        page.click(".card >> nth=0")
        page.wait_for_function("document.querySelectorAll('#side .pane').length === 4")
        assert page.locator("#side .pane .tag").all_inner_texts()[1:3] == [f"{label}0", f"{label}1"]
        assert label + "0" in page.eval_on_selector("#sort", "s => s.options[1].text")
        assert page.evaluate("document.body.dataset.owned") is None
        assert page.evaluate("document.querySelectorAll('img[src=x]').length") == 0
        page.close()
