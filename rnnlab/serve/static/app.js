// The playground: the server's own endpoints only (/health, /v1/models, /v1/completions, /v1/next).
"use strict";

const $ = (id) => document.getElementById(id);
const els = {
  prompt: $("prompt"), chips: $("chips"), generate: $("generate"), stop: $("stop"), append: $("append"),
  stats: $("stats"), echo: $("echo"), completion: $("completion"), caret: $("caret"),
  placeholder: $("placeholder"), error: $("error"), model: $("model"), modelInfo: $("model-info"),
  temperature: $("temperature"), topP: $("top-p"), maxTokens: $("max-tokens"), seed: $("seed"),
  stopText: $("stop-text"), status: $("status"), statusText: $("status-text"),
};
let running = null; // the AbortController of the completion in flight
let models = {};

for (const [input, shown] of [["temperature", "temperature-value"], ["top-p", "top-p-value"],
                              ["max-tokens", "max-tokens-value"]]) {
  const update = () => { $(shown).textContent = $(input).value; };
  $(input).addEventListener("input", update);
  update();
}

function showError(message) {
  els.error.textContent = message;
  els.error.hidden = !message;
}

async function checkHealth() {
  try {
    const response = await fetch("/health");
    const ok = response.ok;
    els.status.className = "status " + (ok ? "ok" : "down");
    els.statusText.textContent = ok ? "ready" : "loading…";
    return ok;
  } catch (e) {
    els.status.className = "status down";
    els.statusText.textContent = "offline";
    return false;
  }
}

async function loadModels() {
  while (!(await checkHealth())) await new Promise((r) => setTimeout(r, 1000));
  const response = await fetch("/v1/models");
  const body = await response.json();
  els.model.innerHTML = "";
  for (const m of body.data) {
    models[m.id] = m;
    const option = document.createElement("option");
    option.value = m.id;
    option.textContent = m.id;
    els.model.appendChild(option);
  }
  describeModel();
  if (!isForecaster()) suggest();
}

function describeModel() {
  const m = models[els.model.value];
  const r = m && m.rnnlab;
  const forecasting = Boolean(r && r.kind === "forecast");
  document.body.classList.toggle("forecasting", forecasting);
  $("text-panel").hidden = forecasting;
  $("forecast-panel").hidden = !forecasting;
  if (!r) els.modelInfo.textContent = "";
  else if (forecasting) els.modelInfo.textContent = `forecaster: ${r.model}` + (r.horizon ? `, horizon ${r.horizon}` : "");
  else els.modelInfo.textContent = `${r.cell.toUpperCase()} ${r.layers}×${r.hidden_size}, ${r.level} level, ` +
    `${r.vocab_size.toLocaleString()} tokens`;
}
els.model.addEventListener("change", () => { describeModel(); if (!isForecaster()) suggest(); });
const isForecaster = () => document.body.classList.contains("forecasting");

// -- next-word chips
let suggestTimer = null;
let suggestSerial = 0;
function suggest() {
  clearTimeout(suggestTimer);
  suggestTimer = setTimeout(async () => {
    const serial = ++suggestSerial;
    try {
      const response = await fetch("/v1/next", {
        method: "POST", headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ model: els.model.value, prompt: els.prompt.value, k: 6 }),
      });
      if (!response.ok || serial !== suggestSerial) return;
      const body = await response.json();
      els.chips.innerHTML = "";
      for (const c of body.candidates) {
        const chip = document.createElement("button");
        chip.type = "button";
        chip.className = "chip";
        const word = document.createElement("span");
        word.textContent = c.text.replace(/\n/g, "⏎");
        const p = document.createElement("span");
        p.className = "p";
        p.textContent = (100 * c.probability).toFixed(c.probability < 0.1 ? 1 : 0) + "%";
        chip.append(word, p);
        chip.addEventListener("click", () => {
          els.prompt.value += c.text;
          els.prompt.focus();
          suggest();
        });
        els.chips.appendChild(chip);
      }
    } catch (e) { /* suggestions are a nicety: the prompt box works without them */ }
  }, 250);
}
els.prompt.addEventListener("input", suggest);

