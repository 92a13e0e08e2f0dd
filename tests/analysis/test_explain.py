"""The explain page: the text features and unit correlations against hand computations, the
embedded data against the trace, escaping, and the page itself driven in a headless Chromium."""

from __future__ import annotations

import base64
import json
import math
import re
import statistics
import zlib
from collections.abc import Iterator
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait

import lstmkit
from lstmkit import _recording
from lstmkit._recording import Quantity
from lstmkit.analysis.explain import colours
from lstmkit.analysis.explain.colours import colour_for, quantity_kind
from lstmkit.analysis.explain.page import (
    ORDER,
    explain_checkpoint,
    explain_page,
    interpretable_units,
    text_features,
)
from lstmkit.analysis.trace import Trace
from lstmkit.modules.attention import AttentionDecoder
from lstmkit.modules.sequence import SequenceModel
from lstmkit.train import ModelConfig, RunConfig, TaskConfig, TrainConfig, Trainer
from lstmkit.train.sample import load_charlm

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
LEVELS = 32767  # the page stores values as int16 with one scale per quantity: max|x| / LEVELS


def lstm_trace(steps: int, hidden: int = 4) -> Trace:
    """A made-up trace of one LSTM layer over ``steps`` characters, with random values in each
    quantity's range."""
    values = {
        f"rnn.l0.{name}": torch.sigmoid(torch.randn(steps, 1, hidden) * 2)
        for name in ("f_t", "i_t", "o_t")
    }
    values["rnn.l0.C_tilde"] = torch.tanh(torch.randn(steps, 1, hidden) * 2)
    values["rnn.l0.C_t"] = torch.randn(steps, 1, hidden) * 3
    values["rnn.l0.h_t"] = torch.tanh(torch.randn(steps, 1, hidden))
    return Trace(values, {"cells": {"rnn.l0": {"class": "LSTMCell", "reverse": False}}})


# text, features and colours


def test_text_features_match_a_hand_reading() -> None:
    text = "f(\"(#\", [x]) # \"y\n'\\''z"
    features = text_features(text)
    assert features["column"].tolist() == [*range(1, 18), 0, 1, 2, 3, 4, 5]
    quotes = [0] * len(text)
    for t in (2, 3, 4, 18, 19, 20):  # "(# and the escaped quote inside '...'
        quotes[t] = 1
    assert features["in_quotes"].tolist() == quotes
    assert features["in_brackets"].tolist() == [0] + [1] * 10 + [0] * 12
    assert features["in_comment"].tolist() == [0] * 13 + [1] * 4 + [0] * 6


def pearson(x: list[float], y: list[float]) -> float:
    mx, my = sum(x) / len(x), sum(y) / len(y)
    num = sum((a - mx) * (b - my) for a, b in zip(x, y, strict=True))
    den = math.sqrt(sum((a - mx) ** 2 for a in x) * sum((b - my) ** 2 for b in y))
    return num / den if den else 0.0


def test_interpretable_units_are_the_strongest_correlations() -> None:
    text = 'x = f("a, b") + [1, 2]\n# note (x)\ny = "q"\n'
    recorded = lstm_trace(len(text), hidden=5)
    quotes = text_features(text)["in_quotes"]
    planted = torch.tensor(quotes * 3.0 - 1.0, dtype=torch.float32)
    recorded.values["rnn.l0.C_t"][:, 0, 2] = planted  # unit 2 is a quote detector
    top = 3
    found = interpretable_units(recorded, text, top=top)
    features = text_features(text)
    expected = []
    for feature, y in features.items():
        rows = []
        for quantity in ("C_t", "h_t"):
            x = recorded[f"rnn.l0.{quantity}"][:, 0].double()
            for unit in range(5):
                r = pearson(x[:, unit].tolist(), y.tolist())
                rows.append((feature, quantity, unit, r))
        rows.sort(key=lambda row: -abs(row[3]))
        expected += rows[:top]
    assert [(f["feature"], f["quantity"], f["unit"]) for f in found] == [e[:3] for e in expected]
    assert [f["r"] for f in found] == pytest.approx([e[3] for e in expected], abs=1e-9)
    assert {f["cell"] for f in found} == {"rnn.l0"}
    first_quote = next(f for f in found if f["feature"] == "in_quotes")
    assert (first_quote["quantity"], first_quote["unit"]) == ("C_t", 2)
    assert first_quote["r"] == pytest.approx(1.0)


