// Thumbnail tiles. With a signed URL the <img> has its source at once and the
// browser's own lazy loading decides when to fetch it; without one (lists
// not asked with urls) the bytes are fetched with the key when the tile comes
// near the viewport. A tile whose thumbnail has not arrived shortly gets its
// BlurHash painted behind it, faded out once the thumbnail has loaded: a
// thumbnail in the browser's cache costs no placeholder at all.

import { placeholderCanvas } from "./blurhash.js";
import { signedThumbnailUrl, thumbnailUrl } from "./sources.js";
import { h, imageLabel } from "./ui.js";

const PLACEHOLDER_AFTER = 50; // ms

const waiting = new WeakMap(); // tile -> image whose keyed thumbnail is not asked yet

function load(tile) {
  const image = waiting.get(tile);
  if (!image) return;
  waiting.delete(tile);
  const img = tile.querySelector("img");
  thumbnailUrl(image).then(
    (url) => {
      img.src = url;
    },
    () => tile.classList.add("failed"),
  );
}

const nearby = new IntersectionObserver(
  (entries) => {
    for (const entry of entries) {
      if (entry.isIntersecting) {
        nearby.unobserve(entry.target);
        load(entry.target);
      }
    }
  },
  { rootMargin: "800px 0px" },
);

let unpainted = []; // [tile, blurhash] not yet given a placeholder
let painter = null;

function paintPlaceholders() {
  painter = null;
  const due = unpainted;
  unpainted = [];
  for (const [link, hash] of due) {
    if (link.classList.contains("loaded") || link.classList.contains("failed")) continue;
    const canvas = placeholderCanvas(hash);
    if (canvas) link.prepend(canvas);
  }
}

/** A link to `href` showing the image's thumbnail. */
export function tile(image, href) {
  const signed = signedThumbnailUrl(image);
  // `loading` before `src`: an eager load would start as soon as src is set.
  const img = h("img", { alt: imageLabel(image), loading: "lazy", decoding: "async" });
  const link = h("a", { class: "tile", href, "data-id": image.id }, img);
  img.addEventListener("load", () => link.classList.add("loaded"));
  img.addEventListener("error", () => link.classList.add("failed"));
  if (signed) {
    img.src = signed;
  } else {
    waiting.set(link, image);
    nearby.observe(link);
  }
  if (image.blurhash) {
    unpainted.push([link, image.blurhash]);
    painter = painter || setTimeout(paintPlaceholders, PLACEHOLDER_AFTER);
  }
  return link;
}

/** Arrow keys move the focus between the tiles of `container`. */
export function arrowKeys(container) {
  container.addEventListener("keydown", (event) => {
    if (!["ArrowLeft", "ArrowRight", "ArrowUp", "ArrowDown"].includes(event.key)) return;
    const tiles = [...container.querySelectorAll("a.tile")];
    const at = tiles.indexOf(document.activeElement);
    if (at < 0) return;
    let next = at;
    if (event.key === "ArrowLeft") next = at - 1;
    else if (event.key === "ArrowRight") next = at + 1;
    else {
      // The tile above or below: nearest in x on the previous or next row.
      const here = tiles[at].getBoundingClientRect();
      const down = event.key === "ArrowDown";
      const row = tiles.filter((t) => {
        const box = t.getBoundingClientRect();
        return down ? box.top > here.top + 1 : box.top < here.top - 1;
      });
      if (row.length) {
        const rowTop = down
          ? Math.min(...row.map((t) => t.getBoundingClientRect().top))
          : Math.max(...row.map((t) => t.getBoundingClientRect().top));
        const candidates = row.filter((t) => Math.abs(t.getBoundingClientRect().top - rowTop) < 1);
        candidates.sort(
          (a, b) =>
            Math.abs(a.getBoundingClientRect().left - here.left) -
            Math.abs(b.getBoundingClientRect().left - here.left),
        );
        next = tiles.indexOf(candidates[0]);
      }
    }
    if (next >= 0 && next < tiles.length && next !== at) {
      event.preventDefault();
      tiles[next].focus();
    }
  });
}
