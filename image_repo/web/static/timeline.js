// The timeline: every image, newest first, grouped by month and day, with
// filters, a jump to a month, endless scrolling on keyset pages, and uploads.

import { get, query } from "./api.js";
import { arrowKeys, tile } from "./grid.js";
import { browsing, can } from "./session.js";
import { withUrls } from "./sources.js";
import { uploadPanel } from "./upload.js";
import { dayName, dayOf, h, monthName, show } from "./ui.js";

// A first page that fills a screen soon, then bigger ones.
const FIRST_PAGE = 60;
const PAGE = 150;

// Kept while the tab lives: coming back from an image shows the same place.
const state = {
  filters: {}, items: [], cursor: null, done: false, loading: null, ahead: null, generation: 0,
  restored: false, // items from session storage, not checked yet
};

// The unfiltered timeline's first pages, kept in the tab's session storage for
// a short while: a reload shows them at once and checks them against a fresh
// first page (shown anew when it differs). Changes made in this tab drop them.
const SAVED = "image-repo.timeline";
const SAVE_AT_MOST = 400; // images
const SAVED_FOR = 10 * 60_000; // ms

const unfiltered = () => Object.keys(apiFilters(state.filters)).length === 0;

function save() {
  if (!unfiltered() || state.items.length > SAVE_AT_MOST) return;
  const saved = { at: Date.now(), items: state.items, cursor: state.cursor, done: state.done };
  try {
    sessionStorage.setItem(SAVED, JSON.stringify(saved));
  } catch {
    // Storage full or refused: the timeline is only not kept.
  }
}

function restore() {
  if (state.items.length || !unfiltered()) return false;
  let saved;
  try {
    saved = JSON.parse(sessionStorage.getItem(SAVED));
  } catch {
    return false;
  }
  if (!saved || !saved.items.length || Date.now() - saved.at > SAVED_FOR) return false;
  // Signed URLs that stop soon are no use.
  const soon = Date.now() + SAVED_FOR;
  if (saved.items.some((i) => i.urls && Date.parse(i.urls.expires_at) < soon)) return false;
  state.generation++; // a first page asked before this is not wanted now
  state.loading = null;
  state.ahead = null;
  state.items = saved.items;
  state.cursor = saved.cursor;
  state.done = saved.done;
  state.restored = true;
  return true;
}

/** Whether the restored first page is what the service lists now (for the
 * timeline of `generation`: a later one, after filters or an upload, is its own). */
async function stillCurrent(generation) {
  if (generation !== state.generation) return true; // the person moved on
  const fresh = await fetchPage(null, false); // ids and versions are enough
  if (generation !== state.generation) return true; // the person moved on
  return fresh.items.every((item, i) => {
    const kept = state.items[i];
    return kept && kept.id === item.id && kept.updated_at === item.updated_at;
  }) && (fresh.next_cursor !== null || fresh.items.length === state.items.length);
}

function reset(filters = state.filters) {
  state.filters = filters;
  state.items = [];
  state.cursor = null;
  state.done = false;
  state.loading = null;
  state.ahead = null;
  state.restored = false;
  state.generation++;
}

function fetchPage(cursor, signed = true) {
  const limit = cursor ? PAGE : FIRST_PAGE;
  const params = { ...apiFilters(state.filters), sort: "-taken_at", limit, cursor };
  const path = `/images${query(params)}`;
  return get(signed ? withUrls(path) : path);
}

/** Run `work` once the browser has drawn what it has (the thumbnails come first). */
function afterThumbnails(work) {
  if (window.requestIdleCallback) requestIdleCallback(work, { timeout: 1000 });
  else setTimeout(work, 200);
}

async function nextPage() {
  if (state.done) return [];
  if (state.loading) return state.loading;
  const generation = state.generation;
  const ahead = state.ahead && state.ahead.cursor === state.cursor ? state.ahead.page : null;
  state.ahead = null;
  state.loading = (ahead || fetchPage(state.cursor)).then((page) => {
    if (generation !== state.generation) return []; // filters changed meanwhile
    state.items.push(...page.items);
    state.cursor = page.next_cursor;
    state.done = !page.next_cursor;
    state.loading = null;
    browsing.ids = state.items.map((i) => i.id);
    save();
    if (!state.done) {
      // Read one page ahead: it is on its way while this one is drawn.
      const next = { cursor: state.cursor, page: fetchPage(state.cursor) };
      next.page.catch(() => {
        if (state.ahead === next) state.ahead = null;
      });
      state.ahead = next;
    }
    return page.items;
  });
  state.loading.catch(() => {
    state.loading = null;
  });
  return state.loading;
}

/** Start loading the first page now (at sign-in, while other answers are awaited). */
export function prefetchTimeline() {
  if (!state.items.length && !restore()) nextPage().catch(() => {});
}

/** Reload from the first page (after an upload or a change of filters). */
export function invalidateTimeline() {
  reset();
  sessionStorage.removeItem(SAVED);
}

