"""The `charrnn viz` page in a real browser: headless Chromium loads it from disk with the network off.
No console errors, hover and keyboard focus show the model's guesses, a unit recolours the text, the page's
own correlation ranking equals the Python one, and a screenshot is not blank. Never skipped: CI installs
Chromium (`.ci/run`); without it these tests fail and say how to install it."""

import io

import numpy as np
import pytest
from browser import open_page, start_chromium
from selenium.webdriver.common.action_chains import ActionChains
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select
from tiny_models import random_model

from charrnn.viz import decode_payload, pattern_mask, rank_units, to_payload, visualise
from charrnn.viz_page import write_page

CHARS = 'abcdefgh "\n'
TEXT = ('ab "cad" fe\nhg "bead" ca\n"gab" dd\nface "hh" b\n' * 6)[:-1]
QUOTES = '"[^"\\n]*"'


@pytest.fixture(scope="module")
def chromium(tmp_path_factory):
    driver = start_chromium(tmp_path_factory.mktemp("chromium-profile"))
    yield driver
    driver.quit()


def make_page(directory, text=TEXT, chars=CHARS, **options):
    model = random_model(chars, hidden=6, layers=2, seed=7)
    vis = visualise(model, text, max_chars=options.pop("max_chars", 20_000))
    payload = to_payload(vis, model, "quotes.txt", "m.npz", **options)
    path = directory / "page.html"
    write_page(path, payload)
    return path, payload, vis


@pytest.fixture(scope="module")
def page(tmp_path_factory):
    return make_page(tmp_path_factory.mktemp("page"))


def severe(chromium):
    """Console errors, and any error the page caught itself while loading (it shows those in its note)."""
    caught = chromium.execute_script("return window.charrnnViz && window.charrnnViz.error")
    return [entry for entry in chromium.get_log("browser") if entry["level"] == "SEVERE"] + ([caught] if caught else [])


def span(chromium, i):
    return chromium.execute_script("return document.querySelectorAll('#text span')[arguments[0]]", i)


def tip_rows(chromium):
    return chromium.execute_script(
        "return [...document.querySelectorAll('#tip tr')].map(r => [r.cells[0].textContent, "
        "Number(r.cells[1].textContent), r.className])"
    )


def backgrounds(chromium):
    return chromium.execute_script(
        "return [...document.querySelectorAll('#text span')].map(s => getComputedStyle(s).backgroundColor)"
    )


def rgb(css):
    return [int(x) for x in css[css.index("(") + 1 : css.index(")")].split(",")[:3]]


def quantised_activations(payload):
    """(L, N, H) float64 of the integers the page holds (correlation does not depend on the scale)."""
    return decode_payload(payload)["q"].transpose(0, 2, 1).astype(np.float64)


def test_loads_offline_with_no_console_errors(chromium, page):
    path, payload, vis = page
    open_page(chromium, path)
    assert severe(chromium) == []
    assert chromium.execute_script("return performance.getEntriesByType('resource').length") == 0
    assert chromium.execute_script("return window.charrnnViz.error") is None
    assert chromium.execute_script("return document.querySelectorAll('#text span').length") == len(TEXT)
    assert chromium.execute_script("return document.getElementById('text').textContent") == TEXT
    meta = chromium.find_element(By.ID, "meta").text
    assert "quotes.txt under m.npz" in meta and f"{payload['bits_per_char']:.3f} bits/char" in meta
    assert not chromium.find_element(By.ID, "note").is_displayed()


def test_hover_shows_the_top_guesses_and_the_characters_probability(chromium, page):
    path, payload, vis = page
    open_page(chromium, path)
    i = TEXT.index('"') + 1  # the character after an opening quote
    ActionChains(chromium).move_to_element(span(chromium, i)).perform()
    tip = chromium.find_element(By.ID, "tip")
    assert tip.is_displayed() and chromium.execute_script("return charrnnViz.tipIndex") == i
    arrays = decode_payload(payload)
    rows = tip_rows(chromium)
    shown = {"\n": "\u21b5", " ": "\u2423"}
    assert [r[0] for r in rows] == [shown.get(payload["vocab"][k], payload["vocab"][k]) for k in vis.top_ids[i]]
    np.testing.assert_allclose([r[1] for r in rows], arrays["top_probs"][i - 1], atol=6e-4)
    assert [r[2] == "hit" for r in rows] == [payload["vocab"][k] == TEXT[i] for k in vis.top_ids[i]]
    bits = arrays["surprisal_bits"][i - 1]  # as the page has it: in millibits
    hits = [k for k, char in enumerate(vis.top_ids[i]) if payload["vocab"][char] == TEXT[i]]
    p = arrays["top_probs"][i - 1][hits[0]] if hits else 2**-bits  # the finer figure when there is one
    assert f"p = {p:.3f}" in tip.text and f"{bits:.2f} bits" in tip.text
    ActionChains(chromium).move_to_element(span(chromium, 0)).perform()
    assert "first character" in tip.text and tip_rows(chromium) == []
    assert severe(chromium) == []


