"""Drives a real VS Code (code-server) with the pith extension through Debian's chromium and
Playwright, the way a user would: open a file, wait for the ghost text and accept it with Tab,
hover a name defined in another file, run **pith: Ask** from the command palette, and read the
status bar before and after the first completion.

Run by tests/vscode.rs, which starts code-server and asserts on what this writes:
    python3 e2e.py URL WORKSPACE OUT_DIR
It writes OUT_DIR/result.json ({"steps": {name: {"ok", "detail"}}, "statuses": [...]}) and, when
a step fails, OUT_DIR/failure-<step>.png. Every wait is bounded; a failed step ends the run.
"""

import json
import os
import re
import sys
import time

from playwright.sync_api import sync_playwright

URL, WORKSPACE, OUT = sys.argv[1], sys.argv[2], sys.argv[3]
STEP_S = float(os.environ.get("PITH_E2E_STEP_S", "120"))
# An answer is the longest generation (hundreds of tokens over a large prompt).
ASK_S = float(os.environ.get("PITH_E2E_ASK_S", "240"))
CHROMIUM = os.environ.get("PITH_E2E_CHROMIUM", "/usr/bin/chromium")

steps = {}
statuses = []  # every distinct status bar text seen, in order


def save():
    with open(os.path.join(OUT, "result.json"), "w") as f:
        json.dump({"steps": steps, "statuses": statuses}, f, indent=2)


STARTED = time.monotonic()


def record(name, ok, detail=""):
    at = round(time.monotonic() - STARTED, 1)
    steps[name] = {"ok": bool(ok), "detail": str(detail), "at_s": at}
    print(f"e2e: {at:6.1f}s {name}: {'ok' if ok else 'FAILED'} {detail}", file=sys.stderr, flush=True)
    save()


class StepFailed(Exception):
    pass


def status_text(page):
    """The pith status bar item's text and icon, or None while it is not shown."""
    # pith's own item reads "pith: <model> · <index>"; the client's progress items read
    # "pith: completing" and the like.
    item = page.locator(".statusbar-item", has_text=re.compile(r"pith: .* · "))
    if item.count() == 0:
        return None
    try:
        text = item.first.inner_text(timeout=2000).strip()
        icons = item.first.locator(".codicon").evaluate_all(
            "els => els.map(e => [...e.classList].find(c => c.startsWith('codicon-') && c !== 'codicon-modifier-spin') || '')"
        )
    except Exception:
        return None
    shown = (" ".join(icons) + " " + text).strip()
    if not statuses or statuses[-1] != shown:
        statuses.append(shown)
        save()
    return shown


