// The pixmorph serve page: it uses only the server's JSON/HTTP API (see docs/serve.md).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { models: [], limits: {}, file: null, inputUrl: null, outputUrls: [] };

// A token travels in the URL fragment (#token=...), which browsers never send to a server.
function token() {
  const fromHash = new URLSearchParams(location.hash.slice(1)).get("token");
  if (fromHash) sessionStorage.setItem("pixmorph-token", fromHash);
  return sessionStorage.getItem("pixmorph-token") || "";
}

async function api(path, options = {}) {
  const headers = new Headers(options.headers || {});
  const t = token();
  if (t) headers.set("Authorization", "Bearer " + t);
  const response = await fetch(path, { ...options, headers });
  if (response.status === 401) $("token-box").hidden = false;
  if (!response.ok) {
    let message = response.status + " " + response.statusText;
    try { message = (await response.json()).error || message; } catch (e) { /* not JSON */ }
    const retry = response.headers.get("Retry-After");
    throw new Error(retry ? message + " (retry in " + retry + " s)" : message);
  }
  return response;
}

function status(text, isError = false) {
  $("status").textContent = text;
  $("status").className = isError ? "error" : "muted";
}

function fmt(v) {
  return typeof v === "number" ? (Number.isInteger(v) ? String(v) : v.toPrecision(4)) : String(v);
}

function figuresTable(title, figures) {
  const rows = Object.entries(figures).filter(([k, v]) => v !== null && v !== undefined);
  if (!rows.length) return "";
  const body = rows.map(([k, v]) => `<tr><td>${escapeHtml(k)}</td><td>${escapeHtml(fmt(v))}</td></tr>`);
  return `<p><b>${escapeHtml(title)}</b></p><table>${body.join("")}</table>`;
}

function escapeHtml(s) {
  return String(s).replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" })[c]);
}

function current() {
  return state.models.find((m) => m.name === $("model").value);
}

function showModel() {
  const m = current();
  if (!m) return;
  const ev = m.evaluation || {};
  $("model-info").innerHTML =
    `<table><tr><td>method</td><td>${escapeHtml(m.method)}</td></tr>` +
    `<tr><td>training steps</td><td>${m.step}</td></tr>` +
    `<tr><td>tiles</td><td>${m.tile ? m.tile + " px" : "whole image"}</td></tr></table>` +
    (ev.training ? figuresTable("evaluation during training", ev.training) : "") +
    (ev.report ? figuresTable("evaluation report (" + ev.report.folder + ")", ev.report) : "") +
    (ev.training || ev.report ? "" : '<p class="muted">no evaluation figures in this run</p>');
  $("direction").replaceChildren(...m.directions.map((d) => new Option(d, d)));
  $("direction-row").hidden = m.directions.length < 1;
  const caps = m.capabilities;
  $("styles-row").hidden = !caps.includes("styles");
  $("styles").max = state.limits.max_styles || 8;
  $("generate-row").hidden = !caps.includes("generate");
  $("run").hidden = !caps.includes("translate");
  $("drop").hidden = !caps.includes("translate");
}

async function loadModels() {
  try {
    const health = await (await api("/api/health")).json();
    $("health").textContent = `${health.models} model(s), ${health.busy}/${health.capacity} busy`;
    const data = await (await api("/api/models")).json();
    state.models = data.models;
    state.limits = data.limits;
    $("model").replaceChildren(...data.models.map((m) => new Option(m.name, m.name)));
    $("token-box").hidden = true;
    showModel();
    status("choose an image");
  } catch (e) {
    status(e.message, true);
  }
}

function chooseFile(file) {
  if (!file) return;
  if (!file.type.startsWith("image/")) { status(file.name + " is not an image", true); return; }
  if (state.limits.max_bytes && file.size > state.limits.max_bytes) {
    status(`${file.name} is larger than the server takes (${state.limits.max_bytes} bytes)`, true);
    return;
  }
  state.file = file;
  if (state.inputUrl) URL.revokeObjectURL(state.inputUrl);
  state.inputUrl = URL.createObjectURL(file);
  $("input-img").src = state.inputUrl;
  $("input-side").src = state.inputUrl;
  $("output-side").removeAttribute("src");
  $("output-clip").hidden = true;
  $("modes").hidden = true;
  showMode();
  $("run").disabled = false;
  status(file.name + " ready");
}

