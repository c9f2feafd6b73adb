// Albums (the API's collections): list, create, rename, open, remove images.

import { ApiError, call, get } from "./api.js";
import { arrowKeys, tile } from "./grid.js";
import { browsing, can } from "./session.js";
import { sharePanel } from "./share.js";
import { withUrls } from "./sources.js";
import { h, show, toast } from "./ui.js";

export async function albumsPage() {
  const albums = [];
  let cursor = null;
  do {
    const page = await get(`/collections?limit=200${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`);
    albums.push(...page.items);
    cursor = page.next_cursor;
  } while (cursor);

  const list = h("ul", { class: "albums" },
    albums.map((album) => h("li", {},
      h("a", { href: `#/album/${album.id}` }, album.name),
      h("span", { class: "count" }, ` ${album.image_count} image${album.image_count === 1 ? "" : "s"}`))));
  const name = h("input", { id: "album-name", type: "text", required: true, maxLength: 200 });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "inline" },
    h("label", { for: "album-name" }, "New album"), name,
    h("button", { type: "submit" }, "Create album"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      const { data } = await call("/collections", { method: "POST", json: { name: name.value.trim() } });
      toast(`Album “${data.name}” created.`);
      location.hash = `#/album/${data.id}`;
    } catch (err) {
      error.textContent = err.message;
    }
  });
  show("Albums", h("h1", {}, "Albums"),
    can("images:write") ? h("section", { class: "panel" }, form, error) : null,
    albums.length ? list : h("p", {}, "No albums yet."));
}

export async function albumPage(id) {
  const { data: album, response } = await call(`/collections/${id}`);
  let etag = response.headers.get("ETag");
  const heading = h("h1", {}, album.name);

  const name = h("input", { id: "rename-album", type: "text", required: true, maxLength: 200, value: album.name });
  const error = h("p", { class: "error", role: "alert" });
  const rename = h("form", { class: "inline" },
    h("label", { for: "rename-album" }, "Name"), name,
    h("button", { type: "submit" }, "Rename"));
  rename.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    try {
      const answer = await call(`/collections/${id}`, {
        method: "PATCH", json: { name: name.value.trim() }, headers: { "If-Match": etag },
      });
      etag = answer.response.headers.get("ETag");
      heading.textContent = answer.data.name;
      document.title = `${answer.data.name} · Image Repo`;
      toast("Album renamed.");
    } catch (err) {
      error.textContent = err instanceof ApiError && err.status === 412
        ? "The album changed meanwhile; reload the page to see its new name."
        : err.message;
    }
  });

  const grid = h("div", { class: "grid" });
  const status = h("p", { class: "more", role: "status" });
  arrowKeys(grid);
  const ids = [];
  let cursor = null;
  do {
    const page = await get(withUrls(`/collections/${id}/images?limit=200&sort=-taken_at${
      cursor ? `&cursor=${encodeURIComponent(cursor)}` : ""}`));
    for (const image of page.items) {
      ids.push(image.id);
      const removeButton = can("images:write") && h("button", {
        type: "button", class: "remove quiet", "aria-label": `Remove ${image.title || image.filename} from the album`,
        onclick: async () => {
          await call(`/collections/${id}/images/${image.id}`, { method: "DELETE" });
          cell.remove();
          browsing.ids = browsing.ids.filter((i) => i !== image.id);
          toast("Removed from the album.");
        },
      }, "Remove");
      const cell = h("div", { class: "cell" }, tile(image, `#/image/${image.id}`), removeButton);
      grid.append(cell);
    }
    cursor = page.next_cursor;
  } while (cursor);
  status.textContent = ids.length ? `${ids.length} image${ids.length === 1 ? "" : "s"}.` :
    "No images in this album yet: open an image and use “Add to album”.";
  browsing.ids = ids;
  browsing.back = `#/album/${id}`;

  show(album.name, h("nav", { class: "pager", "aria-label": "Album" }, h("a", { href: "#/albums" }, "← Albums")),
    heading,
    can("images:write") ? h("section", { class: "panel" }, rename, error) : null,
    grid, status,
    can("shares:manage") ? sharePanel({ collection_id: id }) : null);
}
