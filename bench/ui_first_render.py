"""Time to first render of the web UI's message list with 100,000 messages stored.

Seeds N messages (default 100,000) straight through the store's API (`open_store` + `add`,
thousands at a time so the group commit batches them), starts `postroom serve` in-process on
free ports, opens the page in Debian's headless Chromium and prints:

- painted: navigation start -> the first row painted (Element Timing API: rows carry
  elementtiming="row");
- rendered: navigation start -> the rows are in the DOM (the page's own
  `performance.mark('postroom:list-rendered')`);
- wall: page.goto() issued -> `a.row` visible, measured around Playwright from Python;
- the API calls the page makes first (list, deep page, search), timed with httpx.

Two ways of measuring, interleaved (--way both, the default; each its own browser contexts):

- quiet: the page loads with nothing of the harness in it (navigate, wait for the load event
  over the DevTools protocol), and its own timings are read after the fact (Element Timing
  keeps its entries for a buffered observer); `wall` is goto() -> the load event;
- playwright: a Playwright selector waits for the row as it loads; its injected script and
  its polling share the page's main thread (tens of ms), so this one reads later.

Each of --runs contexts loads the inbox with an empty cache, then again with its static files
cached; the first load (browser just started) is shown alone, the others as medians and the
range of their middle 80 %.

    .venv/bin/python bench/ui_first_render.py            # 100,000 messages
    .venv/bin/python bench/ui_first_render.py --messages 20000 --runs 5
    .venv/bin/python bench/ui_first_render.py --data-dir /tmp/pr100k   # reuse a seeded store
    .venv/bin/python bench/ui_first_render.py --messages 1000000 --direct --data-dir /tmp/pr1m \
        --runs 21 --api-runs 0    # 20 empty-cache and 21 cached loads per way

--direct seeds by writing rows (bench/search_million.py's seeding: fast enough for a million,
no raw bodies, so only listing and search are meaningful) instead of `add`; the API timings
then include searches of every operator. --database postgresql://… stores in PostgreSQL
(with --direct; an existing database is reused, seeding only what is missing).

Each API call is timed twice: as the web UI asks for its page (`counts=skip`: the page without
counting a search's matches) and as Mailpit's default answer (exact counts: the page and the
count).

    .venv/bin/python bench/ui_first_render.py --messages 1000000 --direct \
        --database postgresql://postgres@127.0.0.1/pr1m
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.harness import ServerThread  # noqa: E402

from postroom.config import Config, HostPort  # noqa: E402
from postroom.core.clock import SystemClock  # noqa: E402
from postroom.core.ids import new_id  # noqa: E402
from postroom.core.types import Envelope, NewMessage  # noqa: E402
from postroom.mime.summary import summarize  # noqa: E402
from postroom.storage.engine import open_store  # noqa: E402

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
SENDERS = ["Alice <alice@shop.example>", "Billing <billing@saas.example>", "noreply@app.example"]
TEMPLATE = (
    "From: {sender}\r\nTo: user{n}@example.com\r\nSubject: {subject}\r\n"
    "Date: Tue, 14 Jan 2025 10:00:00 +0000\r\nMessage-ID: <{n}.bench@postroom.test>\r\n"
    "MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n"
    "Hello user {n},\r\nthis is message number {n} of the benchmark. "
    "It has a couple of lines of body text so that the snippet is realistic.\r\n"
)


def message(n: int, created: datetime) -> NewMessage:
    sender = SENDERS[n % len(SENDERS)]
    subject = f"Order #{n} confirmation" if n % 2 else f"Weekly report {n}"
    raw = TEMPLATE.format(sender=sender, n=n, subject=subject).encode()
    summary = summarize(raw)
    return NewMessage(
        id=new_id(created),
        project="default",
        created=created,
        raw=raw,
        envelope=Envelope(mail_from="bench@postroom.test", recipients=(f"user{n}@example.com",)),
        summary=summary,
        tags=("bench",) if n % 10 == 0 else (),
    )


async def seed(data_dir: Path, count: int, batch: int) -> float:
    store = await asyncio.to_thread(open_store, Config(data_dir=data_dir), SystemClock())
    existing = (await asyncio.to_thread(store.list, "default", None, 0, 0)).total
    started = time.perf_counter()
    base = datetime.now(UTC) - timedelta(seconds=count)
    try:
        for first in range(existing, count, batch):
            chunk = [
                message(n, base + timedelta(seconds=n))
                for n in range(first, min(count, first + batch))
            ]
            await asyncio.gather(*(store.add(m) for m in chunk))
            print(f"\r  seeded {first + len(chunk):,} / {count:,}", end="", flush=True)
    finally:
        await store.close()
    if existing < count:
        print()
    return time.perf_counter() - started


def api_timings(base_url: str, direct: bool, runs: int) -> dict[str, tuple[float, float]]:
    """Median ms of `runs` per call: (counts=skip, exact counts)."""
    out = {}
    paths = [
        ("list first page", "/api/v1/messages?start=0&limit=50"),
        ("list page 1,000 (start=49950)", "/api/v1/messages?start=49950&limit=50"),
        ("search 'subject:weekly'", "/api/v1/search?query=subject%3Aweekly&start=0&limit=50"),
        ("search 'tag:bench'", "/api/v1/search?query=tag%3Abench&start=0&limit=50"),
    ]
    if direct:
        from search_million import QUERIES

        paths += [
            (f"search {text!r}", "/api/v1/search?" + urlencode({"query": text, "limit": 50}))
            for _, text in QUERIES
            if text
        ]
    with httpx.Client(base_url=base_url, timeout=120) as client:
        for label, path in paths:
            medians = []
            for variant in (path + "&counts=skip", path):
                client.get(variant).raise_for_status()  # warm
                samples = []
                for _ in range(runs):
                    t0 = time.perf_counter()
                    client.get(variant).raise_for_status()
                    samples.append((time.perf_counter() - t0) * 1000)
                medians.append(statistics.median(samples))
            out[label] = (medians[0], medians[1])
    return out


ROWS_PAINTED = """() => new Promise((resolve) => {
  // Element Timing: when the first row text was painted (rows carry elementtiming="row").
  new PerformanceObserver((list) => {
    const times = list.getEntries().filter((e) => e.identifier === 'row').map((e) => e.renderTime);
    if (times.length) resolve(Math.min(...times));
  }).observe({ type: 'element', buffered: true });
  setTimeout(() => resolve(null), 3000);
})"""


# Where the time of a page load goes, from the page's own timings (ms after navigation start):
# Navigation Timing (the shell), Resource Timing (stylesheets, modules, the list request), paint
# timings and the page's marks. Each stage is the time its last piece finished.
BREAKDOWN = """() => {
  const nav = performance.getEntriesByType('navigation')[0];
  const resources = performance.getEntriesByType('resource');
  const last = (pick) => {
    const ends = resources.filter(pick).map((r) => r.responseEnd);
    return ends.length ? Math.max(...ends) : null;
  };
  const first = (pick) => {
    const starts = resources.filter(pick).map((r) => r.startTime);
    return starts.length ? Math.min(...starts) : null;
  };
  const paint = (name) => {
    const entry = performance.getEntriesByName(name)[0];
    return entry ? entry.startTime : null;
  };
  // The page's list request (none when the shell carries the page), not the one-row probe.
  const isList = (r) =>
    (r.name.includes('/api/v1/messages?') || r.name.includes('/api/v1/search?')) &&
    !r.name.includes('limit=1&');
  return {
    'shell: first byte': nav.responseStart,
    'shell: last byte': nav.responseEnd,
    'stylesheets loaded': last((r) => r.initiatorType === 'link' && r.name.endsWith('.css')),
    'modules loaded': last((r) => r.name.endsWith('.js')),
    'list request sent': first(isList),
    'list response in': (resources.filter(isList)[0] || {}).responseEnd ?? null,
    'DOM parsed (interactive)': nav.domInteractive,
    'scripts started (boot)': paint('postroom:boot'),
    'first contentful paint': paint('first-contentful-paint'),
    'rows in the DOM (script)': paint('postroom:list-rendered'),
    'DOMContentLoaded end': nav.domContentLoadedEventEnd,
  };
}"""


@dataclass
class Load:
    """One page load: ms after navigation start (wall: around Playwright, from goto)."""

    painted: float
    rendered: float
    wall: float
    stages: dict[str, float | None]


# The page's follow-up requests (its tag counts, for the sidebar of a wide window: hundreds of
# ms of queries at a million) are waited for before the next load, so that a load is not
# measured behind the last one's queries.
SETTLED = """() => performance.getEntriesByType('resource')
  .some((r) => r.name.includes('/api/v1/tag-counts'))"""


def load_once(page: Any, url: str) -> Load:
    t0 = time.perf_counter()
    page.goto(url, wait_until="commit")
    page.wait_for_selector("#message-list a.row", state="visible")
    wall = (time.perf_counter() - t0) * 1000
    page.wait_for_function(
        "() => performance.getEntriesByName('postroom:list-rendered').length > 0"
    )
    painted = page.evaluate(ROWS_PAINTED)
    rendered = page.evaluate(
        "() => performance.getEntriesByName('postroom:list-rendered')[0].startTime"
    )
    stages = page.evaluate(BREAKDOWN)
    page.wait_for_function(SETTLED, timeout=60_000)
    return Load(float(painted or "nan"), float(rendered), wall, stages)


def evaluate(cdp: Any, expression: str) -> Any:
    """An expression's value in the page's own world, through the DevTools protocol alone."""
    answer = cdp.send(
        "Runtime.evaluate",
        {"expression": f"({expression})()", "awaitPromise": True, "returnByValue": True},
    )
    return answer["result"].get("value")


def load_quietly(page: Any, url: str) -> Load:
    """A load with nothing of the harness in the page while it loads: navigate and wait for the
    load event (DevTools protocol events, no script in the page), then read the page's own
    timings after the fact (Element Timing keeps its entries for a buffered observer). No
    Playwright selector runs, so its injected script and its polling take none of the page's
    main thread; `wall` is goto() issued -> the load event."""
    cdp = page.context.new_cdp_session(page)
    t0 = time.perf_counter()
    page.goto(url, wait_until="load")
    wall = (time.perf_counter() - t0) * 1000
    for _ in range(600):
        if evaluate(cdp, "() => performance.getEntriesByName('postroom:list-rendered').length"):
            break
        time.sleep(0.01)
    painted = evaluate(cdp, ROWS_PAINTED)
    rendered = evaluate(
        cdp, "() => performance.getEntriesByName('postroom:list-rendered')[0].startTime"
    )
    stages = evaluate(cdp, BREAKDOWN)
    for _ in range(6000):
        if evaluate(cdp, SETTLED):
            break
        time.sleep(0.01)
    cdp.detach()
    return Load(float(painted or "nan"), float(rendered), wall, stages)


Measured = dict[str, tuple[list[Load], list[Load]]]


def measure(base_url: str, runs: int, ways: list[str]) -> Measured:
    """`runs` fresh browser contexts per way of measuring (interleaved), each loading the inbox
    twice: with an empty cache, then again with the static files cached (as a browser that has
    opened the inbox before). Ways: "quiet" (load_quietly) and "playwright" (load_once: waits
    for the row with a Playwright selector, whose injected script shares the main thread)."""
    from playwright.sync_api import sync_playwright

    loaders = {"quiet": load_quietly, "playwright": load_once}
    out: Measured = {way: ([], []) for way in ways}
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for _ in range(runs):
                for way in ways:
                    context = browser.new_context(viewport={"width": 1280, "height": 800})
                    page = context.new_page()
                    empty, cached = out[way]
                    empty.append(loaders[way](page, base_url + "/"))
                    cached.append(loaders[way](page, base_url + "/"))
                    context.close()
        finally:
            browser.close()
    return out


WAYS = {"quiet": ["quiet"], "playwright": ["playwright"], "both": ["quiet", "playwright"]}


def spread(values: list[float]) -> str:
    """Median, and the range of the middle 80 % of the values (all of them when few)."""
    values = sorted(v for v in values if not math.isnan(v))
    if not values:
        return f"{'-':>8s} {'':13s}"
    cut = len(values) // 10
    low, high = values[cut], values[len(values) - 1 - cut]
    return f"{statistics.median(values):8.1f} {f'{low:.0f}-{high:.0f}':>13s}"


def report(way: str, empty: list[Load], cached: list[Load]) -> None:
    def row(label: str, loads: list[Load]) -> None:
        cells = " ".join(spread([getattr(load, name) for load in loads]) for name in names)
        print(f"  {label:34s} {cells}")

    names = ("painted", "rendered", "wall")
    print(f"\n[{way}] first render of the message list (50 rows), ms after navigation start")
    print("  (median, then the range of the middle 80 %):")
    print(f"  {'':34s} " + " ".join(f"{name:>8s} {'':13s}" for name in names))
    row("first load (browser just started)", empty[:1])
    row(f"empty cache (median of {len(empty) - 1})", empty[1:] or empty)
    row(f"static files cached (median of {len(cached)})", cached)
    print(
        f"[{way}] where the time goes (ms after navigation start, medians): empty cache, "
        "static files cached"
    )
    for name in empty[0].stages:
        cells = []
        for loads in (empty[1:] or empty, cached):
            values = [v for load in loads if (v := load.stages[name]) is not None]
            cells.append(f"{statistics.median(values):8.1f}" if values else f"{'-':>8s}")
        print(f"  {name:32s} {' '.join(cells)}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--messages", type=int, default=100_000)
    parser.add_argument(
        "--runs", type=int, default=6, help="browser contexts per way (the first is cold)"
    )
    parser.add_argument(
        "--way",
        choices=sorted(WAYS),
        default="both",
        help="quiet: the page's own timings read after the load; playwright: a selector waits",
    )
    parser.add_argument("--batch", type=int, default=2000, help="messages added concurrently")
    parser.add_argument("--data-dir", type=Path, help="keep (or reuse) the seeded store here")
    parser.add_argument(
        "--direct", action="store_true", help="seed by writing rows (search_million.py)"
    )
    parser.add_argument("--database", default="", help="a PostgreSQL URL (with --direct)")
    parser.add_argument(
        "--api-runs", type=int, default=5, help="timed runs of each API call (0: none)"
    )
    args = parser.parse_args()
    if not Path(CHROMIUM).exists():
        sys.exit(f"{CHROMIUM} is missing (apt-get install chromium)")
    if args.database and not args.direct:
        sys.exit("--database needs --direct")

    temp = None if args.data_dir else tempfile.TemporaryDirectory(prefix="postroom-ui-bench-")
    data_dir = args.data_dir or Path(temp.name if temp else ".")
    print(f"seeding {args.messages:,} messages into {data_dir} ...")
    if args.direct:
        sys.path.insert(0, str(ROOT / "bench"))
        from search_million import seed as seed_rows

        started = time.perf_counter()
        seed_rows(args.database or str(data_dir), args.messages, 10_000)
        seconds = time.perf_counter() - started
    else:
        seconds = asyncio.run(seed(data_dir, args.messages, args.batch))
    print(f"  seeding took {seconds:.1f} s")

    config = Config(
        data_dir=data_dir,
        database_url=args.database,
        smtp=HostPort("127.0.0.1", 0),
        http=HostPort("127.0.0.1", 0),
        hostname="postroom.bench",
    )
    server = ServerThread(config).start()
    try:
        total = httpx.get(server.base_url + "/api/v1/messages?limit=1", timeout=60).json()["total"]
        print(f"server {server.base_url} with {total:,} messages stored\n")
        measured = measure(server.base_url, args.runs, WAYS[args.way])
        api = api_timings(server.base_url, args.direct, args.api_runs) if args.api_runs else {}
    finally:
        server.stop()
        if temp:
            temp.cleanup()

    for way, (empty, cached) in measured.items():
        report(way, empty, cached)
    if not api:
        return
    print(
        f"\nAPI latency, median of {args.api_runs} (ms): counts=skip (the UI's page), "
        "exact counts (default)"
    )
    for label, (skip, exact) in api.items():
        print(f"  {label:44s} {skip:9.1f} {exact:9.1f}")


if __name__ == "__main__":
    main()