function newId() {
  return "p" + Date.now().toString(36) + Math.random().toString(36).slice(2, 10);
}

async function pollProgress(id, until) {
  const bar = $("progress");
  bar.hidden = false;
  bar.removeAttribute("value");
  while (!until.done) {
    await new Promise((r) => setTimeout(r, 300));
    if (until.done) break;
    try {
      const p = await (await api("/api/progress/" + id)).json();
      if (p.state === "queued") status("waiting in the queue…");
      if (p.state === "running" && p.total) {
        bar.max = p.total; bar.value = p.done;
        status(p.total > 1 ? `tile ${p.done} of ${p.total}` : "translating…");
      }
    } catch (e) { /* the id is not known yet: keep waiting */ }
  }
  bar.hidden = true;
}

function showOutputs(urls, name) {
  state.outputUrls.forEach((u) => URL.revokeObjectURL(u));
  state.outputUrls = urls;
  $("output-img").src = urls[0];
  $("output-side").src = urls[0];
  $("output-clip").hidden = false;
  $("modes").hidden = false;
  showMode();
  $("download").href = urls[0];
  $("download").download = name;
  $("gallery").replaceChildren(...urls.slice(1).map((u) => Object.assign(new Image(), { src: u })));
  setSlider();
}

function mode() {
  return document.querySelector('input[name="mode"]:checked').value;
}

function showMode() {
  $("side").hidden = mode() !== "side";
  $("slider-view").hidden = mode() !== "slider";
}

function setSlider() {
  const v = $("slider").value;
  $("output-clip").style.clipPath = `inset(0 0 0 ${v}%)`;
  $("divider").style.left = v + "%";
}

async function translateFile() {
  const m = current();
  if (!state.file || !m) return;
  const form = new FormData();
  const id = newId();
  form.append("image", state.file);
  form.append("model", m.name);
  form.append("direction", $("direction").value);
  form.append("progress_id", id);
  if (m.capabilities.includes("styles")) {
    form.append("styles", $("styles").value);
    if ($("style-seed").value !== "") form.append("style_seed", $("style-seed").value);
  }
  $("run").disabled = true;
  status("uploading…");
  const until = { done: false };
  const polling = pollProgress(id, until);
  const t0 = performance.now();
  let outcome = "error";
  $("view").dataset.state = "running";
  try {
    const response = await api("/api/translate", { method: "POST", body: form });
    let blobs;
    if ((response.headers.get("Content-Type") || "").startsWith("image/png")) {
      blobs = [await response.blob()];
    } else {
      const data = await response.json();
      blobs = data.images_png_base64.map((b) => new Blob([Uint8Array.from(atob(b), (c) => c.charCodeAt(0))], { type: "image/png" }));
    }
    const stem = state.file.name.replace(/\.[^.]*$/, "");
    showOutputs(blobs.map((b) => URL.createObjectURL(b)), `${stem}_${m.name}.png`);
    status(`done in ${((performance.now() - t0) / 1000).toFixed(1)} s`);
    outcome = "done";
  } catch (e) {
    status(e.message, true);
  } finally {
    until.done = true;
    await polling;
    $("run").disabled = false;
    $("view").dataset.state = outcome;
  }
}

async function generateImage() {
  const m = current();
  const body = JSON.stringify({ model: m.name, seed: $("seed").value, truncation: $("truncation").value });
  status("generating…");
  try {
    const response = await api("/api/generate", { method: "POST", body, headers: { "Content-Type": "application/json" } });
    const url = URL.createObjectURL(await response.blob());
    $("input-img").src = url;
    $("input-side").src = url;
    showOutputs([url], `${m.name}_seed${$("seed").value}.png`);
    status("done");
  } catch (e) {
    status(e.message, true);
  }
}

window.addEventListener("DOMContentLoaded", () => {
  $("model").addEventListener("change", showModel);
  $("file").addEventListener("change", (e) => chooseFile(e.target.files[0]));
  $("run").addEventListener("click", translateFile);
  $("generate").addEventListener("click", generateImage);
  $("slider").addEventListener("input", setSlider);
  document.querySelectorAll('input[name="mode"]').forEach((r) => r.addEventListener("change", showMode));
  $("token-save").addEventListener("click", () => {
    sessionStorage.setItem("pixmorph-token", $("token").value);
    loadModels();
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (e) => { e.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    drop.classList.remove("over");
    chooseFile(e.dataTransfer.files[0]);
  });
  loadModels();
});