// -- completions, streamed
function requestBody() {
  const body = {
    model: els.model.value, prompt: els.prompt.value, stream: true,
    temperature: Number(els.temperature.value), top_p: Number(els.topP.value),
    max_tokens: Number(els.maxTokens.value), stream_options: { include_usage: true },
  };
  if (els.seed.value !== "") body.seed = Number(els.seed.value);
  if (els.stopText.value !== "") body.stop = els.stopText.value;
  return body;
}

async function generate() {
  if (running) return;
  showError("");
  els.placeholder.hidden = true;
  els.echo.textContent = els.prompt.value;
  els.completion.textContent = "";
  els.caret.hidden = false;
  els.generate.disabled = true;
  els.stop.disabled = false;
  els.append.disabled = true;
  running = new AbortController();
  const started = performance.now();
  let first = null;
  let tokens = 0;
  try {
    const response = await fetch("/v1/completions", {
      method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify(requestBody()), signal: running.signal,
    });
    if (!response.ok) {
      const body = await response.json().catch(() => ({}));
      throw new Error((body.error && body.error.message) || `HTTP ${response.status}`);
    }
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let end;
      while ((end = buffer.indexOf("\n\n")) >= 0) {
        const event = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (!event.startsWith("data: ")) continue;
        const data = event.slice(6);
        if (data === "[DONE]") continue;
        const chunk = JSON.parse(data);
        if (chunk.error) throw new Error(chunk.error.message);
        if (chunk.usage) tokens = chunk.usage.completion_tokens;
        for (const choice of chunk.choices || []) {
          if (choice.text) {
            if (first === null) first = performance.now();
            els.completion.textContent += choice.text;
          }
        }
        const seconds = (performance.now() - started) / 1000;
        els.stats.textContent = first === null ? "" :
          `first token ${Math.round(first - started)} ms · ${seconds.toFixed(1)} s`;
      }
    }
    const seconds = (performance.now() - started) / 1000;
    if (tokens) els.stats.textContent = `${tokens} tokens · ${(tokens / seconds).toFixed(0)} tokens/s · ` +
      `first token ${Math.round(first - started)} ms`;
  } catch (e) {
    if (e.name !== "AbortError") showError(e.message);
  } finally {
    running = null;
    els.caret.hidden = true;
    els.generate.disabled = false;
    els.stop.disabled = true;
    els.append.disabled = els.completion.textContent === "";
  }
}

els.generate.addEventListener("click", generate);
els.stop.addEventListener("click", () => running && running.abort());
els.append.addEventListener("click", () => {
  els.prompt.value += els.completion.textContent;
  els.completion.textContent = "";
  els.echo.textContent = "";
  els.placeholder.hidden = false;
  els.append.disabled = true;
  suggest();
});
els.prompt.addEventListener("keydown", (e) => {
  if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) { e.preventDefault(); generate(); }
});

// -- forecasting: the series, the forecast and its intervals as one SVG chart
const SVG = "http://www.w3.org/2000/svg";
function svg(tag, attrs, parent) {
  const el = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs)) el.setAttribute(k, v);
  if (parent) parent.appendChild(el);
  return el;
}