def test_keyboard_focus_shows_the_guesses_and_arrows_move(chromium, page):
    path, payload, vis = page
    open_page(chromium, path)
    chromium.execute_script("document.getElementById('use-selection').focus()")
    ActionChains(chromium).send_keys(Keys.TAB).perform()  # one tab stop into the text
    active = "return document.activeElement._i"
    assert chromium.execute_script(active) == 1 and chromium.execute_script("return charrnnViz.tipIndex") == 1
    assert chromium.find_element(By.ID, "tip").is_displayed() and len(tip_rows(chromium)) == payload["top"]
    ActionChains(chromium).send_keys(Keys.ARROW_RIGHT, Keys.ARROW_RIGHT).perform()
    assert chromium.execute_script(active) == 3 and chromium.execute_script("return charrnnViz.tipIndex") == 3
    ActionChains(chromium).send_keys(Keys.ARROW_DOWN).perform()
    assert chromium.execute_script(active) == TEXT.index("\n") + 1 + 3  # same column, next line
    ActionChains(chromium).send_keys(Keys.END).perform()
    assert TEXT[chromium.execute_script(active)] == "\n"
    ActionChains(chromium).send_keys(Keys.ESCAPE).perform()
    assert not chromium.find_element(By.ID, "tip").is_displayed()
    assert severe(chromium) == []


def test_choosing_a_unit_recolours_the_text(chromium, page):
    path, payload, vis = page
    open_page(chromium, path)
    before = backgrounds(chromium)
    values = decode_payload(payload)["activations"][1]  # layer 2: (N, H)
    chosen = int(np.argmax(np.minimum(values.max(axis=0), -values.min(axis=0))))  # a unit driven both ways
    Select(chromium.find_element(By.ID, "layer")).select_by_value("1")  # layer 2 (0-based value)
    unit = chromium.find_element(By.ID, "unit")
    unit.clear()
    unit.send_keys(str(chosen), Keys.TAB)
    assert chromium.execute_script("return [charrnnViz.state.mode, charrnnViz.state.layer, charrnnViz.state.unit]") \
        == ["unit", 1, chosen]  # fmt: skip
    after = backgrounds(chromium)
    assert after != before and f"layer 2, unit {chosen}" in chromium.find_element(By.ID, "legend").text
    values = values[:, chosen]
    hot, cold = int(np.argmax(values)), int(np.argmin(values))
    assert values[hot] > 0.2 and values[cold] < -0.2, "the random model should drive some unit both ways"
    assert rgb(after[hot])[0] > rgb(after[hot])[2] and rgb(after[cold])[2] > rgb(after[cold])[0]  # red vs blue
    ActionChains(chromium).move_to_element(span(chromium, hot)).perform()
    assert f"layer 2, unit {chosen}: {values[hot]:.3f}" in chromium.find_element(By.ID, "tip").text
    Select(chromium.find_element(By.ID, "mode")).select_by_value("surprisal")
    assert backgrounds(chromium) == before
    assert severe(chromium) == []


def test_pattern_ranking_equals_the_python_one(chromium, page):
    path, payload, vis = page
    open_page(chromium, path)
    box = chromium.find_element(By.ID, "pattern")
    box.send_keys(QUOTES)
    chromium.find_element(By.ID, "rank").click()
    ranking = chromium.execute_script("return charrnnViz.ranking")
    mask = pattern_mask(TEXT, QUOTES)
    exact = {(u.layer, u.unit): u.correlation for u in rank_units(vis.activations, mask, top=12)}
    quantised = rank_units(quantised_activations(payload), mask, top=10)
    assert [(layer + 1, unit) for layer, unit, _ in ranking] == [(u.layer, u.unit) for u in quantised]
    np.testing.assert_allclose([c for _, _, c in ranking], [u.correlation for u in quantised], atol=1e-9)
    for layer, unit, corr in ranking:  # quantisation costs the correlations almost nothing
        assert corr == pytest.approx(exact[(layer + 1, unit)], abs=0.01)
    assert chromium.execute_script("return document.querySelectorAll('#text span.match').length") == mask.sum()
    assert f"{mask.sum()} of {len(TEXT)} characters" in chromium.find_element(By.ID, "pattern-status").text
    chromium.find_element(By.CSS_SELECTOR, "#ranking li:nth-child(2) button").click()
    layer, unit, _ = ranking[1]
    assert chromium.execute_script("return [charrnnViz.state.layer, charrnnViz.state.unit]") == [layer, unit]
    box.clear()
    box.send_keys("(unclosed", Keys.ENTER)
    status = chromium.find_element(By.ID, "pattern-status")
    assert "not a valid pattern" in status.text and "error" in status.get_attribute("class")
    assert severe(chromium) == []


