// One image: a large rendition sized to the screen, its metadata, editing
// with If-Match (a conflict is shown, the edit kept), albums, sharing,
// download, delete, similar images; arrows walk the grid it came from.

import { ApiError, call, get } from "./api.js";
import { paintBehind } from "./blurhash.js";
import { tile } from "./grid.js";
import { browsing, can } from "./session.js";
import { largeSources, originalUrl, withUrls } from "./sources.js";
import { sharePanel } from "./share.js";
import { invalidateTimeline } from "./timeline.js";
import { bytes, confirmDialog, h, imageLabel, show, toast } from "./ui.js";

let keyHandler = null;

function exposure(image) {
  const parts = [];
  if (image.exposure_time) {
    const t = image.exposure_time;
    parts.push(t < 1 ? `1/${Math.round(1 / t)} s` : `${t} s`);
  }
  if (image.f_number) parts.push(`f/${image.f_number}`);
  if (image.iso) parts.push(`ISO ${image.iso}`);
  if (image.focal_length) parts.push(`${image.focal_length} mm`);
  return parts.join(" · ");
}

function takenAt(image) {
  if (!image.taken_at) return null;
  // As the camera wrote it, with its offset; "offset unknown" when EXIF had none.
  const text = image.taken_at.replace("T", " ").replace(/\.\d+/, "");
  return image.taken_at_offset_known ? text : `${text.replace(/[+-]\d\d:\d\d$|Z$/, "")} (offset unknown)`;
}

function gps(image) {
  if (image.gps_latitude === null || image.gps_longitude === null) {
    return image.has_gps ? "Tagged, position unreadable" : null;
  }
  const lat = image.gps_latitude.toFixed(6);
  const lon = image.gps_longitude.toFixed(6);
  const href = `https://www.openstreetmap.org/?mlat=${lat}&mlon=${lon}#map=15/${lat}/${lon}`;
  return h("span", {}, `${lat}, ${lon}`,
    image.gps_altitude !== null ? ` (${Math.round(image.gps_altitude)} m)` : "", " ",
    h("a", { href, rel: "noopener noreferrer", target: "_blank" }, "Show on OpenStreetMap"));
}

function metadata(image) {
  const rows = [
    ["File", image.filename],
    ["Format", `${image.format}${image.animated ? `, animated (${image.frames} frames)` : ""}`],
    ["Dimensions", `${image.width} × ${image.height} px`],
    ["File size", bytes(image.bytes)],
    ["Taken", takenAt(image)],
    ["Uploaded", new Date(image.uploaded_at).toLocaleString()],
    ["Camera", [image.camera_make, image.camera_model].filter(Boolean).join(" ") || null],
    ["Lens", image.lens],
    ["Exposure", exposure(image) || null],
    ["Position", gps(image)],
    ["Tags", image.tags.length ? image.tags.join(", ") : null],
  ];
  return h("dl", { class: "meta" },
    rows.filter(([, v]) => v).map(([k, v]) => [h("dt", {}, k), h("dd", {}, v)]));
}

function editForm(state, onSaved) {
  const title = h("input", { id: "edit-title", type: "text", maxLength: 200, value: state.image.title || "" });
  const tags = h("input", { id: "edit-tags", type: "text", value: state.image.tags.join(", ") });
  const description = h("textarea", { id: "edit-description", rows: 3, maxLength: 5000 });
  description.value = state.image.description || "";
  const conflict = h("div", { class: "conflict", role: "alert", hidden: true });
  const error = h("p", { class: "error", role: "alert" });
  const form = h("form", { class: "edit" },
    h("div", { class: "field" }, h("label", { for: "edit-title" }, "Title"), title),
    h("div", { class: "field" }, h("label", { for: "edit-tags" }, "Tags (comma-separated)"), tags),
    h("div", { class: "field" }, h("label", { for: "edit-description" }, "Description"), description),
    conflict, error,
    h("button", { type: "submit" }, "Save"));

  const values = () => ({
    title: title.value.trim() || null,
    description: description.value.trim() || null,
    tags: tags.value.split(",").map((t) => t.trim()).filter(Boolean),
  });

  const save = async () => {
    error.textContent = "";
    try {
      const { data, response } = await call(`/images/${state.image.id}`, {
        method: "PATCH", json: values(), headers: { "If-Match": state.etag },
      });
      state.image = data;
      state.etag = response.headers.get("ETag");
      conflict.hidden = true;
      toast("Saved.");
      invalidateTimeline();
      onSaved();
    } catch (err) {
      if (err instanceof ApiError && err.status === 412) return showConflict();
      error.textContent = err.message;
    }
  };

  // Someone else saved first: show theirs, keep ours in the form, let the person choose.
  const showConflict = async () => {
    const { data, response } = await call(`/images/${state.image.id}`);
    const theirs = data;
    conflict.replaceChildren(
      h("p", {}, h("strong", {}, "This image was changed by someone else while you edited it. "),
        "Your changes are still in the form and were not saved."),
      h("p", {}, `Their title: “${theirs.title || "(none)"}”; tags: ${theirs.tags.join(", ") || "(none)"}.`),
      h("div", { class: "actions" },
        h("button", { type: "button", onclick: () => { state.etag = response.headers.get("ETag"); save(); } },
          "Save mine over theirs"),
        h("button", { type: "button", class: "quiet", onclick: () => {
          state.image = theirs;
          state.etag = response.headers.get("ETag");
          title.value = theirs.title || "";
          tags.value = theirs.tags.join(", ");
          description.value = theirs.description || "";
          conflict.hidden = true;
          onSaved();
        } }, "Discard mine, use theirs")));
    conflict.hidden = false;
    conflict.querySelector("button").focus();
  };

  form.addEventListener("submit", (event) => {
    event.preventDefault();
    save();
  });
  return form;
}