def wait_until(page, what, check, timeout_s=STEP_S, every_s=0.25):
    """Polls `check` (also noting the status bar) until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    while True:
        status_text(page)
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise StepFailed(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


def editor_lines(page):
    """The text of the visible lines of the active editor, top to bottom."""
    return page.evaluate(
        """() => {
        const editor = document.querySelector('.editor-group-container.active .monaco-editor .view-lines');
        if (!editor) return [];
        return [...editor.querySelectorAll('.view-line')]
          .map(l => [parseFloat(l.style.top) || 0, l.innerText.replace(/\\u00a0/g, ' ')])
          .sort((a, b) => a[0] - b[0]).map(p => p[1]);
      }"""
    )


def palette(page, text):
    """Runs a command from the command palette by its label."""
    page.keyboard.press("F1")
    box = page.locator(".quick-input-widget input")
    box.wait_for(state="visible", timeout=10_000)
    box.fill(">" + text)
    row = page.locator(".quick-input-list .monaco-list-row", has_text=text).first
    row.wait_for(state="visible", timeout=10_000)
    page.keyboard.press("Enter")


def go_to(page, line, column):
    page.keyboard.press("Control+g")
    box = page.locator(".quick-input-widget input")
    box.wait_for(state="visible", timeout=10_000)
    box.fill(f":{line}:{column}")
    time.sleep(0.3)
    page.keyboard.press("Enter")
    time.sleep(0.3)


def run(page):
    current = "workbench"
    try:
        page.goto(URL, timeout=60_000)
        page.locator(".monaco-workbench").wait_for(timeout=STEP_S * 1000)
        wait_until(page, "the pith status bar item", lambda: status_text(page))
        record("workbench", True, statuses[-1])

        current = "open"
        page.keyboard.press("Control+p")
        page.locator(".quick-input-widget input").wait_for(state="visible", timeout=10_000)
        page.keyboard.type("report.py")
        page.locator(".quick-input-list .monaco-list-row", has_text="report.py").first.wait_for(timeout=10_000)
        page.keyboard.press("Enter")
        wait_until(page, "report.py in the editor", lambda: any("def total_area" in l for l in editor_lines(page)), 30)
        record("open", True)

        # The index part settles (the fixture is small); the model part is whatever it is.
        current = "status_before"
        before = wait_until(page, "the index count in the status bar", lambda: (s := status_text(page)) and "files indexed" in s and s)
        record("status_before", True, before)

        # Inline completion: replace `pass` in the empty body with `return ` and wait.
        current = "ghost_text"
        text = open(os.path.join(WORKSPACE, "report.py")).read().split("\n")
        line = next(i for i, l in enumerate(text) if l.strip() == "pass") + 1
        go_to(page, line, 5)
        page.keyboard.press("Shift+End")
        page.keyboard.type("return ", delay=50)
        ghost = wait_until(
            page,
            "ghost text (.ghost-text-decoration)",
            lambda: page.evaluate(
                "() => [...document.querySelectorAll('.ghost-text-decoration, .ghost-text-decoration-preview')].map(e => e.textContent).join('')"
            ).replace("\u00a0", " "),
        )
        record("ghost_text", True, ghost)
        # The status bar reads loaded once the completion came back.
        status_after = wait_until(
            page,
            "the status after the completion",
            lambda: (s := status_text(page)) and s.startswith("codicon-sparkle") and "files indexed" in s and s,
            30,
        )
        record("status_after", True, status_after)

        current = "accept"
        page.keyboard.press("Tab")
        def completed_line():
            lines = editor_lines(page)
            at = next((i for i, l in enumerate(lines) if "def total_area" in l), None)
            return at is not None and at + 1 < len(lines) and lines[at + 1]

        accepted = wait_until(
            page,
            "the suggestion in the buffer",
            lambda: page.locator(".ghost-text-decoration").count() == 0
            and (l := completed_line())
            and l.strip() != "return"
            and l,
            15,
        )
        page.keyboard.press("Control+s")
        time.sleep(1)
        record("accept", True, accepted)

        current = "hover"
        text = open(os.path.join(WORKSPACE, "report.py")).read().split("\n")
        line = next(i for i, l in enumerate(text) if "{area(" in l)
        column = text[line].index("{area(") + 3
        go_to(page, line + 1, column)
        page.keyboard.press("Control+k")
        page.keyboard.press("Control+i")
        hover = wait_until(
            page,
            "pith's hover",
            lambda: (h := page.locator(".monaco-hover").all_inner_texts()) and "defined in" in " ".join(h) and " ".join(h),
            60,
        )
        record("hover", True, hover)
        page.keyboard.press("Escape")

        current = "ask"
        palette(page, "pith: Ask pith")
        box = page.locator(".quick-input-widget input")
        box.wait_for(state="visible", timeout=10_000)
        box.fill("How is the area of a shape computed?")
        page.keyboard.press("Enter")
        answer = wait_until(
            page,
            "the answer with its sources",
            lambda: (lines := editor_lines(page)) and any("Sources" in l for l in lines) and "\n".join(lines),
            ASK_S,
        )
        record("ask", True, answer)
    except Exception as error:  # noqa: BLE001 - every failure is reported with a screenshot
        shot = os.path.join(OUT, f"failure-{current}.png")
        try:
            page.screenshot(path=shot)
        except Exception:
            shot = "(no screenshot)"
        record(current, False, f"{type(error).__name__}: {error} (screenshot: {shot})")
    finally:
        try:
            page.screenshot(path=os.path.join(OUT, "last.png"))
        except Exception:
            pass


def main():
    save()
    with sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-quic",
                "--no-first-run",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--disable-dev-shm-usage",
            ],
        )
        context = browser.new_context(viewport={"width": 1400, "height": 900})
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            run(page)
        finally:
            browser.close()


if __name__ == "__main__":
    main()
