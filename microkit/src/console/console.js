// Draws the console from /console/data every two seconds: tables built with DOM nodes (text
// is never parsed as HTML) and charts as inline SVG.
"use strict";

const REFRESH_MS = 2000;
const SVG = "http://www.w3.org/2000/svg";

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    node.setAttribute(key, value);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function ms(value) {
  if (value === null || value === undefined) return "–";
  return value < 10 ? value.toFixed(2) + " ms" : value < 1000 ? value.toFixed(1) + " ms"
    : (value / 1000).toFixed(2) + " s";
}

function ago(atMs, nowMs) {
  if (!atMs) return "–";
  const seconds = Math.max(0, Math.round((nowMs - atMs) / 1000));
  const text = seconds < 90 ? seconds + " s" : seconds < 5400 ? Math.round(seconds / 60) + " min"
    : Math.round(seconds / 3600) + " h";
  return new Date(atMs).toLocaleTimeString() + " (" + text + " ago)";
}

function badge(kind, text) {
  return el("span", { class: "badge " + kind }, text);
}

// A small line chart of one or more series over the window; null values leave gaps.
function chart(series, options) {
  const width = 180, height = 36, pad = 2;
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("class", "chart");
  svg.setAttribute("width", width);
  svg.setAttribute("height", height);
  svg.setAttribute("viewBox", `0 0 ${width} ${height}`);
  const values = series.flatMap((s) => s.values).filter((v) => v !== null);
  const max = Math.max(options.floor || 0, ...values);
  const base = document.createElementNS(SVG, "line");
  base.setAttribute("x1", 0); base.setAttribute("x2", width);
  base.setAttribute("y1", height - pad); base.setAttribute("y2", height - pad);
  base.setAttribute("stroke", "#dde2ea");
  svg.append(base);
  for (const one of series) {
    const n = one.values.length;
    let path = "";
    one.values.forEach((value, i) => {
      if (value === null) { path += " "; return; }
      const x = n > 1 ? (i / (n - 1)) * (width - 2 * pad) + pad : width / 2;
      const y = max > 0 ? height - pad - (value / max) * (height - 2 * pad) : height - pad;
      const move = path === "" || path.endsWith(" ");
      path += (move ? "M" : "L") + x.toFixed(1) + "," + y.toFixed(1);
      // A point with no neighbour draws no line: mark it with a dot.
      const alone = (i === 0 || one.values[i - 1] === null) && (i === n - 1 || one.values[i + 1] === null);
      if (alone) {
        const dot = document.createElementNS(SVG, "circle");
        dot.setAttribute("cx", x.toFixed(1));
        dot.setAttribute("cy", y.toFixed(1));
        dot.setAttribute("r", "2");
        dot.setAttribute("fill", one.color);
        svg.append(dot);
      }
    });
    const line = document.createElementNS(SVG, "path");
    line.setAttribute("d", path.trim().replace(/ +/g, " ") || "M0,0");
    line.setAttribute("fill", "none");
    line.setAttribute("stroke", one.color);
    line.setAttribute("stroke-width", "1.5");
    svg.append(line);
  }
  const title = document.createElementNS(SVG, "title");
  title.textContent = options.title + ": max " + options.format(max);
  svg.append(title);
  return svg;
}

function renderServices(data) {
  const body = document.querySelector("#services tbody");
  const rows = [];
  const self = data.server.instance;
  if (self) {
    rows.push(el("tr", { class: "service" }, el("td", { colspan: 9 }, data.name + " (this instance)")));
    rows.push(instanceRow(self, data.now_ms));
  }
  for (const service of data.services) {
    rows.push(el("tr", { class: "service", "data-service": service.name },
      el("td", { colspan: 9 }, service.name + "  ",
        el("span", { class: "muted" }, `${service.instances.length} instance(s), ${service.attempts} attempts, ` +
          `${service.retries} retries, ${service.ejections} ejections`))));
    for (const instance of service.instances) {
      rows.push(instanceRow(instance, data.now_ms, service.name));
    }
  }
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: 9, class: "empty" }, "no service known yet")));
  }
  body.replaceChildren(...rows);
}

