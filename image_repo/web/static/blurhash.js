// A BlurHash decoder (https://blurha.sh, the algorithm by Wolt, MIT): the
// placeholder painted while a thumbnail loads.

const DIGITS =
  "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz#$%*+,-.:;=?@[]^_{|}~";

function decode83(text) {
  let value = 0;
  for (const char of text) {
    const digit = DIGITS.indexOf(char);
    if (digit < 0) throw new Error("not a BlurHash");
    value = value * 83 + digit;
  }
  return value;
}

function toLinear(value) {
  const v = value / 255;
  return v <= 0.04045 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
}

function toSRGB(value) {
  const v = Math.max(0, Math.min(1, value));
  return Math.round((v <= 0.0031308 ? v * 12.92 : 1.055 * Math.pow(v, 1 / 2.4) - 0.055) * 255);
}

const signPow = (value, exp) => Math.sign(value) * Math.pow(Math.abs(value), exp);

/** RGBA pixels (width x height) for `hash`, or null when it is not a BlurHash. */
export function decode(hash, width, height) {
  try {
    if (!hash || hash.length < 6) return null;
    const size = decode83(hash[0]);
    const ny = Math.floor(size / 9) + 1;
    const nx = (size % 9) + 1;
    if (hash.length !== 4 + 2 * nx * ny) return null;
    const maxAc = (decode83(hash[1]) + 1) / 166;
    const colours = [];
    const dc = decode83(hash.slice(2, 6));
    colours.push([toLinear(dc >> 16), toLinear((dc >> 8) & 255), toLinear(dc & 255)]);
    for (let i = 1; i < nx * ny; i++) {
      const ac = decode83(hash.slice(4 + i * 2, 6 + i * 2));
      colours.push(
        [Math.floor(ac / 361), Math.floor(ac / 19) % 19, ac % 19].map(
          (q) => signPow((q - 9) / 9, 2) * maxAc,
        ),
      );
    }
    const pixels = new Uint8ClampedArray(width * height * 4);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        let r = 0, g = 0, b = 0;
        for (let j = 0; j < ny; j++) {
          const cy = Math.cos((Math.PI * y * j) / height);
          for (let i = 0; i < nx; i++) {
            const basis = Math.cos((Math.PI * x * i) / width) * cy;
            const colour = colours[i + j * nx];
            r += colour[0] * basis;
            g += colour[1] * basis;
            b += colour[2] * basis;
          }
        }
        const at = 4 * (x + y * width);
        pixels[at] = toSRGB(r);
        pixels[at + 1] = toSRGB(g);
        pixels[at + 2] = toSRGB(b);
        pixels[at + 3] = 255;
      }
    }
    return pixels;
  } catch {
    return null;
  }
}

/** A small canvas showing `hash` (CSS stretches it), or null when it is not a BlurHash.
 *
 * A canvas, not a PNG data: URL: no encoding and no decoding per tile. */
export function placeholderCanvas(hash, width = 8, height = 8) {
  const pixels = decode(hash, width, height);
  if (!pixels) return null;
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  canvas.setAttribute("aria-hidden", "true");
  canvas.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
  return canvas;
}

const scratch = document.createElement("canvas");

/** `hash` as a small PNG data: URL (CSS stretches it), or null when it is not a BlurHash. */
export function placeholder(hash, width = 24, height = 24) {
  const pixels = decode(hash, width, height);
  if (!pixels) return null;
  scratch.width = width;
  scratch.height = height;
  scratch.getContext("2d").putImageData(new ImageData(pixels, width, height), 0, 0);
  return scratch.toDataURL("image/png");
}

/** Show `hash` behind `element`'s content (its background, stretched). */
export function paintBehind(element, hash) {
  const url = placeholder(hash);
  if (url) {
    // The CSSOM, not a style attribute: the page's CSP allows this.
    element.style.backgroundImage = `url("${url}")`;
    element.classList.add("has-placeholder");
  }
}
