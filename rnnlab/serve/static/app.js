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
  suggest();
}

function describeModel() {
  const m = models[els.model.value];
  const r = m && m.rnnlab;
  els.modelInfo.textContent = r ? `${r.cell.toUpperCase()} ${r.layers}×${r.hidden_size}, ${r.level} level, ` +
    `${r.vocab_size.toLocaleString()} tokens` : "";
}
els.model.addEventListener("change", () => { describeModel(); suggest(); });

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

loadModels();
setInterval(checkHealth, 10000);
