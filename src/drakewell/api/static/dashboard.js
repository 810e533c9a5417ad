// Drakewell dashboard: reads the app's JSON endpoints and draws them. No framework, no CDN.
"use strict";
const USD = 1e6; // stablecoin base units per dollar
const $ = (id) => document.getElementById(id);
const money = (base) => (base / USD).toFixed(2);

async function getJSON(url, options) {
  const res = await fetch(url, options);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(body.message || body.detail || res.statusText);
  return body;
}

function fillTable(id, rows) {
  const tbody = $(id).querySelector("tbody");
  tbody.innerHTML = "";
  for (const cells of rows) {
    const tr = document.createElement("tr");
    for (const [text, cls] of cells) {
      const td = document.createElement("td");
      if (cls === "inst") {
        // an instrument id wraps only after its dots, never inside a part
        for (const part of text.split(/(?<=\.)/)) {
          const span = document.createElement("span");
          span.textContent = part;
          td.append(span, document.createElement("wbr"));
        }
      } else {
        td.textContent = text;
      }
      if (cls) td.className = cls;
      tr.appendChild(td);
    }
    tbody.appendChild(tr);
  }
}

async function loadSite() {
  let data;
  try { data = await getJSON("/api/site"); } catch (e) { $("site-summary").textContent = e.message; return; }
  $("site-name").textContent = data.site;
  const s = data.series;
  const layers = [
    ["ai_inference_mw", "AI inference", "#1f77b4"], ["ai_training_mw", "AI training", "#6baed6"],
    ["ai_spot_mw", "AI spot", "#9ecae1"], ["mining_mw", "Mining", "#f59e0b"], ["curtailed_mw", "Curtailed", "#9ca3af"],
  ];
  const traces = layers.filter(([k]) => s[k]).map(([k, name, color]) => ({
    x: s.t, y: s[k], name, stackgroup: "mw", line: { width: 0.5, color }, type: "scatter",
  }));
  traces.push({ x: s.t, y: s.price_usd_per_mwh, name: "RT price $/MWh", yaxis: "y2", type: "scatter",
                line: { color: "#dc2626", width: 1 } });
  Plotly.newPlot("power-chart", traces, {
    margin: { t: 10, l: 50, r: 60, b: 40 }, hovermode: "x unified", legend: { orientation: "h" },
    yaxis: { title: "MW" }, yaxis2: { title: "$/MWh", overlaying: "y", side: "right" },
  }, { displayModeBar: false, responsive: true });
  const sm = data.summary || {};
  if (sm.profit_usd !== undefined) {
    $("site-summary").textContent = `policy ${sm.policy}: profit $${(sm.profit_usd / 1e6).toFixed(2)}M, ` +
      `flexibility capture ${sm.flex_capture === null ? "n/a" : Number(sm.flex_capture).toFixed(3)}`;
  }
}

async function loadInstruments() {
  const inst = await getJSON("/exchange/instruments");
  const sel = $("instrument");
  const current = sel.value;
  // the default contract comes from the server's clock (its next whole day), never from the page
  if (!$("order-instrument").value && inst.listed.length) $("order-instrument").value = inst.listed[0];
  const names = inst.active.length ? inst.active : inst.listed.slice(0, 1);
  sel.innerHTML = "";
  for (const name of names) {
    const opt = document.createElement("option");
    opt.textContent = name;
    sel.appendChild(opt);
  }
  if (names.includes(current)) sel.value = current;
}

async function loadBook() {
  const instrument = $("instrument").value;
  if (!instrument) return;
  const book = await getJSON(`/exchange/book/${encodeURIComponent(instrument)}`);
  const rows = [];
  for (let i = 0; i < Math.max(book.bids.length, book.asks.length); i++) {
    const b = book.bids[i], a = book.asks[i];
    rows.push([[b ? String(b.qty) : "", "bid"], [b ? money(b.price) : "", "bid"],
               [a ? money(a.price) : "", "ask"], [a ? String(a.qty) : "", "ask"]]);
  }
  fillTable("book", rows);
  const trades = await getJSON("/exchange/trades?limit=15");
  fillTable("trades", trades.map((t) => [[String(t.tid)], [t.instrument, "inst"], [money(t.price)], [String(t.qty)], [t.taker_side]]));
}

async function loadAssets() {
  const assets = await getJSON("/api/assets");
  fillTable("assets", assets.map((a) => [[a.name], [String(a.gpus)], [Number(a.nav_per_share_usd).toFixed(4)],
    [(100 * a.annual_yield).toFixed(1) + "%"], [String((a.holders || []).length)]]));
  if (assets.length) {
    Plotly.newPlot("assets-chart", [{ type: "bar", x: assets.map((a) => a.name), y: assets.map((a) => 100 * a.annual_yield),
      marker: { color: "#65a30d" }, name: "yield %" }],
      { margin: { t: 10, l: 50, r: 10, b: 60 }, yaxis: { title: "annual yield %" } }, { displayModeBar: false });
  }
}

async function loadEpochs() {
  let epochs = [];
  try { epochs = await getJSON("/meter/epochs"); } catch (e) { /* metering not configured */ }
  fillTable("epochs", epochs.slice(-12).map((e) => [[String(e.epoch)], [String(e.nReadings)],
    [(e.energyWh / 1e6).toFixed(1)], [e.readingsRoot, "root"], [e.capacityRoot || "", "root"]]));
}

