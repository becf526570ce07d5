// zeroserve dashboard: polls /zeroserve/dashboard every 2 s and redraws tables and SVG charts.
// Plain DOM and SVG, no framework; text goes in via textContent so names and messages are never HTML.
"use strict";

const POLL_MS = 2000;
const COLORS = ["#2563eb", "#dc2626", "#16a34a", "#d97706", "#7c3aed", "#0891b2", "#db2777", "#4b5563"];
const SVG_NS = "http://www.w3.org/2000/svg";

function el(tag, attrs = {}, text) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

function svgEl(tag, attrs = {}, text) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, value);
  if (text !== undefined) node.textContent = String(text);
  return node;
}

function fmtInt(n) { return (n ?? 0).toLocaleString("en-US"); }
// Serverless bills are tiny: keep two significant digits without switching to exponent notation.
function fmtUsd(x) {
  if (!x) return "$0";
  return "$" + x.toFixed(Math.min(12, Math.max(2, 1 - Math.floor(Math.log10(x)))));
}
function fmtNum(x) {
  if (!x) return "0";
  if (Number.isInteger(x)) return fmtInt(x);
  return x.toFixed(Math.min(12, Math.max(0, 1 - Math.floor(Math.log10(x)))));
}
function fmtTime(s) { return new Date(s * 1000).toLocaleTimeString("en-GB"); }

function td(value, cls) {
  const cell = el("td", cls ? { class: cls } : {});
  if (value instanceof Node) cell.appendChild(value); else cell.textContent = value ?? "";
  return cell;
}

function replaceRows(tbody, rows, columns, emptyText) {
  tbody.replaceChildren(...(rows.length ? rows : [el("tr", {}, undefined)]));
  if (!rows.length) tbody.firstChild.appendChild(el("td", { colspan: columns, class: "muted" }, emptyText));
}

function renderTotals(data) {
  const total = data.cost.total;
  document.getElementById("total-endpoints").textContent = fmtInt(data.endpoints.length);
  document.getElementById("total-invocations").textContent = fmtInt(total.invocations);
  document.getElementById("total-cold").textContent = fmtInt(total.cold_starts);
  document.getElementById("total-gbs").textContent = fmtNum(total.gb_seconds);
  document.getElementById("total-cost").textContent = fmtUsd(total.cost_usd);
}

function renderEndpoints(data, colorOf) {
  const usage = Object.fromEntries(data.cost.endpoints.map((u) => [u.endpoint, u]));
  const rows = [];
  for (const endpoint of data.endpoints) {
    const used = usage[endpoint.name] || {};
    const live = (data.live.endpoints || {})[endpoint.name] || { variants: [] };
    const variants = endpoint.variants.length ? endpoint.variants : [{}];
    variants.forEach((variant, i) => {
      const running = live.variants.find((v) => v.variant === variant.variant) || {};
      const row = el("tr", { "data-endpoint": endpoint.name });
      if (i === 0) {
        const name = el("span", {}, endpoint.name);
        name.style.borderLeft = `4px solid ${colorOf(endpoint.name)}`;
        name.style.paddingLeft = "6px";
        const badge = el("span", { class: `status ${endpoint.status}` }, endpoint.status);
        const statusCell = el("div");
        statusCell.appendChild(badge);
        if (endpoint.failure_reason) statusCell.appendChild(el("div", { class: "reason" }, endpoint.failure_reason));
        row.append(td(name), td(statusCell));
      } else {
        row.append(td(""), td(""));
      }
      const memory = variant.memory_mb ? `${variant.memory_mb} MB` : variant.instance_type || "";
      row.append(
        td(variant.variant || ""), td(memory), td(variant.max_concurrency ?? "", "num"),
        td(variant.provisioned ?? variant.instance_count ?? "", "num"),
        td(running.workers ? running.workers.length : 0, "num"), td(running.inflight ?? 0, "num"),
      );
      if (i === 0) {
        const invocations = td(fmtInt(used.invocations), "num");
        invocations.setAttribute("data-field", "invocations");
        row.append(
          invocations, td(fmtInt(used.cold_starts), "num"), td(fmtInt(used.errors_4xx), "num"),
          td(fmtInt(used.errors_5xx), "num"), td(fmtNum(used.gb_seconds), "num"), td(fmtUsd(used.cost_usd), "num"),
        );
      } else {
        row.append(td(""), td(""), td(""), td(""), td(""), td(""));
      }
      rows.push(row);
    });
  }
  replaceRows(document.querySelector("#endpoints tbody"), rows, 14, "no endpoints yet");
}

// Nodes: one row ("local") on one machine; every Ray node on a cluster (docs/cluster.md).
function renderNodes(data) {
  const nodes = (data.live && data.live.nodes) || [];
  const rows = nodes.map((n) => {
    const row = el("tr");
    const id = n.node_id.length > 16 ? n.node_id.slice(0, 12) + "…" : n.node_id;
    row.append(td(id), td(n.role || ""), td(n.address), td(fmtInt(n.workers), "num"),
      td(`${fmtInt(n.memory_reserved_mb)} / ${fmtInt(n.memory_total_mb)} MB`, "num"));
    return row;
  });
  replaceRows(document.querySelector("#nodes tbody"), rows, 5, "none");
}