function filterForm(onApply) {
  const f = state.filters;
  const field = (id, label, input) =>
    h("div", { class: "field" }, h("label", { for: id }, label), input);
  const q = h("input", { id: "filter-q", type: "search", value: f.q || "" });
  const tag = h("input", { id: "filter-tag", type: "text", value: f.tag || "" });
  const from = h("input", { id: "filter-from", type: "date", value: (f.taken_after || "").slice(0, 10) });
  const to = h("input", { id: "filter-to", type: "date", value: f.to_day || "" });
  const gps = h(
    "select",
    { id: "filter-gps" },
    h("option", { value: "" }, "Any"),
    h("option", { value: "true", selected: f.has_gps === "true" }, "With GPS"),
    h("option", { value: "false", selected: f.has_gps === "false" }, "Without GPS"),
  );
  const form = h(
    "form",
    { class: "filters", role: "search", "aria-label": "Filter images" },
    field("filter-q", "Text", q),
    field("filter-tag", "Tag", tag),
    field("filter-from", "Taken from", from),
    field("filter-to", "Taken until", to),
    field("filter-gps", "GPS", gps),
    h("div", { class: "field buttons" },
      h("button", { type: "submit" }, "Apply"),
      h("button", { type: "reset", class: "quiet" }, "Clear")),
  );
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    // "Until" a day includes it: the API's bound excludes, so ask for the next day.
    let before;
    if (to.value) {
      const next = new Date(`${to.value}T00:00:00Z`);
      next.setUTCDate(next.getUTCDate() + 1);
      before = next.toISOString().slice(0, 10);
    }
    onApply({
      q: q.value.trim() || undefined,
      tag: tag.value.trim() || undefined,
      taken_after: from.value || undefined,
      taken_before: before,
      to_day: to.value || undefined,
      has_gps: gps.value || undefined,
    });
  });
  form.addEventListener("reset", () => setTimeout(() => onApply({})));
  return form;
}

function apiFilters(filters) {
  const { to_day: _ignored, ...rest } = filters;
  return rest;
}

function monthJump(onJump) {
  const select = h("select", { id: "jump-month" }, h("option", { value: "" }, "Choose a month"));
  select.addEventListener("change", () => select.value && onJump(select.value));
  const field = h("div", { class: "field jump" }, h("label", { for: "jump-month" }, "Jump to month"), select);
  // Asked once the grid has its first page: the thumbnails come first.
  const fill = () =>
    get("/images/timeline?granularity=month").then((months) => {
      for (const bucket of months.buckets) {
        select.append(h("option", { value: bucket.period }, `${monthName(bucket.period)} (${bucket.count})`));
      }
    }, () => {});
  return { field, fill };
}

export async function timelinePage() {
  const grid = h("div", { class: "timeline", id: "timeline" });
  const status = h("p", { class: "more", role: "status" });
  const sentinel = h("div", { class: "sentinel", "aria-hidden": "true" });
  arrowKeys(grid);
  let lastMonth = null;
  let lastDay = null;
  let dayGrid = null;

  const render = (items) => {
    for (const image of items) {
      const day = dayOf(image);
      if (day.slice(0, 7) !== lastMonth) {
        lastMonth = day.slice(0, 7);
        grid.append(h("h2", { class: "month", id: `month-${lastMonth}` }, monthName(lastMonth)));
        lastDay = null;
      }
      if (day !== lastDay) {
        lastDay = day;
        dayGrid = h("div", { class: "grid" });
        grid.append(h("section", { class: "day", "aria-label": dayName(day) },
          h("h3", {}, dayName(day)), dayGrid));
      }
      dayGrid.append(tile(image, `#/image/${image.id}`));
    }
    const shown = state.items.length;
    status.textContent = state.done
      ? shown ? `${shown} image${shown === 1 ? "" : "s"}.` : "No images here yet."
      : "Loading more…";
  };

  const more = async () => {
    const items = await nextPage();
    render(items);
    return items;
  };

  const restart = async (filters) => {
    reset(filters);
    grid.replaceChildren();
    lastMonth = lastDay = null;
    browsing.ids = [];
    await more();
  };

  const jump = async (period) => {
    // Load pages until the month is there (the grid is one keyset list).
    while (!grid.querySelector(`#month-${period}`) && !state.done) {
      const items = await more();
      if (items.length && dayOf(items[items.length - 1]).slice(0, 7) < period) break;
    }
    const target = grid.querySelector(`#month-${period}`) ||
      [...grid.querySelectorAll("h2.month")].find((m) => m.id.slice(6) < period);
    if (target) {
      target.scrollIntoView();
      const first = target.nextElementSibling && target.nextElementSibling.querySelector("a.tile");
      if (first) first.focus({ preventScroll: true });
    }
  };

  const form = filterForm((filters) => restart(filters));
  const header = h("div", { class: "timeline-head" },
    h("h1", {}, "Timeline"),
    can("images:write") ? uploadPanel(() => {
      sessionStorage.removeItem(SAVED);
      restart(state.filters);
    }) : null);
  // Folded on a phone: the grid comes first there.
  const tools = h("details", { class: "tools", open: window.matchMedia("(min-width: 800px)").matches },
    h("summary", {}, "Filters and months"), h("div", { class: "tool-row" }, form));
  show("Timeline", header, tools, grid, status, sentinel);
  const months = monthJump(jump);
  form.parentElement.append(months.field);
  if (state.restored || restore()) {
    state.restored = false;
    render(state.items);
    const generation = state.generation;
    afterThumbnails(() =>
      stillCurrent(generation).then((current) => current || restart(state.filters), () => {}));
  } else if (state.items.length) {
    render(state.items);
  } else {
    await more();
  }
  afterThumbnails(months.fill);
  browsing.ids = state.items.map((i) => i.id);
  browsing.back = "#/";

  const endless = new IntersectionObserver(
    async (entries) => {
      if (!entries.some((e) => e.isIntersecting) || state.done) return;
      if (!document.body.contains(sentinel)) return endless.disconnect();
      await more();
      // Still in view (a tall screen): ask again.
      endless.unobserve(sentinel);
      endless.observe(sentinel);
    },
    { rootMargin: "1200px 0px" },
  );
  endless.observe(sentinel);

  const back = browsing.returnTo;
  if (back) {
    browsing.returnTo = null;
    const target = grid.querySelector(`a.tile[data-id="${CSS.escape(back)}"]`);
    if (target) {
      target.scrollIntoView({ block: "center" });
      target.focus({ preventScroll: true });
    }
  }
}