const shortHex = (h) => (h && h.length > 14 ? `${h.slice(0, 8)}…${h.slice(-4)}` : h || "");
const fmt = (v, digits) => (v === null || v === undefined ? "n/a" : Number(v).toFixed(digits));
const pct = (v) => (v === null || v === undefined ? "n/a" : (100 * v).toFixed(1) + "%");

async function loadCapacity() {
  let data;
  try { data = await getJSON("/meter/capacity"); } catch (e) { return; /* metering not configured */ }
  const epochs = data.epochs || [];
  fillTable("capacity", epochs.slice(-12).map((e) => [[shortHex(e.asset), "root"], [String(e.epoch)],
    [e.capacityRoot || "open", "root"], [String(e.challengesPassed)], [String(e.challengesFailed)],
    [String(e.sharesAccepted)], [String(e.sharesRejected)], [e.flaggedNodes.length ? e.flaggedNodes.map(shortHex).join(" ") : "none"]]));
  const assets = [...new Set(epochs.filter((e) => e.nodes > 0).map((e) => e.asset))];
  const rows = [];
  for (const asset of assets) {
    const k = (await getJSON(`/meter/capacity?asset=${encodeURIComponent(asset)}`)).kpis;
    if (!k) continue;
    rows.push([[shortHex(k.asset), "root"], [String(k.epoch)], [pct(k.loadRate.declared)], [pct(k.loadRate.verified)],
      [pct(k.loadRate.coverage)], [fmt(k.tokensPerJoule.declared, 3)], [fmt(k.tokensPerJoule.verified, 3)],
      [fmt(k.jPerTh.declared, 2)], [fmt(k.jPerTh.verified, 2)],
      [k.flaggedNodes.length ? k.flaggedNodes.map(shortHex).join(" ") : "none"]]);
  }
  fillTable("capacity-kpis", rows);
}

// the live controller's state (GET /api/live, read-only): setpoint vs measured MW per class,
// the recent decisions and the events; a 503 (none configured, or it does not answer) is shown as is
async function loadLive() {
  let s;
  try { s = await getJSON("/api/live"); } catch (e) {
    $("live-status").textContent = "no live controller: " + e.message;
    $("live-status").className = "muted";
    return;
  }
  const safe = s.safe_mode.length ? ` · SAFE MODE (${s.safe_mode.join(", ")})` : "";
  $("live-status").textContent = `site time ${s.site_time} · interval ${s.interval} · measured ` +
    `${fmt(s.measured_facility_mw, 3)} MW facility · devices up ${s.devices_up}/${s.devices}` + safe;
  $("live-status").className = safe ? "safe" : "muted";
  const classes = s.classes || [];
  const names = classes.map((c) => c.class);
  Plotly.react("live-chart", [
    { type: "bar", name: "setpoint MW", x: names, y: classes.map((c) => c.setpoint_mw), marker: { color: "#2563eb" } },
    { type: "bar", name: "measured MW", x: names, y: classes.map((c) => c.measured_mw), marker: { color: "#f59e0b" } },
  ], { barmode: "group", margin: { t: 10, l: 50, r: 10, b: 40 }, yaxis: { title: "IT MW" }, legend: { orientation: "h" } },
  { displayModeBar: false, responsive: true });
  fillTable("live-decisions", s.decisions.map((d) => [[String(d.t)], [d.reason], [fmt(d.price, 2)],
    [d.cap_mw === null ? "none" : fmt(d.cap_mw, 3)], [fmt(d.mining_mw, 3)], [fmt(d.inference_mw, 3)],
    [fmt(d.training_mw, 3)], [fmt(d.spot_mw, 3)]]));
  fillTable("live-events", s.events.map((e) => [[e.event_id], [e.opt], [fmt(e.target_mw, 3)],
    [fmt(e.time_to_target_s, 1)], [fmt(e.mwh_short, 4)], [e.obeyed ? "yes" : "no", e.obeyed ? "bid" : "ask"]]));
}

$("order-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {
    instrument: $("order-instrument").value.trim(), side: $("order-side").value,
    qty: parseInt($("order-qty").value, 10), price: Math.round(parseFloat($("order-price").value) * USD),
  };
  try {
    const order = await getJSON("/exchange/orders", {
      method: "POST", headers: { "Content-Type": "application/json", "X-API-Key": $("api-key").value },
      body: JSON.stringify(body),
    });
    $("order-result").textContent = `order ${order.oid} ${order.status}: ${order.filled} filled, ${order.open} open`;
    await loadInstruments();
    $("instrument").value = body.instrument;
    await loadBook();
  } catch (e) {
    $("order-result").textContent = `refused: ${e.message}`;
  }
});
$("instrument").addEventListener("change", loadBook);

async function refresh() {
  try {
    await loadInstruments();
    await Promise.all([loadBook(), loadAssets(), loadEpochs(), loadCapacity()]);
    $("status").textContent = "updated " + new Date().toISOString().slice(11, 19) + " UTC";
  } catch (e) {
    $("status").textContent = "error: " + e.message;
  }
}
loadSite().then(refresh);
setInterval(refresh, 5000);
loadLive();
setInterval(loadLive, 2000);