function renderErrors(data) {
  const rows = data.errors.slice(0, 20).map((e) => {
    const row = el("tr");
    row.append(td(fmtTime(e.timestamp_s)), td(e.endpoint), td(e.variant), td(e.status, "num"), td(e.error || ""));
    return row;
  });
  replaceRows(document.querySelector("#errors tbody"), rows, 5, "none");
}

// One chart: a line (or bars) per endpoint over the timeline's buckets, with a max label and time ticks.
// `pick` returns null where a bucket has no value (no traffic, so no latency): the line breaks there.
function drawChart(svg, series, pick, colorOf, bars) {
  const width = svg.clientWidth || 400, height = svg.clientHeight || 160;
  const pad = { left: 34, right: 6, top: 8, bottom: 18 };
  const plotW = width - pad.left - pad.right, plotH = height - pad.top - pad.bottom;
  const names = Object.keys(series);
  const count = names.length ? series[names[0]].length : 0;
  let max = 0;
  for (const name of names) for (const b of series[name]) max = Math.max(max, pick(b) ?? 0);
  max = max > 0 ? max : 1;
  const x = (i) => pad.left + (count > 1 ? (i / (count - 1)) * plotW : 0);
  const y = (v) => pad.top + plotH - (v / max) * plotH;
  const nodes = [
    svgEl("line", { class: "axis", x1: pad.left, y1: pad.top + plotH, x2: width - pad.right, y2: pad.top + plotH }),
    svgEl("line", { class: "axis", x1: pad.left, y1: pad.top, x2: pad.left, y2: pad.top + plotH }),
    svgEl("text", { x: pad.left - 4, y: pad.top + 8, "text-anchor": "end" }, fmtNum(max)),
    svgEl("text", { x: pad.left - 4, y: pad.top + plotH, "text-anchor": "end" }, "0"),
  ];
  if (count) {
    const first = series[names[0]];
    nodes.push(svgEl("text", { x: pad.left, y: height - 4 }, fmtTime(first[0].start_s)));
    nodes.push(svgEl("text", { x: width - pad.right, y: height - 4, "text-anchor": "end" }, "now"));
  }
  names.forEach((name, k) => {
    const color = colorOf(name);
    if (bars) {
      const slot = plotW / Math.max(count, 1), barW = Math.max(1, slot / names.length);
      series[name].forEach((b, i) => {
        const v = pick(b);
        if (v > 0) nodes.push(svgEl("rect", {
          x: pad.left + i * slot + k * barW, y: y(v), width: barW, height: pad.top + plotH - y(v), fill: color,
        }));
      });
    } else {
      let path = "", previous = null;
      series[name].forEach((b, i) => {
        const v = pick(b);
        if (v === null) { previous = null; return; }
        path += `${previous === null ? "M" : "L"}${x(i).toFixed(1)},${y(v).toFixed(1)} `;
        const next = series[name][i + 1];
        const alone = previous === null && (next === undefined || pick(next) === null);
        if (alone) nodes.push(svgEl("circle", { cx: x(i), cy: y(v), r: 2.5, fill: color }));
        previous = v;
      });
      if (path) nodes.push(svgEl("path", { d: path, fill: "none", stroke: color, "stroke-width": 1.5 }));
    }
  });
  svg.replaceChildren(...nodes);
}

function renderCharts(data, colorOf) {
  const series = data.series;
  for (const node of document.querySelectorAll(".bucket")) node.textContent = data.bucket_s;
  drawChart(document.getElementById("chart-invocations"), series, (b) => b.invocations, colorOf, true);
  drawChart(document.getElementById("chart-latency"), series, (b) => (b.invocations ? b.mean_ms : null),
    colorOf, false);
  drawChart(document.getElementById("chart-cold"), series, (b) => b.cold_starts, colorOf, true);
  const legend = document.getElementById("legend");
  legend.replaceChildren(...Object.keys(series).map((name) => {
    const item = el("span");
    const swatch = el("i");
    swatch.style.background = colorOf(name);
    item.append(swatch, document.createTextNode(name));
    return item;
  }));
}

function render(data) {
  // Colours follow the endpoint list so a name keeps its colour across polls.
  const order = data.endpoints.map((e) => e.name);
  const colorOf = (name) => {
    const i = order.indexOf(name);
    return COLORS[(i < 0 ? order.length : i) % COLORS.length];
  };
  renderTotals(data);
  renderEndpoints(data, colorOf);
  renderCharts(data, colorOf);
  renderNodes(data);
  renderErrors(data);
  document.getElementById("updated").textContent = "updated " + new Date().toLocaleTimeString("en-GB");
}

async function poll() {
  try {
    const response = await fetch("/zeroserve/dashboard", { cache: "no-store" });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    render(await response.json());
  } catch (error) {
    document.getElementById("updated").textContent = "server unreachable: " + error.message;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();
