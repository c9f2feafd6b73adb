// Where an <img> gets its bytes: the one module that knows.
//
// Images asked for with ?urls=true carry signed `urls`: an <img> takes them as
// they are, no key, cacheable by the browser. Lists without them (similar
// images) have their bytes fetched with the key and shown from blob: URLs.

import { call, fetchBlob } from "./api.js";

/** `path` asking for signed URLs in the answer. */
export function withUrls(path) {
  return `${path}${path.includes("?") ? "&" : "?"}urls=true`;
}

const blobs = new Map(); // keyed path -> Promise<blob: URL>, kept for the tab's life

function keyedBlobUrl(path) {
  if (!blobs.has(path)) {
    const made = fetchBlob(path).then((blob) => URL.createObjectURL(blob));
    made.catch(() => blobs.delete(path));
    blobs.set(path, made);
  }
  return blobs.get(path);
}

/** The signed URL of the image's grid thumbnail, or null when it came without one. */
export function signedThumbnailUrl(image) {
  return (image.urls && image.urls.thumbnail) || null;
}

/** A URL for the image's grid thumbnail. */
export async function thumbnailUrl(image) {
  return signedThumbnailUrl(image) || keyedBlobUrl(`/images/${image.id}/thumbnail?size=thumb`);
}

// Widths offered in a srcset (never more than the image has).
const WIDTHS = [480, 960, 1600, 2400];
const SIGNED_FOR = 3600; // seconds

function widthsFor(image) {
  const widths = WIDTHS.filter((w) => w < image.width);
  widths.push(Math.min(image.width, WIDTHS[WIDTHS.length - 1]));
  return [...new Set(widths)];
}

// Signed rendition URLs, reused while they have a while to live (the same URL
// is the same browser-cache entry when the person comes back to an image).
const signedUrls = new Map(); // "id width" -> {url, until}

async function signed(image, width) {
  const key = `${image.id} ${width}`;
  const known = signedUrls.get(key);
  if (known && known.until > Date.now() + 60_000) return known.url;
  const { data } = await call(`/images/${image.id}/signed-url`, {
    method: "POST",
    json: { width, format: "webp", expires_in: SIGNED_FOR },
  });
  signedUrls.set(key, { url: data.url, until: Date.parse(data.expires_at) });
  return data.url;
}

/** {src, srcset} for the large view, sized to the screen. */
export async function largeSources(image) {
  if (image.urls) {
    try {
      const widths = widthsFor(image);
      const urls = await Promise.all(widths.map((w) => signed(image, w)));
      const srcset = urls.map((url, i) => `${url} ${widths[i]}w`).join(", ");
      return { src: image.urls.preview || urls[urls.length - 1], srcset };
    } catch {
      if (image.urls.preview) return { src: image.urls.preview, srcset: "" };
    }
  }
  // One rendition for this screen: a srcset of keyed URLs could not be fetched.
  const wanted = Math.ceil(Math.min(window.innerWidth, 1600) * (window.devicePixelRatio || 1));
  const width = widthsFor(image).find((w) => w >= wanted) || Math.min(image.width, 2400);
  return { src: await keyedBlobUrl(`/images/${image.id}/render?width=${width}&format=webp`), srcset: "" };
}

/** A URL that downloads the original file. */
export async function originalUrl(image) {
  if (image.urls && image.urls.original) return image.urls.original;
  return keyedBlobUrl(`/images/${image.id}/file?download=true`);
}