function instanceRow(instance, nowMs, service) {
  const attrs = { class: "instance", "data-address": instance.address };
  if (service) attrs["data-service"] = service;
  return el("tr", attrs,
    el("td", { class: "mono" }, instance.address),
    el("td", {}, badge(instance.health, instance.health)),
    el("td", {}, ago(instance.registered_since_ms, nowMs)),
    el("td", {}, instance.ejected ? badge("ejected", "ejected") : "no"),
    el("td", { class: "num" }, instance.in_flight),
    el("td", { class: "num" }, ms(instance.ewma_ms)),
    el("td", { class: "num attempts" }, instance.attempts),
    el("td", { class: "num" }, instance.failures),
    el("td", { class: "mono muted" }, instance.id));
}

function renderRoutes(data) {
  const body = document.querySelector("#routes tbody");
  const slot = data.slot_seconds;
  const nowS = data.now_ms / 1000;
  const rows = data.routes.map((route) => {
    const seconds = route.points.map((p) => Math.max(1, Math.min(slot, nowS - p.start)));
    const rate = route.points.map((p, i) => p.requests / seconds[i]);
    const errors = route.points.map((p) => (p.requests ? (100 * p.errors) / p.requests : null));
    return el("tr", { class: "route", "data-route": route.method + " " + route.route },
      el("td", { class: "mono" }, route.method + " " + route.route),
      el("td", { class: "num requests" }, route.requests),
      el("td", { class: "num" }, route.errors),
      el("td", { class: "num" }, ms(route.p50_ms)),
      el("td", { class: "num" }, ms(route.p99_ms)),
      el("td", {}, chart([{ values: rate, color: "var(--rate)" }],
        { title: "requests/s", format: (v) => v.toFixed(2) + "/s" })),
      el("td", {}, chart([{ values: errors, color: "var(--bad)" }],
        { title: "errors", format: (v) => v.toFixed(1) + "%", floor: 1 })),
      el("td", {}, chart([
        { values: route.points.map((p) => p.p50_ms), color: "var(--p50)" },
        { values: route.points.map((p) => p.p99_ms), color: "var(--p99)" },
      ], { title: "latency", format: ms })));
  });
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: 8, class: "empty" }, "no request in the window yet")));
  }
  body.replaceChildren(...rows);
  const minutes = (route) => Math.round((slot * (route ? route.points.length : 0)) / 60);
  document.getElementById("window").textContent =
    `(last ${minutes(data.routes[0]) || 5} minutes, ${slot} s a point)`;
}

function renderProblems(data) {
  const body = document.querySelector("#problems tbody");
  const rows = data.problems.map((problem) => el("tr", { class: "problem" },
    el("td", {}, ago(problem.at_ms, data.now_ms)),
    el("td", { class: "num" }, problem.status),
    el("td", { class: "mono" }, problem.method + " " + problem.route),
    el("td", { class: "mono" }, problem.path),
    el("td", { class: "mono" }, problem.trace_id || "–"),
    el("td", { class: "mono muted" }, problem.request_id || "–")));
  if (rows.length === 0) {
    rows.push(el("tr", {}, el("td", { colspan: 6, class: "empty" }, "no problem answered lately")));
  }
  body.replaceChildren(...rows);
}

function render(data) {
  document.title = data.name + " · microkit console";
  document.getElementById("name").textContent = data.name;
  document.getElementById("in-flight").textContent = data.server.in_flight;
  document.getElementById("connections").textContent = data.server.open_connections;
  renderServices(data);
  renderRoutes(data);
  renderProblems(data);
  const status = document.getElementById("status");
  status.textContent = "updated " + new Date(data.now_ms).toLocaleTimeString();
  status.className = "";
  document.body.dataset.loaded = "true";
}

async function refresh() {
  try {
    const response = await fetch("console/data", { cache: "no-store" });
    if (!response.ok) throw new Error("HTTP " + response.status);
    render(await response.json());
  } catch (error) {
    const status = document.getElementById("status");
    status.textContent = "not updated: " + error.message;
    status.className = "stale";
  } finally {
    setTimeout(refresh, REFRESH_MS);
  }
}

refresh();