def test_selected_range_ranks_units(chromium, page):
    path, payload, vis = page
    open_page(chromium, path)
    chromium.execute_script("""
        const spans = document.querySelectorAll('#text span'), range = document.createRange();
        range.setStart(spans[10].firstChild, 0);
        range.setEnd(spans[19].firstChild, 1);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
    """)  # fmt: skip
    chromium.find_element(By.ID, "use-selection").click()
    assert "characters 10\u201319" in chromium.find_element(By.ID, "pattern-status").text
    mask = np.zeros(len(TEXT), bool)
    mask[10:20] = True
    expected = rank_units(quantised_activations(payload), mask, top=10)
    ranking = chromium.execute_script("return charrnnViz.ranking")
    assert [(layer + 1, unit) for layer, unit, _ in ranking] == [(u.layer, u.unit) for u in expected]
    assert severe(chromium) == []


def test_screenshot_is_not_blank(chromium, page, tmp_path):
    from PIL import Image

    path, payload, vis = page
    open_page(chromium, path)
    image = Image.open(io.BytesIO(chromium.get_screenshot_as_png())).convert("RGB")
    pixels = np.asarray(image).reshape(-1, 3)
    assert image.size[0] >= 800 and image.size[1] >= 600
    assert len(np.unique(pixels, axis=0)) > 50, "too few colours: the page did not render"
    assert (pixels.min(axis=1) < 200).mean() > 0.02, "almost all white"
    shaded = [rgb(c) for c in backgrounds(chromium)[1:]]
    assert sum(c != [255, 255, 255] for c in shaded) > len(shaded) // 2, "characters are not shaded by surprisal"


def test_a_given_pattern_opens_on_its_best_unit(chromium, tmp_path):
    path, payload, vis = make_page(tmp_path, pattern=QUOTES, top_units=5)
    open_page(chromium, path)
    best = payload["pattern"]["ranking"][0]
    assert chromium.execute_script("return [charrnnViz.state.mode, charrnnViz.state.layer, charrnnViz.state.unit]") \
        == ["unit", best["layer"] - 1, best["unit"]]  # fmt: skip
    assert chromium.find_element(By.ID, "pattern").get_attribute("value") == QUOTES
    assert len(chromium.find_elements(By.CSS_SELECTOR, "#ranking li")) == 5
    assert severe(chromium) == []


@pytest.mark.parametrize(("options", "flag"), [({"max_chars": 50}, "--max-chars"), ({"max_bytes": 6000}, "--max-mb")])
def test_cut_text_has_a_note(chromium, tmp_path, options, flag):
    path, payload, vis = make_page(tmp_path, **options)
    assert payload["characters"] < len(TEXT)
    open_page(chromium, path)
    note = chromium.find_element(By.ID, "note")
    assert note.is_displayed() and f"first {payload['characters']} of {len(TEXT)} characters" in note.text
    assert flag in note.text
    assert severe(chromium) == []


def test_markup_and_characters_beyond_the_basic_plane(chromium, tmp_path):
    text = 'a</script><!-- x -->\n😀 "x" 😀x <b>x</b>\n'
    path, payload, vis = make_page(tmp_path, text=text, chars="".join(set(text)))
    open_page(chromium, path)
    assert severe(chromium) == []
    chars = chromium.execute_script("return [...document.querySelectorAll('#text span')].map(s => s.textContent)")
    assert chars == list(text)
    js_mask = chromium.execute_script("return Array.from(charrnnViz.regexMask(arguments[0]))", "x")
    assert np.flatnonzero(js_mask).tolist() == np.flatnonzero(pattern_mask(text, "x")).tolist()
