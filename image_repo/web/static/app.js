// The gallery's entry: sign-in, the header, and a hash router (#/, #/image/ID,
// #/albums, #/album/ID). Hash routes keep every page at /app/ on the server.

import { albumPage, albumsPage } from "./albums.js";
import { ApiError, clearKey, get, getKey, setKey, whenUnauthorized } from "./api.js";
import { imagePage } from "./image.js";
import { session } from "./session.js";
import { prefetchTimeline, timelinePage } from "./timeline.js";
import { h, show, toast } from "./ui.js";

function signInPage(message) {
  document.getElementById("bar").hidden = true;
  const input = h("input", {
    id: "api-key", name: "api-key", type: "password", required: true,
    autocomplete: "off", spellcheck: "false",
  });
  const error = h("p", { class: "error", id: "sign-in-error", role: "alert" }, message || "");
  const form = h(
    "form",
    { class: "sign-in", "aria-describedby": "sign-in-help" },
    h("label", { for: "api-key" }, "API key"),
    input,
    h("p", { id: "sign-in-help", class: "help" },
      "Paste a key of your tenant (image-repo keys create). It stays in this tab only, " +
        "and is forgotten when the tab closes."),
    error,
    h("button", { type: "submit" }, "Sign in"),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    setKey(input.value.trim());
    try {
      await start();
    } catch (err) {
      clearKey();
      error.textContent = err instanceof ApiError ? err.message : "The service did not answer.";
      input.focus();
    }
  });
  show("Sign in", h("h1", {}, "Sign in to the gallery"), form);
  input.focus();
}

async function start() {
  const me = get("/me");
  if ((location.hash || "#/") === "#/") prefetchTimeline();
  session.me = await me;
  document.getElementById("who").textContent = `${session.me.tenant_name} (${session.me.group})`;
  document.getElementById("bar").hidden = false;
  await route();
}

function signOut() {
  clearKey();
  session.me = null;
  location.hash = "#/";
  signInPage("Signed out.");
}

async function route() {
  if (!getKey() || !session.me) return;
  const path = location.hash.replace(/^#/, "") || "/";
  const [, page, id] = path.split("/");
  for (const link of document.querySelectorAll("header nav a")) {
    const current = (page || "") === link.getAttribute("href").split("/")[1] ||
      (page === "album" && link.id === "nav-albums") ||
      (page === "image" && link.id === "nav-timeline");
    if (current) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  try {
    if (page === "image" && id) await imagePage(id);
    else if (page === "albums") await albumsPage();
    else if (page === "album" && id) await albumPage(id);
    else await timelinePage();
  } catch (err) {
    if (err instanceof ApiError && err.status === 401) return;
    const text = err instanceof ApiError ? err.message : String(err);
    show("Error", h("h1", {}, "Something went wrong"), h("p", { role: "alert" }, text),
      h("p", {}, h("a", { href: "#/" }, "Back to the timeline")));
  }
}

whenUnauthorized(() => {
  clearKey();
  session.me = null;
  signInPage("The key was refused (revoked or expired?). Sign in again.");
});

document.getElementById("sign-out").addEventListener("click", signOut);
window.addEventListener("hashchange", route);

if (getKey()) {
  start().catch((err) => {
    if (!(err instanceof ApiError && err.status === 401)) {
      toast(err.message);
      signInPage(err.message);
    }
  });
} else {
  signInPage();
}