def test_a_feature_that_never_changes_is_left_out() -> None:
    text = "abc def\nghi"
    found = interpretable_units(lstm_trace(len(text)), text, top=2)
    assert [f["feature"] for f in found] == ["column", "column"]


def test_colour_map() -> None:
    assert colour_for(1.0, "gate") == (255, 75, 75)
    assert colour_for(0.0, "gate") == (75, 75, 255)
    assert colour_for(0.5, "gate") == (255, 255, 255)
    assert colour_for(math.atanh(0.5), "state") == (255, 165, 165)
    assert colour_for(-0.25, "bounded") == (210, 210, 255)
    assert colour_for(-7.0, "bounded") == (75, 75, 255)
    assert quantity_kind("f_t", np.array([0.2])) == "gate"
    assert quantity_kind("C_t", np.array([0.3, -1.5])) == "state"
    assert quantity_kind("h_t", np.array([0.3, -0.9])) == "bounded"
    with pytest.raises(ValueError, match="kind must be"):
        colour_for(0.1, "rainbow")


def test_the_page_carries_the_colour_map_and_its_script_no_colours_of_its_own() -> None:
    text = "abc"
    meta, _ = embedded(explain_page(lstm_trace(len(text)), text))
    assert meta["colours"] == colours.colour_map()
    assert meta["colours"]["high"] == [255, 75, 75]
    assert set(meta["colours"]["kinds"]) == {"gate", "bounded", "state"}
    script = (Path(colours.__file__).parent / "explain.js").read_text(encoding="utf-8")
    assert not re.search(r"\b(75|180|255)\b", script)  # the map's numbers live in colours.py


