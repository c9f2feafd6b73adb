// Uploads: a file picker or files dropped anywhere on the page, several at a
// time, each with its progress bar and the server's answer.

import { upload } from "./api.js";
import { withUrls } from "./sources.js";
import { h, toast } from "./ui.js";

const AT_ONCE = 2;

function row(file) {
  const progress = h("progress", { max: 100, value: 0, "aria-label": `Upload of ${file.name}` });
  const status = h("span", { class: "status" }, "Waiting…");
  const item = h("li", { class: "upload", "data-file": file.name },
    h("span", { class: "name" }, file.name), progress, status);
  return { item, progress, status };
}

async function send(file, view) {
  view.status.textContent = "Uploading…";
  view.item.classList.add("active");
  const answer = await upload(withUrls("/images"), file, (loaded, total) => {
    view.progress.value = Math.round((100 * loaded) / total);
  });
  view.item.classList.remove("active");
  const body = answer.body || {};
  if (answer.status === 201) {
    view.progress.value = 100;
    view.status.textContent = "Uploaded";
    view.item.classList.add("done");
  } else if (answer.status === 200) {
    view.progress.value = 100;
    view.status.textContent = "Already in the library (duplicate)";
    view.item.classList.add("duplicate");
  } else {
    view.status.textContent = `Refused: ${body.message || `the service answered ${answer.status}`}`;
    view.item.classList.add("refused");
  }
  return answer.status === 201 || answer.status === 200;
}

/** The upload box; `onUploaded()` runs once a batch has stored something. */
export function uploadPanel(onUploaded) {
  const input = h("input", { id: "upload-input", type: "file", multiple: true, accept: "image/*" });
  const list = h("ul", { class: "uploads", "aria-label": "Uploads" });
  const zone = h("div", { class: "drop-zone" },
    h("label", { for: "upload-input", class: "button" }, "Upload images"),
    input,
    h("span", { class: "hint" }, "or drop files anywhere on this page"));
  const panel = h("section", { class: "upload-panel", "aria-label": "Upload" }, zone, list);

  const start = async (files) => {
    if (!files.length) return;
    const views = files.map((file) => {
      const view = row(file);
      list.prepend(view.item);
      return view;
    });
    let next = 0;
    let stored = 0;
    const worker = async () => {
      while (next < files.length) {
        const at = next++;
        if (await send(files[at], views[at])) stored++;
      }
    };
    await Promise.all(Array.from({ length: Math.min(AT_ONCE, files.length) }, worker));
    toast(`${stored} of ${files.length} file${files.length === 1 ? "" : "s"} stored.`);
    if (stored) onUploaded();
  };

  input.addEventListener("change", () => {
    const files = [...input.files];
    input.value = "";
    start(files);
  });

  // Drops anywhere on the page while the timeline shows.
  const over = (event) => {
    if (!panel.isConnected) return;
    if (event.dataTransfer && [...event.dataTransfer.types].includes("Files")) {
      event.preventDefault();
      document.body.classList.add("dragging");
    }
  };
  const leave = () => document.body.classList.remove("dragging");
  const drop = (event) => {
    leave();
    if (!panel.isConnected) return;
    event.preventDefault();
    start([...event.dataTransfer.files]);
  };
  document.addEventListener("dragover", over);
  document.addEventListener("dragleave", leave);
  document.addEventListener("drop", drop);
  const cleanup = new MutationObserver(() => {
    if (!panel.isConnected) {
      document.removeEventListener("dragover", over);
      document.removeEventListener("dragleave", leave);
      document.removeEventListener("drop", drop);
      cleanup.disconnect();
    }
  });
  queueMicrotask(() => cleanup.observe(document.getElementById("main"), { childList: true }));
  return panel;
}