async function albumsBox(image) {
  const select = h("select", { id: "album-choice" });
  const status = h("p", { class: "help", role: "status" });
  const page = await get("/collections?limit=200");
  if (!page.items.length) {
    return h("section", { class: "panel", "aria-labelledby": "albums-heading" },
      h("h2", { id: "albums-heading" }, "Albums"),
      h("p", {}, "No albums yet. ", h("a", { href: "#/albums" }, "Create one")));
  }
  for (const album of page.items) select.append(h("option", { value: album.id }, album.name));
  const form = h("form", { class: "inline" },
    h("label", { for: "album-choice" }, "Album"), select,
    h("button", { type: "submit" }, "Add to album"));
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = select.selectedOptions[0].textContent;
    try {
      const { data } = await call(`/collections/${select.value}/images/${image.id}`, { method: "PUT" });
      status.textContent = data.added ? `Added to ${name}.` : `Already in ${name}.`;
    } catch (err) {
      status.textContent = err.message;
    }
  });
  return h("section", { class: "panel", "aria-labelledby": "albums-heading" },
    h("h2", { id: "albums-heading" }, "Albums"), form, status);
}

async function similarBox(image) {
  // (This list has no signed URLs: its thumbnails come the keyed way.)
  const found = await get(`/images/${image.id}/similar?limit=12`);
  if (!found.items.length) return null;
  const grid = h("div", { class: "grid small" },
    found.items.map((item) => tile(item.image, `#/image/${item.image.id}`)));
  return h("section", { class: "panel", "aria-labelledby": "similar-heading" },
    h("h2", { id: "similar-heading" }, "Similar images"), grid);
}

export async function imagePage(id) {
  const { data: image, response } = await call(withUrls(`/images/${id}`));
  const state = { image, etag: response.headers.get("ETag") };
  const at = browsing.ids.indexOf(id);
  const prev = at > 0 ? browsing.ids[at - 1] : null;
  const next = at >= 0 && at < browsing.ids.length - 1 ? browsing.ids[at + 1] : null;

  const big = h("img", { alt: imageLabel(image), sizes: "(min-width: 1000px) 70vw, 100vw" });
  const figure = h("figure", { class: "large" }, big);
  paintBehind(figure, image.blurhash);
  figure.style.aspectRatio = `${image.width} / ${image.height}`;
  big.addEventListener("load", () => figure.classList.add("loaded"));
  largeSources(image).then(({ src, srcset }) => {
    if (srcset) big.srcset = srcset;
    big.src = src;
  });

  const heading = h("h1", {}, imageLabel(image));
  const details = h("div", { class: "details" }, metadata(image));
  const refresh = () => {
    heading.textContent = imageLabel(state.image);
    details.replaceChildren(metadata(state.image));
  };

  const download = h("button", { type: "button", onclick: async () => {
    const url = await originalUrl(state.image);
    const link = h("a", { href: url, download: state.image.filename, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
  } }, "Download original");
  const remove = can("images:delete") && h("button", { type: "button", class: "danger", onclick: async () => {
    const sure = await confirmDialog(`Delete “${imageLabel(state.image)}”? It goes to the trash.`);
    if (!sure) return;
    await call(`/images/${id}`, { method: "DELETE" });
    browsing.ids = browsing.ids.filter((i) => i !== id);
    invalidateTimeline();
    toast("Image deleted (moved to the trash).");
    location.hash = browsing.back;
  } }, "Delete");

  const nav = h("nav", { class: "pager", "aria-label": "Image" },
    h("a", { href: browsing.back, class: "back" }, "← Back"),
    prev ? h("a", { href: `#/image/${prev}`, rel: "prev" }, "‹ Previous") : null,
    next ? h("a", { href: `#/image/${next}`, rel: "next" }, "Next ›") : null);

  const side = h("div", { class: "side" },
    details,
    h("div", { class: "actions" }, download, remove),
    can("images:write") ? h("section", { class: "panel", "aria-labelledby": "edit-heading" },
      h("h2", { id: "edit-heading" }, "Edit"), editForm(state, refresh)) : null);
  show(imageLabel(image), nav, heading, h("div", { class: "image-page" }, figure, side));

  browsing.returnTo = id;
  if (keyHandler) document.removeEventListener("keydown", keyHandler);
  keyHandler = (event) => {
    if (!location.hash.startsWith(`#/image/${id}`)) {
      document.removeEventListener("keydown", keyHandler);
      return;
    }
    if (event.target.closest("input, textarea, select, dialog")) return;
    if (event.key === "ArrowLeft" && prev) location.hash = `#/image/${prev}`;
    else if (event.key === "ArrowRight" && next) location.hash = `#/image/${next}`;
    else if (event.key === "Escape") location.hash = browsing.back;
  };
  document.addEventListener("keydown", keyHandler);

  // The rest arrives later; the person may have moved on meanwhile.
  if (can("images:write")) {
    const albums = await albumsBox(image);
    if (!side.isConnected) return;
    side.append(albums);
  }
  if (can("shares:manage")) side.append(sharePanel({ image_id: id }));
  const similar = await similarBox(image);
  if (similar && side.isConnected) document.getElementById("main").append(similar);
}
