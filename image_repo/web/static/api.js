// The JSON API, called with the key pasted at sign-in (session storage only).

const KEY = "image-repo.api-key";

export const getKey = () => sessionStorage.getItem(KEY);
export const setKey = (key) => sessionStorage.setItem(KEY, key);
// Signing out forgets everything the tab kept (the key, the saved timeline).
export const clearKey = () => sessionStorage.clear();

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `The service answered ${status}.`);
    this.status = status;
    this.body = body;
  }
}

// The API's root: the folder above the gallery's page, so a service mounted
// under a path prefix (SCRIPT_NAME) works as well as one at the root.
const ROOT = new URL("../", document.baseURI);

/** The absolute URL of an API path written from the root ("/images"). */
export const apiUrl = (path) => new URL(path.replace(/^\//, ""), ROOT).href;

function authHeaders(extra = {}) {
  return { ...extra, Authorization: `Bearer ${getKey()}` };
}

async function readBody(response) {
  if (response.status === 204) return null;
  const type = response.headers.get("Content-Type") || "";
  if (type.includes("json")) return response.json();
  return null;
}

// Listeners told when the key stops working (revoked, expired): back to sign-in.
const onUnauthorized = new Set();
export const whenUnauthorized = (fn) => onUnauthorized.add(fn);

/** Call the API; answers {data, response}; throws ApiError on a 4xx/5xx. */
export async function call(path, { method = "GET", json, headers = {} } = {}) {
  const init = { method, headers: authHeaders(headers) };
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  }
  const response = await fetch(apiUrl(path), init);
  const data = await readBody(response);
  if (!response.ok) {
    if (response.status === 401) onUnauthorized.forEach((fn) => fn());
    throw new ApiError(response.status, data);
  }
  return { data, response };
}

export const get = async (path) => (await call(path)).data;

/** The bytes of a keyed URL (a rendition, the original) as a Blob. */
export async function fetchBlob(path) {
  const response = await fetch(apiUrl(path), { headers: authHeaders() });
  if (!response.ok) throw new ApiError(response.status, await readBody(response));
  return response.blob();
}

export function query(params) {
  const search = new URLSearchParams();
  for (const [name, value] of Object.entries(params)) {
    if (value !== undefined && value !== null && value !== "") search.set(name, value);
  }
  const text = search.toString();
  return text ? `?${text}` : "";
}

/**
 * Upload one file with XMLHttpRequest (fetch reports no upload progress).
 * onProgress(loaded, total); answers {status, body}; never throws for HTTP errors.
 */
export function upload(path, file, onProgress) {
  return new Promise((resolve) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", apiUrl(path));
    xhr.setRequestHeader("Authorization", `Bearer ${getKey()}`);
    xhr.setRequestHeader("Accept", "application/json");
    xhr.responseType = "json";
    xhr.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    xhr.addEventListener("load", () => {
      if (xhr.status === 401) onUnauthorized.forEach((fn) => fn());
      resolve({ status: xhr.status, body: xhr.response });
    });
    xhr.addEventListener("error", () =>
      resolve({ status: 0, body: { message: "The upload was cut off (network error)." } }),
    );
    const form = new FormData();
    form.append("image", file, file.name);
    xhr.send(form);
  });
}