function drawForecast(history, result) {
  const chart = $("chart");
  chart.innerHTML = "";
  const W = 860, H = 320, L = 52, R = 16, T = 14, B = 30;
  const forecast = result.values.map((row) => row[0]);
  const levels = Object.keys(result.intervals).sort((a, b) => Number(b) - Number(a));
  const all = [...history, ...forecast];
  for (const level of levels) all.push(...result.intervals[level].lower.map((r) => r[0]),
                                       ...result.intervals[level].upper.map((r) => r[0]));
  let lo = Math.min(...all), hi = Math.max(...all);
  if (hi === lo) { hi += 1; lo -= 1; }
  const pad = (hi - lo) * 0.06; lo -= pad; hi += pad;
  const n = history.length + forecast.length;
  const x = (i) => L + (W - L - R) * (n > 1 ? i / (n - 1) : 0.5);
  const y = (v) => T + (H - T - B) * (1 - (v - lo) / (hi - lo));
  const root = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img" }, chart);
  for (let k = 0; k <= 4; k++) {
    const v = lo + (hi - lo) * k / 4;
    svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), class: "axis" }, root);
    svg("text", { x: L - 8, y: y(v) + 4, "text-anchor": "end", class: "tick" }, root).textContent =
      Math.abs(v) >= 1000 ? v.toExponential(2) : v.toFixed(Math.abs(hi - lo) < 10 ? 2 : 0);
  }
  const first = history.length - 1;
  levels.forEach((level, k) => {
    const lower = result.intervals[level].lower.map((r) => r[0]);
    const upper = result.intervals[level].upper.map((r) => r[0]);
    const top = upper.map((v, i) => `${x(first + 1 + i)},${y(v)}`);
    const bottom = lower.map((v, i) => `${x(first + 1 + i)},${y(v)}`).reverse();
    const start = history.length ? [`${x(first)},${y(history[first])}`] : [];
    svg("polygon", { points: [...start, ...top, ...bottom].join(" "), class: "band",
                     "fill-opacity": 0.14 + 0.12 * k }, root);
  });
  if (history.length) svg("polyline", { points: history.map((v, i) => `${x(i)},${y(v)}`).join(" "),
                                        class: "history" }, root);
  const joined = history.length ? [[first, history[first]]] : [];
  const path = [...joined, ...forecast.map((v, i) => [first + 1 + i, v])];
  svg("polyline", { points: path.map(([i, v]) => `${x(i)},${y(v)}`).join(" "), class: "forecast",
                    id: "forecast-line" }, root);
  const day = (t) => String(t).replace(/[ T]00:00:00$/, "");
  const stamps = result.timestamps, past = result.history.timestamps;
  svg("text", { x: L, y: H - 8, class: "tick" }, root).textContent = day(past.length ? past[0] : stamps[0]);
  svg("text", { x: W - R, y: H - 8, "text-anchor": "end", class: "tick" }, root).textContent =
    day(stamps[stamps.length - 1]);
  if (history.length) svg("line", { x1: x(first), x2: x(first), y1: T, y2: H - B, class: "axis",
                                    "stroke-dasharray": "4 4" }, root);
  const legend = document.createElement("div");
  legend.className = "legend";
  legend.innerHTML = `<span><i style="background: var(--text)"></i>series</span>` +
    `<span><i style="background: var(--accent)"></i>forecast</span>` +
    levels.map((l) => `<span><i style="background: var(--accent); opacity: 0.35"></i>${l}% interval</span>`).join("");
  chart.appendChild(legend);
}

async function forecast() {
  const error = $("forecast-error");
  error.hidden = true;
  const text = $("series").value.trim();
  const values = text ? text.split(/[\s,;]+/).filter(Boolean).map(Number) : null;
  const body = { model: els.model.value };
  if (values) body.values = values;
  if ($("horizon").value !== "") body.horizon = Number($("horizon").value);
  const started = performance.now();
  try {
    const response = await fetch("/v1/forecast", {
      method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
    });
    const result = await response.json();
    if (!response.ok) throw new Error(result.error ? result.error.message : `HTTP ${response.status}`);
    drawForecast(result.history.values.map((row) => row[0]), result);
    $("forecast-stats").textContent = `${result.horizon} steps · ${Math.round(performance.now() - started)} ms`;
  } catch (e) {
    error.textContent = e.message;
    error.hidden = false;
  }
}
$("forecast").addEventListener("click", forecast);

loadModels();
setInterval(checkHealth, 10000);