def test_a_quantity_a_new_cell_declares_is_coloured_and_named_by_the_declaration(
    made_up_cell: dict[str, Quantity], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = "ab(c)"
    recorded = lstm_trace(len(text))
    for name in ("zeta_t", "eta_t", "xi_t"):  # all within [0.3, 0.7]; xi_t declared by nobody
        recorded.values[f"rnn.l0.{name}"] = 0.3 + 0.4 * torch.rand(len(text), 1, 4)
    meta, _ = embedded(explain_page(recorded, text))
    shown = meta["layers"][0]["quantities"]
    assert list(shown) == [n for n in ORDER if n in shown] + ["eta_t", "xi_t", "zeta_t"]
    assert [shown[n]["kind"] for n in ("zeta_t", "eta_t", "xi_t")] == ["gate", "gate", "bounded"]
    assert shown["zeta_t"]["what"] == made_up_cell["zeta_t"].what
    assert shown["eta_t"]["what"] == made_up_cell["eta_t"].what
    assert shown["xi_t"]["what"] == ""
    assert shown["f_t"]["what"] == "forget gate"
    values = recorded["rnn.l0.zeta_t"].numpy()
    assert quantity_kind("zeta_t", values) == "gate"
    monkeypatch.undo()  # without the declaration zeta_t is just a value within [-1, 1]
    assert "zeta_t" not in _recording.QUANTITIES
    assert quantity_kind("zeta_t", values) == "bounded"
    meta, _ = embedded(explain_page(recorded, text))
    assert meta["layers"][0]["quantities"]["zeta_t"]["kind"] == "bounded"


# the page as a file


class TextReader(HTMLParser):
    """The characters inside the page's text panel, unescaped."""

    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.chars: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self.inside:
            self.inside += 1
        elif ("id", "lk-text") in attrs:
            self.inside = 1

    def handle_endtag(self, tag: str) -> None:
        if self.inside:
            self.inside -= 1

    def handle_data(self, data: str) -> None:
        if self.inside:
            self.chars.append(data)


def embedded(page: str) -> tuple[dict[str, Any], np.ndarray]:
    """The page's meta JSON and its data decoded as the page's script decodes it."""
    meta = re.search(r'<script type="application/json" id="lk-meta">(.*?)</script>', page, re.S)
    data = re.search(r'<script type="text/plain" id="lk-data">(.*?)</script>', page, re.S)
    assert meta is not None
    assert data is not None
    planes = np.frombuffer(zlib.decompress(base64.b64decode(data.group(1))), dtype=np.uint8)
    n = len(planes) // 2
    values = (planes[:n].astype(np.uint16) | (planes[n:].astype(np.uint16) << 8)).view(np.int16)
    return json.loads(meta.group(1)), values


def test_text_and_title_are_escaped_and_nothing_is_fetched() -> None:
    text = "<script>alert(\"x\")</script> & 'q' {{title}} </div>\n<img src=x onerror=alert(1)>"
    title = '<b>"T" & {{text}} {{script}}</b>'
    page = explain_page(lstm_trace(len(text)), text, title=title)
    reader = TextReader()
    reader.feed(page)
    assert "".join(reader.chars) == text
    assert "<script>alert" not in page
    assert "<img" not in page
    assert page.count("<script") == 3  # the meta, the data and the page's own code
    assert "&lt;b&gt;&quot;T&quot; &amp; {{text}} {{script}}&lt;/b&gt;" in page
    assert "{{" not in page.replace("{{title}}", "").replace("{{text}} {{script}}", "")
    assert "http" not in page
    assert not re.search(r"\b(src|href)\s*=|url\(|@import|<link", page)


def test_names_in_the_trace_cannot_end_the_pages_scripts() -> None:
    cell = "x</script><script>alert(1)</script>"
    kind = "</SCRIPT><b>"
    text = "abcd"
    recorded = Trace(
        {f"{cell}.h_t": torch.tanh(torch.randn(len(text), 1, 3))},
        {"cells": {cell: {"class": kind, "reverse": False}}},
    )
    page = explain_page(recorded, text)
    assert page.lower().count("<script") == 3
    assert page.lower().count("</script>") == 3
    assert "<b>" not in page
    meta, _ = embedded(page)
    assert (meta["layers"][0]["cell"], meta["layers"][0]["class"]) == (cell, kind)


def test_embedded_values_equal_the_trace_for_a_gru() -> None:
    text = "if (a):\n    b = 'c'\n"
    model = SequenceModel(
        lstmkit.GRU(5, 6, batch_first=True), vocab_size=128, output_size=3, readout="all"
    ).eval()
    recorded = lstmkit.trace(model, torch.tensor([[ord(c) for c in text]]))
    meta, values = embedded(explain_page(recorded, text))
    (layer,) = meta["layers"]
    assert layer["cell"] == "rnn.l0"
    assert layer["class"] == "GRUCell"
    assert sorted(layer["quantities"]) == ["h_t", "n_t", "r_t", "z_t"]
    for name, info in layer["quantities"].items():
        truth = recorded[f"rnn.l0.{name}"][:, 0].numpy()  # (T, 6)
        size = truth.size
        stored = values[info["offset"] : info["offset"] + size].reshape(truth.shape)
        scale = float(np.abs(truth).max()) / LEVELS
        np.testing.assert_allclose(stored * info["scale"], truth, rtol=0, atol=scale / 2 + 1e-7)
        assert info["kind"] == quantity_kind(name, truth)


def test_attention_map_of_a_traced_decoder() -> None:
    steps, annotations = 5, 3
    decoder = AttentionDecoder(4, 6, 8, batch_first=True)
    text = "ab<&c"
    recorded = lstmkit.trace(decoder, (torch.randn(1, steps, 4), torch.randn(1, annotations, 6)))
    page = explain_page(recorded, text)
    meta, _ = embedded(page)
    assert [layer["cell"] for layer in meta["layers"]] == ["cell"]
    alpha = recorded["AttentionDecoder.alpha_t"][:, 0]  # (T, L)
    fills = re.findall(r'<rect [^>]*fill="rgb\((\d+),(\d+),(\d+)\)"', page)
    assert len(fills) == steps * annotations
    for k, (r, g, b) in enumerate(fills):
        a = float(alpha[k // annotations, k % annotations])
        assert (int(r), int(g), int(b)) == (math.floor(255 - 215 * a + 0.5),) * 2 + (255,)


def test_attention_labels_are_escaped_and_checked() -> None:
    text = "xyz"
    weights = torch.softmax(torch.randn(2, 4), dim=-1)
    labels = ["<a>", "b&", '"c"', "d"]
    page = explain_page(lstm_trace(len(text)), text, attention=weights, attention_labels=labels)
    assert "&lt;a&gt;" in page
    assert "b&amp;" in page
    assert "<a>" not in page
    with pytest.raises(ValueError, match="expected 4 attention_labels"):
        explain_page(lstm_trace(3), text, attention=weights, attention_labels=["a"])
    with pytest.raises(ValueError, match=r"attention must be \(T_out, L\)"):
        explain_page(lstm_trace(3), text, attention=torch.rand(2, 3, 4))


def test_bad_input_is_refused() -> None:
    recorded = lstm_trace(6)
    with pytest.raises(ValueError, match="got an empty string"):
        explain_page(recorded, "")
    with pytest.raises(ValueError, match=r"one step per character \(5 steps\), got .*\[6\]"):
        explain_page(recorded, "abcde")
    with pytest.raises(TypeError, match="trace must be an lstmkit Trace, got dict"):
        explain_page(recorded.values, "abcdef")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        explain_page(recorded, b"abcdef")  # type: ignore[arg-type]
    batch = Trace({"l0.h_t": torch.randn(6, 2, 3)}, {"cells": {"l0": {"class": "RNNCell"}}})
    with pytest.raises(ValueError, match=r"expected a trace of one sequence .*batch of 2"):
        explain_page(batch, "abcdef")
    with pytest.raises(ValueError, match="top must be a positive int, got int 0"):
        interpretable_units(recorded, "abcdef", top=0)


# pages of trained checkpoints


def train_run(out: Path, task: TaskConfig, *, layers: int = 1, hidden: int = 12) -> Path:
    config = TrainConfig(
        model=ModelConfig(cell="lstm", hidden_size=hidden, num_layers=layers),
        task=task,
        run=RunConfig(steps=30, batch_size=16, eval_every=30, eval_size=16, early_stop=False),
    )
    Trainer(config, out_dir=out, progress=False).fit()
    return out / "checkpoint.pt"


@pytest.fixture(scope="module")
def charlm_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = TaskConfig("charlm", {"max_chars": 6000, "length": 40})
    return train_run(tmp_path_factory.mktemp("charlm"), task, layers=2)


def test_explain_checkpoint_refuses_other_tasks_and_empty_text(
    tmp_path: Path, charlm_checkpoint: Path
) -> None:
    gap = train_run(tmp_path / "gap", TaskConfig("gap", {"gap": 3}))
    with pytest.raises(ValueError, match="'gap' task; expected a 'charlm' checkpoint"):
        explain_checkpoint(gap, "abc", tmp_path / "page.html")
    with pytest.raises(ValueError, match="got an empty string"):
        explain_checkpoint(charlm_checkpoint, "", tmp_path / "page.html")
    assert not (tmp_path / "page.html").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["gap"]  # no temporary file left behind


# in a real browser


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.is_file()]
    if missing:
        pytest.fail(
            f"the explain page's browser test needs {', '.join(missing)}: install Debian's "
            "chromium and chromium-driver packages (scripts/setup does it when run as root)"
        )
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(60)
    driver.set_script_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


def open_page(driver: WebDriver, page: Path) -> None:
    driver.get(page.as_uri())
    WebDriverWait(driver, 60).until(
        lambda d: d.execute_script("return document.body.dataset.ready") == "1"
    )


def shown_colours(driver: WebDriver, positions: list[int]) -> list[tuple[int, ...]]:
    """The computed background colours of the characters at ``positions``, as (r, g, b)."""
    css = driver.execute_script(
        "const spans = document.getElementById('lk-text').children;"
        "return arguments[0].map((t) => getComputedStyle(spans[t]).backgroundColor);",
        positions,
    )
    return [tuple(int(v) for v in re.findall(r"\d+", c)[:3]) for c in css]


def assert_colours(driver: WebDriver, values: np.ndarray, kind: str, positions: list[int]) -> None:
    for t, shown in zip(positions, shown_colours(driver, positions), strict=True):
        expected = colour_for(float(values[t]), kind)
        assert max(abs(a - b) for a, b in zip(shown, expected, strict=True)) <= 1, (t, shown)


def assert_no_console_errors(driver: WebDriver) -> None:
    severe = [entry for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []


@pytest.mark.timeout(180)
def test_page_in_chromium(tmp_path: Path, charlm_checkpoint: Path, browser: WebDriver) -> None:
    text = (
        "def area(r):\n"
        '    """The area of a circle (r > 0)."""\n'
        "    return 3.14 * r ** 2  # pi r^2 <script>alert('&')</script>\n"
        "print(area(2), [1, 2], {'a': \"b\"})\n"
    )
    page = explain_checkpoint(charlm_checkpoint, text, tmp_path / "out" / "page.html")
    assert page == tmp_path / "out" / "page.html"
    model, vocabulary = load_charlm(charlm_checkpoint)
    codes = torch.tensor(
        [[vocabulary.index(c) if c in vocabulary else len(vocabulary)] for c in text]
    ).T  # (1, T)
    recorded = lstmkit.trace(model, codes)
    open_page(browser, page)

    assert browser.execute_script("return document.getElementById('lk-text').textContent") == text

    # choose the second layer's forget gate, unit 3; colour the characters where it is extreme
    Select(browser.find_element(By.ID, "lk-layer")).select_by_value("1")
    Select(browser.find_element(By.ID, "lk-quantity")).select_by_value("f_t")
    unit_box = browser.find_element(By.ID, "lk-unit")
    unit_box.clear()
    unit_box.send_keys("3", Keys.TAB)
    f_t = recorded["rnn.l1.f_t"][:, 0, 3].numpy()
    positions = [int(t) for t in np.argsort(np.abs(f_t - 0.5))[-4:]] + [0, len(text) - 1]
    assert_colours(browser, f_t, "gate", positions)
    browser.find_element(By.ID, "lk-next").click()
    assert unit_box.get_attribute("value") == "4"
    assert_colours(browser, recorded["rnn.l1.f_t"][:, 0, 4].numpy(), "gate", positions)

    # click a character: the step-through shows that step's values of every unit
    t = text.index("area(2)") + 5
    browser.find_elements(By.CSS_SELECTOR, "#lk-text > span")[t].click()
    assert browser.execute_script("return document.body.dataset.position") == str(t)
    assert f"Step t = {t}" in browser.find_element(By.ID, "lk-step-title").text
    cells = browser.execute_script(
        "return Array.from(document.querySelectorAll('#lk-step-table td[data-q]'))"
        ".map((td) => [td.dataset.q, Number(td.dataset.unit), td.textContent])"
    )
    shown = {(name, unit): float(value) for name, unit, value in cells}
    hidden = recorded["rnn.l1.C_t"].shape[-1]
    names = ["f_t", "i_t", "C_tilde", "C_t", "o_t", "h_t"]
    assert {name for name, _ in shown} == {*names, "C_prev"}
    assert len(shown) == 7 * hidden
    for name in names:
        values = recorded[f"rnn.l1.{name}"][:, 0].numpy()  # (T, H)
        tolerance = 0.0005 + float(np.abs(values).max()) / LEVELS / 2 + 1e-6
        for unit in range(hidden):
            assert abs(shown[name, unit] - values[t, unit]) <= tolerance, (name, unit)
            if name == "C_t":
                assert abs(shown["C_prev", unit] - values[t - 1, unit]) <= tolerance
    c_t = recorded["rnn.l1.C_t"][:, 0].numpy()
    change = np.abs(c_t[t] - c_t[t - 1])
    first_moved = browser.find_element(By.CSS_SELECTOR, "#lk-moved button")
    assert change[int(first_moved.get_attribute("data-unit"))] >= change.max() - 1e-3
    walk = browser.find_element(By.ID, "lk-walk").text
    assert f"f = {shown['f_t', 4]:.3f}" in walk
    assert f"C\u209c = {shown['C_t', 4]:.3f}" in walk

    # click an interpretable unit: the controls and the colours follow it
    entry = browser.find_elements(By.CSS_SELECTOR, "#lk-units button.lk-pick")[-1]
    layer, quantity, unit = (
        entry.get_attribute(f"data-{k}") for k in ("layer", "quantity", "unit")
    )
    other = "0" if layer == "1" else "1"  # start from another layer, quantity and unit
    Select(browser.find_element(By.ID, "lk-layer")).select_by_value(other)
    Select(browser.find_element(By.ID, "lk-quantity")).select_by_value("o_t")
    unit_box.clear()
    unit_box.send_keys("11" if unit != "11" else "10", Keys.TAB)
    entry.click()
    assert (
        Select(browser.find_element(By.ID, "lk-layer")).first_selected_option.get_attribute("value")
        == layer
    )
    assert browser.find_element(By.ID, "lk-quantity").get_attribute("value") == quantity
    assert unit_box.get_attribute("value") == unit
    assert browser.find_element(By.CSS_SELECTOR, "#lk-step-table tr.lk-chosen td").text == unit
    values = recorded[f"rnn.l{layer}.{quantity}"][:, 0, int(unit)].numpy()
    assert_colours(
        browser, values, quantity_kind(quantity, recorded[f"rnn.l{layer}.{quantity}"]), positions
    )

    assert_no_console_errors(browser)
    shot = tmp_path / "explain.png"
    assert browser.save_screenshot(str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.timeout(180)
def test_a_unit_change_is_fast_on_ten_thousand_characters(
    tmp_path: Path, browser: WebDriver
) -> None:
    pattern = "for key in sorted(table):  # walk (in order)\n    print(key, 'is', table[key])\n"
    text = (pattern * (10_000 // len(pattern) + 1))[:10_000]
    model = SequenceModel(
        lstmkit.LSTM(16, 128, batch_first=True), vocab_size=128, output_size=128, readout="all"
    ).eval()
    recorded = lstmkit.trace(model, torch.tensor([[ord(c) for c in text]]))
    html = explain_page(recorded, text)
    assert len(html) < 20_000_000  # 6 quantities × 128 units × 10,000 steps in 16 bits
    page = tmp_path / "long.html"
    page.write_text(html, encoding="utf-8")
    open_page(browser, page)
    Select(browser.find_element(By.ID, "lk-quantity")).select_by_value("C_t")
    times = []
    for _ in range(3):
        browser.find_element(By.ID, "lk-next").click()
        times.append(browser.execute_script("return window.lkUpdateMs"))
    assert all(ms > 0 for ms in times)
    assert statistics.median(times) < 200, times
    unit = int(browser.find_element(By.ID, "lk-unit").get_attribute("value") or -1)
    c_t = recorded["rnn.l0.C_t"][:, 0, unit].numpy()
    assert_colours(browser, c_t, quantity_kind("C_t", recorded["rnn.l0.C_t"]), [0, 5000, 9999])
    assert_no_console_errors(browser)


@pytest.mark.timeout(120)
def test_a_reverse_layer_steps_from_the_next_position(tmp_path: Path, browser: WebDriver) -> None:
    text = "(a, 'b')\n"
    model = SequenceModel(
        lstmkit.LSTM(5, 6, bidirectional=True, batch_first=True),
        vocab_size=128,
        output_size=3,
        readout="all",
    ).eval()
    recorded = lstmkit.trace(model, torch.tensor([[ord(c) for c in text]]))
    page = tmp_path / "both.html"
    page.write_text(explain_page(recorded, text), encoding="utf-8")
    open_page(browser, page)
    layers = Select(browser.find_element(By.ID, "lk-layer"))
    assert [o.text for o in layers.options] == ["rnn.l0 (LSTMCell)", "rnn.l0_reverse (LSTMCell)"]
    layers.select_by_value("1")
    c_t = recorded["rnn.l0_reverse.C_t"][:, 0].numpy()  # (T, 6)
    tolerance = 0.0005 + float(np.abs(c_t).max()) / LEVELS / 2 + 1e-6
    for t, before in ((2, c_t[3]), (len(text) - 1, np.zeros(6))):
        browser.find_elements(By.CSS_SELECTOR, "#lk-text > span")[t].click()
        shown = browser.execute_script(
            "return Array.from(document.querySelectorAll('#lk-step-table td[data-q=C_prev]'))"
            ".map((td) => Number(td.textContent))"
        )
        assert np.abs(np.array(shown) - before).max() <= tolerance
    assert_no_console_errors(browser)


@pytest.mark.timeout(120)
def test_the_browser_colours_by_the_map_and_the_declarations_the_page_carries(
    tmp_path: Path,
    browser: WebDriver,
    made_up_cell: dict[str, Quantity],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # another colour map, changed in Python alone: the page's script must follow it
    monkeypatch.setattr(colours, "HIGH", (0, 160, 0))
    monkeypatch.setattr(colours, "LOW", (120, 0, 120))
    monkeypatch.setitem(colours.SCALES, "gate", colours.Scale(4.0, -2.0, "none", ("lo", "hi")))
    text = "abcdefghijkl"
    recorded = lstm_trace(len(text))
    recorded.values["rnn.l0.zeta_t"] = torch.rand(len(text), 1, 4)  # a gate only by declaration
    page = tmp_path / "made_up.html"
    page.write_text(explain_page(recorded, text), encoding="utf-8")
    open_page(browser, page)
    menu = Select(browser.find_element(By.ID, "lk-quantity"))
    labels = {o.get_attribute("value"): o.text for o in menu.options}
    assert labels["zeta_t"] == f"zeta_t \u2014 {made_up_cell['zeta_t'].what}"
    assert labels["C_tilde"] == "C\u0303_t \u2014 candidate values"
    menu.select_by_value("zeta_t")
    unit_box = browser.find_element(By.ID, "lk-unit")
    unit_box.clear()
    unit_box.send_keys("2", Keys.TAB)
    values = recorded["rnn.l0.zeta_t"][:, 0, 2].numpy()
    positions = list(range(len(text)))
    assert colour_for(float(values.max()), "gate") != (255, 75, 75)  # the map did change
    assert_colours(browser, values, "gate", positions)
    assert browser.find_element(By.ID, "lk-low").text == "lo"
    assert browser.find_element(By.ID, "lk-high").text == "hi"
    menu.select_by_value("C_t")  # a state: by tanh, in the changed colours
    values = recorded["rnn.l0.C_t"][:, 0, 2].numpy()
    assert_colours(browser, values, quantity_kind("C_t", recorded["rnn.l0.C_t"]), positions)
    assert_no_console_errors(browser)
