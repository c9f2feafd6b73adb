// Share links: create one for an image or an album, copy it, revoke it.

import { ApiError, call, get } from "./api.js";
import { h, toast } from "./ui.js";

const EXPIRIES = [
  [3600, "1 hour"],
  [86400, "1 day"],
  [7 * 86400, "7 days"],
  [30 * 86400, "30 days"],
];

// The service keeps only a hash of a link's token: its URL is known once, when
// it is made. Kept here for the tab's life so the person can still copy it.
const madeHere = new Map(); // share id -> URL

function shareRow(share, onRevoked) {
  const link = madeHere.get(share.id);
  const url = link && h("input", {
    type: "text", readOnly: true, value: link, class: "share-url",
    "aria-label": `Share link${share.label ? ` ${share.label}` : ""}`,
  });
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(link);
      toast("Link copied.");
    } catch {
      // No clipboard permission: select it for the person to copy.
      url.focus();
      url.select();
      toast("Press Ctrl+C (or ⌘C) to copy the selected link.");
    }
  };
  const revoke = async () => {
    await call(`/shares/${share.id}`, { method: "DELETE" });
    toast("Share link revoked.");
    onRevoked();
  };
  const expires = `until ${new Date(share.expires_at).toLocaleString()}`;
  const views = `${share.view_count} view${share.view_count === 1 ? "" : "s"}`;
  return h("li", { class: "share", "data-share": share.id },
    url || h("span", { class: "share-url" }, share.label || "Link made earlier (its URL is shown only once)"),
    h("span", { class: "meta" }, [url && share.label, expires, views,
      share.has_password ? "password" : "", share.allow_original ? "originals allowed" : ""]
      .filter(Boolean).join(" · ")),
    url && h("button", { type: "button", onclick: copy }, "Copy link"),
    h("button", { type: "button", class: "danger", onclick: revoke }, "Revoke"));
}

/** The share box for `{image_id}` or `{collection_id}`. */
export function sharePanel(target) {
  const list = h("ul", { class: "shares", "aria-label": "Share links" });
  const error = h("p", { class: "error", role: "alert" });
  const expires = h("select", { id: "share-expires" },
    EXPIRIES.map(([seconds, label]) => h("option", { value: seconds, selected: seconds === 7 * 86400 }, label)));
  const original = h("input", { id: "share-original", type: "checkbox" });
  const password = h("input", { id: "share-password", type: "password", autocomplete: "new-password" });
  const label = h("input", { id: "share-label", type: "text", maxLength: 200 });
  const form = h("form", { class: "share-form" },
    h("div", { class: "field" }, h("label", { for: "share-expires" }, "Expires after"), expires),
    h("div", { class: "field" }, h("label", { for: "share-label" }, "Label (optional)"), label),
    h("div", { class: "field" }, h("label", { for: "share-password" }, "Password (optional)"), password),
    h("div", { class: "field check" }, original, h("label", { for: "share-original" }, "Allow downloading the original")),
    h("button", { type: "submit" }, "Create share link"));
  const panel = h("section", { class: "panel share-panel", "aria-labelledby": "share-heading" },
    h("h2", { id: "share-heading" }, "Share"), form, error, list);

  const refresh = async () => {
    try {
      const all = [];
      let cursor = null;
      do {
        const page = await get(`/shares?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
        all.push(...page.items);
        cursor = page.next_cursor;
      } while (cursor);
      const key = target.image_id ? "image_id" : "collection_id";
      const mine = all.filter((s) => s[key] === target[key] && !s.expired).reverse();
      list.replaceChildren(...mine.map((s) => shareRow(s, refresh)));
    } catch (err) {
      if (err instanceof ApiError && err.status === 404) {
        panel.replaceChildren(h("h2", { id: "share-heading" }, "Share"),
          h("p", {}, "This service does not make share links."));
      } else {
        error.textContent = err.message;
      }
    }
  };

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const body = { ...target, expires_in: Number(expires.value), allow_original: original.checked };
    if (password.value) body.password = password.value;
    if (label.value.trim()) body.label = label.value.trim();
    try {
      const { data } = await call("/shares", { method: "POST", json: body });
      madeHere.set(data.id, data.url);
      password.value = "";
      toast("Share link created.");
      await refresh();
      const made = list.querySelector(`[data-share="${CSS.escape(data.id)}"] input`);
      if (made) made.focus();
    } catch (err) {
      error.textContent = err.message;
    }
  });
  refresh();
  return panel;
}
